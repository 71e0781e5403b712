//! Boxing vocabulary: the four labels, the [`IdPack`] that names an object
//! sent by reference, and the Rust object world's [`Object`].
//!
//! Every argument tuple, result and attribute value is sent as
//! `(label, value)`: `VALUE` when the whole thing is brine-able, `TUPLE` for
//! a plain tuple holding something that is not, `LOCAL_REF` for the
//! receiver's own object coming back to it, `REMOTE_REF` for the sender's
//! object (the receiver makes a proxy). The box and unbox recursion itself
//! is written once, for both object worlds, in `exchange.rs`; this module
//! gives the Rust world its values.

use std::fmt;
use std::sync::Arc;

use crate::brine::{self, put_int, put_str, put_tuple_header, Decoder, Token, Value};
use crate::service::Expose;

use super::netref::NetRef;
use super::{Error, Result};

/// `LABEL_VALUE`
pub const LABEL_VALUE: i64 = 1;
/// `LABEL_TUPLE`
pub const LABEL_TUPLE: i64 = 2;
/// `LABEL_LOCAL_REF`
pub const LABEL_LOCAL_REF: i64 = 3;
/// `LABEL_REMOTE_REF`
pub const LABEL_REMOTE_REF: i64 = 4;

/// The name of an object sent by reference: `(name_pack, class_id,
/// instance_id)`, identities on the owner's side (see `get_id_pack` in
/// `rpyc/lib/__init__.py`). A class has `instance_id == 0`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdPack {
    /// `"module.ClassName"` of the object's class (or of the class itself).
    pub name: Arc<str>,
    /// Identity of the class on the owner's side.
    pub class_id: i64,
    /// Identity of the instance on the owner's side; 0 for a class.
    pub instance_id: i64,
}

impl IdPack {
    /// Appends the id pack as a brine 3-tuple.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<()> {
        put_tuple_header(out, 3)?;
        put_str(out, &self.name)?;
        put_int(out, self.class_id);
        put_int(out, self.instance_id);
        Ok(())
    }

    /// Reads an id pack (a brine 3-tuple; rpyc also tolerates a bytes name).
    pub fn decode(dec: &mut Decoder<'_>) -> Result<IdPack> {
        let bad = || Error::protocol("malformed id pack");
        if dec.next_token()? != Token::Tuple(3) {
            return Err(bad());
        }
        let name: Arc<str> = match dec.next_token()? {
            Token::Str(s) => Arc::from(s),
            Token::Bytes(b) => Arc::from(String::from_utf8_lossy(b).as_ref()),
            _ => return Err(bad()),
        };
        let mut int = || match dec.next_token() {
            Ok(Token::Int(n)) => Ok(n),
            Ok(_) => Err(bad()),
            Err(e) => Err(Error::from(e)),
        };
        let class_id = int()?;
        let instance_id = int()?;
        Ok(IdPack { name, class_id, instance_id })
    }

    /// The id pack of a value given as a brine tuple (as INSPECT and
    /// INSTANCECHECK receive it).
    pub fn from_value(v: &Value) -> Option<IdPack> {
        match v.as_tuple()? {
            [Value::Str(name), Value::Int(c), Value::Int(i)] => {
                Some(IdPack { name: Arc::from(name.as_str()), class_id: *c, instance_id: *i })
            }
            _ => None,
        }
    }

    /// The id pack of one of our Rust objects: its type name, a class id
    /// derived from that name, and its address (stable while the object
    /// lives, and it lives while the table holds it).
    pub fn of_local(obj: &Arc<dyn Expose>) -> IdPack {
        let name = obj.type_name();
        // FNV-1a: a stable class identity per type name, kept positive and
        // clear of 0 (0 means "this is a class").
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in name.bytes() {
            h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
        IdPack {
            name: Arc::from(name),
            class_id: (h >> 2) as i64 | 1,
            instance_id: Arc::as_ptr(obj) as *const () as usize as i64,
        }
    }
}

/// An object as the Rust world sees it.
#[derive(Clone)]
pub enum Object {
    /// A brine value, sent by value.
    Value(Value),
    /// A tuple holding at least one reference (a tuple of plain values is a
    /// [`Object::Value`]; both box the same way).
    Tuple(Vec<Object>),
    /// An object that lives on the peer.
    Remote(NetRef),
    /// One of our objects, sent by reference.
    Local(Arc<dyn Expose>),
}

impl fmt::Debug for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Object::Value(v) => write!(f, "{v:?}"),
            Object::Tuple(items) => f.debug_tuple("").field(items).finish(),
            Object::Remote(n) => write!(f, "{n:?}"),
            Object::Local(o) => write!(f, "<local {}>", o.type_name()),
        }
    }
}

impl Object {
    /// A tuple of objects, kept as a plain value when every item is one.
    pub fn tuple(items: Vec<Object>) -> Object {
        if items.iter().all(Object::is_plain) {
            let mut values = Vec::with_capacity(items.len());
            for item in items {
                if let Ok(v) = item.into_value() {
                    values.push(v);
                }
            }
            Object::Value(Value::Tuple(values))
        } else {
            Object::Tuple(items)
        }
    }

    /// True when the object is brine-able as a whole (no references inside).
    pub fn is_plain(&self) -> bool {
        match self {
            Object::Value(_) => true,
            Object::Tuple(items) => items.iter().all(Object::is_plain),
            Object::Remote(_) | Object::Local(_) => false,
        }
    }

    /// The object as a brine value, if it is one.
    pub fn into_value(self) -> Result<Value> {
        match self {
            Object::Value(v) => Ok(v),
            Object::Tuple(items) => {
                items.into_iter().map(Object::into_value).collect::<Result<_>>().map(Value::Tuple)
            }
            other => Err(Error::type_mismatch("a value", other.type_name())),
        }
    }

    /// The object as a netref, if it lives on the peer.
    pub fn as_netref(&self) -> Option<&NetRef> {
        match self {
            Object::Remote(n) => Some(n),
            _ => None,
        }
    }

    /// A short description of the object's type, for messages.
    pub fn type_name(&self) -> String {
        match self {
            Object::Value(v) => v.type_name().to_string(),
            Object::Tuple(_) => "tuple".into(),
            Object::Remote(n) => format!("netref to {}", n.id_pack().name),
            Object::Local(o) => o.type_name().to_string(),
        }
    }

    /// The object converted to a Rust type: `obj.extract::<i64>()?`,
    /// `obj.extract::<Vec<String>>()?`, `obj.extract::<NetRef>()?` (see
    /// [`FromObject`](super::FromObject) for the conversions there are).
    ///
    /// ```
    /// use rpyc_rs::Object;
    /// assert_eq!(Object::from(42).extract::<i64>().unwrap(), 42);
    /// assert!(Object::from("x").extract::<i64>().is_err());
    /// ```
    pub fn extract<T: super::FromObject>(self) -> Result<T> {
        T::from_object(self)
    }

    /// The items of a tuple (plain or holding references).
    pub fn into_items(self) -> Result<Vec<Object>> {
        match self {
            Object::Value(Value::Tuple(items)) => Ok(items.into_iter().map(Object::Value).collect()),
            Object::Tuple(items) => Ok(items),
            other => Err(Error::type_mismatch("a tuple", other.type_name())),
        }
    }
}

impl<T: Into<Value>> From<T> for Object {
    fn from(v: T) -> Object {
        Object::Value(v.into())
    }
}

impl From<NetRef> for Object {
    fn from(n: NetRef) -> Object {
        Object::Remote(n)
    }
}

impl From<Arc<dyn Expose>> for Object {
    fn from(o: Arc<dyn Expose>) -> Object {
        Object::Local(o)
    }
}

/// Appends a plain object (one that [`Object::is_plain`]) as a brine value.
pub(crate) fn put_plain(obj: &Object, out: &mut Vec<u8>) -> Result<()> {
    match obj {
        Object::Value(v) => brine::encode_into(v, out).map_err(Error::from),
        Object::Tuple(items) => {
            put_tuple_header(out, items.len())?;
            items.iter().try_for_each(|i| put_plain(i, out))
        }
        other => Err(Error::type_mismatch("a plain value", other.type_name())),
    }
}
