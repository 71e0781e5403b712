//! Typed arguments and return values: what makes a plain closure a method.
//!
//! A method's arguments are converted from the wire with
//! [`FromObject`](crate::protocol::FromObject); a mismatch reaches the caller
//! as a `TypeError` naming the method and the argument. `Option<T>`
//! parameters may be omitted. A method that needs the connection (to call
//! back into the client) or the raw arguments takes [`&Args`](Args) instead.
//!
//! [`Method`] turns a closure into one signature that takes [`Args`]; the
//! builder (`builder.rs`) stores it in that form.

use std::sync::Arc;

use crate::brine::Value;
use crate::protocol::{Connection, FromObject, NetRef, Object, RemoteException};

use super::{Expose, HandlerResult, Kwargs};

/// The arguments of one call, with typed accessors.
pub struct Args<'a> {
    pub(super) conn: &'a Connection,
    pub(super) method: &'a str,
    pub(super) positional: Vec<Object>,
    pub(super) kwargs: Kwargs,
    pub(super) params: &'a [String],
}

impl<'a> Args<'a> {
    /// The connection the call came in on (to call back into the peer).
    pub fn conn(&self) -> &Connection {
        self.conn
    }

    /// The positional arguments.
    pub fn positional(&self) -> &[Object] {
        &self.positional
    }

    /// The keyword arguments, in call order.
    pub fn kwargs(&self) -> &[(String, Object)] {
        &self.kwargs
    }

    /// How many positional arguments were passed.
    pub fn len(&self) -> usize {
        self.positional.len()
    }

    /// True when no positional argument was passed.
    pub fn is_empty(&self) -> bool {
        self.positional.is_empty()
    }

    fn raw(&self, i: usize) -> Option<Object> {
        if let Some(o) = self.positional.get(i) {
            return Some(o.clone());
        }
        let name = self.params.get(i)?;
        self.kwargs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    /// Argument `i` (positional, or by its declared name as a keyword),
    /// converted to `T`; a `TypeError` for the caller when it is missing or
    /// of the wrong type.
    pub fn get<T: FromObject>(&self, i: usize) -> HandlerResult<T> {
        match self.raw(i) {
            Some(o) => convert(self.method, i, o),
            None => T::from_missing().ok_or_else(|| {
                RemoteException::type_error(format!(
                    "{}() missing required argument {}",
                    self.method,
                    self.params.get(i).map_or_else(|| format!("#{}", i + 1), |n| format!("'{n}'"))
                ))
            }),
        }
    }

    /// A keyword argument by name, converted to `T`, if it was passed.
    pub fn kwarg<T: FromObject>(&self, name: &str) -> HandlerResult<Option<T>> {
        match self.kwargs.iter().find(|(k, _)| k == name) {
            Some((_, v)) => convert(self.method, usize::MAX, v.clone()).map(Some),
            None => Ok(None),
        }
    }

    /// Arguments from `start` on (Python's `*args`).
    pub fn rest(&self, start: usize) -> Vec<Object> {
        self.positional.iter().skip(start).cloned().collect()
    }

    fn check_arity(&self, max: usize) -> HandlerResult<()> {
        if self.positional.len() > max {
            return Err(RemoteException::type_error(format!(
                "{}() takes {max} positional argument{} but {} were given",
                self.method,
                if max == 1 { "" } else { "s" },
                self.positional.len()
            )));
        }
        for (k, _) in &self.kwargs {
            if !self.params.iter().take(max).any(|p| p == k) {
                return Err(RemoteException::type_error(format!(
                    "{}() got an unexpected keyword argument '{k}'",
                    self.method
                )));
            }
        }
        Ok(())
    }
}

pub(super) fn convert<T: FromObject>(method: &str, i: usize, o: Object) -> HandlerResult<T> {
    T::from_object(o).map_err(|e| {
        let which = if i == usize::MAX { String::new() } else { format!(" {}", i + 1) };
        RemoteException::type_error(format!("{method}() argument{which}: {e}"))
    })
}

/// What a method may return: anything that converts into an [`Object`], or
/// a `Result` of it with a [`RemoteException`] for the caller.
pub trait IntoReturn {
    /// Converts the return value.
    fn into_return(self) -> HandlerResult;
}

macro_rules! into_return {
    ($($t:ty),*) => {$(
        impl IntoReturn for $t {
            fn into_return(self) -> HandlerResult { Ok(Object::from(self)) }
        }
    )*};
}
into_return!(
    i8,
    i16,
    i32,
    i64,
    u8,
    u16,
    u32,
    u64,
    usize,
    i128,
    u128,
    f32,
    f64,
    bool,
    String,
    &'static str,
    Value,
    NetRef
);

impl IntoReturn for () {
    fn into_return(self) -> HandlerResult {
        Ok(Object::Value(Value::None))
    }
}
impl IntoReturn for Object {
    fn into_return(self) -> HandlerResult {
        Ok(self)
    }
}
impl IntoReturn for Vec<u8> {
    /// Bytes.
    fn into_return(self) -> HandlerResult {
        Ok(Object::Value(Value::Bytes(self)))
    }
}
impl IntoReturn for Vec<Object> {
    /// A tuple.
    fn into_return(self) -> HandlerResult {
        Ok(Object::tuple(self))
    }
}
impl IntoReturn for Arc<dyn Expose> {
    fn into_return(self) -> HandlerResult {
        Ok(Object::Local(self))
    }
}
impl<T: IntoReturn> IntoReturn for Option<T> {
    fn into_return(self) -> HandlerResult {
        self.map_or(Ok(Object::Value(Value::None)), T::into_return)
    }
}
impl<T: IntoReturn> IntoReturn for Result<T, RemoteException> {
    fn into_return(self) -> HandlerResult {
        self.and_then(T::into_return)
    }
}

/// A closure usable as a method. Implemented for closures taking up to six
/// [`FromObject`] arguments, and for closures taking [`&Args`](Args).
pub trait Method<Marker>: Send + Sync + 'static {
    /// Runs the method.
    fn invoke(&self, args: &Args<'_>) -> HandlerResult;
}

/// Marker for closures that take [`&Args`](Args).
pub struct RawArgs;

impl<F, R> Method<RawArgs> for F
where
    F: Fn(&Args<'_>) -> R + Send + Sync + 'static,
    R: IntoReturn,
{
    fn invoke(&self, args: &Args<'_>) -> HandlerResult {
        self(args).into_return()
    }
}

macro_rules! typed_method {
    ($n:expr; $($i:tt $t:ident),*) => {
        impl<F, R, $($t),*> Method<(R, $($t,)*)> for F
        where
            F: Fn($($t),*) -> R + Send + Sync + 'static,
            R: IntoReturn,
            $($t: FromObject,)*
        {
            #[allow(unused_variables)]
            fn invoke(&self, args: &Args<'_>) -> HandlerResult {
                args.check_arity($n)?;
                self($(args.get::<$t>($i)?),*).into_return()
            }
        }
    };
}
typed_method!(0;);
typed_method!(1; 0 A);
typed_method!(2; 0 A, 1 B);
typed_method!(3; 0 A, 1 B, 2 C);
typed_method!(4; 0 A, 1 B, 2 C, 3 D);
typed_method!(5; 0 A, 1 B, 2 C, 3 D, 4 E);
typed_method!(6; 0 A, 1 B, 2 C, 3 D, 4 E, 5 G);
