//! Property tests and fuzzing (proptest, stable Rust) for the wire layers.
//!
//! * Arbitrary and mutated bytes go into `brine::decode`, the pull
//!   `Decoder`, and the channel's frame reader: each must return `Ok` or
//!   `Err`, never panic, in bounded time; and whatever decodes must re-encode
//!   to a canonical form that is never longer and decodes to the same value.
//! * Arbitrary `Value` trees (every variant, big ints, NaN payloads, the
//!   1/4/255/256 length boundaries) round-trip through `encode`/`decode`.
//! * Arbitrary payloads round-trip through a `Channel`, compressed or not.
//!
//! Case counts are sized so that the file runs in well under 30 s in a debug
//! build; `PROPTEST_CASES=N` raises (or lowers) every count for a longer run.
//! Failing inputs are saved in `tests/wire_fuzz.proptest-regressions` and
//! replayed first on the next run.

use std::time::{Duration, Instant};

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use rpyc_rs::brine::{self, BrineError, DecodeOptions, Decoder, Value};
use rpyc_rs::channel::{Channel, ChannelConfig, ChannelError};
use rpyc_rs::stream::Stream;

/// `default` cases, unless `PROPTEST_CASES` says otherwise. Failing inputs
/// are kept next to this file (`tests/wire_fuzz.proptest-regressions`, to be
/// committed) and replayed first on later runs.
fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(default);
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    }
}

/// The slowest any single case may be: a guard against a hang or an
/// exponential blow-up, not a speed check (speed lives in `ci/bench`), so
/// far above what a debug build on a loaded 2-core machine needs.
const CASE_TIME_LIMIT: Duration = Duration::from_secs(20);

/// Structural equality that also holds for NaN (floats compare by bits, so
/// `-0.0 != 0.0` too) and keeps frozenset members in their wire order, which
/// brine preserves. Stricter than `Value`'s Python-like `==`.
fn same(a: &Value, b: &Value) -> bool {
    use Value::*;
    let all = |x: &[Value], y: &[Value]| x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q));
    match (a, b) {
        (Float(x), Float(y)) => x.to_bits() == y.to_bits(),
        (Complex(r1, i1), Complex(r2, i2)) => r1.to_bits() == r2.to_bits() && i1.to_bits() == i2.to_bits(),
        (Tuple(x), Tuple(y)) | (FrozenSet(x), FrozenSet(y)) => all(x, y),
        (Slice(x), Slice(y)) => all(&x[..], &y[..]),
        (Float(_) | Complex(..) | Tuple(_) | FrozenSet(_) | Slice(_), _) => false,
        _ => a == b,
    }
}

/// What every successful decode must satisfy: the canonical re-encoding is
/// no longer than the input (rpyc's forms are the shortest), decodes to the
/// same value, and is a fixed point.
fn check_decoded(input: &[u8], v: &Value) -> Result<(), TestCaseError> {
    let canonical = brine::encode(v).map_err(|e| TestCaseError::fail(format!("re-encode failed: {e}")))?;
    prop_assert!(canonical.len() <= input.len(), "canonical form longer than {input:02x?}: {canonical:02x?}");
    let again = brine::decode(&canonical)
        .map_err(|e| TestCaseError::fail(format!("canonical form rejected: {e}")))?;
    prop_assert!(same(v, &again), "{v:?} became {again:?}");
    prop_assert_eq!(brine::encode(&again).unwrap(), canonical);
    Ok(())
}

/// Runs `decode` on `input` and checks the result, within the time limit.
fn fuzz_decode(input: &[u8]) -> Result<(), TestCaseError> {
    let start = Instant::now();
    let result = brine::decode(input);
    prop_assert!(start.elapsed() < CASE_TIME_LIMIT, "decode took {:?} on {input:02x?}", start.elapsed());
    match result {
        Ok(v) => check_decoded(input, &v),
        Err(e) => check_error(input, &e),
    }
}

/// An error must describe the input truthfully: its offsets point into the
/// input, an invalid tag is the byte at its offset, trailing bytes run to
/// the end, and it renders as a message.
fn check_error(input: &[u8], e: &BrineError) -> Result<(), TestCaseError> {
    let n = input.len();
    prop_assert!(!e.to_string().is_empty());
    match *e {
        // `needed` is the shortfall. Only fixed-size fields (at most an
        // f64) can run short: body lengths are checked against the input
        // first and fail as LengthTooLarge instead.
        BrineError::Truncated { offset, needed } => {
            prop_assert!(offset <= n && (1..=8).contains(&needed), "{e:?} on {n} bytes")
        }
        BrineError::LengthTooLarge { offset, claimed, available } => {
            prop_assert!(offset < n && available < n && claimed > available as u64, "{e:?} on {n} bytes")
        }
        BrineError::InvalidTag { offset, tag } => prop_assert_eq!(input.get(offset), Some(&tag)),
        BrineError::InvalidUtf8 { offset } | BrineError::Malformed { offset, .. } => {
            prop_assert!(offset < n, "{e:?} on {n} bytes")
        }
        // The offset of the int's text, which may be empty and end the
        // input (tests/wire_hostile.rs pins that case at the input's end).
        BrineError::InvalidInt { offset } => prop_assert!(offset <= n, "{e:?} on {n} bytes"),
        BrineError::TrailingBytes { offset, extra } => {
            prop_assert!(extra > 0 && offset + extra == n, "{e:?} on {n} bytes")
        }
        BrineError::IntTooLong { offset, len, limit } => {
            prop_assert!(offset + len <= n && len > limit, "{e:?} on {n} bytes")
        }
        BrineError::TooDeep { .. } | BrineError::TooLarge { .. } => {}
        // The enum is non-exhaustive: a new kind of error must be taught to
        // this check before it passes.
        _ => prop_assert!(false, "an error kind this check does not know: {e:?}"),
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// strategies
// ---------------------------------------------------------------------------

/// `n` pseudo-random bytes from `seed` (xorshift64). Big buffers come from
/// a seed and a length rather than from `vec(any::<u8>(), ..)`, whose
/// per-element value trees make a debug build crawl; shrinking still works
/// on the length and the seed.
fn bytes_from_seed(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn seeded_bytes(len: std::ops::Range<usize>) -> impl Strategy<Value = Vec<u8>> {
    (any::<u64>(), len).prop_map(|(seed, n)| bytes_from_seed(seed, n))
}

/// Decimal text of `n` digits (no leading zero), optionally negative.
fn digits(seed: u64, n: usize, negative: bool) -> String {
    let b = bytes_from_seed(seed, n);
    let mut s = String::with_capacity(n + 1);
    if negative {
        s.push('-');
    }
    s.push(char::from(b'1' + b[0] % 9));
    s.extend(b[1..].iter().map(|d| char::from(b'0' + d % 10)));
    s
}

/// Text from a mix of 1- to 4-byte UTF-8 characters, `n` characters long.
fn text(seed: u64, n: usize) -> String {
    const CHARS: &[char] =
        &['a', 'z', ' ', '\n', '\'', 'é', 'ß', 'Ω', '€', '中', '🌍', '𝄞', '\u{10ffff}', '\0'];
    bytes_from_seed(seed, n).iter().map(|b| CHARS[*b as usize % CHARS.len()]).collect()
}

/// Leaves of every kind, weighted toward the encoding boundaries.
fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::None),
        Just(Value::NotImplemented),
        Just(Value::Ellipsis),
        any::<bool>().prop_map(Value::Bool),
        // Around the one-byte range -48..=159.
        (-60i64..175).prop_map(Value::Int),
        any::<i64>().prop_map(Value::Int),
        Just(Value::Int(i64::MIN)),
        Just(Value::Int(i64::MAX)),
        // Mostly outside i64: BigInt, through the canonicalizing constructor.
        any::<i128>().prop_map(Value::from),
        // Up to 400 digits: text lengths on both sides of 255/256 (INT_L1/L4).
        (any::<u64>(), 1usize..400, any::<bool>())
            .prop_map(|(s, n, neg)| Value::int(digits(s, n, neg).parse().unwrap())),
        any::<f64>().prop_map(Value::Float),
        // Any bit pattern: signalling NaNs, NaN payloads, subnormals.
        any::<u64>().prop_map(|b| Value::Float(f64::from_bits(b))),
        (any::<f64>(), any::<u64>()).prop_map(|(r, i)| Value::Complex(r, f64::from_bits(i))),
        vec(any::<u8>(), 0..6).prop_map(Value::Bytes),
        seeded_bytes(250..262).prop_map(Value::Bytes),
        seeded_bytes(0..2000).prop_map(Value::Bytes),
        "(?s:.{0,12})".prop_map(Value::Str),
        // Multi-byte text whose UTF-8 length straddles 255/256.
        (any::<u64>(), 0usize..300).prop_map(|(s, n)| Value::Str(text(s, n))),
    ]
}

/// Trees of every variant, up to 5 levels deep.
fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 96, 8, |inner| {
        prop_oneof![
            4 => vec(inner.clone(), 0..8).prop_map(Value::Tuple),
            2 => vec(inner.clone(), 0..6).prop_map(Value::FrozenSet),
            2 => (inner.clone(), inner.clone(), inner.clone()).prop_map(|(a, b, c)| Value::slice(a, b, c)),
            // Tuples across the 4/5 and 255/256 length boundaries.
            1 => (prop_oneof![Just(4usize), Just(5), Just(255), Just(256), Just(257)], inner)
                .prop_map(|(n, item)| Value::Tuple(vec![item; n])),
        ]
    })
}

/// One way to damage an encoding.
#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, bit: u8 },
    Set { at: usize, byte: u8 },
    Insert { at: usize, byte: u8 },
    Remove { at: usize },
    Truncate { at: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = any::<usize>();
    prop_oneof![
        (at, 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        // Tags and length bytes that matter most: 0x00-0x1f, 0xef-0xff.
        (at, prop_oneof![0u8..0x20, 0xefu8..=0xff, any::<u8>()])
            .prop_map(|(at, byte)| Mutation::Set { at, byte }),
        (at, any::<u8>()).prop_map(|(at, byte)| Mutation::Insert { at, byte }),
        at.prop_map(|at| Mutation::Remove { at }),
        at.prop_map(|at| Mutation::Truncate { at }),
    ]
}

fn apply(mut bytes: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        let n = bytes.len();
        match *m {
            Mutation::Flip { at, bit } if n > 0 => bytes[at % n] ^= 1 << bit,
            Mutation::Set { at, byte } if n > 0 => bytes[at % n] = byte,
            Mutation::Insert { at, byte } => bytes.insert(at % (n + 1), byte),
            Mutation::Remove { at } if n > 0 => {
                bytes.remove(at % n);
            }
            Mutation::Truncate { at } => bytes.truncate(at % (n + 1)),
            _ => {}
        }
    }
    bytes
}

// ---------------------------------------------------------------------------
// brine
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn decode_arbitrary_bytes(input in vec(any::<u8>(), 0..1024)) {
        fuzz_decode(&input)?;
    }

    #[test]
    fn decode_bytes_made_of_tags_and_lengths(
        // Mostly tag-like bytes, so the decoder goes deep instead of
        // stopping at the first byte.
        input in vec(any::<u8>(), 0..512)
            .prop_map(|v| v.into_iter().map(|b| if b & 1 == 0 { b >> 3 } else { b }).collect::<Vec<u8>>())
    ) {
        fuzz_decode(&input)?;
    }

    #[test]
    fn decoder_tokens_on_arbitrary_bytes(input in vec(any::<u8>(), 0..512), max_depth in 0usize..8) {
        // The pull decoder, as the Python bindings drive it: token by token,
        // each consuming at least one byte, until the input ends or an error.
        let mut d = Decoder::with_options(&input, DecodeOptions::with_max_depth(max_depth));
        let mut steps = 0;
        while d.remaining() > 0 {
            let before = d.offset();
            if d.next_token().is_err() {
                break;
            }
            prop_assert!(d.offset() > before, "a token consumed nothing at {before}");
            steps += 1;
        }
        prop_assert!(steps <= input.len());
        // And the depth-limited whole-value decode.
        let _ = brine::decode_with(&input, DecodeOptions::with_max_depth(max_depth));
    }
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn decode_mutated_encodings(v in value(), muts in vec(mutation(), 1..4)) {
        let damaged = apply(brine::encode(&v).unwrap(), &muts);
        fuzz_decode(&damaged)?;
    }
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn value_trees_round_trip(v in value()) {
        let bytes = brine::encode(&v).unwrap();
        let back = brine::decode(&bytes).map_err(|e| TestCaseError::fail(format!("{e} decoding {v:?}")))?;
        prop_assert!(same(&v, &back), "{:?} came back as {:?}", v, back);
        // The encoding is canonical: decoding and encoding again is a no-op.
        prop_assert_eq!(brine::encode(&back).unwrap(), bytes);
        // Python-like equality agrees, except where NaN is involved.
        if !format!("{v:?}").contains("NaN") {
            prop_assert_eq!(&back, &v);
        }
    }
}

// ---------------------------------------------------------------------------
// frames
// ---------------------------------------------------------------------------

/// Feeds `wire` to a channel's reader and drains it; returns the payloads
/// received before the first error, and that error.
fn read_all_frames(wire: &[u8], config: &ChannelConfig) -> (Vec<Vec<u8>>, ChannelError) {
    let (mut raw, other) = Stream::pair();
    let mut ch = Channel::new(other, config);
    raw.writer.write_all(wire).unwrap();
    raw.writer.shutdown().unwrap();
    let mut frames = Vec::new();
    loop {
        match ch.recv(Some(Duration::from_secs(5))) {
            Ok(p) => frames.push(p),
            Err(e) => return (frames, e),
        }
    }
}

/// The bytes our writer puts on the wire for one payload (a low threshold,
/// so that small payloads get compressed too).
fn frame_bytes(payload: &[u8], compress: bool) -> Vec<u8> {
    let (a, mut b) = Stream::pair();
    let config = ChannelConfig { compress, compression_threshold: 16, ..ChannelConfig::default() };
    let mut tx = Channel::new(a, &config);
    tx.send(payload).unwrap();
    // Dropping the sender ends the stream, so the loop below stops at EOF.
    drop(tx);
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65536];
    loop {
        match b.reader.read_timeout(&mut buf, Some(Duration::from_secs(5))) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => panic!("reading back a frame: {e}"),
        }
    }
}

fn small_reader() -> ChannelConfig {
    ChannelConfig { max_frame_size: 4096, ..ChannelConfig::default() }
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn frame_reader_on_arbitrary_bytes(wire in vec(any::<u8>(), 0..2048)) {
        let start = Instant::now();
        let (frames, err) = read_all_frames(&wire, &small_reader());
        prop_assert!(start.elapsed() < CASE_TIME_LIMIT);
        // Each frame takes at least its 6 bytes of framing.
        prop_assert!(frames.len() * 6 <= wire.len());
        prop_assert!(frames.iter().all(|f| f.len() <= 4096));
        prop_assert!(!matches!(err, ChannelError::Timeout | ChannelError::Io(_)), "{err:?}");
    }

    #[test]
    fn frame_reader_on_damaged_frames(
        payloads in vec((vec(any::<u8>(), 0..300), any::<bool>()), 1..4),
        muts in vec(mutation(), 1..4),
    ) {
        let mut wire = Vec::new();
        for (p, compress) in &payloads {
            wire.extend(frame_bytes(p, *compress));
        }
        let damaged = apply(wire, &muts);
        let start = Instant::now();
        let (frames, err) = read_all_frames(&damaged, &small_reader());
        prop_assert!(start.elapsed() < CASE_TIME_LIMIT);
        prop_assert!(frames.len() * 6 <= damaged.len());
        prop_assert!(frames.iter().all(|f| f.len() <= 4096));
        prop_assert!(!matches!(err, ChannelError::Timeout | ChannelError::Io(_)), "{err:?}");
    }
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn frames_round_trip(
        payloads in vec(
            prop_oneof![
                vec(any::<u8>(), 0..64),
                // Compressible and incompressible, around the 3000-byte threshold.
                (2990usize..3010).prop_map(|n| vec![b'z'; n]),
                vec(any::<u8>(), 2995..3005),
                vec(any::<u8>(), 0..20000),
            ],
            1..5,
        ),
        compress in any::<bool>(),
    ) {
        let (a, b) = Stream::pair();
        let config = ChannelConfig { compress, ..ChannelConfig::default() };
        let (mut tx, mut rx) = (Channel::new(a, &config), Channel::new(b, &config));
        for p in &payloads {
            tx.send(p).unwrap();
        }
        for p in &payloads {
            let got = rx.recv(Some(Duration::from_secs(5))).unwrap();
            prop_assert!(&got == p, "payload of {} bytes came back as {} bytes", p.len(), got.len());
        }
        drop(tx);
        prop_assert!(matches!(rx.recv(Some(Duration::from_secs(5))), Err(ChannelError::Closed)));
    }
}
