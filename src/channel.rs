//! The channel: RPyC's framing, turning a byte stream into packets.
//!
//! A frame is `struct.pack("!LB", len(payload), compressed)`, the payload,
//! and a `\n` that is not counted in the length (rpyc adds it so that
//! line-buffered transports flush). Payloads over 3000 bytes are compressed
//! with zlib at level 1 when compression is on; compressed frames are
//! accepted from any peer whatever our own setting.
//!
//! The reader is built for hostile peers: a length above
//! [`ChannelConfig::max_frame_size`] is refused before anything is
//! allocated, decompression stops at the same bound (no zlib bombs), and a
//! stream that ends mid-frame is [`ChannelError::Truncated`], distinct from a
//! clean [`ChannelError::Closed`] between frames. A read that times out keeps
//! the partial frame, so a later call resumes where it stopped and no byte is
//! lost.
//!
//! Memory follows the bytes that arrived, never what a header claims: the
//! receive buffer starts empty and at most doubles what has arrived, and
//! past a small allowance it is leased from the process-wide
//! [`budget::MemoryBudget`], as is inflate output.
//!
//! The channel hands the [`protocol`](crate::protocol) layer whole payloads.
//!
//! Use a [`Channel`] to exchange raw payloads with an rpyc `Channel` (a
//! protocol of your own over RPyC's framing, or a test of someone else's);
//! [`Connection`](crate::Connection) builds one itself:
//!
//! ```
//! use std::time::Duration;
//! use rpyc_rs::channel::{Channel, ChannelConfig};
//! use rpyc_rs::stream::Stream;
//!
//! let (a, b) = Stream::pair();
//! let config = ChannelConfig::default();
//! let (mut left, mut right) = (Channel::new(a, &config), Channel::new(b, &config));
//! left.send(b"hello")?;
//! assert_eq!(right.recv(Some(Duration::from_secs(5)))?, b"hello");
//! let big = vec![7u8; 10_000]; // above 3000 bytes: zlib on the wire, invisible here
//! left.send(&big)?;
//! assert_eq!(right.recv(Some(Duration::from_secs(5)))?, big);
//! # Ok::<(), rpyc_rs::channel::ChannelError>(())
//! ```

pub mod budget;

use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use byteorder::{BigEndian, ByteOrder};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::stream::{Closer, Interruption, ReadHalf, Stream, WriteHalf};

/// Bytes in a frame header (`!LB`).
pub const HEADER_LEN: usize = 5;
/// The byte after every payload.
pub const FLUSHER: u8 = b'\n';
/// rpyc compresses payloads longer than this.
pub const COMPRESSION_THRESHOLD: usize = 3000;
/// rpyc's zlib level.
pub const COMPRESSION_LEVEL: u32 = 1;
/// Payloads at least this large are compressed only if a sample of
/// [`COMPRESSION_SAMPLE`] bytes shrinks.
pub const COMPRESSION_SAMPLE_MIN: usize = 256 * 1024;
/// The size of that sample.
pub const COMPRESSION_SAMPLE: usize = 32 * 1024;
/// The default bound on a frame's payload, before and after decompression.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 1 << 30;

/// How a channel frames and bounds its packets.
///
/// The defaults are rpyc's; change them to bound frames lower than 1 GiB or to
/// stop compressing what we send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelConfig {
    /// Compress payloads above [`ChannelConfig::compression_threshold`].
    pub compress: bool,
    /// The size above which payloads are compressed (rpyc: 3000).
    pub compression_threshold: usize,
    /// The zlib level (rpyc: 1).
    pub compression_level: u32,
    /// The largest payload accepted, on the wire and once decompressed.
    pub max_frame_size: usize,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        ChannelConfig {
            compress: true,
            compression_threshold: COMPRESSION_THRESHOLD,
            compression_level: COMPRESSION_LEVEL,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
        }
    }
}

/// What can go wrong reading or writing frames.
#[derive(Debug)]
#[non_exhaustive]
pub enum ChannelError {
    /// The peer closed the stream cleanly, between frames.
    Closed,
    /// The stream ended and said why in its own words (a Python stream's
    /// `EOFError`, such as an SSL alert); the text is what a user sees.
    Ended(String),
    /// The stream ended in the middle of a frame.
    Truncated {
        /// Bytes the frame needed in all (header, payload, `\n`).
        expected: usize,
        /// Bytes of it that arrived.
        received: usize,
    },
    /// No frame arrived before the deadline (nothing is lost: a partial
    /// frame stays buffered).
    Timeout,
    /// A header claims a payload larger than the configured maximum.
    FrameTooLarge {
        /// What the header claims.
        claimed: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The compression flag is neither 0 nor 1.
    BadCompressionFlag(u8),
    /// The byte after the payload is not `\n`.
    BadTerminator(u8),
    /// A compressed payload is not a valid zlib stream.
    Decompress(String),
    /// A compressed payload inflates past the configured maximum.
    DecompressedTooLarge {
        /// The configured maximum.
        max: usize,
    },
    /// Receiving this frame would take this connection past its share of
    /// the server's [`budget::MemoryBudget`].
    MemoryBudget {
        /// The bytes the frame needed at that point.
        wanted: usize,
        /// What this connection could hold.
        allowed: usize,
    },
    /// An I/O error from the stream.
    Io(io::Error),
    /// The wait was abandoned by the stream's interrupt hook (a Python
    /// signal handler raised); the connection is intact.
    Interrupted(Interruption),
}

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelError::Closed => write!(f, "connection closed by peer"),
            ChannelError::Ended(why) => write!(f, "{why}"),
            ChannelError::Truncated { expected, received } => {
                write!(f, "connection closed mid-frame ({received} of {expected} bytes received)")
            }
            ChannelError::Timeout => write!(f, "timed out waiting for a frame"),
            ChannelError::FrameTooLarge { claimed, max } => {
                write!(f, "frame of {claimed} bytes exceeds the {max}-byte limit")
            }
            ChannelError::BadCompressionFlag(b) => {
                write!(f, "invalid frame header: compression flag {b} is not 0 or 1")
            }
            ChannelError::BadTerminator(b) => {
                write!(f, "invalid frame: payload followed by 0x{b:02x}, not a newline")
            }
            ChannelError::Decompress(e) => write!(f, "invalid compressed frame: {e}"),
            ChannelError::DecompressedTooLarge { max } => {
                write!(f, "compressed frame inflates past the {max}-byte limit")
            }
            ChannelError::MemoryBudget { wanted, allowed } => write!(
                f,
                "frame needs {wanted} bytes, past this connection's {allowed}-byte share of the memory budget"
            ),
            ChannelError::Io(e) => write!(f, "I/O error: {e}"),
            ChannelError::Interrupted(why) => write!(f, "{why}"),
        }
    }
}

impl std::error::Error for ChannelError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ChannelError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for ChannelError {
    fn from(e: io::Error) -> Self {
        match Interruption::from_io_error(&e) {
            Some(why) => ChannelError::Interrupted(why),
            None => ChannelError::Io(e),
        }
    }
}

/// Where the engine gets whole payloads from. [`FrameReader`] is the native
/// one; the Python bindings also adapt a Python `rpyc` channel (for streams
/// whose bytes we cannot own, such as SSL sockets).
pub trait FrameSource: Send {
    /// Receives the next payload, waiting at most `timeout`.
    fn recv(&mut self, timeout: Option<Duration>) -> Result<Vec<u8>, ChannelError>;
    /// True when a frame (or part of one) is already buffered.
    fn has_buffered(&self) -> bool;
}

/// Where the engine sends frames.
pub trait FrameSink: Send {
    /// Sends a frame prepared with [`begin_frame`].
    fn send_prepared(&mut self, buf: &mut Vec<u8>) -> Result<(), ChannelError>;

    /// Sends several prepared frames, in order. The native writer puts
    /// small ones in a single write: a request with the DELs queued behind
    /// it costs one syscall and one wake-up of the peer, not one each.
    fn send_prepared_all(&mut self, bufs: &mut [Vec<u8>]) -> Result<(), ChannelError> {
        bufs.iter_mut().try_for_each(|b| self.send_prepared(b))
    }
}

impl FrameSource for FrameReader {
    fn recv(&mut self, timeout: Option<Duration>) -> Result<Vec<u8>, ChannelError> {
        FrameReader::recv(self, timeout)
    }
    fn has_buffered(&self) -> bool {
        FrameReader::has_buffered(self)
    }
}

impl FrameSink for FrameWriter {
    fn send_prepared(&mut self, buf: &mut Vec<u8>) -> Result<(), ChannelError> {
        FrameWriter::send_prepared(self, buf)
    }
    fn send_prepared_all(&mut self, bufs: &mut [Vec<u8>]) -> Result<(), ChannelError> {
        FrameWriter::send_prepared_all(self, bufs)
    }
}

/// Reads frames from a [`ReadHalf`], buffering across calls.
///
/// Use it (and [`FrameWriter`]) instead of [`Channel`] when one thread reads
/// while another writes.
pub struct FrameReader {
    inner: Box<dyn ReadHalf>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    max: usize,
    /// Made on the first compressed frame: most connections never see one,
    /// and zlib's state is several times an idle connection's other memory.
    inflate: Option<Box<Decompress>>,
    /// The part of `buf` (and of inflate output) past the free allowance.
    lease: budget::Lease,
}

/// The first read of a frame, on the stack, and the buffer a frame starts
/// with once bytes arrive: one page. A bigger frame grows it by doubling,
/// as its bytes arrive; between frames there is no buffer at all.
const READ_CHUNK: usize = 4 * 1024;

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
        FrameReader {
            inner,
            // No allocation until the first byte arrives.
            buf: Vec::new(),
            start: 0,
            end: 0,
            max: config.max_frame_size,
            inflate: None,
            lease: budget::Lease::new(budget),
        }
    }

    /// Resizes the buffer to `len` bytes, within this reader's share of
    /// the budget.
    fn resize_buf(&mut self, len: usize) -> Result<(), ChannelError> {
        if len > self.buf.len() {
            self.lease
                .hold(len)
                .map_err(|e| ChannelError::MemoryBudget { wanted: e.wanted, allowed: e.allowed })?;
        }
        self.buf.resize(len, 0);
        Ok(())
    }

    /// True when a whole or partial frame is already buffered, so a
    /// [`FrameReader::recv`] will not wait on the stream for its start.
    pub fn has_buffered(&self) -> bool {
        self.end > self.start
    }

    /// Waits up to `timeout` for data to start arriving; true if it did.
    pub fn poll(&mut self, timeout: Option<Duration>) -> Result<bool, ChannelError> {
        if self.has_buffered() {
            return Ok(true);
        }
        match self.fill(timeout) {
            Ok(0) => Err(ChannelError::Closed),
            Ok(_) => Ok(true),
            Err(ChannelError::Io(e)) if e.kind() == io::ErrorKind::TimedOut => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Reads into the free tail of the buffer, growing it when full.
    fn fill(&mut self, timeout: Option<Duration>) -> Result<usize, ChannelError> {
        if self.buf.is_empty() {
            // Between frames the reader holds no buffer, so an idle
            // connection costs no heap for it: the wait for the next frame
            // reads onto the stack, and only bytes that arrived are moved
            // to a buffer (a page, grown later as the frame needs).
            let mut first = [0u8; READ_CHUNK];
            let n = self.inner.read_timeout(&mut first, timeout)?;
            if n > 0 {
                self.resize_buf(READ_CHUNK)?;
                self.buf[..n].copy_from_slice(&first[..n]);
                self.start = 0;
                self.end = n;
            }
            return Ok(n);
        }
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                let grow = self.buf.len().max(READ_CHUNK);
                self.resize_buf(self.buf.len() + grow)?;
            }
        }
        let n = self.inner.read_timeout(&mut self.buf[self.end..], timeout)?;
        self.end += n;
        Ok(n)
    }

    /// Receives the next payload (decompressed), waiting at most `timeout`
    /// (`None`: forever) for it to complete.
    pub fn recv(&mut self, timeout: Option<Duration>) -> Result<Vec<u8>, ChannelError> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut tried = false;
        loop {
            if let Some(frame) = self.take_frame()? {
                return Ok(frame);
            }
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            // A zero timeout still reads what has already arrived (a poll).
            if tried && left == Some(Duration::ZERO) {
                return Err(ChannelError::Timeout);
            }
            tried = true;
            let need = self.needed();
            if !self.buf.is_empty() && need > self.buf.len() - self.start {
                // Room for more of the frame, but only as far as the bytes
                // received justify: a bare header may claim up to
                // max_frame_size, and sizing for the claim would let 5
                // bytes make us allocate (and zero) all of it. The buffer
                // at most doubles what has arrived, so a big frame costs
                // O(log n) regrowths and a stalled one costs what it sent.
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
                let target = need.min((2 * self.end).max(READ_CHUNK));
                if target > self.buf.len() {
                    self.resize_buf(target)?;
                }
            }
            match self.fill(left) {
                Ok(0) => {
                    let received = self.end - self.start;
                    return Err(if received == 0 {
                        ChannelError::Closed
                    } else {
                        ChannelError::Truncated { expected: need, received }
                    });
                }
                Ok(_) => {}
                Err(ChannelError::Io(e)) if e.kind() == io::ErrorKind::TimedOut => {
                    return Err(ChannelError::Timeout)
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Bytes the frame at the front of the buffer needs in all (header,
    /// payload, flusher), or just the header when that is incomplete.
    fn needed(&self) -> usize {
        let have = &self.buf[self.start..self.end];
        if have.len() < HEADER_LEN {
            return HEADER_LEN;
        }
        HEADER_LEN + BigEndian::read_u32(have) as usize + 1
    }

    fn take_frame(&mut self) -> Result<Option<Vec<u8>>, ChannelError> {
        let have = &self.buf[self.start..self.end];
        let Some(span) = split_frame(have, self.max)? else {
            return Ok(None);
        };
        let body = &have[HEADER_LEN..span.total - 1];
        let payload = if span.compressed {
            let z = self.inflate.get_or_insert_with(|| Box::new(Decompress::new(true)));
            // Inflate output is leased beside the buffer, and returned once
            // the payload is handed on (the dispatcher owns it then).
            let base = self.buf.len();
            let lease = &mut self.lease;
            let r = inflate(z, body, self.max, &mut |cap| lease.hold(base + cap));
            let _ = self.lease.hold(base);
            r?
        } else {
            body.to_vec()
        };
        self.start += span.total;
        if self.start == self.end {
            // Nothing left over: the buffer goes (see `fill`), and with it
            // whatever a large frame needed.
            self.start = 0;
            self.end = 0;
            self.buf = Vec::new();
            let _ = self.lease.hold(0);
        }
        Ok(Some(payload))
    }
}

/// Where the frame at the front of a buffer of raw stream bytes ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameSpan {
    /// Bytes of the whole frame: header, payload and the `\n`.
    pub total: usize,
    /// The payload is zlib-compressed.
    pub compressed: bool,
}

/// Checks the frame at the front of `buf` (raw stream bytes): its span when
/// it is complete, `None` when more bytes are needed, an error when the
/// bytes cannot be a frame (a length past `max`, a bad flag or terminator).
/// [`FrameReader`] reads with it; tools that relay or dissect raw bytes
/// (the proxy, `decode`) split streams with it too.
pub fn split_frame(buf: &[u8], max: usize) -> Result<Option<FrameSpan>, ChannelError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let len = BigEndian::read_u32(buf) as usize;
    let flag = buf[4];
    if len > max {
        return Err(ChannelError::FrameTooLarge { claimed: len, max });
    }
    if flag > 1 {
        return Err(ChannelError::BadCompressionFlag(flag));
    }
    let total = HEADER_LEN + len + 1;
    if buf.len() < total {
        return Ok(None);
    }
    let term = buf[total - 1];
    if term != FLUSHER {
        return Err(ChannelError::BadTerminator(term));
    }
    Ok(Some(FrameSpan { total, compressed: flag == 1 }))
}

/// The payload of a complete frame found by [`split_frame`], inflated when
/// it is compressed, bounded by `max` like [`FrameReader`]'s.
pub fn frame_payload(frame: &[u8], span: FrameSpan, max: usize) -> Result<Vec<u8>, ChannelError> {
    let body = &frame[HEADER_LEN..span.total - 1];
    if span.compressed {
        // No budget here: a tool reading a capture, not a server.
        inflate(&mut Decompress::new(true), body, max, &mut |_| Ok(()))
    } else {
        Ok(body.to_vec())
    }
}

/// Inflates `input`, at most `max` bytes of output; `lease` is asked
/// before the output buffer grows to each new capacity.
fn inflate(
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

/// Writes frames to a [`WriteHalf`].
pub struct FrameWriter {
    inner: Box<dyn WriteHalf>,
    config: ChannelConfig,
    /// Made on the first payload worth compressing (zlib's deflate state
    /// is a few hundred KiB: most connections never need it).
    deflate: Option<Box<Compress>>,
    scratch: Vec<u8>,
}

impl FrameWriter {
    /// A writer over `inner` with the given compression settings.
    pub fn new(inner: Box<dyn WriteHalf>, config: &ChannelConfig) -> Self {
        FrameWriter { inner, config: *config, deflate: None, scratch: Vec::new() }
    }

    /// Sends one payload as a frame.
    pub fn send(&mut self, payload: &[u8]) -> Result<(), ChannelError> {
        let mut buf = Vec::with_capacity(HEADER_LEN + payload.len() + 1);
        buf.extend_from_slice(&[0; HEADER_LEN]);
        buf.extend_from_slice(payload);
        self.send_prepared(&mut buf)
    }

    /// Sends a frame whose payload is already in `buf` after
    /// [`HEADER_LEN`] reserved bytes (see [`begin_frame`]). Building messages
    /// this way lets a small frame go out in one write with no copy.
    pub fn send_prepared(&mut self, buf: &mut Vec<u8>) -> Result<(), ChannelError> {
        let payload_len = buf.len().saturating_sub(HEADER_LEN);
        if self.config.compress
            && payload_len > self.config.compression_threshold
            && self.worth_compressing(&buf[HEADER_LEN..])?
        {
            let z = deflater(&mut self.deflate, self.config.compression_level);
            z.reset();
            self.scratch.clear();
            self.scratch.extend_from_slice(&[0; HEADER_LEN]);
            self.scratch.reserve(payload_len / 2 + 64);
            let input = &buf[HEADER_LEN..];
            loop {
                let consumed = z.total_in() as usize;
                let status = z
                    .compress_vec(&input[consumed..], &mut self.scratch, FlushCompress::Finish)
                    .map_err(|e| ChannelError::Io(io::Error::other(e)))?;
                if status == Status::StreamEnd {
                    break;
                }
                let cap = self.scratch.capacity();
                self.scratch.reserve(cap.max(4096));
            }
            let clen = self.scratch.len() - HEADER_LEN;
            // Incompressible data (already compressed, random) grows a little
            // under zlib; rpyc accepts either form, so send the smaller.
            if clen < payload_len {
                write_header(&mut self.scratch, clen, 1)?;
                self.scratch.push(FLUSHER);
                let r = self.inner.write_all(&self.scratch);
                if self.scratch.capacity() > SCRATCH_KEEP_MAX {
                    self.scratch = Vec::new();
                }
                return r.map_err(ChannelError::Io);
            }
        }
        write_header(buf, payload_len, 0)?;
        buf.push(FLUSHER);
        self.inner.write_all(buf).map_err(ChannelError::Io)
    }

    /// Sends several prepared frames in order, the uncompressed ones
    /// handed to the stream together (see [`WriteHalf::write_frames`]).
    pub fn send_prepared_all(&mut self, bufs: &mut [Vec<u8>]) -> Result<(), ChannelError> {
        let mut start = 0;
        for i in 0..bufs.len() {
            let payload_len = bufs[i].len().saturating_sub(HEADER_LEN);
            if self.config.compress && payload_len > self.config.compression_threshold {
                // Goes through compression on its own, after what came
                // before it.
                self.write_frames(&mut bufs[start..i])?;
                self.send_prepared(&mut bufs[i])?;
                start = i + 1;
            }
        }
        self.write_frames(&mut bufs[start..])
    }

    /// Finishes uncompressed frames and hands them to the stream at once.
    fn write_frames(&mut self, bufs: &mut [Vec<u8>]) -> Result<(), ChannelError> {
        for buf in bufs.iter_mut() {
            let payload_len = buf.len().saturating_sub(HEADER_LEN);
            write_header(buf, payload_len, 0)?;
            buf.push(FLUSHER);
        }
        let frames: Vec<&[u8]> = bufs.iter().map(Vec::as_slice).collect();
        match frames.as_slice() {
            [] => Ok(()),
            _ => self.inner.write_frames(&frames).map_err(ChannelError::Io),
        }
    }

    /// For a large payload, compresses a sample first: random or already
    /// compressed data (a JPEG, a zip) barely shrinks, and compressing all
    /// of it would cost far more than sending it raw (zlib is slowest on
    /// exactly such data).
    fn worth_compressing(&mut self, payload: &[u8]) -> Result<bool, ChannelError> {
        if payload.len() < COMPRESSION_SAMPLE_MIN {
            return Ok(true);
        }
        let sample = &payload[..COMPRESSION_SAMPLE];
        let z = deflater(&mut self.deflate, self.config.compression_level);
        z.reset();
        self.scratch.clear();
        self.scratch.reserve(COMPRESSION_SAMPLE + 1024);
        z.compress_vec(sample, &mut self.scratch, FlushCompress::Finish)
            .map_err(|e| ChannelError::Io(io::Error::other(e)))?;
        // Keep compressing unless the sample saved less than a tenth.
        Ok(self.scratch.len() * 10 < sample.len() * 9)
    }

    /// Shuts the stream down in both directions.
    pub fn shutdown(&mut self) -> Result<(), ChannelError> {
        self.inner.shutdown().map_err(ChannelError::Io)
    }
}

/// A compressed frame's scratch buffer past this size is freed after use.
const SCRATCH_KEEP_MAX: usize = 256 * 1024;

/// The writer's deflate state, made on first use.
fn deflater(slot: &mut Option<Box<Compress>>, level: u32) -> &mut Compress {
    slot.get_or_insert_with(|| Box::new(Compress::new(Compression::new(level), true)))
}

fn write_header(buf: &mut [u8], len: usize, flag: u8) -> Result<(), ChannelError> {
    let n = u32::try_from(len)
        .map_err(|_| ChannelError::FrameTooLarge { claimed: len, max: u32::MAX as usize })?;
    BigEndian::write_u32(&mut buf[..4], n);
    buf[4] = flag;
    Ok(())
}

/// Clears `buf` and reserves the header bytes, ready for a payload to be
/// appended and the frame sent with [`FrameWriter::send_prepared`].
pub fn begin_frame(buf: &mut Vec<u8>) {
    buf.clear();
    buf.extend_from_slice(&[0; HEADER_LEN]);
}

/// Both directions of a framed stream.
///
/// Use it to exchange payloads in RPyC's framing without the protocol engine;
/// see the module's example.
pub struct Channel {
    /// The receiving side.
    pub reader: FrameReader,
    /// The sending side.
    pub writer: FrameWriter,
    /// Shuts the stream down from any thread.
    pub closer: Closer,
    /// Who is on the other end.
    pub peer: String,
    /// The descriptor to poll for incoming data, if any.
    pub fd: Option<std::os::fd::RawFd>,
}

impl Channel {
    /// Frames `stream` with `config`.
    pub fn new(stream: Stream, config: &ChannelConfig) -> Self {
        Channel {
            reader: FrameReader::new(stream.reader, config),
            writer: FrameWriter::new(stream.writer, config),
            closer: stream.closer,
            peer: stream.peer,
            fd: stream.fd,
        }
    }

    /// Sends one payload.
    pub fn send(&mut self, payload: &[u8]) -> Result<(), ChannelError> {
        self.writer.send(payload)
    }

    /// Receives one payload, waiting at most `timeout`.
    pub fn recv(&mut self, timeout: Option<Duration>) -> Result<Vec<u8>, ChannelError> {
        self.reader.recv(timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Channel, Channel) {
        let (a, b) = Stream::pair();
        (Channel::new(a, &ChannelConfig::default()), Channel::new(b, &ChannelConfig::default()))
    }

    /// A header claiming 1 GiB makes the reader hold what arrived, not
    /// what was claimed (issue 14: 4 MiB per stalled connection before).
    #[test]
    fn a_claimed_length_allocates_nothing() {
        let (a, mut raw) = Stream::pair();
        let mut r = FrameReader::new(a.reader, &ChannelConfig::default());
        raw.writer.write_all(&[0x3f, 0xff, 0xff, 0xff, 0, b'x']).unwrap();
        assert!(matches!(r.recv(Some(Duration::from_millis(50))), Err(ChannelError::Timeout)));
        assert!(r.buf.len() <= READ_CHUNK, "{} bytes held for 6 received", r.buf.len());
        // 100 KiB of payload: the buffer stays within twice what arrived.
        raw.writer.write_all(&vec![b'y'; 100 * 1024]).unwrap();
        assert!(matches!(r.recv(Some(Duration::from_millis(200))), Err(ChannelError::Timeout)));
        assert!(r.buf.len() <= 2 * (100 * 1024 + 6) + READ_CHUNK, "{}", r.buf.len());
    }

    /// Past its share of the budget, a frame (raw or inflated) is an error
    /// for that reader, and the lease is returned when the reader goes.
    #[test]
    fn the_budget_bounds_frames_and_inflation() {
        let b: &'static budget::MemoryBudget = Box::leak(Box::new(budget::MemoryBudget::new(1 << 20)));
        let (a, raw) = Stream::pair();
        let mut r = FrameReader::with_budget(a.reader, &ChannelConfig::default(), b);
        let big = vec![b'z'; 2 << 20];
        let mut w = FrameWriter::new(raw.writer, &ChannelConfig { compress: false, ..Default::default() });
        let sent = std::thread::spawn(move || {
            let _ = w.send(&big);
        });
        let e = r.recv(Some(Duration::from_secs(5))).unwrap_err();
        assert!(matches!(e, ChannelError::MemoryBudget { .. }), "{e:?}");
        drop(r);
        assert_eq!(b.in_use(), 0);
        (raw.closer)();
        let _ = sent.join();

        // A zlib bomb: 4 MiB of zeros in a few KiB, within max_frame_size.
        let (a, raw) = Stream::pair();
        let mut r = FrameReader::with_budget(a.reader, &ChannelConfig::default(), b);
        let mut w = FrameWriter::new(raw.writer, &ChannelConfig::default());
        w.send(&vec![0u8; 4 << 20]).unwrap();
        let e = r.recv(Some(Duration::from_secs(5))).unwrap_err();
        assert!(matches!(e, ChannelError::MemoryBudget { .. }), "{e:?}");
        drop(r);
        assert_eq!(b.in_use(), 0);
    }

    #[test]
    fn small_frame_bytes_match_rpyc() {
        let (a, mut b) = Stream::pair();
        let mut ch = Channel::new(a, &ChannelConfig::default());
        ch.send(b"abc").unwrap();
        let mut buf = [0u8; 16];
        let n = b.reader.read_timeout(&mut buf, Some(Duration::from_secs(1))).unwrap();
        assert_eq!(&buf[..n], b"\x00\x00\x00\x03\x00abc\n");
    }

    #[test]
    fn round_trip_small_compressed_and_huge() {
        let (mut a, mut b) = pair();
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        for payload in [b"x".to_vec(), vec![b'a'; 3001], big] {
            a.send(&payload).unwrap();
            assert_eq!(b.recv(Some(Duration::from_secs(5))).unwrap(), payload);
        }
    }

    #[test]
    fn incompressible_payloads_go_raw() {
        let (a, mut raw) = Stream::pair();
        let mut ch = Channel::new(a, &ChannelConfig::default());
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let noise: Vec<u8> = (0..5000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        ch.send(&noise).unwrap();
        let mut head = [0u8; 5];
        let mut got = 0;
        while got < 5 {
            got += raw.reader.read_timeout(&mut head[got..], Some(Duration::from_secs(1))).unwrap();
        }
        assert_eq!(head, [0, 0, 0x13, 0x88, 0]);
    }

    #[test]
    fn clean_close_and_mid_frame_close_differ() {
        let (mut a, mut b) = pair();
        a.writer.shutdown().unwrap();
        assert!(matches!(b.recv(Some(Duration::from_secs(1))), Err(ChannelError::Closed)));

        let (mut raw, other) = Stream::pair();
        let mut b = Channel::new(other, &ChannelConfig::default());
        raw.writer.write_all(b"\x00\x00\x00\x10\x00abc").unwrap();
        raw.writer.shutdown().unwrap();
        match b.recv(Some(Duration::from_secs(1))) {
            Err(ChannelError::Truncated { expected: 22, received: 8 }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn timeout_keeps_partial_frame() {
        let (mut raw, other) = Stream::pair();
        let mut b = Channel::new(other, &ChannelConfig::default());
        raw.writer.write_all(b"\x00\x00\x00\x03\x00a").unwrap();
        assert!(matches!(b.recv(Some(Duration::from_millis(30))), Err(ChannelError::Timeout)));
        raw.writer.write_all(b"bc\n").unwrap();
        assert_eq!(b.recv(Some(Duration::from_secs(1))).unwrap(), b"abc");
    }
}
