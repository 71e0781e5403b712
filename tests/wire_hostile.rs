//! Hostile input at the wire layers: brine values and channel frames that a
//! broken or malicious peer could send.
//!
//! Every case asserts the *specific* error (variant and fields), not just
//! "some error": a caller (the protocol engine, a log reader) relies on the
//! variant to tell a truncated message from a lying length or a bad tag.
//! The brine cases are a table; the frame cases run over both an in-memory
//! [`Stream::pair`] and a real TCP connection on 127.0.0.1, since a socket
//! delivers bytes in its own chunking and closes in its own way. Nothing
//! here may panic, hang, or allocate what a length field merely claims.

use std::io::Write;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use flate2::write::ZlibEncoder;
use flate2::Compression;
use rpyc_rs::brine::{self, tag, BrineError, DecodeOptions, Decoder, Value, DEFAULT_MAX_DEPTH};
use rpyc_rs::channel::{Channel, ChannelConfig, ChannelError, DEFAULT_MAX_FRAME_SIZE};
use rpyc_rs::stream::Stream;

// ---------------------------------------------------------------------------
// brine
// ---------------------------------------------------------------------------

/// Concatenates byte pieces, for readable test inputs.
fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn truncated(offset: usize, needed: usize) -> BrineError {
    BrineError::Truncated { offset, needed }
}

fn too_long(offset: usize, claimed: u64, available: usize) -> BrineError {
    BrineError::LengthTooLarge { offset, claimed, available }
}

/// The table: (what, input, the exact error `brine::decode` must return).
fn brine_cases() -> Vec<(String, Vec<u8>, BrineError)> {
    let mut cases: Vec<(String, Vec<u8>, BrineError)> = Vec::new();
    let mut add = |what: String, input: Vec<u8>, err: BrineError| cases.push((what, input, err));

    // --- truncation in every fixed-size field -----------------------------
    add("empty input".into(), vec![], truncated(0, 1));
    for k in 0..8 {
        add(
            format!("float with {k} of 8 bytes"),
            cat(&[&[tag::FLOAT], &[0x40; 8][..k]]),
            truncated(1, 8 - k),
        );
    }
    for k in 0..16 {
        // Two f64 fields: the error names the one that is short.
        let want = if k < 8 { truncated(1, 8 - k) } else { truncated(9, 16 - k) };
        add(format!("complex with {k} of 16 bytes"), cat(&[&[tag::COMPLEX], &[0x3f; 16][..k]]), want);
    }
    for n in 1..=4usize {
        for k in 0..n {
            let t = tag::BYTES1 + (n as u8 - 1);
            add(format!("bytes{n} with {k} bytes"), cat(&[&[t], &b"wxyz"[..k]]), truncated(1, n - k));
        }
    }
    for (name, t) in [("bytes", tag::BYTES_L4), ("tuple", tag::TUPLE_L4), ("int", tag::INT_L4)] {
        for k in 0..4 {
            add(
                format!("{name} L4 length with {k} of 4 bytes"),
                cat(&[&[t], &[0; 4][..k]]),
                truncated(1, 4 - k),
            );
        }
    }
    for (name, t) in [("bytes", tag::BYTES_L1), ("tuple", tag::TUPLE_L1), ("int", tag::INT_L1)] {
        add(format!("{name} L1 without its length"), vec![t], truncated(1, 1));
    }
    add("str tag alone".into(), vec![tag::UNICODE], truncated(1, 1));
    add("str of bytes3 with 1 byte".into(), vec![tag::UNICODE, tag::BYTES1 + 2, b'a'], truncated(2, 2));
    add("str L4 length cut".into(), vec![tag::UNICODE, tag::BYTES_L4, 0, 0], truncated(2, 2));
    add("slice tag alone".into(), vec![tag::SLICE], truncated(1, 1));
    add("slice missing its step".into(), vec![tag::SLICE, tag::TUPLE1 + 2, 0x50, 0x51], truncated(4, 1));
    add("frozenset tag alone".into(), vec![tag::FROZENSET], truncated(1, 1));
    add("frozenset of 2 with 1 member".into(), vec![tag::FROZENSET, tag::TUPLE1 + 1, 0x51], truncated(3, 1));
    add("tuple2 with 1 item".into(), vec![tag::TUPLE1 + 1, 0x00], truncated(2, 1));
    add("tuple4 with nothing".into(), vec![tag::TUPLE4], truncated(1, 1));
    add("item inside a tuple cut".into(), vec![tag::TUPLE1, tag::FLOAT, 1, 2], truncated(2, 6));

    // --- every byte that is not a tag -------------------------------------
    let invalid: Vec<u8> = [0x07, 0x09].into_iter().chain(0x1c..=0x1f).chain(0xf0..=0xff).collect();
    assert_eq!(invalid.len(), 22);
    for &t in &invalid {
        add(format!("invalid tag 0x{t:02x}"), vec![t], BrineError::InvalidTag { offset: 0, tag: t });
        add(
            format!("invalid tag 0x{t:02x} inside a tuple"),
            vec![tag::TUPLE1 + 1, 0x00, t],
            BrineError::InvalidTag { offset: 2, tag: t },
        );
    }

    // --- lengths that claim more than is there ------------------------------
    let four_gib = [0xff, 0xff, 0xff, 0xff];
    add(
        "bytes L4 claiming 4 GiB".into(),
        cat(&[&[tag::BYTES_L4], &four_gib, b"abc"]),
        too_long(1, u32::MAX as u64, 3),
    );
    add(
        "str L4 claiming 4 GiB".into(),
        cat(&[&[tag::UNICODE, tag::BYTES_L4], &four_gib, b"x"]),
        too_long(2, u32::MAX as u64, 1),
    );
    add(
        "tuple L4 claiming 4 GiB items".into(),
        cat(&[&[tag::TUPLE_L4], &four_gib, &[0, 0]]),
        too_long(1, u32::MAX as u64, 2),
    );
    add(
        "int L4 claiming 4 GiB digits".into(),
        cat(&[&[tag::INT_L4], &four_gib, b"12"]),
        too_long(1, u32::MAX as u64, 2),
    );
    add(
        "frozenset L4 claiming 4 GiB members".into(),
        cat(&[&[tag::FROZENSET, tag::TUPLE_L4], &four_gib]),
        too_long(2, u32::MAX as u64, 0),
    );
    add(
        "4 GiB bytes nested in a tuple".into(),
        cat(&[&[tag::TUPLE1, tag::BYTES_L4], &four_gib]),
        too_long(2, u32::MAX as u64, 0),
    );
    add("bytes L1 claiming 5, 2 present".into(), vec![tag::BYTES_L1, 5, b'a', b'b'], too_long(1, 5, 2));
    add("tuple L1 claiming 3, 2 present".into(), vec![tag::TUPLE_L1, 3, 0, 0], too_long(1, 3, 2));
    add("int L1 claiming 9, 3 present".into(), vec![tag::INT_L1, 9, b'1', b'2', b'3'], too_long(1, 9, 3));

    // --- nesting -------------------------------------------------------------
    let mut deep = vec![tag::TUPLE1; 100_000];
    deep.push(tag::NONE);
    add("100000 nested 1-tuples".into(), deep, BrineError::TooDeep { limit: DEFAULT_MAX_DEPTH });
    let mut slices = Vec::new();
    for _ in 0..100_000 {
        slices.extend_from_slice(&[tag::SLICE, tag::TUPLE1 + 2]);
    }
    add("100000 nested slices".into(), slices, BrineError::TooDeep { limit: DEFAULT_MAX_DEPTH });
    let mut sets = Vec::new();
    for _ in 0..100_000 {
        sets.extend_from_slice(&[tag::FROZENSET, tag::TUPLE1]);
    }
    add("100000 nested frozensets".into(), sets, BrineError::TooDeep { limit: DEFAULT_MAX_DEPTH });

    // --- str that is not UTF-8 --------------------------------------------------
    for (what, body) in [
        ("a lone continuation byte", &b"\x80"[..]),
        ("a cut 2-byte sequence", b"\xc3("),
        ("an overlong NUL", b"\xc0\x80"),
        ("a UTF-16 surrogate", b"\xed\xa0\x80"),
        ("a code point past U+10FFFF", b"\xf4\x90\x80\x80"),
    ] {
        let t = tag::BYTES1 + body.len() as u8 - 1;
        add(
            format!("str with {what}"),
            cat(&[&[tag::UNICODE, t], body]),
            BrineError::InvalidUtf8 { offset: 2 },
        );
    }
    let mut long = "x".repeat(300).into_bytes();
    long[299] = 0xff;
    add(
        "str L4 with a bad last byte".into(),
        cat(&[&[tag::UNICODE, tag::BYTES_L4], &300u32.to_be_bytes(), &long]),
        BrineError::InvalidUtf8 { offset: 6 },
    );

    // --- int text that is not an int -----------------------------------------------
    for text in
        ["", "-", "+", "1a2", "0x10", "12.5", "1e5", "--1", "+-1", "1 2", "\u{661}", "1_0", "\u{2212}1"]
    {
        let input = cat(&[&[tag::INT_L1, text.len() as u8], text.as_bytes()]);
        add(format!("int text {text:?}"), input, BrineError::InvalidInt { offset: 2 });
    }
    add(
        "int L4 text with a letter".into(),
        cat(&[&[tag::INT_L4], &3u32.to_be_bytes(), b"9z9"]),
        BrineError::InvalidInt { offset: 5 },
    );
    add("int text with a NUL".into(), vec![tag::INT_L1, 2, b'1', 0], BrineError::InvalidInt { offset: 2 });
    add("int text not UTF-8".into(), vec![tag::INT_L1, 2, b'1', 0xff], BrineError::InvalidInt { offset: 2 });

    // --- bytes after a complete value ----------------------------------------------
    add("None then garbage".into(), vec![0x00, 0x00], BrineError::TrailingBytes { offset: 1, extra: 1 });
    add(
        "tuple then an invalid byte".into(),
        vec![tag::TUPLE1, 0x51, 0xff, 0xff],
        BrineError::TrailingBytes { offset: 2, extra: 2 },
    );
    add(
        "str then a newline".into(),
        vec![tag::UNICODE, tag::BYTES1, b'a', b'\n'],
        BrineError::TrailingBytes { offset: 3, extra: 1 },
    );

    // --- compounds of the wrong shape ------------------------------------------------
    let slice_err = |offset| BrineError::Malformed { offset, expected: "3-tuple after slice tag" };
    let fset_err = |offset| BrineError::Malformed { offset, expected: "tuple after frozenset tag" };
    let str_err = |offset| BrineError::Malformed { offset, expected: "bytes after str tag" };
    add("slice of a 2-tuple".into(), vec![tag::SLICE, tag::TUPLE1 + 1, 0x50, 0x51], slice_err(0));
    add("slice of None".into(), vec![tag::SLICE, tag::NONE], slice_err(0));
    add("slice of an invalid tag".into(), vec![tag::SLICE, 0xff], slice_err(0));
    // rpyc only writes slices as TUP3; the long form is refused (stricter
    // than rpyc's loader, which unpacks any 3-item value).
    add("slice of a TUP_L1 3-tuple".into(), vec![tag::SLICE, tag::TUPLE_L1, 3, 0, 0, 0], slice_err(0));
    add("slice inside a tuple".into(), vec![tag::TUPLE1, tag::SLICE, tag::TUPLE4], slice_err(1));
    add("frozenset of None".into(), vec![tag::FROZENSET, tag::NONE], fset_err(0));
    add("frozenset of bytes".into(), vec![tag::FROZENSET, tag::BYTES1 + 1, b'a', b'b'], fset_err(0));
    add(
        "frozenset of a slice".into(),
        vec![tag::FROZENSET, tag::SLICE, tag::TUPLE1 + 2, 0, 0, 0],
        fset_err(0),
    );
    add(
        "frozenset of an invalid tag".into(),
        vec![tag::FROZENSET, 0x07],
        BrineError::InvalidTag { offset: 1, tag: 0x07 },
    );
    add("frozenset of a cut float".into(), vec![tag::FROZENSET, tag::FLOAT, 1], truncated(2, 7));
    add("frozenset in a tuple, of an int".into(), vec![tag::TUPLE1, tag::FROZENSET, 0x55], fset_err(1));
    add("str of None".into(), vec![tag::UNICODE, tag::NONE], str_err(0));
    add("str of a str".into(), vec![tag::UNICODE, tag::UNICODE, tag::BYTES1, b'a'], str_err(0));
    add("str of a tuple".into(), vec![tag::UNICODE, tag::TUPLE1, tag::BYTES1, b'a'], str_err(0));
    add("str of an invalid tag".into(), vec![tag::UNICODE, 0xf0], str_err(0));
    cases
}

#[test]
fn brine_table_every_case_has_its_exact_error() {
    let cases = brine_cases();
    let mut failures = Vec::new();
    for (what, input, want) in &cases {
        let got = brine::decode(input);
        if got.as_ref() != Err(want) {
            failures.push(format!("{what}: expected {want:?}, got {got:?}"));
        }
        // The error must also render as a message (Display never panics).
        let _ = want.to_string();
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(cases.len() > 120, "the table shrank to {} cases", cases.len());
}

#[test]
fn every_byte_is_either_a_tag_or_an_invalid_tag() {
    // Complements the table: the 22 invalid tags are the only single bytes
    // refused as tags; every other byte at least starts a value.
    for t in 0..=255u8 {
        match brine::decode(&[t]) {
            Err(BrineError::InvalidTag { offset: 0, tag }) => {
                assert!(matches!(tag, 0x07 | 0x09 | 0x1c..=0x1f | 0xf0..=0xff), "0x{t:02x} refused as a tag");
            }
            Ok(_) | Err(BrineError::Truncated { offset: 1, .. }) => {
                assert!(!matches!(t, 0x07 | 0x09 | 0x1c..=0x1f | 0xf0..=0xff), "0x{t:02x} accepted");
            }
            other => panic!("0x{t:02x}: unexpected {other:?}"),
        }
    }
}

#[test]
fn depth_limit_is_exact_and_configurable() {
    let chain = |levels: usize| {
        let mut v = vec![tag::TUPLE1; levels];
        v.push(tag::NONE);
        v
    };
    // DEFAULT_MAX_DEPTH tuples deep is fine; one more is not.
    let ok = brine::decode(&chain(DEFAULT_MAX_DEPTH)).expect("max depth is allowed");
    let mut v = &ok;
    for _ in 0..DEFAULT_MAX_DEPTH {
        v = &v.as_tuple().expect("a 1-tuple")[0];
    }
    assert_eq!(*v, Value::None);
    assert_eq!(
        brine::decode(&chain(DEFAULT_MAX_DEPTH + 1)),
        Err(BrineError::TooDeep { limit: DEFAULT_MAX_DEPTH })
    );

    let opts = DecodeOptions::with_max_depth(3);
    assert!(brine::decode_with(&chain(3), opts).is_ok());
    assert_eq!(brine::decode_with(&chain(4), opts), Err(BrineError::TooDeep { limit: 3 }));
    // Slices and frozensets count as a level, as documented.
    assert_eq!(
        brine::decode_with(
            &[tag::TUPLE1, tag::TUPLE1, tag::SLICE, tag::TUPLE1 + 2, 0, 0, 0],
            DecodeOptions::with_max_depth(2)
        ),
        Err(BrineError::TooDeep { limit: 2 })
    );
    assert_eq!(
        brine::decode_with(&[tag::TUPLE1, tag::FROZENSET, tag::TUPLE1, 0], DecodeOptions::with_max_depth(1)),
        Err(BrineError::TooDeep { limit: 1 })
    );
    // Depth is nesting, not size: a wide flat tuple is not "deep".
    let mut wide = vec![tag::TUPLE_L4];
    wide.extend_from_slice(&100_000u32.to_be_bytes());
    wide.resize(wide.len() + 100_000, tag::NONE);
    assert_eq!(
        brine::decode_with(&wide, DecodeOptions::with_max_depth(1)).unwrap().as_tuple().unwrap().len(),
        100_000
    );
}

#[test]
fn lenient_but_valid_forms_decode_like_rpyc_loads_them() {
    // rpyc's loader accepts non-canonical forms (a long length field for a
    // short value, int text with a sign or spaces, leading zeros), and so
    // must we: a peer may write them. Re-encoding gives the canonical form.
    let cases: Vec<(Vec<u8>, Value)> = vec![
        (cat(&[&[tag::BYTES_L4], &3u32.to_be_bytes(), b"abc"]), Value::Bytes(b"abc".to_vec())),
        (vec![tag::BYTES_L1, 0], Value::Bytes(vec![])),
        (vec![tag::TUPLE_L1, 1, 0x51], Value::Tuple(vec![Value::from(1)])),
        (cat(&[&[tag::TUPLE_L4], &0u32.to_be_bytes()]), Value::Tuple(vec![])),
        (vec![tag::INT_L1, 2, b'4', b'2'], Value::from(42)),
        (vec![tag::INT_L1, 5, b' ', b'+', b'1', b'2', b' '], Value::from(12)),
        (vec![tag::INT_L1, 2, b'-', b'0'], Value::from(0)),
        (vec![tag::INT_L1, 5, b'0', b'0', b'0', b'1', b'2'], Value::from(12)),
        (cat(&[&[tag::INT_L1, 22], b"+099999999999999999999"]), Value::from(99_999_999_999_999_999_999u128)),
        (cat(&[&[tag::INT_L1, 21], b"-99999999999999999999"]), Value::from(-99_999_999_999_999_999_999i128)),
        // i64::MIN as text stays an Int, one below it becomes a BigInt.
        (cat(&[&[tag::INT_L1, 20], b"-9223372036854775808"]), Value::Int(i64::MIN)),
        (cat(&[&[tag::INT_L1, 20], b"-9223372036854775809"]), Value::from(i64::MIN as i128 - 1)),
        (cat(&[&[tag::UNICODE, tag::BYTES_L1, 2], "é".as_bytes()]), Value::from("é")),
        (vec![tag::FROZENSET, tag::EMPTY_TUPLE], Value::FrozenSet(vec![])),
        (
            vec![tag::FROZENSET, tag::TUPLE_L1, 2, 0x51, 0x52],
            Value::FrozenSet(vec![Value::from(1), Value::from(2)]),
        ),
    ];
    for (input, want) in cases {
        let got = brine::decode(&input).unwrap_or_else(|e| panic!("{input:02x?}: {e}"));
        assert_eq!(got, want, "{input:02x?}");
        let canonical = brine::encode(&got).unwrap();
        assert!(canonical.len() <= input.len(), "{input:02x?} re-encoded longer: {canonical:02x?}");
        assert_eq!(brine::decode(&canonical).unwrap(), want);
    }
}

#[test]
fn decoder_reads_a_prefix_and_reports_what_is_left() {
    // The pull decoder (used by the protocol layer) stops after one value;
    // only `decode`/`finish` insist that nothing follows.
    let input = [tag::TUPLE1 + 1, 0x51, tag::NONE, 0xff, 0xff];
    let mut d = Decoder::new(&input);
    assert_eq!(d.read_value().unwrap(), Value::Tuple(vec![Value::from(1), Value::None]));
    assert_eq!((d.offset(), d.remaining()), (3, 2));
    assert_eq!(d.finish(), Err(BrineError::TrailingBytes { offset: 3, extra: 2 }));
    assert_eq!(d.read_value(), Err(BrineError::InvalidTag { offset: 3, tag: 0xff }));
}

/// Peak resident and virtual memory of this process, in bytes, from
/// /proc/self/status (Linux); `None` elsewhere.
fn peak_memory() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
    };
    Some((field("VmHWM:")?, field("VmPeak:")?))
}

#[test]
fn length_claims_do_not_reserve_memory() {
    // Two attacks that pass the "length <= bytes present" check and can
    // still make a decoder reserve far more than it was sent:
    //
    // 1. brine: each of 500 nested tuples claims as many items as there are
    //    bytes left (1 MiB). Reserving `claimed * size_of::<Value>()` at
    //    every level would reserve ~16 GiB of address space for a 1 MiB
    //    message (and abort the process where memory is not overcommitted).
    // 2. frames: a 5-byte header claiming a payload just under
    //    max_frame_size (default 1 GiB). Sizing the read buffer for the claim
    //    before the bytes arrive would touch 1 GiB for 5 bytes received.
    //
    // Both run in this one test, one after the other, so that the peak
    // counters measure them alone (other tests in this file stay small).
    let Some((rss0, virt0)) = peak_memory() else { return };

    let size = 1 << 20;
    let levels = 500;
    let mut msg = Vec::with_capacity(size);
    for _ in 0..levels {
        msg.push(tag::TUPLE_L4);
        let left = (size - msg.len() - 4) as u32;
        msg.extend_from_slice(&left.to_be_bytes());
    }
    msg.resize(size, tag::NONE);
    // The innermost tuple takes all the Nones; its parent then runs dry.
    match brine::decode(&msg) {
        Err(BrineError::Truncated { offset, needed: 1 }) => assert_eq!(offset, size),
        other => panic!("{other:?}"),
    }
    let (_, virt1) = peak_memory().unwrap();
    assert!(
        virt1 - virt0 < 4 << 30,
        "decoding a 1 MiB message raised peak virtual memory by {} MiB",
        (virt1 - virt0) >> 20
    );

    let (mut raw, other) = Stream::pair();
    let mut ch = Channel::new(other, &ChannelConfig::default());
    let claim = DEFAULT_MAX_FRAME_SIZE as u32 - 1;
    raw.writer.write_all(&cat(&[&claim.to_be_bytes(), &[0], b"just a few bytes"])).unwrap();
    assert!(matches!(ch.recv(Some(Duration::from_millis(100))), Err(ChannelError::Timeout)));
    let (rss1, _) = peak_memory().unwrap();
    assert!(
        rss1 - rss0 < 256 << 20,
        "a 5-byte header claiming {claim} bytes raised peak RSS by {} MiB",
        (rss1 - rss0) >> 20
    );
}

// ---------------------------------------------------------------------------
// frames
// ---------------------------------------------------------------------------

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

/// A megabyte of digits would take seconds to convert (the conversion is
/// quadratic): it is refused by length, before any parsing.
#[test]
fn an_int_with_too_many_digits_is_refused_quickly() {
    let digits = vec![b'7'; 1_000_000];
    let mut data = vec![tag::INT_L4];
    data.extend_from_slice(&(digits.len() as u32).to_be_bytes());
    data.extend_from_slice(&digits);
    let start = std::time::Instant::now();
    match brine::decode(&data) {
        Err(BrineError::IntTooLong { offset: 5, len: 1_000_000, limit }) => {
            assert_eq!(limit, brine::DEFAULT_MAX_INT_DIGITS)
        }
        other => panic!("{other:?}"),
    }
    assert!(start.elapsed() < std::time::Duration::from_secs(1));
    // At the limit it still decodes.
    let ok = vec![b'9'; brine::DEFAULT_MAX_INT_DIGITS];
    let mut data = vec![tag::INT_L4];
    data.extend_from_slice(&(ok.len() as u32).to_be_bytes());
    data.extend_from_slice(&ok);
    assert!(matches!(brine::decode(&data), Ok(Value::BigInt(_))));
}
