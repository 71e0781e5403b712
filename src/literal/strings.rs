//! String and bytes literals: prefixes, quotes, escapes, concatenation.
//!
//! The grammar hands over at a quote or a prefix like `rb'`. Adjacent
//! literals are joined here, so what comes back is one str or bytes
//! [`Value`].

use super::{is_ident_start, LiteralError, Parser};
use crate::brine::Value;

/// A parsed string literal: text or bytes, before concatenation.
enum StrPiece {
    Text(String),
    Bytes(Vec<u8>),
}

impl Parser<'_> {
    /// The length of a string prefix (`r`, `b`, `rb`, `u`, ...) followed by
    /// a quote at the current position, if there is one.
    pub(super) fn string_prefix_len(&self) -> Option<usize> {
        let rest = self.rest().as_bytes();
        let n = rest.iter().take(3).take_while(|b| b.is_ascii_alphabetic()).count();
        if n == 0 || n > 2 || !matches!(rest.get(n), Some(b'\'' | b'"')) {
            return None;
        }
        Some(n)
    }

    /// One or more adjacent string literals, concatenated.
    pub(super) fn strings(&mut self) -> Result<Value, LiteralError> {
        let start = self.pos;
        let mut acc = self.string()?;
        loop {
            let save = self.pos;
            self.skip_ws();
            let next = match self.peek() {
                Some('\'' | '"') => true,
                Some(c) if is_ident_start(c) => self.string_prefix_len().is_some(),
                _ => false,
            };
            if !next {
                self.pos = save;
                break;
            }
            let piece = self.string()?;
            acc = match (acc, piece) {
                (StrPiece::Text(mut a), StrPiece::Text(b)) => {
                    a.push_str(&b);
                    StrPiece::Text(a)
                }
                (StrPiece::Bytes(mut a), StrPiece::Bytes(b)) => {
                    a.extend_from_slice(&b);
                    StrPiece::Bytes(a)
                }
                _ => return Err(self.error_at(start, "cannot mix bytes and nonbytes literals")),
            };
        }
        Ok(match acc {
            StrPiece::Text(s) => Value::Str(s),
            StrPiece::Bytes(b) => Value::Bytes(b),
        })
    }

    fn string(&mut self) -> Result<StrPiece, LiteralError> {
        let start = self.pos;
        let prefix_len = self.string_prefix_len().unwrap_or(0);
        let prefix = self.src[self.pos..self.pos + prefix_len].to_ascii_lowercase();
        let (raw, bytes) = match prefix.as_str() {
            "" | "u" => (false, false),
            "r" => (true, false),
            "b" => (false, true),
            "rb" | "br" => (true, true),
            "f" | "rf" | "fr" => {
                return Err(self.error_at(start, "f-strings are expressions, not literals"));
            }
            other => return Err(self.error_at(start, format!("invalid string prefix {other:?}"))),
        };
        self.pos += prefix_len;
        let Some(quote) = self.bump() else { return Err(self.error("expected a quote")) };
        let triple = self.peek() == Some(quote) && self.peek_at(1) == Some(quote);
        if triple {
            self.pos += 2;
        }
        let mut out: Vec<u8> = Vec::new();
        let mut text = String::new();
        let push = |c: char, out: &mut Vec<u8>, text: &mut String| {
            if bytes {
                out.push(c as u8);
            } else {
                text.push(c);
            }
        };
        loop {
            let here = self.pos;
            let Some(c) = self.bump() else {
                return Err(self.error_at(start, "unterminated string literal"));
            };
            if c == quote {
                if !triple {
                    break;
                }
                if self.peek() == Some(quote) && self.peek_at(1) == Some(quote) {
                    self.pos += 2;
                    break;
                }
            }
            if c == '\n' && !triple {
                return Err(self.error_at(start, "unterminated string literal (a newline inside quotes)"));
            }
            if bytes && !c.is_ascii() {
                return Err(self.error_at(here, "bytes can only contain ASCII literal characters"));
            }
            if c != '\\' {
                push(c, &mut out, &mut text);
                continue;
            }
            let Some(e) = self.bump() else {
                return Err(self.error_at(start, "unterminated string literal"));
            };
            if raw {
                // A raw string keeps the backslash; it only stops the quote
                // after it from ending the string.
                if bytes && !e.is_ascii() {
                    return Err(self.error_at(here, "bytes can only contain ASCII literal characters"));
                }
                push('\\', &mut out, &mut text);
                push(e, &mut out, &mut text);
                continue;
            }
            match e {
                '\n' => {}
                '\\' | '\'' | '"' => push(e, &mut out, &mut text),
                'a' => push('\x07', &mut out, &mut text),
                'b' => push('\x08', &mut out, &mut text),
                'f' => push('\x0c', &mut out, &mut text),
                'n' => push('\n', &mut out, &mut text),
                'r' => push('\r', &mut out, &mut text),
                't' => push('\t', &mut out, &mut text),
                'v' => push('\x0b', &mut out, &mut text),
                '0'..='7' => {
                    let mut n = e.to_digit(8).unwrap_or(0);
                    for _ in 0..2 {
                        match self.peek().and_then(|d| d.to_digit(8)) {
                            Some(d) => {
                                n = n * 8 + d;
                                self.bump();
                            }
                            None => break,
                        }
                    }
                    if bytes {
                        let b = u8::try_from(n).map_err(|_| {
                            self.error_at(here, format!("octal escape \\{n:o} is out of range for bytes"))
                        })?;
                        out.push(b);
                    } else {
                        text.push(char::from_u32(n).unwrap_or('\u{fffd}'));
                    }
                }
                'x' => {
                    let n = self.hex_escape(here, 2, "\\xhh")?;
                    if bytes {
                        out.push(n as u8);
                    } else {
                        text.push(char::from_u32(n).unwrap_or('\u{fffd}'));
                    }
                }
                'u' | 'U' if !bytes => {
                    let (len, form) = if e == 'u' { (4, "\\uXXXX") } else { (8, "\\UXXXXXXXX") };
                    let n = self.hex_escape(here, len, form)?;
                    let ch = char::from_u32(n).ok_or_else(|| {
                        self.error_at(here, format!("\\{e}{n:x} is not a character that UTF-8 can carry"))
                    })?;
                    text.push(ch);
                }
                'N' if !bytes => {
                    return Err(self.error_at(here, "\\N{...} escapes are not supported; use \\uXXXX"));
                }
                other => {
                    // Python keeps unknown escapes as they are (with a
                    // warning); so do we.
                    if bytes && !other.is_ascii() {
                        return Err(self.error_at(here, "bytes can only contain ASCII literal characters"));
                    }
                    push('\\', &mut out, &mut text);
                    push(other, &mut out, &mut text);
                }
            }
        }
        Ok(if bytes { StrPiece::Bytes(out) } else { StrPiece::Text(text) })
    }

    fn hex_escape(&mut self, at: usize, len: usize, form: &str) -> Result<u32, LiteralError> {
        let mut n: u32 = 0;
        for _ in 0..len {
            match self.peek().and_then(|d| d.to_digit(16)) {
                Some(d) => {
                    n = n.wrapping_mul(16).wrapping_add(d);
                    self.bump();
                }
                None => return Err(self.error_at(at, format!("truncated {form} escape"))),
            }
        }
        Ok(n)
    }
}
