//! Raw stream bytes to frames, for tools that see bytes rather than
//! payloads (the proxy, `decode`): a [`FrameSplitter`] keeps one
//! direction's partial frame between reads and hands out each whole frame
//! (raw, so a relay can pass it on unchanged) or the garbage that stopped
//! it, with [`crate::channel::split_frame`] doing the framing checks.

use crate::channel::{split_frame, ChannelError, FrameSpan};

use super::{GarbageRecord, GARBAGE_EXCERPT};

/// What a stream of raw bytes yields.
#[derive(Debug)]
pub enum Piece {
    /// A complete frame: its raw bytes (header to `\n`), span, and offset
    /// in the stream.
    Frame(Vec<u8>, FrameSpan, u64),
    /// Bytes that cannot be a frame: from here on the stream is not
    /// parsed (its bytes are only counted).
    Garbage(GarbageRecord),
}

/// Splits one direction of a raw byte stream into frames, keeping a
/// partial frame between pushes. After garbage it stops parsing (there is
/// no reliable way back into step) and only counts bytes.
#[derive(Debug)]
pub struct FrameSplitter {
    buf: Vec<u8>,
    start: usize,
    offset: u64,
    max: usize,
    lost: bool,
    unparsed: u64,
}

impl FrameSplitter {
    /// A splitter refusing frames larger than `max` bytes.
    pub fn new(max: usize) -> FrameSplitter {
        FrameSplitter { buf: Vec::new(), start: 0, offset: 0, max, lost: false, unparsed: 0 }
    }

    /// Adds bytes read from the stream.
    pub fn push(&mut self, data: &[u8]) {
        if self.lost {
            self.unparsed += data.len() as u64;
        } else {
            if self.start > 0 && self.start == self.buf.len() {
                self.buf.clear();
                self.start = 0;
            }
            self.buf.extend_from_slice(data);
        }
    }

    /// The next complete frame or garbage, `None` when more bytes are
    /// needed (or the stream is lost).
    pub fn next_piece(&mut self) -> Option<Piece> {
        if self.lost {
            return None;
        }
        let have = &self.buf[self.start..];
        match split_frame(have, self.max) {
            Ok(None) => {
                if self.start > 0 {
                    self.buf.drain(..self.start);
                    self.start = 0;
                }
                None
            }
            Ok(Some(span)) => {
                let raw = have[..span.total].to_vec();
                let offset = self.offset;
                self.start += span.total;
                self.offset += span.total as u64;
                Some(Piece::Frame(raw, span, offset))
            }
            Err(e) => {
                let g = GarbageRecord {
                    offset: self.offset,
                    excerpt: have[..have.len().min(GARBAGE_EXCERPT)].to_vec(),
                    len: have.len(),
                    reason: format!("not an rpyc frame: {e}"),
                };
                self.lost = true;
                self.unparsed += have.len() as u64;
                Some(Piece::Garbage(g))
            }
        }
    }

    /// Bytes held that are not yet a whole frame (all that is buffered, once
    /// the stream is lost): what a relay must still forward when it stops
    /// working frame by frame.
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Drops the buffered bytes and stops parsing: the relay forwards raw
    /// bytes from here on and the trace only counts them.
    pub fn give_up(&mut self) {
        self.unparsed += (self.buf.len() - self.start) as u64;
        self.buf = Vec::new();
        self.start = 0;
        self.lost = true;
    }

    /// At the end of the stream: garbage if it stopped mid-frame.
    pub fn finish(&mut self) -> Option<GarbageRecord> {
        let have = &self.buf[self.start..];
        if self.lost || have.is_empty() {
            return None;
        }
        let need = if have.len() >= 5 {
            5 + u32::from_be_bytes([have[0], have[1], have[2], have[3]]) as usize + 1
        } else {
            5
        };
        let g = GarbageRecord {
            offset: self.offset,
            excerpt: have[..have.len().min(GARBAGE_EXCERPT)].to_vec(),
            len: have.len(),
            reason: format!("{}", ChannelError::Truncated { expected: need, received: have.len() }),
        };
        self.unparsed += have.len() as u64;
        self.lost = true;
        Some(g)
    }

    /// Bytes seen but never parsed (after garbage, or cut off at the end).
    pub fn unparsed(&self) -> u64 {
        self.unparsed
    }

    /// The largest frame accepted.
    pub fn max(&self) -> usize {
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitter_keeps_partial_frames_and_stops_at_garbage() {
        let mut s = FrameSplitter::new(1 << 20);
        s.push(b"\x00\x00\x00\x03\x00ab");
        assert!(s.next_piece().is_none());
        s.push(b"c\n\x00\x00");
        assert!(
            matches!(s.next_piece(), Some(Piece::Frame(raw, _, 0)) if raw == b"\x00\x00\x00\x03\x00abc\n")
        );
        assert!(s.next_piece().is_none());
        assert_eq!(s.buffered(), b"\x00\x00");
        s.push(b"\x00\x01\x07x\n");
        match s.next_piece() {
            Some(Piece::Garbage(g)) => {
                assert_eq!(g.offset, 9);
                assert!(g.reason.contains("compression flag 7"), "{}", g.reason);
            }
            other => panic!("{other:?}"),
        }
        s.push(b"more");
        assert!(s.next_piece().is_none());
        assert_eq!(s.unparsed(), 11);

        let mut s = FrameSplitter::new(1 << 20);
        s.push(b"\x00\x00\x00\x09\x00abc");
        assert!(s.next_piece().is_none());
        let g = s.finish().expect("a truncated frame is garbage");
        assert!(g.reason.contains("8 of 15"), "{}", g.reason);
    }
}
