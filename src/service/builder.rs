//! Building exposed objects and services from closures with typed
//! arguments.
//!
//! ```
//! use rpyc_rs::service::{Args, ObjectBuilder, Service};
//!
//! let svc = Service::builder("Calculator")
//!     .method("add", |a: i64, b: i64| a + b)
//!     .params("add", &["a", "b"]) // lets a Python caller write add(a=1, b=2)
//!     .method("greet", |name: String, excited: Option<bool>| {
//!         format!("hello {name}{}", if excited == Some(true) { "!" } else { "" })
//!     })
//!     .attribute("version", "1.0")
//!     .build();
//! ```
//!
//! How arguments and return values convert is in `args.rs`.

use std::collections::HashMap;
use std::sync::Arc;

use crate::brine::Value;
use crate::protocol::{Connection, FromObject, Object, RemoteException};

use super::args::{convert, Args, IntoReturn, Method};
use super::{Expose, HandlerResult, Kwargs};

type BoxedMethod = Arc<dyn Fn(&Args<'_>) -> HandlerResult + Send + Sync>;
type Getter = Arc<dyn Fn(&Connection) -> HandlerResult + Send + Sync>;
type Setter = Arc<dyn Fn(&Connection, Object) -> HandlerResult<()> + Send + Sync>;
type Hook = Arc<dyn Fn(&Connection) + Send + Sync>;

struct MethodEntry {
    f: BoxedMethod,
    params: Vec<String>,
    doc: Option<String>,
}

/// An exposed object made of closures: methods, attributes, properties and
/// dunders (`__len__`, `__iter__`, `__getitem__`, `__call__`, ...).
pub struct BuiltObject {
    type_name: String,
    methods: HashMap<String, MethodEntry>,
    attrs: HashMap<String, Object>,
    getters: HashMap<String, Getter>,
    setters: HashMap<String, Setter>,
    repr: Option<Arc<dyn Fn() -> String + Send + Sync>>,
    service: Option<ServiceInfo>,
    /// Methods that return the object itself (`__iter__` of an iterator,
    /// `__enter__` of a context manager).
    self_methods: HashMap<String, Arc<dyn Fn() + Send + Sync>>,
    me: std::sync::Weak<BuiltObject>,
}

struct ServiceInfo {
    name: String,
    aliases: Vec<String>,
    on_connect: Option<Hook>,
    on_disconnect: Option<Hook>,
}

/// Builds a [`BuiltObject`].
pub struct ObjectBuilder {
    obj: BuiltObject,
}

impl ObjectBuilder {
    /// A new object whose class the peer sees as `type_name`
    /// (`"module.ClassName"`).
    pub fn new(type_name: impl Into<String>) -> Self {
        ObjectBuilder {
            obj: BuiltObject {
                type_name: type_name.into(),
                methods: HashMap::new(),
                attrs: HashMap::new(),
                getters: HashMap::new(),
                setters: HashMap::new(),
                repr: None,
                service: None,
                self_methods: HashMap::new(),
                me: std::sync::Weak::new(),
            },
        }
    }

    /// Adds a method. Name dunders (`"__len__"`, `"__iter__"`, `"__next__"`,
    /// `"__getitem__"`, `"__enter__"`, `"__exit__"`, `"__call__"`, ...) to
    /// give a Python proxy `len()`, iteration, indexing, `with` and calls.
    pub fn method<M: Method<Marker>, Marker>(mut self, name: &str, m: M) -> Self {
        let f: BoxedMethod = Arc::new(move |a: &Args<'_>| m.invoke(a));
        self.obj.methods.insert(name.to_string(), MethodEntry { f, params: Vec::new(), doc: None });
        self
    }

    /// Adds a method that runs `f` and returns the object itself, as an
    /// iterator's `__iter__` or a context manager's `__enter__` does.
    pub fn self_method(mut self, name: &str, f: impl Fn() + Send + Sync + 'static) -> Self {
        self.obj.self_methods.insert(name.to_string(), Arc::new(f));
        self
    }

    /// Names the parameters of a method added before, so callers may pass
    /// them as keywords.
    pub fn params(mut self, method: &str, names: &[&str]) -> Self {
        if let Some(m) = self.obj.methods.get_mut(method) {
            m.params = names.iter().map(|s| s.to_string()).collect();
        }
        self
    }

    /// Sets the docstring of a method added before (INSPECT shows it).
    pub fn doc(mut self, method: &str, doc: &str) -> Self {
        if let Some(m) = self.obj.methods.get_mut(method) {
            m.doc = Some(doc.to_string());
        }
        self
    }

    /// Adds a constant attribute.
    pub fn attribute(mut self, name: &str, value: impl Into<Object>) -> Self {
        self.obj.attrs.insert(name.to_string(), value.into());
        self
    }

    /// Adds a computed attribute (a property).
    pub fn property<R: IntoReturn>(mut self, name: &str, f: impl Fn() -> R + Send + Sync + 'static) -> Self {
        self.obj.getters.insert(name.to_string(), Arc::new(move |_c: &Connection| f().into_return()));
        self
    }

    /// Makes an attribute settable by the peer (when the connection allows
    /// setattr).
    pub fn setter<T: FromObject>(
        mut self,
        name: &str,
        f: impl Fn(T) -> HandlerResult<()> + Send + Sync + 'static,
    ) -> Self {
        let n = name.to_string();
        self.obj.setters.insert(
            name.to_string(),
            Arc::new(move |_c: &Connection, v: Object| f(convert(&n, usize::MAX, v)?)),
        );
        self
    }

    /// Sets what `repr(obj)` shows.
    pub fn repr(mut self, f: impl Fn() -> String + Send + Sync + 'static) -> Self {
        self.obj.repr = Some(Arc::new(f));
        self
    }

    /// The object, ready to return from a method or serve as a root.
    pub fn build(self) -> Arc<dyn Expose> {
        let obj = self.obj;
        Arc::new_cyclic(|me| BuiltObject { me: me.clone(), ..obj })
    }

    /// The object as an [`Object`].
    pub fn into_object(self) -> Object {
        Object::Local(self.build())
    }
}

impl BuiltObject {
    fn invoke(
        &self,
        conn: &Connection,
        name: &str,
        args: Vec<Object>,
        kwargs: Kwargs,
    ) -> Option<HandlerResult> {
        if let Some(f) = self.self_methods.get(name) {
            f();
            return Some(
                self.me
                    .upgrade()
                    .map(|me| Object::Local(me as Arc<dyn Expose>))
                    .ok_or_else(|| RemoteException::runtime_error("object is being dropped")),
            );
        }
        let m = self.methods.get(name)?;
        let a = Args { conn, method: name, positional: args, kwargs, params: &m.params };
        Some((m.f)(&a))
    }

    fn short_name(&self) -> &str {
        self.type_name.rsplit('.').next().unwrap_or(&self.type_name)
    }

    fn no_attr(&self, name: &str) -> RemoteException {
        RemoteException::attribute_error(format!("'{}' object has no attribute '{name}'", self.short_name()))
    }
}

impl Expose for BuiltObject {
    fn type_name(&self) -> &str {
        &self.type_name
    }

    fn getattr(&self, conn: &Connection, name: &str) -> HandlerResult {
        if let Some(v) = self.attrs.get(name) {
            return Ok(v.clone());
        }
        if let Some(g) = self.getters.get(name) {
            return g(conn);
        }
        // A bound method, so `f = obj.method; f(1)` works as in Python.
        if self.methods.contains_key(name) || self.self_methods.contains_key(name) {
            if let Some(me) = self.me.upgrade() {
                return Ok(Object::Local(Arc::new(super::MethodRef { obj: me, name: name.to_string() })));
            }
        }
        if let Some(info) = &self.service {
            match name {
                "get_service_name" => {
                    let n = info.name.clone();
                    return Ok(super::function(name, move |_, _, _| Ok(Object::from(n.as_str()))));
                }
                "get_service_aliases" => {
                    let a: Vec<Value> = info.aliases.iter().map(|s| Value::from(s.as_str())).collect();
                    return Ok(super::function(name, move |_, _, _| {
                        Ok(Object::from(Value::Tuple(a.clone())))
                    }));
                }
                _ => {}
            }
        }
        if name == "__doc__" {
            return Ok(Object::Value(Value::None));
        }
        Err(self.no_attr(name))
    }

    fn setattr(&self, conn: &Connection, name: &str, value: Object) -> HandlerResult<()> {
        match self.setters.get(name) {
            Some(s) => s(conn, value),
            None => Err(RemoteException::attribute_error(format!(
                "'{}' object attribute '{name}' is read-only",
                self.short_name()
            ))),
        }
    }

    fn call(&self, conn: &Connection, args: Vec<Object>, kwargs: Kwargs) -> HandlerResult {
        self.invoke(conn, "__call__", args, kwargs).unwrap_or_else(|| {
            Err(RemoteException::type_error(format!("'{}' object is not callable", self.short_name())))
        })
    }

    fn call_method(&self, conn: &Connection, name: &str, args: Vec<Object>, kwargs: Kwargs) -> HandlerResult {
        // `obj.__repr__()` and the like in one CALLATTR, for an object
        // that does not define its own.
        let own = self.methods.contains_key(name) || self.self_methods.contains_key(name);
        if super::is_object_dunder(name) && !own {
            if let Some(me) = self.me.upgrade() {
                let me: Arc<dyn Expose> = me;
                return super::object_dunder(&me, conn, name, args);
            }
        }
        match self.invoke(conn, name, args, kwargs) {
            Some(r) => r,
            None => match self.getattr(conn, name)? {
                Object::Local(f) => f.call(conn, Vec::new(), Vec::new()),
                _ => Err(RemoteException::type_error(format!("'{name}' is not callable"))),
            },
        }
    }

    fn repr(&self, conn: &Connection) -> HandlerResult<String> {
        if let Some(r) = &self.repr {
            return Ok(r());
        }
        if self.methods.contains_key("__repr__") {
            return String::from_object(self.call_method(conn, "__repr__", Vec::new(), Vec::new())?)
                .map_err(|e| RemoteException::type_error(e.to_string()));
        }
        Ok(format!("<{} object>", self.type_name))
    }

    fn str(&self, conn: &Connection) -> HandlerResult<String> {
        if self.methods.contains_key("__str__") {
            return String::from_object(self.call_method(conn, "__str__", Vec::new(), Vec::new())?)
                .map_err(|e| RemoteException::type_error(e.to_string()));
        }
        self.repr(conn)
    }

    fn dir(&self, _conn: &Connection) -> Vec<String> {
        let mut names: Vec<String> = self
            .methods
            .keys()
            .chain(self.self_methods.keys())
            .chain(self.attrs.keys())
            .chain(self.getters.keys())
            .cloned()
            .collect();
        if self.service.is_some() {
            names.extend(["get_service_name".to_string(), "get_service_aliases".to_string()]);
        }
        names.sort();
        names.dedup();
        names
    }

    fn methods(&self) -> Vec<(String, Option<String>)> {
        let mut m: Vec<_> = self.methods.iter().map(|(k, v)| (k.clone(), v.doc.clone())).collect();
        m.extend(self.self_methods.keys().map(|k| (k.clone(), None)));
        if self.service.is_some() {
            m.push(("get_service_name".into(), None));
            m.push(("get_service_aliases".into(), None));
        }
        m.sort();
        m
    }

    fn compare(&self, conn: &Connection, op: &str, other: &Object) -> HandlerResult {
        if self.methods.contains_key(op) {
            return self.call_method(conn, op, vec![other.clone()], Vec::new());
        }
        Ok(super::identity_compare(self as *const Self as *const (), op, other))
    }

    fn on_connect(&self, conn: &Connection) {
        if let Some(h) = self.service.as_ref().and_then(|s| s.on_connect.as_ref()) {
            h(conn);
        }
    }

    fn on_disconnect(&self, conn: &Connection) {
        if let Some(h) = self.service.as_ref().and_then(|s| s.on_disconnect.as_ref()) {
            h(conn);
        }
    }
}

/// An iterator over `items` for the peer: what an exposed object's
/// `__iter__` returns, so `for x in obj` works on a Python client (Python's
/// `iter()` insists on an iterator, not a tuple).
pub fn iterator<I>(items: I) -> Object
where
    I: IntoIterator<Item = Object>,
    I::IntoIter: Send + 'static,
{
    let it: parking_lot::Mutex<Box<dyn Iterator<Item = Object> + Send>> =
        parking_lot::Mutex::new(Box::new(items.into_iter()));
    ObjectBuilder::new("rpyc_rs.Iterator")
        .method("__next__", move || -> HandlerResult {
            it.lock().next().ok_or_else(RemoteException::stop_iteration)
        })
        .self_method("__iter__", || {})
        .into_object()
}

/// A service: the root object a side exposes, with rpyc's service name and
/// aliases, and connect/disconnect hooks.
///
/// Made with [`Service::builder`]; hand its root to a
/// [`ServerBuilder`](crate::ServerBuilder) factory or to
/// [`Connection::new`](crate::Connection::new).
pub struct Service;

impl Service {
    /// Starts a service named `name` (rpyc strips a trailing `Service` and
    /// upper-cases it for `get_service_name()`; so do we).
    pub fn builder(name: &str) -> ServiceBuilder {
        let base = name.strip_suffix("Service").filter(|s| !s.is_empty()).unwrap_or(name);
        let mut b = ObjectBuilder::new(format!("rpyc_rs.{name}"));
        b.obj.service = Some(ServiceInfo {
            name: base.to_uppercase(),
            aliases: vec![base.to_uppercase()],
            on_connect: None,
            on_disconnect: None,
        });
        ServiceBuilder { b }
    }
}

/// Builds a service (see [`Service::builder`]).
pub struct ServiceBuilder {
    b: ObjectBuilder,
}

impl ServiceBuilder {
    /// Adds an exposed method (see [`ObjectBuilder::method`]).
    pub fn method<M: Method<Marker>, Marker>(mut self, name: &str, m: M) -> Self {
        self.b = self.b.method(name, m);
        self
    }
    /// Names a method's parameters (see [`ObjectBuilder::params`]).
    pub fn params(mut self, method: &str, names: &[&str]) -> Self {
        self.b = self.b.params(method, names);
        self
    }
    /// Sets a method's docstring.
    pub fn doc(mut self, method: &str, doc: &str) -> Self {
        self.b = self.b.doc(method, doc);
        self
    }
    /// Adds a constant exposed attribute.
    pub fn attribute(mut self, name: &str, value: impl Into<Object>) -> Self {
        self.b = self.b.attribute(name, value);
        self
    }
    /// Adds a computed exposed attribute.
    pub fn property<R: IntoReturn>(mut self, name: &str, f: impl Fn() -> R + Send + Sync + 'static) -> Self {
        self.b = self.b.property(name, f);
        self
    }
    /// Adds an alias; the first name stays the service name.
    pub fn alias(mut self, alias: &str) -> Self {
        if let Some(s) = &mut self.b.obj.service {
            s.aliases.push(alias.to_uppercase());
        }
        self
    }
    /// Runs `f` when a connection starts.
    pub fn on_connect(mut self, f: impl Fn(&Connection) + Send + Sync + 'static) -> Self {
        if let Some(s) = &mut self.b.obj.service {
            s.on_connect = Some(Arc::new(f));
        }
        self
    }
    /// Runs `f` when a connection ends.
    pub fn on_disconnect(mut self, f: impl Fn(&Connection) + Send + Sync + 'static) -> Self {
        if let Some(s) = &mut self.b.obj.service {
            s.on_disconnect = Some(Arc::new(f));
        }
        self
    }
    /// The service, ready to serve.
    pub fn build(self) -> Arc<dyn Expose> {
        self.b.build()
    }
}
