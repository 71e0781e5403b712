//! Servers: accept connections and serve a service on each, as rpyc's
//! `ThreadedServer`, `ThreadPoolServer` and `OneShotServer` do.
//!
//! * [`Mode::Threaded`]: a thread serves a connection while it is busy.
//!   After [`ServerBuilder::linger`] without a request the thread ends and
//!   the connection is parked with the watcher (`watcher.rs`), which gives it a
//!   new thread when its next request arrives. Active clients keep the
//!   lowest latency; idle ones cost no thread.
//! * [`Mode::Pool`]: a fixed number of worker threads for any number of
//!   connections. The watcher hands a parked connection with data to a
//!   free worker, which serves what is buffered and parks it again. A
//!   worker serving a request that calls back into the client stays with
//!   that connection until the request is done (the engine reads on the
//!   waiting thread), so nested calls work here too.
//! * [`Mode::OneShot`]: serve the first connection, then stop.
//!
//! Hostile or heavy load is bounded rather than queued: past
//! [`ServerBuilder::max_connections`] (or when the process runs out of
//! descriptors) a new client is accepted and closed at once, never left
//! hanging in the backlog; the backlog is rpyc's 4096; an optional idle
//! timeout closes parked connections; a send that makes no progress for
//! [`ServerBuilder::write_timeout`] ends that connection, so a peer that
//! never reads cannot hold a worker.
//!
//! Shutdown ([`ShutdownHandle::shutdown`]) stops accepting and closes every
//! idle connection at once; requests already running get
//! [`ServerBuilder::grace`] to finish and send their replies (their
//! connections are closed for reading, so no new request starts). After the
//! grace period every connection is closed and `serve` returns without
//! waiting for handlers that are still running. Each connection gets its
//! own root from the factory (per-connection state, as rpyc instantiates a
//! service class per connection). An invalid frame or a dead client ends
//! that one connection, never the server.
//!
//! With [`ServerBuilder::tls`] every accepted stream is wrapped in TLS; the
//! handshake runs on a thread of its own (never the accept loop's), and the
//! client's certificate reaches the service as
//! [`Connection::peer_certificate`]. With [`ServerBuilder::auto_register`]
//! the server keeps itself registered with an rpyc registry while it runs.
//!
//! A pool server on a free port, used and shut down:
//!
//! ```
//! use rpyc_rs::server::{Mode, ServerBuilder};
//! use rpyc_rs::service::Service;
//! use rpyc_rs::Connection;
//!
//! let server = ServerBuilder::new(|| Service::builder("Calc").method("add", |a: i64, b: i64| a + b).build())
//!     .mode(Mode::Pool { workers: 2 })
//!     .tcp("127.0.0.1:0")?
//!     .bind()?;
//! let port = server.port().ok_or("a TCP server has a port")?;
//! let handle = server.spawn()?; // serve() instead blocks this thread
//! let conn = Connection::connect("127.0.0.1", port)?;
//! assert_eq!(conn.root()?.call_method("add", (40, 2))?.extract::<i64>()?, 42);
//! conn.close();
//! handle.shutdown()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod builder;
mod serve;
mod watcher;

use builder::Limits;
pub use builder::{
    ServerBuilder, DEFAULT_BACKLOG, DEFAULT_GRACE, DEFAULT_LINGER, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_WRITE_TIMEOUT,
};

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::listener::Listener;
use crate::protocol::{Config, Connection};
use crate::registry::RegistryClient;
use crate::service::Expose;
use crate::stream::tls::{PeerCertificate, TlsAcceptor};
use crate::stream::Stream;

/// Makes the root object for each new connection.
pub type RootFactory = Arc<dyn Fn() -> Arc<dyn Expose> + Send + Sync>;

/// How connections are given threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// A thread per busy connection.
    Threaded,
    /// A bounded pool of worker threads shared by all connections.
    Pool {
        /// How many workers.
        workers: usize,
    },
    /// Serve one connection, then stop.
    OneShot,
}

/// Where a server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerAddr {
    /// A TCP address (IPv4 or IPv6).
    Tcp(SocketAddr),
    /// A Unix domain socket path.
    Unix(PathBuf),
}

impl ServerAddr {
    /// The TCP port, for a TCP address.
    pub fn port(&self) -> Option<u16> {
        match self {
            ServerAddr::Tcp(a) => Some(a.port()),
            ServerAddr::Unix(_) => None,
        }
    }
}

impl std::fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerAddr::Tcp(a) => write!(f, "{a}"),
            ServerAddr::Unix(p) => write!(f, "{}", p.display()),
        }
    }
}

struct Shared {
    /// TLS on every accepted stream, when set.
    tls: Option<TlsAcceptor>,
    factory: RootFactory,
    config: Config,
    limits: Limits,
    stop: AtomicBool,
    conns: Mutex<HashMap<u64, Connection>>,
    count_changed: Condvar,
    /// Threads serving connections (threaded and one-shot modes).
    threads: Mutex<Vec<JoinHandle<()>>>,
    next_id: AtomicU64,
    /// Wakes the accept loop.
    wake: Waker,
    /// Connections waiting for their next request, and since when.
    parked: Mutex<HashMap<u64, Instant>>,
    /// Wakes the watcher.
    watcher_wake: Waker,
    /// A connection ended or was parked since the watcher last gave
    /// memory back.
    closed_any: AtomicBool,
}

/// A self-pipe: lets another thread interrupt a `poll`.
struct Waker {
    tx: UnixStream,
    rx: UnixStream,
}

impl Waker {
    fn new() -> io::Result<Waker> {
        let (rx, tx) = UnixStream::pair()?;
        rx.set_nonblocking(true)?;
        tx.set_nonblocking(true)?;
        Ok(Waker { tx, rx })
    }

    fn wake(&self) {
        let _ = (&self.tx).write(&[1]);
    }

    fn drain(&self) {
        let mut buf = [0u8; 64];
        while matches!((&self.rx).read(&mut buf), Ok(n) if n > 0) {}
    }
}

impl Shared {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// A connection over `stream` with a fresh root; `cert` is what a TLS
    /// client presented.
    fn connection(&self, stream: Stream, cert: Option<PeerCertificate>) -> Connection {
        let mut config = self.config.clone();
        config.peer_certificate = cert.map(Arc::new);
        Connection::new(stream, (self.factory)(), config)
    }

    /// Does the TLS handshake of an accepted stream on a thread of its own
    /// (a slow or silent client must not hold up the accept loop), then
    /// serves the connection there for as long as threaded mode would
    /// (`linger`) and parks it with the others. A shutdown that began
    /// meanwhile ends it.
    fn spawn_tls(self: &Arc<Self>, tls: TlsAcceptor, stream: Stream, linger: Duration) {
        let shared = self.clone();
        let peer = stream.peer.clone();
        let spawned = std::thread::Builder::new().name(format!("rpyc-tls-{peer}")).spawn(move || {
            let stopping = || shared.stopping();
            match tls.accept(stream, shared.config.connect_timeout, &stopping) {
                Ok((stream, cert)) => {
                    let conn = shared.connection(stream, cert);
                    let id = shared.register(conn.clone());
                    if shared.stopping() {
                        return shared.end(id, &conn, "server shutting down");
                    }
                    shared.serve_on_this_thread(id, conn, Some(linger));
                }
                Err(e) => log::info!("TLS handshake with {peer} failed: {e}"),
            }
        });
        match spawned {
            Ok(h) => {
                let mut threads = self.threads.lock();
                threads.retain(|t| !t.is_finished());
                threads.push(h);
            }
            Err(e) => log::error!("cannot start a thread for a TLS handshake: {e}"),
        }
    }

    fn register(&self, conn: Connection) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.conns.lock().insert(id, conn);
        id
    }

    /// Ends a connection and forgets it.
    fn end(&self, id: u64, conn: &Connection, why: &str) {
        conn.abort(why);
        self.parked.lock().remove(&id);
        let removed = self.conns.lock().remove(&id);
        self.closed_any.store(true, Ordering::Release);
        self.count_changed.notify_all();
        drop(removed);
    }

    /// Hands a connection with nothing more to serve to the watcher (or,
    /// when stopping, ends it).
    fn park(&self, id: u64, conn: &Connection) {
        if self.stopping() || conn.closed() {
            self.end(id, conn, "server shutting down");
            return;
        }
        self.parked.lock().insert(id, Instant::now());
        // The thread that served it may be about to end (threaded mode):
        // what it freed goes back to the system on the watcher's next tick.
        self.closed_any.store(true, Ordering::Release);
        self.watcher_wake.wake();
    }

    /// Serves connection `id` on a new thread (`linger` as in
    /// [`Shared::serve_on_this_thread`]). When no thread can be started
    /// (the process is at its limit) the connection is closed rather than
    /// left waiting for a thread that never comes.
    fn spawn_for(self: &Arc<Self>, id: u64, conn: Connection, linger: Option<Duration>) {
        let (shared, c) = (self.clone(), conn.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("rpyc-conn-{id}"))
            .spawn(move || shared.serve_on_this_thread(id, c, linger));
        match spawned {
            Ok(h) => {
                let mut threads = self.threads.lock();
                threads.retain(|t| !t.is_finished());
                threads.push(h);
            }
            Err(e) => {
                log::error!("cannot start a thread: {e}; closing {}", conn.peer());
                self.end(id, &conn, "no thread to serve it");
            }
        }
    }

    /// Serves a connection on this thread while requests keep coming
    /// within `linger` (forever when `None`), then parks it.
    fn serve_on_this_thread(self: &Arc<Self>, id: u64, conn: Connection, linger: Option<Duration>) {
        loop {
            match conn.serve_busy(linger) {
                Ok(true) => {}
                Ok(false) => return self.park(id, &conn),
                Err(e) => {
                    log::debug!("connection from {} ended: {e}", conn.peer());
                    return self.end(id, &conn, "connection ended");
                }
            }
        }
    }

    /// The first step of shutdown, safe to repeat: idle connections are
    /// closed now; busy ones are closed for reading, so the request they
    /// run can still send its reply but no new request starts.
    fn begin_shutdown(&self) {
        self.stop.store(true, Ordering::Release);
        self.wake.wake();
        self.watcher_wake.wake();
        let parked: Vec<u64> = self.parked.lock().drain().map(|(id, _)| id).collect();
        for id in parked {
            let conn = self.conns.lock().get(&id).cloned();
            if let Some(c) = conn {
                self.end(id, &c, "server shutting down");
            }
        }
        let conns = self.conns.lock();
        for c in conns.values() {
            if let Some(fd) = c.fileno() {
                // SAFETY: the descriptor belongs to a connection held in
                // `conns` (locked), so it is open and still this socket.
                unsafe {
                    libc::shutdown(fd, libc::SHUT_RD);
                }
            }
        }
        drop(conns);
        self.count_changed.notify_all();
    }

    /// Waits up to `grace` for every connection to end, then closes the
    /// rest. True if they all ended in time.
    fn finish_shutdown(&self, grace: Duration) -> bool {
        let deadline = Instant::now() + grace;
        let mut conns = self.conns.lock();
        while !conns.is_empty() {
            if self.count_changed.wait_until(&mut conns, deadline).timed_out() {
                break;
            }
        }
        let clean = conns.is_empty();
        let rest: Vec<Connection> = conns.drain().map(|(_, c)| c).collect();
        drop(conns);
        if !clean {
            log::warn!(
                "{} connection(s) still busy after the {grace:?} grace period: closing them",
                rest.len()
            );
        }
        for c in rest {
            c.abort("server shut down");
        }
        clean
    }
}

/// A bound server, ready to [`serve`](Server::serve).
pub struct Server {
    /// What to keep registered with a registry while serving.
    register: Option<(RegistryClient, Vec<String>)>,
    listener: Option<Listener>,
    addr: ServerAddr,
    mode: Mode,
    shared: Arc<Shared>,
}

/// Stops a running server from any thread.
///
/// Use it to stop a server from another thread or component;
/// [`ServerHandle::shutdown`] stops it and also waits for its threads.
#[derive(Clone)]
pub struct ShutdownHandle {
    shared: Arc<Shared>,
}

impl ShutdownHandle {
    /// Stops accepting, closes idle connections and lets running requests
    /// finish; the server's `serve` returns once they have, or once the
    /// grace period is over (see the module docs).
    pub fn shutdown(&self) {
        self.shared.begin_shutdown();
    }

    /// How many connections are open.
    pub fn connection_count(&self) -> usize {
        self.shared.conns.lock().len()
    }
}

/// A server running on its own thread.
///
/// Made by [`Server::spawn`], when the calling thread has other work;
/// [`Server::serve`] blocks instead.
pub struct ServerHandle {
    stop: ShutdownHandle,
    addr: ServerAddr,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl ServerHandle {
    /// Where the server listens.
    pub fn addr(&self) -> &ServerAddr {
        &self.addr
    }

    /// The TCP port, for a TCP server.
    pub fn port(&self) -> Option<u16> {
        self.addr.port()
    }

    /// A handle that stops the server.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.stop.clone()
    }

    /// How many connections are open.
    pub fn connection_count(&self) -> usize {
        self.stop.connection_count()
    }

    /// True once the server has stopped by itself (a one-shot server whose
    /// client left, or a listener error).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Stops the server and waits for it (at most about its grace period).
    pub fn shutdown(mut self) -> io::Result<()> {
        self.stop.shutdown();
        self.join_inner()
    }

    fn join_inner(&mut self) -> io::Result<()> {
        match self.thread.take() {
            Some(t) => t.join().unwrap_or_else(|_| Err(io::Error::other("server thread panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop.shutdown();
        let _ = self.join_inner();
    }
}

impl Server {
    /// Where the server listens (with the real port when bound to port 0).
    pub fn addr(&self) -> &ServerAddr {
        &self.addr
    }

    /// The TCP port, for a TCP server.
    pub fn port(&self) -> Option<u16> {
        self.addr.port()
    }

    /// A handle that stops this server.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle { shared: self.shared.clone() }
    }

    /// Runs the server on a new thread.
    pub fn spawn(self) -> io::Result<ServerHandle> {
        let stop = self.shutdown_handle();
        let addr = self.addr.clone();
        let thread = std::thread::Builder::new().name("rpyc-server".into()).spawn(move || self.serve())?;
        Ok(ServerHandle { stop, addr, thread: Some(thread) })
    }
}

/// Joins the threads that end within `wait`; the others are left running
/// (detached) rather than waited for without bound.
fn join_within(threads: Vec<JoinHandle<()>>, wait: Duration) {
    let deadline = Instant::now() + wait;
    let mut left = threads;
    loop {
        let (done, running): (Vec<_>, Vec<_>) = left.into_iter().partition(|t| t.is_finished());
        for t in done {
            let _ = t.join();
        }
        if running.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            log::warn!("{} thread(s) still running a handler: not waiting for them", running.len());
            return;
        }
        left = running;
        std::thread::sleep(Duration::from_millis(10));
    }
}
