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
//! | reaching peers | [`address`], [`registry`], [`stream::tls`] | addresses, TLS, service names into open connections |
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
//! use rpyc_rs::{Config, Connection};
//!
//! let (a, b) = Stream::pair();
//! let service = Service::builder("CalculatorService").method("add", |x: i64, y: i64| x + y).build();
//! let server = Connection::new(a, service, Config::default());
//! std::thread::spawn(move || server.serve_all());
//!
//! let client = Connection::new(b, Arc::new(VoidService), Config::default());
//! let root = client.root().unwrap();
//! assert_eq!(root.call_method("add", (40, 2)).unwrap().extract::<i64>().unwrap(), 42);
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
#![warn(missing_docs)]

// Lets code inside the crate say `rpyc_rs::...` as the outside does: the
// CLI's subcommands (`cli/`) are written as users of the public API.
extern crate self as rpyc_rs;

pub mod address;
pub mod brine;
pub mod channel;
pub mod classic;
#[cfg(feature = "cli")]
pub mod cli;
// Entry points for the coverage-guided fuzz targets (fuzz/): not part of
// the supported API.
#[doc(hidden)]
pub mod fuzzing;
// Support for the command-line tool (its argument parser for Python
// literals): not part of the supported API.
#[doc(hidden)]
pub mod literal;
// The listening socket of the servers and the proxy (crate-internal).
mod fasthash;
mod listener;
pub mod protocol;
pub mod proxy;
pub mod registry;
pub mod server;
pub mod service;
pub mod stream;
pub mod trace;

pub use address::{Address, Connector, Dialect};
pub use brine::Value;
pub use protocol::{AttrPolicy, Config, Connection, Error, FromObject, NetRef, Object, RemoteException};
pub use server::{Mode, Server, ServerBuilder};
pub use service::Expose;

#[cfg(feature = "python")]
mod python;
#[cfg(feature = "python")]
#[doc(hidden)]
pub use python::fuzzing as python_fuzzing;
