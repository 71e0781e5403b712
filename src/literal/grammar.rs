//! The grammar's upper layers: sums, signs, atoms, tuples and names.
//!
//! `parse` calls `expr` here. An atom that is a number or a string is
//! handed to `numbers` or `strings`; what comes back is a finished
//! [`Value`].

use num_bigint::BigInt;

use super::numbers::big_to_f64;
use super::{is_ident_char, is_ident_start, LiteralError, Parser};
use crate::brine::Value;

/// The deepest tuple nesting accepted. Literals come from people, not
/// peers, but a recursive parser still must not overflow its stack.
const MAX_DEPTH: usize = 100;

impl Parser<'_> {
    /// A value, possibly `real ± imaginary` (the one binary operation
    /// `ast.literal_eval` allows).
    pub(super) fn expr(&mut self) -> Result<Value, LiteralError> {
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
}
