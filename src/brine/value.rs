//! The Rust tree of brine values and its codec, built on the primitives in
//! the parent module.

use num_bigint::BigInt;
use num_traits::ToPrimitive;

use super::{
    put_bool, put_bytes, put_complex, put_float, put_frozenset_header, put_int, put_int_text, put_none,
    put_slice_header, put_str, put_tuple_header, tag, BrineError, DecodeOptions, Decoder, Token,
};

/// Any value brine can carry: the immutable Python types RPyC sends by value.
///
/// Ints that fit `i64` are [`Value::Int`]; larger ones are [`Value::BigInt`]
/// (the constructors keep that split canonical, so equality is structural).
/// Equality follows Python's: frozensets compare as sets, `nan != nan`.
#[derive(Debug, Clone)]
pub enum Value {
    /// `None`
    None,
    /// `NotImplemented`
    NotImplemented,
    /// `Ellipsis` (`...`)
    Ellipsis,
    /// `bool`
    Bool(bool),
    /// `int` within `i64`.
    Int(i64),
    /// `int` outside `i64`.
    BigInt(BigInt),
    /// `float`
    Float(f64),
    /// `complex` (real, imaginary)
    Complex(f64, f64),
    /// `bytes`
    Bytes(Vec<u8>),
    /// `str`
    Str(String),
    /// `tuple`
    Tuple(Vec<Value>),
    /// `frozenset`, members in the order they are sent.
    FrozenSet(Vec<Value>),
    /// `slice(start, stop, step)`
    Slice(Box<[Value; 3]>),
}

impl Value {
    /// An int of any size, in canonical form.
    pub fn int(n: BigInt) -> Value {
        match n.to_i64() {
            Some(i) => Value::Int(i),
            None => Value::BigInt(n),
        }
    }

    /// A slice value.
    pub fn slice(start: Value, stop: Value, step: Value) -> Value {
        Value::Slice(Box::new([start, stop, step]))
    }

    /// The Python type name of this value (`"int"`, `"str"`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::None => "NoneType",
            Value::NotImplemented => "NotImplementedType",
            Value::Ellipsis => "ellipsis",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::BigInt(_) => "int",
            Value::Float(_) => "float",
            Value::Complex(..) => "complex",
            Value::Bytes(_) => "bytes",
            Value::Str(_) => "str",
            Value::Tuple(_) => "tuple",
            Value::FrozenSet(_) => "frozenset",
            Value::Slice(_) => "slice",
        }
    }

    /// The value as an `i64`, if it is an int (or bool, as in Python) that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            Value::Bool(b) => Some(*b as i64),
            _ => None,
        }
    }

    /// The value as a `&str`, if it is a str.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The items, if the value is a tuple.
    pub fn as_tuple(&self) -> Option<&[Value]> {
        match self {
            Value::Tuple(items) => Some(items),
            _ => None,
        }
    }

    /// Python's `repr()` of the value.
    pub fn repr(&self) -> String {
        let mut s = String::new();
        super::repr::write_repr(self, &mut s);
        s
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        use Value::*;
        match (self, other) {
            (None, None) | (NotImplemented, NotImplemented) | (Ellipsis, Ellipsis) => true,
            // Python: True == 1, 1 == 1.0; keep bools and ints apart from
            // floats here, since a wire value's type matters to callers.
            (Bool(a), Bool(b)) => a == b,
            (Int(a), Int(b)) => a == b,
            (BigInt(a), BigInt(b)) => a == b,
            (Float(a), Float(b)) => a == b,
            (Complex(a, b), Complex(c, d)) => a == c && b == d,
            (Bytes(a), Bytes(b)) => a == b,
            (Str(a), Str(b)) => a == b,
            (Tuple(a), Tuple(b)) => a == b,
            (FrozenSet(a), FrozenSet(b)) => {
                a.len() == b.len() && a.iter().all(|x| b.contains(x)) && b.iter().all(|x| a.contains(x))
            }
            (Slice(a), Slice(b)) => a == b,
            _ => false,
        }
    }
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(n: $t) -> Value { Value::Int(n as i64) }
        }
    )*};
}
from_int!(i8, i16, i32, i64, u8, u16, u32);

impl From<u64> for Value {
    fn from(n: u64) -> Value {
        Value::int(BigInt::from(n))
    }
}
impl From<i128> for Value {
    fn from(n: i128) -> Value {
        Value::int(BigInt::from(n))
    }
}
impl From<u128> for Value {
    fn from(n: u128) -> Value {
        Value::int(BigInt::from(n))
    }
}
impl From<usize> for Value {
    fn from(n: usize) -> Value {
        Value::from(n as u64)
    }
}
impl From<BigInt> for Value {
    fn from(n: BigInt) -> Value {
        Value::int(n)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}
impl From<f64> for Value {
    fn from(x: f64) -> Value {
        Value::Float(x)
    }
}
impl From<f32> for Value {
    fn from(x: f32) -> Value {
        Value::Float(x as f64)
    }
}
impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s)
    }
}
impl From<&[u8]> for Value {
    fn from(b: &[u8]) -> Value {
        Value::Bytes(b.to_vec())
    }
}
impl From<Vec<Value>> for Value {
    /// A tuple of the values.
    fn from(items: Vec<Value>) -> Value {
        Value::Tuple(items)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(o: Option<T>) -> Value {
        o.map_or(Value::None, Into::into)
    }
}
impl From<()> for Value {
    /// `()` is the empty tuple, as in Python.
    fn from(_: ()) -> Value {
        Value::Tuple(Vec::new())
    }
}

/// Encodes a value to the exact bytes `rpyc.core.brine.dump` produces.
pub fn encode(v: &Value) -> Result<Vec<u8>, BrineError> {
    let mut out = Vec::with_capacity(64);
    encode_into(v, &mut out)?;
    Ok(out)
}

/// Appends a value's encoding to `out`.
pub fn encode_into(v: &Value, out: &mut Vec<u8>) -> Result<(), BrineError> {
    match v {
        Value::None => put_none(out),
        Value::NotImplemented => out.push(tag::NOT_IMPLEMENTED),
        Value::Ellipsis => out.push(tag::ELLIPSIS),
        Value::Bool(b) => put_bool(out, *b),
        Value::Int(n) => put_int(out, *n),
        Value::BigInt(n) => put_int_text(out, &n.to_string())?,
        Value::Float(x) => put_float(out, *x),
        Value::Complex(re, im) => put_complex(out, *re, *im),
        Value::Bytes(b) => put_bytes(out, b)?,
        Value::Str(s) => put_str(out, s)?,
        Value::Tuple(items) => {
            put_tuple_header(out, items.len())?;
            for item in items {
                encode_into(item, out)?;
            }
        }
        Value::FrozenSet(items) => {
            put_frozenset_header(out, items.len())?;
            for item in items {
                encode_into(item, out)?;
            }
        }
        Value::Slice(parts) => {
            put_slice_header(out);
            for item in parts.iter() {
                encode_into(item, out)?;
            }
        }
    }
    Ok(())
}

/// Decodes one value that must span all of `data`.
pub fn decode(data: &[u8]) -> Result<Value, BrineError> {
    decode_with(data, DecodeOptions::default())
}

/// Decodes one value that must span all of `data`, with options.
pub fn decode_with(data: &[u8], opts: DecodeOptions) -> Result<Value, BrineError> {
    let mut dec = Decoder::with_options(data, opts);
    let v = read_value(&mut dec)?;
    dec.finish()?;
    Ok(v)
}

impl Decoder<'_> {
    /// Reads one whole value (a token and, for compounds, its contents).
    pub fn read_value(&mut self) -> Result<Value, BrineError> {
        read_value(self)
    }
}

fn read_value(dec: &mut Decoder<'_>) -> Result<Value, BrineError> {
    let tok = dec.next_token()?;
    token_value(dec, tok)
}

/// The most tuple items reserved before they are read (see [`read_items`]).
const MAX_PREALLOC_ITEMS: usize = 1024;

fn read_items(dec: &mut Decoder<'_>, n: usize) -> Result<Vec<Value>, BrineError> {
    dec.enter()?;
    // `n` was checked against the bytes present (each item takes one at
    // least), but an item takes far more memory than its one byte, and every
    // nesting level may claim the same bytes again: reserving `n` up front at
    // each level lets 1 MiB of input reserve gigabytes. Reserve a bounded
    // amount and let the vector grow with the items actually read.
    let mut items = Vec::with_capacity(n.min(MAX_PREALLOC_ITEMS));
    for _ in 0..n {
        items.push(read_value(dec)?);
    }
    dec.leave();
    Ok(items)
}

fn token_value(dec: &mut Decoder<'_>, tok: Token<'_>) -> Result<Value, BrineError> {
    Ok(match tok {
        Token::None => Value::None,
        Token::NotImplemented => Value::NotImplemented,
        Token::Ellipsis => Value::Ellipsis,
        Token::Bool(b) => Value::Bool(b),
        Token::Int(n) => Value::Int(n),
        Token::BigInt(text) => {
            let offset = dec.offset();
            let n: BigInt = text.parse().map_err(|_| BrineError::InvalidInt { offset })?;
            Value::int(n)
        }
        Token::Float(x) => Value::Float(x),
        Token::Complex(re, im) => Value::Complex(re, im),
        Token::Bytes(b) => Value::Bytes(b.to_vec()),
        Token::Str(s) => Value::Str(s.to_owned()),
        Token::Tuple(n) => Value::Tuple(read_items(dec, n)?),
        Token::FrozenSet(n) => Value::FrozenSet(read_items(dec, n)?),
        Token::Slice => {
            let mut parts = read_items(dec, 3)?.into_iter();
            let mut next = || parts.next().unwrap_or(Value::None);
            Value::slice(next(), next(), next())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(v: Value) {
        let b = encode(&v).unwrap();
        assert_eq!(decode(&b).unwrap(), v, "{v:?}");
    }

    #[test]
    fn round_trips() {
        rt(Value::None);
        rt(Value::from(-48));
        rt(Value::from(159));
        rt(Value::from(i64::MAX));
        rt(Value::from(u64::MAX));
        rt(Value::from(-(i128::MAX)));
        rt(Value::from("héllo 🌍"));
        rt(Value::Bytes(vec![7; 300]));
        rt(Value::Tuple((0..300).map(Value::from).collect()));
        rt(Value::FrozenSet(vec![Value::from(1), Value::from("a")]));
        rt(Value::slice(Value::None, Value::from(3), Value::from(-1)));
        rt(Value::Complex(1.5, -0.0));
        rt(Value::Float(f64::INFINITY));
    }

    #[test]
    fn docstring_example_matches_rpyc() {
        // The example from rpyc's brine docstring, with its exact bytes.
        let x = Value::Tuple(vec![
            Value::from("he"),
            Value::from(7),
            Value::from("llo"),
            Value::from(8),
            Value::Tuple(vec![]),
            Value::from(900),
            Value::None,
            Value::Bool(true),
            Value::Ellipsis,
            Value::Float(18.2),
            Value::Complex(13.0, 18.2),
            Value::slice(Value::from(1), Value::from(2), Value::from(3)),
            Value::FrozenSet(vec![Value::from(5), Value::from(6), Value::from(7)]),
            Value::NotImplemented,
        ]);
        let hex: String = encode(&x).unwrap().iter().map(|b| format!("{b:02x}")).collect();
        // rpyc's docstring shows Python 2 output (bytes, no str tag); with
        // str tags the bytes are as follows (checked against rpyc 6.0.2).
        assert_eq!(
            hex,
            "140e080b686557080c6c6c6f58021603393030000306184032333333333333\
             1b402a000000000000403233333333333319125152531a1255565705"
        );
    }

    #[test]
    fn nan_is_not_equal_to_itself() {
        let b = encode(&Value::Float(f64::NAN)).unwrap();
        match decode(&b).unwrap() {
            Value::Float(x) => assert!(x.is_nan()),
            other => panic!("{other:?}"),
        }
    }
}
