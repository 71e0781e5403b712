//! The server's limits and shutdown (issue 14), with Rust clients: running
//! requests finish within the grace period and are abandoned after it, a
//! client past the cap is closed at once, parked connections hit the idle
//! timeout, and a claimed frame length costs the server nothing.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use rpyc_rs::server::{Mode, ServerBuilder};
use rpyc_rs::service::demo::demo_service;
use rpyc_rs::{Connection, Error, FromObject, NetRef};

fn connect(port: u16) -> Connection {
    Connection::connect("127.0.0.1", port).expect("connect")
}

/// Calls `sleep(secs)` on a new thread; the thread's result is the reply.
fn sleep_call(port: u16, secs: f64) -> std::thread::JoinHandle<Result<f64, Error>> {
    let conn = connect(port);
    std::thread::spawn(move || {
        let root = conn.root()?;
        f64::from_object(root.call_method("sleep", (secs,))?)
    })
}

#[test]
fn a_request_running_at_shutdown_finishes_within_the_grace_period() {
    for mode in [Mode::Threaded, Mode::Pool { workers: 2 }] {
        let server = ServerBuilder::new(demo_service)
            .mode(mode)
            .grace(Duration::from_secs(20))
            .bind()
            .unwrap()
            .spawn()
            .unwrap();
        let call = sleep_call(server.port().unwrap(), 1.0);
        std::thread::sleep(Duration::from_millis(300));
        server.shutdown().unwrap();
        let reply = call.join().unwrap();
        assert_eq!(reply.ok(), Some(1.0), "{mode:?}: the reply was delivered during the grace period");
    }
}

#[test]
fn shutdown_abandons_a_request_still_running_after_the_grace_period() {
    for mode in [Mode::Threaded, Mode::Pool { workers: 2 }] {
        let server = ServerBuilder::new(demo_service)
            .mode(mode)
            .grace(Duration::from_millis(300))
            .bind()
            .unwrap()
            .spawn()
            .unwrap();
        let call = sleep_call(server.port().unwrap(), 30.0);
        std::thread::sleep(Duration::from_millis(300));
        let stopped = Instant::now();
        common::within(Duration::from_secs(15), "shutdown after the grace period", move || {
            server.shutdown().unwrap()
        });
        // Bounded by the grace period, not by the 30 s handler.
        assert!(stopped.elapsed() < Duration::from_secs(10), "{mode:?}: {:?}", stopped.elapsed());
        let reply = common::within(Duration::from_secs(15), "the client sees the close", move || call.join());
        assert!(reply.unwrap().is_err(), "{mode:?}: the abandoned call ends with an error");
    }
}

#[test]
fn a_client_past_the_cap_is_closed_at_once() {
    let server = ServerBuilder::new(demo_service).max_connections(2).bind().unwrap().spawn().unwrap();
    let port = server.port().unwrap();
    let (a, b) = (connect(port), connect(port));
    for c in [&a, &b] {
        assert_eq!(i64::from_object(c.root().unwrap().call_method("add", (1, 2)).unwrap()).unwrap(), 3);
    }
    // The client's first request (the dialect probe that connecting sends)
    // finds the connection closed, at once rather than after a timeout.
    let start = Instant::now();
    let r = common::within(Duration::from_secs(15), "the refused client's first request", move || {
        Connection::connect("127.0.0.1", port).and_then(|third| third.root().map(|_| ()))
    });
    match &r {
        Err(Error::Connect(m)) => assert!(m.contains("connection closed"), "{m}"),
        Err(Error::Closed { .. }) => {}
        other => panic!("the third client was served: {other:?}"),
    }
    assert!(start.elapsed() < Duration::from_secs(10), "refused only after {:?}", start.elapsed());
    drop((a, b));
}

#[test]
fn parked_connections_hit_the_idle_timeout() {
    for mode in [Mode::Threaded, Mode::Pool { workers: 1 }] {
        let server = ServerBuilder::new(demo_service)
            .mode(mode)
            .linger(Duration::from_millis(50))
            .idle_timeout(Some(Duration::from_millis(300)))
            .bind()
            .unwrap()
            .spawn()
            .unwrap();
        let conn = connect(server.port().unwrap());
        let root: NetRef = conn.root().unwrap();
        assert_eq!(i64::from_object(root.call_method("add", (2, 2)).unwrap()).unwrap(), 4);
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.connection_count() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(server.connection_count(), 0, "{mode:?}: the idle connection was closed");
        assert!(root.call_method("add", (1, 1)).is_err());
    }
}

#[test]
fn a_stalled_big_header_does_not_block_other_clients() {
    for mode in [Mode::Threaded, Mode::Pool { workers: 1 }] {
        let server = ServerBuilder::new(demo_service).mode(mode).bind().unwrap().spawn().unwrap();
        let port = server.port().unwrap();
        let mut stalled = Vec::new();
        for _ in 0..4 {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.write_all(&[0x3f, 0xff, 0xff, 0xf0, 0, b'x']).unwrap();
            stalled.push(s);
        }
        let c = connect(port);
        let n = common::within(Duration::from_secs(15), "a healthy call", move || {
            i64::from_object(c.root()?.call_method("add", (20, 22))?)
        });
        assert_eq!(n.ok(), Some(42), "{mode:?}");
        drop(stalled);
    }
}
