//! The Rust client finds out whether a server speaks rpyc 5.x or 6.x
//! framing without being told. ci/test runs this file against rpyc 6.0.2
//! and again against 5.3.1 (`RPYC_RS_PYTHON`), so both dialects are met;
//! the explicit overrides stay and skip the probe.

mod common;

use std::time::{Duration, Instant};

use rpyc_rs::{Address, Config, Connection, Connector, Dialect, FromObject};

const ECHO: &str = r#"
    class EchoService(rpyc.Service):
        def exposed_echo(self, x):
            return x
"#;

fn echo(conn: &Connection, v: i64) -> i64 {
    i64::from_object(conn.root().unwrap().call_method("echo", (v,)).unwrap()).unwrap()
}

fn right() -> Dialect {
    if common::rpyc5() {
        Dialect::Rpyc5
    } else {
        Dialect::Rpyc6
    }
}

fn wrong() -> Dialect {
    if common::rpyc5() {
        Dialect::Rpyc6
    } else {
        Dialect::Rpyc5
    }
}

#[test]
fn detects_the_dialect_over_tcp_and_unix_sockets() {
    let server = common::spawn_rpyc_server(ECHO);
    let conn = Connection::connect("127.0.0.1", server.port()).unwrap();
    assert_eq!(echo(&conn, 1), 1);
    conn.close();

    let dir = common::TempDir::new();
    let sock = dir.join("echo.sock");
    let opts = common::ServerOptions { unix_socket: Some(sock.clone()), ..Default::default() };
    let _unix = common::spawn_rpyc_server_with(ECHO, &opts);
    let conn = Connector::new(Address::unix(&sock)).open().unwrap();
    assert_eq!(echo(&conn, 2), 2);
    conn.close();
}

#[test]
fn detects_the_dialect_of_a_subprocess() {
    // A classic server on the child's stdin/stdout (what rpyc's
    // connect_subproc talks to); it is started a second time when the
    // first guess is wrong.
    const SERVER: &str = "import os, sys, rpyc\n\
        i, o = sys.stdin, sys.stdout\n\
        sys.stdin = open(os.devnull)\n\
        sys.stdout = sys.stderr\n\
        conn = rpyc.utils.factory.connect_pipes(i, o, service=rpyc.SlaveService)\n\
        try:\n    conn.serve_all()\nexcept (KeyboardInterrupt, EOFError):\n    pass\n";
    common::require_rpyc();
    let python = common::python();
    let c = Connector::new(Address::subprocess(python, &["-u", "-c", SERVER])).open_classic().unwrap();
    assert_eq!(c.eval_as::<i64>("6 * 7").unwrap(), 42);
    c.close();
}

#[test]
fn explicit_dialects_skip_the_probe_and_the_wrong_one_fails_cleanly() {
    let server = common::spawn_rpyc_server(ECHO);
    let at = Address::tcp("127.0.0.1", server.port());
    let conn = Connector::new(at.clone()).dialect(right()).open().unwrap();
    assert_eq!(echo(&conn, 3), 3);
    conn.close();
    // The legacy override of the config is honoured as before.
    let conn = Connector::new(at.clone())
        .config(Config::default().with_legacy_framing(common::rpyc5()))
        .open()
        .unwrap();
    assert_eq!(echo(&conn, 4), 4);
    conn.close();

    // Told the wrong dialect, the server hangs up: an error, not a hang.
    let conn =
        Connector::new(at.clone()).dialect(wrong()).timeout(Some(Duration::from_secs(10))).open().unwrap();
    let e = conn.root().unwrap_err();
    assert!(matches!(e, rpyc_rs::Error::Closed { .. }), "{e}");
}

/// Not an assertion on speed: prints what the probe costs, for the docs.
#[test]
fn probe_cost_is_reported() {
    let server = common::spawn_rpyc_server(ECHO);
    let at = Address::tcp("127.0.0.1", server.port());
    let time = |c: &Connector| {
        let mut best = Duration::MAX;
        for _ in 0..5 {
            let t0 = Instant::now();
            let conn = c.open().unwrap();
            best = best.min(t0.elapsed());
            conn.close();
        }
        best
    };
    let told = time(&Connector::new(at.clone()).dialect(right()));
    let detected = time(&Connector::new(at));
    eprintln!(
        "rpyc {}: open told {:?}, detected {:?} (probe cost {:?})",
        common::require_rpyc(),
        told,
        detected,
        detected.saturating_sub(told)
    );
}
