//! Message bodies as short, readable text: boxed values unboxed for the
//! eye, references named by their owner and a per-connection number, long
//! values elided, exceptions reduced to their class and first line.
//!
//! It reads the brine [`Value`] tree of a body (built by the shared brine
//! decoder) and hands [`super::ConnTrace`] the text plus every reference
//! it met, which the connection's netref accounting consumes.

use std::collections::HashMap;
use std::fmt::Write;

use crate::brine::{repr_bytes, repr_str, Value};
use crate::protocol::boxing::{LABEL_LOCAL_REF, LABEL_REMOTE_REF, LABEL_TUPLE, LABEL_VALUE};

use super::Side;

/// Characters of a str (bytes of a bytes value) shown before eliding.
pub const MAX_TEXT: usize = 48;
/// Items of a tuple shown before eliding.
pub const MAX_ITEMS: usize = 8;

/// An object sent by reference, as a message named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefSeen {
    /// The side that owns the object.
    pub owner: Side,
    /// `LABEL_LOCAL_REF` (3) or `LABEL_REMOTE_REF` (4), as sent; 0 for an
    /// id pack passed as a plain value (INSPECT's argument).
    pub label: i64,
    /// `"module.ClassName"` from the id pack.
    pub name: String,
    /// The id pack's class identity.
    pub class_id: i64,
    /// The id pack's instance identity (0 for a class).
    pub instance_id: i64,
    /// The connection's number for the object: `S3` is the third object
    /// of the server's that this connection referenced.
    pub alias: u32,
}

impl RefSeen {
    /// `<S3 builtins.list>`, `<C1 class __main__.Foo>`.
    pub fn short(&self) -> String {
        let class = if self.instance_id == 0 { "class " } else { "" };
        format!("<{}{} {class}{}>", self.owner.letter(), self.alias, self.name)
    }
}

/// Per-connection numbering of the objects messages refer to, so a reader
/// can follow one object from message to message without comparing
/// `id()`s (and a golden trace does not change from run to run).
#[derive(Debug, Default)]
pub struct Aliases {
    known: HashMap<(Side, i64, i64), u32>,
    next: [u32; 2],
}

impl Aliases {
    /// Forgets an object's number: the next object with its id pack is a
    /// new one (Python reuses `id()`s).
    pub fn retire(&mut self, key: (Side, i64, i64)) {
        self.known.remove(&key);
    }

    fn alias(&mut self, owner: Side, class_id: i64, instance_id: i64) -> u32 {
        let next = &mut self.next[owner as usize];
        *self.known.entry((owner, class_id, instance_id)).or_insert_with(|| {
            *next += 1;
            *next
        })
    }
}

/// Rendering state for one message: who sent it, and what it referenced.
pub struct Renderer<'a> {
    /// The side that sent the message.
    pub sender: Side,
    /// The connection's object numbering.
    pub aliases: &'a mut Aliases,
    /// References met so far, in order.
    pub refs: Vec<RefSeen>,
}

impl Renderer<'_> {
    /// Renders a boxed value `(label, value)`; an ill-formed box is shown
    /// as its raw value after a `?`.
    pub fn boxed(&mut self, v: &Value, out: &mut String) {
        if let Some(r) = self.reference(v) {
            out.push_str(&r.short());
            self.refs.push(r);
            return;
        }
        match as_box(v) {
            Some((LABEL_VALUE, inner)) => value(inner, out),
            Some((LABEL_TUPLE, Value::Tuple(items))) => {
                out.push('(');
                self.boxed_items(items, out);
                if items.len() == 1 {
                    out.push(',');
                }
                out.push(')');
            }
            _ => {
                out.push('?');
                value(v, out);
            }
        }
    }

    /// Renders the items of a boxed argument tuple, comma-separated (the
    /// inside of a call's parentheses).
    pub fn boxed_args(&mut self, v: &Value, out: &mut String) {
        match as_box(v) {
            Some((LABEL_TUPLE, Value::Tuple(items))) => self.boxed_items(items, out),
            Some((LABEL_VALUE, Value::Tuple(items))) => plain_items(items, out),
            _ => self.boxed(v, out),
        }
    }

    fn boxed_items(&mut self, items: &[Value], out: &mut String) {
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            if i == MAX_ITEMS && items.len() > MAX_ITEMS + 1 {
                // Still account for references further on (netref counts).
                for rest in &items[i..] {
                    if let Some(r) = self.reference(rest) {
                        self.refs.push(r);
                    }
                }
                let _ = write!(out, "... ({} items)", items.len());
                return;
            }
            self.boxed(item, out);
        }
    }

    /// The reference a box holds, if it is a LOCAL_REF or REMOTE_REF with
    /// a well-formed id pack.
    pub fn reference(&mut self, v: &Value) -> Option<RefSeen> {
        let (label, inner) = as_box(v)?;
        let owner = match label {
            LABEL_REMOTE_REF => self.sender,
            LABEL_LOCAL_REF => self.sender.other(),
            _ => return None,
        };
        self.id_pack(inner, owner, label)
    }

    /// An id pack `(name, class_id, instance_id)` of an object `owner`
    /// owns; `label` 0 for one passed as a plain value (INSPECT).
    pub fn id_pack(&mut self, v: &Value, owner: Side, label: i64) -> Option<RefSeen> {
        let [name, Value::Int(class_id), Value::Int(instance_id)] = v.as_tuple()? else {
            return None;
        };
        let name = match name {
            Value::Str(s) => s.clone(),
            Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
            _ => return None,
        };
        let alias = self.aliases.alias(owner, *class_id, *instance_id);
        Some(RefSeen { owner, label, name, class_id: *class_id, instance_id: *instance_id, alias })
    }

    /// INSPECT's argument, an id pack of the receiver's, as a reference.
    pub fn inspect_args(&mut self, args: &Value, out: &mut String) {
        let target = match as_box(args) {
            Some((LABEL_VALUE, Value::Tuple(items))) if items.len() == 1 => {
                self.id_pack(&items[0], self.sender.other(), 0)
            }
            _ => None,
        };
        match target {
            Some(r) => {
                out.push_str(&r.short());
                self.refs.push(r);
            }
            None => self.boxed_args(args, out),
        }
    }
}

/// INSPECT's answer, a tuple of (method name, docstring), as the count
/// and the first names: the docstrings are long and say little here.
pub fn inspect_reply(v: &Value, out: &mut String) -> bool {
    let Some((LABEL_VALUE, Value::Tuple(items))) = as_box(v) else {
        return false;
    };
    let names: Option<Vec<&str>> =
        items.iter().map(|i| i.as_tuple().and_then(|t| t.first()?.as_str())).collect();
    let Some(names) = names else {
        return false;
    };
    let _ = write!(out, "{} methods: ", names.len());
    for (i, n) in names.iter().take(MAX_ITEMS).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(n);
    }
    if names.len() > MAX_ITEMS {
        out.push_str(", ...");
    }
    true
}

/// `(label, value)` when `v` is shaped like a box.
pub fn as_box(v: &Value) -> Option<(i64, &Value)> {
    match v.as_tuple()? {
        [Value::Int(label), inner] => Some((*label, inner)),
        _ => None,
    }
}

fn plain_items(items: &[Value], out: &mut String) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        if i == MAX_ITEMS && items.len() > MAX_ITEMS + 1 {
            let _ = write!(out, "... ({} items)", items.len());
            return;
        }
        value(item, out);
    }
}

/// Python's repr of a value, with long strings, bytes and tuples cut
/// short and their full size said.
pub fn value(v: &Value, out: &mut String) {
    match v {
        Value::Str(s) => {
            let n = s.chars().count();
            if n > MAX_TEXT {
                let head: String = s.chars().take(MAX_TEXT).collect();
                let _ = write!(out, "{}... ({n} chars)", repr_str(&head));
            } else {
                out.push_str(&repr_str(s));
            }
        }
        Value::Bytes(b) if b.len() > MAX_TEXT => {
            let _ = write!(out, "{}... ({} bytes)", repr_bytes(&b[..MAX_TEXT]), b.len());
        }
        Value::Tuple(items) => {
            out.push('(');
            plain_items(items, out);
            if items.len() == 1 {
                out.push(',');
            }
            out.push(')');
        }
        Value::FrozenSet(items) if items.len() > MAX_ITEMS => {
            let _ = write!(out, "frozenset({{... {} items}})", items.len());
        }
        other => out.push_str(&other.repr()),
    }
}

/// An EXCEPTION body (a vinegar tuple) as `(class, first line)`: the class
/// without a `builtins.` prefix, the first line of its first argument.
pub fn exception(v: &Value) -> (String, String) {
    if let Value::Int(1) = v {
        return ("StopIteration".into(), String::new());
    }
    let parts = v.as_tuple().unwrap_or(&[]);
    let class = match parts.first().and_then(Value::as_tuple) {
        Some([Value::Str(module), Value::Str(name)]) if module == "builtins" || module == "exceptions" => {
            name.clone()
        }
        Some([Value::Str(module), Value::Str(name)]) => format!("{module}.{name}"),
        _ => "?".into(),
    };
    let line = match parts.get(1).and_then(Value::as_tuple) {
        Some([Value::Str(s), ..]) => s.lines().next().unwrap_or("").to_owned(),
        Some([]) | None => String::new(),
        Some([first, ..]) => {
            let mut s = String::new();
            value(first, &mut s);
            s
        }
    };
    let line = if line.chars().count() > 2 * MAX_TEXT {
        let head: String = line.chars().take(2 * MAX_TEXT).collect();
        format!("{head}...")
    } else {
        line
    };
    (class, line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(label: i64, v: Value) -> Value {
        Value::Tuple(vec![label.into(), v])
    }

    #[test]
    fn long_values_are_elided_and_refs_named() {
        let mut out = String::new();
        value(&Value::Bytes(vec![0; 5_000_000]), &mut out);
        assert!(out.ends_with("... (5000000 bytes)"), "{out}");
        let mut aliases = Aliases::default();
        let mut r = Renderer { sender: Side::Server, aliases: &mut aliases, refs: vec![] };
        let id = Value::Tuple(vec!["builtins.list".into(), 7.into(), 9.into()]);
        let args =
            b(LABEL_TUPLE, Value::Tuple(vec![b(LABEL_REMOTE_REF, id.clone()), b(LABEL_VALUE, "x".into())]));
        let mut out = String::new();
        r.boxed_args(&args, &mut out);
        assert_eq!(out, "<S1 builtins.list>, 'x'");
        // The same object coming back from the client is the same alias.
        let mut r = Renderer { sender: Side::Client, aliases: &mut aliases, refs: vec![] };
        let mut out = String::new();
        r.boxed(&b(LABEL_LOCAL_REF, id), &mut out);
        assert_eq!(out, "<S1 builtins.list>");
    }

    #[test]
    fn exceptions_show_class_and_first_line() {
        let exc = Value::Tuple(vec![
            Value::Tuple(vec!["builtins".into(), "ZeroDivisionError".into()]),
            Value::Tuple(vec!["division by zero\nmore".into()]),
            Value::Tuple(vec![]),
            "Traceback...".into(),
        ]);
        assert_eq!(exception(&exc), ("ZeroDivisionError".into(), "division by zero".into()));
        assert_eq!(exception(&Value::Int(1)).0, "StopIteration");
    }
}
