//! Criterion benchmarks of the Rust protocol engine's round trip: a client
//! [`Connection`] calling `echo(1)` on the demo service ([`demo_service`])
//! served by a Rust [`Connection`] / [`Server`] in the same process.
//!
//! * `memory/*`: over an in-memory [`Stream::pair`], so what is left is the
//!   engine alone (framing, brine, boxing, the seq table, dispatch) plus
//!   two thread wake-ups per call;
//! * `tcp/*`: over loopback TCP against a threaded [`Server`], what a real
//!   Rust-to-Rust call costs;
//! * `tcp/raw_pingpong`: the floor under `tcp/*`, a bare TCP ping-pong
//!   between two threads moving the bytes of a trivial rpyc call (76 out,
//!   12 back) with nothing else.
//!
//! For each transport: `held_netref_call` (`f(1)` with `f = root.echo`
//! held: one CALL round trip), `call_method` (one CALLATTR round trip) and
//! `getattr_then_call` (`root.echo(1)` as Python writes it: GETATTR, CALL
//! and a DEL for the dropped netref).
//!
//! The cross-process numbers against stock rpyc live in `ci/bench` (section
//! `calls`); these isolate the engine. Run with `cargo bench --bench engine`
//! (add `-- --quick` for a short run).

use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use rpyc_rs::protocol::{Config, Connection, NetRef, Object};
use rpyc_rs::server::{Mode, ServerBuilder};
use rpyc_rs::service::demo::demo_service;
use rpyc_rs::service::VoidService;
use rpyc_rs::stream::Stream;

/// Bytes a stock rpyc trivial call puts on the wire, header and flusher
/// included (what `ci/bench_calls.py` measures at start-up).
const REQ_BYTES: usize = 76;
const REP_BYTES: usize = 12;

fn echo_of(root: &NetRef) -> NetRef {
    root.getattr("echo").expect("root.echo").as_netref().cloned().expect("echo is a netref")
}

fn check_one(o: Object) {
    match o {
        Object::Value(v) => {
            black_box(v);
        }
        other => panic!("echo(1) returned {}", other.type_name()),
    }
}

/// The three call shapes, on one client connection.
fn call_shapes(c: &mut Criterion, group: &str, client: &Connection) {
    let root = client.root().expect("root");
    let echo = echo_of(&root);
    let mut g = c.benchmark_group(group);
    g.bench_function("held_netref_call", |b| b.iter(|| check_one(echo.call((black_box(1i64),)).unwrap())));
    g.bench_function("call_method", |b| {
        b.iter(|| check_one(root.call_method("echo", (black_box(1i64),)).unwrap()))
    });
    g.bench_function("getattr_then_call", |b| {
        b.iter(|| {
            let f = echo_of(&root);
            check_one(f.call((black_box(1i64),)).unwrap())
        })
    });
    g.finish();
}

fn memory(c: &mut Criterion) {
    let (a, b) = Stream::pair();
    let server = Connection::new(b, demo_service(), Config::default());
    let serving = std::thread::spawn(move || {
        let _ = server.serve_all();
    });
    let client = Connection::new(a, Arc::new(VoidService), Config::default());
    call_shapes(c, "memory", &client);
    client.close();
    let _ = serving.join();
}

fn tcp(c: &mut Criterion) {
    let server = ServerBuilder::new(demo_service)
        .mode(Mode::Threaded)
        .tcp(("127.0.0.1", 0))
        .expect("resolve 127.0.0.1")
        .bind()
        .expect("bind 127.0.0.1");
    let port = server.port().expect("a TCP port");
    let handle = server.spawn().expect("server thread");
    let client = Connection::connect("127.0.0.1", port).expect("connect");
    call_shapes(c, "tcp", &client);
    client.close();
    let _ = handle.shutdown();

    // The floor: the same bytes each way, no protocol at all.
    let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind");
    let addr = listener.local_addr().expect("addr");
    let echo = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        s.set_nodelay(true).expect("nodelay");
        let mut req = [0u8; REQ_BYTES];
        let rep = [0x42u8; REP_BYTES];
        // Ends when the client hangs up.
        while s.read_exact(&mut req).is_ok() {
            if s.write_all(&rep).is_err() {
                break;
            }
        }
    });
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    let req = [0x24u8; REQ_BYTES];
    let mut rep = [0u8; REP_BYTES];
    c.bench_function("tcp/raw_pingpong", |b| {
        b.iter(|| {
            s.write_all(black_box(&req)).unwrap();
            s.read_exact(&mut rep).unwrap();
        })
    });
    drop(s);
    let _ = echo.join();
}

criterion_group!(benches, memory, tcp);
criterion_main!(benches);
