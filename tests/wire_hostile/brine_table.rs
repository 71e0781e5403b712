//! The table of malformed brine: truncation in every fixed-size field,
//! every byte that is not a tag, lengths that claim more than is there,
//! nesting past the depth limit, bad UTF-8, int text that is not an int,
//! trailing bytes and compounds of the wrong shape, each with the exact
//! [`BrineError`] `brine::decode` must return; and the test that runs it.

use rpyc_rs::brine::{self, tag, BrineError, DEFAULT_MAX_DEPTH};

use super::cat;

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
