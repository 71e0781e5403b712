//! The native Rust client against real Python rpyc servers: a custom
//! `rpyc.Service` on a `ThreadedServer`, and a classic (`SlaveService`)
//! server. Every test starts its own server process on 127.0.0.1.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rpyc_rs::brine::Value;
use rpyc_rs::protocol::Error;
use rpyc_rs::service::function;
use rpyc_rs::{Config, Connection, FromObject, NetRef, Object};

const SERVICE: &str = r#"
    import threading, time
    class TestService(rpyc.Service):
        def on_connect(self, conn):
            self._conn = conn
        def exposed_echo(self, x):
            return x
        def exposed_add(self, a, b=0, *, c=0):
            return a + b + c
        def exposed_make_list(self, n):
            return list(range(n))
        def exposed_make_dict(self):
            return {"a": 1, "b": [1, 2]}
        def exposed_fail(self, kind, msg):
            raise getattr(__builtins__, kind, None)(msg) if not isinstance(__builtins__, dict) else __builtins__[kind](msg)
        def exposed_custom_fail(self):
            class MyError(Exception):
                pass
            raise MyError("custom", 42)
        def exposed_call(self, fn, *args):
            return fn(*args)
        def exposed_sleep(self, t):
            time.sleep(t)
            return t
        def exposed_objects_held(self):
            return len(self._conn._local_objects._dict)
        def exposed_ping_back(self, fn, depth):
            # calls the Rust callback, which calls back here, to `depth`.
            return fn(depth)
        class exposed_Counter:
            def __init__(self, start=0):
                self.value = start
            def incr(self, by=1):
                self.value += by
                return self.value
            def __enter__(self):
                self.value += 100
                return self
            def __exit__(self, *a):
                self.value -= 100
        def exposed_counter(self, start=0):
            return self.exposed_Counter(start)
"#;

/// The test service on a server that lets clients reach public attributes
/// (`list.append`, `counter.incr`), as many real deployments do.
fn public_server() -> common::PyProcess {
    let opts = common::ServerOptions {
        protocol_config: Some(r#"{"allow_public_attrs": true}"#.into()),
        ..Default::default()
    };
    common::spawn_rpyc_server_with(SERVICE, &opts)
}

fn connect(server: &common::PyProcess) -> Connection {
    let cfg =
        Config::default().with_timeout(Some(Duration::from_secs(20))).with_legacy_framing(common::rpyc5());
    Connection::connect_with("127.0.0.1", server.port(), Arc::new(rpyc_rs::service::VoidService), cfg)
        .expect("connect to the Python server")
}

fn echo(root: &NetRef, v: Value) -> Value {
    Value::from_object(root.call_method("echo", (v,)).unwrap()).unwrap()
}

#[test]
fn every_brine_type_round_trips_through_a_remote_echo() {
    common::require_rpyc();
    let server = common::spawn_rpyc_server(SERVICE);
    let conn = connect(&server);
    let root = conn.root().unwrap();
    let samples = vec![
        Value::None,
        Value::Bool(true),
        Value::from(-48),
        Value::from(160),
        Value::from(i64::MIN),
        Value::from(u128::MAX),
        Value::Float(-0.0),
        Value::Float(f64::INFINITY),
        Value::Complex(1.5, -2.0),
        Value::Bytes(vec![0, 1, 255]),
        Value::Bytes(vec![7; 70_000]),
        Value::from("héllo 🌍"),
        Value::from("x".repeat(5000)),
        Value::Tuple(vec![Value::from(1), Value::Tuple(vec![Value::None, Value::from("a")])]),
        Value::FrozenSet(vec![Value::from(1), Value::from(2)]),
        Value::slice(Value::from(1), Value::None, Value::from(-1)),
        Value::Ellipsis,
        Value::NotImplemented,
        Value::Tuple((0..300).map(Value::from).collect()),
    ];
    for v in samples {
        assert_eq!(echo(&root, v.clone()), v);
    }
    match echo(&root, Value::Float(f64::NAN)) {
        Value::Float(x) => assert!(x.is_nan()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn netrefs_to_lists_dicts_and_objects() {
    common::require_rpyc();
    let server = public_server();
    let conn = connect(&server);
    let root = conn.root().unwrap();

    let list = NetRef::from_object(root.call_method("make_list", (5,)).unwrap()).unwrap();
    assert_eq!(list.len().unwrap(), 5);
    assert_eq!(i64::from_object(list.getitem(3).unwrap()).unwrap(), 3);
    list.setitem(0, "zero").unwrap();
    assert_eq!(String::from_object(list.getitem(0).unwrap()).unwrap(), "zero");
    assert!(list.contains(4).unwrap());
    assert!(!list.contains(99).unwrap());
    assert_eq!(list.repr().unwrap(), "['zero', 1, 2, 3, 4]");
    let items: Vec<Object> = list.iter().unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(items.len(), 5);
    let sum: i64 =
        list.iter_buffered(2).unwrap().skip(1).map(|x| i64::from_object(x.unwrap()).unwrap()).sum();
    assert_eq!(sum, 10);
    list.call_method("append", (5,)).unwrap();
    assert_eq!(list.len().unwrap(), 6);

    let dict = NetRef::from_object(root.call_method("make_dict", ()).unwrap()).unwrap();
    assert_eq!(i64::from_object(dict.getitem("a").unwrap()).unwrap(), 1);
    let inner = NetRef::from_object(dict.getitem("b").unwrap()).unwrap();
    assert_eq!(inner.len().unwrap(), 2);
    let err = dict.getitem("missing").unwrap_err();
    assert_eq!(err.remote().unwrap().name, "KeyError");

    // kwargs, attributes, methods, context managers
    let add = root
        .call_method_with(
            "add",
            vec![Object::from(1)],
            vec![("b".into(), Object::from(2)), ("c".into(), Object::from(3))],
        )
        .unwrap();
    assert_eq!(i64::from_object(add).unwrap(), 6);
    let counter = NetRef::from_object(root.call_method("counter", (10,)).unwrap()).unwrap();
    assert_eq!(i64::from_object(counter.call_method("incr", ()).unwrap()).unwrap(), 11);
    assert_eq!(counter.get::<i64>("value").unwrap(), 11);
    let inside = counter
        .with(|c| {
            let c = NetRef::from_object(c)?;
            c.get::<i64>("value")
        })
        .unwrap();
    assert_eq!(inside, 111);
    assert_eq!(counter.get::<i64>("value").unwrap(), 11);
    assert!(counter.dir().unwrap().contains(&"incr".to_string()));
    assert!(counter.eq(Object::Remote(counter.clone())).unwrap());
    let h = counter.hash().unwrap();
    assert_eq!(h, counter.hash().unwrap());
}

#[test]
fn exceptions_arrive_with_class_args_and_traceback() {
    common::require_rpyc();
    let server = common::spawn_rpyc_server(SERVICE);
    let conn = connect(&server);
    let root = conn.root().unwrap();
    for kind in ["ValueError", "KeyError", "TypeError", "ZeroDivisionError"] {
        let err = root.call_method("fail", (kind, "boom")).unwrap_err();
        let exc = err.remote().unwrap_or_else(|| panic!("{err}"));
        assert_eq!(exc.name, kind);
        assert_eq!(exc.module, "builtins");
        assert_eq!(exc.args, vec![Value::from("boom")]);
        assert!(exc.traceback.contains("Traceback"), "{}", exc.traceback);
        assert!(exc.traceback.contains("exposed_fail"), "{}", exc.traceback);
    }
    let err = root.call_method("custom_fail", ()).unwrap_err();
    let exc = err.remote().unwrap();
    assert_eq!(exc.name, "MyError");
    assert_eq!(exc.args, vec![Value::from("custom"), Value::from(42)]);
    // A denied attribute is an AttributeError, and the connection lives on.
    let err = root.getattr("_conn").unwrap_err();
    assert_eq!(err.remote().unwrap().name, "AttributeError");
    assert_eq!(echo(&root, Value::from(1)), Value::from(1));
}

/// A Rust callback passed to Python, which Python calls, which calls back
/// into Python, and so on: nested requests served on the waiting thread.
#[test]
fn callbacks_nest_three_deep() {
    common::require_rpyc();
    let server = common::spawn_rpyc_server(SERVICE);
    let conn = connect(&server);
    let root = conn.root().unwrap();

    // One level: Python calls a Rust closure.
    let double = function("double", |_, args, _| {
        let x = i64::from_object(args.into_iter().next().unwrap_or(Object::from(0)))
            .map_err(|e| rpyc_rs::RemoteException::type_error(e.to_string()))?;
        Ok(Object::from(2 * x))
    });
    assert_eq!(i64::from_object(root.call_method("call", (double, 21)).unwrap()).unwrap(), 42);

    // Python -> Rust -> Python -> Rust -> Python -> Rust -> Python -> Rust.
    fn recurse(root: NetRef, hits: Arc<AtomicUsize>) -> Object {
        function("recurse", move |_c, args, _| {
            hits.fetch_add(1, Ordering::SeqCst);
            let d = i64::from_object(args.into_iter().next().unwrap()).unwrap();
            if d == 0 {
                return Ok(Object::from("bottom"));
            }
            let next = recurse(root.clone(), hits.clone());
            root.call_method("ping_back", (next, d - 1))
                .map_err(|e| rpyc_rs::RemoteException::runtime_error(e.to_string()))
        })
    }
    let hits = Arc::new(AtomicUsize::new(0));
    let f = recurse(root.clone(), hits.clone());
    let out = root.call_method("ping_back", (f, 3)).unwrap();
    assert_eq!(String::from_object(out).unwrap(), "bottom");
    assert_eq!(hits.load(Ordering::SeqCst), 4);
}

#[test]
fn errors_from_rust_callbacks_reach_python_as_real_exceptions() {
    common::require_rpyc();
    let server = common::spawn_rpyc_server(
        r#"
        class S(rpyc.Service):
            def exposed_try(self, fn):
                try:
                    fn()
                except KeyError as e:
                    return ("KeyError", e.args[0], "Remote Traceback" in str(e), "rpyc-rs" in str(e))
                except ValueError as e:
                    return ("ValueError", e.args[0], "Remote Traceback" in str(e), "rpyc-rs" in str(e))
                except RuntimeError as e:
                    return ("RuntimeError", e.args[0], True, True)
                return ("none", None, False, False)
        "#,
    );
    let conn = connect(&server);
    let root = conn.root().unwrap();
    let check = |f: Object, kind: &str, arg: &str| {
        let got = Value::from_object(root.call_method("try", (f,)).unwrap()).unwrap();
        assert_eq!(got, Value::Tuple(vec![kind.into(), arg.into(), true.into(), true.into()]));
    };
    check(function("k", |_, _, _| Err(rpyc_rs::RemoteException::key_error("nope"))), "KeyError", "nope");
    check(function("v", |_, _, _| Err(rpyc_rs::RemoteException::value_error("bad"))), "ValueError", "bad");
    check(function("p", |_, _, _| panic!("oops")), "RuntimeError", "Rust handler panicked: oops");
}

#[test]
fn eight_threads_share_one_connection() {
    common::require_rpyc();
    let server = common::spawn_rpyc_server(SERVICE);
    let conn = connect(&server);
    let root = conn.root().unwrap();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let root = root.clone();
            std::thread::spawn(move || {
                for i in 0..1000i64 {
                    let got = root.call_method("add", (t, i)).unwrap();
                    assert_eq!(i64::from_object(got).unwrap(), t + i);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn refcounts_return_to_baseline() {
    common::require_rpyc();
    let server = public_server();
    let conn = connect(&server);
    let root = conn.root().unwrap();
    let held = |root: &NetRef| i64::from_object(root.call_method("objects_held", ()).unwrap()).unwrap();
    let baseline = held(&root);
    {
        let mut keep = Vec::new();
        for i in 0..200 {
            let l = NetRef::from_object(root.call_method("make_list", (3,)).unwrap()).unwrap();
            let c = NetRef::from_object(root.call_method("counter", (i,)).unwrap()).unwrap();
            c.call_method("incr", ()).unwrap();
            let it: Vec<_> = l.iter().unwrap().collect();
            assert_eq!(it.len(), 3);
            // The same object sent again bumps our proxy's count.
            let again =
                NetRef::from_object(root.call_method("echo", (Object::Remote(l.clone()),)).unwrap()).unwrap();
            assert_eq!(again.id_pack(), l.id_pack());
            keep.push((l, c, again));
        }
        assert!(held(&root) > baseline + 300);
        // Callbacks passed to Python are released by Python's DEL too.
        for _ in 0..50 {
            root.call_method("call", (function("f", |_, _, _| Ok(Object::from(1))),)).unwrap();
        }
    }
    // DELs are sent without waiting; the next calls flush them.
    let deadline = Instant::now() + Duration::from_secs(10);
    while held(&root) != baseline {
        assert!(Instant::now() < deadline, "server still holds {} objects", held(&root) - baseline);
        std::thread::sleep(Duration::from_millis(20));
    }
    // Python dropped our callbacks; our table is empty once it has said so.
    let deadline = Instant::now() + Duration::from_secs(10);
    while conn.local_object_count() != 0 {
        let _ = conn.poll(Duration::from_millis(20));
        assert!(Instant::now() < deadline, "we still hold {} objects", conn.local_object_count());
    }
}

#[test]
fn killing_the_server_fails_a_pending_call_quickly() {
    common::require_rpyc();
    let server = common::spawn_rpyc_server(SERVICE);
    let conn = connect(&server);
    let root = conn.root().unwrap();
    let r = root.clone();
    let t = std::thread::spawn(move || {
        let start = Instant::now();
        let res = r.call_method("sleep", (30,));
        (res, start.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    let killed_at = Instant::now();
    // SIGKILL: the process dies without closing anything itself.
    let status = std::process::Command::new("kill").args(["-9", &server.pid().to_string()]).status().unwrap();
    assert!(status.success());
    let (res, _) = t.join().unwrap();
    assert!(killed_at.elapsed() < Duration::from_secs(1), "took {:?}", killed_at.elapsed());
    assert!(matches!(res, Err(Error::Closed { .. })), "{res:?}");
    assert!(conn.closed());
    assert!(matches!(root.call_method("echo", (1,)), Err(Error::Closed { .. })));
}

#[test]
fn timeouts_and_async_requests() {
    common::require_rpyc();
    let server = common::spawn_rpyc_server(SERVICE);
    let conn = connect(&server);
    let root = conn.root().unwrap();
    let err = root.call_method_timeout("sleep", (1.0,), Duration::from_millis(100)).unwrap_err();
    assert!(matches!(err, Error::Timeout));
    // The late reply is discarded and the connection stays usable.
    assert_eq!(echo(&root, Value::from(5)), Value::from(5));
    let mut pending: Vec<_> = (0..10).map(|i| root.async_call_method("add", (i, 1)).unwrap()).collect();
    for (i, r) in pending.iter_mut().enumerate().rev() {
        assert_eq!(i64::from_object(r.wait(Some(Duration::from_secs(10))).unwrap()).unwrap(), i as i64 + 1);
    }
    let (tx, rx) = std::sync::mpsc::channel();
    conn.async_request_with(rpyc_rs::protocol::Handler::Ping, vec![Object::from("hi")], move |r| {
        let _ = tx.send(r.map(|o| String::from_object(o).unwrap()));
    })
    .unwrap();
    conn.poll_all(Duration::from_millis(500)).unwrap();
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap().unwrap(), "hi");
    conn.ping(b"abc", Duration::from_secs(5)).unwrap();
    conn.close();
    assert!(conn.closed());
}

#[test]
fn classic_server_eval_execute_modules() {
    common::require_rpyc();
    let server = common::spawn_classic_server();
    let conn = connect(&server);
    let root = conn.root().unwrap();
    let v = root.call_method("eval", ("6*7",)).unwrap();
    assert_eq!(i64::from_object(v).unwrap(), 42);
    root.call_method("execute", ("x = [1, 2, 3]",)).unwrap();
    let x = NetRef::from_object(root.call_method("eval", ("x",)).unwrap()).unwrap();
    assert_eq!(x.len().unwrap(), 3);
    let os = NetRef::from_object(root.call_method("getmodule", ("os",)).unwrap()).unwrap();
    let pid = i64::from_object(os.call_method("getpid", ()).unwrap()).unwrap();
    assert_eq!(pid, server.pid() as i64);
}
