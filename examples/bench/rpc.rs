//! The rpyc-rs client as a benchmark driver: calls `root.echo(1)` on any
//! RPyC server whose root exposes `echo` (a Python `rpyc.Service` with
//! `exposed_echo`, or `rpyc-rs serve`'s demo service).
//!
//! Scenarios, each checked to return 1:
//!
//! * `trivial`: `f(1)` through a held netref `f = root.echo`: one CALL round
//!   trip, what Python's `f = conn.root.echo; f(1)` does;
//! * `root`: `root.echo(1)`, a GETATTR then a CALL, as Python's
//!   `conn.root.echo(1)` does (the root itself is held, as rpyc caches it);
//! * `callattr`: `root.call_method("echo", 1)`, the same call in one
//!   CALLATTR round trip (what a Rust user would write).
//!
//! `legacy` selects rpyc 5.x's message framing, which a client must choose
//! up front (a 5.x server cannot read 6.x messages, nor the reverse).

use std::sync::Arc;

use rpyc_rs::protocol::{Config, Connection, NetRef, Object};
use rpyc_rs::service::VoidService;
use rpyc_rs::FromObject;

use super::driver::{self, Target};

struct Rpc {
    root: NetRef,
    echo: NetRef,
}

fn check(result: rpyc_rs::protocol::Result<Object>) -> Result<(), String> {
    match i64::from_object(result.map_err(|e| e.to_string())?) {
        Ok(1) => Ok(()),
        Ok(v) => Err(format!("echo(1) returned {v}")),
        Err(e) => Err(e.to_string()),
    }
}

fn as_netref(obj: Object, what: &str) -> Result<NetRef, String> {
    obj.as_netref().cloned().ok_or_else(|| format!("{what} is not a remote object"))
}

impl Target for Rpc {
    fn op(&mut self, scenario: &str) -> Result<(), String> {
        match scenario {
            "trivial" => check(self.echo.call((1i64,))),
            "root" => {
                let f = as_netref(self.root.getattr("echo").map_err(|e| e.to_string())?, "root.echo")?;
                check(f.call((1i64,)))
            }
            "callattr" => check(self.root.call_method("echo", (1i64,))),
            other => Err(format!("unknown scenario {other:?} (have trivial, root, callattr)")),
        }
    }
}

/// Connects to `addr` (HOST:PORT) and drives calls.
pub fn client(addr: &str, legacy: bool) -> Result<(), String> {
    let (host, port) = addr.rsplit_once(':').ok_or_else(|| format!("{addr:?} is not HOST:PORT"))?;
    let port: u16 = port.parse().map_err(|_| format!("bad port in {addr:?}"))?;
    let setup = || -> Result<Rpc, String> {
        let config = Config::default().with_legacy_framing(legacy);
        let conn =
            Connection::connect_with(host, port, Arc::new(VoidService), config).map_err(|e| e.to_string())?;
        let root = conn.root().map_err(|e| e.to_string())?;
        let echo = as_netref(root.getattr("echo").map_err(|e| e.to_string())?, "root.echo")?;
        Ok(Rpc { root, echo })
    };
    match setup() {
        Ok(mut target) => {
            driver::drive(&mut target, "rpyc-rs (Rust client)");
            Ok(())
        }
        Err(e) => {
            driver::fail(&format!("setup: {e}"));
            Err(e)
        }
    }
}
