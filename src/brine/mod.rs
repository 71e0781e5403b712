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

mod repr;
mod value;

pub use repr::{repr_bytes, repr_float, repr_str};
pub use value::{decode, decode_with, encode, encode_into, Value};

use std::fmt;

use byteorder::{BigEndian, ByteOrder};

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    /// The deepest tuple nesting accepted (slices and frozensets count as a
    /// level too, since they contain a tuple).
    pub max_depth: usize,
    /// The most digits an int may have. Converting decimal text to a big
    /// int takes time quadratic in its length, so a peer could otherwise
    /// stall us with a few megabytes of digits (Python itself refuses more
    /// than 4300 digits since 3.11).
    pub max_int_digits: usize,
}

/// The default bound on an int's digits: far beyond any real value, and
/// converted in a few milliseconds.
pub const DEFAULT_MAX_INT_DIGITS: usize = 100_000;

impl DecodeOptions {
    /// The defaults with a different depth bound.
    pub fn with_max_depth(max_depth: usize) -> Self {
        DecodeOptions { max_depth, ..DecodeOptions::default() }
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

fn itoa_buf(n: i64) -> ItoaBuf {
    let mut bytes = [0u8; 20];
    let mut i = bytes.len();
    let neg = n < 0;
    let mut m = n.unsigned_abs();
    loop {
        i -= 1;
        bytes[i] = b'0' + (m % 10) as u8;
        m /= 10;
        if m == 0 {
            break;
        }
    }
    if neg {
        i -= 1;
        bytes[i] = b'-';
    }
    ItoaBuf { bytes, start: i }
}

// ---------------------------------------------------------------------------
// Decoding: a pull parser yielding one token per tag.
// ---------------------------------------------------------------------------

/// One decoded brine item. Compound items ([`Token::Tuple`], [`Token::Slice`],
/// [`Token::FrozenSet`]) are headers: their contents are the next tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Token<'a> {
    /// `None`
    None,
    /// `NotImplemented`
    NotImplemented,
    /// `Ellipsis`
    Ellipsis,
    /// `True` / `False`
    Bool(bool),
    /// An int that fits `i64`.
    Int(i64),
    /// An int outside `i64`, as validated decimal text (optional sign, digits).
    BigInt(&'a str),
    /// A float.
    Float(f64),
    /// A complex number (real, imaginary).
    Complex(f64, f64),
    /// A bytes value.
    Bytes(&'a [u8]),
    /// A `str`, already checked to be UTF-8.
    Str(&'a str),
    /// A tuple header: this many items follow.
    Tuple(usize),
    /// A slice header: three tokens (start, stop, step) follow.
    Slice,
    /// A frozenset header: this many member tokens follow.
    FrozenSet(usize),
}

/// A pull decoder over a byte slice. It tracks nesting depth for its callers
/// through [`Decoder::enter`] / [`Decoder::leave`].
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    data: &'a [u8],
    pos: usize,
    depth: usize,
    max_depth: usize,
    max_int_digits: usize,
}

impl<'a> Decoder<'a> {
    /// A decoder with the default options.
    pub fn new(data: &'a [u8]) -> Self {
        Self::with_options(data, DecodeOptions::default())
    }

    /// A decoder with the given options.
    pub fn with_options(data: &'a [u8], opts: DecodeOptions) -> Self {
        Decoder { data, pos: 0, depth: 0, max_depth: opts.max_depth, max_int_digits: opts.max_int_digits }
    }

    /// The offset of the next unread byte.
    pub fn offset(&self) -> usize {
        self.pos
    }

    /// How many bytes are left.
    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    /// Fails with [`BrineError::TrailingBytes`] unless all input was consumed.
    pub fn finish(&self) -> Result<(), BrineError> {
        if self.pos == self.data.len() {
            Ok(())
        } else {
            Err(BrineError::TrailingBytes { offset: self.pos, extra: self.remaining() })
        }
    }

    /// Notes that the caller descends into a compound; fails past the limit.
    #[inline]
    pub fn enter(&mut self) -> Result<(), BrineError> {
        if self.depth >= self.max_depth {
            return Err(BrineError::TooDeep { limit: self.max_depth });
        }
        self.depth += 1;
        Ok(())
    }

    /// Notes that the caller left a compound.
    #[inline]
    pub fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8], BrineError> {
        if self.remaining() < n {
            return Err(BrineError::Truncated { offset: self.pos, needed: n - self.remaining() });
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    #[inline]
    fn take_u8(&mut self) -> Result<u8, BrineError> {
        Ok(self.take(1)?[0])
    }

    #[inline]
    fn take_u32(&mut self) -> Result<u32, BrineError> {
        Ok(BigEndian::read_u32(self.take(4)?))
    }

    #[inline]
    fn take_f64(&mut self) -> Result<f64, BrineError> {
        Ok(BigEndian::read_f64(self.take(8)?))
    }

    /// Reads a length field that must be followed by at least
    /// `len * min_item` bytes, and refuses a claim the input cannot back.
    #[inline]
    fn take_len(&mut self, wide: bool, min_item: usize) -> Result<usize, BrineError> {
        let offset = self.pos;
        let claimed = if wide { self.take_u32()? as u64 } else { self.take_u8()? as u64 };
        let available = self.remaining();
        if claimed.saturating_mul(min_item as u64) > available as u64 {
            return Err(BrineError::LengthTooLarge { offset, claimed, available });
        }
        Ok(claimed as usize)
    }

    fn bytes_body(&mut self, tag: u8, tag_offset: usize) -> Result<&'a [u8], BrineError> {
        match tag {
            tag::EMPTY_BYTES => Ok(&[]),
            tag::BYTES1..=tag::BYTES4 => self.take((tag - tag::BYTES1 + 1) as usize),
            tag::BYTES_L1 | tag::BYTES_L4 => {
                let n = self.take_len(tag == tag::BYTES_L4, 1)?;
                self.take(n)
            }
            _ => Err(BrineError::Malformed { offset: tag_offset, expected: "bytes after str tag" }),
        }
    }

    fn int_text(&mut self, wide: bool) -> Result<Token<'a>, BrineError> {
        let n = self.take_len(wide, 1)?;
        let offset = self.pos;
        // Room for a sign and surrounding whitespace beyond the digits.
        if n > self.max_int_digits.saturating_add(8) {
            return Err(BrineError::IntTooLong { offset, len: n, limit: self.max_int_digits });
        }
        let raw = self.take(n)?;
        parse_int_text(raw).ok_or(BrineError::InvalidInt { offset })
    }

    /// Reads the next token.
    pub fn next_token(&mut self) -> Result<Token<'a>, BrineError> {
        let offset = self.pos;
        let t = self.take_u8()?;
        Ok(match t {
            tag::NONE => Token::None,
            tag::EMPTY_BYTES => Token::Bytes(&[]),
            tag::EMPTY_TUPLE => Token::Tuple(0),
            tag::TRUE => Token::Bool(true),
            tag::FALSE => Token::Bool(false),
            tag::NOT_IMPLEMENTED => Token::NotImplemented,
            tag::ELLIPSIS => Token::Ellipsis,
            tag::UNICODE => {
                let inner_tag = self.take_u8()?;
                let b = self.bytes_body(inner_tag, offset)?;
                // The bytes end where we are now (an L1/L4 length field
                // comes before them).
                let body_offset = self.pos - b.len();
                Token::Str(utf8(b).ok_or(BrineError::InvalidUtf8 { offset: body_offset })?)
            }
            tag::BYTES1..=tag::BYTES_L4 => Token::Bytes(self.bytes_body(t, offset)?),
            tag::TUPLE1..=tag::TUPLE4 => Token::Tuple((t - tag::TUPLE1 + 1) as usize),
            tag::TUPLE_L1 | tag::TUPLE_L4 => Token::Tuple(self.take_len(t == tag::TUPLE_L4, 1)?),
            tag::INT_L1 | tag::INT_L4 => self.int_text(t == tag::INT_L4)?,
            tag::FLOAT => Token::Float(self.take_f64()?),
            tag::SLICE => {
                let inner = self.take_u8()?;
                if inner != tag::TUPLE1 + 2 {
                    return Err(BrineError::Malformed { offset, expected: "3-tuple after slice tag" });
                }
                Token::Slice
            }
            tag::FROZENSET => match self.next_token() {
                Ok(Token::Tuple(n)) => Token::FrozenSet(n),
                Ok(_) => return Err(BrineError::Malformed { offset, expected: "tuple after frozenset tag" }),
                Err(e) => return Err(e),
            },
            tag::COMPLEX => {
                let re = self.take_f64()?;
                let im = self.take_f64()?;
                Token::Complex(re, im)
            }
            tag::SMALL_INT_FIRST..=tag::SMALL_INT_LAST => Token::Int(t as i64 - 0x50),
            _ => return Err(BrineError::InvalidTag { offset, tag: t }),
        })
    }
}

/// Checks UTF-8, with the all-ASCII case (most strings on the wire) first.
#[inline]
fn utf8(b: &[u8]) -> Option<&str> {
    if b.is_ascii() {
        // SAFETY: ASCII is valid UTF-8.
        Some(unsafe { std::str::from_utf8_unchecked(b) })
    } else {
        std::str::from_utf8(b).ok()
    }
}

/// Parses brine int text. rpyc writes `str(n)`; like Python's `int()` we also
/// accept a leading `+` and surrounding ASCII whitespace, but nothing else.
fn parse_int_text(raw: &[u8]) -> Option<Token<'_>> {
    // Fast path for what rpyc writes for ints that fit i64: an optional '-'
    // and at most 18 digits (so no overflow is possible).
    let (neg, digits) = match raw.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, raw),
    };
    if !digits.is_empty() && digits.len() <= 18 && digits.iter().all(u8::is_ascii_digit) {
        let n = digits.iter().fold(0i64, |n, d| n * 10 + (d - b'0') as i64);
        return Some(Token::Int(if neg { -n } else { n }));
    }
    let text = std::str::from_utf8(raw).ok()?.trim_matches(|c: char| c.is_ascii_whitespace());
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match text.parse::<i64>() {
        Ok(n) => Some(Token::Int(n)),
        Err(_) => Some(Token::BigInt(text)),
    }
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
        let mut out = Vec::new();
        put_int(&mut out, 160);
        assert_eq!(out, b"\x16\x03160");
        out.clear();
        put_int(&mut out, i64::MIN);
        assert_eq!(&out[2..], b"-9223372036854775808");
    }

    #[test]
    fn int_text_forms() {
        assert_eq!(parse_int_text(b" +12 "), Some(Token::Int(12)));
        assert_eq!(parse_int_text(b"-99999999999999999999"), Some(Token::BigInt("-99999999999999999999")));
        assert_eq!(parse_int_text(b"1_0"), None);
        assert_eq!(parse_int_text(b"-"), None);
        assert_eq!(parse_int_text(b""), None);
    }
}
