//! Netrefs: Rust handles to objects that live on the peer.
//!
//! The connection keeps one proxy per id pack while any handle to it lives
//! (the proxy cache holds it weakly). Each time the peer sends a reference to
//! an object that already has a live proxy, the proxy's own count goes up by
//! one, mirroring the peer's table; when the last handle is dropped, the
//! proxy sends `DEL(obj, count)` without waiting for the reply. That keeps
//! the peer's refcounts exact: nothing leaks, nothing is freed early.
//!
//! Operations map onto handlers the way rpyc's netref classes map them:
//! attribute access is GETATTR, a method call is one CALLATTR, `len(x)` is
//! CALLATTR of `__len__`, and so on.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::brine::Value;
use crate::service::{Expose, HandlerResult, Kwargs};

use super::boxing::{IdPack, Object};
use super::connection::{AsyncResult, Connection, Inner};
use super::convert::{FromObject, IntoArgs};
use super::message::{begin_request, Handler};
use super::{Error, RemoteException, Result};

pub(crate) struct ProxyInner {
    conn: Arc<Inner>,
    id: IdPack,
    refcount: AtomicU64,
}

impl Drop for ProxyInner {
    fn drop(&mut self) {
        let conn = &self.conn;
        {
            let mut cache = conn.proxies.lock();
            // A new proxy may already have replaced this one in the cache.
            if cache.get(&self.id).is_some_and(|w| w.strong_count() == 0) {
                cache.remove(&self.id);
            }
        }
        if conn.core.is_closed() {
            return;
        }
        let seq = conn.core.next_seq();
        let count = self.refcount.load(Ordering::Acquire);
        if let Ok(frame) = del_frame(seq, &self.id, count, conn.core.legacy_framing()) {
            conn.core.send_deferred(frame);
        }
    }
}

/// `DEL(obj, count)`: `(LABEL_TUPLE, ((LABEL_LOCAL_REF, id), (LABEL_VALUE, count)))`.
/// Built by hand because it runs in the proxy's destructor, where no handle
/// to the proxy can be made any more.
fn del_frame(seq: i64, id: &IdPack, count: u64, legacy: bool) -> Result<Vec<u8>> {
    use super::boxing::{LABEL_LOCAL_REF, LABEL_TUPLE, LABEL_VALUE};
    use crate::brine::{put_int, put_tuple_header};
    let mut f = Vec::with_capacity(64);
    begin_request(&mut f, seq, Handler::Del, legacy);
    put_tuple_header(&mut f, 2)?;
    put_int(&mut f, LABEL_TUPLE);
    put_tuple_header(&mut f, 2)?;
    put_tuple_header(&mut f, 2)?;
    put_int(&mut f, LABEL_LOCAL_REF);
    id.encode_into(&mut f)?;
    put_tuple_header(&mut f, 2)?;
    put_int(&mut f, LABEL_VALUE);
    put_int(&mut f, count.min(i64::MAX as u64) as i64);
    Ok(f)
}

/// A handle to an object on the peer. Cloning is cheap and shares the proxy.
///
/// You get one from [`Connection::root`](crate::Connection::root) or from any
/// result the peer sends by reference; when the last clone is dropped the peer
/// is told (DEL), as rpyc's netrefs do.
#[derive(Clone)]
pub struct NetRef(Arc<ProxyInner>);

impl fmt::Debug for NetRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<netref {} {:#x}>", self.0.id.name, self.0.id.instance_id)
    }
}

impl Inner {
    /// The proxy for `id`, reusing a live one (and counting the reference).
    pub(crate) fn proxy(&self, id: IdPack) -> NetRef {
        let mut cache = self.proxies.lock();
        if let Some(p) = cache.get(&id).and_then(|w| w.upgrade()) {
            p.refcount.fetch_add(1, Ordering::AcqRel);
            return NetRef(p);
        }
        let conn = self.strong();
        let p = Arc::new(ProxyInner { conn, id: id.clone(), refcount: AtomicU64::new(1) });
        cache.insert(id, Arc::downgrade(&p));
        NetRef(p)
    }
}

/// The rich comparison operators, as HANDLE_CMP names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CmpOp {
    /// The dunder name (`"__eq__"`, ...).
    pub fn dunder(self) -> &'static str {
        match self {
            CmpOp::Eq => "__eq__",
            CmpOp::Ne => "__ne__",
            CmpOp::Lt => "__lt__",
            CmpOp::Le => "__le__",
            CmpOp::Gt => "__gt__",
            CmpOp::Ge => "__ge__",
        }
    }
}

impl NetRef {
    /// The id pack naming the remote object.
    pub fn id_pack(&self) -> &IdPack {
        &self.0.id
    }

    /// The connection this proxy belongs to.
    pub fn connection(&self) -> Connection {
        Connection::from_inner(self.0.conn.clone())
    }

    /// How many references the peer has sent for this proxy (what its DEL
    /// will release).
    pub fn refcount(&self) -> u64 {
        self.0.refcount.load(Ordering::Acquire)
    }

    pub(crate) fn belongs_to(&self, conn: &Inner) -> bool {
        std::ptr::eq(Arc::as_ptr(&self.0.conn), conn)
    }

    fn request(&self, handler: Handler, rest: Vec<Object>) -> Result<Object> {
        let mut args = Vec::with_capacity(rest.len() + 1);
        args.push(Object::Remote(self.clone()));
        args.extend(rest);
        self.0.conn.sync_request(handler, args)
    }

    /// `getattr(obj, name)`.
    pub fn getattr(&self, name: &str) -> Result<Object> {
        self.request(Handler::GetAttr, vec![name.into()])
    }

    /// `getattr(obj, name)` converted to `T`.
    pub fn get<T: FromObject>(&self, name: &str) -> Result<T> {
        T::from_object(self.getattr(name)?)
    }

    /// `setattr(obj, name, value)` (the peer must allow setattr).
    pub fn setattr(&self, name: &str, value: impl Into<Object>) -> Result<()> {
        self.request(Handler::SetAttr, vec![name.into(), value.into()]).map(drop)
    }

    /// `delattr(obj, name)` (the peer must allow delattr).
    pub fn delattr(&self, name: &str) -> Result<()> {
        self.request(Handler::DelAttr, vec![name.into()]).map(drop)
    }

    /// `obj(*args)`.
    pub fn call(&self, args: impl IntoArgs) -> Result<Object> {
        self.call_with(args.into_args(), Vec::new())
    }

    /// `obj(*args, **kwargs)`.
    pub fn call_with(&self, args: Vec<Object>, kwargs: Kwargs) -> Result<Object> {
        self.request(Handler::Call, vec![Object::tuple(args), kwargs_object(kwargs)])
    }

    /// `obj.name(*args)` in one round trip.
    pub fn call_method(&self, name: &str, args: impl IntoArgs) -> Result<Object> {
        self.call_method_with(name, args.into_args(), Vec::new())
    }

    /// `obj.name(*args, **kwargs)` in one round trip.
    pub fn call_method_with(&self, name: &str, args: Vec<Object>, kwargs: Kwargs) -> Result<Object> {
        self.request(Handler::CallAttr, vec![name.into(), Object::tuple(args), kwargs_object(kwargs)])
    }

    /// Starts `obj.name(*args)` without waiting for the result.
    pub fn async_call_method(&self, name: &str, args: impl IntoArgs) -> Result<AsyncResult> {
        let args = vec![
            Object::Remote(self.clone()),
            name.into(),
            Object::tuple(args.into_args()),
            kwargs_object(Vec::new()),
        ];
        self.0.conn.async_request(Handler::CallAttr, args)
    }

    /// `repr(obj)`.
    pub fn repr(&self) -> Result<String> {
        String::from_object(self.request(Handler::Repr, vec![])?)
    }

    /// `str(obj)`.
    pub fn str(&self) -> Result<String> {
        String::from_object(self.request(Handler::Str, vec![])?)
    }

    /// `hash(obj)`.
    pub fn hash(&self) -> Result<i64> {
        i64::from_object(self.request(Handler::Hash, vec![])?)
    }

    /// `dir(obj)`.
    pub fn dir(&self) -> Result<Vec<String>> {
        Vec::<String>::from_object(self.request(Handler::Dir, vec![])?)
    }

    /// A rich comparison, `type(obj).<op>(obj, other)`; may return
    /// `NotImplemented`.
    pub fn compare(&self, op: CmpOp, other: impl Into<Object>) -> Result<Object> {
        self.request(Handler::Cmp, vec![other.into(), op.dunder().into()])
    }

    /// `obj == other`, as a bool.
    pub fn eq(&self, other: impl Into<Object>) -> Result<bool> {
        match self.compare(CmpOp::Eq, other)? {
            Object::Value(Value::NotImplemented) => Ok(false),
            o => bool::from_object(o),
        }
    }

    /// `len(obj)`.
    pub fn len(&self) -> Result<usize> {
        usize::from_object(self.call_method("__len__", ())?)
    }

    /// `len(obj) == 0`.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// `obj[key]`.
    pub fn getitem(&self, key: impl Into<Object>) -> Result<Object> {
        self.call_method("__getitem__", (key.into(),))
    }

    /// `obj[key] = value`.
    pub fn setitem(&self, key: impl Into<Object>, value: impl Into<Object>) -> Result<()> {
        self.call_method("__setitem__", (key.into(), value.into())).map(drop)
    }

    /// `del obj[key]`.
    pub fn delitem(&self, key: impl Into<Object>) -> Result<()> {
        self.call_method("__delitem__", (key.into(),)).map(drop)
    }

    /// `item in obj`.
    pub fn contains(&self, item: impl Into<Object>) -> Result<bool> {
        bool::from_object(self.call_method("__contains__", (item.into(),))?)
    }

    /// `iter(obj)` as a Rust iterator that fetches one item per round trip
    /// (`__next__`), as a plain Python loop over a netref does.
    pub fn iter(&self) -> Result<RemoteIter> {
        let it = self.iter_ref()?;
        Ok(RemoteIter { it, batch: 0, buffer: Vec::new().into_iter(), done: false })
    }

    /// `iter(obj)` as a Rust iterator that fetches up to `batch` items per
    /// round trip (BUFFITER, as `rpyc.buffiter`). Items are taken from the
    /// remote iterator ahead of use.
    pub fn iter_buffered(&self, batch: usize) -> Result<RemoteIter> {
        let it = self.iter_ref()?;
        Ok(RemoteIter { it, batch: batch.max(1), buffer: Vec::new().into_iter(), done: false })
    }

    fn iter_ref(&self) -> Result<NetRef> {
        match self.call_method("__iter__", ())? {
            Object::Remote(n) => Ok(n),
            other => Err(Error::type_mismatch("an iterator", other.type_name())),
        }
    }

    /// `obj.__enter__()`.
    pub fn enter(&self) -> Result<Object> {
        self.call_method("__enter__", ())
    }

    /// `obj.__exit__(...)` through CTXEXIT, with the exception that ended the
    /// block, if any (sent as its value). True if the object suppressed it.
    pub fn exit(&self, exc: Option<Object>) -> Result<bool> {
        let r = self.request(Handler::CtxExit, vec![exc.unwrap_or(Object::Value(Value::None))])?;
        Ok(match r {
            Object::Value(Value::Bool(b)) => b,
            Object::Value(Value::None) => false,
            _ => true,
        })
    }

    /// Runs `f` inside `with obj as x:`; the object's `__exit__` sees an
    /// error `f` returns as its exception.
    pub fn with<T>(&self, f: impl FnOnce(Object) -> Result<T>) -> Result<T> {
        let x = self.enter()?;
        match f(x) {
            Ok(v) => {
                self.exit(None)?;
                Ok(v)
            }
            Err(e) => {
                let exc: Object = e.to_string().into();
                self.exit(Some(exc))?;
                Err(e)
            }
        }
    }

    /// Waits at most `timeout` for `obj.name(*args)`.
    pub fn call_method_timeout(&self, name: &str, args: impl IntoArgs, timeout: Duration) -> Result<Object> {
        self.async_call_method(name, args)?.wait(Some(timeout))
    }
}

fn kwargs_object(kwargs: Kwargs) -> Object {
    Object::tuple(kwargs.into_iter().map(|(k, v)| Object::tuple(vec![k.into(), v])).collect())
}

/// A remote iterator driven from Rust.
///
/// Made by [`NetRef::iter`] (one round trip per item) or
/// [`NetRef::iter_buffered`] (a batch per round trip).
pub struct RemoteIter {
    it: NetRef,
    batch: usize,
    buffer: std::vec::IntoIter<Object>,
    done: bool,
}

impl Iterator for RemoteIter {
    type Item = Result<Object>;

    fn next(&mut self) -> Option<Result<Object>> {
        if let Some(x) = self.buffer.next() {
            return Some(Ok(x));
        }
        if self.done {
            return None;
        }
        if self.batch == 0 {
            return match self.it.call_method("__next__", ()) {
                Ok(x) => Some(Ok(x)),
                Err(e) if e.is_stop_iteration() => {
                    self.done = true;
                    None
                }
                Err(e) => {
                    self.done = true;
                    Some(Err(e))
                }
            };
        }
        let got = self
            .it
            .request(Handler::BuffIter, vec![Object::from(self.batch as i64)])
            .and_then(Object::into_items);
        match got {
            Ok(items) if items.is_empty() => {
                self.done = true;
                None
            }
            Ok(items) => {
                if items.len() < self.batch {
                    self.done = true;
                }
                self.buffer = items.into_iter();
                self.buffer.next().map(Ok)
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

fn forward_err(e: Error) -> RemoteException {
    match e {
        Error::Remote(exc) => exc,
        other => RemoteException::runtime_error(other.to_string()),
    }
}

/// A proxy passed on to a third party is served by forwarding every
/// operation to its owner (RPyC over RPyC).
impl Expose for NetRef {
    fn type_name(&self) -> &str {
        &self.0.id.name
    }
    fn getattr(&self, _conn: &Connection, name: &str) -> HandlerResult {
        NetRef::getattr(self, name).map_err(forward_err)
    }
    fn setattr(&self, _conn: &Connection, name: &str, value: Object) -> HandlerResult<()> {
        NetRef::setattr(self, name, value).map_err(forward_err)
    }
    fn delattr(&self, _conn: &Connection, name: &str) -> HandlerResult<()> {
        NetRef::delattr(self, name).map_err(forward_err)
    }
    fn call(&self, _conn: &Connection, args: Vec<Object>, kwargs: Kwargs) -> HandlerResult {
        self.call_with(args, kwargs).map_err(forward_err)
    }
    fn call_method(
        &self,
        _conn: &Connection,
        name: &str,
        args: Vec<Object>,
        kwargs: Kwargs,
    ) -> HandlerResult {
        self.call_method_with(name, args, kwargs).map_err(forward_err)
    }
    fn repr(&self, _conn: &Connection) -> HandlerResult<String> {
        NetRef::repr(self).map_err(forward_err)
    }
    fn str(&self, _conn: &Connection) -> HandlerResult<String> {
        NetRef::str(self).map_err(forward_err)
    }
    fn hash(&self, _conn: &Connection) -> HandlerResult<Option<i64>> {
        NetRef::hash(self).map(Some).map_err(forward_err)
    }
    fn dir(&self, _conn: &Connection) -> Vec<String> {
        NetRef::dir(self).unwrap_or_default()
    }
    fn compare(&self, _conn: &Connection, op: &str, other: &Object) -> HandlerResult {
        self.request(Handler::Cmp, vec![other.clone(), op.into()]).map_err(forward_err)
    }
}
