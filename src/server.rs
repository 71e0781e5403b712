//! Servers: accept connections and serve a service on each, as rpyc's
//! `ThreadedServer`, `ThreadPoolServer` and `OneShotServer` do.
//!
//! * [`Mode::Threaded`]: a thread per connection, serving it until it ends.
//!   Simplest and lowest latency.
//! * [`Mode::Pool`]: a fixed number of worker threads for any number of
//!   connections. A poller thread watches every idle connection and hands
//!   one with data to a free worker, which serves what is buffered and gives
//!   it back. A worker serving a request that calls back into the client
//!   stays with that connection until the request is done (the engine reads
//!   on the waiting thread), so nested calls work here too.
//! * [`Mode::OneShot`]: serve the first connection, then stop.
//!
//! Each connection gets its own root from the factory (per-connection
//! state, as rpyc instantiates a service class per connection). Shutdown
//! stops accepting, closes every connection and joins every thread. An
//! invalid frame or a dead client ends that one connection, never the
//! server.
//!
//! A pool server on a free port, used and shut down:
//!
//! ```
//! use rpyc_rs::server::{Mode, ServerBuilder};
//! use rpyc_rs::service::Service;
//! use rpyc_rs::{Connection, FromObject};
//!
//! let server = ServerBuilder::new(|| Service::builder("Calc").method("add", |a: i64, b: i64| a + b).build())
//!     .mode(Mode::Pool { workers: 2 })
//!     .tcp("127.0.0.1:0")?
//!     .bind()?;
//! let port = server.port().ok_or("a TCP server has a port")?;
//! let handle = server.spawn()?; // serve() instead blocks this thread
//! let conn = Connection::connect("127.0.0.1", port)?;
//! assert_eq!(i64::from_object(conn.root()?.call_method("add", (40, 2))?)?, 42);
//! conn.close();
//! handle.shutdown()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! With [`ServerBuilder::tls`] every accepted stream is wrapped in TLS; the
//! handshake runs on the connection's own thread (never the accept loop's),
//! and the client's certificate reaches the service as
//! [`Connection::peer_certificate`]. With [`ServerBuilder::auto_register`]
//! the server keeps itself registered with an rpyc registry while it runs.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::protocol::{Config, Connection};
use crate::registry::{Registrar, RegistryClient};
use crate::service::Expose;
use crate::stream::tls::{PeerCertificate, TlsAcceptor};
use crate::stream::Stream;

/// Makes the root object for each new connection.
pub type RootFactory = Arc<dyn Fn() -> Arc<dyn Expose> + Send + Sync>;

/// How connections are given threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// A thread per connection.
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

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

impl Listener {
    fn fd(&self) -> RawFd {
        match self {
            Listener::Tcp(l) => l.as_raw_fd(),
            Listener::Unix(l, _) => l.as_raw_fd(),
        }
    }

    fn accept(&self) -> io::Result<Stream> {
        match self {
            Listener::Tcp(l) => Stream::from_tcp(l.accept()?.0),
            Listener::Unix(l, _) => Stream::from_unix(l.accept()?.0),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Configures and binds a [`Server`].
pub struct ServerBuilder {
    factory: RootFactory,
    bind: ServerAddr,
    mode: Mode,
    config: Config,
    max_connections: usize,
    tls: Option<TlsAcceptor>,
    register: Option<(RegistryClient, Vec<String>)>,
}

impl ServerBuilder {
    /// A server whose connections each get a root made by `factory`. By
    /// default it listens on 127.0.0.1 with an ephemeral port, threaded.
    pub fn new(factory: impl Fn() -> Arc<dyn Expose> + Send + Sync + 'static) -> Self {
        ServerBuilder {
            factory: Arc::new(factory),
            bind: ServerAddr::Tcp(SocketAddr::from(([127, 0, 0, 1], 0))),
            mode: Mode::Threaded,
            config: Config::default(),
            max_connections: 1024,
            tls: None,
            register: None,
        }
    }

    /// Speaks TLS on every connection (rpyc's `SSLAuthenticator`).
    pub fn tls(mut self, acceptor: TlsAcceptor) -> Self {
        self.tls = Some(acceptor);
        self
    }

    /// Registers `aliases` with the registry `client` talks to while
    /// serving, re-registering every minute and unregistering on shutdown
    /// (rpyc's `auto_register`). TCP servers only.
    pub fn auto_register(mut self, client: RegistryClient, aliases: &[&str]) -> Self {
        self.register = Some((client, aliases.iter().map(|a| a.to_uppercase()).collect()));
        self
    }

    /// A server sharing one root between all connections.
    pub fn shared(root: Arc<dyn Expose>) -> Self {
        Self::new(move || root.clone())
    }

    /// Listens on a TCP address (`"127.0.0.1:18812"`, `"[::1]:0"`).
    pub fn tcp(mut self, addr: impl ToSocketAddrs) -> io::Result<Self> {
        let a = addr
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "address resolved to nothing"))?;
        self.bind = ServerAddr::Tcp(a);
        Ok(self)
    }

    /// Listens on a Unix domain socket (a stale socket file is replaced).
    pub fn unix(mut self, path: impl AsRef<Path>) -> Self {
        self.bind = ServerAddr::Unix(path.as_ref().to_path_buf());
        self
    }

    /// Sets the threading mode.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets the connection config (timeouts, limits, attribute policy).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Caps the number of simultaneous connections; further clients wait in
    /// the listen backlog until one ends.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// Binds the listening socket.
    pub fn bind(self) -> io::Result<Server> {
        let listener = match &self.bind {
            ServerAddr::Tcp(a) => Listener::Tcp(TcpListener::bind(a)?),
            ServerAddr::Unix(p) => {
                if p.exists() && UnixStream::connect(p).is_err() {
                    std::fs::remove_file(p)?;
                }
                Listener::Unix(UnixListener::bind(p)?, p.clone())
            }
        };
        let addr = match &listener {
            Listener::Tcp(l) => ServerAddr::Tcp(l.local_addr()?),
            Listener::Unix(_, p) => ServerAddr::Unix(p.clone()),
        };
        Ok(Server {
            listener,
            addr,
            mode: self.mode,
            register: self.register,
            shared: Arc::new(Shared {
                tls: self.tls,
                factory: self.factory,
                config: self.config,
                max_connections: self.max_connections,
                stop: AtomicBool::new(false),
                conns: Mutex::new(HashMap::new()),
                count_changed: Condvar::new(),
                threads: Mutex::new(Vec::new()),
                next_id: AtomicU64::new(1),
                wake: Waker::new()?,
            }),
        })
    }
}

struct Shared {
    tls: Option<TlsAcceptor>,
    factory: RootFactory,
    config: Config,
    max_connections: usize,
    stop: AtomicBool,
    conns: Mutex<HashMap<u64, Connection>>,
    count_changed: Condvar,
    threads: Mutex<Vec<JoinHandle<()>>>,
    next_id: AtomicU64,
    /// Wakes the accept loop.
    wake: Waker,
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
    fn wake(&self) {
        self.wake.wake();
    }

    fn drain_wake(&self) {
        self.wake.drain();
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    fn register(&self, conn: Connection) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.conns.lock().insert(id, conn);
        id
    }

    fn unregister(&self, id: u64) {
        let removed = self.conns.lock().remove(&id);
        self.count_changed.notify_all();
        drop(removed);
    }

    /// Waits until there is room for one more connection; false when the
    /// server is stopping.
    fn wait_for_room(&self) -> bool {
        let mut conns = self.conns.lock();
        while conns.len() >= self.max_connections {
            if self.stopping() {
                return false;
            }
            self.count_changed.wait_for(&mut conns, Duration::from_millis(100));
        }
        !self.stopping()
    }

    /// A connection over `stream` with a fresh root; `cert` is what a TLS
    /// client presented.
    fn connection(&self, stream: Stream, cert: Option<PeerCertificate>) -> Connection {
        let mut config = self.config.clone();
        config.peer_certificate = cert.map(Arc::new);
        Connection::new(stream, (self.factory)(), config)
    }

    /// Registers a connection whose TLS handshake finished on its own
    /// thread. A shutdown that began meanwhile has already aborted the
    /// connections it saw; this one it may have missed, so it goes too.
    fn register_late(&self, conn: &Connection) -> u64 {
        let id = self.register(conn.clone());
        if self.stopping() {
            conn.abort("server shutting down");
        }
        id
    }

    /// Serves `conn` on this thread until it ends.
    fn serve_here(&self, conn: Connection) {
        let id = self.register_late(&conn);
        if let Err(e) = conn.serve_all() {
            log::debug!("connection from {} ended: {e}", conn.peer());
        }
        self.unregister(id);
    }

    fn spawn(&self, name: String, f: impl FnOnce() + Send + 'static) {
        match std::thread::Builder::new().name(name).spawn(f) {
            Ok(h) => {
                let mut threads = self.threads.lock();
                threads.retain(|t| !t.is_finished());
                threads.push(h);
            }
            Err(e) => log::error!("cannot start a thread: {e}"),
        }
    }
}

/// A bound server, ready to [`serve`](Server::serve).
pub struct Server {
    listener: Listener,
    addr: ServerAddr,
    mode: Mode,
    register: Option<(RegistryClient, Vec<String>)>,
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
    /// Stops accepting and closes every connection; the server's `serve`
    /// returns once its threads are joined.
    pub fn shutdown(&self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.wake();
        let conns: Vec<Connection> = self.shared.conns.lock().values().cloned().collect();
        for c in conns {
            c.abort("server shutting down");
        }
        self.shared.count_changed.notify_all();
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

    /// Stops the server and waits for it.
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

    /// Serves until shut down (or, in one-shot mode, until the first
    /// connection ends), then closes every connection and joins every
    /// thread.
    pub fn serve(self) -> io::Result<()> {
        log::info!("rpyc-rs server listening on {} ({:?})", self.addr, self.mode);
        let pool = match self.mode {
            Mode::Pool { workers } => Some(Pool::start(&self.shared, workers.max(1))?),
            _ => None,
        };
        let registrar = self.start_registrar();
        let result = self.accept_loop(pool.as_ref());
        drop(registrar); // unregisters
        self.shutdown_handle().shutdown();
        if let Some(p) = pool {
            p.stop();
        }
        let threads = std::mem::take(&mut *self.shared.threads.lock());
        for t in threads {
            let _ = t.join();
        }
        log::info!("rpyc-rs server on {} stopped", self.addr);
        result
    }

    /// Starts re-registering with the registry, when asked to.
    fn start_registrar(&self) -> Option<Registrar> {
        let (client, aliases) = self.register.clone()?;
        let ServerAddr::Tcp(addr) = &self.addr else {
            log::warn!("only TCP servers can register with a registry");
            return None;
        };
        let interface = Some(addr.ip()).filter(|ip| !ip.is_unspecified());
        Registrar::start_default(client, aliases, addr.port(), interface)
            .map_err(|e| log::warn!("cannot start registering: {e}"))
            .ok()
    }

    fn accept_loop(&self, pool: Option<&Pool>) -> io::Result<()> {
        let sh = &self.shared;
        let mut fds = [
            libc::pollfd { fd: self.listener.fd(), events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: sh.wake.rx.as_raw_fd(), events: libc::POLLIN, revents: 0 },
        ];
        loop {
            if sh.stopping() || !sh.wait_for_room() {
                return Ok(());
            }
            fds[0].revents = 0;
            fds[1].revents = 0;
            // SAFETY: two valid pollfds on the stack.
            let rc = unsafe { libc::poll(fds.as_mut_ptr(), 2, 1000) };
            if rc < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if fds[1].revents != 0 {
                sh.drain_wake();
            }
            if fds[0].revents == 0 {
                continue;
            }
            let stream = match self.listener.accept() {
                Ok(s) => s,
                Err(e) => {
                    // A client that gave up before we accepted, or a
                    // transient resource shortage: log and keep serving.
                    log::warn!("accept failed: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            };
            let peer = stream.peer.clone();
            log::debug!("connection from {peer}");
            let (stream, cert) = match &sh.tls {
                None => (stream, None),
                Some(tls) if self.mode != Mode::OneShot => {
                    // The handshake runs on the connection's own thread: a
                    // slow or silent client must not hold up the accept loop.
                    let (tls, shared, feed) = (tls.clone(), sh.clone(), pool.map(Pool::feed));
                    sh.spawn(format!("rpyc-tls-{peer}"), move || {
                        let stopping = || shared.stopping();
                        match tls.accept(stream, shared.config.connect_timeout, &stopping) {
                            Ok((stream, cert)) => {
                                let conn = shared.connection(stream, cert);
                                match feed {
                                    Some(f) => f.add(conn),
                                    None => shared.serve_here(conn),
                                }
                            }
                            Err(e) => log::info!("TLS handshake with {peer} failed: {e}"),
                        }
                    });
                    continue;
                }
                Some(tls) => match tls.accept(stream, sh.config.connect_timeout, &|| sh.stopping()) {
                    Ok(x) => x,
                    Err(e) => {
                        log::info!("TLS handshake with {peer} failed: {e}");
                        continue;
                    }
                },
            };
            let conn = sh.connection(stream, cert);
            match (self.mode, pool) {
                (Mode::OneShot, _) => {
                    let id = sh.register(conn.clone());
                    if let Err(e) = conn.serve_all() {
                        log::debug!("connection from {peer} ended: {e}");
                    }
                    sh.unregister(id);
                    return Ok(());
                }
                (Mode::Pool { .. }, Some(p)) => p.add(conn),
                _ => {
                    let id = sh.register(conn.clone());
                    let shared = sh.clone();
                    sh.spawn(format!("rpyc-conn-{id}"), move || {
                        if let Err(e) = conn.serve_all() {
                            log::debug!("connection from {peer} ended: {e}");
                        }
                        shared.unregister(id);
                    });
                }
            }
        }
    }
}

/// Hands connections to the pool's workers from any thread.
struct PoolFeed {
    shared: Arc<Shared>,
    work_tx: crossbeam_channel::Sender<u64>,
}

impl PoolFeed {
    fn add(&self, conn: Connection) {
        let id = self.shared.register_late(&conn);
        // A new connection may already have a request waiting: let a
        // worker look first.
        let _ = self.work_tx.send(id);
    }
}

/// The pool mode's poller and workers.
struct Pool {
    shared: Arc<Shared>,
    /// Wakes the poller (separate from the accept loop's, so neither
    /// swallows the other's wake-up).
    wake: Arc<Waker>,
    idle: Arc<Mutex<HashSet<u64>>>,
    work_tx: crossbeam_channel::Sender<u64>,
    threads: Vec<JoinHandle<()>>,
}

impl Pool {
    fn start(shared: &Arc<Shared>, workers: usize) -> io::Result<Pool> {
        let (work_tx, work_rx) = crossbeam_channel::unbounded::<u64>();
        let idle = Arc::new(Mutex::new(HashSet::new()));
        let wake = Arc::new(Waker::new()?);
        let mut threads = Vec::new();
        for n in 0..workers {
            let (sh, rx, idle, wake) = (shared.clone(), work_rx.clone(), idle.clone(), wake.clone());
            if let Ok(h) = std::thread::Builder::new()
                .name(format!("rpyc-worker-{n}"))
                .spawn(move || Pool::work(&sh, &rx, &idle, &wake))
            {
                threads.push(h);
            }
        }
        let (sh, idle2, tx, w) = (shared.clone(), idle.clone(), work_tx.clone(), wake.clone());
        if let Ok(h) = std::thread::Builder::new()
            .name("rpyc-poller".into())
            .spawn(move || Pool::poll(&sh, &idle2, &tx, &w))
        {
            threads.push(h);
        }
        Ok(Pool { shared: shared.clone(), wake, idle, work_tx, threads })
    }

    fn add(&self, conn: Connection) {
        self.feed().add(conn);
    }

    /// What another thread needs to hand the pool a connection.
    fn feed(&self) -> PoolFeed {
        PoolFeed { shared: self.shared.clone(), work_tx: self.work_tx.clone() }
    }

    /// Watches idle connections; sends each that has data to the workers.
    fn poll(sh: &Shared, idle: &Mutex<HashSet<u64>>, tx: &crossbeam_channel::Sender<u64>, wake: &Waker) {
        let mut fds: Vec<libc::pollfd> = Vec::new();
        let mut ids: Vec<u64> = Vec::new();
        while !sh.stopping() {
            fds.clear();
            ids.clear();
            fds.push(libc::pollfd { fd: wake.rx.as_raw_fd(), events: libc::POLLIN, revents: 0 });
            {
                let conns = sh.conns.lock();
                for id in idle.lock().iter() {
                    if let Some(fd) = conns.get(id).and_then(Connection::fileno) {
                        fds.push(libc::pollfd { fd, events: libc::POLLIN, revents: 0 });
                        ids.push(*id);
                    }
                }
            }
            // SAFETY: `fds` is a valid, initialised array of its length.
            let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 1000) };
            if rc <= 0 {
                continue;
            }
            if fds[0].revents != 0 {
                wake.drain();
            }
            let mut idle = idle.lock();
            for (pfd, id) in fds[1..].iter().zip(&ids) {
                if pfd.revents != 0 && idle.remove(id) {
                    let _ = tx.send(*id);
                }
            }
        }
    }

    /// Serves what a connection has buffered, then hands it back to the
    /// poller.
    fn work(sh: &Shared, rx: &crossbeam_channel::Receiver<u64>, idle: &Mutex<HashSet<u64>>, wake: &Waker) {
        while let Ok(id) = rx.recv() {
            if id == 0 || sh.stopping() {
                return;
            }
            let Some(conn) = sh.conns.lock().get(&id).cloned() else { continue };
            let alive = loop {
                match conn.serve(Some(Duration::ZERO)) {
                    Ok(true) => continue,
                    Ok(false) => break true,
                    Err(e) => {
                        log::debug!("connection {} ended: {e}", conn.peer());
                        break false;
                    }
                }
            };
            if alive && !conn.closed() {
                idle.lock().insert(id);
                wake.wake();
            } else {
                conn.abort("connection ended");
                sh.unregister(id);
            }
        }
    }

    fn stop(self) {
        for _ in 0..self.threads.len() {
            let _ = self.work_tx.send(0);
        }
        self.wake.wake();
        drop(self.idle);
        for t in self.threads {
            let _ = t.join();
        }
    }
}
