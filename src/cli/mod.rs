//! The `rpyc-rs` command-line tool: poke at RPyC servers from a shell.
//!
//! ```text
//! rpyc-rs ping 127.0.0.1:18812 --count 1000      # latency of PING round trips
//! rpyc-rs eval 127.0.0.1:18812 '6 * 7'            # classic server: print repr(eval(EXPR))
//! rpyc-rs exec 127.0.0.1:18812 'import os'        # classic server: exec(CODE)
//! rpyc-rs call 127.0.0.1:18861 echo "(1, 'a')"    # any server: print repr(root.echo((1, 'a')))
//! rpyc-rs call /tmp/rpyc.sock add 1 b=2           # a Unix socket, a keyword argument
//! rpyc-rs call service:DEMO add 1 2 --registry 127.0.0.1   # found through a registry
//! ```
//!
//! An address is `HOST:PORT`, `[IPV6]:PORT`, `HOST` (port 18812, the
//! classic default), a Unix socket path (anything with a `/`, or the name
//! of an existing socket file), or `service:NAME` (see [`rpyc_rs::Address`]).
//! TLS, the registry and its subcommands are in `net.rs`.
//!
//! Exit status: 0 on success, 1 when the server raised (its exception and
//! traceback go to stderr), 2 for everything else: usage errors, bad
//! literals, connection, timeout and protocol failures.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

mod args;
mod decode;
mod logging;
mod net;
mod ping;
mod proxy;
mod serve;

use args::{parse_address, parse_call_args, parse_timeout, seconds, text_arg};
use ping::ping;
use rpyc_rs::classic::Classic;
use rpyc_rs::protocol::{Connection, Error, NetRef, Object, RemoteException};
use rpyc_rs::{Address, Connector, Dialect, FromObject};

#[derive(Parser, Debug)]
#[command(
    name = "rpyc-rs",
    version,
    args_override_self = true,
    about = "Talk to RPyC servers: ping them, call their services, run code on classic servers",
    after_help = "ADDR is HOST:PORT, [IPV6]:PORT, HOST (port 18812), a Unix socket path, or service:NAME.\n\
                  Exit status: 0 ok, 1 the server raised, 2 usage/connection/protocol error."
)]
struct Cli {
    /// Seconds to wait for the connection and for each reply.
    #[arg(long, global = true, value_name = "SECS", default_value = "30", value_parser = parse_timeout)]
    timeout: Duration,

    /// The server runs rpyc 5.x (whose messages are framed differently from
    /// 6.x); default: find out with one PING. Servers need no such flag.
    #[arg(long, global = true)]
    rpyc5: bool,

    /// Log more (connections, closes and why): -v info, -vv debug, -vvv
    /// trace. Without -v/-q the RUST_LOG variable decides; default: warnings.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    verbose: u8,

    /// Log less: -q errors only, -qq nothing.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    quiet: u8,
    #[command(flatten)]
    tls: net::TlsArgs,

    #[command(flatten)]
    registry: net::RegistryArg,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Measure PING round trips to any RPyC server (latency in µs).
    Ping {
        /// The server's address.
        #[arg(value_parser = parse_address)]
        addr: Address,
        /// How many round trips to time (after one warm-up).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
        count: u32,
        /// Payload bytes per PING (echoed back by the server; at most 256 MiB).
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(0..=MAX_PING_SIZE))]
        size: u32,
    },
    /// Evaluate a Python expression on a classic server and print its repr.
    ///
    /// Each invocation is a new connection with a fresh namespace: names
    /// set by an earlier `exec` are not visible (module state is).
    Eval {
        /// The classic server's address.
        #[arg(value_parser = parse_address)]
        addr: Address,
        /// The expression (`-` reads it from stdin).
        expr: String,
    },
    /// Execute Python statements on a classic server.
    Exec {
        /// The classic server's address.
        #[arg(value_parser = parse_address)]
        addr: Address,
        /// The statements (`-` reads them from stdin).
        code: String,
    },
    /// Call root.METHOD(*ARGS) on any RPyC server and print the result's repr.
    ///
    /// Each ARG is a Python literal: 42, -1.5e3, 'text', b'\x00', (1, 'a'),
    /// None, True... NAME=LITERAL passes a keyword argument. Quote strings
    /// for Python inside quotes for the shell: "'hello'". Negative numbers
    /// pass as they are; put `--` before other arguments starting with `-`.
    Call {
        /// The server's address.
        #[arg(value_parser = parse_address)]
        addr: Address,
        /// The method of the root (service) object; dots reach further
        /// (`child.method`).
        method: String,
        /// Arguments as Python literals, or NAME=LITERAL.
        #[arg(allow_negative_numbers = true)]
        args: Vec<String>,
    },
    /// Serve the built-in demo service (echo, add, counter, countdown, sleep,
    /// fail, call_back) to RPyC clients until SIGINT/SIGTERM.
    Serve {
        /// Interface to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// TCP port (0 picks a free one).
        #[arg(long, default_value_t = 18861)]
        port: u16,
        /// Listen on this Unix socket instead of TCP.
        #[arg(long, value_name = "PATH", conflicts_with_all = ["host", "port"])]
        unix: Option<PathBuf>,
        /// Threads: one per connection, a fixed pool, or serve one client and exit.
        #[arg(long, value_enum, default_value = "threaded")]
        mode: serve::ServeMode,
        /// Worker threads in pool mode.
        #[arg(long, default_value_t = 8)]
        workers: usize,
        /// Most connections open at once; a client past it is closed at once.
        #[arg(long, default_value_t = rpyc_rs::server::DEFAULT_MAX_CONNECTIONS)]
        max_connections: usize,
        /// Register the service (as DEMO) with --registry while serving.
        #[arg(long)]
        register: bool,
        /// Seconds running requests get to finish on SIGTERM/SIGINT (a
        /// second signal exits at once).
        #[arg(long, default_value_t = 5.0, value_parser = seconds)]
        grace: f64,
        /// Close a connection after this many seconds without a request
        /// (default: never).
        #[arg(long, value_parser = seconds)]
        idle_timeout: Option<f64>,
        /// End a connection whose client reads nothing of a reply for this
        /// many seconds (0: wait forever).
        #[arg(long, default_value_t = 10.0, value_parser = seconds)]
        write_timeout: f64,
    },
    /// Serve an rpyc registry (what rpyc_registry does) until SIGINT/SIGTERM.
    Registry(net::RegistryCmd),
    /// List the services registered with --registry (it must allow listing).
    List,
    /// Relay RPyC connections to a server: trace them, record them, and
    /// translate between rpyc 5.x and 6.x framing.
    Proxy(proxy::ProxyArgs),
    /// Read captured RPyC bytes (Wireshark raw, `proxy --record`) as a trace.
    Decode(decode::DecodeArgs),
}

/// The largest `--size` accepted: far beyond any useful latency probe, and
/// small enough that a typo cannot make us allocate gigabytes.
const MAX_PING_SIZE: i64 = 256 << 20;

/// Why a command failed, decided once so `main` only prints and exits.
enum Failure {
    /// The server raised: exit status 1.
    Remote { exc: Box<RemoteException>, hint: Option<&'static str> },
    /// Anything else: exit status 2.
    Other(String),
}

impl Failure {
    fn other(msg: impl Into<String>) -> Failure {
        Failure::Other(msg.into())
    }
}

/// Turns a protocol error into something a person can act on.
fn describe(e: Error, addr: &Address, timeout: Duration) -> Failure {
    match e {
        Error::Remote(exc) => Failure::Remote { exc: Box::new(exc), hint: None },
        Error::Timeout => Failure::other(format!(
            "no reply from {addr} within {} s (a slow call needs a larger --timeout)",
            timeout.as_secs_f64()
        )),
        Error::Closed { reason } => {
            Failure::other(format!("the connection to {addr} ended: {reason} (is it an RPyC server?)"))
        }
        Error::Brine(_) | Error::Protocol(_) => Failure::other(format!(
            "{addr} broke the protocol: {e} (is it an RPyC 5.x/6.x server, without TLS?)"
        )),
        Error::Connect(m) => Failure::other(format!("cannot connect to {m}")),
        other => Failure::other(format!("unexpected reply from {addr}: {other}")),
    }
}

/// An I/O error's text without the `(os error N)` tail, which tells a
/// person nothing the words do not.
fn io_text(e: &std::io::Error) -> String {
    let mut s = e.to_string();
    if let Some(i) = s.rfind(" (os error ") {
        s.truncate(i);
    }
    s
}

/// How to connect: set once from the command line before any connection
/// is made.
static NET: std::sync::OnceLock<Connector> = std::sync::OnceLock::new();

/// The connector every command uses (`--rpyc5`, `--tls`, `--registry`,
/// `--timeout`), with `addr` filled in.
fn connector(cli: &Cli) -> Result<Connector, Failure> {
    let timeout = cli.timeout;
    let mut c = Connector::new(Address::tcp("127.0.0.1", 0))
        .timeout(Some(timeout))
        .connect_timeout(Some(timeout))
        .registry(cli.registry.client(timeout.min(Duration::from_secs(5))).map_err(Failure::other)?);
    if cli.rpyc5 {
        c = c.dialect(Dialect::Rpyc5);
    }
    if let Some(tls) = cli.tls.client().map_err(Failure::other)? {
        c = c.tls(tls);
    }
    Ok(c)
}

fn connect(addr: &Address, _timeout: Duration) -> Result<Connection, Failure> {
    let base = NET.get().cloned().unwrap_or_else(|| Connector::new(addr.clone()));
    base.with_address(addr.clone()).open().map_err(|e| match e {
        Error::Connect(m) => Failure::other(format!("cannot connect to {m}")),
        other => Failure::other(format!("cannot connect to {addr}: {other}")),
    })
}

/// Python's `repr()` of a result: values locally, netrefs by asking their
/// owner (REPR), tuples holding netrefs piece by piece.
fn repr_object(obj: &Object) -> Result<String, Error> {
    Ok(match obj {
        Object::Value(v) => v.repr(),
        Object::Remote(n) => n.repr()?,
        Object::Tuple(items) => {
            let parts = items.iter().map(repr_object).collect::<Result<Vec<_>, _>>()?;
            if parts.len() == 1 {
                format!("({},)", parts[0])
            } else {
                format!("({})", parts.join(", "))
            }
        }
        Object::Local(o) => format!("<{} object>", o.type_name()),
    })
}

fn print_line(text: &str) {
    // A closed stdout (`| head`) is not worth an error message.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}").and_then(|_| out.flush());
}

/// What a command that needs a classic server adds to a remote
/// AttributeError about `eval` / `execute`.
const CLASSIC_HINT: &str =
    "eval and exec need a classic (SlaveService) server, such as `rpyc_classic --host 127.0.0.1`";

fn classic(addr: &Address, timeout: Duration) -> Result<Classic, Failure> {
    let conn = connect(addr, timeout)?;
    Classic::from_connection(conn).map_err(|e| describe(e, addr, timeout))
}

fn with_classic_hint(f: Failure) -> Failure {
    match f {
        // Only when the missing attribute is the classic service's own, not
        // when the user's expression raised an AttributeError.
        Failure::Remote { exc, .. }
            if exc.is("AttributeError")
                && ["'eval'", "'execute'"].iter().any(|name| exc.message().contains(name)) =>
        {
            Failure::Remote { exc, hint: Some(CLASSIC_HINT) }
        }
        other => other,
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    let timeout = cli.timeout;
    let _ = NET.set(connector(&cli)?);
    match cli.command {
        Command::Ping { addr, count, size } => ping(&addr, count, size as usize, timeout),
        Command::Serve {
            host,
            port,
            unix,
            mode,
            workers,
            max_connections,
            register,
            grace,
            idle_timeout,
            write_timeout,
        } => {
            let tls = cli.tls.server().map_err(Failure::other)?;
            let register = match register {
                true => Some(cli.registry.client(Duration::from_secs(2)).map_err(Failure::other)?),
                false => None,
            };
            serve::serve(serve::ServeArgs {
                host,
                port,
                unix,
                mode,
                workers,
                max_connections,
                grace: Duration::from_secs_f64(grace),
                idle_timeout: idle_timeout.map(Duration::from_secs_f64),
                write_timeout: (write_timeout > 0.0).then(|| Duration::from_secs_f64(write_timeout)),
                tls,
                register,
            })
            .map_err(Failure::other)
        }
        Command::Registry(cmd) => net::registry(cmd).map_err(Failure::other),
        Command::List => {
            let registry =
                cli.registry.client(timeout.min(Duration::from_secs(5))).map_err(Failure::other)?;
            net::list(&registry).map_err(Failure::other)
        }
        Command::Proxy(args) => proxy::run(args, timeout).map_err(Failure::other),
        Command::Decode(args) => decode::run(args).map_err(Failure::other),
        Command::Eval { addr, expr } => {
            let expr = text_arg(expr, "expression")?;
            let c = classic(&addr, timeout)?;
            let fail = |e| with_classic_hint(describe(e, &addr, timeout));
            let result = c.eval(&expr).map_err(fail)?;
            let text = repr_object(&result).map_err(|e| describe(e, &addr, timeout))?;
            drop(result);
            c.close();
            print_line(&text);
            Ok(())
        }
        Command::Exec { addr, code } => {
            let code = text_arg(code, "code")?;
            let c = classic(&addr, timeout)?;
            c.execute(&code).map_err(|e| with_classic_hint(describe(e, &addr, timeout)))?;
            c.close();
            Ok(())
        }
        Command::Call { addr, method, args } => {
            // Bad literals are usage errors: report them before connecting.
            let (args, kwargs) = parse_call_args(&args)?;
            let path: Vec<&str> = method.split('.').collect();
            if path.iter().any(|p| p.is_empty()) {
                return Err(Failure::other(format!("{method:?} is not a method name")));
            }
            let conn = connect(&addr, timeout)?;
            let fail = |e| describe(e, &addr, timeout);
            let mut target = conn.root().map_err(fail)?;
            let (last, parents) = path.split_last().ok_or_else(|| Failure::other("empty method name"))?;
            for part in parents {
                target = NetRef::from_object(target.getattr(part).map_err(fail)?).map_err(fail)?;
            }
            let result = target.call_method_with(last, args, kwargs).map_err(fail)?;
            let text = repr_object(&result).map_err(fail)?;
            drop((result, target));
            conn.close();
            print_line(&text);
            Ok(())
        }
    }
}

/// Runs the command line `args` (the program name first, as in
/// `std::env::args_os()`) and returns the process's exit status (0 ok, 1
/// the server raised, 2 usage, connection or protocol error).
///
/// This is the whole `rpyc-rs` tool: the cargo binary is
/// `ExitCode::from(rpyc_rs::cli::main(std::env::args_os()))`, and the
/// console script `pip install` puts on PATH calls it through the Python
/// extension. Use it to embed the tool in another binary. `--help` and
/// usage errors are printed here rather than exiting the process.
///
/// ```
/// let status = rpyc_rs::cli::main(["rpyc-rs", "call", "127.0.0.1:1", "add", "1", "'a"]);
/// assert_eq!(status, 2); // 'a is not a Python literal: a usage error, found before connecting
/// ```
pub fn main<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are "errors" that go to stdout, status 0.
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    logging::init(cli.verbose, cli.quiet);
    match run(cli) {
        Ok(()) => 0,
        Err(Failure::Remote { exc, hint }) => {
            let mut err = std::io::stderr().lock();
            let tb = exc.traceback.trim_end();
            if !tb.is_empty() {
                let _ = writeln!(err, "{tb}\n");
            }
            let _ = writeln!(err, "rpyc-rs: the server raised {}", summary(&exc));
            if let Some(h) = hint {
                let _ = writeln!(err, "hint: {h}");
            }
            1
        }
        Err(Failure::Other(msg)) => {
            let _ = writeln!(std::io::stderr().lock(), "rpyc-rs: {msg}");
            2
        }
    }
}

/// `ValueError: message`, as the last line of a Python traceback reads.
fn summary(exc: &RemoteException) -> String {
    let msg = exc.message();
    if msg.is_empty() {
        exc.qualified_name()
    } else {
        format!("{}: {msg}", exc.qualified_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
