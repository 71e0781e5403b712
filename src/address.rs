//! Reaching a peer: one [`Address`] type for every transport and one
//! [`Connector`] that opens a [`Connection`] or a [`Classic`] to it.
//!
//! An address is TCP (`HOST:PORT`, `[V6]:PORT`), a Unix socket path, a
//! subprocess speaking over its stdin/stdout, or `service:NAME`, looked up
//! in an rpyc registry. The connector adds what is not the address: the
//! root we expose, the [`Config`] (timeouts, limits), TLS ([`TlsOptions`],
//! over TCP or a Unix socket), which registry resolves service names, and
//! the rpyc dialect. It hands the next layer an open, dialect-correct
//! [`Connection`].
//!
//! ```no_run
//! use rpyc_rs::{Address, Connector};
//! use rpyc_rs::stream::tls::TlsOptions;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let plain = Connector::new("127.0.0.1:18861".parse::<Address>()?).open()?;
//! let tls = Connector::new("db.example:18821".parse::<Address>()?)
//!     .tls(TlsOptions::new().ca_file("ca.pem").client_cert("me.pem", "me.key"))
//!     .open_classic()?;
//! # let _ = (plain, tls);
//! # Ok(())
//! # }
//! ```
//!
//! ## Dialect detection
//!
//! rpyc 5.x and 6.x frame messages differently, and a server that reads a
//! message in the other framing closes the connection (rpyc 6 says
//! "invalid message type: 18"; rpyc 5 fails to unpack). A server answers
//! in whatever framing it is sent, but a client must pick one first. With
//! [`Dialect::Auto`] (the default) the connector sends one PING in 6.x
//! framing; if the server closes the connection instead of answering, it
//! connects again and speaks 5.x. The cost, measured on loopback
//! (`tests/dialect_interop.rs` prints it): against 6.x one PING round
//! trip, about 0.3 ms on a busy 2-core machine in a debug build; against
//! 5.x that failed round trip, a second connect (and TLS handshake, if
//! any) and one PING that confirms the 5.x framing, about 7 ms in all,
//! most of it the 5.x server noticing the bad message and hanging up. A subprocess
//! address is started a second time in that case. [`Dialect::Rpyc6`] and
//! [`Dialect::Rpyc5`] (or `Config::with_legacy_framing(true)`) skip the
//! probe.

use std::fmt;
use std::path::PathBuf;
use std::process::Command;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::classic::{Classic, DEFAULT_PORT};
use crate::protocol::{Config, Connection, Error, Result};
use crate::registry::RegistryClient;
use crate::service::{Expose, VoidService};
use crate::stream::tls::{PeerCertificate, TlsConnector, TlsOptions};
use crate::stream::Stream;

/// Where a peer is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Address {
    /// A TCP host (name, IPv4 or IPv6 address) and port.
    Tcp {
        /// Host name or IP address (IPv6 without brackets).
        host: String,
        /// TCP port.
        port: u16,
    },
    /// A Unix domain socket.
    Unix(PathBuf),
    /// A program started with these arguments, speaking RPyC over its
    /// stdin and stdout (rpyc's `connect_subproc`).
    Subprocess {
        /// The program to run.
        program: PathBuf,
        /// Its arguments.
        args: Vec<String>,
    },
    /// A service name, resolved through a registry when connecting
    /// (rpyc's `connect_by_service`).
    Service(String),
}

/// Why a string is not an address.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddressError {
    /// The text could not be read as an address; `reason` says why.
    Invalid {
        /// The text given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressError::Invalid { input, reason } => write!(f, "{input:?}: {reason}"),
        }
    }
}

impl std::error::Error for AddressError {}

impl Address {
    /// A TCP address.
    pub fn tcp(host: impl Into<String>, port: u16) -> Address {
        Address::Tcp { host: host.into(), port }
    }

    /// A Unix socket address.
    pub fn unix(path: impl Into<PathBuf>) -> Address {
        Address::Unix(path.into())
    }

    /// A subprocess address.
    pub fn subprocess(program: impl Into<PathBuf>, args: &[&str]) -> Address {
        Address::Subprocess { program: program.into(), args: args.iter().map(|a| (*a).to_owned()).collect() }
    }

    /// A service to find in a registry.
    pub fn service(name: impl Into<String>) -> Address {
        Address::Service(name.into())
    }

    /// Reads `HOST:PORT`, `[V6]:PORT`, `HOST` or `[V6]` (with
    /// `default_port`), a Unix socket path (anything with a `/`, or an
    /// existing socket file), or `service:NAME`.
    pub fn parse_with_port(s: &str, default_port: u16) -> std::result::Result<Address, AddressError> {
        let bad = |reason: String| AddressError::Invalid { input: s.to_owned(), reason };
        if s.is_empty() {
            return Err(bad("empty address; expected HOST:PORT, a Unix socket path or service:NAME".into()));
        }
        if let Some(name) = s.strip_prefix("service:") {
            if name.is_empty() {
                return Err(bad("missing service name after 'service:'".into()));
            }
            return Ok(Address::Service(name.to_owned()));
        }
        if s.contains('/') || is_socket_file(s) {
            return Ok(Address::Unix(PathBuf::from(s)));
        }
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (host, after) =
                rest.split_once(']').ok_or_else(|| bad("missing ']' after the IPv6 address".into()))?;
            match after {
                "" => (host, None),
                _ => match after.strip_prefix(':') {
                    Some(p) => (host, Some(p)),
                    None => return Err(bad("expected ':PORT' after ']'".into())),
                },
            }
        } else if s.matches(':').count() > 1 {
            return Err(bad("an IPv6 address needs brackets, as in [::1]:18812".into()));
        } else {
            match s.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (s, None),
            }
        };
        if host.is_empty() {
            return Err(bad("missing host before the port".into()));
        }
        let port = match port {
            None => default_port,
            Some(p) => p.parse::<u16>().map_err(|_| bad(format!("{p:?} is not a port number (0-65535)")))?,
        };
        Ok(Address::Tcp { host: host.to_owned(), port })
    }
}

/// [`Address::parse_with_port`] with rpyc's classic port, 18812.
impl FromStr for Address {
    type Err = AddressError;
    fn from_str(s: &str) -> std::result::Result<Address, AddressError> {
        Address::parse_with_port(s, DEFAULT_PORT)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Address::Tcp { host, port } => write!(f, "{host}:{port}"),
            Address::Unix(p) => write!(f, "{}", p.display()),
            Address::Subprocess { program, .. } => write!(f, "process {}", program.display()),
            Address::Service(name) => write!(f, "service:{name}"),
        }
    }
}

fn is_socket_file(s: &str) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(s).is_ok_and(|m| m.file_type().is_socket())
}

/// Which message framing the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Dialect {
    /// Find out (see the module docs for the cost); honours
    /// `Config::legacy_framing` when it is set.
    #[default]
    Auto,
    /// rpyc 6.x: no probe.
    Rpyc6,
    /// rpyc 5.x: no probe.
    Rpyc5,
}

/// Opens connections to one address. Cheap to clone; `open` may be called
/// any number of times.
#[derive(Clone)]
pub struct Connector {
    address: Address,
    root: Arc<dyn Expose>,
    config: Config,
    tls: Option<TlsOptions>,
    registry: RegistryClient,
    dialect: Dialect,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("address", &self.address)
            .field("tls", &self.tls)
            .field("registry", &self.registry)
            .field("dialect", &self.dialect)
            .finish_non_exhaustive()
    }
}

impl Connector {
    /// Connects to `address`, exposing nothing, with the default config,
    /// no TLS, rpyc's default registry and dialect detection.
    pub fn new(address: Address) -> Connector {
        Connector {
            address,
            root: Arc::new(VoidService),
            config: Config::default(),
            tls: None,
            registry: RegistryClient::default(),
            dialect: Dialect::Auto,
        }
    }

    /// The address.
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// The same settings for another address.
    pub fn with_address(mut self, address: Address) -> Self {
        self.address = address;
        self
    }

    /// Exposes `root` to the peer (our service).
    pub fn root(mut self, root: Arc<dyn Expose>) -> Self {
        self.root = root;
        self
    }

    /// Sets the whole connection config.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// How long a request waits for its reply (`None`: forever).
    pub fn timeout(mut self, t: Option<Duration>) -> Self {
        self.config.sync_request_timeout = t;
        self
    }

    /// How long connecting (and a TLS handshake, and the dialect probe)
    /// may take.
    pub fn connect_timeout(mut self, t: Option<Duration>) -> Self {
        self.config.connect_timeout = t;
        self
    }

    /// Speaks TLS over the transport. The server's certificate is checked
    /// for the host connected to (over a Unix socket or a subprocess:
    /// `localhost`), unless [`TlsOptions::server_name`] names another.
    pub fn tls(mut self, opts: TlsOptions) -> Self {
        self.tls = Some(opts);
        self
    }

    /// The registry that resolves `service:NAME` (default: rpyc's, a UDP
    /// broadcast on port 18811).
    pub fn registry(mut self, registry: RegistryClient) -> Self {
        self.registry = registry;
        self
    }

    /// Sets the dialect (default: detect).
    pub fn dialect(mut self, dialect: Dialect) -> Self {
        self.dialect = dialect;
        self
    }

    /// Opens a connection.
    pub fn open(&self) -> Result<Connection> {
        let tls = match &self.tls {
            Some(opts) => Some(TlsConnector::new(opts).map_err(|e| Error::Connect(e.to_string()))?),
            None => None,
        };
        match &self.address {
            Address::Service(name) => {
                let servers = self
                    .registry
                    .discover(name)
                    .map_err(|e| Error::Connect(format!("service:{name}: {e}")))?;
                // As rpyc: the first server that accepts a connection wins.
                let mut last = None;
                for (host, port) in servers {
                    match self.open_at(&Address::tcp(host, port), tls.as_ref()) {
                        Ok(c) => return Ok(c),
                        Err(e) => last = Some(e),
                    }
                }
                Err(last.unwrap_or_else(|| Error::Connect(format!("service:{name}: no servers"))))
            }
            other => self.open_at(other, tls.as_ref()),
        }
    }

    /// Opens a connection to a classic (`SlaveService`) server.
    pub fn open_classic(&self) -> Result<Classic> {
        Classic::from_connection(self.open()?)
    }

    fn open_at(&self, addr: &Address, tls: Option<&TlsConnector>) -> Result<Connection> {
        let legacy = match self.dialect {
            Dialect::Rpyc5 => Some(true),
            Dialect::Rpyc6 => Some(false),
            Dialect::Auto if self.config.legacy_framing => Some(true),
            Dialect::Auto => None,
        };
        if let Some(legacy) = legacy {
            return Ok(self.connection(self.stream(addr, tls)?, legacy));
        }
        let probe_timeout = self.config.connect_timeout.or(self.config.sync_request_timeout);
        let first = self.connection(self.stream(addr, tls)?, false);
        let why = match first.ping(b"", probe_timeout.unwrap_or(Duration::from_secs(30))) {
            Ok(()) => return Ok(first),
            Err(e @ Error::Timeout) => return Err(e),
            Err(e) => e,
        };
        first.close();
        // The server hung up (or answered something unreadable): an rpyc
        // 5.x server does that with a 6.x message. Try its framing; if that
        // fails as well, the first failure is the one worth reporting.
        let second = self.connection(self.stream(addr, tls)?, true);
        match second.ping(b"", probe_timeout.unwrap_or(Duration::from_secs(30))) {
            Ok(()) => Ok(second),
            Err(_) => {
                second.close();
                // A TLS server hangs up on plain RPyC just the same.
                let hint = if tls.is_none() { " (does the server want TLS?)" } else { "" };
                Err(Error::Connect(format!("{addr}: {why}{hint}")))
            }
        }
    }

    fn connection(&self, (stream, cert): (Stream, Option<PeerCertificate>), legacy: bool) -> Connection {
        let mut config = self.config.clone().with_legacy_framing(legacy);
        config.peer_certificate = cert.map(Arc::new);
        Connection::new(stream, self.root.clone(), config)
    }

    /// Opens the transport (and TLS over it).
    fn stream(
        &self,
        addr: &Address,
        tls: Option<&TlsConnector>,
    ) -> Result<(Stream, Option<PeerCertificate>)> {
        let timeout = self.config.connect_timeout;
        let fail = |e: std::io::Error| Error::Connect(format!("{addr}: {}", io_failure(&e, addr, timeout)));
        let (stream, host) = match addr {
            Address::Tcp { host, port } => {
                (Stream::tcp_connect((host.as_str(), *port), timeout).map_err(fail)?, host.as_str())
            }
            Address::Unix(path) => (Stream::unix_connect(path).map_err(fail)?, "localhost"),
            Address::Subprocess { program, args } => {
                let mut cmd = Command::new(program);
                cmd.args(args);
                (Stream::spawn(&mut cmd).map_err(fail)?, "localhost")
            }
            Address::Service(name) => {
                return Err(Error::Connect(format!("service:{name}: a service name must be resolved first")))
            }
        };
        match tls {
            Some(t) => {
                t.connect_verified(stream, host, timeout).map_err(|e| Error::Connect(format!("{addr}: {e}")))
            }
            None => Ok((stream, None)),
        }
    }
}

/// An I/O error's text with a hint a person can act on, without the
/// `(os error N)` tail.
fn io_failure(e: &std::io::Error, addr: &Address, timeout: Option<Duration>) -> String {
    use std::io::ErrorKind;
    let mut text = e.to_string();
    if let Some(i) = text.rfind(" (os error ") {
        text.truncate(i);
    }
    let hint = match e.kind() {
        ErrorKind::ConnectionRefused => " (is an RPyC server running there?)".to_owned(),
        ErrorKind::NotFound if matches!(addr, Address::Unix(_)) => {
            " (no such socket; is the server listening on this path?)".to_owned()
        }
        ErrorKind::TimedOut | ErrorKind::WouldBlock => match timeout {
            Some(t) => format!(" after {} s (is the host reachable?)", t.as_secs_f64()),
            None => " (is the host reachable?)".to_owned(),
        },
        _ => String::new(),
    };
    text + &hint
}

impl Connection {
    /// Starts building a connection to `address` (TLS, registry, dialect,
    /// root, config): see [`Connector`].
    pub fn builder(address: Address) -> Connector {
        Connector::new(address)
    }

    /// Connects to a server of the service `name`, found through the
    /// registry `registry` talks to (rpyc's `connect_by_service`).
    pub fn connect_by_service(name: &str, registry: RegistryClient) -> Result<Connection> {
        Connector::new(Address::service(name)).registry(registry).open()
    }

    /// The certificate the peer presented over TLS: on a server, the
    /// client's (rpyc hands a service the same as `credentials`); on a
    /// client, the server's. `None` without TLS or without a client
    /// certificate.
    pub fn peer_certificate(&self) -> Option<&PeerCertificate> {
        self.inner().config.peer_certificate.as_deref()
    }
}

impl Classic {
    /// Connects to a classic server of the service `name` (rpyc registers
    /// classic servers as `SLAVE`), found through `registry`.
    pub fn connect_by_service(name: &str, registry: RegistryClient) -> Result<Classic> {
        Connector::new(Address::service(name)).registry(registry).open_classic()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        let tcp = |h: &str, p| Address::tcp(h, p);
        assert_eq!("127.0.0.1:18812".parse(), Ok(tcp("127.0.0.1", 18812)));
        assert_eq!("localhost".parse(), Ok(tcp("localhost", DEFAULT_PORT)));
        assert_eq!("[::1]:5000".parse(), Ok(tcp("::1", 5000)));
        assert_eq!("[::1]".parse(), Ok(tcp("::1", DEFAULT_PORT)));
        assert_eq!("/tmp/x.sock".parse(), Ok(Address::unix("/tmp/x.sock")));
        assert_eq!("service:CALC".parse(), Ok(Address::service("CALC")));
        assert_eq!(Address::parse_with_port("h", 1), Ok(tcp("h", 1)));
        for bad in ["", "::1:5000", "host:99999", ":5", "[::1", "[::1]x", "service:"] {
            assert!(bad.parse::<Address>().is_err(), "{bad}");
        }
        let e = "::1:5".parse::<Address>().unwrap_err().to_string();
        assert!(e.contains("brackets"), "{e}");
        assert_eq!(tcp("::1", 5).to_string(), "[::1]:5");
        assert_eq!(Address::service("X").to_string(), "service:X");
    }
}
