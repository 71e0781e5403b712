//! The registry's client side: asking where a service is, listing, and a
//! server registering itself ([`Registrar`]).

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::{
    decode_options, request, RegistryError, Transport, DEFAULT_TIMEOUT, MAX_DGRAM_SIZE, REGISTRY_PORT,
    REREGISTER_INTERVAL,
};
use crate::brine::{self, Value};

/// Talks to one registry (or, over UDP, to a broadcast address, as rpyc's
/// default does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryClient {
    host: String,
    port: u16,
    transport: Transport,
    timeout: Duration,
}

impl Default for RegistryClient {
    /// rpyc's default registrar: UDP broadcast to 255.255.255.255:18811,
    /// two seconds for an answer.
    fn default() -> Self {
        RegistryClient::udp("255.255.255.255", REGISTRY_PORT)
    }
}

impl RegistryClient {
    /// A UDP registry at `host:port` (a broadcast address is sent to as
    /// such).
    pub fn udp(host: impl Into<String>, port: u16) -> Self {
        RegistryClient { host: host.into(), port, transport: Transport::Udp, timeout: DEFAULT_TIMEOUT }
    }

    /// A TCP registry at `host:port`.
    pub fn tcp(host: impl Into<String>, port: u16) -> Self {
        RegistryClient { host: host.into(), port, transport: Transport::Tcp, timeout: DEFAULT_TIMEOUT }
    }

    /// How long to wait for an answer (default 2 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// The registry's `host:port`.
    pub fn target(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// UDP or TCP.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// Where `name` is served: `(host, port)` pairs, freshest last (as the
    /// registry sorts them). An empty answer is [`RegistryError::NotFound`].
    pub fn discover(&self, name: &str) -> Result<Vec<(String, u16)>, RegistryError> {
        let reply =
            self.exchange(&request("QUERY", Value::Tuple(vec![Value::from(name)])), MAX_DGRAM_SIZE)?;
        let items = match reply {
            Value::Tuple(items) => items,
            other => return Err(RegistryError::BadReply(format!("a QUERY answered {}", other.repr()))),
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            match item {
                Value::Tuple(pair) => match pair.as_slice() {
                    [Value::Str(host), Value::Int(port)] => {
                        let port = u16::try_from(*port)
                            .map_err(|_| RegistryError::BadReply(format!("port {port} out of range")))?;
                        out.push((host.clone(), port));
                    }
                    _ => return Err(RegistryError::BadReply("a QUERY entry is not (host, port)".into())),
                },
                _ => return Err(RegistryError::BadReply("a QUERY entry is not (host, port)".into())),
            }
        }
        if out.is_empty() {
            return Err(RegistryError::NotFound(name.to_owned()));
        }
        Ok(out)
    }

    /// The registered service names, optionally only those with a server
    /// on `filter_host`.
    pub fn list(&self, filter_host: Option<&str>) -> Result<Vec<String>, RegistryError> {
        let filter = filter_host.map_or(Value::None, Value::from);
        let args = Value::Tuple(vec![Value::Tuple(vec![filter])]);
        match self.exchange(&request("LIST", args), MAX_DGRAM_SIZE * 10)? {
            Value::None => Err(RegistryError::ListingDisabled),
            Value::Tuple(items) => items
                .into_iter()
                .map(|v| match v {
                    Value::Str(s) => Ok(s),
                    other => Err(RegistryError::BadReply(format!("a service name is {}", other.repr()))),
                })
                .collect(),
            other => Err(RegistryError::BadReply(format!("a LIST answered {}", other.repr()))),
        }
    }

    /// Registers `aliases` as served on `port` of this host; sent from
    /// `interface` when given (the registry records the address a
    /// registration comes from, so a server bound to one IP sends from it,
    /// as rpyc's do).
    pub fn register(
        &self,
        aliases: &[String],
        port: u16,
        interface: Option<IpAddr>,
    ) -> Result<(), RegistryError> {
        let names = Value::Tuple(aliases.iter().map(|a| Value::from(a.as_str())).collect());
        let msg = request("REGISTER", Value::Tuple(vec![names, Value::from(port)]));
        match self.exchange_from(&msg, MAX_DGRAM_SIZE, interface)? {
            Value::Str(s) if s == "OK" => Ok(()),
            other => Err(RegistryError::BadReply(format!("a REGISTER answered {}", other.repr()))),
        }
    }

    /// Removes every registration of `port` from this host. Over UDP it
    /// does not wait for the acknowledgement (rpyc's does not either).
    pub fn unregister(&self, port: u16, interface: Option<IpAddr>) -> Result<(), RegistryError> {
        let msg = request("UNREGISTER", Value::Tuple(vec![Value::from(port)]));
        match self.transport {
            Transport::Udp => {
                let sock = self.udp_socket(interface)?;
                sock.send_to(&msg, self.resolve()?)?;
                Ok(())
            }
            Transport::Tcp => self.exchange_from(&msg, MAX_DGRAM_SIZE, interface).map(|_| ()),
        }
    }

    fn resolve(&self) -> Result<SocketAddr, RegistryError> {
        (self.host.as_str(), self.port).to_socket_addrs()?.next().ok_or_else(|| {
            RegistryError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{} resolves to nothing", self.host),
            ))
        })
    }

    fn is_broadcast(&self) -> bool {
        self.host.split('.').any(|part| part == "255")
    }

    fn udp_socket(&self, interface: Option<IpAddr>) -> Result<UdpSocket, RegistryError> {
        let target = self.resolve()?;
        let local: IpAddr = match (interface, target) {
            (Some(ip), _) if !ip.is_unspecified() => ip,
            (_, SocketAddr::V4(_)) => IpAddr::from([0, 0, 0, 0]),
            (_, SocketAddr::V6(_)) => IpAddr::from([0u16; 8]),
        };
        let sock = UdpSocket::bind((local, 0))?;
        if self.is_broadcast() {
            sock.set_broadcast(true)?;
        }
        Ok(sock)
    }

    fn exchange(&self, msg: &[u8], max_reply: usize) -> Result<Value, RegistryError> {
        self.exchange_from(msg, max_reply, None)
    }

    /// Sends one request and decodes the one reply, within the timeout.
    fn exchange_from(
        &self,
        msg: &[u8],
        max_reply: usize,
        interface: Option<IpAddr>,
    ) -> Result<Value, RegistryError> {
        let deadline = Instant::now() + self.timeout;
        let timed_out = || RegistryError::Timeout { registry: self.target(), waited: self.timeout };
        let data = match self.transport {
            Transport::Udp => {
                let sock = self.udp_socket(interface)?;
                let target = self.resolve()?;
                sock.send_to(msg, target)?;
                let mut buf = vec![0u8; max_reply];
                loop {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(timed_out());
                    }
                    sock.set_read_timeout(Some(left))?;
                    match sock.recv_from(&mut buf) {
                        // Only the registry's own answer counts (any sender
                        // when broadcasting, as then no one address is known).
                        Ok((n, from)) if self.is_broadcast() || from == target => break buf[..n].to_vec(),
                        Ok(_) => continue,
                        Err(e) if is_timeout(&e) => return Err(timed_out()),
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            Transport::Tcp => {
                let target = self.resolve()?;
                // std cannot bind a TCP socket before connecting, so
                // `interface` is not used here: the registry records the
                // address the kernel picks, which for a loopback or
                // same-subnet registry is the interface's.
                let _ = interface;
                let mut sock = TcpStream::connect_timeout(&target, self.timeout).map_err(|e| {
                    if is_timeout(&e) {
                        timed_out()
                    } else {
                        RegistryError::Io(e)
                    }
                })?;
                sock.set_write_timeout(Some(self.timeout))?;
                sock.write_all(msg)?;
                // The registry answers once and closes: read to the end.
                let mut out = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(timed_out());
                    }
                    sock.set_read_timeout(Some(left))?;
                    match sock.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            out.extend_from_slice(&buf[..n]);
                            if out.len() > max_reply {
                                return Err(RegistryError::BadReply(format!(
                                    "a reply over {max_reply} bytes"
                                )));
                            }
                        }
                        Err(e) if is_timeout(&e) => return Err(timed_out()),
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                if out.is_empty() {
                    return Err(RegistryError::BadReply("the registry closed without answering".into()));
                }
                out
            }
        };
        brine::decode_with(&data, decode_options())
            .map_err(|e| RegistryError::BadReply(format!("{} bytes that are not brine ({e})", data.len())))
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
}

/// A server's registration kept alive in the background, as rpyc's
/// `auto_register` does: registers at once, again every
/// [`REREGISTER_INTERVAL`] (every second after a failure), and
/// unregisters when stopped or dropped.
pub struct Registrar {
    state: Arc<(Mutex<bool>, Condvar)>,
    stopped: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    client: RegistryClient,
    port: u16,
    interface: Option<IpAddr>,
}

impl std::fmt::Debug for Registrar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registrar")
            .field("registry", &self.client.target())
            .field("port", &self.port)
            .finish()
    }
}

impl Registrar {
    /// Starts registering `aliases` on `port` with the registry `client`
    /// talks to, every `interval` (use [`REREGISTER_INTERVAL`] for rpyc's).
    pub fn start(
        client: RegistryClient,
        aliases: Vec<String>,
        port: u16,
        interface: Option<IpAddr>,
        interval: Duration,
    ) -> std::io::Result<Registrar> {
        let state = Arc::new((Mutex::new(false), Condvar::new()));
        let stopped = Arc::new(AtomicBool::new(false));
        let (st, c) = (state.clone(), client.clone());
        let thread = std::thread::Builder::new().name("rpyc-registrar".into()).spawn(move || {
            let (stop, wake) = &*st;
            loop {
                let wait = match c.register(&aliases, port, interface) {
                    Ok(()) => interval,
                    Err(e) => {
                        log::info!("registering with {} did not work ({e}); retrying", c.target());
                        Duration::from_secs(1)
                    }
                };
                let mut stop = stop.lock();
                if !*stop {
                    wake.wait_for(&mut stop, wait);
                }
                if *stop {
                    return;
                }
            }
        })?;
        Ok(Registrar { state, stopped, thread: Some(thread), client, port, interface })
    }

    /// Starts rpyc's schedule: every [`REREGISTER_INTERVAL`].
    pub fn start_default(
        client: RegistryClient,
        aliases: Vec<String>,
        port: u16,
        interface: Option<IpAddr>,
    ) -> std::io::Result<Registrar> {
        Self::start(client, aliases, port, interface, REREGISTER_INTERVAL)
    }

    /// Stops re-registering and unregisters.
    pub fn stop(mut self) {
        self.stop_inner();
    }

    fn stop_inner(&mut self) {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        {
            let (stop, wake) = &*self.state;
            *stop.lock() = true;
            wake.notify_all();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Err(e) = self.client.unregister(self.port, self.interface) {
            log::info!("unregistering from {} failed: {e}", self.client.target());
        }
    }
}

impl Drop for Registrar {
    fn drop(&mut self) {
        self.stop_inner();
    }
}
