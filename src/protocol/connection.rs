//! The connection a Rust program holds: the engine (`core::Core`) plus the Rust
//! object world (our objects the peer holds, proxies for the peer's
//! objects, the root we expose).
//!
//! It offers rpyc's surface: [`Connection::root`], `sync_request` /
//! `async_request`, `serve`, `poll`, `poll_all`, `serve_all`, a background
//! serving thread, `ping` and `close`.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::channel::{Channel, ChannelConfig};
use crate::service::{Expose, VoidService};
use crate::stream::Stream;

use super::boxing::{IdPack, Object};
use super::core::Core;
use super::exchange::{build_request, decode_reply, request};
use super::message::{Handler, Incoming};
use super::netref::{NetRef, ProxyInner};
use super::objects::LocalObjects;
use super::policy::AttrPolicy;
use super::{Error, Result};

/// How a connection behaves. Build one with [`Config::default`] and the
/// `with_*` methods.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// How long a sync request waits for its reply (rpyc's
    /// `sync_request_timeout`, 30 s); `None` waits forever.
    pub sync_request_timeout: Option<Duration>,
    /// Framing, compression and frame-size limits.
    pub channel: ChannelConfig,
    /// The deepest nesting accepted in a message from the peer.
    pub max_depth: usize,
    /// The most digits an int from the peer may have (CPython's default
    /// `sys.get_int_max_str_digits()`, 4300; `usize::MAX` for none).
    pub max_int_digits: usize,
    /// Which attributes of our objects the peer may reach.
    pub policy: AttrPolicy,
    /// Send our traceback text with exceptions (rpyc's
    /// `include_local_traceback`).
    pub include_local_traceback: bool,
    /// How long to wait for a connection to open.
    pub connect_timeout: Option<Duration>,
    /// Speak rpyc 5.x's message framing: needed by a client whose server
    /// runs rpyc 5.x (the two versions cannot read each other's messages).
    /// A server needs nothing: it answers in whatever framing it is sent.
    /// [`Connector`](crate::Connector) detects it unless told.
    pub legacy_framing: bool,
    /// The certificate the peer presented over TLS, set by the server or
    /// connector that ran the handshake (rpyc's `credentials`).
    pub peer_certificate: Option<Arc<crate::stream::tls::PeerCertificate>>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sync_request_timeout: Some(Duration::from_secs(30)),
            channel: ChannelConfig::default(),
            max_depth: crate::brine::DEFAULT_MAX_DEPTH,
            max_int_digits: crate::brine::DEFAULT_MAX_INT_DIGITS,
            policy: AttrPolicy::default(),
            include_local_traceback: true,
            connect_timeout: Some(Duration::from_secs(10)),
            legacy_framing: false,
            peer_certificate: None,
        }
    }
}

impl Config {
    /// The brine bounds messages from the peer are decoded with.
    pub(crate) fn decode_options(&self) -> crate::brine::DecodeOptions {
        crate::brine::DecodeOptions::with_max_depth(self.max_depth).with_max_int_digits(self.max_int_digits)
    }
    /// Sets the sync request timeout.
    pub fn with_timeout(mut self, t: Option<Duration>) -> Self {
        self.sync_request_timeout = t;
        self
    }
    /// Turns compression of large frames on or off.
    pub fn with_compression(mut self, on: bool) -> Self {
        self.channel.compress = on;
        self
    }
    /// Sets the largest frame accepted.
    pub fn with_max_frame_size(mut self, bytes: usize) -> Self {
        self.channel.max_frame_size = bytes;
        self
    }
    /// Sets the attribute policy for the objects we serve.
    pub fn with_policy(mut self, policy: AttrPolicy) -> Self {
        self.policy = policy;
        self
    }
    /// Speaks rpyc 5.x's message framing (for a server running rpyc 5.x).
    pub fn with_legacy_framing(mut self, on: bool) -> Self {
        self.legacy_framing = on;
        self
    }

    /// Sets the connect timeout.
    pub fn with_connect_timeout(mut self, t: Option<Duration>) -> Self {
        self.connect_timeout = t;
        self
    }

    /// Sets how long a thread waiting for a reply polls for it before it
    /// sleeps ([`ChannelConfig::reply_spin`]; zero: sleep at once).
    pub fn with_reply_spin(mut self, t: Duration) -> Self {
        self.channel.reply_spin = t;
        self
    }
}

pub(crate) struct Inner {
    pub(crate) core: Core,
    pub(crate) config: Config,
    pub(crate) locals: LocalObjects<Arc<dyn Expose>>,
    pub(crate) proxies: Mutex<HashMap<IdPack, Weak<ProxyInner>>>,
    pub(crate) root: Arc<dyn Expose>,
    me: Weak<Inner>,
    closing: AtomicBool,
    disconnected: AtomicBool,
}

impl Inner {
    /// A strong handle to this connection. Only called from code that runs
    /// on behalf of a live handle (a request being served, a proxy being
    /// made), so the upgrade cannot fail: a failure is a bug in this crate,
    /// not something a peer can cause.
    pub(crate) fn strong(&self) -> Arc<Inner> {
        self.me.upgrade().expect("connection used after it was dropped")
    }

    pub(crate) fn shutdown(&self, reason: &str) {
        self.core.shutdown(reason);
        drop(self.locals.clear());
    }

    pub(crate) fn sync_request(&self, handler: Handler, args: Vec<Object>) -> Result<Object> {
        self.request_timeout(handler, args, self.config.sync_request_timeout)
    }

    fn request_timeout(
        &self,
        handler: Handler,
        args: Vec<Object>,
        timeout: Option<Duration>,
    ) -> Result<Object> {
        request(self, handler, Object::tuple(args), timeout)
    }

    pub(crate) fn async_request(&self, handler: Handler, args: Vec<Object>) -> Result<AsyncResult> {
        let seq = self.core.next_seq();
        let mut frame = build_request(self, seq, handler, &Object::tuple(args))?;
        self.core.send_request(seq, &mut frame)?;
        Ok(AsyncResult { conn: self.strong(), seq, outcome: None })
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.core.shutdown("connection dropped");
    }
}

/// A connection to an RPyC peer. Cloning is cheap and shares it; many
/// threads may use one connection at once.
#[derive(Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").field("peer", &self.inner.core.peer_name()).finish_non_exhaustive()
    }
}

impl Connection {
    /// Runs the protocol over `stream`, exposing `root` to the peer.
    pub fn new(stream: Stream, root: Arc<dyn Expose>, config: Config) -> Connection {
        let channel = Channel::new(stream, &config.channel);
        let core = Core::new(channel);
        core.set_legacy_framing(config.legacy_framing);
        let inner = Arc::new_cyclic(|me| Inner {
            core,
            config,
            locals: LocalObjects::default(),
            proxies: Mutex::new(HashMap::new()),
            root,
            me: me.clone(),
            closing: AtomicBool::new(false),
            disconnected: AtomicBool::new(false),
        });
        let conn = Connection { inner };
        conn.inner.root.on_connect(&conn);
        conn
    }

    /// Runs the root's `on_disconnect` hook, once.
    fn disconnect_hook(&self) {
        if !self.inner.disconnected.swap(true, Ordering::AcqRel) {
            self.inner.root.on_disconnect(self);
        }
    }

    pub(crate) fn from_inner(inner: Arc<Inner>) -> Connection {
        Connection { inner }
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    /// Connects over TCP to `host:port`, exposing nothing, detecting the
    /// server's rpyc dialect. A thin wrapper: [`Connection::builder`] does
    /// the same for every transport, with TLS and service names.
    pub fn connect(host: &str, port: u16) -> Result<Connection> {
        Self::connect_with(host, port, Arc::new(VoidService), Config::default())
    }

    /// Connects over TCP with a root of our own and a config (see
    /// [`Connection::builder`]).
    pub fn connect_with(host: &str, port: u16, root: Arc<dyn Expose>, config: Config) -> Result<Connection> {
        crate::Connector::new(crate::Address::tcp(host, port)).root(root).config(config).open()
    }

    /// Connects to a Unix domain socket (see [`Connection::builder`]).
    pub fn unix_connect(path: impl AsRef<Path>) -> Result<Connection> {
        Self::unix_connect_with(path, Arc::new(VoidService), Config::default())
    }

    /// Connects to a Unix domain socket with a root and a config (see
    /// [`Connection::builder`]).
    pub fn unix_connect_with(
        path: impl AsRef<Path>,
        root: Arc<dyn Expose>,
        config: Config,
    ) -> Result<Connection> {
        crate::Connector::new(crate::Address::unix(path.as_ref())).root(root).config(config).open()
    }

    /// Starts `cmd` and talks RPyC over its stdin/stdout (rpyc's
    /// `connect_subproc`; e.g. `python -c "...rpyc.classic.connect_stdpipes..."`).
    /// The dialect is the config's (a `Command` cannot be started twice to
    /// probe; [`Address::Subprocess`](crate::Address) can).
    pub fn connect_subprocess(
        cmd: &mut Command,
        root: Arc<dyn Expose>,
        config: Config,
    ) -> Result<Connection> {
        let stream = Stream::spawn(cmd).map_err(|e| Error::Connect(format!("{cmd:?}: {e}")))?;
        Ok(Connection::new(stream, root, config))
    }

    /// The peer's root object (its service). Cached while a handle to it
    /// lives.
    pub fn root(&self) -> Result<NetRef> {
        match self.sync_request(Handler::GetRoot, Vec::new())? {
            Object::Remote(n) => Ok(n),
            other => Err(Error::type_mismatch("a netref to the root", other.type_name())),
        }
    }

    /// Sends a request and waits for its reply (within the configured
    /// timeout), serving the peer's requests meanwhile.
    pub fn sync_request(&self, handler: Handler, args: Vec<Object>) -> Result<Object> {
        self.inner.sync_request(handler, args)
    }

    /// Sends a request and waits at most `timeout` for its reply.
    pub fn sync_request_timeout(
        &self,
        handler: Handler,
        args: Vec<Object>,
        timeout: Option<Duration>,
    ) -> Result<Object> {
        self.inner.request_timeout(handler, args, timeout)
    }

    /// Sends a request without waiting for its reply.
    pub fn async_request(&self, handler: Handler, args: Vec<Object>) -> Result<AsyncResult> {
        self.inner.async_request(handler, args)
    }

    /// Sends a request whose outcome is handed to `callback` on whichever
    /// thread reads the reply (as rpyc's `AsyncResult.add_callback`).
    pub fn async_request_with<F>(&self, handler: Handler, args: Vec<Object>, callback: F) -> Result<()>
    where
        F: FnOnce(Result<Object>) + Send + 'static,
    {
        let seq = self.inner.core.next_seq();
        let mut frame = build_request(&*self.inner, seq, handler, &Object::tuple(args))?;
        let weak = Arc::downgrade(&self.inner);
        let cb = Box::new(move |r: Result<Incoming>| {
            let out = match (r, weak.upgrade()) {
                (Ok(msg), Some(inner)) => decode_reply(&*inner, &msg),
                (Err(e), _) => Err(e),
                (Ok(_), None) => Err(Error::Closed { reason: "connection dropped".into() }),
            };
            callback(out);
            Ok(())
        });
        self.inner.core.send_request_with_callback(seq, &mut frame, cb)
    }

    /// Checks the peer answers: sends `data` in a PING and compares the echo.
    pub fn ping(&self, data: &[u8], timeout: Duration) -> Result<()> {
        let echo = self.sync_request_timeout(Handler::Ping, vec![Object::from(data)], Some(timeout))?;
        match echo {
            Object::Value(crate::brine::Value::Bytes(b)) if b == data => Ok(()),
            other => Err(Error::protocol(format!("ping echo mismatch: {other:?}"))),
        }
    }

    /// Serves one incoming message (request or reply) if one arrives within
    /// `timeout`; true if one did.
    pub fn serve(&self, timeout: Option<Duration>) -> Result<bool> {
        self.inner.core.serve(&*self.inner, timeout)
    }

    /// [`Connection::serve`] for a serving loop: polls a short while for
    /// the next message before sleeping on it, as the peer of a busy
    /// connection sends its next request as soon as it has its reply.
    pub(crate) fn serve_busy(&self, timeout: Option<Duration>) -> Result<bool> {
        self.inner.core.serve_busy(&*self.inner, timeout)
    }

    /// Serves one message if one is already waiting or arrives within
    /// `timeout`.
    pub fn poll(&self, timeout: Duration) -> Result<bool> {
        self.serve(Some(timeout))
    }

    /// Serves everything that arrives within `timeout`; true if anything did.
    pub fn poll_all(&self, timeout: Duration) -> Result<bool> {
        let deadline = Instant::now() + timeout;
        let mut any = false;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.serve(Some(left)) {
                Ok(true) => any = true,
                Ok(false) => return Ok(any),
                Err(Error::Closed { .. }) => return Ok(any),
                Err(e) => return Err(e),
            }
            if left.is_zero() {
                return Ok(any);
            }
        }
    }

    /// Serves until the connection closes (a server's loop). Returns `Ok`
    /// when the peer closed it.
    pub fn serve_all(&self) -> Result<()> {
        let r = loop {
            match self.inner.core.serve_busy(&*self.inner, None) {
                Ok(_) => {}
                Err(Error::Closed { .. }) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        self.inner.shutdown("serving ended");
        self.disconnect_hook();
        r
    }

    /// Starts a thread that serves incoming messages (rpyc's
    /// `BgServingThread`), so the peer's callbacks run even while this
    /// program makes no calls.
    pub fn start_serving_thread(&self) -> BgServingThread {
        let conn = self.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("rpyc-serve".into())
            .spawn(move || {
                while !flag.load(Ordering::Acquire) {
                    if conn.serve(Some(Duration::from_millis(100))).is_err() {
                        break;
                    }
                }
            })
            .ok();
        BgServingThread { stop, handle }
    }

    /// Closes the connection: tells the peer (HANDLE_CLOSE, briefly
    /// awaited) and shuts the stream down.
    pub fn close(&self) {
        if self.inner.closing.swap(true, Ordering::AcqRel) || self.inner.core.is_closed() {
            return;
        }
        let _ = self.sync_request_timeout(Handler::Close, Vec::new(), Some(Duration::from_secs(1)));
        self.inner.shutdown("closed locally");
        self.disconnect_hook();
    }

    /// Shuts the connection down at once, without telling the peer (a
    /// server stopping, or a peer that misbehaved).
    pub fn abort(&self, reason: &str) {
        self.inner.shutdown(reason);
        self.disconnect_hook();
    }

    /// The descriptor to poll for incoming data, if the stream has one
    /// (rpyc's `fileno()`).
    pub fn fileno(&self) -> Option<std::os::fd::RawFd> {
        self.inner.core.fileno()
    }

    /// True when a message is already buffered (so polling the descriptor
    /// would not show it).
    pub fn has_buffered(&self) -> bool {
        self.inner.core.has_buffered()
    }

    /// True once the connection has ended.
    pub fn closed(&self) -> bool {
        self.inner.core.is_closed()
    }

    /// Why the connection ended, if it has.
    pub fn closed_reason(&self) -> Option<String> {
        self.inner.core.closed_reason()
    }

    /// How many of our objects the peer currently holds references to.
    pub fn local_object_count(&self) -> usize {
        self.inner.locals.len()
    }

    /// How many live proxies to the peer's objects we hold.
    pub fn proxy_count(&self) -> usize {
        self.inner.proxies.lock().values().filter(|w| w.strong_count() > 0).count()
    }

    /// Who is on the other end.
    pub fn peer(&self) -> &str {
        self.inner.core.peer_name()
    }
}

/// A request in flight (rpyc's `AsyncResult`).
pub struct AsyncResult {
    conn: Arc<Inner>,
    seq: i64,
    outcome: Option<Result<Object>>,
}

impl AsyncResult {
    /// True when the outcome is known (serves waiting messages first).
    pub fn ready(&mut self) -> bool {
        if self.outcome.is_some() {
            return true;
        }
        if !self.conn.core.is_ready(self.seq) {
            let _ = self.conn.core.serve(&*self.conn, Some(Duration::ZERO));
        }
        self.conn.core.is_ready(self.seq)
    }

    /// Waits at most `timeout` (`None`: forever) for the outcome.
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<Object> {
        if let Some(r) = self.outcome.take() {
            return r;
        }
        let r =
            self.conn.core.wait(&*self.conn, self.seq, timeout).and_then(|m| decode_reply(&*self.conn, &m));
        // The seq is settled either way; nothing is left to forget.
        self.seq = -1;
        r
    }

    /// Waits with the connection's sync timeout.
    pub fn value(mut self) -> Result<Object> {
        let t = self.conn.config.sync_request_timeout;
        self.wait(t)
    }
}

impl Drop for AsyncResult {
    fn drop(&mut self) {
        if self.seq >= 0 {
            // A reply that arrives after this becomes an orphan and is still
            // decoded, so its references are released.
            self.conn.core.forget(self.seq);
        }
    }
}

/// A thread serving a connection in the background; stopped and joined when
/// dropped or by [`BgServingThread::stop`].
pub struct BgServingThread {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl BgServingThread {
    /// Stops serving and waits for the thread.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for BgServingThread {
    fn drop(&mut self) {
        self.halt();
    }
}
