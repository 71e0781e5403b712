//! The native Rust server used by unmodified Python rpyc clients: the demo
//! service served in-process (threaded, pool and one-shot, TCP and Unix),
//! driven by `tests/scripts/demo_client.py` in a stock Python process, plus
//! refcount, concurrency, misbehaving-client and shutdown checks.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rpyc_rs::server::{Mode, ServerBuilder, ServerHandle};
use rpyc_rs::service::demo::demo_service;
use rpyc_rs::service::Service;

fn run_client(addr: &str, scenarios: &[&str]) -> String {
    let script = common::manifest_dir().join("tests/scripts/demo_client.py");
    let mut cmd = Command::new(common::python());
    cmd.arg(&script).arg(addr).args(scenarios).stdin(Stdio::null());
    let out = common::within(Duration::from_secs(120), "python demo client", move || cmd.output())
        .expect("run the python client");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "python client failed ({}):\n{}\n{}",
        out.status,
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn start(mode: Mode) -> ServerHandle {
    ServerBuilder::new(demo_service).mode(mode).bind().expect("bind").spawn().expect("spawn")
}

#[test]
fn python_client_uses_the_demo_service_threaded() {
    common::require_rpyc();
    let server = start(Mode::Threaded);
    let out = run_client(&server.port().unwrap().to_string(), &[]);
    for s in [
        "basics",
        "objects",
        "policy",
        "exceptions",
        "callbacks",
        "refcounts",
        "concurrency",
        "large",
        "timeouts",
    ] {
        assert!(out.contains(&format!("OK {s}")), "{s} missing from:\n{out}");
    }
    server.shutdown().unwrap();
}

#[test]
fn python_client_uses_the_demo_service_pooled_over_unix() {
    common::require_rpyc();
    let dir = common::TempDir::new();
    let path = dir.join("demo.sock");
    let server = ServerBuilder::new(demo_service)
        .unix(&path)
        .mode(Mode::Pool { workers: 2 })
        .bind()
        .unwrap()
        .spawn()
        .unwrap();
    let out =
        run_client(path.to_str().unwrap(), &["basics", "objects", "callbacks", "concurrency", "exceptions"]);
    assert_eq!(out.matches("OK ").count(), 5, "{out}");
    server.shutdown().unwrap();
    assert!(!path.exists(), "socket file left behind");
}

#[test]
fn one_shot_server_serves_one_client_then_stops() {
    common::require_rpyc();
    let server = ServerBuilder::new(demo_service).mode(Mode::OneShot).bind().unwrap();
    let port = server.port().unwrap();
    let t = std::thread::spawn(move || server.serve());
    run_client(&port.to_string(), &["basics"]);
    let r = common::within(Duration::from_secs(20), "one-shot server exit", move || t.join());
    assert!(r.is_ok());
}

#[test]
fn refcount_table_empties_when_python_drops_its_netrefs() {
    common::require_rpyc();
    let conns = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let seen = conns.clone();
    let root = Service::builder("Probe")
        .method("counter", || {
            rpyc_rs::service::ObjectBuilder::new("t.Counter").attribute("x", 1).into_object()
        })
        .on_connect(move |c| seen.lock().push(c.clone()))
        .build();
    let server = ServerBuilder::shared(root).bind().unwrap().spawn().unwrap();
    let port = server.port().unwrap();
    let code = format!(
        "import rpyc, gc\n\
         c = rpyc.connect('127.0.0.1', {port})\n\
         objs = [c.root.counter() for _ in range(100)]\n\
         print('HELD', flush=True)\n\
         input()\n\
         del objs\n\
         gc.collect()\n\
         c.ping()\n\
         print('DROPPED', flush=True)\n\
         input()\n"
    );
    let mut py = common::PyProcess::spawn_code(&format!("print('READY x', flush=True)\n{code}"), &[]);
    assert_eq!(py.read_line(Duration::from_secs(20)).trim(), "HELD");
    let conn = conns.lock().last().cloned().expect("a connection");
    // 100 counters; the root itself is held too. Each `c.root.counter`
    // lookup also lent the client a bound method, released by a DEL the
    // client sends without waiting: the last one may still be on its way.
    let deadline = Instant::now() + Duration::from_secs(10);
    while conn.local_object_count() != 101 {
        assert!(conn.local_object_count() > 101, "freed early: {}", conn.local_object_count());
        assert!(Instant::now() < deadline, "still held: {}", conn.local_object_count());
        std::thread::sleep(Duration::from_millis(10));
    }
    py.send_line("");
    assert_eq!(py.read_line(Duration::from_secs(20)).trim(), "DROPPED");
    let deadline = Instant::now() + Duration::from_secs(10);
    while conn.local_object_count() > 1 {
        assert!(Instant::now() < deadline, "still held: {}", conn.local_object_count());
        std::thread::sleep(Duration::from_millis(20));
    }
    py.send_line("");
    drop(conn);
    server.shutdown().unwrap();
}

#[test]
fn thirty_two_concurrent_python_clients() {
    common::require_rpyc();
    let server = start(Mode::Threaded);
    let port = server.port().unwrap();
    let code = format!(
        "import rpyc, sys, threading\n\
         errs = []\n\
         def run(t):\n\
         \x20   try:\n\
         \x20       c = rpyc.connect('127.0.0.1', {port})\n\
         \x20       for i in range(100):\n\
         \x20           assert c.root.add(t, i) == t + i\n\
         \x20           assert c.root.echo((t, str(i))) == (t, str(i))\n\
         \x20       c.close()\n\
         \x20   except Exception as e:\n\
         \x20       errs.append(repr(e))\n\
         ts = [threading.Thread(target=run, args=(t,)) for t in range(32)]\n\
         [t.start() for t in ts]\n\
         [t.join() for t in ts]\n\
         print('READY', len(errs), errs[:3], flush=True)\n"
    );
    let py = common::PyProcess::spawn_code(&code, &[]);
    assert_eq!(py.ready_line().trim(), "READY 0 []");
    server.shutdown().unwrap();
}

#[test]
fn killed_and_garbage_clients_do_not_disturb_others() {
    common::require_rpyc();
    let server = start(Mode::Threaded);
    let port = server.port().unwrap();
    // A well-behaved client keeps working throughout.
    let code = format!(
        "import rpyc, time\n\
         c = rpyc.connect('127.0.0.1', {port})\n\
         print('READY', flush=True)\n\
         while True:\n\
         \x20   line = input()\n\
         \x20   if line == 'q': break\n\
         \x20   print(c.root.add(20, 22), flush=True)\n"
    );
    let mut good = common::PyProcess::spawn_code(&code, &[]);
    good.send_line("go");
    assert_eq!(good.read_line(Duration::from_secs(10)).trim(), "42");

    // A client killed in the middle of a slow call.
    let victim = common::PyProcess::spawn_code(
        &format!(
            "import rpyc\nc = rpyc.connect('127.0.0.1', {port})\nprint('READY', flush=True)\nc.root.sleep(30)\n"
        ),
        &[],
    );
    std::thread::sleep(Duration::from_millis(300));
    let _ = Command::new("kill").args(["-9", &victim.pid().to_string()]).status();

    // Clients sending garbage: a hostile length, a bad message, random bytes.
    for junk in [
        &b"\xff\xff\xff\xff\x00"[..],
        b"\x00\x00\x00\x03\x00\x09\x09\x09\n",
        b"\x00\x00\x00\x02\x07\x01\x02\n",
        b"GET / HTTP/1.1\r\n\r\n",
    ] {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(junk).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        // The server drops us (EOF) rather than hanging or crashing.
        let mut buf = [0u8; 64];
        let _ = std::io::Read::read(&mut s, &mut buf);
    }
    good.send_line("go");
    assert_eq!(good.read_line(Duration::from_secs(10)).trim(), "42");
    good.send_line("q");
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.connection_count() > 1 {
        assert!(Instant::now() < deadline, "connections left: {}", server.connection_count());
        std::thread::sleep(Duration::from_millis(20));
    }
    server.shutdown().unwrap();
}

#[test]
fn hooks_run_and_shutdown_closes_connections() {
    common::require_rpyc();
    let connects = Arc::new(AtomicUsize::new(0));
    let disconnects = Arc::new(AtomicUsize::new(0));
    let (c1, d1) = (connects.clone(), disconnects.clone());
    let server = ServerBuilder::new(move || {
        let (c, d) = (c1.clone(), d1.clone());
        Service::builder("Hooked")
            .method("ping", || "pong")
            .on_connect(move |_| {
                c.fetch_add(1, Ordering::SeqCst);
            })
            .on_disconnect(move |_| {
                d.fetch_add(1, Ordering::SeqCst);
            })
            .build()
    })
    .bind()
    .unwrap()
    .spawn()
    .unwrap();
    let port = server.port().unwrap();
    let py = common::PyProcess::spawn_code(
        &format!(
            "import rpyc\nc = rpyc.connect('127.0.0.1', {port})\nassert c.root.ping() == 'pong'\n\
             print('READY', c.root.get_service_name(), flush=True)\ninput()\n"
        ),
        &[],
    );
    assert_eq!(py.ready_line().trim(), "READY HOOKED");
    assert_eq!(connects.load(Ordering::SeqCst), 1);
    let start = Instant::now();
    server.shutdown().unwrap();
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(disconnects.load(Ordering::SeqCst), 1);
    drop(py);
}
