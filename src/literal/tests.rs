//! Tests for the literal parser, one group of Python's literal forms at a time.
//!
//! They go through `parse` only, so they hold for whatever the layers below
//! hand up.

use num_bigint::BigInt;

use super::*;

fn ok(text: &str) -> Value {
    parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn err(text: &str) -> String {
    match parse(text) {
        Ok(v) => panic!("{text:?} parsed as {v:?}"),
        Err(e) => e.to_string(),
    }
}

fn t(items: Vec<Value>) -> Value {
    Value::Tuple(items)
}

#[test]
fn constants() {
    assert_eq!(ok("None"), Value::None);
    assert_eq!(ok(" True "), Value::Bool(true));
    assert_eq!(ok("False"), Value::Bool(false));
    assert_eq!(ok("..."), Value::Ellipsis);
    assert_eq!(ok("Ellipsis"), Value::Ellipsis);
    assert_eq!(ok("NotImplemented"), Value::NotImplemented);
}

#[test]
fn ints_of_every_size_and_base() {
    assert_eq!(ok("0"), Value::Int(0));
    assert_eq!(ok("000"), Value::Int(0));
    assert_eq!(ok("42"), Value::Int(42));
    assert_eq!(ok("-7"), Value::Int(-7));
    assert_eq!(ok("+7"), Value::Int(7));
    assert_eq!(ok("- 7"), Value::Int(-7));
    assert_eq!(ok("1_000_000"), Value::Int(1_000_000));
    assert_eq!(ok("0xff"), Value::Int(255));
    assert_eq!(ok("0XFF"), Value::Int(255));
    assert_eq!(ok("0o17"), Value::Int(15));
    assert_eq!(ok("0b1010"), Value::Int(10));
    assert_eq!(ok("0x_ff"), Value::Int(255));
    assert_eq!(ok("9223372036854775807"), Value::Int(i64::MAX));
    assert_eq!(ok("-9223372036854775808"), Value::Int(i64::MIN));
    let big: BigInt = "123456789012345678901234567890".parse().unwrap();
    assert_eq!(ok("123456789012345678901234567890"), Value::BigInt(big.clone()));
    assert_eq!(ok("-123456789012345678901234567890"), Value::BigInt(-big));
    // Values just past i64 stay exact.
    assert_eq!(ok("9223372036854775808"), Value::from(9_223_372_036_854_775_808u64));
}

#[test]
fn bad_numbers() {
    assert!(err("007").contains("leading zeros"));
    assert!(err("1__0").contains("invalid number"));
    assert!(err("1_").contains("invalid number"));
    assert!(err("12abc").contains("invalid number"));
    assert!(err("0x").contains("invalid"));
    assert!(err("0b102").contains("invalid base-2"));
    assert!(err("1.5.2").contains("unexpected"));
}

#[test]
fn floats() {
    assert_eq!(ok("1.5"), Value::Float(1.5));
    assert_eq!(ok("-2e3"), Value::Float(-2000.0));
    assert_eq!(ok("1E-2"), Value::Float(0.01));
    assert_eq!(ok(".5"), Value::Float(0.5));
    assert_eq!(ok("1."), Value::Float(1.0));
    assert_eq!(ok("1_000.5"), Value::Float(1000.5));
    assert_eq!(ok("1e400"), Value::Float(f64::INFINITY));
    assert_eq!(ok("float('inf')"), Value::Float(f64::INFINITY));
    assert_eq!(ok("float(\"-inf\")"), Value::Float(f64::NEG_INFINITY));
    assert_eq!(ok("-float('inf')"), Value::Float(f64::NEG_INFINITY));
    assert_eq!(ok("float(' Infinity ')"), Value::Float(f64::INFINITY));
    assert_eq!(ok("float('1.25')"), Value::Float(1.25));
    assert_eq!(ok("float(3)"), Value::Float(3.0));
    match ok("float('nan')") {
        Value::Float(x) => assert!(x.is_nan()),
        other => panic!("{other:?}"),
    }
    match parse("-0.0").unwrap() {
        Value::Float(x) => assert!(x == 0.0 && x.is_sign_negative()),
        other => panic!("{other:?}"),
    }
    assert!(err("inf").contains("float('inf')"));
    assert!(err("float('abc')").contains("could not convert"));
    assert!(err("float").contains("float('inf')"));
}

#[test]
fn complex_numbers() {
    assert_eq!(ok("2j"), Value::Complex(0.0, 2.0));
    assert_eq!(ok("1+2j"), Value::Complex(1.0, 2.0));
    assert_eq!(ok("1.5 - 0.5j"), Value::Complex(1.5, -0.5));
    assert_eq!(ok("-1-1J"), Value::Complex(-1.0, -1.0));
    assert!(err("1+2").contains("real + imaginary"));
    assert!(err("'a'+'b'").contains("real + imaginary"));
}

#[test]
fn strings_and_escapes() {
    assert_eq!(ok("'abc'"), Value::from("abc"));
    assert_eq!(ok("\"it's\""), Value::from("it's"));
    assert_eq!(ok(r"'it\'s'"), Value::from("it's"));
    assert_eq!(ok(r"'a\nb\tc\\d'"), Value::from("a\nb\tc\\d"));
    assert_eq!(ok(r"'\x41\101\u00e9\U0001F30D'"), Value::from("AAé🌍"));
    assert_eq!(ok(r"'\q'"), Value::from("\\q"));
    assert_eq!(ok("'héllo 🌍'"), Value::from("héllo 🌍"));
    assert_eq!(ok("''"), Value::from(""));
    assert_eq!(ok("u'x'"), Value::from("x"));
    assert_eq!(ok(r"r'\n\''"), Value::from("\\n\\'"));
    assert_eq!(ok("'''a\n'b'\"'''"), Value::from("a\n'b'\""));
    assert_eq!(ok("'a' \"b\"  'c'"), Value::from("abc"));
    assert_eq!(ok("'a\\\nb'"), Value::from("ab"));
    assert!(err("'abc").contains("unterminated"));
    assert!(err("'a\nb'").contains("unterminated"));
    assert!(err(r"'\x4'").contains("truncated"));
    assert!(err(r"'\ud800'").contains("UTF-8"));
    assert!(err("f'x'").contains("f-strings"));
    assert!(err(r"'\N{DASH}'").contains("\\N"));
}

#[test]
fn bytes_literals() {
    assert_eq!(ok("b''"), Value::Bytes(vec![]));
    assert_eq!(ok(r"b'\x00\xff a'"), Value::Bytes(vec![0, 255, b' ', b'a']));
    assert_eq!(ok(r"B'\101\n'"), Value::Bytes(b"A\n".to_vec()));
    assert_eq!(ok(r"rb'\x00'"), Value::Bytes(b"\\x00".to_vec()));
    assert_eq!(ok(r"Br'\x00'"), Value::Bytes(b"\\x00".to_vec()));
    // \u is not an escape in bytes.
    assert_eq!(ok(r"b'\u0041'"), Value::Bytes(b"\\u0041".to_vec()));
    assert_eq!(ok("b'a' b'b'"), Value::Bytes(b"ab".to_vec()));
    assert!(err("b'é'").contains("ASCII"));
    assert!(err(r"b'\777'").contains("out of range"));
    assert!(err("b'a' 'b'").contains("mix"));
}

#[test]
fn tuples() {
    assert_eq!(ok("()"), t(vec![]));
    assert_eq!(ok("( )"), t(vec![]));
    assert_eq!(ok("(1,)"), t(vec![Value::from(1)]));
    assert_eq!(ok("(1)"), Value::from(1));
    assert_eq!(ok("((1))"), Value::from(1));
    assert_eq!(ok("(1, 'a')"), t(vec![Value::from(1), Value::from("a")]));
    assert_eq!(ok("(1, 'a',)"), t(vec![Value::from(1), Value::from("a")]));
    assert_eq!(
        ok("(None, (2, (b'x',)), -3.5)"),
        t(vec![
            Value::None,
            t(vec![Value::from(2), t(vec![Value::Bytes(b"x".to_vec())])]),
            Value::from(-3.5)
        ])
    );
    assert_eq!(ok("1, 2"), t(vec![Value::from(1), Value::from(2)]));
    assert_eq!(ok("1,"), t(vec![Value::from(1)]));
    assert!(err("(1, 2").contains("never closed"));
    assert!(err("(1 2)").contains("expected ',' or ')'"));
    assert!(err("(,)").contains("unexpected ','"));
    assert!(err(&"(".repeat(200)).contains("nested deeper"));
}

#[test]
fn what_is_not_a_literal() {
    let e = err("foo");
    assert!(e.contains("name 'foo' is not a literal"), "{e}");
    assert!(e.contains("'foo'"), "{e}");
    assert!(err("true").contains("True"));
    assert!(err("[1, 2]").contains("use a tuple"));
    assert!(err("{1: 2}").contains("use a tuple"));
    assert!(err("").contains("empty"));
    assert!(err("   ").contains("empty"));
    assert!(err("-'a'").contains("sign"));
    assert!(err("1 2").contains("unexpected"));
    assert!(err("os.getpid()").contains("name 'os'"));
}

#[test]
fn repr_round_trips() {
    // What the CLI prints can be pasted back as an argument.
    for text in [
        "(1, 'a')",
        "(None, True, False)",
        "b'\\x00\\xff'",
        "'it\\'s \"x\"'",
        "(1,)",
        "()",
        "-123456789012345678901234567890",
        "1.5",
        "(1+2j)",
        "'\\n\\t'",
    ] {
        let v = ok(text);
        assert_eq!(ok(&v.repr()), v, "{text}");
    }
}
