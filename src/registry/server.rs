//! The registry's server side, as rpyc's `UDPRegistryServer` and
//! `TCPRegistryServer` behave: the same table, the same pruning, the same
//! answers, so stock rpyc servers register with it and stock
//! `connect_by_service` / `list_services` query it.
//!
//! Whatever arrives is untrusted: a datagram or TCP request is read with a
//! size bound (1500 bytes, rpyc's `MAX_DGRAM_SIZE`), decoded with tight
//! depth and int bounds, and anything that is not a well-formed command is
//! dropped without an answer, as rpyc drops it. A TCP client that connects
//! and says nothing is given up on after a few seconds, on a thread of its
//! own (at most [`MAX_TCP_CLIENTS`] at once), so it delays no one.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::{decode_options, Transport, DEFAULT_PRUNING_TIMEOUT, MAX_DGRAM_SIZE};
use crate::brine::{self, Value};

/// How long the serving loop waits before looking at its stop flag.
const TICK: Duration = Duration::from_millis(200);

/// How long a TCP client has to send its request (rpyc's `TIMEOUT`).
const TCP_REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// TCP requests handled at once; more wait in the listen backlog.
pub const MAX_TCP_CLIENTS: usize = 32;

/// The most `(name, server)` entries kept. rpyc keeps any number; a peer
/// sending REGISTER after REGISTER with new names could then grow the
/// table without end. Past this, stale entries are pruned and, if that is
/// not enough, new registrations go unanswered (a registrar retries).
pub const MAX_ENTRIES: usize = 16_384;

/// Services by upper-case name, each with its servers and when each last
/// registered.
#[derive(Default)]
struct Table {
    services: HashMap<String, HashMap<(String, u16), Instant>>,
}

struct State {
    table: Mutex<Table>,
    pruning_timeout: Duration,
    allow_listing: bool,
    stop: AtomicBool,
    tcp_clients: AtomicUsize,
}

impl State {
    /// Answers one request from `host`; `None` for no answer.
    fn handle(&self, host: &str, data: &[u8]) -> Option<Vec<u8>> {
        let Ok(Value::Tuple(parts)) = brine::decode_with(data, decode_options()) else { return None };
        let [Value::Str(magic), Value::Str(cmd), Value::Tuple(args)] = parts.as_slice() else { return None };
        if magic != "RPYC" {
            log::debug!("registry: invalid magic from {host}");
            return None;
        }
        let reply = match (cmd.to_lowercase().as_str(), args.as_slice()) {
            ("query", [Value::Str(name)]) => self.query(name),
            ("list", [Value::Tuple(filter)]) => self.list(filter.first()),
            ("register", [Value::Tuple(names), Value::Int(port)]) => {
                let port = u16::try_from(*port).ok()?;
                let names: Option<Vec<&str>> = names
                    .iter()
                    .map(|n| match n {
                        Value::Str(s) => Some(s.as_str()),
                        _ => None,
                    })
                    .collect();
                self.register(host, &names?, port)?
            }
            ("unregister", [Value::Int(port)]) => self.unregister(host, u16::try_from(*port).ok()?),
            _ => {
                log::debug!("registry: unknown or malformed command {cmd:?} from {host}");
                return None;
            }
        };
        brine::encode(&reply).ok()
    }

    fn query(&self, name: &str) -> Value {
        let name = name.to_uppercase();
        let mut table = self.table.lock();
        let Some(servers) = table.services.get_mut(&name) else { return Value::Tuple(Vec::new()) };
        // rpyc drops what is stale as a query meets it, and answers the
        // rest oldest registration first.
        let now = Instant::now();
        servers.retain(|_, seen| now.duration_since(*seen) <= self.pruning_timeout);
        let mut fresh: Vec<(&(String, u16), &Instant)> = servers.iter().collect();
        fresh.sort_by_key(|(_, seen)| **seen);
        let out = fresh
            .into_iter()
            .map(|((h, p), _)| Value::Tuple(vec![Value::from(h.as_str()), Value::from(*p)]))
            .collect();
        if servers.is_empty() {
            table.services.remove(&name);
        }
        Value::Tuple(out)
    }

    fn list(&self, filter: Option<&Value>) -> Value {
        if !self.allow_listing {
            return Value::None;
        }
        let table = self.table.lock();
        let names = table.services.iter().filter(|(_, servers)| match filter {
            Some(Value::Str(h)) if !h.is_empty() => servers.keys().any(|(host, _)| host == h),
            _ => true,
        });
        Value::Tuple(names.map(|(n, _)| Value::from(n.as_str())).collect())
    }

    fn register(&self, host: &str, names: &[&str], port: u16) -> Option<Value> {
        let now = Instant::now();
        let mut table = self.table.lock();
        let count = |t: &Table| t.services.values().map(HashMap::len).sum::<usize>();
        if count(&table) + names.len() > MAX_ENTRIES {
            let timeout = self.pruning_timeout;
            table.services.retain(|_, servers| {
                servers.retain(|_, seen| now.duration_since(*seen) <= timeout);
                !servers.is_empty()
            });
            if count(&table) + names.len() > MAX_ENTRIES {
                log::warn!("registry: full ({MAX_ENTRIES} entries); ignoring a registration from {host}");
                return None;
            }
        }
        for name in names {
            let servers = table.services.entry(name.to_uppercase()).or_default();
            if servers.insert((host.to_owned(), port), now).is_none() {
                log::info!("registry: {name} at {host}:{port} joined");
            }
        }
        Some(Value::from("OK"))
    }

    fn unregister(&self, host: &str, port: u16) -> Value {
        let mut table = self.table.lock();
        let key = (host.to_owned(), port);
        table.services.retain(|_, servers| {
            servers.remove(&key);
            !servers.is_empty()
        });
        Value::from("OK")
    }
}

enum Socket {
    Udp(UdpSocket),
    Tcp(TcpListener),
}

/// A registry server, bound and ready to [`serve`](RegistryServer::serve).
pub struct RegistryServer {
    socket: Socket,
    addr: SocketAddr,
    pruning_timeout: Duration,
    allow_listing: bool,
}

impl std::fmt::Debug for RegistryServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryServer").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl RegistryServer {
    /// Binds a registry on `addr` (`"0.0.0.0:18811"` serves the network,
    /// `"127.0.0.1:0"` this host on a free port), with rpyc's defaults:
    /// a 4-minute pruning timeout, listing off.
    pub fn bind(transport: Transport, addr: impl ToSocketAddrs) -> io::Result<RegistryServer> {
        let (socket, addr) = match transport {
            Transport::Udp => {
                let s = UdpSocket::bind(addr)?;
                s.set_read_timeout(Some(TICK))?;
                let a = s.local_addr()?;
                (Socket::Udp(s), a)
            }
            Transport::Tcp => {
                let l = TcpListener::bind(addr)?;
                let a = l.local_addr()?;
                (Socket::Tcp(l), a)
            }
        };
        Ok(RegistryServer { socket, addr, pruning_timeout: DEFAULT_PRUNING_TIMEOUT, allow_listing: false })
    }

    fn state(&self) -> Arc<State> {
        Arc::new(State {
            table: Mutex::new(Table::default()),
            pruning_timeout: self.pruning_timeout,
            allow_listing: self.allow_listing,
            stop: AtomicBool::new(false),
            tcp_clients: AtomicUsize::new(0),
        })
    }

    /// UDP or TCP.
    pub fn transport(&self) -> Transport {
        match self.socket {
            Socket::Udp(_) => Transport::Udp,
            Socket::Tcp(_) => Transport::Tcp,
        }
    }

    /// Drops a server not refreshed for this long (rpyc's
    /// `pruning_timeout`, default 4 minutes).
    pub fn pruning_timeout(mut self, timeout: Duration) -> Self {
        self.pruning_timeout = timeout;
        self
    }

    /// Answers LIST requests (rpyc's `allow_listing`, off by default).
    pub fn allow_listing(mut self, on: bool) -> Self {
        self.allow_listing = on;
        self
    }

    /// Where it listens (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves on a new thread until the handle is stopped or dropped.
    pub fn spawn(self) -> io::Result<RegistryHandle> {
        let state = self.state();
        let addr = self.addr;
        let st = state.clone();
        let thread = std::thread::Builder::new().name("rpyc-registry".into()).spawn(move || self.run(&st))?;
        Ok(RegistryHandle { state, addr, thread: Some(thread) })
    }

    /// Serves on this thread, forever (use [`RegistryServer::spawn`] for a
    /// registry that can be stopped).
    pub fn serve(self) -> io::Result<()> {
        let state = self.state();
        self.run(&state)
    }

    fn run(&self, state: &Arc<State>) -> io::Result<()> {
        log::info!("registry listening on {}", self.addr);
        match &self.socket {
            Socket::Udp(s) => serve_udp(state, s),
            Socket::Tcp(l) => serve_tcp(state, l),
        }
    }
}

fn serve_udp(state: &State, sock: &UdpSocket) -> io::Result<()> {
    let mut buf = vec![0u8; MAX_DGRAM_SIZE];
    while !state.stop.load(Ordering::Acquire) {
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // ICMP errors from earlier replies surface here on
                // Linux (ECONNREFUSED): nothing to do with this request.
                log::debug!("registry: receive failed: {e}");
                continue;
            }
        };
        if let Some(reply) = state.handle(&from.ip().to_string(), &buf[..n]) {
            let _ = sock.send_to(&reply, from);
        }
    }
    Ok(())
}

fn serve_tcp(state: &Arc<State>, listener: &TcpListener) -> io::Result<()> {
    let mut pfd = libc::pollfd { fd: listener.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    while !state.stop.load(Ordering::Acquire) {
        pfd.revents = 0;
        // SAFETY: one valid pollfd on the stack, count 1.
        let rc = unsafe { libc::poll(&mut pfd, 1, TICK.as_millis() as libc::c_int) };
        if rc <= 0 {
            continue;
        }
        let (stream, from) = match listener.accept() {
            Ok(x) => x,
            Err(e) => {
                log::debug!("registry: accept failed: {e}");
                continue;
            }
        };
        threads.retain(|t| !t.is_finished());
        let st = state.clone();
        if st.tcp_clients.fetch_add(1, Ordering::AcqRel) >= MAX_TCP_CLIENTS {
            // Full: answer this one inline rather than queue threads.
            serve_tcp_client(&st, stream, from);
            st.tcp_clients.fetch_sub(1, Ordering::AcqRel);
            continue;
        }
        let spawned = std::thread::Builder::new().name("rpyc-registry-tcp".into()).spawn(move || {
            serve_tcp_client(&st, stream, from);
            st.tcp_clients.fetch_sub(1, Ordering::AcqRel);
        });
        match spawned {
            Ok(t) => threads.push(t),
            Err(e) => {
                log::warn!("registry: cannot start a thread: {e}");
                state.tcp_clients.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

/// Reads one request (until it decodes, the peer stops sending, or 1500
/// bytes), answers it and closes.
fn serve_tcp_client(state: &State, mut stream: TcpStream, from: SocketAddr) {
    let deadline = Instant::now() + TCP_REQUEST_TIMEOUT;
    let mut data = Vec::new();
    let mut buf = [0u8; MAX_DGRAM_SIZE];
    let reply = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || state.stop.load(Ordering::Acquire) {
            return;
        }
        if stream.set_read_timeout(Some(left.min(TICK))).is_err() {
            return;
        }
        match stream.read(&mut buf[..MAX_DGRAM_SIZE - data.len()]) {
            Ok(0) => break state.handle(&from.ip().to_string(), &data),
            Ok(n) => {
                data.extend_from_slice(&buf[..n]);
                if let Some(r) = state.handle(&from.ip().to_string(), &data) {
                    break Some(r);
                }
                if data.len() >= MAX_DGRAM_SIZE {
                    return;
                }
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        }
    };
    if let Some(r) = reply {
        let _ = stream.set_write_timeout(Some(TCP_REQUEST_TIMEOUT));
        let _ = stream.write_all(&r);
    }
}

/// A registry serving on its own thread; stops it when dropped.
pub struct RegistryHandle {
    state: Arc<State>,
    addr: SocketAddr,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl std::fmt::Debug for RegistryHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryHandle").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl RegistryHandle {
    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The live entries: each service name with its `(host, port)`s.
    /// Entries older than the pruning timeout are left out (and stay until
    /// a query prunes them, as in rpyc).
    pub fn services(&self) -> Vec<(String, Vec<(String, u16)>)> {
        let table = self.state.table.lock();
        let now = Instant::now();
        let mut out: Vec<(String, Vec<(String, u16)>)> = table
            .services
            .iter()
            .map(|(name, servers)| {
                let mut live: Vec<(String, u16)> = servers
                    .iter()
                    .filter(|(_, seen)| now.duration_since(**seen) <= self.state.pruning_timeout)
                    .map(|(k, _)| k.clone())
                    .collect();
                live.sort();
                (name.clone(), live)
            })
            .filter(|(_, live)| !live.is_empty())
            .collect();
        out.sort();
        out
    }

    /// True while the serving thread runs.
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stops serving and waits for the thread.
    pub fn stop(mut self) -> io::Result<()> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> io::Result<()> {
        self.state.stop.store(true, Ordering::Release);
        match self.thread.take() {
            Some(t) => t.join().unwrap_or_else(|_| Err(io::Error::other("registry thread panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for RegistryHandle {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}
