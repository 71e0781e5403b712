//! The protocol layer: RPyC's symmetric connection engine, turning packets
//! into objects.
//!
//! Both ends of an RPyC connection run the same engine; "client" only means
//! the side that connected. The layer is split so that the parts that do not
//! care what an object *is* are written once:
//!
//! * [`message`]: message and handler numbers, and the framing of
//!   `(msg, (seq, body))` payloads;
//! * [`core`]: the world-agnostic engine: the send lock, the seq table, and
//!   the rule that *the thread that waits is the thread that reads*. It moves
//!   raw payloads and calls back into an object world for requests;
//! * [`objects`]: rpyc's refcounted table of local objects sent by
//!   reference, generic over what an object is;
//! * [`boxing`], [`netref`], [`vinegar`], [`connection`]: the Rust object
//!   world: [`Object`] values, [`NetRef`] proxies, [`RemoteException`]s, and
//!   the [`Connection`] a Rust program holds.
//!
//! The Python extension plugs its own object world (Python objects) into the
//! same [`core`] and [`objects`].

pub mod boxing;
pub mod connection;
pub mod core;
pub mod message;
pub mod netref;
pub mod objects;
pub mod vinegar;

mod convert;
mod dispatch;

pub use boxing::{IdPack, Object};
pub use connection::{AsyncResult, BgServingThread, Config, Connection};
pub use convert::FromObject;
pub use message::Handler;
pub use netref::NetRef;
pub use vinegar::RemoteException;

use std::fmt;

use crate::brine::BrineError;
use crate::channel::ChannelError;

/// Everything a call over a connection can fail with.
#[derive(Debug, Clone)]
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
