//! A proxy without trace or record: it hears an `auto` client's first
//! message and then relays raw or translates, and one thread relaying both
//! directions of a connection keeps each going while the other is stalled.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use rpyc_rs::service::VoidService;
use rpyc_rs::stream::Stream;
use rpyc_rs::{Config, Connection, FromObject};

use super::common;
use super::ProxyProc;

#[test]
fn an_untraced_proxy_hears_an_auto_client_first_then_relays_or_translates() {
    // Without trace or record, the proxy reads an `auto` client's first
    // message itself: the same dialect as the server's goes raw (one
    // thread), another goes to the translating pumps with what was read.
    common::require_rpyc();
    if common::rpyc5() {
        eprintln!("SKIPPED: needs an rpyc 6.x server");
        return;
    }
    let server = common::spawn_rpyc_server(
        r#"
        class EchoService(rpyc.Service):
            def exposed_echo(self, x):
                return x
        "#,
    );
    let proxy = ProxyProc::start(&format!("127.0.0.1:{}", server.port()), &["--server-dialect", "6"]);
    for legacy in [false, true, false] {
        let stream =
            Stream::tcp_connect(("127.0.0.1", proxy.port()), Some(Duration::from_secs(20))).expect("connect");
        let config =
            Config::default().with_timeout(Some(Duration::from_secs(30))).with_legacy_framing(legacy);
        let conn = Connection::new(stream, Arc::new(VoidService), config);
        let root = conn.root().expect("root through the proxy");
        let big = "x".repeat(200_000); // compressed on the way, both ways
        for n in 0..20i64 {
            assert_eq!(i64::from_object(root.call_method("echo", (n,)).expect("echo")).expect("int"), n);
        }
        let back = root.call_method("echo", (big.as_str(),)).expect("echo a big string");
        assert_eq!(String::from_object(back).expect("str"), big, "legacy framing: {legacy}");
        drop(root);
        conn.close();
    }
    let (lines, err) = proxy.stop();
    assert!(lines.is_empty() && !err.contains("c1:") && !err.contains("c3:"), "{lines:?} {err}");
}

#[test]
fn an_untraced_relay_keeps_each_direction_going_while_the_other_is_stalled() {
    // One thread relays both directions of an untraced connection; a peer
    // that reads only after its own send is done (rpyc's server does)
    // must not stall the other direction. Here the server sends SIZE bytes
    // before reading anything, while the client sends SIZE bytes on one
    // thread and reads on another, as a direct connection allows.
    const SIZE: usize = 24 << 20;
    let upstream = TcpListener::bind("127.0.0.1:0").expect("bind");
    let up_addr = upstream.local_addr().expect("addr").to_string();
    let server = thread::spawn(move || {
        let (mut s, _) = upstream.accept().expect("accept");
        s.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
        s.set_write_timeout(Some(Duration::from_secs(60))).expect("timeout");
        s.write_all(&vec![0x5a; SIZE]).expect("the server's send completes");
        s.shutdown(std::net::Shutdown::Write).expect("half-close");
        let mut got = Vec::new();
        s.read_to_end(&mut got).expect("the server reads everything");
        got
    });
    let proxy = ProxyProc::start(&up_addr, &["--client-dialect", "6", "--server-dialect", "6"]);
    let c = TcpStream::connect(&proxy.addr).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    c.set_write_timeout(Some(Duration::from_secs(60))).expect("timeout");
    let mut reader = c.try_clone().expect("clone");
    let read = thread::spawn(move || {
        let mut got = Vec::new();
        reader.read_to_end(&mut got).expect("the client reads everything");
        got
    });
    let sent: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
    (&c).write_all(&sent).expect("the client's send completes");
    c.shutdown(std::net::Shutdown::Write).expect("half-close");
    let got = read.join().expect("reader");
    assert!(got.len() == SIZE && got.iter().all(|&b| b == 0x5a), "server -> client: {} bytes", got.len());
    let at_server = server.join().expect("server");
    assert!(at_server == sent, "client -> server: {} bytes, unchanged", at_server.len());
    let (lines, err) = proxy.stop();
    assert!(lines.is_empty() && !err.contains("c1:"), "no trace, no notice: {lines:?} {err}");
}
