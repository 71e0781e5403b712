//! rpyc's registry, both ways, over UDP and TCP, on 127.0.0.1 only (never
//! a broadcast address, although rpyc's UDP client broadcasts by default):
//!
//! * the Rust client queries and lists a stock `rpyc_registry` that a stock
//!   server registered with, and connects by service name;
//! * a Rust server auto-registers with a stock registry, and a stock client
//!   finds it with `connect_by_service`; it unregisters on shutdown;
//! * the Rust registry server takes stock servers' registrations and
//!   answers stock `list_services` / `connect_by_service`, prunes stale
//!   entries, and survives hostile datagrams;
//! * a registry answering garbage, or nothing, is an error within the
//!   configured timeout.

mod common;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::PyProcess;
use rpyc_rs::registry::{Registrar, RegistryClient, RegistryError, RegistryServer, Transport};
use rpyc_rs::server::ServerBuilder;
use rpyc_rs::service::Service;
use rpyc_rs::{Connection, FromObject};

const ECHO: &str = r#"
    class EchoService(rpyc.Service):
        def exposed_echo(self, x):
            return x
"#;

fn kind(t: Transport) -> &'static str {
    match t {
        Transport::Tcp => "tcp",
        _ => "udp",
    }
}

fn client(t: Transport, port: u16) -> RegistryClient {
    let c = match t {
        Transport::Tcp => RegistryClient::tcp("127.0.0.1", port),
        _ => RegistryClient::udp("127.0.0.1", port),
    };
    c.with_timeout(Duration::from_secs(5))
}

/// A stock `rpyc.utils.registry` server on 127.0.0.1, listing allowed.
fn stock_registry(t: Transport, pruning_timeout: f64) -> PyProcess {
    const CODE: &str = r#"
import os, sys, threading
from rpyc.utils.registry import TCPRegistryServer, UDPRegistryServer
cls = UDPRegistryServer if sys.argv[1] == "udp" else TCPRegistryServer
srv = cls(host="127.0.0.1", port=0, pruning_timeout=float(sys.argv[2]), allow_listing=True)
def watch_stdin():
    sys.stdin.buffer.read()
    os._exit(0)
threading.Thread(target=watch_stdin, daemon=True).start()
print("PORT", srv.port, flush=True)
srv.start()
"#;
    PyProcess::spawn_code(CODE, &[kind(t), &pruning_timeout.to_string()])
}

/// A stock server of `ECHO` registering with the registry at `port`.
fn stock_server_registering(t: Transport, port: u16) -> PyProcess {
    let opts = common::ServerOptions {
        args: vec!["--register".into(), format!("{}:127.0.0.1:{port}", kind(t))],
        ..Default::default()
    };
    common::spawn_rpyc_server_with(ECHO, &opts)
}

/// Asks until `f` holds (a registration travels asynchronously), at most
/// 10 s.
fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stock `list_services` and `connect_by_service` against a registry.
fn python_lookup(t: Transport, port: u16, name: &str, call: &str) -> String {
    const CODE: &str = r#"
import sys, rpyc
from rpyc.utils.registry import TCPRegistryClient, UDPRegistryClient
kind, port, name, call = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
if kind == "udp":
    reg = UDPRegistryClient(ip="127.0.0.1", port=port, timeout=5)
else:
    reg = TCPRegistryClient("127.0.0.1", port=port, timeout=5)
names = sorted(rpyc.list_services(registrar=reg))
c = rpyc.connect_by_service(name, registrar=reg)
print("READY", ",".join(names), eval(call, {"root": c.root}), flush=True)
"#;
    let port = port.to_string();
    PyProcess::spawn_code(CODE, &[kind(t), &port, name, call]).ready_arg().to_owned()
}

fn rust_service_server(register_with: Option<RegistryClient>) -> rpyc_rs::server::ServerHandle {
    let mut b =
        ServerBuilder::new(|| Service::builder("AdderService").method("add", |a: i64, b: i64| a + b).build());
    if let Some(c) = register_with {
        b = b.auto_register(c, &["ADDER", "SUM"]);
    }
    b.bind().unwrap().spawn().unwrap()
}

#[test]
fn rust_client_queries_and_lists_a_stock_registry() {
    for t in [Transport::Udp, Transport::Tcp] {
        let registry = stock_registry(t, 240.0);
        let _server = stock_server_registering(t, registry.port());
        let reg = client(t, registry.port());
        let found = eventually("the stock server's registration", || reg.discover("echo").ok());
        assert_eq!(found.len(), 1, "{t}: {found:?}");
        assert_eq!(found[0].0, "127.0.0.1");
        assert_eq!(reg.list(None).unwrap(), vec!["ECHO".to_owned()], "{t}");
        assert_eq!(reg.list(Some("127.0.0.1")).unwrap(), vec!["ECHO".to_owned()], "{t}");
        assert!(reg.list(Some("10.9.9.9")).unwrap().is_empty(), "{t}");
        assert!(matches!(reg.discover("NOSUCH"), Err(RegistryError::NotFound(_))), "{t}");

        let conn = Connection::connect_by_service("ECHO", reg.clone()).unwrap();
        let v = i64::from_object(conn.root().unwrap().call_method("echo", (7,)).unwrap()).unwrap();
        assert_eq!(v, 7, "{t}");
        conn.close();
    }
}

#[test]
fn rust_server_registers_with_a_stock_registry_and_unregisters() {
    for t in [Transport::Udp, Transport::Tcp] {
        let registry = stock_registry(t, 240.0);
        let reg = client(t, registry.port());
        let server = rust_service_server(Some(reg.clone()));
        let port = server.port().unwrap();
        let found = eventually("the Rust server's registration", || reg.discover("ADDER").ok());
        assert_eq!(found, vec![("127.0.0.1".to_owned(), port)], "{t}");
        assert_eq!(python_lookup(t, registry.port(), "SUM", "root.add(40, 2)"), "ADDER,SUM 42", "{t}");
        server.shutdown().unwrap();
        eventually("the unregistration", || {
            matches!(reg.discover("ADDER"), Err(RegistryError::NotFound(_))).then_some(())
        });
    }
}

#[test]
fn stock_peers_use_the_rust_registry() {
    for t in [Transport::Udp, Transport::Tcp] {
        let registry = RegistryServer::bind(t, "127.0.0.1:0").unwrap().allow_listing(true).spawn().unwrap();
        let port = registry.local_addr().port();
        let _stock = stock_server_registering(t, port);
        let reg = client(t, port);
        eventually("the stock server's registration", || reg.discover("ECHO").ok());
        let rust = rust_service_server(Some(reg.clone()));
        eventually("the Rust server's registration", || reg.discover("ADDER").ok());

        assert_eq!(python_lookup(t, port, "echo", "root.echo('hi')"), "ADDER,ECHO,SUM hi", "{t}");
        assert_eq!(python_lookup(t, port, "adder", "root.add(1, 2)"), "ADDER,ECHO,SUM 3", "{t}");
        let names: Vec<String> = registry.services().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["ADDER", "ECHO", "SUM"], "{t}");

        rust.shutdown().unwrap();
        eventually("the unregistration", || {
            registry.services().iter().all(|(n, _)| n == "ECHO").then_some(())
        });
    }
}

#[test]
fn the_rust_registry_prunes_entries_not_refreshed() {
    for t in [Transport::Udp, Transport::Tcp] {
        let registry = RegistryServer::bind(t, "127.0.0.1:0")
            .unwrap()
            .pruning_timeout(Duration::from_secs(1))
            .spawn()
            .unwrap();
        let reg = client(t, registry.local_addr().port());
        reg.register(&["ONCE".into()], 4242, None).unwrap();
        assert_eq!(reg.discover("once").unwrap(), vec![("127.0.0.1".to_owned(), 4242)]);
        // Listing is off, as rpyc's default.
        assert!(matches!(reg.list(None), Err(RegistryError::ListingDisabled)));
        std::thread::sleep(Duration::from_millis(2000));
        assert!(
            matches!(reg.discover("ONCE"), Err(RegistryError::NotFound(_))),
            "{t}: a stale entry is pruned"
        );
        // Re-registering brings it back; unregistering removes it.
        reg.register(&["ONCE".into()], 4242, None).unwrap();
        assert!(reg.discover("ONCE").is_ok());
        reg.unregister(4242, None).unwrap();
        eventually("the unregistration", || registry.services().is_empty().then_some(()));
    }
}

#[test]
fn a_stock_registry_prunes_too() {
    let registry = stock_registry(Transport::Udp, 2.0);
    let reg = client(Transport::Udp, registry.port());
    reg.register(&["BRIEF".into()], 4343, None).unwrap();
    assert_eq!(reg.discover("BRIEF").unwrap(), vec![("127.0.0.1".to_owned(), 4343)]);
    std::thread::sleep(Duration::from_millis(3000));
    assert!(matches!(reg.discover("BRIEF"), Err(RegistryError::NotFound(_))));
}

#[test]
fn garbage_or_silence_is_an_error_within_the_timeout() {
    // A "registry" that answers every datagram with junk, and one that
    // never answers.
    let junk = UdpSocket::bind("127.0.0.1:0").unwrap();
    let junk_port = junk.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((_, from)) = junk.recv_from(&mut buf) {
            let _ = junk.send_to(b"\xff\xfe not brine", from);
        }
    });
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();

    let timeout = Duration::from_millis(500);
    let t0 = Instant::now();
    let e = RegistryClient::udp("127.0.0.1", junk_port).with_timeout(timeout * 6).discover("X").unwrap_err();
    assert!(matches!(e, RegistryError::BadReply(_)), "{e}");
    let e = RegistryClient::udp("127.0.0.1", silent_port).with_timeout(timeout).discover("X").unwrap_err();
    assert!(matches!(e, RegistryError::Timeout { .. }), "{e}");
    assert!(e.to_string().contains("no answer"), "{e}");
    // Both came back within their timeouts (plus scheduling slack).
    assert!(t0.elapsed() < timeout * 7 + Duration::from_secs(5));

    // Silence over TCP: a listener that accepts and says nothing.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_port = l.local_addr().unwrap().port();
    let e = RegistryClient::tcp("127.0.0.1", tcp_port).with_timeout(timeout).list(None).unwrap_err();
    assert!(matches!(e, RegistryError::Timeout { .. }), "{e}");
    drop((l, silent));

    let e = Connection::connect_by_service(
        "X",
        RegistryClient::udp("127.0.0.1", junk_port).with_timeout(timeout * 6),
    )
    .unwrap_err();
    assert!(e.to_string().contains("service:X"), "{e}");
}

#[test]
fn the_rust_registry_survives_hostile_datagrams() {
    let registry = RegistryServer::bind(Transport::Udp, "127.0.0.1:0").unwrap().spawn().unwrap();
    let port = registry.local_addr().port();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut rng = common::XorShift64::new(11);
    let hostile: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"\x00".to_vec(),
        b"\x12\x12\x12\x12\x12\x12\x12\x12\x12\x12\x12\x12\x12\x12\x12\x12".to_vec(),
        // ("RPYC", "REGISTER", ((1,), 99999)): wrong types and a port out of range.
        rpyc_rs::brine::encode(&rpyc_rs::Value::Tuple(vec![
            "RPYC".into(),
            "REGISTER".into(),
            rpyc_rs::Value::Tuple(vec![rpyc_rs::Value::Tuple(vec![1.into()]), 99999.into()]),
        ]))
        .unwrap(),
        // An int with very many digits.
        [b"\x13".as_slice(), &[0xff], &[b'9'; 255]].concat(),
        vec![0xffu8; 1500],
    ];
    for d in hostile.iter().cloned().chain((0..300).map(|i| rng.bytes(1 + i % 1400))) {
        sock.send_to(&d, ("127.0.0.1", port)).unwrap();
    }
    // A TCP client that connects and says nothing does not block others.
    let reg = client(Transport::Udp, port);
    reg.register(&["STILL".into()], 5000, None).unwrap();
    assert_eq!(reg.discover("STILL").unwrap(), vec![("127.0.0.1".to_owned(), 5000)]);
    assert!(registry.is_running());

    let tcp = RegistryServer::bind(Transport::Tcp, "127.0.0.1:0").unwrap().spawn().unwrap();
    let tport = tcp.local_addr().port();
    let _idle = std::net::TcpStream::connect(("127.0.0.1", tport)).unwrap();
    let mut noisy = std::net::TcpStream::connect(("127.0.0.1", tport)).unwrap();
    std::io::Write::write_all(&mut noisy, &[0x12; 4000]).ok();
    let treg = client(Transport::Tcp, tport);
    treg.register(&["TCPSTILL".into()], 5001, None).unwrap();
    assert_eq!(treg.discover("tcpstill").unwrap(), vec![("127.0.0.1".to_owned(), 5001)]);
}

#[test]
fn a_registrar_refreshes_its_entry_and_unregisters_when_stopped() {
    for t in [Transport::Udp, Transport::Tcp] {
        // Entries live 1.5 s; the registrar refreshes every 100 ms.
        let registry = RegistryServer::bind(t, "127.0.0.1:0")
            .unwrap()
            .pruning_timeout(Duration::from_millis(1500))
            .spawn()
            .unwrap();
        let reg = client(t, registry.local_addr().port());
        let registrar =
            Registrar::start(reg.clone(), vec!["KEPT".into()], 4444, None, Duration::from_millis(100))
                .unwrap();
        eventually("the first registration", || reg.discover("KEPT").ok());
        // Well past the pruning timeout, the entry is still fresh.
        std::thread::sleep(Duration::from_millis(3000));
        assert_eq!(reg.discover("KEPT").unwrap(), vec![("127.0.0.1".to_owned(), 4444)], "{t}");
        registrar.stop();
        eventually("the unregistration", || registry.services().is_empty().then_some(()));
    }
}

#[test]
fn the_rust_registry_stays_bounded_under_a_registration_flood() {
    let registry = RegistryServer::bind(Transport::Udp, "127.0.0.1:0").unwrap().spawn().unwrap();
    let reg = client(Transport::Udp, registry.local_addr().port());
    // 120 new names per datagram (1.2 KB: one datagram holds 1500 bytes)
    // until the table is full.
    let per = 120;
    let rounds = rpyc_rs::registry::MAX_ENTRIES / per;
    for r in 0..rounds {
        let names: Vec<String> = (0..per).map(|i| format!("F{r:03}_{i:03}")).collect();
        reg.register(&names, 6000, None).unwrap();
    }
    let names: Vec<String> = (0..per).map(|i| format!("OVER{i:03}")).collect();
    let short = reg.clone().with_timeout(Duration::from_millis(300));
    assert!(matches!(short.register(&names, 6000, None), Err(RegistryError::Timeout { .. })));
    // Still serving: what it holds is answered.
    assert_eq!(reg.discover("F000_000").unwrap(), vec![("127.0.0.1".to_owned(), 6000)]);
    let total: usize = registry.services().iter().map(|(_, s)| s.len()).sum();
    assert!(total <= rpyc_rs::registry::MAX_ENTRIES, "{total}");
}

#[test]
fn classic_connect_by_service_finds_a_registered_classic_server() {
    let registry = RegistryServer::bind(Transport::Tcp, "127.0.0.1:0").unwrap().spawn().unwrap();
    let port = registry.local_addr().port();
    let opts = common::ServerOptions {
        args: vec!["--register".into(), format!("tcp:127.0.0.1:{port}")],
        ..Default::default()
    };
    let _classic = common::spawn_classic_server_with(&opts);
    let reg = client(Transport::Tcp, port);
    eventually("the classic server's registration", || reg.discover("SLAVE").ok());
    let c = rpyc_rs::classic::Classic::connect_by_service("slave", reg).unwrap();
    assert_eq!(c.eval_as::<i64>("6 * 7").unwrap(), 42);
    c.close();
}
