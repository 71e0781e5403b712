//! Conversions between [`Object`]s and ordinary Rust types.
//!
//! Into an object: anything that converts into a brine [`Value`] (integers,
//! floats, strings, bytes, bool, `Option`), plus netrefs and local objects.
//! Out of an object: [`FromObject`], which fails with [`Error::Type`] naming
//! what was expected and what arrived. Argument lists are built from tuples
//! with [`IntoArgs`], so `root.call_method("add", (1, 2))` reads naturally.

use num_bigint::BigInt;

use crate::brine::Value;

use super::boxing::Object;
use super::netref::NetRef;
use super::{Error, Result};

/// Conversion out of an [`Object`].
///
/// Use it to turn what a call returned into a Rust type,
/// `i64::from_object(obj)?`; a [`NetRef`](crate::NetRef) comes out of a
/// by-reference result the same way.
pub trait FromObject: Sized {
    /// Converts, or explains what did not match.
    fn from_object(obj: Object) -> Result<Self>;

    /// The value for an argument the caller left out, if the type has one
    /// (`Option<T>` is `None`); others make the argument required.
    fn from_missing() -> Option<Self> {
        None
    }
}

impl FromObject for Object {
    fn from_object(obj: Object) -> Result<Self> {
        Ok(obj)
    }
}

impl FromObject for Value {
    fn from_object(obj: Object) -> Result<Self> {
        obj.into_value()
    }
}

impl FromObject for NetRef {
    fn from_object(obj: Object) -> Result<Self> {
        match obj {
            Object::Remote(n) => Ok(n),
            other => Err(Error::type_mismatch("a netref", other.type_name())),
        }
    }
}

impl FromObject for () {
    fn from_object(obj: Object) -> Result<Self> {
        match obj {
            Object::Value(Value::None) => Ok(()),
            other => Err(Error::type_mismatch("None", other.type_name())),
        }
    }
}

impl FromObject for bool {
    fn from_object(obj: Object) -> Result<Self> {
        match obj {
            Object::Value(Value::Bool(b)) => Ok(b),
            other => Err(Error::type_mismatch("bool", other.type_name())),
        }
    }
}

macro_rules! from_object_int {
    ($($t:ty),*) => {$(
        impl FromObject for $t {
            fn from_object(obj: Object) -> Result<Self> {
                let what = concat!("an int that fits ", stringify!($t));
                match obj {
                    Object::Value(Value::Int(n)) => <$t>::try_from(n)
                        .map_err(|_| Error::type_mismatch(what, n.to_string())),
                    Object::Value(Value::BigInt(n)) => <$t>::try_from(&n)
                        .map_err(|_| Error::type_mismatch(what, n.to_string())),
                    Object::Value(Value::Bool(b)) => Ok(b as $t),
                    other => Err(Error::type_mismatch(what, other.type_name())),
                }
            }
        }
    )*};
}
from_object_int!(i8, i16, i32, i64, i128, u8, u16, u32, u64, u128, usize, isize);

impl FromObject for BigInt {
    fn from_object(obj: Object) -> Result<Self> {
        match obj {
            Object::Value(Value::Int(n)) => Ok(BigInt::from(n)),
            Object::Value(Value::BigInt(n)) => Ok(n),
            other => Err(Error::type_mismatch("int", other.type_name())),
        }
    }
}

impl FromObject for f64 {
    fn from_object(obj: Object) -> Result<Self> {
        match obj {
            Object::Value(Value::Float(x)) => Ok(x),
            // Python code freely passes ints where floats are meant
            // (rounded to the nearest float, as Python's float(n) does).
            Object::Value(Value::Int(n)) => Ok(n as f64),
            // A big int converts as float(n) would: rounded, or refused
            // (Python's OverflowError) when it is past the float range,
            // never turned into infinity.
            Object::Value(Value::BigInt(n)) => num_traits::ToPrimitive::to_f64(&n)
                .filter(|x| x.is_finite())
                .ok_or_else(|| Error::type_mismatch("an int that fits a float", "a larger int")),
            other => Err(Error::type_mismatch("float", other.type_name())),
        }
    }
}

impl FromObject for String {
    fn from_object(obj: Object) -> Result<Self> {
        match obj {
            Object::Value(Value::Str(s)) => Ok(s),
            other => Err(Error::type_mismatch("str", other.type_name())),
        }
    }
}

/// `bytes` converts into `Vec<u8>`.
impl FromObject for Vec<u8> {
    fn from_object(obj: Object) -> Result<Self> {
        match obj {
            Object::Value(Value::Bytes(b)) => Ok(b),
            other => Err(Error::type_mismatch("bytes", other.type_name())),
        }
    }
}

impl<T: FromObject> FromObject for Option<T> {
    fn from_object(obj: Object) -> Result<Self> {
        match obj {
            Object::Value(Value::None) => Ok(None),
            other => T::from_object(other).map(Some),
        }
    }

    fn from_missing() -> Option<Self> {
        Some(None)
    }
}

/// A tuple of any length converts into a `Vec` of its converted items.
/// (`Vec<u8>` is bytes; use `Vec<Object>` and convert for a tuple of ints
/// that fit a byte.)
macro_rules! from_object_vec {
    ($($t:ty),*) => {$(
        impl FromObject for Vec<$t> {
            fn from_object(obj: Object) -> Result<Self> {
                obj.into_items()?.into_iter().map(<$t>::from_object).collect()
            }
        }
    )*};
}
from_object_vec!(
    Object,
    Value,
    NetRef,
    bool,
    i16,
    i32,
    i64,
    u16,
    u32,
    u64,
    usize,
    f64,
    String,
    Vec<u8>,
    BigInt
);

macro_rules! tuple_impls {
    ($( ($($n:tt $t:ident),+) )+) => {$(
        impl<$($t: FromObject),+> FromObject for ($($t,)+) {
            fn from_object(obj: Object) -> Result<Self> {
                let items = obj.into_items()?;
                const LEN: usize = [$($n),+].len();
                if items.len() != LEN {
                    return Err(Error::type_mismatch(format!("a tuple of {LEN}"), format!("a tuple of {}", items.len())));
                }
                let mut it = items.into_iter();
                Ok(($(
                    { let _ = $n; $t::from_object(it.next().unwrap_or(Object::Value(Value::None)))? },
                )+))
            }
        }

        impl<$($t: Into<Object>),+> IntoArgs for ($($t,)+) {
            #[allow(non_snake_case)]
            fn into_args(self) -> Vec<Object> {
                let ($($t,)+) = self;
                vec![$($t.into()),+]
            }
        }
    )+};
}

/// An argument list for a call.
///
/// Implemented for `()`, tuples of values that convert into [`Object`], and
/// `Vec<Object>`: `conn.root()?.call_method("add", (40, 2))`.
pub trait IntoArgs {
    /// The positional arguments.
    fn into_args(self) -> Vec<Object>;
}

impl IntoArgs for () {
    fn into_args(self) -> Vec<Object> {
        Vec::new()
    }
}

impl IntoArgs for Vec<Object> {
    fn into_args(self) -> Vec<Object> {
        self
    }
}

tuple_impls! {
    (0 A)
    (0 A, 1 B)
    (0 A, 1 B, 2 C)
    (0 A, 1 B, 2 C, 3 D)
    (0 A, 1 B, 2 C, 3 D, 4 E)
    (0 A, 1 B, 2 C, 3 D, 4 E, 5 F)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(i32::from_object(Object::from(5)).unwrap(), 5);
        assert!(matches!(u8::from_object(Object::from(300)), Err(Error::Type { .. })));
        assert_eq!(Option::<String>::from_object(Object::from(Value::None)).unwrap(), None);
        let t = Object::from(Value::Tuple(vec![Value::from(1), Value::from("a")]));
        assert_eq!(<(i64, String)>::from_object(t).unwrap(), (1, "a".to_string()));
        let v = Object::from(Value::Tuple(vec![Value::from(1.5), Value::from(2)]));
        assert_eq!(Vec::<f64>::from_object(v).unwrap(), vec![1.5, 2.0]);
        assert_eq!((1, "x", 2.5).into_args().len(), 3);
    }

    /// A value the peer picks never wraps into a fixed-width int: out of
    /// range is a type error naming the value (issue 14).
    #[test]
    fn out_of_range_ints_are_refused_not_wrapped() {
        let big = |text: &str| Object::from(Value::int(text.parse::<BigInt>().unwrap()));
        assert!(i64::from_object(big("9223372036854775808")).is_err());
        assert!(u64::from_object(Object::from(-1)).is_err());
        assert!(i32::from_object(Object::from(i64::from(i32::MAX) + 1)).is_err());
        assert!(usize::from_object(Object::from(-5)).is_err());
        assert_eq!(u64::from_object(big("18446744073709551615")).unwrap(), u64::MAX);
        assert_eq!(i128::from_object(big("-170141183460469231731687303715884105728")).unwrap(), i128::MIN);
        assert!(u128::from_object(big("340282366920938463463374607431768211456")).is_err());
        assert_eq!(f64::from_object(big("100000000000000000000")).unwrap(), 1e20);
        assert!(f64::from_object(big(&format!("1{}", "0".repeat(400)))).is_err());
    }
}
