//! Python literals as text, parsed into brine [`Value`]s.
//!
//! The command-line tool takes call arguments the way a Python user writes
//! them (`42`, `-1.5e3`, `'it\'s'`, `b'\x00'`, `(1, 'a')`, `None`), and this
//! module turns such text into the values that go on the wire. It accepts
//! what `ast.literal_eval` accepts, restricted to what brine can carry:
//!
//! * `None`, `True`, `False`, `Ellipsis` / `...`, `NotImplemented`;
//! * ints of any size, in decimal, hex (`0x`), octal (`0o`) and binary
//!   (`0b`), with `_` separators and a sign;
//! * floats (`1.5`, `.5`, `1.`, `-2e3`, `1_000.0`), and `float('inf')`,
//!   `float('-inf')`, `float('nan')` for the values Python has no literal for;
//! * complex numbers (`2j`, `1+2j`, `-1.5-0.5j`);
//! * strings and bytes in single, double or triple quotes, with the `r`,
//!   `u`, `b`, `rb`/`br` prefixes, every escape Python knows except
//!   `\N{...}`, and adjacent literals concatenated (`'a' 'b'`);
//! * tuples: `()`, `(1,)`, `(1, 'a', (2, 3))`, and a bare `1, 2` at the top.
//!
//! Lists, dicts and sets are refused with a hint: RPyC sends them by
//! reference, so they cannot be written as values. A bare word is refused
//! too (`name 'foo' is not a literal`), since a shell has already stripped
//! the quotes a user meant to pass a string with.
//!
//! Use it to let people type values for a peer (a command line, a config
//! file):
//!
//! ```
//! use rpyc_rs::{literal, Value};
//!
//! assert_eq!(literal::parse("(1, 'a')")?, Value::Tuple(vec![Value::from(1), Value::from("a")]));
//! assert_eq!(literal::parse("0x_ff")?, Value::from(255));
//! assert!(literal::parse("[1, 2]").is_err()); // a list goes by reference, not as a value
//! # Ok::<(), rpyc_rs::literal::LiteralError>(())
//! ```

use std::fmt;

use num_bigint::BigInt;
use num_traits::Num;

use crate::brine::Value;

/// The deepest tuple nesting accepted. Literals come from people, not
/// peers, but a recursive parser still must not overflow its stack.
const MAX_DEPTH: usize = 100;

/// Why some text is not a Python literal, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiteralError {
    /// The byte offset in the input where the problem was found.
    pub offset: usize,
    /// What is wrong, in words a person can act on.
    pub message: String,
}

impl fmt::Display for LiteralError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at column {})", self.message, self.offset + 1)
    }
}

impl std::error::Error for LiteralError {}

/// Parses `text` as one Python literal (a top-level `1, 2` is a tuple, as
/// in Python).
///
/// ```
/// use rpyc_rs::brine::Value;
/// use rpyc_rs::literal::parse;
///
/// assert_eq!(parse("(1, 'a')").unwrap(), Value::Tuple(vec![Value::from(1), Value::from("a")]));
/// assert_eq!(parse("b'\\x00'").unwrap(), Value::Bytes(vec![0]));
/// assert!(parse("foo").is_err());
/// ```
pub fn parse(text: &str) -> Result<Value, LiteralError> {
    let mut p = Parser { src: text, pos: 0, depth: 0 };
    p.skip_ws();
    if p.at_end() {
        return Err(p.error("empty literal (to pass an empty string, write '')"));
    }
    let first = p.expr()?;
    p.skip_ws();
    let value = if p.peek() == Some(',') {
        // `1, 2` is a tuple, as `ast.literal_eval("1, 2")` says.
        let mut items = vec![first];
        while p.eat(',') {
            p.skip_ws();
            if p.at_end() {
                break;
            }
            items.push(p.expr()?);
            p.skip_ws();
        }
        Value::Tuple(items)
    } else {
        first
    };
    p.skip_ws();
    if !p.at_end() {
        return Err(p.error(format!("unexpected {:?} after the literal", p.rest_preview())));
    }
    Ok(value)
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    depth: usize,
}

/// A parsed string literal: text or bytes, before concatenation.
enum StrPiece {
    Text(String),
    Bytes(Vec<u8>),
}

impl<'a> Parser<'a> {
    fn error(&self, message: impl Into<String>) -> LiteralError {
        self.error_at(self.pos, message)
    }

    fn error_at(&self, offset: usize, message: impl Into<String>) -> LiteralError {
        LiteralError { offset, message: message.into() }
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn rest_preview(&self) -> String {
        self.rest().chars().take(20).collect()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.rest().chars().nth(n)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_whitespace() {
                self.pos += c.len_utf8();
            } else {
                break;
            }
        }
    }

    /// A value, possibly `real ± imaginary` (the one binary operation
    /// `ast.literal_eval` allows).
    fn expr(&mut self) -> Result<Value, LiteralError> {
        let start = self.pos;
        let left = self.unary()?;
        self.skip_ws();
        let Some(op @ ('+' | '-')) = self.peek() else { return Ok(left) };
        let op_pos = self.pos;
        self.bump();
        self.skip_ws();
        let right = self.unary()?;
        let real = match left {
            Value::Int(n) => n as f64,
            Value::BigInt(ref n) => big_to_f64(n),
            Value::Float(x) => x,
            _ => return Err(self.error_at(op_pos, "only `real + imaginary` (like 1+2j) may be added")),
        };
        // An imaginary literal parses as complex(0, x); anything else here
        // would be arithmetic, which is not a literal.
        let imag = match right {
            Value::Complex(re, im) => (re == 0.0).then_some(im),
            _ => None,
        };
        let Some(imag) = imag else {
            return Err(self.error_at(
                start,
                "only `real + imaginary` (like 1+2j) may be added; arithmetic is not a literal",
            ));
        };
        Ok(Value::Complex(real, if op == '-' { -imag } else { imag }))
    }

    /// A value with an optional sign; only numbers take one.
    fn unary(&mut self) -> Result<Value, LiteralError> {
        let start = self.pos;
        let neg = match self.peek() {
            Some('-') => true,
            Some('+') => false,
            _ => return self.atom(),
        };
        self.bump();
        self.skip_ws();
        let v = self.atom()?;
        if !neg {
            return match v {
                Value::Int(_) | Value::BigInt(_) | Value::Float(_) | Value::Complex(..) => Ok(v),
                other => Err(self.error_at(start, format!("a sign cannot apply to {}", other.type_name()))),
            };
        }
        match v {
            Value::Int(n) => Ok(n.checked_neg().map_or_else(|| Value::int(-BigInt::from(n)), Value::Int)),
            Value::BigInt(n) => Ok(Value::int(-n)),
            Value::Float(x) => Ok(Value::Float(-x)),
            Value::Complex(re, im) => Ok(Value::Complex(-re, -im)),
            other => Err(self.error_at(start, format!("a sign cannot apply to {}", other.type_name()))),
        }
    }

    fn atom(&mut self) -> Result<Value, LiteralError> {
        let Some(c) = self.peek() else { return Err(self.error("expected a value, found the end")) };
        match c {
            '(' => self.tuple(),
            '[' => Err(self.error(
                "lists cannot be written as arguments (RPyC sends them by reference); use a tuple: (1, 2)",
            )),
            '{' => Err(self.error(
                "dicts and sets cannot be written as arguments (RPyC sends them by reference); \
                 use a tuple: ((key, value), ...)",
            )),
            '\'' | '"' => self.strings(),
            '.' if self.rest().starts_with("...") => {
                self.pos += 3;
                Ok(Value::Ellipsis)
            }
            '.' | '0'..='9' => self.number(),
            c if is_ident_start(c) => {
                if self.string_prefix_len().is_some() {
                    self.strings()
                } else {
                    self.name()
                }
            }
            other => Err(self.error(format!("unexpected {other:?}"))),
        }
    }

    fn tuple(&mut self) -> Result<Value, LiteralError> {
        let open = self.pos;
        self.bump();
        if self.depth >= MAX_DEPTH {
            return Err(self.error_at(open, format!("tuples nested deeper than {MAX_DEPTH}")));
        }
        self.depth += 1;
        self.skip_ws();
        if self.eat(')') {
            self.depth -= 1;
            return Ok(Value::Tuple(Vec::new()));
        }
        let first = self.expr()?;
        self.skip_ws();
        if self.eat(')') {
            // `(x)` is just `x`; only a comma makes a tuple.
            self.depth -= 1;
            return Ok(first);
        }
        let mut items = vec![first];
        loop {
            if !self.eat(',') {
                return Err(self.unclosed(open));
            }
            self.skip_ws();
            if self.eat(')') {
                break;
            }
            items.push(self.expr()?);
            self.skip_ws();
            if self.eat(')') {
                break;
            }
        }
        self.depth -= 1;
        Ok(Value::Tuple(items))
    }

    fn unclosed(&self, open: usize) -> LiteralError {
        if self.at_end() {
            self.error_at(open, "'(' was never closed")
        } else {
            self.error(format!("expected ',' or ')', found {:?}", self.rest_preview()))
        }
    }

    fn name(&mut self) -> Result<Value, LiteralError> {
        let start = self.pos;
        while self.peek().is_some_and(is_ident_char) {
            self.bump();
        }
        let word = &self.src[start..self.pos];
        match word {
            "None" => Ok(Value::None),
            "True" => Ok(Value::Bool(true)),
            "False" => Ok(Value::Bool(false)),
            "Ellipsis" => Ok(Value::Ellipsis),
            "NotImplemented" => Ok(Value::NotImplemented),
            "float" => self.float_call(start),
            "inf" | "nan" | "infinity" => Err(self.error_at(
                start,
                format!("name '{word}' is not a literal; write float('{word}') for that float"),
            )),
            "none" | "null" | "true" | "false" => Err(self.error_at(
                start,
                format!("name '{word}' is not a literal; Python spells it None, True or False"),
            )),
            _ => Err(self.error_at(
                start,
                format!("name '{word}' is not a literal; to pass a string, quote it: '{word}'"),
            )),
        }
    }

    /// `float('inf')` and friends: the floats Python has no literal for.
    fn float_call(&mut self, start: usize) -> Result<Value, LiteralError> {
        self.skip_ws();
        if !self.eat('(') {
            return Err(self.error_at(start, "name 'float' is not a literal; did you mean float('inf')?"));
        }
        self.skip_ws();
        let arg_pos = self.pos;
        let arg = self.expr()?;
        self.skip_ws();
        if !self.eat(')') {
            return Err(self.error("float(...) takes one argument and needs its ')'"));
        }
        match arg {
            Value::Float(x) => Ok(Value::Float(x)),
            Value::Int(n) => Ok(Value::Float(n as f64)),
            Value::BigInt(n) => Ok(Value::Float(big_to_f64(&n))),
            Value::Str(s) => parse_float_text(&s).map(Value::Float).ok_or_else(|| {
                self.error_at(arg_pos, format!("could not convert string to float: {}", Value::Str(s).repr()))
            }),
            other => Err(self.error_at(
                arg_pos,
                format!("float() argument must be a string or a number, not {}", other.type_name()),
            )),
        }
    }

    fn number(&mut self) -> Result<Value, LiteralError> {
        let start = self.pos;
        let rest = self.rest();
        let lower2: String = rest.chars().take(2).flat_map(char::to_lowercase).collect();
        let radix = match lower2.as_str() {
            "0x" => Some(16),
            "0o" => Some(8),
            "0b" => Some(2),
            _ => None,
        };
        if let Some(radix) = radix {
            self.pos += 2;
            let digits_start = self.pos;
            while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                self.bump();
            }
            // Python allows one `_` right after the base prefix (`0x_ff`).
            let digits = self.src[digits_start..self.pos]
                .strip_prefix('_')
                .unwrap_or(&self.src[digits_start..self.pos]);
            let clean = strip_underscores(digits).ok_or_else(|| self.error_at(start, "invalid number"))?;
            let n = BigInt::from_str_radix(&clean, radix).map_err(|_| {
                self.error_at(start, format!("invalid base-{radix} number {:?}", &self.src[start..self.pos]))
            })?;
            return Ok(Value::int(n));
        }

        let mut is_float = false;
        self.digits();
        if self.peek() == Some('.') {
            is_float = true;
            self.bump();
            self.digits();
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            let save = self.pos;
            self.bump();
            if matches!(self.peek(), Some('+' | '-')) {
                self.bump();
            }
            if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                is_float = true;
                self.digits();
            } else {
                self.pos = save;
            }
        }
        let text = &self.src[start..self.pos];
        let imaginary = matches!(self.peek(), Some('j' | 'J'));
        if imaginary {
            self.bump();
        }
        if self.peek().is_some_and(is_ident_char) {
            while self.peek().is_some_and(is_ident_char) {
                self.bump();
            }
            return Err(self.error_at(start, format!("invalid number {:?}", &self.src[start..self.pos])));
        }
        let clean = strip_underscores(text)
            .ok_or_else(|| self.error_at(start, format!("invalid number {text:?}")))?;
        if is_float || imaginary {
            let x: f64 =
                clean.parse().map_err(|_| self.error_at(start, format!("invalid number {text:?}")))?;
            return Ok(if imaginary { Value::Complex(0.0, x) } else { Value::Float(x) });
        }
        if clean.len() > 1 && clean.starts_with('0') && clean.bytes().any(|b| b != b'0') {
            return Err(self.error_at(
                start,
                "leading zeros in decimal integer literals are not permitted; use an 0o prefix for octal",
            ));
        }
        let n: BigInt =
            clean.parse().map_err(|_| self.error_at(start, format!("invalid number {text:?}")))?;
        Ok(Value::int(n))
    }

    /// Skips a run of decimal digits and underscores (validated later).
    fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit() || c == '_') {
            self.bump();
        }
    }

    /// The length of a string prefix (`r`, `b`, `rb`, `u`, ...) followed by
    /// a quote at the current position, if there is one.
    fn string_prefix_len(&self) -> Option<usize> {
        let rest = self.rest().as_bytes();
        let n = rest.iter().take(3).take_while(|b| b.is_ascii_alphabetic()).count();
        if n == 0 || n > 2 || !matches!(rest.get(n), Some(b'\'' | b'"')) {
            return None;
        }
        Some(n)
    }

    /// One or more adjacent string literals, concatenated.
    fn strings(&mut self) -> Result<Value, LiteralError> {
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

fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

fn is_ident_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Removes `_` separators, which Python allows only between two digits
/// (`1_000`, not `_1`, `1_`, `1__0` or `1_.5`).
fn strip_underscores(text: &str) -> Option<String> {
    let b = text.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if c == b'_' {
            let before = i.checked_sub(1).and_then(|j| b.get(j)).is_some_and(u8::is_ascii_alphanumeric);
            let after = b.get(i + 1).is_some_and(u8::is_ascii_alphanumeric);
            if !before || !after {
                return None;
            }
        }
    }
    if text.is_empty() {
        return None;
    }
    Some(text.replace('_', ""))
}

/// What Python's `float(str)` accepts: a decimal number, `inf`,
/// `infinity` or `nan` with an optional sign, case-insensitive, surrounded
/// by whitespace.
fn parse_float_text(s: &str) -> Option<f64> {
    let t = s.trim();
    let (neg, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let lower = body.to_ascii_lowercase();
    let x = match lower.as_str() {
        "inf" | "infinity" => f64::INFINITY,
        "nan" => f64::NAN,
        _ => {
            if !lower.bytes().all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'+' | b'-' | b'_')) {
                return None;
            }
            strip_underscores(&lower)?.parse().ok()?
        }
    };
    Some(if neg { -x } else { x })
}

/// An int too big for `i64` as the nearest float, as Python's
/// `int + complex` would convert it.
fn big_to_f64(n: &BigInt) -> f64 {
    num_traits::ToPrimitive::to_f64(n).unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
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
}
