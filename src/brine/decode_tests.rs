//! Unit tests of the brine decoder: skipping and measuring values, the
//! quick checks against the token walk, int text, and the limits.

use super::*;
use crate::brine::Value;

#[test]
fn skip_value_walks_exactly_one_value() {
    // ((1, "ab"), frozenset({b"x"}), slice(None, 2, None)) then a 7.
    let mut data = Vec::new();
    crate::brine::encode_into(
        &Value::Tuple(vec![
            Value::Tuple(vec![1.into(), "ab".into()]),
            Value::FrozenSet(vec![Value::Bytes(b"x".to_vec())]),
            Value::Slice(Box::new([Value::None, 2.into(), Value::None])),
        ]),
        &mut data,
    )
    .unwrap();
    let first = data.len();
    crate::brine::put_int(&mut data, 7);
    let mut d = Decoder::new(&data);
    d.skip_value().unwrap();
    assert_eq!(d.offset(), first);
    assert_eq!(d.next_token().unwrap(), Token::Int(7));
    d.finish().unwrap();
    // value_bytes hands back the very bytes skipped.
    let mut d = Decoder::new(&data);
    assert_eq!(d.value_bytes().unwrap(), &data[..first]);
    assert_eq!(d.value_bytes().unwrap(), &data[first..]);
    assert!(d.value_bytes().is_err());
}

/// `skip_value` as it was before `skip_token`: every token through
/// `next_token`. The reference for the property below.
fn skip_by_tokens(d: &mut Decoder<'_>) -> Result<(), BrineError> {
    let mut open = vec![1usize];
    while let Some(left) = open.last_mut() {
        if *left == 0 {
            open.pop();
            if !open.is_empty() {
                d.leave();
            }
            continue;
        }
        *left -= 1;
        let n = match d.next_token()? {
            Token::Tuple(n) | Token::FrozenSet(n) => n,
            Token::Slice => 3,
            _ => continue,
        };
        d.enter()?;
        open.push(n);
    }
    Ok(())
}

use proptest::strategy::Strategy;

proptest::proptest! {
    /// The quick checks accept and refuse exactly what the token-by-token
    /// walk does, and stop at the same place: on bytes made of the tags
    /// messages use (with lengths and digits that are right, wrong or
    /// cut short), and under tight depth and digit limits.
    #[test]
    fn skip_value_agrees_with_the_token_walk(
        parts in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::sample::select(vec![
                    tag::NONE, tag::EMPTY_TUPLE, tag::TUPLE1, tag::TUPLE1 + 2, tag::TUPLE4,
                    tag::UNICODE, tag::BYTES1, tag::BYTES4, tag::BYTES_L1, tag::INT_L1,
                    tag::INT_L4, tag::SLICE, tag::FROZENSET, 0x50, 0xef, 0xf0, 0x07,
                ]).prop_map(|t| vec![t]),
                proptest::collection::vec(proptest::sample::select(b"-+ 0123456789a\xc3\xa9\x00".to_vec()), 0..22),
                (0u8..24).prop_map(|n| vec![n]),
            ],
            0..12,
        ),
        max_depth in 0usize..6,
        max_int_digits in 0usize..24,
    ) {
        let data: Vec<u8> = parts.concat();
        let opts = DecodeOptions { max_depth, max_int_digits };
        let mut quick = Decoder::with_options(&data, opts);
        let mut reference = Decoder::with_options(&data, opts);
        let (a, b) = (quick.skip_value(), skip_by_tokens(&mut reference));
        proptest::prop_assert_eq!(&a, &b);
        if a.is_ok() {
            proptest::prop_assert_eq!(quick.offset(), reference.offset());
        }
    }
}

#[test]
fn flat_tuple_bytes_agrees_with_value_bytes() {
    // An id pack as rpyc sends one, a tuple of small scalars, then a 7.
    let pack = Value::Tuple(vec!["builtins.method".into(), 140_565_824_180_000i64.into(), (-3).into()]);
    let small = Value::Tuple(vec![Value::None, true.into(), Value::Bytes(b"abcd".to_vec()), "".into()]);
    for v in [pack, small] {
        let mut data = Vec::new();
        crate::brine::encode_into(&v, &mut data).unwrap();
        let first = data.len();
        crate::brine::put_int(&mut data, 7);
        let mut d = Decoder::new(&data);
        assert_eq!(d.flat_tuple_bytes(), Some(&data[..first]));
        assert_eq!(d.next_token().unwrap(), Token::Int(7));
    }
    // Nested, too long, or cut short: declined, and the decoder has
    // not moved.
    let nested = Value::Tuple(vec![Value::Tuple(vec![1.into()])]);
    let long = Value::Tuple(vec![1.into(); 5]);
    for v in [nested, long, Value::from(1)] {
        let mut data = Vec::new();
        crate::brine::encode_into(&v, &mut data).unwrap();
        let mut d = Decoder::new(&data);
        assert_eq!(d.flat_tuple_bytes(), None);
        assert_eq!(d.offset(), 0);
    }
    let mut data = Vec::new();
    crate::brine::encode_into(&Value::Tuple(vec!["abcdef".into(), 5.into()]), &mut data).unwrap();
    for cut in 0..data.len() {
        let mut d = Decoder::new(&data[..cut]);
        assert_eq!(d.flat_tuple_bytes(), None, "cut at {cut}");
        assert_eq!(d.offset(), 0);
    }
}

#[test]
fn skip_value_enforces_the_limits() {
    // 10 nested 1-tuples around None: fine at depth 10, not at 9.
    let mut data = vec![tag::TUPLE1; 10];
    data.push(tag::NONE);
    Decoder::with_options(&data, DecodeOptions::with_max_depth(10)).skip_value().unwrap();
    let e = Decoder::with_options(&data, DecodeOptions::with_max_depth(9)).skip_value().unwrap_err();
    assert!(matches!(e, BrineError::TooDeep { limit: 9 }), "{e:?}");
    // A 3-tuple with two items present.
    let e = Decoder::new(&[tag::TUPLE1 + 2, tag::NONE, tag::NONE]).skip_value().unwrap_err();
    assert!(matches!(e, BrineError::Truncated { .. }), "{e:?}");
    let e = Decoder::new(&[tag::TUPLE1, 0xff]).skip_value().unwrap_err();
    assert!(matches!(e, BrineError::InvalidTag { tag: 0xff, .. }), "{e:?}");
}

#[test]
fn int_text_forms() {
    assert_eq!(parse_int_text(b" +12 "), Some(Token::Int(12)));
    assert_eq!(parse_int_text(b"-99999999999999999999"), Some(Token::BigInt("-99999999999999999999")));
    assert_eq!(parse_int_text(b"1_0"), None);
    assert_eq!(parse_int_text(b"-"), None);
    assert_eq!(parse_int_text(b""), None);
}

/// CPython's default: 4300 digits convert, 4301 do not; the bound is
/// configurable both ways.
#[test]
fn int_digit_limit_is_cpythons() {
    let int_of = |digits: usize| {
        let mut data = vec![tag::INT_L4];
        data.extend((digits as u32).to_be_bytes());
        data.extend(std::iter::repeat_n(b'7', digits));
        data
    };
    let ok = int_of(4300);
    assert!(matches!(Decoder::new(&ok).next_token(), Ok(Token::BigInt(_))));
    let long = int_of(4301);
    let e = Decoder::new(&long).next_token().unwrap_err();
    assert!(matches!(e, BrineError::IntTooLong { len: 4301, limit: 4300, .. }), "{e:?}");
    let opts = DecodeOptions::default().with_max_int_digits(5000);
    assert!(Decoder::with_options(&long, opts).next_token().is_ok());
    let opts = DecodeOptions::default().with_max_int_digits(100);
    assert!(Decoder::with_options(&int_of(101), opts).next_token().is_err());
}
