//! Channel frames a hostile peer could send, each case over both an
//! in-memory [`Stream::pair`] and a real TCP connection ([`Rig`]): lying
//! and oversized lengths, bad compression flags and terminators, zlib
//! garbage and bombs, EOF mid-frame and between frames, partial frames
//! across timeouts, dribbled and chunked writes.

use std::io::Write;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use flate2::write::ZlibEncoder;
use flate2::Compression;
use rpyc_rs::channel::{Channel, ChannelConfig, ChannelError, DEFAULT_MAX_FRAME_SIZE};
use rpyc_rs::stream::Stream;

use super::cat;

#[derive(Debug, Clone, Copy)]
enum Transport {
    Memory,
    Tcp,
}

/// A channel under test and the raw stream that feeds it bytes.
struct Rig {
    raw: Stream,
    ch: Channel,
}

impl Rig {
    fn new(t: Transport, config: ChannelConfig) -> Rig {
        let (raw, other) = match t {
            Transport::Memory => Stream::pair(),
            Transport::Tcp => {
                let l = TcpListener::bind("127.0.0.1:0").unwrap();
                let ours =
                    Stream::tcp_connect(l.local_addr().unwrap(), Some(Duration::from_secs(5))).unwrap();
                let (theirs, _) = l.accept().unwrap();
                (Stream::from_tcp(theirs).unwrap(), ours)
            }
        };
        Rig { raw, ch: Channel::new(other, &config) }
    }

    fn write(&mut self, bytes: &[u8]) {
        self.raw.writer.write_all(bytes).unwrap();
    }

    fn close(&mut self) {
        self.raw.writer.shutdown().unwrap();
    }

    fn recv(&mut self) -> Result<Vec<u8>, ChannelError> {
        self.ch.recv(Some(Duration::from_secs(10)))
    }
}

const TRANSPORTS: [Transport; 2] = [Transport::Memory, Transport::Tcp];

/// A receive result for a failure message: payloads by size only, since a
/// megabyte of `[1, 1, 1, ...]` helps nobody.
fn show(r: &Result<Vec<u8>, ChannelError>) -> String {
    match r {
        Ok(p) => format!("Ok(<{} bytes>)", p.len()),
        Err(e) => format!("Err({e:?})"),
    }
}

fn small_max(max: usize) -> ChannelConfig {
    ChannelConfig { max_frame_size: max, ..ChannelConfig::default() }
}

fn frame(len: u32, flag: u8, payload: &[u8], end: u8) -> Vec<u8> {
    cat(&[&len.to_be_bytes(), &[flag], payload, &[end]])
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = ZlibEncoder::new(Vec::new(), Compression::new(1));
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn compressed_frame(data: &[u8]) -> Vec<u8> {
    let z = zlib(data);
    frame(z.len() as u32, 1, &z, b'\n')
}

/// A frame compressed at zlib's best level, which squeezes runs of zeros
/// ~1000:1 (rpyc's level 1 manages ~100:1): any valid zlib stream is
/// accepted, whatever level made it.
fn bomb_frame(inflated: usize) -> Vec<u8> {
    let mut e = ZlibEncoder::new(Vec::new(), Compression::best());
    e.write_all(&vec![0u8; inflated]).unwrap();
    let z = e.finish().unwrap();
    frame(z.len() as u32, 1, &z, b'\n')
}

#[test]
fn hostile_length_is_refused_at_once() {
    for t in TRANSPORTS {
        // 0xFFFFFFFF against the default 1 GiB limit, with no payload sent:
        // the error must come from the header alone, not after a wait.
        let mut rig = Rig::new(t, ChannelConfig::default());
        rig.write(&[0xff, 0xff, 0xff, 0xff, 0]);
        let start = Instant::now();
        match rig.recv() {
            Err(ChannelError::FrameTooLarge { claimed: 0xffff_ffff, max: DEFAULT_MAX_FRAME_SIZE }) => {}
            other => panic!("{t:?}: {}", show(&other)),
        }
        assert!(start.elapsed() < Duration::from_secs(2), "{t:?}: waited for a payload it must refuse");
    }
}

#[test]
fn configured_max_frame_size_is_exact() {
    for t in TRANSPORTS {
        let mut rig = Rig::new(t, small_max(1024));
        let payload = vec![b'p'; 1024];
        rig.write(&frame(1024, 0, &payload, b'\n'));
        assert_eq!(rig.recv().unwrap(), payload, "{t:?}: a frame of exactly max_frame_size");
        rig.write(&frame(1025, 0, &[], b'\n'));
        match rig.recv() {
            Err(ChannelError::FrameTooLarge { claimed: 1025, max: 1024 }) => {}
            other => panic!("{t:?}: {}", show(&other)),
        }
        // The limit applies to the compressed length on the wire as well.
        let mut rig = Rig::new(t, small_max(1024));
        rig.write(&frame(5000, 1, &[], b'\n'));
        match rig.recv() {
            Err(ChannelError::FrameTooLarge { claimed: 5000, max: 1024 }) => {}
            other => panic!("{t:?}: {}", show(&other)),
        }
    }
}

#[test]
fn bad_compression_flag() {
    for t in TRANSPORTS {
        for flag in [2u8, 0x0a, 0x80, 0xff] {
            let mut rig = Rig::new(t, ChannelConfig::default());
            // Header only: the flag is judged before any payload arrives.
            rig.write(&[0, 0, 0, 3, flag]);
            match rig.recv() {
                Err(ChannelError::BadCompressionFlag(f)) if f == flag => {}
                other => panic!("{t:?} flag {flag}: {}", show(&other)),
            }
        }
    }
}

#[test]
fn bad_terminator() {
    for t in TRANSPORTS {
        for end in [b'X', b'\r', 0u8, 0xff] {
            let mut rig = Rig::new(t, ChannelConfig::default());
            rig.write(&frame(3, 0, b"abc", end));
            match rig.recv() {
                Err(ChannelError::BadTerminator(b)) if b == end => {}
                other => panic!("{t:?} terminator 0x{end:02x}: {}", show(&other)),
            }
        }
        // A length one short leaves the last payload byte where the `\n`
        // should be.
        let mut rig = Rig::new(t, ChannelConfig::default());
        rig.write(&cat(&[&2u32.to_be_bytes(), &[0], b"abc\n"]));
        match rig.recv() {
            Err(ChannelError::BadTerminator(b'c')) => {}
            other => panic!("{t:?}: {}", show(&other)),
        }
    }
}

#[test]
fn zlib_garbage_is_a_decompress_error() {
    let text: Vec<u8> = b"some compressible text, ".repeat(400);
    let good = zlib(&text);
    let mut bad_checksum = good.clone();
    *bad_checksum.last_mut().unwrap() ^= 0xff;
    let mut bad_header = good.clone();
    bad_header[0] = 0x00;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("not zlib at all", b"this is not a zlib stream".to_vec()),
        ("an empty payload", vec![]),
        ("a zlib stream cut in half", good[..good.len() / 2].to_vec()),
        ("a zlib stream without its checksum", good[..good.len() - 4].to_vec()),
        ("a wrong adler32 checksum", bad_checksum),
        ("a wrong zlib header", bad_header),
    ];
    for t in TRANSPORTS {
        for (what, z) in &cases {
            let mut rig = Rig::new(t, ChannelConfig::default());
            rig.write(&frame(z.len() as u32, 1, z, b'\n'));
            match rig.recv() {
                Err(ChannelError::Decompress(msg)) => assert!(!msg.is_empty()),
                other => panic!("{t:?}, {what}: {}", show(&other)),
            }
        }
        // The same stream intact goes through.
        let mut rig = Rig::new(t, ChannelConfig::default());
        rig.write(&compressed_frame(&text));
        assert_eq!(rig.recv().unwrap(), text);
    }
}

#[test]
fn zlib_bomb_stops_at_max_frame_size() {
    let max = 64 * 1024;
    // 4 MiB of zeros in a ~4 KiB frame: it passes the header check and
    // must be stopped while inflating, 64 times over the limit.
    let bomb = bomb_frame(4 << 20);
    assert!(bomb.len() < max, "the bomb must pass the length check ({} bytes)", bomb.len());
    for t in TRANSPORTS {
        let mut rig = Rig::new(t, small_max(max));
        rig.write(&bomb);
        let start = Instant::now();
        match rig.recv() {
            Err(ChannelError::DecompressedTooLarge { max: m }) => assert_eq!(m, max),
            other => panic!("{t:?}: {}", show(&other)),
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{t:?}: inflating the bomb took {:?}",
            start.elapsed()
        );

        // The bound is inclusive: exactly max inflated bytes are accepted,
        // one more is not.
        let exact: Vec<u8> = (0..max).map(|i| (i % 7) as u8).collect();
        let mut rig = Rig::new(t, small_max(max));
        rig.write(&compressed_frame(&exact));
        assert_eq!(rig.recv().unwrap(), exact, "{t:?}: exactly max_frame_size after inflating");
        let mut rig = Rig::new(t, small_max(max));
        rig.write(&compressed_frame(&vec![1u8; max + 1]));
        match rig.recv() {
            Err(ChannelError::DecompressedTooLarge { max: m }) => assert_eq!(m, max),
            other => panic!("{t:?}: one byte over: {}", show(&other)),
        }
    }
}

#[test]
fn eof_mid_frame_is_truncated() {
    for t in TRANSPORTS {
        // (what was sent, the frame's full size, bytes received)
        let cases: Vec<(&str, Vec<u8>, usize, usize)> = vec![
            ("mid-header", vec![0, 0, 0], 5, 3),
            ("after the header", frame(10, 0, &[], b'\n')[..5].to_vec(), 16, 5),
            ("mid-payload", frame(10, 0, b"0123", b'\n')[..9].to_vec(), 16, 9),
            ("before the terminator", frame(3, 0, b"abc", b'\n')[..8].to_vec(), 9, 8),
            ("mid-compressed-payload", compressed_frame(&[7u8; 5000])[..12].to_vec(), 0, 12),
        ];
        for (what, bytes, expected, received) in cases {
            let mut rig = Rig::new(t, ChannelConfig::default());
            rig.write(&bytes);
            rig.close();
            match rig.recv() {
                Err(ChannelError::Truncated { expected: e, received: r }) => {
                    assert_eq!(r, received, "{t:?} {what}");
                    if expected > 0 {
                        assert_eq!(e, expected, "{t:?} {what}");
                    }
                    assert!(e > r, "{t:?} {what}: expected {e} <= received {r}");
                }
                other => panic!("{t:?} {what}: {}", show(&other)),
            }
        }
    }
}

#[test]
fn eof_between_frames_is_closed() {
    for t in TRANSPORTS {
        let mut rig = Rig::new(t, ChannelConfig::default());
        rig.close();
        assert!(matches!(rig.recv(), Err(ChannelError::Closed)), "{t:?}: EOF before any frame");

        let mut rig = Rig::new(t, ChannelConfig::default());
        rig.write(&frame(2, 0, b"hi", b'\n'));
        rig.write(&frame(0, 0, b"", b'\n'));
        rig.close();
        assert_eq!(rig.recv().unwrap(), b"hi");
        assert_eq!(rig.recv().unwrap(), b"", "{t:?}: an empty payload is a frame, not EOF");
        assert!(matches!(rig.recv(), Err(ChannelError::Closed)), "{t:?}");
        // Asking again after the end is harmless and gives the same answer.
        assert!(matches!(rig.recv(), Err(ChannelError::Closed)), "{t:?}: second recv after EOF");
    }
}

#[test]
fn timeout_keeps_a_partial_frame_until_it_completes() {
    for t in TRANSPORTS {
        let mut rig = Rig::new(t, ChannelConfig::default());
        let short = Some(Duration::from_millis(50));
        let whole = frame(5, 0, b"abcde", b'\n');
        // Mid-header, mid-payload, and before the terminator: each times out
        // and loses nothing.
        for (from, to) in [(0, 2), (2, 7), (7, 10)] {
            rig.write(&whole[from..to]);
            match rig.ch.recv(short) {
                Err(ChannelError::Timeout) => {}
                other => panic!("{t:?} after {to} bytes: {}", show(&other)),
            }
        }
        rig.write(&whole[10..]);
        assert_eq!(rig.recv().unwrap(), b"abcde", "{t:?}");

        // Two whole frames and the start of a third in one write.
        let mut burst =
            cat(&[&frame(1, 0, b"1", b'\n'), &compressed_frame(&[2u8; 4000]), &frame(1, 0, b"3", b'\n')]);
        let last = burst.split_off(burst.len() - 6);
        rig.write(&burst);
        rig.write(&last[..1]);
        assert_eq!(rig.recv().unwrap(), b"1");
        assert_eq!(rig.recv().unwrap(), vec![2u8; 4000]);
        assert!(matches!(rig.ch.recv(short), Err(ChannelError::Timeout)), "{t:?}");
        rig.write(&last[1..]);
        assert_eq!(rig.recv().unwrap(), b"3");
        assert!(
            matches!(rig.ch.recv(Some(Duration::ZERO)), Err(ChannelError::Timeout)),
            "{t:?}: nothing left"
        );
    }
}

#[test]
fn frame_dribbled_one_byte_at_a_time() {
    for t in TRANSPORTS {
        let mut rig = Rig::new(t, ChannelConfig::default());
        let payload: Vec<u8> = (0..200u8).collect();
        let wire = frame(payload.len() as u32, 0, &payload, b'\n');
        let mut timeouts = 0;
        for (i, b) in wire.iter().enumerate() {
            rig.write(&[*b]);
            if i + 1 < wire.len() {
                match rig.ch.recv(Some(Duration::from_millis(1))) {
                    Err(ChannelError::Timeout) => timeouts += 1,
                    other => panic!("{t:?} after {} bytes: {}", i + 1, show(&other)),
                }
            }
        }
        assert_eq!(timeouts, wire.len() - 1);
        assert_eq!(rig.recv().unwrap(), payload, "{t:?}");
    }
}

#[test]
fn big_frame_in_small_writes_from_another_thread() {
    for t in TRANSPORTS {
        let Rig { mut raw, mut ch } = Rig::new(t, ChannelConfig::default());
        let payload: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let wire = frame(payload.len() as u32, 0, &payload, b'\n');
        let writer = std::thread::spawn(move || {
            for chunk in wire.chunks(999) {
                raw.writer.write_all(chunk).unwrap();
            }
            raw
        });
        assert_eq!(ch.recv(Some(Duration::from_secs(10))).unwrap(), payload, "{t:?}");
        drop(writer.join().unwrap());
    }
}
