//! The relay behind `rpyc-rs proxy`: accepts RPyC clients (TCP or a Unix
//! socket), connects each to the real server (TCP or Unix), and forwards
//! every byte both ways, optionally tracing the conversation
//! ([`crate::trace`]), recording it raw, and translating message framing
//! between rpyc 5.x and 6.x so mixed fleets can talk.
//!
//! A connection whose bytes nobody needs to look at (no trace, no record,
//! the same dialect on both sides) is relayed both ways by one thread
//! (`raw.rs`: fewer context switches per message, and one thread per
//! connection instead of two); with an `auto` client, once its first
//! message has told its dialect. Otherwise two pumps (one per direction)
//! run on their own threads:
//!
//! * **raw**: bytes are passed on as they are read; when tracing, they go
//!   through a [`FrameSplitter`] into the trace first (so a request is on
//!   record before its reply can come back). Garbage is shown as a hex
//!   excerpt and relayed unchanged; the trace of that direction stops.
//! * **frames**: while a translation is needed (or until the client's
//!   first message tells its dialect), whole frames are parsed, re-framed
//!   with [`crate::protocol::message::reframe`] and sent through a
//!   [`FrameWriter`] (which compresses as rpyc does). Garbage ends that one
//!   connection, with a notice that says why.
//!
//! The pumps live in `pump.rs`, the one-thread relay in `raw.rs`; this
//! file holds the sockets, the accept loop (on the listener the servers
//! use too, `crate::listener`) and the dialect probe.
//!
//! The server's dialect is given, or probed once per proxy: a 6.x PING on
//! a fresh connection; a 6.x server answers it, a 5.x server drops the
//! connection (and logs the unreadable message), and the proxy reconnects.
//!
//! [`Proxy::serve`] accepts until its stop flag is set, then shuts every
//! connection down, waits for the pumps and prints the summaries.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;

use crate::brine::{put_bytes, put_int, put_tuple_header, DecodeOptions};
use crate::channel::{frame_payload, ChannelConfig, FrameWriter, DEFAULT_MAX_FRAME_SIZE};
use crate::listener::{Accepted, Listener};
use crate::protocol::boxing::LABEL_VALUE;
use crate::protocol::message::{begin_request, split_message, Dialect, Handler, MSG_REPLY};
use crate::stream::WriteHalf;
use crate::trace::format::Format;
use crate::trace::{ConnTrace, FrameSplitter, Piece, Side};

mod pump;
mod raw;

use pump::{Decision, Pump, Verdict};

/// Where the proxy listens or where its server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `host:port` (a name, an IPv4 address or a bracketed IPv6 address).
    Tcp(String),
    /// A Unix socket path.
    Unix(PathBuf),
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Tcp(a) => f.write_str(a),
            Endpoint::Unix(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Which dialect a side speaks: known, or to be found out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialectChoice {
    /// The client's: from its first message. The server's: probed once.
    Auto,
    /// Told.
    Fixed(Dialect),
}

/// A sink for trace lines or notices.
pub type Sink = Box<dyn Write + Send>;

/// How to build a [`Proxy`].
pub struct ProxyBuilder {
    listen: Endpoint,
    to: Endpoint,
    trace: Option<(Format, Sink)>,
    notices: Option<Sink>,
    client: DialectChoice,
    server: DialectChoice,
    record: Option<PathBuf>,
    max_frame_size: usize,
    probe_timeout: Duration,
}

impl ProxyBuilder {
    /// A proxy listening on `listen` and relaying to `to`, dialects `auto`,
    /// no trace, notices dropped.
    pub fn new(listen: Endpoint, to: Endpoint) -> ProxyBuilder {
        ProxyBuilder {
            listen,
            to,
            trace: None,
            notices: None,
            client: DialectChoice::Auto,
            server: DialectChoice::Auto,
            record: None,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            probe_timeout: Duration::from_secs(10),
        }
    }

    /// Traces every message to `out` in `format`, with a summary per
    /// connection at its end.
    pub fn trace(mut self, format: Format, out: Sink) -> Self {
        self.trace = Some((format, out));
        self
    }

    /// Where to say why a connection ended early (unreachable server,
    /// garbage while translating).
    pub fn notices(mut self, out: Sink) -> Self {
        self.notices = Some(out);
        self
    }

    /// The client side's dialect.
    pub fn client_dialect(mut self, d: DialectChoice) -> Self {
        self.client = d;
        self
    }

    /// The server side's dialect.
    pub fn server_dialect(mut self, d: DialectChoice) -> Self {
        self.server = d;
        self
    }

    /// Writes what each side sent, raw, to `DIR/cN.client.raw` and
    /// `DIR/cN.server.raw` (`rpyc-rs decode` reads them back).
    pub fn record(mut self, dir: PathBuf) -> Self {
        self.record = Some(dir);
        self
    }

    /// How long connecting to the server, and the dialect probe, may take
    /// (default 10 s).
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.probe_timeout = t;
        self
    }

    /// The largest frame parsed (larger ones are garbage).
    pub fn max_frame_size(mut self, n: usize) -> Self {
        self.max_frame_size = n;
        self
    }

    /// Binds the listening socket.
    pub fn bind(self) -> io::Result<Proxy> {
        let listener = match &self.listen {
            Endpoint::Tcp(a) => Listener::bind_tcp(a.as_str())?,
            Endpoint::Unix(p) => Listener::bind_unix(p)?,
        };
        if let Some(dir) = &self.record {
            std::fs::create_dir_all(dir)?;
        }
        let (format, out) = match self.trace {
            Some((f, o)) => (Some(f), Some(o)),
            None => (None, None),
        };
        let shared = Shared {
            to: self.to,
            client: self.client,
            server: Mutex::new(match self.server {
                DialectChoice::Fixed(d) => Some(d),
                DialectChoice::Auto => None,
            }),
            format,
            out: Mutex::new(out),
            notices: Mutex::new(self.notices),
            record: self.record,
            max: self.max_frame_size,
            probe_timeout: self.probe_timeout,
            next_conn: AtomicU64::new(1),
            live: Mutex::new(HashMap::new()),
        };
        Ok(Proxy { listener, shared: Arc::new(shared) })
    }
}

/// A connected socket of either family; both pumps share it.
#[derive(Debug)]
enum Sock {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Sock {
    /// Wraps an accepted client (TCP without Nagle, as rpyc's sockets).
    fn accepted(a: Accepted) -> io::Result<Sock> {
        match a {
            Accepted::Tcp(s) => {
                s.set_nodelay(true)?;
                Ok(Sock::Tcp(s))
            }
            Accepted::Unix(s) => Ok(Sock::Unix(s)),
        }
    }

    fn connect(to: &Endpoint, timeout: Duration) -> io::Result<Sock> {
        match to {
            Endpoint::Tcp(a) => {
                let mut last = None;
                for sa in a.to_socket_addrs()? {
                    match TcpStream::connect_timeout(&sa, timeout) {
                        Ok(s) => {
                            s.set_nodelay(true)?;
                            return Ok(Sock::Tcp(s));
                        }
                        Err(e) => last = Some(e),
                    }
                }
                Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address")))
            }
            Endpoint::Unix(p) => Ok(Sock::Unix(UnixStream::connect(p)?)),
        }
    }

    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Sock::Tcp(s) => (&*s).read(buf),
            Sock::Unix(s) => (&*s).read(buf),
        }
    }

    fn write_all(&self, data: &[u8]) -> io::Result<()> {
        match self {
            Sock::Tcp(s) => (&*s).write_all(data),
            Sock::Unix(s) => (&*s).write_all(data),
        }
    }

    /// One `write(2)`: how much was taken (a non-blocking socket may take
    /// part or nothing: `WouldBlock`).
    fn write(&self, data: &[u8]) -> io::Result<usize> {
        match self {
            Sock::Tcp(s) => (&*s).write(data),
            Sock::Unix(s) => (&*s).write(data),
        }
    }

    fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match self {
            Sock::Tcp(s) => s.set_nonblocking(on),
            Sock::Unix(s) => s.set_nonblocking(on),
        }
    }

    fn fd(&self) -> RawFd {
        match self {
            Sock::Tcp(s) => s.as_raw_fd(),
            Sock::Unix(s) => s.as_raw_fd(),
        }
    }

    fn shutdown(&self, how: Shutdown) {
        let _ = match self {
            Sock::Tcp(s) => s.shutdown(how),
            Sock::Unix(s) => s.shutdown(how),
        };
    }

    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Sock::Tcp(s) => s.set_read_timeout(t),
            Sock::Unix(s) => s.set_read_timeout(t),
        }
    }
}

/// The sending half a [`FrameWriter`] needs, over a shared socket.
struct SockWriter(Arc<Sock>);

impl WriteHalf for SockWriter {
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.0.write_all(data)
    }
    fn shutdown(&mut self) -> io::Result<()> {
        self.0.shutdown(Shutdown::Both);
        Ok(())
    }
}

/// A live connection's two sockets, for shutting it down from outside.
type SockPair = (Arc<Sock>, Arc<Sock>);

struct Shared {
    to: Endpoint,
    client: DialectChoice,
    /// The server's dialect once told or probed.
    server: Mutex<Option<Dialect>>,
    format: Option<Format>,
    out: Mutex<Option<Sink>>,
    notices: Mutex<Option<Sink>>,
    record: Option<PathBuf>,
    max: usize,
    probe_timeout: Duration,
    next_conn: AtomicU64,
    live: Mutex<HashMap<u64, SockPair>>,
}

impl Shared {
    fn emit(&self, lines: &[String]) {
        let mut out = self.out.lock();
        if let Some(w) = out.as_mut() {
            for l in lines {
                let _ = writeln!(w, "{l}");
            }
            let _ = w.flush();
        }
    }

    fn notice(&self, conn: u64, text: &str) {
        if let Some(w) = self.notices.lock().as_mut() {
            let _ = writeln!(w, "rpyc-rs proxy: c{conn}: {text}");
            let _ = w.flush();
        }
        if let Some(f) = self.format {
            self.emit(&[f.notice(conn, text)]);
        }
    }
}

/// A bound proxy; [`Proxy::serve`] runs it.
pub struct Proxy {
    listener: Listener,
    shared: Arc<Shared>,
}

impl Proxy {
    /// Where it listens: `127.0.0.1:PORT` (the port it got) or the path.
    pub fn local_addr(&self) -> String {
        match (self.listener.tcp_addr(), self.listener.unix_path()) {
            (Some(a), _) => a.map(|a| a.to_string()).unwrap_or_default(),
            (None, Some(p)) => p.display().to_string(),
            (None, None) => String::new(),
        }
    }

    /// Relays connections until `stop` is set, then ends every connection,
    /// waits for them and returns.
    pub fn serve(self, stop: &AtomicBool) -> io::Result<()> {
        let mut threads: Vec<JoinHandle<()>> = Vec::new();
        while !stop.load(Ordering::SeqCst) {
            threads.retain(|t| !t.is_finished());
            if !self.listener.wait_readable(100)? {
                continue;
            }
            let client = match self.listener.accept().and_then(Sock::accepted) {
                Ok(c) => Arc::new(c),
                Err(e) if e.kind() == io::ErrorKind::Interrupted || e.kind() == io::ErrorKind::WouldBlock => {
                    continue
                }
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                Err(e) => return Err(e),
            };
            let shared = self.shared.clone();
            let conn = shared.next_conn.fetch_add(1, Ordering::SeqCst);
            threads.push(std::thread::spawn(move || relay(shared, conn, client)));
        }
        for (a, b) in self.shared.live.lock().values() {
            a.shutdown(Shutdown::Both);
            b.shutdown(Shutdown::Both);
        }
        for t in threads {
            let _ = t.join();
        }
        Ok(())
    }
}

fn relay(shared: Arc<Shared>, conn: u64, client: Arc<Sock>) {
    let server = match connect_server(&shared, conn) {
        Ok(s) => s,
        Err(why) => {
            shared.notice(conn, &why);
            client.shutdown(Shutdown::Both);
            return;
        }
    };
    shared.live.lock().insert(conn, (client.clone(), server.clone()));
    let server_dialect = *shared.server.lock();
    let decision = Arc::new(Decision::new());
    if let (DialectChoice::Fixed(c), Some(s)) = (shared.client, server_dialect) {
        decision.set(Verdict::Dialects(c, s));
    }
    // Nothing to look at in the bytes (no trace, no record, no translation):
    // one thread relays both ways (raw.rs). An `auto` client is heard first.
    let mut first = Vec::new();
    if shared.format.is_none() && shared.record.is_none() {
        let raw = match (decision.peek(), server_dialect) {
            (Some(Verdict::Dialects(c, s)), _) => c == s,
            (None, Some(s)) => {
                let got = raw::read_first(&client, shared.max);
                first = got.bytes;
                match got.dialect {
                    Some(c) if c != s => {
                        decision.set(Verdict::Dialects(c, s));
                        false
                    }
                    // The same dialect, or bytes that are no rpyc message
                    // (relayed unchanged, as the pumps would).
                    _ => true,
                }
            }
            _ => false,
        };
        if raw {
            let sent = std::mem::take(&mut first);
            let outcome = server.write_all(&sent).and_then(|()| raw::relay(&client, &server));
            if let Err(e) = outcome {
                shared.notice(conn, &format!("relaying failed: {e}"));
            }
            client.shutdown(Shutdown::Both);
            server.shutdown(Shutdown::Both);
            shared.live.lock().remove(&conn);
            return;
        }
    }
    let trace = shared.format.map(|_| Arc::new(Mutex::new(ConnTrace::new(conn, shared.max))));
    let file = |side: &str| {
        shared.record.as_ref().and_then(|d| File::create(d.join(format!("c{conn}.{side}.raw"))).ok())
    };
    let up = Pump {
        shared: shared.clone(),
        conn,
        from: Side::Client,
        src: client.clone(),
        dst: server.clone(),
        trace: trace.clone(),
        record: file("client"),
        decision: decision.clone(),
        first,
    };
    let down = Pump {
        shared: shared.clone(),
        conn,
        from: Side::Server,
        src: server.clone(),
        dst: client.clone(),
        trace: trace.clone(),
        record: file("server"),
        decision: decision.clone(),
        first: Vec::new(),
    };
    let down = std::thread::spawn(move || down.run());
    up.run();
    let _ = down.join();
    shared.live.lock().remove(&conn);
    if let (Some(f), Some(t)) = (shared.format, trace) {
        let summary = t.lock().summary(true);
        shared.emit(&f.summary(&summary));
    }
}

/// Connects to the server and, when its dialect is `auto` and not yet
/// known, probes it.
fn connect_server(shared: &Shared, conn: u64) -> Result<Arc<Sock>, String> {
    let connect = || {
        Sock::connect(&shared.to, shared.probe_timeout)
            .map(Arc::new)
            .map_err(|e| format!("cannot connect to the server at {}: {e}", shared.to))
    };
    let sock = connect()?;
    let mut known = shared.server.lock();
    if known.is_some() {
        return Ok(sock);
    }
    match probe(&sock, shared.max, shared.probe_timeout) {
        Ok(true) => {
            *known = Some(Dialect::Rpyc6);
            Ok(sock)
        }
        Ok(false) => {
            *known = Some(Dialect::Rpyc5);
            drop(known);
            shared.notice(conn, "the server did not take a 6.x message: speaking rpyc 5.x to it");
            connect()
        }
        Err(e) => Err(format!(
            "cannot tell which rpyc the server at {} runs ({e}); pass --server-dialect 5 or 6",
            shared.to
        )),
    }
}

/// Sends a 6.x PING and reads the answer: true for a 6.x reply, false when
/// the server drops the connection (a 5.x server cannot read the message).
fn probe(sock: &Arc<Sock>, max: usize, timeout: Duration) -> io::Result<bool> {
    let mut buf = Vec::new();
    begin_request(&mut buf, 0, Handler::Ping, false);
    put_tuple_header(&mut buf, 2).map_err(io::Error::other)?;
    put_int(&mut buf, LABEL_VALUE);
    put_tuple_header(&mut buf, 1).map_err(io::Error::other)?;
    put_bytes(&mut buf, b"rpyc-rs proxy dialect probe").map_err(io::Error::other)?;
    let mut w = FrameWriter::new(Box::new(SockWriter(sock.clone())), &ChannelConfig::default());
    w.send_prepared(&mut buf).map_err(io::Error::other)?;
    sock.set_read_timeout(Some(timeout))?;
    let mut split = FrameSplitter::new(max);
    let mut chunk = vec![0u8; 4096];
    let answer = loop {
        let n = match sock.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break false,
            Err(e) => return Err(e),
        };
        if n == 0 {
            break false;
        }
        split.push(&chunk[..n]);
        match split.next_piece() {
            None => continue,
            Some(Piece::Frame(raw, span, _)) => {
                let payload = frame_payload(&raw, span, max).map_err(io::Error::other)?;
                let m = split_message(&payload, DecodeOptions::default()).map_err(io::Error::other)?;
                break m.dialect == Dialect::Rpyc6 && m.msg == MSG_REPLY;
            }
            Some(Piece::Garbage(g)) => return Err(io::Error::other(g.reason)),
        }
    };
    sock.set_read_timeout(None)?;
    Ok(answer)
}
