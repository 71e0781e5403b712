//! Serving the peer's requests in the Rust object world: each handler number
//! becomes a call on an [`Expose`] object, under the connection's attribute
//! policy, and the outcome goes back as a REPLY or an EXCEPTION.
//!
//! A handler that panics is caught: the peer gets a `RuntimeError` for that
//! call and the connection keeps serving.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::brine::{Token, Value};
use crate::service::{Expose, Kwargs, MethodRef};

use super::boxing::{IdPack, Object};
use super::connection::{Connection, Inner};
use super::message::{parse_header, Handler, MSG_EXCEPTION, MSG_REPLY};
use super::vinegar::rust_traceback;
use super::{Error, RemoteException};

/// rpyc's `safe_attrs`: the dunders a peer may always reach.
pub(crate) const SAFE_ATTRS: &[&str] = &[
    "__abs__",
    "__add__",
    "__and__",
    "__bool__",
    "__cmp__",
    "__contains__",
    "__delitem__",
    "__delslice__",
    "__div__",
    "__divmod__",
    "__doc__",
    "__eq__",
    "__float__",
    "__floordiv__",
    "__ge__",
    "__getitem__",
    "__getslice__",
    "__gt__",
    "__hash__",
    "__hex__",
    "__iadd__",
    "__iand__",
    "__idiv__",
    "__ifloordiv__",
    "__ilshift__",
    "__imod__",
    "__imul__",
    "__index__",
    "__int__",
    "__invert__",
    "__ior__",
    "__ipow__",
    "__irshift__",
    "__isub__",
    "__iter__",
    "__itruediv__",
    "__ixor__",
    "__le__",
    "__len__",
    "__long__",
    "__lshift__",
    "__lt__",
    "__mod__",
    "__mul__",
    "__ne__",
    "__neg__",
    "__new__",
    "__nonzero__",
    "__oct__",
    "__or__",
    "__pos__",
    "__pow__",
    "__radd__",
    "__rand__",
    "__rdiv__",
    "__rdivmod__",
    "__repr__",
    "__rfloordiv__",
    "__rlshift__",
    "__rmod__",
    "__rmul__",
    "__ror__",
    "__rpow__",
    "__rrshift__",
    "__rshift__",
    "__rsub__",
    "__rtruediv__",
    "__rxor__",
    "__setitem__",
    "__setslice__",
    "__str__",
    "__sub__",
    "__truediv__",
    "__xor__",
    "next",
    "__length_hint__",
    "__enter__",
    "__exit__",
    "__next__",
    "__format__",
];

type Outcome = Result<Object, RemoteException>;

fn protocol_exc(e: Error) -> RemoteException {
    match e {
        Error::Remote(exc) => exc,
        Error::Type { expected, found } => {
            RemoteException::type_error(format!("expected {expected}, got {found}"))
        }
        other => RemoteException::value_error(other.to_string()),
    }
}

/// Serves one request payload and sends the answer.
pub(crate) fn serve_request(inner: &Inner, seq: i64, payload: Vec<u8>) {
    let conn = Connection::from_inner(inner.strong());
    let mut handler_used = None;
    let outcome = catch_unwind(AssertUnwindSafe(|| handle(&conn, &payload, &mut handler_used)))
        .unwrap_or_else(|panic| {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "handler panicked".into());
            Err(RemoteException::runtime_error(format!("Rust handler panicked: {msg}")))
        });
    // The arguments (and any proxies in them) are released before replying.
    drop(payload);
    let mut frame = Vec::with_capacity(64);
    let sent = match &outcome {
        Ok(obj) => {
            inner.core.begin_message(&mut frame, MSG_REPLY, seq);
            inner.put_boxed(obj, &mut frame)
        }
        Err(_) => Err(Error::protocol("")),
    };
    if let Err(e) = sent {
        let mut exc = match outcome {
            Ok(_) => RemoteException::value_error(format!("cannot send the result: {e}")),
            Err(exc) => exc,
        };
        if exc.traceback.is_empty() && inner.config.include_local_traceback {
            let ctx = handler_used.map_or("request".to_string(), |h| format!("{h:?}"));
            exc.traceback = rust_traceback(&ctx, &exc);
        }
        inner.core.begin_message(&mut frame, MSG_EXCEPTION, seq);
        if exc.encode_into(&mut frame).is_err() {
            inner.core.begin_message(&mut frame, MSG_EXCEPTION, seq);
            let _ = RemoteException::value_error("unencodable exception").encode_into(&mut frame);
        }
    }
    let _ = inner.core.send(&mut frame);
    if handler_used == Some(Handler::Close) {
        inner.shutdown("the peer closed the connection");
    }
}

fn handle(conn: &Connection, payload: &[u8], used: &mut Option<Handler>) -> Outcome {
    let inner = conn.inner();
    let opts = inner.config.decode_options();
    let header = parse_header(payload, opts).map_err(protocol_exc)?;
    let mut dec = header.body;
    let bad = || RemoteException::value_error("malformed request");
    if dec.next_token().map_err(|e| protocol_exc(e.into()))? != Token::Tuple(2) {
        return Err(bad());
    }
    let number = match dec.next_token().map_err(|e| protocol_exc(e.into()))? {
        Token::Int(n) => n,
        _ => return Err(bad()),
    };
    let handler = Handler::from_number(number)
        .ok_or_else(|| RemoteException::value_error(format!("unknown request handler {number}")))?;
    *used = Some(handler);
    let args = inner.read_boxed(&mut dec).and_then(Object::into_items).map_err(protocol_exc)?;
    run(conn, handler, args)
}

fn arg(args: &mut std::vec::IntoIter<Object>) -> Object {
    args.next().unwrap_or(Object::Value(Value::None))
}

fn local(obj: Object) -> Result<Arc<dyn Expose>, RemoteException> {
    match obj {
        Object::Local(o) => Ok(o),
        other => Err(RemoteException::type_error(format!(
            "expected one of our objects, got {}",
            other.type_name()
        ))),
    }
}

fn name_of(obj: Object) -> Result<String, RemoteException> {
    match obj {
        Object::Value(Value::Str(s)) => Ok(s),
        Object::Value(Value::Bytes(b)) => {
            String::from_utf8(b).map_err(|_| RemoteException::type_error("name must be a string"))
        }
        _ => Err(RemoteException::type_error("name must be a string")),
    }
}

fn kwargs_of(obj: Object) -> Result<Kwargs, RemoteException> {
    let items = obj.into_items().map_err(protocol_exc)?;
    items
        .into_iter()
        .map(|kv| {
            let mut kv = kv.into_items().map_err(protocol_exc)?.into_iter();
            Ok((name_of(arg(&mut kv))?, arg(&mut kv)))
        })
        .collect()
}

fn count_of(obj: Object) -> Result<usize, RemoteException> {
    match obj {
        Object::Value(Value::Int(n)) if n >= 0 => Ok(n as usize),
        _ => Err(RemoteException::type_error("count must be a non-negative int")),
    }
}

fn run(conn: &Connection, handler: Handler, args: Vec<Object>) -> Outcome {
    let inner = conn.inner();
    let mut a = args.into_iter();
    match handler {
        Handler::Ping => Ok(arg(&mut a)),
        Handler::Close => Ok(Object::Value(Value::None)),
        Handler::GetRoot => Ok(Object::Local(inner.root.clone())),
        Handler::GetAttr => {
            let obj = local(arg(&mut a))?;
            let name = inner.config.policy.check(&name_of(arg(&mut a))?, Access::Get)?;
            match obj.getattr(conn, &name) {
                Err(e)
                    if e.is("AttributeError")
                        && (crate::service::is_object_dunder(&name)
                            || obj.methods().iter().any(|(m, _)| *m == name)) =>
                {
                    Ok(Object::Local(Arc::new(MethodRef { obj, name })))
                }
                other => other,
            }
        }
        Handler::SetAttr => {
            let obj = local(arg(&mut a))?;
            let name = inner.config.policy.check(&name_of(arg(&mut a))?, Access::Set)?;
            obj.setattr(conn, &name, arg(&mut a)).map(|()| Object::Value(Value::None))
        }
        Handler::DelAttr => {
            let obj = local(arg(&mut a))?;
            let name = inner.config.policy.check(&name_of(arg(&mut a))?, Access::Del)?;
            obj.delattr(conn, &name).map(|()| Object::Value(Value::None))
        }
        Handler::Call => {
            let obj = local(arg(&mut a))?;
            let args = arg(&mut a).into_items().map_err(protocol_exc)?;
            obj.call(conn, args, kwargs_of(arg(&mut a))?)
        }
        Handler::CallAttr => {
            let obj = local(arg(&mut a))?;
            let name = inner.config.policy.check(&name_of(arg(&mut a))?, Access::Get)?;
            let args = arg(&mut a).into_items().map_err(protocol_exc)?;
            obj.call_method(conn, &name, args, kwargs_of(arg(&mut a))?)
        }
        Handler::Repr => local(arg(&mut a))?.repr(conn).map(Object::from),
        Handler::Str => local(arg(&mut a))?.str(conn).map(Object::from),
        Handler::Hash => {
            let obj = local(arg(&mut a))?;
            let h = obj.hash(conn)?.unwrap_or(Arc::as_ptr(&obj) as *const () as usize as i64 >> 4);
            Ok(Object::from(h))
        }
        Handler::Dir => {
            let names = local(arg(&mut a))?.dir(conn);
            Ok(Object::from(Value::Tuple(names.into_iter().map(Value::Str).collect())))
        }
        Handler::Cmp => {
            let obj = local(arg(&mut a))?;
            let other = arg(&mut a);
            let op = match arg(&mut a) {
                Object::Value(Value::None) => "__cmp__".to_string(),
                o => name_of(o)?,
            };
            let op = inner.config.policy.check(&op, Access::Get)?;
            obj.compare(conn, &op, &other)
        }
        Handler::Pickle => Err(RemoteException::value_error("pickling is disabled")),
        Handler::Del => {
            let obj = local(arg(&mut a))?;
            let count = match arg(&mut a) {
                Object::Value(Value::None) => 1,
                c => count_of(c)? as u64,
            };
            let removed = inner
                .locals
                .decref(&IdPack::of_local(&obj), count)
                .map_err(|()| RemoteException::key_error("object not held"))?;
            drop(removed);
            Ok(Object::Value(Value::None))
        }
        Handler::Inspect => {
            let id = arg(&mut a).into_value().ok().as_ref().and_then(IdPack::from_value);
            let obj = id
                .and_then(|id| inner.locals.get(&id))
                .ok_or_else(|| RemoteException::key_error("unknown id pack"))?;
            let methods = obj
                .methods()
                .into_iter()
                .map(|(n, d)| Value::Tuple(vec![Value::Str(n), d.map_or(Value::None, Value::Str)]))
                .collect();
            Ok(Object::from(Value::Tuple(methods)))
        }
        Handler::BuffIter => {
            let obj = local(arg(&mut a))?;
            let count = count_of(arg(&mut a))?;
            let mut items = Vec::new();
            while items.len() < count {
                match obj.call_method(conn, "__next__", Vec::new(), Vec::new()) {
                    Ok(x) => items.push(x),
                    Err(e) if e.is("StopIteration") => break,
                    Err(e) => return Err(e),
                }
            }
            Ok(Object::tuple(items))
        }
        Handler::OldSlicing => {
            let obj = local(arg(&mut a))?;
            let attempt = name_of(arg(&mut a))?;
            let _fallback = arg(&mut a);
            let start = arg(&mut a).into_value().unwrap_or(Value::None);
            let stop = arg(&mut a).into_value().unwrap_or(Value::None);
            let mut call_args = vec![Object::from(Value::slice(start, stop, Value::None))];
            call_args.extend(arg(&mut a).into_items().unwrap_or_default());
            let attempt = inner.config.policy.check(&attempt, Access::Get)?;
            obj.call_method(conn, &attempt, call_args, Vec::new())
        }
        Handler::CtxExit => {
            let obj = local(arg(&mut a))?;
            let exc = arg(&mut a);
            let none = || Object::Value(Value::None);
            let args = match &exc {
                Object::Value(Value::None) => vec![none(), none(), none()],
                _ => vec![exc, none(), none()],
            };
            obj.call_method(conn, "__exit__", args, Vec::new())
        }
        // We expose no classes, so nothing is an instance of one of ours.
        Handler::InstanceCheck => Ok(Object::from(false)),
    }
}

/// Which attribute operation a policy check is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Get,
    Set,
    Del,
}

/// rpyc's attribute policy for the objects we serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPolicy {
    /// Allow any name, private ones included (`allow_all_attrs`).
    pub allow_all_attrs: bool,
    /// Allow names on rpyc's safe list of dunders (`allow_safe_attrs`).
    pub allow_safe_attrs: bool,
    /// Allow the peer to set attributes (`allow_setattr`).
    pub allow_setattr: bool,
    /// Allow the peer to delete attributes (`allow_delattr`).
    pub allow_delattr: bool,
    /// The prefix that marks exposed names (`exposed_`): the peer may use
    /// `exposed_add` or `add` alike.
    pub exposed_prefix: String,
}

impl Default for AttrPolicy {
    fn default() -> Self {
        AttrPolicy {
            allow_all_attrs: false,
            allow_safe_attrs: true,
            allow_setattr: false,
            allow_delattr: false,
            exposed_prefix: "exposed_".into(),
        }
    }
}

impl AttrPolicy {
    /// The name an object is asked for, or the AttributeError the peer gets.
    pub(crate) fn check(&self, name: &str, access: Access) -> Result<String, RemoteException> {
        let denied = || RemoteException::attribute_error(format!("cannot access '{name}'"));
        match access {
            Access::Set if !self.allow_setattr => return Err(denied()),
            Access::Del if !self.allow_delattr => return Err(denied()),
            _ => {}
        }
        let plain = match name.strip_prefix(self.exposed_prefix.as_str()) {
            Some(rest) if !self.exposed_prefix.is_empty() => rest,
            _ => name,
        };
        if self.allow_all_attrs || !plain.starts_with('_') {
            return Ok(plain.to_string());
        }
        if self.allow_safe_attrs && SAFE_ATTRS.contains(&plain) {
            return Ok(plain.to_string());
        }
        Err(denied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_like_rpyc() {
        let p = AttrPolicy::default();
        assert_eq!(p.check("exposed_add", Access::Get).unwrap(), "add");
        assert_eq!(p.check("add", Access::Get).unwrap(), "add");
        assert_eq!(p.check("__len__", Access::Get).unwrap(), "__len__");
        assert!(p.check("_secret", Access::Get).is_err());
        assert!(p.check("__dict__", Access::Get).is_err());
        assert!(p.check("x", Access::Set).is_err());
        let open = AttrPolicy { allow_all_attrs: true, allow_setattr: true, ..AttrPolicy::default() };
        assert_eq!(open.check("_secret", Access::Set).unwrap(), "_secret");
    }
}
