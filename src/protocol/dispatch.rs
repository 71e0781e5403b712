//! The Rust object world's handlers: each handler number becomes a call on
//! an [`Expose`] object, under the connection's attribute policy
//! ([`super::policy`], shared with the Python world). The shared serving
//! path (`exchange.rs`) decodes the request, calls [`run`] through the
//! world's `handle` leaf, and frames the outcome.

use std::convert::Infallible;
use std::sync::Arc;

use crate::brine::Value;
use crate::service::{Expose, Kwargs, MethodRef};

use super::boxing::{IdPack, Object};
use super::connection::{Connection, Inner};
use super::message::Handler;
use super::policy::{Access, AttrProbe};
use super::{Error, RemoteException};

type Outcome = Result<Object, RemoteException>;

/// An engine or protocol error as the exception the peer gets.
pub(crate) fn protocol_exc(e: Error) -> RemoteException {
    match e {
        Error::Remote(exc) => exc,
        Error::Type { expected, found } => {
            RemoteException::type_error(format!("expected {expected}, got {found}"))
        }
        other => RemoteException::value_error(other.to_string()),
    }
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

/// Runs one handler on the Rust object world's objects.
pub(crate) fn run(conn: &Connection, handler: Handler, args: Vec<Object>) -> Outcome {
    let inner = conn.inner();
    let mut a = args.into_iter();
    match handler {
        Handler::Ping => Ok(arg(&mut a)),
        Handler::Close => Ok(Object::Value(Value::None)),
        Handler::GetRoot => Ok(Object::Local(inner.root.clone())),
        Handler::GetAttr => {
            let obj = local(arg(&mut a))?;
            let name = resolve(inner, &name_of(arg(&mut a))?, Access::Get)?;
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
            let name = resolve(inner, &name_of(arg(&mut a))?, Access::Set)?;
            obj.setattr(conn, &name, arg(&mut a)).map(|()| Object::Value(Value::None))
        }
        Handler::DelAttr => {
            let obj = local(arg(&mut a))?;
            let name = resolve(inner, &name_of(arg(&mut a))?, Access::Del)?;
            obj.delattr(conn, &name).map(|()| Object::Value(Value::None))
        }
        Handler::Call => {
            let obj = local(arg(&mut a))?;
            let args = arg(&mut a).into_items().map_err(protocol_exc)?;
            obj.call(conn, args, kwargs_of(arg(&mut a))?)
        }
        Handler::CallAttr => {
            let obj = local(arg(&mut a))?;
            let name = resolve(inner, &name_of(arg(&mut a))?, Access::Get)?;
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
            let op = resolve(inner, &op, Access::Get)?;
            obj.compare(conn, &op, &other)
        }
        Handler::Pickle => Err(RemoteException::value_error("pickling is disabled")),
        Handler::Del => {
            let obj = local(arg(&mut a))?;
            // Any int, as rpyc's `decref` takes it: a count beyond what
            // is held removes the entry, a negative one adds references.
            let count: i128 = match arg(&mut a) {
                Object::Value(Value::None) => 1,
                Object::Value(Value::Int(n)) => n as i128,
                Object::Value(Value::BigInt(b)) if b.sign() == num_bigint::Sign::Minus => i128::MIN,
                Object::Value(Value::BigInt(_)) => i128::MAX,
                _ => return Err(RemoteException::type_error("count must be an int")),
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
            let attempt = resolve(inner, &attempt, Access::Get)?;
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

/// A Rust object's attributes, as the attribute policy probes them. A Rust
/// object has no separate `exposed_` namespace (see
/// [`AttrPolicy`](super::policy::AttrPolicy)): `exposed_add` is an alias of
/// `add`, resolved before the check, so no prefixed name exists on its own.
struct RustAttrs;

impl AttrProbe<Infallible> for RustAttrs {
    fn has_attr(&mut self, _name: &str) -> Result<bool, Infallible> {
        Ok(false)
    }
    fn has_attr_static(&mut self, _name: &str) -> Result<bool, Infallible> {
        Ok(false)
    }
}

/// rpyc's `_check_attr` for a Rust object: the name its [`Expose`] is asked
/// for, or the `AttributeError` the peer gets. `exposed_x` and `x` are the
/// same attribute; the policy judges `x`.
fn resolve(inner: &Inner, name: &str, access: Access) -> Result<String, RemoteException> {
    let policy = &inner.config.policy;
    let plain = match name.strip_prefix(policy.exposed_prefix.as_str()) {
        Some(rest) if policy.allow_exposed_attrs && !policy.exposed_prefix.is_empty() => rest,
        _ => name,
    };
    policy.check(&mut RustAttrs, plain, access).map_err(RemoteException::attribute_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::policy::AttrPolicy;

    #[test]
    fn rust_names_resolve_through_rpyc_policy() {
        let mut p = AttrPolicy::default();
        let check = |p: &AttrPolicy, name: &str, access| {
            let plain = name.strip_prefix("exposed_").unwrap_or(name);
            p.check(&mut RustAttrs, plain, access)
        };
        assert_eq!(check(&p, "exposed_add", Access::Get).unwrap(), "add");
        assert_eq!(check(&p, "add", Access::Get).unwrap(), "add");
        assert_eq!(check(&p, "__len__", Access::Get).unwrap(), "__len__");
        assert!(check(&p, "_secret", Access::Get).is_err());
        assert!(check(&p, "exposed__secret", Access::Get).is_err());
        assert!(check(&p, "__dict__", Access::Get).is_err());
        assert!(check(&p, "x", Access::Set).is_err());
        p = p.with_all_attrs(true).with_access(true, true, false);
        assert_eq!(check(&p, "_secret", Access::Set).unwrap(), "_secret");
    }
}
