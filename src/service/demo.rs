//! The demo service `rpyc-rs serve` exposes: small methods that between
//! them exercise every part of the protocol a Python client touches.
//!
//! | method | what it shows |
//! |---|---|
//! | `echo(x)` | any value (or netref) sent and returned |
//! | `add(a, b)` | typed arguments, keywords, TypeError on mismatch |
//! | `counter(start=0)` | an object with `increment(by=1)`, `value`, `with` support |
//! | `countdown(n)` | an iterable with `len()`, indexing and iteration |
//! | `sleep(seconds)` | a slow call (timeouts, concurrency) |
//! | `fail(kind, message)` | the named builtin exception, raised remotely |
//! | `call_back(fn, *args)` | a call back into the client's function |

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::brine::Value;
use crate::protocol::{Error, NetRef, Object, RemoteException};

use super::{Args, Expose, HandlerResult, ObjectBuilder, Service};

/// The builtin exceptions `fail(kind, message)` accepts.
pub const FAIL_KINDS: &[&str] = &[
    "ValueError",
    "KeyError",
    "IndexError",
    "TypeError",
    "AttributeError",
    "RuntimeError",
    "ZeroDivisionError",
    "NotImplementedError",
    "LookupError",
    "OSError",
    "PermissionError",
    "FileNotFoundError",
    "TimeoutError",
    "StopIteration",
];

/// Builds the demo service.
pub fn demo_service() -> Arc<dyn Expose> {
    Service::builder("DemoService")
        .alias("rpyc-rs-demo")
        .method("echo", |x: Object| x)
        .doc("echo", "Returns its argument.")
        .method("add", |a: Object, b: Object| add(a, b))
        .params("add", &["a", "b"])
        .doc("add", "a + b for ints, floats and strings.")
        .method("counter", |start: Option<i64>| counter(start.unwrap_or(0)))
        .params("counter", &["start"])
        .method("countdown", |n: i64| countdown(n))
        .method("sleep", |secs: f64| -> HandlerResult {
            if !(0.0..=3600.0).contains(&secs) {
                return Err(RemoteException::value_error("sleep length must be between 0 and 3600 seconds"));
            }
            std::thread::sleep(Duration::from_secs_f64(secs));
            Ok(Object::from(secs))
        })
        .method("fail", |kind: String, message: String| -> HandlerResult {
            if FAIL_KINDS.contains(&kind.as_str()) {
                Err(RemoteException::builtin(&kind, message))
            } else {
                Err(RemoteException::value_error(format!("unknown exception kind {kind:?}")))
            }
        })
        .method("call_back", |a: &Args<'_>| -> HandlerResult {
            let f = caller_function(a.get::<Object>(0)?)?;
            f.call(a.rest(1)).map_err(|e| match e {
                Error::Remote(exc) => exc,
                other => RemoteException::runtime_error(other.to_string()),
            })
        })
        .build()
}

fn add(a: Object, b: Object) -> HandlerResult {
    let (Object::Value(a), Object::Value(b)) = (a, b) else {
        return Err(RemoteException::type_error("add() takes values, not references"));
    };
    Ok(Object::from(match (a, b) {
        (Value::Int(x), Value::Int(y)) => match x.checked_add(y) {
            Some(n) => Value::Int(n),
            None => Value::int(num_bigint::BigInt::from(x) + y),
        },
        (Value::Float(x), Value::Float(y)) => Value::Float(x + y),
        (Value::Int(x), Value::Float(y)) | (Value::Float(y), Value::Int(x)) => Value::Float(x as f64 + y),
        (Value::Str(x), Value::Str(y)) => Value::Str(x + &y),
        (Value::Bytes(mut x), Value::Bytes(y)) => {
            x.extend(y);
            Value::Bytes(x)
        }
        (x, y) => {
            return Err(RemoteException::type_error(format!(
                "unsupported operand type(s) for +: '{}' and '{}'",
                x.type_name(),
                y.type_name()
            )))
        }
    }))
}

fn counter(start: i64) -> Object {
    let n = Arc::new(AtomicI64::new(start));
    let (inc, val, enter, rep) = (n.clone(), n.clone(), n.clone(), n);
    ObjectBuilder::new("rpyc_rs.demo.Counter")
        .method("increment", move |by: Option<i64>| -> HandlerResult {
            // A peer picks both the start and the step: past i64 the count
            // is an OverflowError, never a silent wrap to a negative value.
            let by = by.unwrap_or(1);
            checked_bump(&inc, by).map(Object::from)
        })
        .params("increment", &["by"])
        .property("value", move || val.load(Ordering::SeqCst))
        // `with counter() as c:` gives the counter itself and counts the
        // block as one use.
        .self_method("__enter__", move || {
            // At i64::MAX the use is not counted rather than wrapped
            // (`__enter__` must return the counter itself, not fail).
            let _ = checked_bump(&enter, 1);
        })
        .method("__exit__", |_a: &Args<'_>| false)
        .repr(move || format!("Counter({})", rep.load(Ordering::SeqCst)))
        .into_object()
}

/// Adds `by` to the counter, or fails with OverflowError (leaving it as it
/// was) when the sum does not fit an i64.
fn checked_bump(n: &AtomicI64, by: i64) -> Result<i64, RemoteException> {
    let mut cur = n.load(Ordering::SeqCst);
    loop {
        let next = cur.checked_add(by).ok_or_else(|| {
            RemoteException::builtin(
                "OverflowError",
                format!("counter {cur} + {by} does not fit a 64-bit int"),
            )
        })?;
        match n.compare_exchange_weak(cur, next, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => return Ok(next),
            Err(actual) => cur = actual,
        }
    }
}

fn countdown(n: i64) -> HandlerResult {
    if !(0..=10_000_000).contains(&n) {
        return Err(RemoteException::value_error("countdown length must be between 0 and 10000000"));
    }
    let items = Arc::new(n);
    let (len_n, get_n, iter_n) = (items.clone(), items.clone(), items);
    Ok(ObjectBuilder::new("rpyc_rs.demo.Countdown")
        .method("__len__", move || *len_n)
        .method("__getitem__", move |i: i64| -> HandlerResult {
            let len = *get_n;
            // `len` is at most 10^7, so `i + len` cannot overflow for i < 0.
            let idx = if i < 0 { i + len } else { i };
            if (0..len).contains(&idx) {
                Ok(Object::from(len - idx))
            } else {
                Err(RemoteException::index_error("countdown index out of range"))
            }
        })
        .method("__iter__", move || countdown_iter(*iter_n))
        .repr(move || format!("countdown({n})"))
        .into_object())
}

fn countdown_iter(n: i64) -> Object {
    let next = Arc::new(AtomicI64::new(n));
    ObjectBuilder::new("rpyc_rs.demo.CountdownIterator")
        .method("__next__", move || -> HandlerResult {
            let v = next.fetch_sub(1, Ordering::SeqCst);
            if v > 0 {
                Ok(Object::from(v))
            } else {
                next.store(0, Ordering::SeqCst);
                Err(RemoteException::stop_iteration())
            }
        })
        .self_method("__iter__", || {})
        .into_object()
}

fn caller_function(o: Object) -> Result<NetRef, RemoteException> {
    match o {
        Object::Remote(n) => Ok(n),
        other => Err(RemoteException::type_error(format!(
            "call_back() needs a function of the caller, got {}",
            other.type_name()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_refuses_to_wrap() {
        let n = AtomicI64::new(i64::MAX - 1);
        assert_eq!(checked_bump(&n, 1).ok(), Some(i64::MAX));
        let e = checked_bump(&n, 1).err().map(|e| e.is("OverflowError"));
        assert_eq!(e, Some(true));
        assert_eq!(n.load(Ordering::SeqCst), i64::MAX, "a refused step leaves the count alone");
        let n = AtomicI64::new(i64::MIN);
        assert!(checked_bump(&n, -1).is_err());
        assert_eq!(checked_bump(&n, i64::MAX).ok(), Some(-1));
    }
}
