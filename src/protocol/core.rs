//! The world-agnostic engine: sending, the table of pending requests, and
//! reading, for any object world.
//!
//! The rule is rpyc's own, and the fastest one: *the thread that waits is the
//! thread that reads*. A caller that needs a reply takes the reader role and
//! reads frames itself. A reply for another thread is parked in the pending
//! table and that thread woken; a request from the peer (a callback) is
//! served right there, on the reading thread, after giving the reader role
//! up, which is what lets nested calls go to any depth. There is no hop
//! through a dedicated reader thread on the common path: on a small machine a
//! thread wake-up costs as much as the syscalls of a whole call.
//!
//! The sending side (one write per batch, and the frames that ride along
//! with the next one) is in `core_send.rs`.
//!
//! The engine moves raw payloads. What a request means and how a reply body
//! becomes an object is the business of the [`Peer`] (the object world) that
//! drives it, so the Rust world and the Python world share this code.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::channel::{Channel, ChannelError, FrameSink, FrameSource};
use crate::fasthash::FastMap;
use crate::stream::{Closer, Interruption};

use super::message::{begin_request, is_del_request, Handler, Incoming, MSG_REQUEST};
use super::{Error, Result};

/// What the engine needs from whoever serves the connection: what to do
/// with a request, and with a reply nobody waits for. The shared serving
/// path ([`super::exchange`]) implements it for every object world.
pub(crate) trait Peer: Sync {
    /// A request arrived: serve it on this thread and send the reply. An
    /// `Err` ends the wait (or `serve`) this thread is in with
    /// [`Error::Interrupted`], carrying the cause to the caller: rpyc
    /// propagates a handler's `SystemExit` out of the call that was
    /// serving it.
    fn on_request(&self, core: &Core, msg: Incoming) -> std::result::Result<(), Interruption>;
    /// A reply that nobody waits for (its caller timed out or never
    /// waited, as for DEL). The world decodes and drops it, so that any
    /// reference it carries is released and the peer's refcounts stay right.
    fn on_orphan(&self, msg: Incoming);
}

/// A callback run with a reply on whichever thread reads it. An `Err` is
/// handed to the call that was reading, as an [`Error::Interrupted`] (rpyc
/// raises an async callback's exception out of the `serve` that ran it).
pub(crate) type ReplyCallback =
    Box<dyn FnOnce(Result<Incoming>) -> std::result::Result<(), Interruption> + Send>;

enum Slot {
    Waiting,
    Ready(Result<Incoming>),
    Callback(ReplyCallback),
}

#[derive(Default)]
struct State {
    pending: FastMap<i64, Slot>,
    closed: Option<String>,
    /// Threads running a reply callback they read. A `serve` caller waits
    /// for them rather than read: what it waits for (an async result) may
    /// be the very reply being delivered, and reading would block it on a
    /// frame that is not coming.
    delivering: Vec<ThreadId>,
    /// Counts the events `serve` callers wait for (a reply placed or
    /// delivered, the reader released, the end), always under this lock.
    /// A caller that checked its own condition (say `AsyncResult`'s
    /// `_is_ready`) at generation `g` passes `g` to [`Core::serve_since`],
    /// which then does not wait when anything happened since: the event
    /// that made the condition true cannot slip between the check and the
    /// wait (rpyc 6 re-checks its `waiting()` under its lock for the same
    /// reason).
    generation: u64,
}

/// The engine of one connection.
pub(crate) struct Core {
    writer: Mutex<Box<dyn FrameSink>>,
    /// Frames queued by threads that must not block on the writer (proxy
    /// destructors); whoever holds the writer sends them.
    deferred: Mutex<Vec<Vec<u8>>>,
    /// Answers nobody waits for (the replies to the peer's DELs): they go
    /// out with the next frame we send and are never sent on their own.
    quiet: Mutex<Vec<Vec<u8>>>,
    /// Holding this lock *is* the reader role.
    reader: Mutex<Box<dyn FrameSource>>,
    state: Mutex<State>,
    changed: Condvar,
    closer: Closer,
    seq: AtomicI64,
    closed: AtomicBool,
    /// Whether we write rpyc 5.x's message framing. It starts as
    /// configured and then follows what the peer sends, so a server answers
    /// 5.x and 6.x clients alike.
    legacy: AtomicBool,
    peer_name: String,
    fd: Option<std::os::fd::RawFd>,
}

impl Core {
    /// An engine over a framed channel.
    pub fn new(channel: Channel) -> Core {
        Core::from_parts(
            Box::new(channel.reader),
            Box::new(channel.writer),
            channel.closer,
            channel.peer,
            channel.fd,
        )
    }

    /// An engine over any source and sink of frames.
    pub fn from_parts(
        reader: Box<dyn FrameSource>,
        writer: Box<dyn FrameSink>,
        closer: Closer,
        peer_name: String,
        fd: Option<std::os::fd::RawFd>,
    ) -> Core {
        Core {
            writer: Mutex::new(writer),
            deferred: Mutex::new(Vec::new()),
            quiet: Mutex::new(Vec::new()),
            reader: Mutex::new(reader),
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            closer,
            seq: AtomicI64::new(0),
            closed: AtomicBool::new(false),
            legacy: AtomicBool::new(false),
            peer_name,
            fd,
        }
    }

    /// Who is on the other end.
    pub fn peer_name(&self) -> &str {
        &self.peer_name
    }

    /// The descriptor to poll for incoming data, if the stream has one.
    pub fn fileno(&self) -> Option<std::os::fd::RawFd> {
        self.fd
    }

    /// True when a frame (or part of one) is already buffered, so polling
    /// the descriptor would not show it.
    pub fn has_buffered(&self) -> bool {
        self.reader.try_lock().is_some_and(|r| r.has_buffered())
    }

    /// Chooses rpyc 5.x's message framing (`brine((msg, seq, body))`) for
    /// what we send, until the peer shows otherwise. rpyc 5.x and 6.x cannot
    /// read each other's messages, and a client speaks first, so a client
    /// must be told which its server runs.
    pub fn set_legacy_framing(&self, legacy: bool) {
        self.legacy.store(legacy, Ordering::Relaxed);
    }

    /// Whether we currently write rpyc 5.x's framing.
    pub fn legacy_framing(&self) -> bool {
        self.legacy.load(Ordering::Relaxed)
    }

    /// Starts a request in the framing the peer speaks; the caller appends
    /// the boxed arguments.
    pub fn begin_request(&self, buf: &mut Vec<u8>, seq: i64, handler: Handler) {
        begin_request(buf, seq, handler, self.legacy_framing());
    }

    /// Starts the answer (REPLY or EXCEPTION) to a request in the framing
    /// the peer speaks, echoing the request's seq; the caller appends the
    /// body.
    pub fn begin_answer(&self, buf: &mut Vec<u8>, msg: u8, to: &Incoming) {
        to.begin_answer(buf, msg, self.legacy_framing());
    }

    /// The next request number (rpyc counts up from 0 per sender).
    pub fn next_seq(&self) -> i64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    /// True once the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Why the connection ended, if it has.
    pub fn closed_reason(&self) -> Option<String> {
        self.state.lock().closed.clone()
    }

    fn closed_error(&self) -> Error {
        Error::Closed { reason: self.closed_reason().unwrap_or_else(|| "connection is closed".into()) }
    }

    /// Sends a request and records that its reply will be waited for with
    /// [`Core::wait`].
    pub fn send_request(&self, seq: i64, frame: &mut Vec<u8>) -> Result<()> {
        self.register(seq, Slot::Waiting)?;
        self.send(frame).inspect_err(|_| {
            self.state.lock().pending.remove(&seq);
        })
    }

    /// Sends a request whose reply is handed to `callback` on whichever
    /// thread reads it.
    pub fn send_request_with_callback(
        &self,
        seq: i64,
        frame: &mut Vec<u8>,
        callback: ReplyCallback,
    ) -> Result<()> {
        self.register(seq, Slot::Callback(callback))?;
        self.send(frame).inspect_err(|_| {
            self.state.lock().pending.remove(&seq);
        })
    }

    fn register(&self, seq: i64, slot: Slot) -> Result<()> {
        let mut st = self.state.lock();
        if let Some(reason) = &st.closed {
            return Err(Error::Closed { reason: reason.clone() });
        }
        st.pending.insert(seq, slot);
        Ok(())
    }

    /// Stops waiting for `seq`: a reply that comes later is an orphan.
    pub fn forget(&self, seq: i64) {
        self.state.lock().pending.remove(&seq);
    }

    /// True when the reply to `seq` has arrived (or the connection ended).
    pub fn is_ready(&self, seq: i64) -> bool {
        let st = self.state.lock();
        st.closed.is_some() || !matches!(st.pending.get(&seq), Some(Slot::Waiting))
    }

    /// Waits for the reply to `seq`, reading (and serving requests) on this
    /// thread whenever no other thread is reading.
    ///
    /// It ends with the reply, or with [`Error::Timeout`] at the deadline,
    /// [`Error::Closed`] when the connection ends, or
    /// [`Error::Interrupted`] when something on this thread abandoned the
    /// wait (a signal handler raised; a request served here propagated an
    /// exception). In every case but the reply, `seq` is forgotten and a
    /// late reply becomes an orphan.
    pub fn wait(&self, peer: &dyn Peer, seq: i64, timeout: Option<Duration>) -> Result<Incoming> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut st = self.state.lock();
        loop {
            match st.pending.get(&seq) {
                Some(Slot::Ready(_)) => {
                    if let Some(Slot::Ready(r)) = st.pending.remove(&seq) {
                        return r;
                    }
                }
                Some(_) => {}
                None if st.closed.is_some() => {}
                // Only a caller bug gets here: a seq never registered, or
                // waited for twice.
                None => return Err(Error::protocol(format!("request {seq} was never sent or is settled"))),
            }
            if let Some(reason) = &st.closed {
                let reason = reason.clone();
                st.pending.remove(&seq);
                return Err(Error::Closed { reason });
            }
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left == Some(Duration::ZERO) {
                st.pending.remove(&seq);
                return Err(Error::Timeout);
            }
            // Taking the reader role while holding the state lock, and
            // giving it back only under the state lock, is what makes the
            // condvar wait below immune to lost wake-ups.
            if let Some(mut rd) = self.reader.try_lock() {
                drop(st);
                self.before_reading(&rd);
                // Poll for the reply a short while before sleeping on it
                // (the channel's `spin` module says why).
                rd.expect_reply();
                let read = self.read_one(peer, rd, left);
                st = self.state.lock();
                if let Read::Interrupted(why) = read {
                    st.pending.remove(&seq);
                    return Err(Error::Interrupted(why));
                }
            } else {
                match deadline {
                    Some(d) => {
                        self.changed.wait_until(&mut st, d);
                    }
                    None => self.changed.wait(&mut st),
                }
            }
        }
    }

    /// Serves the DELs that the peer sent right behind a reply, already
    /// read into our buffer (a server drops the proxies a request held, a
    /// callback's say, after answering it). Their answers then ride with
    /// our next frame; left for later, they were answered while we waited
    /// for the reply to our next request, in a write of their own: a system
    /// call here and a read and a wake-up at the peer. The caller runs this
    /// once it has decoded the reply, never before: the reply may name the
    /// very objects these DELs release. An rpyc peer never waits for the
    /// answers, and serving a DEL runs no handler of the user's (only the
    /// object's release), so nothing the caller sees changes order. It never
    /// reads the socket (only whole frames already buffered) and queues
    /// the answers rather than write them, so it does not block: the Python
    /// world runs it holding the GIL.
    pub(crate) fn answer_buffered_dels(&self, peer: &dyn Peer) -> Result<()> {
        while let Some(rd) = self.reader.try_lock() {
            if !rd.buffered_payload().is_some_and(is_del_request) {
                return Ok(());
            }
            if let Read::Interrupted(why) = self.read_one(peer, rd, Some(Duration::ZERO)) {
                return Err(Error::Interrupted(why));
            }
        }
        Ok(())
    }

    /// The next request, taken from the reader, when it has already arrived
    /// whole; `None`, taking nothing, for anything else. It never waits or
    /// reads the socket. A client sends the DELs of its dead proxies with
    /// its next request, in one write, so behind a DEL the request is
    /// usually here already: the Python world serves it in the same hold of
    /// the GIL as the DEL rather than give the GIL back and take it again.
    #[cfg(feature = "python")]
    pub(crate) fn next_buffered_request(&self) -> Option<Incoming> {
        let mut rd = self.reader.try_lock()?;
        let is_request = |p: &[u8]| super::message::peek_header(p).is_ok_and(|(msg, _)| msg == MSG_REQUEST);
        if !rd.buffered_payload().is_some_and(is_request) {
            return None;
        }
        // Whole and uncompressed (`buffered_payload` said so): this takes
        // it from the buffer without waiting.
        let parsed = rd.recv(Some(Duration::ZERO)).map_err(|e| e.to_string()).and_then(|p| {
            Incoming::parse(p).map_err(|e| format!("{} sent an invalid message: {e}", self.peer_name))
        });
        match parsed {
            Ok(msg) => {
                if msg.is_legacy() != self.legacy_framing() {
                    self.set_legacy_framing(msg.is_legacy());
                }
                self.release(rd);
                Some(msg)
            }
            Err(reason) => {
                drop(rd);
                self.shutdown(&reason);
                None
            }
        }
    }

    /// Serves one incoming frame (a request, or a reply for anyone) if one
    /// arrives within `timeout`. True if a frame was handled.
    pub fn serve(&self, peer: &dyn Peer, timeout: Option<Duration>) -> Result<bool> {
        self.serve_since(peer, timeout, None)
    }

    /// [`Core::serve`] for a serving loop (a server's, `serve_all`): the
    /// peer that sent a request often sends its next one as soon as it
    /// has the reply, so the reader polls for it a short while before it
    /// sleeps (the channel's `spin` module).
    pub fn serve_busy(&self, peer: &dyn Peer, timeout: Option<Duration>) -> Result<bool> {
        self.serve_with(peer, timeout, None, true)
    }

    /// The current event generation (see `State::generation`). Only the
    /// Python world's `Connection.serve` (and the tests) need it.
    #[cfg(any(feature = "python", test))]
    pub fn generation(&self) -> u64 {
        self.state.lock().generation
    }

    /// [`Core::serve`] for a caller that checked what it waits for at
    /// generation `since`: when anything happened after that, it returns
    /// `Ok(false)` at once, so the caller checks again rather than wait or
    /// read for an event that has already come.
    pub fn serve_since(
        &self,
        peer: &dyn Peer,
        timeout: Option<Duration>,
        since: Option<u64>,
    ) -> Result<bool> {
        self.serve_with(peer, timeout, since, false)
    }

    /// [`Core::serve_since`], polling first for the next request when
    /// `poll_first` (see [`Core::serve_busy`]).
    fn serve_with(
        &self,
        peer: &dyn Peer,
        timeout: Option<Duration>,
        since: Option<u64>,
        poll_first: bool,
    ) -> Result<bool> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut st = self.state.lock();
        if st.closed.is_some() {
            drop(st);
            return Err(self.closed_error());
        }
        if since.is_some_and(|g| g != st.generation) {
            return Ok(false);
        }
        let other_delivering = !st.delivering.is_empty() && {
            let me = std::thread::current().id();
            st.delivering.iter().any(|t| *t != me)
        };
        if let Some(mut rd) = if other_delivering { None } else { self.reader.try_lock() } {
            drop(st);
            self.before_reading(&rd);
            if poll_first {
                rd.expect_request();
            }
            return match self.read_one(peer, rd, timeout) {
                Read::Frame => Ok(true),
                Read::Timeout => Ok(false),
                Read::Closed => Err(self.closed_error()),
                Read::Interrupted(why) => Err(Error::Interrupted(why)),
            };
        }
        // Another thread is reading, or delivering a reply it read. Like
        // rpyc, wait for it to finish and report "nothing served here": the
        // caller re-checks whatever it waits for (its reply may be what that
        // thread read).
        match deadline {
            Some(d) => {
                self.changed.wait_until(&mut st, d);
            }
            None => self.changed.wait(&mut st),
        }
        Ok(false)
    }

    /// Reads one frame with the reader role held and routes it.
    fn read_one(
        &self,
        peer: &dyn Peer,
        mut rd: MutexGuard<'_, Box<dyn FrameSource>>,
        timeout: Option<Duration>,
    ) -> Read {
        let payload = match rd.recv(timeout) {
            Ok(p) => p,
            Err(ChannelError::Timeout) => {
                self.release(rd);
                return Read::Timeout;
            }
            Err(ChannelError::Interrupted(why)) => {
                self.release(rd);
                return Read::Interrupted(why);
            }
            Err(e) => {
                drop(rd);
                let reason = match e {
                    ChannelError::Closed => format!("{} closed the connection", self.peer_name),
                    ChannelError::Ended(why) => why,
                    other => format!("connection to {} failed: {other}", self.peer_name),
                };
                self.shutdown(&reason);
                return Read::Closed;
            }
        };
        // The header is parsed here, once; the object world decodes the
        // body from where it ends.
        let msg = match Incoming::parse(payload) {
            Ok(m) => m,
            Err(e) => {
                drop(rd);
                self.shutdown(&format!("{} sent an invalid message: {e}", self.peer_name));
                return Read::Closed;
            }
        };
        if msg.is_legacy() != self.legacy_framing() {
            self.set_legacy_framing(msg.is_legacy());
        }
        if msg.msg() == MSG_REQUEST {
            self.release(rd);
            return match peer.on_request(self, msg) {
                Ok(()) => Read::Frame,
                Err(why) => Read::Interrupted(why),
            };
        }
        let mut st = self.state.lock();
        // A seq past i64 was never ours: an orphan.
        let slot = msg.seq().and_then(|seq| st.pending.get_mut(&seq).map(|slot| (seq, slot)));
        let orphan = match slot {
            Some((_, slot @ Slot::Waiting)) => {
                *slot = Slot::Ready(Ok(msg));
                st.generation += 1;
                None
            }
            Some((seq, Slot::Callback(_))) => {
                let cb = st.pending.remove(&seq);
                st.generation += 1;
                let _delivering = Delivering::start(self, &mut st);
                drop(rd);
                drop(st);
                // Others may read meanwhile (the callback may itself need
                // a request answered), but `serve` callers wait for it.
                self.changed.notify_all();
                if let Some(Slot::Callback(cb)) = cb {
                    if let Err(why) = cb(Ok(msg)) {
                        return Read::Interrupted(why);
                    }
                }
                return Read::Frame;
            }
            // No waiter, or a duplicate reply from a confused peer.
            Some((_, Slot::Ready(_))) | None => Some(msg),
        };
        drop(rd);
        drop(st);
        self.changed.notify_all();
        if let Some(m) = orphan {
            peer.on_orphan(m);
        }
        Read::Frame
    }

    fn release(&self, rd: MutexGuard<'_, Box<dyn FrameSource>>) {
        let mut st = self.state.lock();
        st.generation += 1;
        drop(rd);
        drop(st);
        self.changed.notify_all();
    }

    /// Ends the connection: every pending call fails at once with `reason`,
    /// and a thread blocked reading or writing is woken.
    pub fn shutdown(&self, reason: &str) {
        let callbacks: Vec<ReplyCallback> = {
            let mut st = self.state.lock();
            if st.closed.is_some() {
                return;
            }
            st.closed = Some(reason.to_string());
            st.generation += 1;
            self.closed.store(true, Ordering::Release);
            let keys: Vec<i64> =
                st.pending.iter().filter(|(_, s)| matches!(s, Slot::Callback(_))).map(|(k, _)| *k).collect();
            let mut cbs = Vec::new();
            for k in keys {
                if let Some(Slot::Callback(cb)) = st.pending.remove(&k) {
                    cbs.push(cb);
                }
            }
            cbs
        };
        log::debug!("connection to {}: {reason}", self.peer_name);
        (self.closer)();
        self.changed.notify_all();
        for cb in callbacks {
            // Nobody is reading for this thread's caller any more: an error
            // a callback raises now has no call to go to.
            if let Err(why) = cb(Err(Error::Closed { reason: reason.into() })) {
                log::debug!("a reply callback failed at shutdown: {why}");
            }
        }
    }
}

/// Marks this thread as delivering a reply for as long as it lives (a
/// panicking callback included), and wakes `serve` callers when it ends.
struct Delivering<'a> {
    core: &'a Core,
}

impl<'a> Delivering<'a> {
    fn start(core: &'a Core, st: &mut State) -> Self {
        st.delivering.push(std::thread::current().id());
        Delivering { core }
    }
}

impl Drop for Delivering<'_> {
    fn drop(&mut self) {
        let me = std::thread::current().id();
        let mut st = self.core.state.lock();
        if let Some(i) = st.delivering.iter().position(|t| *t == me) {
            st.delivering.swap_remove(i);
        }
        st.generation += 1;
        drop(st);
        self.core.changed.notify_all();
    }
}

enum Read {
    Frame,
    Timeout,
    Closed,
    Interrupted(Interruption),
}

#[path = "core_send.rs"]
mod send;

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
