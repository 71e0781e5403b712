//! Brine: RPyC's serializer for immutable values, byte-identical to
//! `rpyc.core.brine`.
//!
//! This layer turns values into bytes and back. It is split in two levels so
//! that both object worlds share one codec:
//!
//! * the **primitive level** ([`put_int`], [`put_str`], [`put_tuple_header`],
//!   ... and the pull [`Decoder`] yielding [`Token`]s) knows tags and lengths
//!   but nothing about any tree type. The Python bindings drive it straight
//!   from and to Python objects, with no intermediate tree;
//! * the **value level** ([`Value`], [`encode`], [`decode`]) is the Rust
//!   tree built on those primitives.
//!
//! Decoding is written for hostile input: every length or count is checked
//! against the bytes actually present before anything is allocated, nesting
//! depth is bounded ([`DecodeOptions::max_depth`]), and each kind of damage
//! has its own [`BrineError`] variant.
//!
//! Use the value level to build or inspect what goes on the wire; the
//! [`Decoder`] when a value must be read without building a tree:
//!
//! ```
//! use rpyc_rs::brine::{self, BrineError, Value};
//!
//! let v = Value::Tuple(vec![Value::from(1), Value::Bytes(b"x".to_vec()), Value::from(2.5)]);
//! let bytes = brine::encode(&v)?; // what rpyc.core.brine.dump((1, b"x", 2.5)) writes
//! assert_eq!(brine::decode(&bytes)?, v);
//! // Damaged input is an error saying what and where, never a panic.
//! assert!(matches!(brine::decode(&bytes[..bytes.len() - 1]), Err(BrineError::Truncated { .. })));
//! # Ok::<(), BrineError>(())
//! ```

mod decode;
mod repr;
mod value;

pub use decode::{Decoder, Token};
pub use repr::{repr_bytes, repr_float, repr_str};
pub use value::{decode, decode_with, encode, encode_into, Value};

use std::fmt;

/// The tag bytes of the brine format (`rpyc/core/brine.py`).
pub mod tag {
    /// `None`
    pub const NONE: u8 = 0x00;
    /// `b""`
    pub const EMPTY_BYTES: u8 = 0x01;
    /// `()`
    pub const EMPTY_TUPLE: u8 = 0x02;
    /// `True`
    pub const TRUE: u8 = 0x03;
    /// `False`
    pub const FALSE: u8 = 0x04;
    /// `NotImplemented`
    pub const NOT_IMPLEMENTED: u8 = 0x05;
    /// `Ellipsis`
    pub const ELLIPSIS: u8 = 0x06;
    /// `str`: followed by a brine bytes value holding UTF-8.
    pub const UNICODE: u8 = 0x08;
    /// bytes of length 1; `BYTES1 + n - 1` for lengths 1 to 4.
    pub const BYTES1: u8 = 0x0a;
    /// bytes of length 4.
    pub const BYTES4: u8 = 0x0d;
    /// bytes with a u8 length.
    pub const BYTES_L1: u8 = 0x0e;
    /// bytes with a u32 length.
    pub const BYTES_L4: u8 = 0x0f;
    /// tuple of 1 item; `TUPLE1 + n - 1` for 1 to 4 items.
    pub const TUPLE1: u8 = 0x10;
    /// tuple of 4 items.
    pub const TUPLE4: u8 = 0x13;
    /// tuple with a u8 count.
    pub const TUPLE_L1: u8 = 0x14;
    /// tuple with a u32 count.
    pub const TUPLE_L4: u8 = 0x15;
    /// int as decimal text with a u8 length.
    pub const INT_L1: u8 = 0x16;
    /// int as decimal text with a u32 length.
    pub const INT_L4: u8 = 0x17;
    /// f64, big-endian.
    pub const FLOAT: u8 = 0x18;
    /// slice: followed by a 3-tuple (start, stop, step).
    pub const SLICE: u8 = 0x19;
    /// frozenset: followed by a tuple of the members.
    pub const FROZENSET: u8 = 0x1a;
    /// complex: two f64, real then imaginary.
    pub const COMPLEX: u8 = 0x1b;
    /// The first small-int tag; it stands for [`SMALL_INT_MIN`](super::SMALL_INT_MIN).
    pub const SMALL_INT_FIRST: u8 = 0x20;
    /// The last small-int tag; it stands for [`SMALL_INT_MAX`](super::SMALL_INT_MAX).
    pub const SMALL_INT_LAST: u8 = 0xef;
}

/// The smallest int with a one-byte encoding.
pub const SMALL_INT_MIN: i64 = -0x30;
/// The largest int with a one-byte encoding.
pub const SMALL_INT_MAX: i64 = 0x9f;
/// The default bound on tuple nesting when decoding. rpyc itself cannot
/// produce more than about 500 levels (Python's recursion limit), so this
/// refuses nothing a real peer sends while keeping the decoder's stack small.
pub const DEFAULT_MAX_DEPTH: usize = 512;

/// What can go wrong while encoding or decoding brine.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BrineError {
    /// The input ended where a tag or a fixed-size field was expected.
    Truncated {
        /// Offset at which more bytes were needed.
        offset: usize,
        /// How many bytes were needed there.
        needed: usize,
    },
    /// A length or count claims more than the bytes that are present.
    LengthTooLarge {
        /// Offset of the length field.
        offset: usize,
        /// What the length field claims.
        claimed: u64,
        /// How many bytes are left after it.
        available: usize,
    },
    /// A byte that is not a brine tag (0x07, 0x09, 0x1c-0x1f, 0xf0-0xff).
    InvalidTag {
        /// Offset of the tag.
        offset: usize,
        /// The tag byte.
        tag: u8,
    },
    /// A `str` whose bytes are not UTF-8.
    InvalidUtf8 {
        /// Offset of the string's bytes.
        offset: usize,
    },
    /// An int whose text is not a decimal integer.
    InvalidInt {
        /// Offset of the int's text.
        offset: usize,
    },
    /// An int with more digits than [`DecodeOptions::max_int_digits`].
    IntTooLong {
        /// Offset of the int's text.
        offset: usize,
        /// How many bytes of text it has.
        len: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A value of the wrong shape inside a compound: a `str` tag not followed
    /// by bytes, a slice not followed by a 3-tuple, a frozenset not followed
    /// by a tuple.
    Malformed {
        /// Offset of the compound's tag.
        offset: usize,
        /// What was expected.
        expected: &'static str,
    },
    /// Tuples nested deeper than the configured limit.
    TooDeep {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// Bytes left over after a complete value.
    TrailingBytes {
        /// Offset where the value ended.
        offset: usize,
        /// How many bytes follow it.
        extra: usize,
    },
    /// A value too large for the format (a length over `u32::MAX`).
    TooLarge {
        /// The length that does not fit.
        len: usize,
    },
}

impl fmt::Display for BrineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BrineError::Truncated { offset, needed } => {
                write!(f, "brine data truncated: {needed} more byte(s) needed at offset {offset}")
            }
            BrineError::LengthTooLarge { offset, claimed, available } => write!(
                f,
                "brine length at offset {offset} claims {claimed} but only {available} byte(s) follow"
            ),
            BrineError::InvalidTag { offset, tag } => {
                write!(f, "invalid brine tag 0x{tag:02x} at offset {offset}")
            }
            BrineError::InvalidUtf8 { offset } => {
                write!(f, "brine str at offset {offset} is not valid UTF-8")
            }
            BrineError::InvalidInt { offset } => {
                write!(f, "brine int at offset {offset} is not decimal text")
            }
            BrineError::IntTooLong { offset, len, limit } => {
                write!(f, "brine int at offset {offset} has {len} digits, more than the limit of {limit}")
            }
            BrineError::Malformed { offset, expected } => {
                write!(f, "malformed brine value at offset {offset}: expected {expected}")
            }
            BrineError::TooDeep { limit } => {
                write!(f, "brine value nested deeper than {limit} levels")
            }
            BrineError::TrailingBytes { offset, extra } => {
                write!(f, "{extra} trailing byte(s) after the brine value ending at offset {offset}")
            }
            BrineError::TooLarge { len } => {
                write!(f, "length {len} does not fit brine's 32-bit length field")
            }
        }
    }
}

impl std::error::Error for BrineError {}

/// Options for decoding.
///
/// Use them with [`decode_with`] to bound input from a peer you trust less than
/// the defaults assume, or to accept deeper or longer values from one you trust
/// more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    /// The deepest tuple nesting accepted (slices and frozensets count as a
    /// level too, since they contain a tuple).
    pub max_depth: usize,
    /// The most decimal digits an int may have. Converting decimal text to
    /// a big int takes time quadratic in its length, so without a bound a
    /// peer buys seconds of our CPU with a few kilobytes of digits. The
    /// default is CPython's (`sys.get_int_max_str_digits()`, 4300), the
    /// bound rpyc's own `int(...)` meets on a stock peer.
    pub max_int_digits: usize,
}

/// The default bound on an int's digits: CPython's default
/// `sys.get_int_max_str_digits()` (3.11+), so both object worlds refuse
/// exactly what stock Python refuses.
pub const DEFAULT_MAX_INT_DIGITS: usize = 4300;

impl DecodeOptions {
    /// The defaults with a different depth bound.
    pub fn with_max_depth(max_depth: usize) -> Self {
        DecodeOptions { max_depth, ..DecodeOptions::default() }
    }

    /// These options with a different int-digit bound (`usize::MAX`: none,
    /// as Python's `sys.set_int_max_str_digits(0)`).
    pub fn with_max_int_digits(mut self, max_int_digits: usize) -> Self {
        self.max_int_digits = max_int_digits;
        self
    }
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions { max_depth: DEFAULT_MAX_DEPTH, max_int_digits: DEFAULT_MAX_INT_DIGITS }
    }
}

// ---------------------------------------------------------------------------
// Encoding primitives. Each appends exactly what rpyc's `_dump_*` appends.
// ---------------------------------------------------------------------------

/// Appends `None`.
#[inline]
pub fn put_none(out: &mut Vec<u8>) {
    out.push(tag::NONE);
}

/// Appends a bool.
#[inline]
pub fn put_bool(out: &mut Vec<u8>, b: bool) {
    out.push(if b { tag::TRUE } else { tag::FALSE });
}

/// Appends an int that fits an `i64`, in the shortest form.
#[inline]
pub fn put_int(out: &mut Vec<u8>, n: i64) {
    if (SMALL_INT_MIN..=SMALL_INT_MAX).contains(&n) {
        out.push((n + 0x50) as u8);
    } else {
        let buf = itoa_buf(n);
        let text = buf.as_bytes();
        out.push(tag::INT_L1);
        out.push(text.len() as u8);
        out.extend_from_slice(text);
    }
}

/// Appends an int given as its decimal text (`str(n)` in Python), for ints of
/// any size. The text must be what Python's `str` gives: an optional `-` and
/// digits without leading zeros.
pub fn put_int_text(out: &mut Vec<u8>, text: &str) -> Result<(), BrineError> {
    if let Ok(n) = text.parse::<i64>() {
        if (SMALL_INT_MIN..=SMALL_INT_MAX).contains(&n) {
            put_int(out, n);
            return Ok(());
        }
    }
    put_len_prefixed(out, tag::INT_L1, tag::INT_L4, text.as_bytes())
}

/// Appends a float.
#[inline]
pub fn put_float(out: &mut Vec<u8>, x: f64) {
    out.push(tag::FLOAT);
    out.extend_from_slice(&x.to_be_bytes());
}

/// Appends a complex number.
#[inline]
pub fn put_complex(out: &mut Vec<u8>, re: f64, im: f64) {
    out.push(tag::COMPLEX);
    out.extend_from_slice(&re.to_be_bytes());
    out.extend_from_slice(&im.to_be_bytes());
}

/// Appends a bytes value.
#[inline]
pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) -> Result<(), BrineError> {
    match b.len() {
        0 => {
            out.push(tag::EMPTY_BYTES);
            Ok(())
        }
        n @ 1..=4 => {
            out.push(tag::BYTES1 + (n as u8 - 1));
            out.extend_from_slice(b);
            Ok(())
        }
        _ => put_len_prefixed(out, tag::BYTES_L1, tag::BYTES_L4, b),
    }
}

/// Appends a `str` (its UTF-8 bytes behind the unicode tag).
#[inline]
pub fn put_str(out: &mut Vec<u8>, s: &str) -> Result<(), BrineError> {
    out.push(tag::UNICODE);
    put_bytes(out, s.as_bytes())
}

/// Appends the header of a tuple of `len` items; the items follow.
#[inline]
pub fn put_tuple_header(out: &mut Vec<u8>, len: usize) -> Result<(), BrineError> {
    match len {
        0 => out.push(tag::EMPTY_TUPLE),
        1..=4 => out.push(tag::TUPLE1 + (len as u8 - 1)),
        5..=255 => {
            out.push(tag::TUPLE_L1);
            out.push(len as u8);
        }
        _ => {
            let n = u32::try_from(len).map_err(|_| BrineError::TooLarge { len })?;
            out.push(tag::TUPLE_L4);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
    Ok(())
}

/// Appends the slice tag; a 3-tuple `(start, stop, step)` must follow.
#[inline]
pub fn put_slice_header(out: &mut Vec<u8>) {
    out.push(tag::SLICE);
    out.push(tag::TUPLE1 + 2);
}

/// Appends the frozenset tag and the header of the tuple of its `len` members.
#[inline]
pub fn put_frozenset_header(out: &mut Vec<u8>, len: usize) -> Result<(), BrineError> {
    out.push(tag::FROZENSET);
    put_tuple_header(out, len)
}

fn put_len_prefixed(out: &mut Vec<u8>, l1: u8, l4: u8, body: &[u8]) -> Result<(), BrineError> {
    if body.len() < 256 {
        out.push(l1);
        out.push(body.len() as u8);
    } else {
        let n = u32::try_from(body.len()).map_err(|_| BrineError::TooLarge { len: body.len() })?;
        out.push(l4);
        out.extend_from_slice(&n.to_be_bytes());
    }
    out.extend_from_slice(body);
    Ok(())
}

/// A stack buffer holding an i64's decimal text, so encoding an int does not
/// allocate.
struct ItoaBuf {
    bytes: [u8; 20],
    start: usize,
}

impl ItoaBuf {
    fn as_bytes(&self) -> &[u8] {
        &self.bytes[self.start..]
    }
}

/// "00" to "99": two digits per division. Id packs carry two 15-digit
/// ints, and every request names at least one.
const DIGIT_PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

fn itoa_buf(n: i64) -> ItoaBuf {
    let mut bytes = [0u8; 20];
    let mut i = bytes.len();
    let neg = n < 0;
    let mut m = n.unsigned_abs();
    while m >= 100 {
        let pair = (m % 100) as usize * 2;
        m /= 100;
        i -= 2;
        bytes[i..i + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    }
    if m >= 10 {
        let pair = m as usize * 2;
        i -= 2;
        bytes[i..i + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    } else {
        i -= 1;
        bytes[i] = b'0' + m as u8;
    }
    if neg {
        i -= 1;
        bytes[i] = b'-';
    }
    ItoaBuf { bytes, start: i }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_ints_use_one_byte() {
        for n in SMALL_INT_MIN..=SMALL_INT_MAX {
            let mut out = Vec::new();
            put_int(&mut out, n);
            assert_eq!(out, [(n + 0x50) as u8]);
        }
        // Every length, both signs, against Rust's own formatting.
        for k in 0..19 {
            for n in
                [10i64.pow(k), 10i64.pow(k) + 7, 10i64.pow(k) * 9 + 9, 140_565_824_180_000 / 10i64.pow(k)]
            {
                for n in [n, -n] {
                    assert_eq!(itoa_buf(n).as_bytes(), n.to_string().as_bytes());
                }
            }
        }
        assert_eq!(itoa_buf(i64::MAX).as_bytes(), i64::MAX.to_string().as_bytes());
        let mut out = Vec::new();
        put_int(&mut out, 160);
        assert_eq!(out, b"\x16\x03160");
        out.clear();
        put_int(&mut out, i64::MIN);
        assert_eq!(&out[2..], b"-9223372036854775808");
    }
}
