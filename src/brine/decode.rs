//! Brine decoding: a pull parser yielding one [`Token`] per tag, with the
//! bounds that make hostile input safe (lengths checked against the bytes
//! present, a nesting limit, an int-digit limit).
//!
//! It builds nothing: the Rust [`Value`](super::Value) tree and the Python
//! bindings each turn tokens into their own objects, and
//! [`Decoder::skip_value`] checks a value without building anything.

use byteorder::{BigEndian, ByteOrder};

use super::{tag, BrineError, DecodeOptions};

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
///
/// Use it to read brine without building a [`Value`](crate::brine::Value) tree
/// (the Python bindings make Python objects straight from it);
/// [`decode`](crate::brine::decode) is the simple way.
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
        let token = parse_int_text(raw).ok_or(BrineError::InvalidInt { offset })?;
        if let Token::BigInt(text) = token {
            // The length check above allows for a sign and whitespace;
            // the digits themselves are held to the limit exactly, as
            // CPython's `int()` does.
            let digits = text.bytes().filter(u8::is_ascii_digit).count();
            if digits > self.max_int_digits {
                return Err(BrineError::IntTooLong { offset, len: digits, limit: self.max_int_digits });
            }
        }
        Ok(token)
    }

    /// Reads one whole value (a compound with everything in it) without
    /// building anything: for checking that bytes are well-formed brine
    /// within the limits before acting on any of them.
    pub fn skip_value(&mut self) -> Result<(), BrineError> {
        // Items still to read at each open level; one value at the start.
        // Messages nest a few levels deep, so the first levels live on the
        // stack: checking a message allocates nothing.
        const INLINE: usize = 16;
        let mut inline = [0usize; INLINE];
        let mut deeper: Vec<usize> = Vec::new();
        let mut depth = 0usize;
        let mut left = 1usize;
        loop {
            if left == 0 {
                if depth == 0 {
                    return Ok(());
                }
                depth -= 1;
                left = if depth < INLINE { inline[depth] } else { deeper.pop().unwrap_or(0) };
                self.leave();
                continue;
            }
            left -= 1;
            let Some(n) = self.skip_token()? else {
                continue;
            };
            self.enter()?;
            if depth < INLINE {
                inline[depth] = left;
            } else {
                deeper.push(left);
            }
            depth += 1;
            left = n;
        }
    }

    /// Steps over one token, accepting and refusing exactly what
    /// [`Decoder::next_token`] does; `Some(n)` for the header of a compound
    /// of `n` items. The tokens messages are mostly made of (one-byte tags,
    /// short ints as text, short ASCII strs and bytes) are checked here
    /// without making a [`Token`]; the rest, and anything doubtful, go
    /// through `next_token` from the same place. Every message is checked
    /// this way before it is decoded, so this is on every request's path.
    #[inline]
    fn skip_token(&mut self) -> Result<Option<usize>, BrineError> {
        let data = self.data;
        let at = self.pos;
        let Some(&t) = data.get(at) else {
            return self.skip_token_slowly();
        };
        let end = match t {
            tag::NONE | tag::EMPTY_BYTES | tag::TRUE | tag::FALSE | tag::NOT_IMPLEMENTED | tag::ELLIPSIS => {
                at + 1
            }
            tag::SMALL_INT_FIRST..=tag::SMALL_INT_LAST => at + 1,
            tag::EMPTY_TUPLE => {
                self.pos = at + 1;
                return Ok(Some(0));
            }
            tag::TUPLE1..=tag::TUPLE4 => {
                self.pos = at + 1;
                return Ok(Some((t - tag::TUPLE1 + 1) as usize));
            }
            tag::BYTES1..=tag::BYTES4 => at + 1 + (t - tag::BYTES1 + 1) as usize,
            tag::BYTES_L1 => match data.get(at + 1) {
                Some(&n) => at + 2 + n as usize,
                None => return self.skip_token_slowly(),
            },
            tag::UNICODE => match short_body(data, at + 1) {
                Some(body) if data.get(body.clone()).is_some_and(<[u8]>::is_ascii) => body.end,
                _ => return self.skip_token_slowly(),
            },
            tag::INT_L1 => match data.get(at + 1) {
                Some(&n) if n as usize <= self.max_int_digits.saturating_add(8) => {
                    let end = at + 2 + n as usize;
                    match data.get(at + 2..end) {
                        Some(text) if is_short_int_text(text) => end,
                        _ => return self.skip_token_slowly(),
                    }
                }
                _ => return self.skip_token_slowly(),
            },
            _ => return self.skip_token_slowly(),
        };
        if end > data.len() {
            return self.skip_token_slowly();
        }
        self.pos = end;
        Ok(None)
    }

    /// [`Decoder::skip_token`] through [`Decoder::next_token`].
    #[cold]
    fn skip_token_slowly(&mut self) -> Result<Option<usize>, BrineError> {
        Ok(match self.next_token()? {
            Token::Tuple(n) | Token::FrozenSet(n) => Some(n),
            Token::Slice => Some(3),
            _ => None,
        })
    }

    /// Reads one whole value, as [`Decoder::skip_value`], and hands back
    /// its encoded bytes: for callers that recognise a value by its wire
    /// form (the engine finds a local object's key this way without
    /// building the key).
    pub fn value_bytes(&mut self) -> Result<&'a [u8], BrineError> {
        let start = self.pos;
        self.skip_value()?;
        Ok(&self.data[start..self.pos])
    }

    /// The bytes of the next value when it is a tuple of one to four
    /// plain scalars (small or L1 ints, `None`, bools, short bytes, strs
    /// with a u8 length), stepping past it; `None`, without moving, for
    /// anything else or too little input.
    ///
    /// Only lengths are read: digits and UTF-8 are not checked. It is for
    /// callers that match the bytes against values they encoded themselves
    /// (an id pack sent back to us), where equal bytes are well-formed by
    /// construction; anything unmatched must then be decoded the checked
    /// way, from where this started. What it saves is [`Decoder::value_bytes`]'s
    /// token-by-token walk (about a third of a native DEL's decoding).
    pub fn flat_tuple_bytes(&mut self) -> Option<&'a [u8]> {
        let data = self.data;
        let start = self.pos;
        let count = match *data.get(start)? {
            t @ tag::TUPLE1..=tag::TUPLE4 => (t - tag::TUPLE1 + 1) as usize,
            _ => return None,
        };
        let mut at = start + 1;
        for _ in 0..count {
            let mut t = *data.get(at)?;
            if t == tag::UNICODE {
                at += 1;
                t = *data.get(at)?;
                if !matches!(t, tag::EMPTY_BYTES | tag::BYTES1..=tag::BYTES4 | tag::BYTES_L1) {
                    return None;
                }
            }
            at += match t {
                tag::NONE | tag::EMPTY_BYTES | tag::EMPTY_TUPLE | tag::TRUE | tag::FALSE => 1,
                tag::SMALL_INT_FIRST..=tag::SMALL_INT_LAST => 1,
                tag::BYTES1..=tag::BYTES4 => 1 + (t - tag::BYTES1 + 1) as usize,
                tag::BYTES_L1 | tag::INT_L1 => 2 + *data.get(at + 1)? as usize,
                _ => return None,
            };
        }
        let bytes = data.get(start..at)?;
        self.pos = at;
        Some(bytes)
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

/// Where the body of a str's bytes value starting at `at` lies, for the
/// short forms (`EMPTY_BYTES`, `BYTES1`..`BYTES4`, `BYTES_L1`); `None` for
/// anything else. The range may run past the input: the caller checks.
#[inline]
fn short_body(data: &[u8], at: usize) -> Option<std::ops::Range<usize>> {
    let t = *data.get(at)?;
    match t {
        tag::EMPTY_BYTES => Some(at + 1..at + 1),
        tag::BYTES1..=tag::BYTES4 => Some(at + 1..at + 2 + (t - tag::BYTES1) as usize),
        tag::BYTES_L1 => {
            let n = *data.get(at + 1)? as usize;
            Some(at + 2..at + 2 + n)
        }
        _ => None,
    }
}

/// True for the int text that [`parse_int_text`] reads on its fast path
/// (an optional `-`, then 1 to 18 digits): valid, and an `i64`.
#[inline]
fn is_short_int_text(raw: &[u8]) -> bool {
    let digits = match raw.split_first() {
        Some((b'-', rest)) => rest,
        _ => raw,
    };
    !digits.is_empty() && digits.len() <= 18 && digits.iter().all(u8::is_ascii_digit)
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
#[path = "decode_tests.rs"]
mod tests;
