//! The Rust client against hostile servers: a fake server on 127.0.0.1
//! that reads one request and answers with garbage, an unknown seq, an
//! unknown label, an oversized or malformed frame, or silence. Each case
//! must end in a clear error within the timeout: never a panic or a hang.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use rpyc_rs::brine::{self, Value};
use rpyc_rs::protocol::{Error, Handler};
use rpyc_rs::{Address, Config, Connection, Dialect, Object};

/// Reads one whole frame from the client (so the reply follows a request).
fn read_frame(s: &mut TcpStream) -> Vec<u8> {
    let mut head = [0u8; 5];
    s.read_exact(&mut head).unwrap();
    let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let mut body = vec![0u8; len + 1];
    s.read_exact(&mut body).unwrap();
    body.truncate(len);
    body
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes().to_vec();
    f.push(0);
    f.extend_from_slice(payload);
    f.push(b'\n');
    f
}

/// `MSG_REPLY` for `seq` with a raw (already brine-encoded) body.
fn reply(seq: i64, body: &[u8]) -> Vec<u8> {
    let mut p = vec![2u8, 0x11];
    brine::put_int(&mut p, seq);
    p.extend_from_slice(body);
    frame(&p)
}

/// Starts a fake server that answers the first request with whatever
/// `answer` writes, then keeps the socket open until the client goes.
fn fake_server(answer: impl FnOnce(&mut TcpStream, i64) + Send + 'static) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let req = read_frame(&mut s);
        let h = rpyc_rs::protocol::message::parse_header(&req, Default::default()).unwrap();
        answer(&mut s, h.seq);
        let mut sink = [0u8; 1024];
        while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
    });
    port
}

fn client(port: u16, timeout: Duration) -> Connection {
    let cfg = Config::default().with_timeout(Some(timeout)).with_max_frame_size(1 << 20);
    // The dialect is told, not probed: each fake server answers only the
    // first request, which must be the test's own.
    Connection::builder(Address::tcp("127.0.0.1", port)).config(cfg).dialect(Dialect::Rpyc6).open().unwrap()
}

fn ping(conn: &Connection) -> Result<Object, Error> {
    conn.sync_request(Handler::Ping, vec![Object::from("x")])
}

#[test]
fn garbage_instead_of_a_frame_closes_with_a_clear_error() {
    let port = fake_server(|s, _| s.write_all(b"\x00\x00\x00\x03\x07abc\n").unwrap());
    let conn = client(port, Duration::from_secs(5));
    match ping(&conn) {
        Err(Error::Closed { reason }) => assert!(reason.contains("compression flag"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(conn.closed());
}

#[test]
fn a_frame_that_is_not_a_message_closes_the_connection() {
    let port = fake_server(|s, _| s.write_all(&frame(b"\x09\x09\x09")).unwrap());
    let conn = client(port, Duration::from_secs(5));
    match ping(&conn) {
        Err(Error::Closed { reason }) => assert!(reason.contains("invalid message"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_oversized_frame_is_refused_without_allocating() {
    let port = fake_server(|s, _| s.write_all(b"\xff\xff\xff\xf0\x00").unwrap());
    let conn = client(port, Duration::from_secs(5));
    match ping(&conn) {
        Err(Error::Closed { reason }) => assert!(reason.contains("exceeds"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_reply_to_an_unknown_seq_is_ignored_and_the_call_times_out() {
    let port = fake_server(|s, seq| {
        s.write_all(&reply(seq + 1000, b"\x11\x51\x00")).unwrap();
    });
    let conn = client(port, Duration::from_millis(500));
    let start = Instant::now();
    assert!(matches!(ping(&conn), Err(Error::Timeout)));
    assert!(start.elapsed() < Duration::from_secs(3));
    // The connection itself is still open: the bad reply was dropped.
    assert!(!conn.closed());
}

#[test]
fn an_unknown_label_fails_that_call_only() {
    let port = fake_server(|s, seq| {
        s.write_all(&reply(seq, b"\x11\x59\x00")).unwrap();
    });
    let conn = client(port, Duration::from_secs(5));
    match ping(&conn) {
        Err(Error::Protocol(m)) => assert!(m.contains("label"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_reference_to_an_object_we_never_sent_is_an_error() {
    // LOCAL_REF (3) to an id pack we do not hold.
    let mut body = vec![0x11, 0x53];
    brine::encode_into(&Value::Tuple(vec!["x.Y".into(), 1.into(), 2.into()]), &mut body).unwrap();
    let port = fake_server(move |s, seq| s.write_all(&reply(seq, &body)).unwrap());
    let conn = client(port, Duration::from_secs(5));
    match ping(&conn) {
        Err(Error::Protocol(m)) => assert!(m.contains("do not hold"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn deep_nesting_in_a_reply_is_refused() {
    let mut body = vec![0x11, 0x51];
    body.extend(std::iter::repeat_n(0x10u8, 100_000));
    body.push(0x00);
    let port = fake_server(move |s, seq| s.write_all(&reply(seq, &body)).unwrap());
    let conn = client(port, Duration::from_secs(5));
    // Not well-formed within the limits: refused before anything is built,
    // and the connection ends (as in the Python world).
    match ping(&conn) {
        Err(Error::Closed { reason }) => assert!(reason.contains("nested deeper than"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(conn.closed());
}

#[test]
fn a_silent_server_times_out_and_a_dead_one_fails_at_once() {
    let port = fake_server(|_, _| {});
    let conn = client(port, Duration::from_millis(300));
    assert!(matches!(ping(&conn), Err(Error::Timeout)));

    let port = fake_server(|s, _| {
        let _ = s.shutdown(std::net::Shutdown::Both);
    });
    let conn = client(port, Duration::from_secs(30));
    let start = Instant::now();
    assert!(matches!(ping(&conn), Err(Error::Closed { .. })));
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn a_truncated_frame_then_eof_is_reported_as_such() {
    let port = fake_server(|s, _| {
        s.write_all(b"\x00\x00\x00\x10\x00abc").unwrap();
        let _ = s.shutdown(std::net::Shutdown::Both);
    });
    let conn = client(port, Duration::from_secs(5));
    match ping(&conn) {
        Err(Error::Closed { reason }) => assert!(reason.contains("mid-frame"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_malformed_exception_is_a_protocol_error() {
    // MSG_EXCEPTION whose body is (1, 2): neither StopIteration nor vinegar.
    let port = fake_server(move |s, seq| {
        let mut payload = vec![3u8, 0x11];
        brine::put_int(&mut payload, seq);
        payload.extend_from_slice(b"\x11\x51\x52");
        s.write_all(&frame(&payload)).unwrap();
    });
    let conn = client(port, Duration::from_secs(5));
    match ping(&conn) {
        Err(Error::Protocol(m)) => assert!(m.contains("exception"), "{m}"),
        other => panic!("{other:?}"),
    }
}
