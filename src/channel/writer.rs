//! The frame writer: payloads in, `!LB` frames out to a [`WriteHalf`].
//!
//! A payload is sent as built: the protocol layer reserves the header's
//! bytes in front of it ([`begin_frame`]), so a small frame goes out in one
//! write with no copy, and frames queued together (a request with the DELs
//! behind it) are handed to the stream at once. Payloads past the
//! threshold are compressed with zlib, unless a sample of a large one shows
//! it would barely shrink; the deflate state is made only for connections
//! that compress.

use std::io;

use byteorder::{BigEndian, ByteOrder};
use flate2::{Compress, Compression, FlushCompress, Status};

use super::{ChannelConfig, ChannelError, COMPRESSION_SAMPLE, COMPRESSION_SAMPLE_MIN, FLUSHER, HEADER_LEN};
use crate::stream::WriteHalf;

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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::channel::Channel;
    use crate::stream::Stream;

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
}
