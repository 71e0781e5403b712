//! `bench`: the Rust processes `ci/bench_calls.py` measures against stock
//! rpyc. Build with `cargo build --release --example bench`.
//!
//! ```text
//! bench pingpong-serve [--port P]          raw TCP echo server (the floor's far end)
//! bench pingpong-client HOST:PORT --req N --rep M
//!                                          raw TCP ping-pong client: N bytes out, M back
//! bench rpc-client HOST:PORT [--rpyc5]     the rpyc-rs client calling root.echo(1) on
//!                                          any RPyC server (Python's or `rpyc-rs serve`);
//!                                          --rpyc5 for an rpyc 5.x server
//! bench relay --to HOST:PORT [--poll]      the floor of any relay (`ci/bench proxy`): a
//!                                          minimal TCP relay, a thread per direction
//!                                          or, --poll, one for both (the proxy's shapes)
//! ```
//!
//! The raw ping-pong is the floor under every RPyC call on this machine:
//! the same number of bytes each way as a trivial call, the same one
//! `write` and one `read` per direction, and nothing else: no framing, no
//! serialization, no dispatch. Whatever an RPyC call costs above it is the
//! price of the protocol stack.
//!
//! The servers print `listening on HOST:PORT` as their first line (as
//! `rpyc-rs serve` does) and exit when their stdin closes, so a server never
//! outlives the benchmark that started it. The clients speak the small
//! line protocol in [`driver`], shared with `ci/bench_peers/client.py`, so
//! one orchestrator can drive Rust and Python clients alike.

mod driver;
mod pingpong;
mod relay;
mod rpc;

use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!(
        "usage: bench pingpong-serve [--port P]\n       \
         bench pingpong-client HOST:PORT --req BYTES --rep BYTES\n       \
         bench rpc-client HOST:PORT [--rpyc5]\n       \
         bench relay --to HOST:PORT [--poll]"
    );
    ExitCode::from(2)
}

/// The value following `--name` in `args`, parsed.
fn opt<T: std::str::FromStr>(args: &[String], name: &str) -> Result<Option<T>, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(None),
        Some(i) => {
            let v = args.get(i + 1).ok_or_else(|| format!("{name} needs a value"))?;
            v.parse().map(Some).map_err(|_| format!("{name}: bad value {v:?}"))
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some("pingpong-serve") => pingpong::serve(opt(args, "--port")?.unwrap_or(0)),
        Some("pingpong-client") => {
            let addr = args.get(1).ok_or("pingpong-client needs HOST:PORT")?;
            let req = opt(args, "--req")?.ok_or("pingpong-client needs --req BYTES")?;
            let rep = opt(args, "--rep")?.ok_or("pingpong-client needs --rep BYTES")?;
            pingpong::client(addr, req, rep)
        }
        Some("rpc-client") => {
            let addr = args.get(1).ok_or("rpc-client needs HOST:PORT")?;
            rpc::client(addr, args.iter().any(|a| a == "--rpyc5"))
        }
        Some("relay") => {
            let to: String = opt(args, "--to")?.ok_or("relay needs --to HOST:PORT")?;
            relay::serve(&to, args.iter().any(|a| a == "--poll"))
        }
        _ => Err(String::new()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is_empty() => usage(),
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}
