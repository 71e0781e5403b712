//! Unit tests of the frame reader: a claimed length that allocates
//! nothing, the memory budget for frames and inflation, a clean end against
//! one mid-frame, timeouts that keep a partial frame, frames arriving
//! together and in pieces around the read sizes, and a bad terminator.

use super::*;
use crate::channel::{Channel, FrameWriter};
use crate::stream::Stream;

impl FrameReader {
    /// Heap bytes the reader holds for frames not yet handed out.
    fn held(&self) -> usize {
        self.rest.capacity() + self.partial.as_ref().map_or(0, |p| p.bytes.capacity())
    }
}

/// A header claiming 1 GiB makes the reader hold what arrived, not
/// what was claimed (issue 14: 4 MiB per stalled connection before).
#[test]
fn a_claimed_length_allocates_nothing() {
    let (a, mut raw) = Stream::pair();
    let mut r = FrameReader::new(a.reader, &ChannelConfig::default());
    raw.writer.write_all(&[0x3f, 0xff, 0xff, 0xff, 0, b'x']).unwrap();
    assert!(matches!(r.recv(Some(Duration::from_millis(50))), Err(ChannelError::Timeout)));
    assert!(r.held() <= MIN_PARTIAL, "{} bytes held for 6 received", r.held());
    // 100 KiB of payload: the buffer stays within twice what arrived.
    raw.writer.write_all(&vec![b'y'; 100 * 1024]).unwrap();
    assert!(matches!(r.recv(Some(Duration::from_millis(200))), Err(ChannelError::Timeout)));
    assert!(r.held() <= 2 * (100 * 1024 + 6) + MIN_PARTIAL, "{}", r.held());
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
fn clean_close_and_mid_frame_close_differ() {
    let (a, b) = Stream::pair();
    let (mut a, mut b) =
        (Channel::new(a, &ChannelConfig::default()), Channel::new(b, &ChannelConfig::default()));
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

/// Frames sent in one write, the last one cut short, then the rest of
/// it byte by byte: every payload comes out whole and in order, and
/// once they are out the reader holds no memory.
#[test]
fn frames_together_and_in_pieces() {
    let (a, mut raw) = Stream::pair();
    let mut r = FrameReader::new(a.reader, &ChannelConfig { compress: false, ..Default::default() });
    let (b, c, d) = (b"first".to_vec(), vec![b'm'; 3 * FIRST_READ], vec![b'z'; 2 * MIN_PARTIAL]);
    let frames = [frame(&b), frame(&c), frame(&d)].concat();
    let cut = frames.len() - 100;
    raw.writer.write_all(&frames[..cut]).unwrap();
    let t = Some(Duration::from_secs(5));
    assert_eq!(r.recv(t).unwrap(), b);
    assert_eq!(r.recv(t).unwrap(), c);
    assert!(matches!(r.recv(Some(Duration::from_millis(20))), Err(ChannelError::Timeout)));
    for byte in &frames[cut..] {
        raw.writer.write_all(&[*byte]).unwrap();
    }
    assert_eq!(r.recv(t).unwrap(), d);
    assert!(!r.has_buffered());
    assert_eq!(r.held(), 0);
    // A header arriving in two reads, its frame in a third.
    let e = frame(b"split header");
    for part in [&e[..2], &e[2..4], &e[4..]] {
        raw.writer.write_all(part).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(r.recv(t).unwrap(), b"split header");
    assert_eq!(r.held(), 0);
}

/// A poll keeps what arrived, and the next receive hands it out.
#[test]
fn poll_then_recv() {
    let (a, mut raw) = Stream::pair();
    let mut r = FrameReader::new(a.reader, &ChannelConfig::default());
    assert!(!r.poll(Some(Duration::from_millis(10))).unwrap());
    raw.writer.write_all(&[frame(b"one"), frame(b"two")].concat()).unwrap();
    assert!(r.poll(Some(Duration::from_secs(5))).unwrap());
    assert!(r.has_buffered());
    assert_eq!(r.recv(Some(Duration::ZERO)).unwrap(), b"one");
    assert_eq!(r.recv(Some(Duration::ZERO)).unwrap(), b"two");
    assert_eq!(r.held(), 0);
}

/// Frame sizes around the first read's size and the partial frame's
/// least room, compressed and not, each a payload of its own.
#[test]
fn sizes_around_the_read_boundaries() {
    for compress in [false, true] {
        let (a, b) = Stream::pair();
        let cfg = ChannelConfig { compress, compression_threshold: 100, ..Default::default() };
        let mut w = super::super::FrameWriter::new(b.writer, &cfg);
        let mut r = FrameReader::new(a.reader, &cfg);
        for len in [0, 1, FIRST_READ - 7, FIRST_READ - 6, FIRST_READ - 5, FIRST_READ, MIN_PARTIAL, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 7) as u8).collect();
            w.send(&payload).unwrap();
            assert_eq!(r.recv(Some(Duration::from_secs(5))).unwrap(), payload, "{len} bytes");
            assert_eq!(r.held(), 0);
        }
    }
}

/// A bad terminator after a frame that came in pieces is still caught.
#[test]
fn a_bad_terminator_after_a_partial_frame() {
    let (a, mut raw) = Stream::pair();
    let mut r = FrameReader::new(a.reader, &ChannelConfig::default());
    let mut f = frame(&vec![1u8; 2 * FIRST_READ]);
    *f.last_mut().unwrap() = b'X';
    raw.writer.write_all(&f[..10]).unwrap();
    assert!(matches!(r.recv(Some(Duration::from_millis(20))), Err(ChannelError::Timeout)));
    raw.writer.write_all(&f[10..]).unwrap();
    assert!(matches!(r.recv(Some(Duration::from_secs(5))), Err(ChannelError::BadTerminator(b'X'))));
}

/// An uncompressed frame as the wire carries it.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes().to_vec();
    f.push(0);
    f.extend_from_slice(payload);
    f.push(FLUSHER);
    f
}
