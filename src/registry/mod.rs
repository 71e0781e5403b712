//! rpyc's service registry, both ways: finding servers by service name.
//!
//! rpyc servers started with `auto_register` announce their service names
//! and port to a registry (`rpyc_registry`) every minute; clients ask it
//! where a name is served (`connect_by_service`, `discover`) or what is
//! served at all (`list_services`). The protocol is one brine tuple each
//! way, over UDP datagrams or a short TCP exchange (one request, one reply,
//! close), on port 18811:
//!
//! | request | reply |
//! |---|---|
//! | `("RPYC", "QUERY", (name,))` | `((host, port), ...)` |
//! | `("RPYC", "LIST", ((filter_host,),))` | `(name, ...)`, or `None` when listing is off |
//! | `("RPYC", "REGISTER", ((alias, ...), port))` | `"OK"` |
//! | `("RPYC", "UNREGISTER", (port,))` | `"OK"` (UDP clients do not wait for it) |
//!
//! The registry records the host a registration came *from*, with the
//! port it names. Names are matched in upper case. An entry not refreshed
//! within the pruning timeout (rpyc's default: 4 minutes) is dropped when a
//! query meets it.
//!
//! This module has the three roles: [`RegistryClient`] (query, list,
//! register, unregister), [`Registrar`] (a server's background
//! re-registration, unregistering when it stops) and [`RegistryServer`].
//! The connection layer ([`crate::address`]) uses the client to resolve
//! `service:NAME` addresses.

mod client;
mod server;

pub use client::{Registrar, RegistryClient};
pub use server::{RegistryHandle, RegistryServer, MAX_ENTRIES, MAX_TCP_CLIENTS};

use std::fmt;
use std::io;
use std::time::Duration;

use crate::brine::{self, DecodeOptions, Value};

/// The registry's port (rpyc's `REGISTRY_PORT`).
pub const REGISTRY_PORT: u16 = 18811;

/// The largest datagram rpyc sends or reads (`MAX_DGRAM_SIZE`); replies to
/// LIST may be ten times larger.
pub const MAX_DGRAM_SIZE: usize = 1500;

/// How often a server re-registers (rpyc's `REREGISTER_INTERVAL`).
pub const REREGISTER_INTERVAL: Duration = Duration::from_secs(60);

/// How long an entry lives without being refreshed (rpyc's
/// `DEFAULT_PRUNING_TIMEOUT`).
pub const DEFAULT_PRUNING_TIMEOUT: Duration = Duration::from_secs(4 * 60);

/// How long a client waits for a registry's answer by default (rpyc's
/// `timeout=2`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// UDP datagrams or a TCP exchange: a registry speaks one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Transport {
    /// Datagrams (rpyc's `UDPRegistryServer` / `UDPRegistryClient`).
    #[default]
    Udp,
    /// One TCP connection per request (`TCPRegistryServer` / `TCPRegistryClient`).
    Tcp,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        })
    }
}

/// What a registry exchange can fail with.
#[derive(Debug)]
#[non_exhaustive]
pub enum RegistryError {
    /// Sending, connecting or receiving failed.
    Io(io::Error),
    /// No answer arrived within the timeout.
    Timeout {
        /// Where we asked.
        registry: String,
        /// How long we waited.
        waited: Duration,
    },
    /// The answer was not what the protocol says it is.
    BadReply(String),
    /// The registry refuses to list its services (rpyc's default:
    /// `rpyc_registry` needs `--listing`).
    ListingDisabled,
    /// No server is registered for the name.
    NotFound(String),
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryError::Io(e) => write!(f, "registry: {e}"),
            RegistryError::Timeout { registry, waited } => {
                write!(f, "no answer from the registry at {registry} within {:.1} s", waited.as_secs_f64())
            }
            RegistryError::BadReply(m) => write!(f, "the registry answered nonsense: {m}"),
            RegistryError::ListingDisabled => {
                write!(f, "the registry does not allow listing (rpyc_registry needs --listing)")
            }
            RegistryError::NotFound(name) => write!(f, "no servers exposing {name:?} are registered"),
        }
    }
}

impl std::error::Error for RegistryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RegistryError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for RegistryError {
    fn from(e: io::Error) -> Self {
        RegistryError::Io(e)
    }
}

/// `("RPYC", cmd, args)` as brine.
fn request(cmd: &str, args: Value) -> Vec<u8> {
    let v = Value::Tuple(vec![Value::from("RPYC"), Value::from(cmd), args]);
    // Only strings, ints and tuples: encoding cannot fail.
    brine::encode(&v).unwrap_or_default()
}

/// Decoding options for registry messages: a registry tuple is three
/// levels deep, so anything deeper is garbage.
fn decode_options() -> DecodeOptions {
    DecodeOptions { max_depth: 8, max_int_digits: 32 }
}
