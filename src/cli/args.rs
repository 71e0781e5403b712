//! Parsing what a person typed: addresses, timeouts, seconds, and call
//! arguments as Python literals.
//!
//! The value parsers here are what clap calls while it reads the command
//! line; `parse_call_args` and `text_arg` are called by the commands. Each
//! hands back a checked value, or a message that says what to fix.

use std::io::Read;
use std::time::Duration;

use rpyc_rs::protocol::Object;
use rpyc_rs::Address;

use super::{io_text, Failure};

/// Parses a number of seconds: finite, not negative, at most a day.
pub(super) fn seconds(text: &str) -> Result<f64, String> {
    let v: f64 = text.parse().map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if v.is_finite() && (0.0..=86_400.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{text} is not between 0 and 86400 seconds"))
    }
}

pub(super) fn parse_address(s: &str) -> Result<Address, String> {
    s.parse::<Address>().map_err(|e| e.to_string())
}

pub(super) fn parse_timeout(s: &str) -> Result<Duration, String> {
    let secs: f64 = s.trim().parse().map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !secs.is_finite() || secs <= 0.0 {
        return Err(format!("{s:?}: the timeout must be a positive number of seconds"));
    }
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
}

/// `-` means "read it from stdin", for code too long or too quoted for a
/// command line.
pub(super) fn text_arg(arg: String, what: &str) -> Result<String, Failure> {
    if arg != "-" {
        return Ok(arg);
    }
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .map_err(|e| Failure::other(format!("cannot read the {what} from stdin: {}", io_text(&e))))?;
    Ok(s)
}

/// Call arguments: positional literals, then `NAME=LITERAL` keywords.
type CallArgs = (Vec<Object>, Vec<(String, Object)>);

pub(super) fn parse_call_args(raw: &[String]) -> Result<CallArgs, Failure> {
    let mut args = Vec::new();
    let mut kwargs: Vec<(String, Object)> = Vec::new();
    for (i, text) in raw.iter().enumerate() {
        let n = i + 1;
        let (name, literal) = match keyword_split(text) {
            Some((name, lit)) => (Some(name), lit),
            None => (None, text.as_str()),
        };
        let value = rpyc_rs::literal::parse(literal)
            .map_err(|e| Failure::other(format!("argument {n} ({text:?}) is not a Python literal: {e}")))?;
        match name {
            Some(name) => {
                if kwargs.iter().any(|(k, _)| k == name) {
                    return Err(Failure::other(format!("keyword argument repeated: {name}")));
                }
                kwargs.push((name.to_owned(), Object::Value(value)));
            }
            None if !kwargs.is_empty() => {
                return Err(Failure::other(format!(
                    "argument {n} ({text:?}): a positional argument follows a keyword argument"
                )));
            }
            None => args.push(Object::Value(value)),
        }
    }
    Ok((args, kwargs))
}

/// `NAME=rest` when `text` starts with an identifier and a single `=`.
fn keyword_split(text: &str) -> Option<(&str, &str)> {
    let (name, rest) = text.split_once('=')?;
    let mut chars = name.chars();
    let first = chars.next()?;
    let ident = (first == '_' || first.is_alphabetic()) && chars.all(|c| c == '_' || c.is_alphanumeric());
    (ident && !rest.starts_with('=')).then_some((name, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let tcp = |h: &str, p| Address::tcp(h, p);
        use rpyc_rs::classic::DEFAULT_PORT;
        assert_eq!(parse_address("127.0.0.1:18812"), Ok(tcp("127.0.0.1", 18812)));
        assert_eq!(parse_address("localhost:1"), Ok(tcp("localhost", 1)));
        assert_eq!(parse_address("localhost"), Ok(tcp("localhost", DEFAULT_PORT)));
        assert_eq!(parse_address("[::1]:5000"), Ok(tcp("::1", 5000)));
        assert_eq!(parse_address("[::1]"), Ok(tcp("::1", DEFAULT_PORT)));
        assert_eq!(parse_address("/tmp/x.sock"), Ok(Address::unix("/tmp/x.sock")));
        assert_eq!(parse_address("./x.sock"), Ok(Address::unix("./x.sock")));
        assert_eq!(parse_address("service:DEMO"), Ok(Address::service("DEMO")));
        assert!(parse_address("::1:5000").unwrap_err().contains("brackets"));
        assert!(parse_address("host:99999").unwrap_err().contains("port"));
        assert!(parse_address(":5").unwrap_err().contains("host"));
        assert!(parse_address("[::1").unwrap_err().contains("']'"));
        assert!(parse_address("").is_err());
        assert_eq!(tcp("::1", 5).to_string(), "[::1]:5");
    }

    #[test]
    fn keywords() {
        assert_eq!(keyword_split("b=2"), Some(("b", "2")));
        assert_eq!(keyword_split("name='a=b'"), Some(("name", "'a=b'")));
        assert_eq!(keyword_split("'a=b'"), None);
        assert_eq!(keyword_split("x==1"), None);
        assert_eq!(keyword_split("1=2"), None);
        let (a, k) = parse_call_args(&["1".into(), "b=(2,)".into()]).ok().unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!(k[0].0, "b");
        assert!(parse_call_args(&["b=1".into(), "2".into()]).is_err());
        assert!(parse_call_args(&["foo".into()]).is_err());
    }

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_timeout("0").is_err());
        assert!(parse_timeout("-1").is_err());
        assert!(parse_timeout("nan").is_err());
        assert!(parse_timeout("abc").is_err());
    }
}
