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
//! A service and a client talking over an in-memory stream (over TCP it is
//! [`ServerBuilder`] and [`Connection::connect`]):
//!
//! ```
//! use std::sync::Arc;
//! use rpyc_rs::service::{Service, VoidService};
//! use rpyc_rs::stream::Stream;
//! use rpyc_rs::{Config, Connection, FromObject};
//!
//! let (a, b) = Stream::pair();
//! let service = Service::builder("CalculatorService").method("add", |x: i64, y: i64| x + y).build();
//! let server = Connection::new(a, service, Config::default());
//! std::thread::spawn(move || server.serve_all());
//!
//! let client = Connection::new(b, Arc::new(VoidService), Config::default());
//! let root = client.root().unwrap();
//! assert_eq!(i64::from_object(root.call_method("add", (40, 2)).unwrap()).unwrap(), 42);
//! let err = root.call_method("add", (1, "x")).unwrap_err();
//! assert_eq!(err.remote().unwrap().name, "TypeError");
//! ```
//!
//! And brine on its own:
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
#[doc(hidden)]
pub mod fuzzing;
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
#[cfg(feature = "python")]
#[doc(hidden)]
pub use python::fuzzing as python_fuzzing;
