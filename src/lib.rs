//! # rpyc-rs
//!
//! RPyC's wire protocol in Rust. RPyC is four layers, each turning one thing
//! into the next, and this crate keeps them visible:
//!
//! | layer | module | turns |
//! |---|---|---|
//! | bytes | [`stream`], [`brine`] | sockets and pipes into bytes; values into brine bytes |
//! | packets | [`channel`] | bytes into `!LB` frames (zlib above 3000 bytes) |
//! | objects | [`protocol`] | packets into requests, replies, netrefs and exceptions |
//! | services | [`service`], [`server`] | Rust objects into something a peer can use, and servers for them |
//!
//! Everything here is byte-compatible with the `rpyc` package (5.3.x and 6.0.x).
//!
//! ```
//! use rpyc_rs::brine::{self, Value};
//!
//! let v = Value::Tuple(vec![Value::from(7), Value::from("he"), Value::None]);
//! let bytes = brine::encode(&v).unwrap();
//! // The exact bytes rpyc.core.brine.dump((7, "he", None)) produces.
//! assert_eq!(bytes, b"\x12\x57\x08\x0bhe\x00");
//! assert_eq!(brine::decode(&bytes).unwrap(), v);
//! ```

#![forbid(unsafe_op_in_unsafe_fn)]

pub mod brine;
pub mod channel;
pub mod classic;
pub mod literal;
pub mod protocol;
pub mod server;
pub mod service;
pub mod stream;

pub use brine::Value;
pub use protocol::{Config, Connection, Error, FromObject, NetRef, Object, RemoteException};
pub use server::{Mode, Server, ServerBuilder};
pub use service::Expose;

#[cfg(feature = "python")]
mod python;
