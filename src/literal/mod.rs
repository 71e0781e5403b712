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

mod grammar;
mod numbers;
mod strings;
#[cfg(test)]
mod tests;

use std::fmt;

use crate::brine::Value;

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

// The cursor that every layer of the grammar moves. It lives here, with
// the struct, so the submodules share it without widening it.
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
}

fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

fn is_ident_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}
