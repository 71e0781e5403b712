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
//! The engine moves raw payloads. What a request means and how a reply body
//! becomes an object is the business of the [`Peer`] (the object world) that
//! drives it, so the Rust world and the Python world share this code.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::channel::{Channel, ChannelError, FrameSink, FrameSource};
use crate::stream::Closer;

use super::message::{begin_framed, begin_request, peek_header, Handler, LEGACY_MESSAGE_TAG, MSG_REQUEST};
use super::{Error, Result};

/// What the engine needs from an object world.
pub trait Peer: Sync {
    /// A request arrived: serve it on this thread and send the reply.
    fn on_request(&self, core: &Core, seq: i64, payload: Vec<u8>);
    /// A reply that nobody waits for (its caller timed out or never
    /// waited, as for DEL). The world decodes and drops it, so that any
    /// reference it carries is released and the peer's refcounts stay right.
    fn on_orphan(&self, payload: Vec<u8>);
}

/// A callback run with a reply's payload on whichever thread reads it.
pub type ReplyCallback = Box<dyn FnOnce(Result<Vec<u8>>) + Send>;

enum Slot {
    Waiting,
    Ready(Result<Vec<u8>>),
    Callback(ReplyCallback),
}

#[derive(Default)]
struct State {
    pending: HashMap<i64, Slot>,
    closed: Option<String>,
    /// Threads running a reply callback they read. A `serve` caller waits
    /// for them rather than read: what it waits for (an async result) may
    /// be the very reply being delivered, and reading would block it on a
    /// frame that is not coming.
    delivering: Vec<ThreadId>,
}

/// The engine of one connection.
pub struct Core {
    writer: Mutex<Box<dyn FrameSink>>,
    /// Frames queued by threads that must not block on the writer (proxy
    /// destructors); whoever holds the writer sends them.
    deferred: Mutex<Vec<Vec<u8>>>,
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

    /// Starts a message in the framing the peer speaks; the caller appends
    /// the body.
    pub fn begin_message(&self, buf: &mut Vec<u8>, msg: u8, seq: i64) {
        begin_framed(buf, msg, seq, self.legacy_framing());
    }

    /// Starts a request in the framing the peer speaks; the caller appends
    /// the boxed arguments.
    pub fn begin_request(&self, buf: &mut Vec<u8>, seq: i64, handler: Handler) {
        begin_request(buf, seq, handler, self.legacy_framing());
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

    /// Sends a prepared frame (see [`begin_message`](super::message::begin_message)).
    pub fn send(&self, frame: &mut Vec<u8>) -> Result<()> {
        if self.is_closed() {
            return Err(self.closed_error());
        }
        let res = {
            let mut w = self.writer.lock();
            let r = w.send_prepared(frame);
            self.drain_deferred(&mut w);
            r
        };
        self.flush_deferred();
        res.map_err(|e| {
            let reason = match e {
                ChannelError::Ended(why) => why,
                e => format!("sending to {} failed: {e}", self.peer_name),
            };
            self.shutdown(&reason);
            Error::Closed { reason }
        })
    }

    /// Queues a frame nobody waits a reply for (a proxy's DEL) to go out
    /// right after the next request, or when this connection next serves.
    ///
    /// Never blocking here matters because destructors call it, possibly
    /// while their own thread is mid-send. Sending *after* the next request
    /// matters for latency: a peer that has Nagle's algorithm on (a stock
    /// rpyc server does) would otherwise answer the DEL first and hold the
    /// reply we wait for until our delayed ACK, 40 ms later.
    pub fn send_deferred(&self, frame: Vec<u8>) {
        if self.is_closed() {
            return;
        }
        self.deferred.lock().push(frame);
    }

    /// Sends queued frames now, unless another thread holds the writer (it
    /// will send them).
    pub fn flush(&self) {
        self.flush_deferred();
    }

    fn drain_deferred(&self, w: &mut MutexGuard<'_, Box<dyn FrameSink>>) {
        loop {
            let batch = std::mem::take(&mut *self.deferred.lock());
            if batch.is_empty() {
                return;
            }
            for mut f in batch {
                if w.send_prepared(&mut f).is_err() {
                    return;
                }
            }
        }
    }

    /// Sends queued frames unless another thread holds the writer; checked
    /// after every release so no queued frame is stranded.
    fn flush_deferred(&self) {
        while !self.deferred.lock().is_empty() {
            match self.writer.try_lock() {
                Some(mut w) => self.drain_deferred(&mut w),
                None => return,
            }
        }
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
    pub fn wait(&self, peer: &dyn Peer, seq: i64, timeout: Option<Duration>) -> Result<Vec<u8>> {
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
                None => return Err(Error::protocol(format!("no request {seq} is pending"))),
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
            if let Some(rd) = self.reader.try_lock() {
                drop(st);
                self.read_one(peer, rd, left);
                st = self.state.lock();
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

    /// Serves one incoming frame (a request, or a reply for anyone) if one
    /// arrives within `timeout`. True if a frame was handled.
    pub fn serve(&self, peer: &dyn Peer, timeout: Option<Duration>) -> Result<bool> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut st = self.state.lock();
        if st.closed.is_some() {
            drop(st);
            return Err(self.closed_error());
        }
        let other_delivering = !st.delivering.is_empty() && {
            let me = std::thread::current().id();
            st.delivering.iter().any(|t| *t != me)
        };
        if let Some(rd) = if other_delivering { None } else { self.reader.try_lock() } {
            drop(st);
            // About to block on reading: nothing queued may wait for a
            // request that is not coming.
            self.flush_deferred();
            return match self.read_one(peer, rd, timeout) {
                Read::Frame => Ok(true),
                Read::Timeout => Ok(false),
                Read::Closed => Err(self.closed_error()),
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
        let legacy = payload.first() == Some(&LEGACY_MESSAGE_TAG);
        if legacy != self.legacy_framing() {
            self.set_legacy_framing(legacy);
        }
        let (msg, seq) = match peek_header(&payload) {
            Ok(h) => h,
            Err(e) => {
                drop(rd);
                self.shutdown(&format!("{} sent an invalid message: {e}", self.peer_name));
                return Read::Closed;
            }
        };
        if msg == MSG_REQUEST {
            self.release(rd);
            peer.on_request(self, seq, payload);
            return Read::Frame;
        }
        let mut st = self.state.lock();
        let orphan = match st.pending.get_mut(&seq) {
            Some(slot @ Slot::Waiting) => {
                *slot = Slot::Ready(Ok(payload));
                None
            }
            Some(Slot::Callback(_)) => {
                let cb = st.pending.remove(&seq);
                let _delivering = Delivering::start(self, &mut st);
                drop(rd);
                drop(st);
                // Others may read meanwhile (the callback may itself need
                // a request answered), but `serve` callers wait for it.
                self.changed.notify_all();
                if let Some(Slot::Callback(cb)) = cb {
                    cb(Ok(payload));
                }
                return Read::Frame;
            }
            // No waiter, or a duplicate reply from a confused peer.
            Some(Slot::Ready(_)) | None => Some(payload),
        };
        drop(rd);
        drop(st);
        self.changed.notify_all();
        if let Some(p) = orphan {
            peer.on_orphan(p);
        }
        Read::Frame
    }

    fn release(&self, rd: MutexGuard<'_, Box<dyn FrameSource>>) {
        let st = self.state.lock();
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
            cb(Err(Error::Closed { reason: reason.into() }));
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
        drop(st);
        self.core.changed.notify_all();
    }
}

enum Read {
    Frame,
    Timeout,
    Closed,
}
