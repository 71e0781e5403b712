//! The protocol layer: RPyC's symmetric connection engine, turning packets
//! into objects.
//!
//! Both ends of an RPyC connection run the same engine; "client" only means
//! the side that connected. The layer is split so that everything that does
//! not care what an object *is* is written once, for the Rust object world
//! and the Python one alike:
//!
//! * [`message`]: message and handler numbers, and the framing of a payload
//!   in rpyc 6.x's and 5.x's dialects (low level: for tools that read the
//!   wire; most users never need it);
//! * `core`: the world-agnostic engine: the send lock, the seq table, the
//!   rule that *the thread that waits is the thread that reads*, and how a
//!   wait ends (reply, deadline, connection end, or an interruption
//!   carrying its cause). It parses each header once and moves payloads;
//! * `exchange`: one request / reply / serve path over a trait of leaf
//!   operations that each object world implements: building requests,
//!   decoding replies, validating messages, boxing and unboxing, serving in
//!   rpyc's order of side effects;
//! * [`policy`]: rpyc's attribute policy (`_check_attr`), generic over where
//!   its settings come from and how an attribute is probed;
//! * [`boxing`], [`netref`], [`vinegar`], [`connection`]: the Rust object
//!   world: [`Object`] values, [`NetRef`] proxies, [`RemoteException`]s, and
//!   the [`Connection`] a Rust program holds; its leaves for the shared path
//!   are in `rust_world`, its handlers in `dispatch`, and its table of
//!   objects the peer holds in `objects`.
//!
//! The Python extension supplies the Python object world's leaves (rpyc's
//! own tables, netref classes and vinegar) to the same `core` and
//! `exchange`.

pub mod boxing;
pub mod connection;
pub(crate) mod core;
pub mod message;
pub mod netref;
pub mod policy;
pub mod vinegar;

mod convert;
mod dispatch;
pub(crate) mod exchange;
pub(crate) mod objects;
mod rust_world;

pub use boxing::{IdPack, Object};
pub use connection::{AsyncResult, BgServingThread, Config, Connection};
pub use convert::FromObject;
pub use message::Handler;
pub use netref::NetRef;
pub use policy::{Access, AttrPolicy};
pub use vinegar::RemoteException;

use std::fmt;

use crate::brine::BrineError;
use crate::channel::ChannelError;
use crate::stream::Interruption;

/// Everything a call over a connection can fail with.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Error {
    /// The peer raised an exception (its class, args and traceback inside).
    Remote(RemoteException),
    /// No reply arrived within the timeout. The request may still complete
    /// on the peer; its late reply is discarded.
    Timeout,
    /// The connection is closed (locally, or the peer went away); `reason`
    /// says which.
    Closed {
        /// Why the connection ended.
        reason: String,
    },
    /// The peer sent bytes that are not valid brine.
    Brine(BrineError),
    /// The peer sent valid brine that is not a valid RPyC message.
    Protocol(String),
    /// Opening the connection failed.
    Connect(String),
    /// The wait was abandoned on this thread before the reply came: a
    /// signal handler raised, or a request served during the wait asked
    /// for its exception to propagate here. The connection is intact; a
    /// late reply is dropped. The interruption carries the object world's
    /// own error.
    Interrupted(Interruption),
    /// A value did not have the type the caller asked for.
    Type {
        /// What the caller wanted.
        expected: String,
        /// What the value was.
        found: String,
    },
}

impl Error {
    pub(crate) fn protocol(msg: impl Into<String>) -> Error {
        Error::Protocol(msg.into())
    }

    pub(crate) fn type_mismatch(expected: impl Into<String>, found: impl Into<String>) -> Error {
        Error::Type { expected: expected.into(), found: found.into() }
    }

    /// The remote exception, if the peer raised one.
    pub fn remote(&self) -> Option<&RemoteException> {
        match self {
            Error::Remote(e) => Some(e),
            _ => None,
        }
    }

    /// True when the peer raised `StopIteration`.
    pub fn is_stop_iteration(&self) -> bool {
        self.remote().is_some_and(|e| e.is("StopIteration"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Remote(e) => write!(f, "{e}"),
            Error::Timeout => write!(f, "request timed out"),
            Error::Closed { reason } => write!(f, "connection closed: {reason}"),
            Error::Brine(e) => write!(f, "bad data from peer: {e}"),
            Error::Protocol(m) => write!(f, "protocol error: {m}"),
            Error::Connect(m) => write!(f, "cannot connect: {m}"),
            Error::Interrupted(why) => write!(f, "{why}"),
            Error::Type { expected, found } => write!(f, "expected {expected}, got {found}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Brine(e) => Some(e),
            Error::Remote(e) => Some(e),
            _ => None,
        }
    }
}

impl From<BrineError> for Error {
    fn from(e: BrineError) -> Self {
        Error::Brine(e)
    }
}

impl From<ChannelError> for Error {
    fn from(e: ChannelError) -> Self {
        match e {
            ChannelError::Timeout => Error::Timeout,
            ChannelError::Interrupted(why) => Error::Interrupted(why),
            other => Error::Closed { reason: other.to_string() },
        }
    }
}

impl From<RemoteException> for Error {
    fn from(e: RemoteException) -> Self {
        Error::Remote(e)
    }
}

/// The result type of the protocol layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;
