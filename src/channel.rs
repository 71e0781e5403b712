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
//! Memory follows the bytes that arrived, never what a header claims: a
//! frame's buffer at most doubles what has arrived, and past a small
//! allowance it is leased from the process-wide [`budget::MemoryBudget`], as
//! is inflate output. Between frames the reader holds no buffer.
//!
//! The pieces: [`FrameReader`] (`reader.rs`: bytes to payloads, the
//! hostile-peer bounds; `spin.rs`: polling briefly for a reply, or a
//! serving loop's next request, before sleeping on it), [`FrameWriter`] (`writer.rs`: payloads to frames,
//! compression), the [`budget`], and here the frame format itself
//! ([`split_frame`], for tools that dissect raw bytes), the errors and the
//! [`Channel`] that pairs a reader with a writer. The channel hands the
//! [`protocol`](crate::protocol) layer whole payloads.
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
mod reader;
mod spin;
mod writer;

use std::fmt;
use std::io;
use std::time::Duration;

use byteorder::{BigEndian, ByteOrder};
use flate2::Decompress;

use crate::stream::{Closer, Interruption, Stream};

pub use reader::FrameReader;
pub use writer::{begin_frame, FrameWriter};

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
/// How long a waiting thread polls for a reply before it sleeps, by
/// default: a few loopback round trips.
pub const DEFAULT_REPLY_SPIN: Duration = Duration::from_micros(50);

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
    /// How long a thread waiting for a reply polls for it before it goes
    /// to sleep on it ([`DEFAULT_REPLY_SPIN`]; zero: sleep at once), and a
    /// serving loop that has just served a request polls for the next. See
    /// the `spin` module: waking a sleeping thread can cost more than a
    /// loopback round trip. A wait for a reply from a peer on this host
    /// spends at most this much CPU polling, every time; a serving loop,
    /// and a wait for a peer elsewhere, stop polling by themselves for a
    /// while where frames take longer than this to come.
    pub reply_spin: Duration,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        ChannelConfig {
            compress: true,
            compression_threshold: COMPRESSION_THRESHOLD,
            compression_level: COMPRESSION_LEVEL,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            reply_spin: DEFAULT_REPLY_SPIN,
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
    /// The next frame's payload when it is buffered whole and uncompressed,
    /// without taking it (see [`FrameReader::buffered_payload`]); a source
    /// that cannot tell says `None`.
    fn buffered_payload(&self) -> Option<&[u8]> {
        None
    }
    /// The next [`FrameSource::recv`] waits for a reply: the native
    /// reader polls for it a short while before it sleeps
    /// ([`ChannelConfig::reply_spin`]); others do nothing.
    fn expect_reply(&mut self) {}
    /// The next [`FrameSource::recv`] is a serving loop's wait for the
    /// peer's next request, right after it served one: the native reader
    /// polls for it the same way; others do nothing.
    fn expect_request(&mut self) {}
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
    fn buffered_payload(&self) -> Option<&[u8]> {
        FrameReader::buffered_payload(self)
    }
    fn expect_reply(&mut self) {
        FrameReader::expect_reply(self)
    }
    fn expect_request(&mut self) {
        FrameReader::expect_request(self)
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
        reader::inflate(&mut Decompress::new(true), body, max, &mut |_| Ok(()))
    } else {
        Ok(body.to_vec())
    }
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

    #[test]
    fn round_trip_small_compressed_and_huge() {
        let (mut a, mut b) = pair();
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        for payload in [b"x".to_vec(), vec![b'a'; 3001], big] {
            a.send(&payload).unwrap();
            assert_eq!(b.recv(Some(Duration::from_secs(5))).unwrap(), payload);
        }
    }
}
