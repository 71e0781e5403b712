//! TLS against real rpyc, both ways, with certificates made at run time:
//!
//! * the Rust client -> `ThreadedServer(..., authenticator=SSLAuthenticator(...))`,
//!   with and without a required client certificate;
//! * the Rust client -> the real `rpyc_classic` command with `--ssl-*`;
//! * stock `rpyc.ssl_connect` -> the Rust server, with and without a client
//!   certificate, and the service reading the certificate's subject;
//! * every refusal named: expired, untrusted, wrong host, client
//!   certificate missing or refused.

mod common;

use std::time::Duration;

use common::pki::Pki;
use common::PyProcess;
use rpyc_rs::server::{Mode, ServerBuilder};
use rpyc_rs::service::{Args, Service};
use rpyc_rs::stream::tls::{ClientAuth, TlsAcceptor, TlsOptions, TlsServerOptions};
use rpyc_rs::{Address, Connection, Connector, FromObject};

const SERVICE: &str = r#"
    class TlsService(rpyc.Service):
        def on_connect(self, conn):
            self._conn = conn

        def exposed_echo(self, x):
            return x

        def exposed_whoami(self):
            cred = self._conn._config.get("credentials") or {}
            for rdn in cred.get("subject", ()):
                for key, value in rdn:
                    if key == "commonName":
                        return value
            return None
"#;

fn py_tls_server(pki: &Pki, server: &common::pki::Pair, client_ca: bool) -> PyProcess {
    let mut args = vec![
        "--ssl-keyfile".to_owned(),
        server.key.display().to_string(),
        "--ssl-certfile".to_owned(),
        server.cert.display().to_string(),
    ];
    if client_ca {
        args.extend(["--ssl-cafile".to_owned(), pki.ca.display().to_string()]);
        args.extend(["--ssl-cert-reqs".to_owned(), "required".to_owned()]);
    }
    common::spawn_rpyc_server_with(SERVICE, &common::ServerOptions { args, ..Default::default() })
}

fn connector(host: &str, port: u16, tls: TlsOptions) -> Connector {
    Connector::new(Address::tcp(host, port)).tls(tls).connect_timeout(Some(Duration::from_secs(10)))
}

fn open_err(c: Connector) -> String {
    match c.open() {
        Ok(_) => panic!("the connection should have been refused"),
        Err(e) => {
            eprintln!("refused as expected: {e}");
            e.to_string()
        }
    }
}

fn echo(conn: &Connection) -> i64 {
    i64::from_object(conn.root().unwrap().call_method("echo", (42,)).unwrap()).unwrap()
}

#[test]
fn rust_client_verifies_an_ssl_authenticator_server() {
    let pki = Pki::new();
    let server = py_tls_server(&pki, &pki.server, false);
    for host in ["127.0.0.1", "localhost"] {
        let conn = connector(host, server.port(), TlsOptions::new().ca_file(&pki.ca)).open().unwrap();
        assert_eq!(echo(&conn), 42);
        // The client sees the server's certificate.
        let cert = conn.peer_certificate().expect("the server's certificate");
        assert_eq!(cert.common_name(), Some("localhost"));
        assert!(cert.issuer.contains(&("commonName".to_owned(), "rpyc-rs test CA".to_owned())));
        // The server saw no client certificate.
        let who =
            Option::<String>::from_object(conn.root().unwrap().call_method("whoami", ()).unwrap()).unwrap();
        assert_eq!(who, None);
        conn.close();
    }
}

#[test]
fn mutual_tls_with_an_ssl_authenticator_server_accepted_and_refused() {
    let pki = Pki::new();
    let server = py_tls_server(&pki, &pki.server, true);
    let port = server.port();

    let good = TlsOptions::new().ca_file(&pki.ca).client_cert(&pki.client.cert, &pki.client.key);
    let conn = connector("127.0.0.1", port, good).open().unwrap();
    let who = String::from_object(conn.root().unwrap().call_method("whoami", ()).unwrap()).unwrap();
    assert_eq!(who, "alice", "the Python service reads our subject from its credentials");
    conn.close();

    let e = open_err(connector("127.0.0.1", port, TlsOptions::new().ca_file(&pki.ca)));
    assert!(e.contains("client certificate"), "{e}");

    let rogue = TlsOptions::new().ca_file(&pki.ca).client_cert(&pki.rogue_client.cert, &pki.rogue_client.key);
    let e = open_err(connector("127.0.0.1", port, rogue));
    assert!(e.contains("does not trust the CA") || e.contains("refused our certificate"), "{e}");
}

#[test]
fn refusals_name_their_reason() {
    let pki = Pki::new();
    let trust = || TlsOptions::new().ca_file(&pki.ca);

    let expired = py_tls_server(&pki, &pki.expired, false);
    let e = open_err(connector("127.0.0.1", expired.port(), trust()));
    assert!(e.contains("expired"), "{e}");

    let rogue = py_tls_server(&pki, &pki.rogue_server, false);
    let e = open_err(connector("127.0.0.1", rogue.port(), trust()));
    assert!(e.contains("not signed by a trusted CA"), "{e}");
    // The loudly named switch turns verification off.
    let conn = connector("127.0.0.1", rogue.port(), TlsOptions::new().danger_accept_invalid_certs(true))
        .open()
        .unwrap();
    assert_eq!(echo(&conn), 42);
    conn.close();

    let wrong = py_tls_server(&pki, &pki.wrong_host, false);
    let e = open_err(connector("127.0.0.1", wrong.port(), trust()));
    assert!(e.contains("not valid for the host"), "{e}");
    // ... unless the name it does carry is the one asked for.
    let conn = connector("127.0.0.1", wrong.port(), trust().server_name("other.example")).open().unwrap();
    assert_eq!(echo(&conn), 42);
    conn.close();

    // A self-signed CA certificate used as the server's own, as `openssl
    // req -x509` makes: Python accepts it, rustls does not, and says so.
    let selfie = py_tls_server(&pki, &pki.self_signed, false);
    let e = open_err(connector("127.0.0.1", selfie.port(), TlsOptions::new().ca_file(&pki.self_signed.cert)));
    assert!(e.contains("is a CA certificate"), "{e}");

    // Plain TCP to a TLS server, and TLS to a plain server: clear errors.
    let plain = common::spawn_rpyc_server(SERVICE);
    let e =
        open_err(connector("127.0.0.1", plain.port(), trust()).connect_timeout(Some(Duration::from_secs(2))));
    assert!(e.contains("does the peer speak TLS"), "{e}");
    let e = open_err(Connector::new(Address::tcp("127.0.0.1", rogue.port())));
    assert!(e.contains("closed") && e.contains("want TLS"), "{e}");
    let bad_ca =
        open_err(connector("127.0.0.1", plain.port(), TlsOptions::new().ca_file(pki.dir.join("none.pem"))));
    assert!(bad_ca.contains("none.pem"), "{bad_ca}");
}

/// The real `rpyc_classic` command, on a port we pick, announced once it
/// accepts connections.
fn rpyc_classic(args: &[String]) -> PyProcess {
    const CODE: &str = r#"
import os, socket, sys, threading, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
s.close()
def announce():
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    print("PORT", port, flush=True)
def watch_stdin():
    sys.stdin.buffer.read()
    os._exit(0)
threading.Thread(target=announce, daemon=True).start()
threading.Thread(target=watch_stdin, daemon=True).start()
from rpyc.cli.rpyc_classic import main
sys.argv = ["rpyc_classic", "--host", "127.0.0.1", "--port", str(port)] + sys.argv[1:]
main()
"#;
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    PyProcess::spawn_code(CODE, &args)
}

#[test]
fn rust_classic_client_to_rpyc_classic_with_ssl_options() {
    let pki = Pki::new();
    let p = |x: &std::path::Path| x.display().to_string();
    let base = vec![
        "--ssl-keyfile".to_owned(),
        p(&pki.server.key),
        "--ssl-certfile".to_owned(),
        p(&pki.server.cert),
    ];
    let server = rpyc_classic(&base);
    let c = connector("localhost", server.port(), TlsOptions::new().ca_file(&pki.ca)).open_classic().unwrap();
    assert_eq!(c.eval_as::<i64>("6 * 7").unwrap(), 42);
    c.close();

    // --ssl-cafile makes rpyc_classic require a client certificate.
    let mut with_ca = base.clone();
    with_ca.extend(["--ssl-cafile".to_owned(), p(&pki.ca)]);
    let server = rpyc_classic(&with_ca);
    let good = TlsOptions::new().ca_file(&pki.ca).client_cert(&pki.client.cert, &pki.client.key);
    let c = connector("127.0.0.1", server.port(), good).open_classic().unwrap();
    assert_eq!(c.eval_as::<String>("'tls'.upper()").unwrap(), "TLS");
    c.close();
    let e = open_err(connector("127.0.0.1", server.port(), TlsOptions::new().ca_file(&pki.ca)));
    assert!(e.contains("client certificate"), "{e}");
}

fn rust_tls_server(pki: &Pki, auth: ClientAuth) -> rpyc_rs::server::ServerHandle {
    rust_tls_server_with(pki, auth, |b| b)
}

fn rust_tls_server_with(
    pki: &Pki,
    auth: ClientAuth,
    adjust: impl FnOnce(ServerBuilder) -> ServerBuilder,
) -> rpyc_rs::server::ServerHandle {
    let mut opts = TlsServerOptions::new(&pki.server.cert, &pki.server.key);
    if auth != ClientAuth::None {
        opts = opts.client_ca_file(&pki.ca).client_auth(auth);
    }
    let acceptor = TlsAcceptor::new(&opts).unwrap();
    let builder = ServerBuilder::new(|| {
        Service::builder("TlsService")
            .method("add", |a: i64, b: i64| a + b)
            .method("whoami", |a: &Args<'_>| {
                a.conn().peer_certificate().and_then(|c| c.common_name().map(str::to_owned))
            })
            .build()
    });
    adjust(builder).tls(acceptor).bind().unwrap().spawn().unwrap()
}

/// Runs `rpyc.ssl_connect` in Python; its answer (or its error) is the
/// ready line.
fn python_ssl_client(port: u16, ca: &std::path::Path, cert: Option<&common::pki::Pair>) -> String {
    const CODE: &str = r#"
import sys, rpyc
port, ca = int(sys.argv[1]), sys.argv[2]
kw = {"ca_certs": ca}
if len(sys.argv) > 3:
    kw.update(certfile=sys.argv[3], keyfile=sys.argv[4])
try:
    c = rpyc.ssl_connect("127.0.0.1", port, **kw)
    print("READY", c.root.whoami(), c.root.add(40, 2), flush=True)
    c.close()
except Exception as e:
    print("READY ERROR", type(e).__name__, flush=True)
"#;
    let mut args = vec![port.to_string(), ca.display().to_string()];
    if let Some(pair) = cert {
        args.extend([pair.cert.display().to_string(), pair.key.display().to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    PyProcess::spawn_code(CODE, &args).ready_arg().to_owned()
}

#[test]
fn python_ssl_connect_to_the_rust_server() {
    let pki = Pki::new();
    let server = rust_tls_server(&pki, ClientAuth::None);
    let port = server.port().unwrap();
    assert_eq!(python_ssl_client(port, &pki.ca, None), "None 42");
    // A client certificate is not asked for, so the service sees none.
    assert_eq!(python_ssl_client(port, &pki.ca, Some(&pki.client)), "None 42");
    // Rust to Rust, over the same server.
    let conn = connector("localhost", port, TlsOptions::new().ca_file(&pki.ca)).open().unwrap();
    let n = i64::from_object(conn.root().unwrap().call_method("add", (1, 2)).unwrap()).unwrap();
    assert_eq!(n, 3);
    conn.close();
    server.shutdown().unwrap();
}

#[test]
fn rust_server_requiring_client_certificates() {
    let pki = Pki::new();
    let server = rust_tls_server(&pki, ClientAuth::Required);
    let port = server.port().unwrap();
    assert_eq!(python_ssl_client(port, &pki.ca, Some(&pki.client)), "alice 42");
    assert!(python_ssl_client(port, &pki.ca, None).starts_with("ERROR"));
    assert!(python_ssl_client(port, &pki.ca, Some(&pki.rogue_client)).starts_with("ERROR"));
    // Refused clients do not hurt the server.
    assert_eq!(python_ssl_client(port, &pki.ca, Some(&pki.client)), "alice 42");

    // The Rust client gets the refusal by name.
    let e = open_err(connector("127.0.0.1", port, TlsOptions::new().ca_file(&pki.ca)));
    assert!(e.contains("client certificate"), "{e}");
    let good = TlsOptions::new().ca_file(&pki.ca).client_cert(&pki.client.cert, &pki.client.key);
    let conn = connector("127.0.0.1", port, good).open().unwrap();
    let who = String::from_object(conn.root().unwrap().call_method("whoami", ()).unwrap()).unwrap();
    assert_eq!(who, "alice");
    conn.close();

    // Optional: both kinds of client get in; only one has a name.
    let optional = rust_tls_server(&pki, ClientAuth::Optional);
    let port = optional.port().unwrap();
    assert_eq!(python_ssl_client(port, &pki.ca, None), "None 42");
    assert_eq!(python_ssl_client(port, &pki.ca, Some(&pki.client)), "alice 42");
}

#[test]
fn tls_in_pool_mode_and_over_unix_sockets() {
    let pki = Pki::new();
    let pool = rust_tls_server_with(&pki, ClientAuth::Required, |b| b.mode(Mode::Pool { workers: 2 }));
    let port = pool.port().unwrap();
    assert_eq!(python_ssl_client(port, &pki.ca, Some(&pki.client)), "alice 42");
    assert!(python_ssl_client(port, &pki.ca, None).starts_with("ERROR"));
    assert_eq!(python_ssl_client(port, &pki.ca, Some(&pki.client)), "alice 42");
    pool.shutdown().unwrap();

    // Over a Unix socket the certificate is checked for "localhost".
    let dir = common::TempDir::new();
    let sock = dir.join("tls.sock");
    let unix = rust_tls_server_with(&pki, ClientAuth::None, |b| b.unix(&sock));
    let conn = Connector::new(Address::unix(&sock)).tls(TlsOptions::new().ca_file(&pki.ca)).open().unwrap();
    let n = i64::from_object(conn.root().unwrap().call_method("add", (20, 22)).unwrap()).unwrap();
    assert_eq!(n, 42);
    conn.close();
    unix.shutdown().unwrap();
}

#[test]
fn a_silent_tls_client_does_not_hold_up_the_server() {
    let pki = Pki::new();
    let server = rust_tls_server(&pki, ClientAuth::None);
    let port = server.port().unwrap();
    // Connects and never starts the handshake.
    let _silent = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let conn = connector("127.0.0.1", port, TlsOptions::new().ca_file(&pki.ca)).open().unwrap();
    let n = i64::from_object(conn.root().unwrap().call_method("add", (1, 1)).unwrap()).unwrap();
    assert_eq!(n, 2);
    conn.close();
    // Shutting down does not wait out the silent client's handshake.
    common::within(Duration::from_secs(5), "shutdown", move || server.shutdown().unwrap());
}
