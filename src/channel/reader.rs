//! The frame reader: stream bytes in, whole payloads out.
//!
//! It is built for two kinds of peer at once. For the ordinary one, a
//! small frame (a call, a reply, a DEL) costs one `recv` and one
//! allocation, the payload handed on; a large frame is read straight into
//! the payload it becomes, so its bytes are written once. For the hostile
//! one, memory follows the bytes that arrived, never what a header claims,
//! and past a small allowance it is leased from the server's
//! [`MemoryBudget`](super::budget::MemoryBudget).
//!
//! How the bytes travel:
//!
//! - With nothing buffered, a read lands in [`FIRST_READ`] bytes on the
//!   stack: the header and payload of a small frame come in one syscall,
//!   and a thread that waits for the next frame (an idle connection in a
//!   thread-per-connection server) holds no buffer and touches no more
//!   stack than the call that follows will. The frame at the front is
//!   copied out as its payload; bytes past it (the next frames, sent in
//!   the same write) are kept in a small `rest` buffer.
//! - A frame whose bytes did not all arrive becomes a `Partial`: its
//!   header is taken off and its payload grows, as bytes arrive, in the
//!   very vector that is handed on, at most doubling what has arrived
//!   (so a header claiming 1 GiB costs nothing but what was sent after
//!   it). Reads into it never go past the frame's end.
//! - Between frames the reader owns no heap memory at all.

use std::io;
use std::time::{Duration, Instant};

use byteorder::{BigEndian, ByteOrder};
use flate2::{Decompress, FlushDecompress, Status};

use super::spin::{Expect, Polling};
use super::{budget, split_frame, ChannelConfig, ChannelError, FLUSHER, HEADER_LEN};
use crate::stream::ReadHalf;

/// Bytes of the stack read that starts a frame. Most RPyC messages fit, so
/// they take one syscall; a bigger frame takes more. Kept small because
/// it is stack that every waiting thread touches (see the module docs).
pub(super) const FIRST_READ: usize = 1024;

/// The least room a partial frame gets (unless it needs less), so a
/// medium frame does not regrow in small steps.
const MIN_PARTIAL: usize = 4 * 1024;

/// Reads frames from a [`ReadHalf`], buffering across calls.
///
/// Use it (and [`FrameWriter`](super::FrameWriter)) instead of
/// [`Channel`](super::Channel) when one thread reads while another writes.
pub struct FrameReader {
    inner: Box<dyn ReadHalf>,
    /// Stream bytes past what was handed out: the next frames, or the
    /// start of a header. At most [`FIRST_READ`] + [`HEADER_LEN`] bytes.
    rest: Vec<u8>,
    /// Where the unread part of `rest` starts.
    rest_at: usize,
    /// The frame being received once its header is known (boxed: an idle
    /// connection's reader is kept small).
    partial: Option<Box<Partial>>,
    max: usize,
    /// Made on the first compressed frame: most connections never see one,
    /// and zlib's state is several times an idle connection's other memory.
    inflate: Option<Box<Decompress>>,
    /// The partial frame's memory (and inflate output) past the free
    /// allowance.
    lease: budget::Lease,
    /// Polling for a reply, or a serving loop's next request, before
    /// sleeping on it.
    spin: Polling,
}

/// What polling for a reply (or a serving loop's next request) came to.
enum Polled {
    /// It did not poll (nobody said a frame was due, polling off or
    /// resting, a frame begun already).
    Skipped,
    /// It polled; no whole frame came.
    Nothing,
    /// A whole frame's payload.
    Frame(Vec<u8>),
}

/// What one read brought.
enum Filled {
    /// This many bytes, kept (0: the stream ended).
    Bytes(usize),
    /// A whole frame's payload.
    Frame(Vec<u8>),
}

/// A frame whose header has arrived and whose payload is arriving.
struct Partial {
    /// The payload so far (and, at the very end, the `\n`), in the vector
    /// that is handed on: bytes are read into its spare capacity.
    bytes: Vec<u8>,
    /// Payload length plus one for the `\n`.
    want: usize,
    compressed: bool,
}

impl FrameReader {
    /// A reader over `inner` with the given limits, leasing from the
    /// process-wide [`budget::global`] budget.
    pub fn new(inner: Box<dyn ReadHalf>, config: &ChannelConfig) -> Self {
        Self::with_budget(inner, config, budget::global())
    }

    /// A reader leasing from its own `budget` (say, one per server).
    pub fn with_budget(
        inner: Box<dyn ReadHalf>,
        config: &ChannelConfig,
        budget: &'static budget::MemoryBudget,
    ) -> Self {
        let polls = inner.polls_cheaply();
        let local = inner.peer_on_this_host();
        FrameReader {
            inner,
            rest: Vec::new(),
            rest_at: 0,
            partial: None,
            max: config.max_frame_size,
            inflate: None,
            lease: budget::Lease::new(budget),
            spin: Polling::new(if polls { config.reply_spin } else { Duration::ZERO }, local),
        }
    }

    /// The next [`FrameReader::recv`] waits for a reply: with nothing
    /// buffered, it polls the stream a short while before it sleeps
    /// ([`ChannelConfig::reply_spin`]; the `spin` module says why).
    pub fn expect_reply(&mut self) {
        self.spin.arm(Expect::Reply);
    }

    /// The next [`FrameReader::recv`] is a serving loop's wait for the
    /// peer's next request, right after it served one: it polls the same
    /// way first, and stops for a while when requests keep coming late.
    pub fn expect_request(&mut self) {
        self.spin.arm(Expect::Request);
    }

    /// The polling [`FrameReader::expect_reply`] or
    /// [`FrameReader::expect_request`] asked for, within `timeout`: a whole
    /// frame if one came; otherwise the caller goes on to wait (with
    /// whatever part of a frame arrived kept).
    fn poll_first(&mut self, timeout: Option<Duration>) -> Result<Polled, ChannelError> {
        let Some(budget) = self.spin.begin(timeout) else {
            return Ok(Polled::Skipped);
        };
        if self.has_buffered() {
            return Ok(Polled::Skipped);
        }
        let start = Instant::now();
        loop {
            match self.fill(Some(Duration::ZERO), true) {
                Ok(Filled::Frame(payload)) => {
                    self.spin.hit();
                    return Ok(Polled::Frame(payload));
                }
                Ok(Filled::Bytes(_)) => {
                    // Part of a frame, or the end of the stream: the wait
                    // that follows takes it from here.
                    self.spin.hit();
                    return Ok(Polled::Nothing);
                }
                Err(ChannelError::Io(e)) if e.kind() == io::ErrorKind::TimedOut => {}
                Err(e) => return Err(e),
            }
            if start.elapsed() >= budget {
                self.spin.miss();
                return Ok(Polled::Nothing);
            }
            // On a CPU shared with the peer, this is what lets it send.
            std::thread::yield_now();
        }
    }

    /// True when a whole or partial frame is already buffered, so a
    /// [`FrameReader::recv`] will not wait on the stream for its start.
    pub fn has_buffered(&self) -> bool {
        self.partial.is_some() || self.rest_at < self.rest.len()
    }

    /// The payload of the next frame when it has arrived whole and
    /// uncompressed (a DEL, say, sent right behind a reply), without taking
    /// it; `None` otherwise, or when the bytes are not a frame (`recv`
    /// then reports that).
    pub fn buffered_payload(&self) -> Option<&[u8]> {
        if self.partial.is_some() {
            return None;
        }
        let buf = self.rest.get(self.rest_at..)?;
        match split_frame(buf, self.max) {
            Ok(Some(span)) if !span.compressed => buf.get(HEADER_LEN..span.total - 1),
            _ => None,
        }
    }

    /// Waits up to `timeout` for data to start arriving; true if it did.
    pub fn poll(&mut self, timeout: Option<Duration>) -> Result<bool, ChannelError> {
        if self.has_buffered() {
            return Ok(true);
        }
        match self.fill(timeout, false) {
            Ok(Filled::Bytes(0)) => Err(ChannelError::Closed),
            Ok(_) => Ok(true),
            Err(ChannelError::Io(e)) if e.kind() == io::ErrorKind::TimedOut => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Receives the next payload (decompressed), waiting at most `timeout`
    /// (`None`: forever) for it to complete.
    pub fn recv(&mut self, timeout: Option<Duration>) -> Result<Vec<u8>, ChannelError> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut tried = false;
        let polled = match self.poll_first(timeout)? {
            Polled::Frame(frame) => return Ok(frame),
            Polled::Nothing => true,
            Polled::Skipped => false,
        };
        loop {
            if let Some(frame) = self.take_frame()? {
                return Ok(frame);
            }
            // The first read gets all of `timeout` (unless polling took
            // some); the clock is read again only when a frame takes more
            // than one.
            let left = match deadline {
                Some(d) if tried || polled => Some(d.saturating_duration_since(Instant::now())),
                _ => timeout,
            };
            // A zero timeout still reads what has already arrived (a poll).
            if tried && left == Some(Duration::ZERO) {
                return Err(ChannelError::Timeout);
            }
            tried = true;
            match self.fill(left, true) {
                Ok(Filled::Frame(payload)) => return Ok(payload),
                Ok(Filled::Bytes(0)) => return Err(self.ended()),
                Ok(Filled::Bytes(_)) => {}
                Err(ChannelError::Io(e)) if e.kind() == io::ErrorKind::TimedOut => {
                    return Err(ChannelError::Timeout)
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The error for an end of stream: clean between frames, truncated in
    /// the middle of one.
    fn ended(&self) -> ChannelError {
        match &self.partial {
            Some(p) => ChannelError::Truncated {
                expected: HEADER_LEN + p.want,
                received: HEADER_LEN + p.bytes.len(),
            },
            None => {
                let have = &self.rest[self.rest_at..];
                if have.is_empty() {
                    ChannelError::Closed
                } else {
                    ChannelError::Truncated { expected: needed(have), received: have.len() }
                }
            }
        }
    }

    /// Reads once: into the partial frame when there is one, else onto the
    /// stack (see the module docs), and with `take` hands out the frame
    /// that read completed, if it holds one whole. Otherwise says how many
    /// bytes it read, 0 at the end of the stream.
    fn fill(&mut self, timeout: Option<Duration>, take: bool) -> Result<Filled, ChannelError> {
        if let Some(p) = &mut self.partial {
            if p.bytes.len() == p.bytes.capacity() {
                // Full: room for more, at most doubling what has arrived.
                let target = p.want.min((2 * p.bytes.len()).max(MIN_PARTIAL));
                self.lease
                    .hold(target)
                    .map_err(|e| ChannelError::MemoryBudget { wanted: e.wanted, allowed: e.allowed })?;
                p.bytes.reserve_exact(target - p.bytes.len());
            }
            // Never past this frame's end: what follows is the next frame's.
            let room = (p.bytes.capacity() - p.bytes.len()).min(p.want - p.bytes.len());
            return Ok(Filled::Bytes(self.inner.read_append(&mut p.bytes, room, timeout)?));
        }
        let mut first = [0u8; FIRST_READ];
        let n = self.inner.read_timeout(&mut first, timeout)?;
        let got = &first[..n];
        if self.rest_at < self.rest.len() || !take {
            // The first bytes of a header came before, and the frame goes
            // on (nothing else is left over when a read is needed); or a
            // poll, which only keeps what came.
            self.rest.drain(..self.rest_at);
            self.rest_at = 0;
            self.rest.extend_from_slice(got);
            return Ok(Filled::Bytes(n));
        }
        // The usual case: a read that starts a frame, and often holds all of
        // it. Its payload is copied out at once; any bytes after it wait.
        match split_frame(got, self.max)? {
            Some(span) => {
                let body = &got[HEADER_LEN..span.total - 1];
                let payload =
                    payload_of(body, span.compressed, self.max, &mut self.inflate, &mut self.lease, 0)?;
                self.keep(&got[span.total..]);
                return Ok(Filled::Frame(payload));
            }
            None if got.len() >= HEADER_LEN => {
                self.partial = Some(Box::new(begin_partial(got, &mut self.lease)?));
            }
            None => self.keep(got),
        }
        Ok(Filled::Bytes(n))
    }

    /// Keeps `bytes` that came after the frames handed out, in `rest`
    /// (which is freed when there are none).
    fn keep(&mut self, bytes: &[u8]) {
        self.rest_at = 0;
        if bytes.is_empty() {
            self.rest = Vec::new();
        } else {
            self.rest.clear();
            self.rest.extend_from_slice(bytes);
        }
    }

    /// The next payload if a whole frame is buffered; when the frame at the
    /// front of `rest` is incomplete but its header is there, it becomes the
    /// partial frame.
    fn take_frame(&mut self) -> Result<Option<Vec<u8>>, ChannelError> {
        if let Some(p) = &self.partial {
            if p.bytes.len() < p.want {
                return Ok(None);
            }
            return match self.partial.take() {
                Some(p) => self.finish(*p).map(Some),
                None => Ok(None),
            };
        }
        let have = &self.rest[self.rest_at..];
        match split_frame(have, self.max)? {
            Some(span) => {
                let body = &have[HEADER_LEN..span.total - 1];
                let payload =
                    payload_of(body, span.compressed, self.max, &mut self.inflate, &mut self.lease, 0)?;
                self.rest_at += span.total;
                if self.rest_at == self.rest.len() {
                    self.keep(&[]);
                }
                Ok(Some(payload))
            }
            None if have.len() >= HEADER_LEN => {
                // All of `rest` is this frame's, or it would be complete.
                self.partial = Some(Box::new(begin_partial(have, &mut self.lease)?));
                self.keep(&[]);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    /// The payload of a partial frame that is complete.
    fn finish(&mut self, p: Partial) -> Result<Vec<u8>, ChannelError> {
        let mut bytes = p.bytes;
        let term = bytes.pop().unwrap_or(FLUSHER);
        let out = if term != FLUSHER {
            Err(ChannelError::BadTerminator(term))
        } else if p.compressed {
            payload_of(&bytes, true, self.max, &mut self.inflate, &mut self.lease, bytes.capacity())
        } else {
            Ok(bytes)
        };
        // The payload is handed on (the dispatcher owns it then), and
        // with it the lease on its memory.
        let _ = self.lease.hold(0);
        out
    }
}

/// A frame's payload from its body: inflated (output leased beside `base`
/// bytes, and the lease given back after) or copied.
fn payload_of(
    body: &[u8],
    compressed: bool,
    max: usize,
    inflater: &mut Option<Box<Decompress>>,
    lease: &mut budget::Lease,
    base: usize,
) -> Result<Vec<u8>, ChannelError> {
    if !compressed {
        return Ok(body.to_vec());
    }
    let z = inflater.get_or_insert_with(|| Box::new(Decompress::new(true)));
    // Inflate output is leased beside what the reader holds, and returned
    // once the payload is handed on (the dispatcher owns it then).
    let r = inflate(z, body, max, &mut |cap| lease.hold(base + cap));
    let _ = lease.hold(base);
    r
}

/// The partial frame that `have` (a whole header, not the whole frame)
/// starts: its payload so far, in room for at most twice what arrived.
fn begin_partial(have: &[u8], lease: &mut budget::Lease) -> Result<Partial, ChannelError> {
    // `split_frame` has checked the length and the flag.
    let want = BigEndian::read_u32(have) as usize + 1;
    let compressed = have[4] == 1;
    let room = want.min((2 * have.len()).max(MIN_PARTIAL));
    lease.hold(room).map_err(|e| ChannelError::MemoryBudget { wanted: e.wanted, allowed: e.allowed })?;
    let mut bytes = Vec::with_capacity(room);
    bytes.extend_from_slice(&have[HEADER_LEN..]);
    Ok(Partial { bytes, want, compressed })
}

/// Bytes the frame at the front of `have` needs in all (header, payload,
/// flusher), or just the header when that is incomplete.
fn needed(have: &[u8]) -> usize {
    if have.len() < HEADER_LEN {
        return HEADER_LEN;
    }
    HEADER_LEN + BigEndian::read_u32(have) as usize + 1
}

/// Inflates `input`, at most `max` bytes of output; `lease` is asked
/// before the output buffer grows to each new capacity.
pub(super) fn inflate(
    z: &mut Decompress,
    input: &[u8],
    max: usize,
    lease: &mut dyn FnMut(usize) -> Result<(), budget::Exceeded>,
) -> Result<Vec<u8>, ChannelError> {
    z.reset(true);
    // zlib writes only into spare capacity, so capping the capacity at one
    // byte past `max` bounds the output exactly and still tells a payload
    // of exactly `max` bytes from a larger one.
    let limit = max.saturating_add(1);
    let budget_err =
        |e: budget::Exceeded| ChannelError::MemoryBudget { wanted: e.wanted, allowed: e.allowed };
    let first = (input.len() * 4).max(64).min(limit);
    lease(first).map_err(budget_err)?;
    let mut out = Vec::with_capacity(first);
    loop {
        let consumed = z.total_in() as usize;
        let status = z
            .decompress_vec(&input[consumed..], &mut out, FlushDecompress::Finish)
            .map_err(|e| ChannelError::Decompress(e.to_string()))?;
        if out.len() > max {
            return Err(ChannelError::DecompressedTooLarge { max });
        }
        match status {
            Status::StreamEnd => return Ok(out),
            Status::Ok | Status::BufError => {
                if out.len() == out.capacity() {
                    // `reserve_exact`: `reserve` may double past `limit`.
                    let more = out.capacity().min(limit - out.len());
                    lease(out.len() + more).map_err(budget_err)?;
                    out.reserve_exact(more);
                } else if z.total_in() as usize == input.len() {
                    return Err(ChannelError::Decompress("zlib stream is incomplete".into()));
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "reader_tests.rs"]
mod tests;
