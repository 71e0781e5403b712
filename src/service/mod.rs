//! Services: what a side exposes to its peer.
//!
//! Any Rust object the peer can reach (the root service, a callback, an
//! object a method returned) implements [`Expose`]. The engine turns each
//! request the peer sends (GETATTR, CALL, CALLATTR, REPR, ...) into a call of
//! one of its methods, after applying the attribute policy of the
//! connection's [`Config`](crate::protocol::Config): names with the
//! `exposed_` prefix reach the plain name, private names are refused with
//! `AttributeError` unless they are on rpyc's list of safe dunders, and
//! setattr/delattr are refused unless enabled.
//!
//! Errors are [`RemoteException`]s: a Python peer sees the matching builtin
//! exception (`ValueError`, `KeyError`, ...) with our traceback text.
//!
//! Two ways to write one: implement [`Expose`] on your own type (full
//! control, state in fields), or assemble one from typed closures with
//! [`Service::builder`] and [`ObjectBuilder`].
//!
//! An object with state, by hand (the builder's version of a service is in the
//! [crate docs](crate)):
//!
//! ```
//! use std::sync::atomic::{AtomicI64, Ordering};
//! use rpyc_rs::service::{Expose, HandlerResult};
//! use rpyc_rs::{Connection, Object, RemoteException};
//!
//! struct Counter(AtomicI64);
//!
//! impl Expose for Counter {
//!     fn type_name(&self) -> &str {
//!         "demo.Counter"
//!     }
//!     // counter.value from Python
//!     fn getattr(&self, _conn: &Connection, name: &str) -> HandlerResult {
//!         match name {
//!             "value" => Ok(Object::from(self.0.load(Ordering::SeqCst))),
//!             _ => Err(RemoteException::attribute_error(format!("'Counter' object has no attribute '{name}'"))),
//!         }
//!     }
//! }
//! ```

mod args;
mod builder;
// The demo service of `rpyc-rs serve` (also used by tests and benches):
// public for them, not part of the supported API.
#[doc(hidden)]
pub mod demo;

pub use args::{Args, IntoReturn, Method, RawArgs};
pub use builder::{iterator, BuiltObject, ObjectBuilder, Service, ServiceBuilder};

use std::sync::Arc;

use crate::protocol::{Connection, Object, RemoteException};

/// The result of a handler: an object, or an exception for the peer.
pub type HandlerResult<T = Object> = Result<T, RemoteException>;

/// Keyword arguments as they arrive: `(name, value)` pairs in call order.
pub type Kwargs = Vec<(String, Object)>;

/// A Rust object the peer can use through a netref.
///
/// Every method has a default that behaves as a plain Python object without
/// that feature would (an `AttributeError`, a `TypeError`, ...), so an
/// implementation writes only what it supports.
///
/// Implement it for a type whose state the peer should reach; for a set of
/// functions or a simple object, [`Service::builder`] and [`ObjectBuilder`] are
/// shorter.
pub trait Expose: Send + Sync + 'static {
    /// The `"module.ClassName"` the peer sees as the name pack of the id
    /// pack. Names of builtin types (`"builtins.function"`) let a Python
    /// peer build its proxy class without an INSPECT round trip.
    fn type_name(&self) -> &str {
        "rpyc_rs.RustObject"
    }

    /// `getattr(obj, name)`, after the policy check. The default has
    /// only `__doc__` (None), which every Python object has; the other
    /// dunders every object has and rpyc's `safe_attrs` lets a peer reach
    /// (`__repr__`, `__str__`, `__hash__`, `__eq__`, `__format__`,
    /// `__new__`, ...) are answered for any object from its `repr`, `str`,
    /// `hash` and `compare`.
    fn getattr(&self, _conn: &Connection, name: &str) -> HandlerResult {
        if name == "__doc__" {
            return Ok(Object::Value(crate::brine::Value::None));
        }
        Err(RemoteException::attribute_error(format!(
            "'{}' object has no attribute '{name}'",
            short_name(self.type_name())
        )))
    }

    /// `setattr(obj, name, value)`, when the connection allows setattr.
    fn setattr(&self, _conn: &Connection, name: &str, _value: Object) -> HandlerResult<()> {
        Err(RemoteException::attribute_error(format!(
            "'{}' object attribute '{name}' is read-only",
            short_name(self.type_name())
        )))
    }

    /// `delattr(obj, name)`, when the connection allows delattr.
    fn delattr(&self, _conn: &Connection, name: &str) -> HandlerResult<()> {
        Err(RemoteException::attribute_error(format!(
            "'{}' object attribute '{name}' cannot be deleted",
            short_name(self.type_name())
        )))
    }

    /// `obj(*args, **kwargs)`.
    fn call(&self, _conn: &Connection, _args: Vec<Object>, _kwargs: Kwargs) -> HandlerResult {
        Err(RemoteException::type_error(format!("'{}' object is not callable", short_name(self.type_name()))))
    }

    /// `obj.name(*args, **kwargs)` in one round trip (CALLATTR). The default
    /// fetches the attribute and calls it.
    fn call_method(&self, conn: &Connection, name: &str, args: Vec<Object>, kwargs: Kwargs) -> HandlerResult {
        match self.getattr(conn, name)? {
            Object::Local(f) => f.call(conn, args, kwargs),
            Object::Remote(r) => r.call_with(args, kwargs).map_err(|e| match e {
                crate::protocol::Error::Remote(exc) => exc,
                other => RemoteException::runtime_error(other.to_string()),
            }),
            other => {
                Err(RemoteException::type_error(format!("'{}' object is not callable", other.type_name())))
            }
        }
    }

    /// `repr(obj)`.
    fn repr(&self, _conn: &Connection) -> HandlerResult<String> {
        Ok(format!("<{} object>", self.type_name()))
    }

    /// `str(obj)`; defaults to the repr, as in Python.
    fn str(&self, conn: &Connection) -> HandlerResult<String> {
        self.repr(conn)
    }

    /// `hash(obj)`; `None` uses the object's identity, as Python does.
    fn hash(&self, _conn: &Connection) -> HandlerResult<Option<i64>> {
        Ok(None)
    }

    /// `dir(obj)`: the names a user can reach.
    fn dir(&self, _conn: &Connection) -> Vec<String> {
        self.methods().into_iter().map(|(n, _)| n).collect()
    }

    /// The methods the peer's proxy class should have, with docstrings: what
    /// INSPECT answers. List the dunders the object supports (`__len__`,
    /// `__iter__`, `__next__`, `__getitem__`, `__call__`, `__enter__`,
    /// `__exit__`, ...) so a Python proxy gets `len()`, iteration, `with`...
    fn methods(&self) -> Vec<(String, Option<String>)> {
        Vec::new()
    }

    /// Called on a connection's root when the connection starts (rpyc's
    /// `Service.on_connect`).
    fn on_connect(&self, _conn: &Connection) {}

    /// Called on a connection's root when the connection ends (rpyc's
    /// `Service.on_disconnect`).
    fn on_disconnect(&self, _conn: &Connection) {}

    /// `type(obj).<op>(obj, other)` for the rich comparisons (`"__eq__"`,
    /// `"__lt__"`, ...). The default is identity equality, as for a plain
    /// Python object.
    fn compare(&self, _conn: &Connection, op: &str, other: &Object) -> HandlerResult {
        Ok(identity_compare(self as *const Self as *const (), op, other))
    }
}

/// Python's default rich comparison: `==` and `!=` by identity, anything
/// else `NotImplemented`. `this` is the address of the object compared.
pub(crate) fn identity_compare(this: *const (), op: &str, other: &Object) -> Object {
    let same = match other {
        Object::Local(o) => std::ptr::addr_eq(Arc::as_ptr(o), this),
        _ => false,
    };
    match op {
        "__eq__" => Object::from(same),
        "__ne__" => Object::from(!same),
        _ => Object::Value(crate::brine::Value::NotImplemented),
    }
}

fn short_name(type_name: &str) -> &str {
    type_name.rsplit('.').next().unwrap_or(type_name)
}

/// A Rust closure exposed as a Python-callable function.
///
/// Made by [`function`], the way to pass a Rust closure as a callback argument.
pub struct Function<F> {
    name: String,
    f: F,
}

impl<F> Function<F>
where
    F: Fn(&Connection, Vec<Object>, Kwargs) -> HandlerResult + Send + Sync + 'static,
{
    /// Wraps `f`, shown to the peer under `name`.
    pub fn new(name: impl Into<String>, f: F) -> Self {
        Function { name: name.into(), f }
    }
}

impl<F> Expose for Function<F>
where
    F: Fn(&Connection, Vec<Object>, Kwargs) -> HandlerResult + Send + Sync + 'static,
{
    fn type_name(&self) -> &str {
        // A Python peer has a prebuilt proxy class for functions.
        "builtins.function"
    }
    fn call(&self, conn: &Connection, args: Vec<Object>, kwargs: Kwargs) -> HandlerResult {
        (self.f)(conn, args, kwargs)
    }
    fn getattr(&self, _conn: &Connection, name: &str) -> HandlerResult {
        match name {
            "__name__" | "__qualname__" => Ok(Object::from(self.name.as_str())),
            "__doc__" | "__module__" => Ok(Object::from(crate::brine::Value::None)),
            _ => {
                Err(RemoteException::attribute_error(format!("'function' object has no attribute '{name}'")))
            }
        }
    }
    fn call_method(&self, conn: &Connection, name: &str, args: Vec<Object>, kwargs: Kwargs) -> HandlerResult {
        match name {
            "__call__" => self.call(conn, args, kwargs),
            _ => {
                Err(RemoteException::attribute_error(format!("'function' object has no attribute '{name}'")))
            }
        }
    }
    fn repr(&self, _conn: &Connection) -> HandlerResult<String> {
        Ok(format!("<function {}>", self.name))
    }
    fn methods(&self) -> Vec<(String, Option<String>)> {
        vec![("__call__".into(), None)]
    }
}

/// Wraps a closure as an [`Object`] the peer can call:
/// `rpyc_rs::service::function("on_event", |_conn, args, _kw| Ok(args[0].clone()))`.
pub fn function<F>(name: &str, f: F) -> Object
where
    F: Fn(&Connection, Vec<Object>, Kwargs) -> HandlerResult + Send + Sync + 'static,
{
    Object::Local(Arc::new(Function::new(name, f)))
}

/// The methods every Python object has that rpyc's `safe_attrs` lets a
/// peer reach: a Rust object without its own answers them from
/// [`Expose::repr`], [`Expose::str`], [`Expose::hash`] and
/// [`Expose::compare`], as a plain Python object would.
const OBJECT_DUNDERS: &[&str] = &[
    "__repr__",
    "__str__",
    "__hash__",
    "__eq__",
    "__ne__",
    "__lt__",
    "__le__",
    "__gt__",
    "__ge__",
    "__format__",
    "__new__",
];

/// True for a name in [`OBJECT_DUNDERS`]: the dispatcher then hands the
/// peer a bound method even though the object does not list it.
pub(crate) fn is_object_dunder(name: &str) -> bool {
    OBJECT_DUNDERS.contains(&name)
}

/// Calls one of [`OBJECT_DUNDERS`] on `obj` the way `object` would.
pub(crate) fn object_dunder(
    obj: &Arc<dyn Expose>,
    conn: &Connection,
    name: &str,
    args: Vec<Object>,
) -> HandlerResult {
    let mut args = args.into_iter();
    let short = short_name(obj.type_name()).to_string();
    match name {
        "__repr__" => obj.repr(conn).map(Object::from),
        "__str__" => obj.str(conn).map(Object::from),
        // The same identity hash the HASH handler answers.
        "__hash__" => {
            Ok(Object::from(obj.hash(conn)?.unwrap_or(Arc::as_ptr(obj) as *const () as usize as i64 >> 4)))
        }
        "__format__" => {
            let spec = match args.next() {
                Some(Object::Value(crate::brine::Value::Str(s))) => s,
                Some(other) => {
                    return Err(RemoteException::type_error(format!(
                        "__format__() argument must be str, not {}",
                        other.type_name()
                    )))
                }
                None => {
                    return Err(RemoteException::type_error(
                        "__format__() takes exactly one argument (0 given)",
                    ))
                }
            };
            if spec.is_empty() {
                obj.str(conn).map(Object::from)
            } else {
                Err(RemoteException::type_error(format!(
                    "unsupported format string passed to {short}.__format__"
                )))
            }
        }
        "__new__" => Err(RemoteException::type_error(format!("cannot create '{short}' instances"))),
        op => match args.next() {
            Some(other) => obj.compare(conn, op, &other),
            None => Err(RemoteException::type_error(format!("expected 1 argument, got 0 for {op}"))),
        },
    }
}

/// `obj.name` for a method the object lists in [`Expose::methods`] but does
/// not return from [`Expose::getattr`]: a callable that runs
/// `obj.call_method(name, ...)`. A Python client reaches methods by
/// attribute (`obj.keys()` is GETATTR, then CALL), so hand-written objects
/// that only implement `call_method` still work.
pub(crate) struct MethodRef {
    pub(crate) obj: Arc<dyn Expose>,
    pub(crate) name: String,
}

impl Expose for MethodRef {
    fn type_name(&self) -> &str {
        // A Python peer has a prebuilt proxy class for methods.
        "builtins.method"
    }
    fn call(&self, conn: &Connection, args: Vec<Object>, kwargs: Kwargs) -> HandlerResult {
        if is_object_dunder(&self.name) && !self.obj.methods().iter().any(|(m, _)| *m == self.name) {
            return object_dunder(&self.obj, conn, &self.name, args);
        }
        self.obj.call_method(conn, &self.name, args, kwargs)
    }
    fn getattr(&self, _conn: &Connection, name: &str) -> HandlerResult {
        match name {
            "__name__" | "__qualname__" => Ok(Object::from(self.name.as_str())),
            // The method's docstring, as INSPECT lists it.
            "__doc__" => {
                let doc = self.obj.methods().into_iter().find(|(m, _)| *m == self.name).and_then(|(_, d)| d);
                Ok(Object::from(doc.map_or(crate::brine::Value::None, crate::brine::Value::Str)))
            }
            _ => Err(RemoteException::attribute_error(format!("'method' object has no attribute '{name}'"))),
        }
    }
    fn call_method(&self, conn: &Connection, name: &str, args: Vec<Object>, kwargs: Kwargs) -> HandlerResult {
        match name {
            "__call__" => self.call(conn, args, kwargs),
            _ => Err(RemoteException::attribute_error(format!("'method' object has no attribute '{name}'"))),
        }
    }
    fn repr(&self, _conn: &Connection) -> HandlerResult<String> {
        Ok(format!("<bound method {} of {} object>", self.name, self.obj.type_name()))
    }
    fn methods(&self) -> Vec<(String, Option<String>)> {
        vec![("__call__".into(), None)]
    }
}

/// The root a side exposes when it exposes nothing (rpyc's `VoidService`).
///
/// Use it as the root when a side offers its peer nothing, as a plain
/// `rpyc.connect` client does.
pub struct VoidService;

impl Expose for VoidService {
    fn type_name(&self) -> &str {
        "rpyc.core.service.VoidService"
    }
    fn getattr(&self, _conn: &Connection, name: &str) -> HandlerResult {
        match name {
            "get_service_name" | "get_service_aliases" => {
                Ok(function(name, |_, _, _| Ok(Object::from("VOID"))))
            }
            _ => Err(RemoteException::attribute_error(format!(
                "'VoidService' object has no attribute '{name}'"
            ))),
        }
    }
    fn methods(&self) -> Vec<(String, Option<String>)> {
        vec![("get_service_name".into(), None), ("get_service_aliases".into(), None)]
    }
}
