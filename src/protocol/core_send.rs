//! The engine's sending side: one write per batch of frames, and the
//! queues of frames that ride along with the next one.
//!
//! A frame goes out under the writer lock together with whatever is
//! queued: the DELs of dropped proxies ([`Core::send_deferred`]) and the
//! answers to the peer's DELs ([`Core::send_quiet`]). The reading side
//! (`core.rs`) calls [`Core::before_reading`] before it may block, so
//! nothing queued waits for a frame of ours that is not coming.

use parking_lot::MutexGuard;

use crate::channel::{ChannelError, FrameSink, FrameSource};

use super::Core;
use crate::protocol::{Error, Result};

impl Core {
    /// Sends a prepared frame (see [`begin_message`](crate::protocol::message::begin_message)).
    pub fn send(&self, frame: &mut Vec<u8>) -> Result<()> {
        self.send_between(Vec::new(), frame, Vec::new())
    }

    /// Takes the queued frames (DELs, answers to the peer's DELs) for a
    /// caller that sends them itself with [`Core::send_between`].
    pub fn take_queued(&self) -> Vec<Vec<u8>> {
        let mut queued = std::mem::take(&mut *self.quiet.lock());
        queued.append(&mut self.deferred.lock());
        queued
    }

    /// Sends `ahead`, then whatever is queued, then `frame`, then `behind`,
    /// in one write where the frames are small.
    ///
    /// The queued DELs (and answers to the peer's) ride ahead of the frame:
    /// the peer frees the objects before it serves what we send next,
    /// exactly as when each went out alone. `behind` is for DELs that must
    /// reach the peer after the frame: those of proxies that a reply's
    /// request held, which the reply may still name.
    pub fn send_between(&self, ahead: Vec<Vec<u8>>, frame: &mut Vec<u8>, behind: Vec<Vec<u8>>) -> Result<()> {
        if self.is_closed() {
            return Err(self.closed_error());
        }
        let res = {
            let mut w = self.writer.lock();
            let mut all = ahead;
            all.append(&mut self.take_queued());
            let r = if all.is_empty() && behind.is_empty() {
                w.send_prepared(frame)
            } else {
                all.push(std::mem::take(frame));
                all.extend(behind);
                w.send_prepared_all(&mut all)
            };
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
    /// in the same write as the next frame we send, ahead of it, or before
    /// this connection next blocks reading.
    ///
    /// Never blocking here matters because destructors call it, possibly
    /// while their own thread is mid-send. Riding along saves a syscall and
    /// a wake-up of the peer per dropped proxy, and going *ahead* keeps
    /// rpyc's order: the peer frees the object before it serves anything we
    /// send after dropping it. (A peer with Nagle's algorithm on, as a stock
    /// rpyc server, then holds our reply until it has our ACK of the DEL's
    /// reply; the socket reader acknowledges at once whenever it is about to
    /// wait holding unacknowledged data, see `stream::socket`.)
    pub fn send_deferred(&self, frame: Vec<u8>) {
        if self.is_closed() {
            return;
        }
        self.deferred.lock().push(frame);
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

    /// Queues the answer to one of the peer's DELs to go out with the next
    /// frame we send, or before this connection blocks reading with nothing
    /// buffered. An rpyc peer never waits for it (it sends DEL without
    /// waiting), and a DEL usually arrives together with the request that
    /// followed it: its answer then rides with that request's answer
    /// instead of costing a write, and a wake-up of the peer, of its own.
    pub fn send_quiet(&self, frame: Vec<u8>) {
        if self.is_closed() {
            return;
        }
        self.quiet.lock().push(frame);
    }

    /// About to read, perhaps to block: nothing queued may wait for a frame
    /// of ours that is not coming. The answers to the peer's DELs wait only
    /// while a frame is already buffered (the peer sent its DEL together
    /// with a request, whose answer they will ride with); a peer that waits
    /// for them, as a hand-written client may, still gets them.
    pub(super) fn before_reading(&self, rd: &MutexGuard<'_, Box<dyn FrameSource>>) {
        if !rd.has_buffered() {
            let quiet = std::mem::take(&mut *self.quiet.lock());
            if !quiet.is_empty() {
                let mut deferred = self.deferred.lock();
                let later = std::mem::replace(&mut *deferred, quiet);
                deferred.extend(later);
            }
        }
        self.flush_deferred();
    }

    /// Sends queued frames unless another thread holds the writer; checked
    /// after every release so no queued frame is stranded.
    pub(super) fn flush_deferred(&self) {
        while !self.deferred.lock().is_empty() {
            match self.writer.try_lock() {
                Some(mut w) => self.drain_deferred(&mut w),
                None => return,
            }
        }
    }
}
