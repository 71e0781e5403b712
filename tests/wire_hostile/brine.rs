//! Brine beyond the table: which single bytes are tags, the depth limit
//! (exact and configurable), the lenient forms rpyc's loader accepts, the
//! pull decoder stopping after one value, and ints with too many digits
//! refused by length.

use rpyc_rs::brine::{self, tag, BrineError, DecodeOptions, Decoder, Value, DEFAULT_MAX_DEPTH};

use super::cat;

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
