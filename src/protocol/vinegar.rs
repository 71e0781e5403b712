//! Vinegar: remote exceptions in both directions.
//!
//! An EXCEPTION body is the int `1` (`StopIteration`, rpyc's shortcut) or
//! `((module, class_name), args, attrs, traceback_text)`. We decode it into a
//! [`RemoteException`], and encode the errors our own handlers raise the same
//! way, so a Python peer re-creates a real `ValueError`, `KeyError`, ... with
//! the message and our traceback text appended to `str(exc)`.

use std::fmt;

use crate::brine::{self, put_int, put_str, put_tuple_header, Decoder, Token, Value};

use super::message::EXC_STOP_ITERATION;
use super::{Error, Result};

/// What we put in the `_remote_version` attribute. A Python receiver compares
/// its major version with this one and warns on a mismatch; rpyc-rs speaks
/// the protocol of 5.x and 6.x alike, so we say what rpyc says when
/// `include_local_version` is off rather than claim a version we are not.
pub const VERSION_DENIED: &str = "<version denied>";

/// An exception raised on one side of a connection and carried to the other.
///
/// Return one from a service method to raise that exception in the peer
/// (`RemoteException::value_error("...")`); a call the peer failed gives you
/// its exception as [`Error::Remote`].
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteException {
    /// The exception class's module (`"builtins"` for `ValueError`).
    pub module: String,
    /// The exception class's name.
    pub name: String,
    /// The exception's `args` (values that brine cannot carry are sent as
    /// their repr).
    pub args: Vec<Value>,
    /// Public attributes of the exception, as `(name, value)` pairs.
    pub attrs: Vec<(String, Value)>,
    /// The formatted traceback from the side that raised it.
    pub traceback: String,
}

impl RemoteException {
    /// An exception of class `module.name` with a message as its only arg.
    pub fn new(module: &str, name: &str, message: impl Into<String>) -> Self {
        RemoteException {
            module: module.into(),
            name: name.into(),
            args: vec![Value::Str(message.into())],
            attrs: Vec::new(),
            traceback: String::new(),
        }
    }

    /// A builtin exception (`ValueError`, `KeyError`, ...) with a message.
    pub fn builtin(name: &str, message: impl Into<String>) -> Self {
        Self::new("builtins", name, message)
    }

    /// `ValueError(message)`
    pub fn value_error(message: impl Into<String>) -> Self {
        Self::builtin("ValueError", message)
    }

    /// `TypeError(message)`
    pub fn type_error(message: impl Into<String>) -> Self {
        Self::builtin("TypeError", message)
    }

    /// `AttributeError(message)`
    pub fn attribute_error(message: impl Into<String>) -> Self {
        Self::builtin("AttributeError", message)
    }

    /// `KeyError(key)`; the key is the arg, as in Python.
    pub fn key_error(key: impl Into<Value>) -> Self {
        RemoteException { args: vec![key.into()], ..Self::builtin("KeyError", "") }
    }

    /// `IndexError(message)`
    pub fn index_error(message: impl Into<String>) -> Self {
        Self::builtin("IndexError", message)
    }

    /// `StopIteration()`
    pub fn stop_iteration() -> Self {
        RemoteException { args: Vec::new(), ..Self::builtin("StopIteration", "") }
    }

    /// `NotImplementedError(message)`
    pub fn not_implemented(message: impl Into<String>) -> Self {
        Self::builtin("NotImplementedError", message)
    }

    /// `RuntimeError(message)`
    pub fn runtime_error(message: impl Into<String>) -> Self {
        Self::builtin("RuntimeError", message)
    }

    /// True when the class name is `name` (module not compared).
    pub fn is(&self, name: &str) -> bool {
        self.name == name
    }

    /// `module.name`, or just `name` for builtins.
    pub fn qualified_name(&self) -> String {
        if self.module == "builtins" || self.module.is_empty() {
            self.name.clone()
        } else {
            format!("{}.{}", self.module, self.name)
        }
    }

    /// The message as Python's `str(exc)` would show it (without the
    /// traceback).
    pub fn message(&self) -> String {
        match self.args.as_slice() {
            [] => String::new(),
            [Value::Str(s)] if self.name != "KeyError" => s.clone(),
            [one] => one.repr(),
            many => Value::Tuple(many.to_vec()).repr(),
        }
    }

    /// Appends the vinegar encoding of this exception to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<()> {
        if self.module == "builtins" && self.name == "StopIteration" && self.args.is_empty() {
            put_int(out, EXC_STOP_ITERATION);
            return Ok(());
        }
        put_tuple_header(out, 4)?;
        put_tuple_header(out, 2)?;
        put_str(out, &self.module)?;
        put_str(out, &self.name)?;
        brine::encode_into(&Value::Tuple(self.args.clone()), out)?;
        let has_version = self.attrs.iter().any(|(k, _)| k == "_remote_version");
        put_tuple_header(out, self.attrs.len() + usize::from(!has_version))?;
        for (k, v) in &self.attrs {
            put_tuple_header(out, 2)?;
            put_str(out, k)?;
            brine::encode_into(v, out)?;
        }
        if !has_version {
            put_tuple_header(out, 2)?;
            put_str(out, "_remote_version")?;
            put_str(out, VERSION_DENIED)?;
        }
        put_str(out, &self.traceback)?;
        Ok(())
    }

    /// Decodes an exception body.
    pub fn decode(dec: &mut Decoder<'_>) -> Result<RemoteException> {
        let bad = || Error::protocol("malformed exception message");
        match dec.next_token()? {
            Token::Int(EXC_STOP_ITERATION) => return Ok(Self::stop_iteration()),
            // rpyc still passes through Python 2 string exceptions.
            Token::Str(s) => return Ok(Self::new("builtins", s, "")),
            Token::Tuple(4) => {}
            _ => return Err(bad()),
        }
        let Value::Tuple(names) = dec.read_value()? else { return Err(bad()) };
        let [Value::Str(module), Value::Str(name)] = <[Value; 2]>::try_from(names).map_err(|_| bad())? else {
            return Err(bad());
        };
        let Value::Tuple(args) = dec.read_value()? else { return Err(bad()) };
        let Value::Tuple(raw_attrs) = dec.read_value()? else { return Err(bad()) };
        let mut attrs = Vec::with_capacity(raw_attrs.len());
        for a in raw_attrs {
            match a {
                Value::Tuple(kv) if kv.len() == 2 => {
                    let mut kv = kv.into_iter();
                    if let (Some(Value::Str(k)), Some(v)) = (kv.next(), kv.next()) {
                        attrs.push((k, v));
                    }
                }
                _ => return Err(bad()),
            }
        }
        let traceback = match dec.read_value()? {
            Value::Str(s) => s,
            Value::None => String::new(),
            _ => return Err(bad()),
        };
        Ok(RemoteException { module, name, args, attrs, traceback })
    }
}

impl fmt::Display for RemoteException {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let msg = self.message();
        if msg.is_empty() {
            write!(f, "{}", self.qualified_name())?;
        } else {
            write!(f, "{}: {}", self.qualified_name(), msg)?;
        }
        if !self.traceback.is_empty() {
            write!(f, "\n\n========= Remote Traceback (1) =========\n{}", self.traceback)?;
        }
        Ok(())
    }
}

impl std::error::Error for RemoteException {}

/// A traceback text for an error raised by a Rust handler, in Python's
/// layout so tools that parse tracebacks keep working.
pub(crate) fn rust_traceback(context: &str, exc: &RemoteException) -> String {
    let msg = exc.message();
    let last =
        if msg.is_empty() { exc.qualified_name() } else { format!("{}: {}", exc.qualified_name(), msg) };
    format!("Traceback (most recent call last):\n  File \"<rpyc-rs>\", in {context}\n{last}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut e = RemoteException::value_error("bad value");
        e.traceback = "tb".into();
        let mut out = Vec::new();
        e.encode_into(&mut out).unwrap();
        let back = RemoteException::decode(&mut Decoder::new(&out)).unwrap();
        assert_eq!(back.name, "ValueError");
        assert_eq!(back.args, vec![Value::from("bad value")]);
        assert_eq!(back.attrs, vec![("_remote_version".to_string(), Value::from(VERSION_DENIED))]);
        assert_eq!(back.traceback, "tb");
    }

    #[test]
    fn stop_iteration_is_the_int_one() {
        let mut out = Vec::new();
        RemoteException::stop_iteration().encode_into(&mut out).unwrap();
        assert_eq!(out, [0x51]);
        assert!(RemoteException::decode(&mut Decoder::new(&out)).unwrap().is("StopIteration"));
    }
}
