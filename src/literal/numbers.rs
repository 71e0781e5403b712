//! Numbers: ints in every base, floats, imaginary parts, and `float('inf')`.
//!
//! The grammar hands over when it sees a digit, a `.` or the name `float`.
//! What comes back is an int, a float or a complex [`Value`].

use num_bigint::BigInt;
use num_traits::Num;

use super::{is_ident_char, LiteralError, Parser};
use crate::brine::Value;

impl Parser<'_> {
    /// `float('inf')` and friends: the floats Python has no literal for.
    pub(super) fn float_call(&mut self, start: usize) -> Result<Value, LiteralError> {
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

    pub(super) fn number(&mut self) -> Result<Value, LiteralError> {
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
pub(super) fn big_to_f64(n: &BigInt) -> f64 {
    num_traits::ToPrimitive::to_f64(n).unwrap_or(f64::NAN)
}
