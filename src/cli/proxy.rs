//! `rpyc-rs proxy`: the relay of `rpyc_rs::proxy` from the command line.
//!
//! Prints `listening on ADDR, relaying to ADDR` as the first line of
//! stdout (scripts wait for it), then the trace when `--trace` is on;
//! notices (a connection ended early, and why) go to stderr. SIGINT or
//! SIGTERM ends every connection, prints their summaries and exits 0.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::{Args, ValueEnum};

use rpyc_rs::protocol::message::Dialect;
use rpyc_rs::proxy::{DialectChoice, Endpoint, ProxyBuilder};
use rpyc_rs::trace::format::Format;

use rpyc_rs::Address;

use super::{io_text, parse_address};

/// Trace output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TraceFormat {
    /// Aligned text lines.
    Text,
    /// JSON lines.
    Json,
}

/// A side's message framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DialectArg {
    /// rpyc 5.x.
    #[value(name = "5")]
    V5,
    /// rpyc 6.x.
    #[value(name = "6")]
    V6,
    /// Client: from its first message. Server: probed once with a PING.
    Auto,
}

/// What `proxy` was asked for.
#[derive(Args, Debug)]
pub struct ProxyArgs {
    /// Where clients connect: HOST:PORT or a Unix socket path.
    #[arg(long, value_parser = parse_address)]
    listen: Address,
    /// The real server: HOST:PORT or a Unix socket path.
    #[arg(long, value_parser = parse_address)]
    to: Address,
    /// Print one line per message (`--trace=json`: JSON lines) and a
    /// summary per connection.
    #[arg(long, value_enum, num_args = 0..=1, require_equals = true, default_missing_value = "text")]
    trace: Option<TraceFormat>,
    /// The clients' rpyc: 5, 6, or auto (from each client's first message).
    #[arg(long, value_enum, default_value = "auto")]
    client_dialect: DialectArg,
    /// The server's rpyc: 5, 6, or auto (probed once with a PING; a 5.x
    /// server logs that message as unreadable).
    #[arg(long, value_enum, default_value = "auto")]
    server_dialect: DialectArg,
    /// Write what each side sends, raw, to DIR/cN.client.raw and
    /// DIR/cN.server.raw (read them with `rpyc-rs decode`).
    #[arg(long, value_name = "DIR")]
    record: Option<PathBuf>,
}

/// The socket a side of the relay uses: TCP or a Unix socket (a program
/// or a registry name is no place to listen on or relay to).
fn endpoint(a: &Address) -> Result<Endpoint, String> {
    match a {
        Address::Unix(p) => Ok(Endpoint::Unix(p.clone())),
        Address::Tcp { .. } => Ok(Endpoint::Tcp(a.to_string())),
        other => Err(format!("the proxy needs a HOST:PORT or a Unix socket path, not {other}")),
    }
}

fn choice(d: DialectArg) -> DialectChoice {
    match d {
        DialectArg::V5 => DialectChoice::Fixed(Dialect::Rpyc5),
        DialectArg::V6 => DialectChoice::Fixed(Dialect::Rpyc6),
        DialectArg::Auto => DialectChoice::Auto,
    }
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_sig: libc::c_int) {
    // Only an atomic store: the one thing a signal handler may safely do.
    STOP.store(true, Ordering::SeqCst);
}

/// Runs the proxy until SIGINT/SIGTERM; `timeout` bounds connecting to the
/// server (and probing its dialect). Errors are messages for the user.
pub fn run(args: ProxyArgs, timeout: Duration) -> Result<(), String> {
    let mut b = ProxyBuilder::new(endpoint(&args.listen)?, endpoint(&args.to)?)
        .connect_timeout(timeout)
        .client_dialect(choice(args.client_dialect))
        .server_dialect(choice(args.server_dialect))
        .notices(Box::new(std::io::stderr()));
    if let Some(f) = args.trace {
        let format = if f == TraceFormat::Json { Format::Json } else { Format::Text };
        b = b.trace(format, Box::new(std::io::stdout()));
    }
    if let Some(dir) = args.record {
        b = b.record(dir);
    }
    let proxy = b.bind().map_err(|e| format!("cannot listen on {}: {}", args.listen, io_text(&e)))?;
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a plain C handler that only stores to an atomic.
        unsafe {
            libc::signal(sig, on_signal as *const () as libc::sighandler_t);
        }
    }
    let addr = proxy.local_addr();
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on {addr}, relaying to {}", args.to);
        let _ = out.flush();
    }
    proxy.serve(&STOP).map_err(|e| format!("the proxy on {addr} failed: {e}"))?;
    eprintln!("rpyc-rs: proxy on {addr} stopped");
    Ok(())
}
