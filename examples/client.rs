//! The Rust client driving a stock Python rpyc server.
//!
//! ```text
//! .venv/bin/python examples/rpyc_app/server.py 18871 &   # a plain rpyc server
//! cargo run --example client -- 18871
//! ```
//!
//! It calls methods with positional and keyword arguments, uses a netref to
//! a Python list (len, indexing, iteration), passes a Rust closure that the
//! server calls back, and catches a remote exception.

use rpyc_rs::service::function;
use rpyc_rs::{Connection, FromObject, NetRef, Object};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(18871);
    let conn = Connection::connect("127.0.0.1", port)?;
    let root = conn.root()?;

    let sum = root.call_method("add", (40, 2))?.extract::<i64>()?;
    println!("add(40, 2) = {sum}");

    let numbers = root.call_method("numbers", (5,))?.extract::<NetRef>()?;
    println!("numbers: len {} first {:?} repr {}", numbers.len()?, numbers.getitem(0)?, numbers.repr()?);
    let total: i64 = numbers.iter_buffered(64)?.map(|x| x?.extract::<i64>()).sum::<Result<_, _>>()?;
    println!("sum over the remote list: {total}");

    // The server calls our closure for each item.
    let double = function("double", |_conn, args, _kw| {
        let x = i64::from_object(args.into_iter().next().unwrap_or(Object::from(0)))
            .map_err(|e| rpyc_rs::RemoteException::type_error(e.to_string()))?;
        Ok(Object::from(x * 2))
    });
    let doubled =
        root.call_method("apply", (double, Object::from(rpyc_rs::Value::Tuple(vec![1.into(), 2.into()]))))?;
    println!("apply(double, (1, 2)) = {}", doubled.extract::<NetRef>()?.repr()?);

    match root.call_method("add", (1, "a")) {
        Err(e) => println!("the server raised: {}", e.remote().map_or(e.to_string(), |r| r.qualified_name())),
        Ok(v) => println!("unexpected: {v:?}"),
    }
    conn.close();
    Ok(())
}
