//! [`ServerBuilder`]: where a server listens, its threading mode and the
//! limits that bound what clients can hold; `bind` hands a [`Server`] to
//! the parent module.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::{Mode, RootFactory, Server, ServerAddr, Shared, Waker};
use crate::listener::Listener;
use crate::protocol::Config;
use crate::registry::RegistryClient;
use crate::service::Expose;
use crate::stream::tls::TlsAcceptor;

/// The listen backlog: rpyc's (`socket.listen(4096)` in its servers); the
/// kernel caps it at `net.core.somaxconn`.
pub const DEFAULT_BACKLOG: u32 = 4096;
/// The default cap on simultaneous connections. Idle connections cost no
/// thread, so the cap is about descriptors and memory, not threads.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// How long running requests may take to finish once shutdown starts.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);
/// How long a send may make no progress before its connection is ended.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a threaded-mode thread waits for a connection's next request
/// before parking it.
pub const DEFAULT_LINGER: Duration = Duration::from_secs(2);

/// Configures and binds a [`Server`].
pub struct ServerBuilder {
    factory: RootFactory,
    bind: ServerAddr,
    mode: Mode,
    config: Config,
    limits: Limits,
    tls: Option<TlsAcceptor>,
    register: Option<(RegistryClient, Vec<String>)>,
}

/// The knobs that bound a server's resources.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub(super) max_connections: usize,
    pub(super) backlog: u32,
    pub(super) grace: Duration,
    pub(super) idle_timeout: Option<Duration>,
    pub(super) write_timeout: Option<Duration>,
    pub(super) linger: Duration,
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
            limits: Limits {
                max_connections: DEFAULT_MAX_CONNECTIONS,
                backlog: DEFAULT_BACKLOG,
                grace: DEFAULT_GRACE,
                idle_timeout: None,
                write_timeout: Some(DEFAULT_WRITE_TIMEOUT),
                linger: DEFAULT_LINGER,
            },
            tls: None,
            register: None,
        }
    }

    /// Speaks TLS on every connection (rpyc's `SSLAuthenticator`). The
    /// handshake runs on the connection's own thread, never the accept
    /// loop's, and the client's certificate reaches the service as
    /// [`Connection::peer_certificate`](crate::Connection::peer_certificate).
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

    /// Caps the number of simultaneous connections (default
    /// [`DEFAULT_MAX_CONNECTIONS`]); a client past the cap is closed at
    /// once, never left waiting.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.limits.max_connections = n.max(1);
        self
    }

    /// The listen backlog (default [`DEFAULT_BACKLOG`], rpyc's).
    pub fn backlog(mut self, n: u32) -> Self {
        self.limits.backlog = n.max(1);
        self
    }

    /// How long requests still running at shutdown may take to finish
    /// (default [`DEFAULT_GRACE`]).
    pub fn grace(mut self, d: Duration) -> Self {
        self.limits.grace = d;
        self
    }

    /// Closes a connection after this long without a request (default:
    /// never, as rpyc).
    pub fn idle_timeout(mut self, d: Option<Duration>) -> Self {
        self.limits.idle_timeout = d;
        self
    }

    /// Ends a connection whose peer accepts none of a reply for this long
    /// (default [`DEFAULT_WRITE_TIMEOUT`]; `None` waits forever, as rpyc).
    pub fn write_timeout(mut self, d: Option<Duration>) -> Self {
        self.limits.write_timeout = d;
        self
    }

    /// In threaded mode, how long a connection keeps its thread while no
    /// request comes (default [`DEFAULT_LINGER`]).
    pub fn linger(mut self, d: Duration) -> Self {
        self.limits.linger = d;
        self
    }

    /// Sets the process-wide budget for frame and inflate memory across
    /// all connections (see [`crate::channel::budget`]).
    pub fn memory_budget(self, bytes: usize) -> Self {
        crate::channel::budget::global().set_limit(bytes);
        self
    }

    /// Binds the listening socket.
    pub fn bind(self) -> io::Result<Server> {
        let listener = match &self.bind {
            ServerAddr::Tcp(a) => Listener::bind_tcp(a)?,
            ServerAddr::Unix(p) => Listener::bind_unix(p)?,
        };
        listener.set_backlog(self.limits.backlog)?;
        let addr = match listener.tcp_addr() {
            Some(a) => ServerAddr::Tcp(a?),
            None => self.bind.clone(),
        };
        Ok(Server {
            listener: Some(listener),
            addr,
            mode: self.mode,
            register: self.register,
            shared: Arc::new(Shared {
                tls: self.tls,
                factory: self.factory,
                config: self.config,
                limits: self.limits,
                stop: AtomicBool::new(false),
                conns: Mutex::new(HashMap::new()),
                count_changed: Condvar::new(),
                threads: Mutex::new(Vec::new()),
                next_id: AtomicU64::new(1),
                wake: Waker::new()?,
                parked: Mutex::new(HashMap::new()),
                watcher_wake: Waker::new()?,
                closed_any: AtomicBool::new(false),
            }),
        })
    }
}
