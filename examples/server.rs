//! A Rust RPyC server that stock Python rpyc clients use naturally.
//!
//! ```text
//! cargo run --example server                 # listens on 127.0.0.1:18861
//! python -c "import rpyc; c = rpyc.connect('127.0.0.1', 18861); \
//!            print(c.root.greet('you')); s = c.root.store(); s['a'] = 1; print(len(s), s['a'], list(s))"
//! ```
//!
//! Two ways to expose Rust code, side by side:
//! * the root service is assembled from typed closures with
//!   [`Service::builder`]: arguments are converted from the wire, a wrong
//!   type reaches the caller as a `TypeError`;
//! * `store()` returns a [`Store`], a struct implementing [`Expose`] by
//!   hand: full control over attributes and dunders, state in fields. A
//!   Python client gets `len()`, `[]`, `in`, iteration and `repr()`.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;

use rpyc_rs::protocol::{Connection, Object, RemoteException};
use rpyc_rs::server::{Mode, ServerBuilder};
use rpyc_rs::service::{iterator, Expose, HandlerResult, Kwargs, Service};
use rpyc_rs::{FromObject, Value};

/// A string-keyed store the client fills and reads like a dict.
#[derive(Default)]
struct Store {
    items: Mutex<BTreeMap<String, Value>>,
}

fn key(args: &[Object]) -> Result<String, RemoteException> {
    match args.first() {
        Some(Object::Value(Value::Str(s))) => Ok(s.clone()),
        _ => Err(RemoteException::type_error("keys are strings")),
    }
}

impl Expose for Store {
    fn type_name(&self) -> &str {
        "example.Store"
    }

    fn call_method(&self, _conn: &Connection, name: &str, args: Vec<Object>, _kw: Kwargs) -> HandlerResult {
        let mut items = self.items.lock();
        match name {
            "__len__" => Ok(Object::from(items.len())),
            "__getitem__" => {
                let k = key(&args)?;
                items.get(&k).cloned().map(Object::from).ok_or_else(|| RemoteException::key_error(k))
            }
            "__setitem__" => {
                let k = key(&args)?;
                let v = args.into_iter().nth(1).map(Value::from_object).transpose();
                let v = v.map_err(|e| RemoteException::type_error(e.to_string()))?.unwrap_or(Value::None);
                items.insert(k, v);
                Ok(Object::from(Value::None))
            }
            "__contains__" => Ok(Object::from(items.contains_key(&key(&args)?))),
            // Iterating walks a snapshot of the keys, as iterating a dict
            // copy would; `keys()` returns them as a tuple.
            "__iter__" | "keys" => {
                let keys: Vec<Object> = items.keys().map(|k| Object::from(k.as_str())).collect();
                Ok(if name == "keys" { Object::tuple(keys) } else { iterator(keys) })
            }
            _ => Err(RemoteException::attribute_error(format!("'Store' object has no attribute '{name}'"))),
        }
    }

    fn repr(&self, _conn: &Connection) -> HandlerResult<String> {
        Ok(format!("<Store of {} items>", self.items.lock().len()))
    }

    fn methods(&self) -> Vec<(String, Option<String>)> {
        ["__len__", "__getitem__", "__setitem__", "__contains__", "__iter__", "keys"]
            .iter()
            .map(|n| (n.to_string(), None))
            .collect()
    }
}

fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(18861);
    let server = ServerBuilder::new(|| {
        // A root per connection: each client gets its own store.
        let store: Arc<dyn Expose> = Arc::new(Store::default());
        Service::builder("ExampleService")
            .method("greet", |name: String| format!("hello, {name}"))
            .method("add", |a: i64, b: Option<i64>| a + b.unwrap_or(0))
            .params("add", &["a", "b"])
            .method("store", move || store.clone())
            .attribute("version", "1.0")
            .build()
    })
    .tcp(("127.0.0.1", port))?
    .mode(Mode::Threaded)
    .bind()?;
    println!("serving on {}", server.addr());
    server.serve()
}
