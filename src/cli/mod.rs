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

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};

mod decode;
mod logging;
mod net;
mod proxy;
mod serve;

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

/// Parses a number of seconds: finite, not negative, at most a day.
fn seconds(text: &str) -> Result<f64, String> {
    let v: f64 = text.parse().map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if v.is_finite() && (0.0..=86_400.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{text} is not between 0 and 86400 seconds"))
    }
}

/// The largest `--size` accepted: far beyond any useful latency probe, and
/// small enough that a typo cannot make us allocate gigabytes.
const MAX_PING_SIZE: i64 = 256 << 20;

fn parse_address(s: &str) -> Result<Address, String> {
    s.parse::<Address>().map_err(|e| e.to_string())
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    let secs: f64 = s.trim().parse().map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !secs.is_finite() || secs <= 0.0 {
        return Err(format!("{s:?}: the timeout must be a positive number of seconds"));
    }
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
}

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

/// `-` means "read it from stdin", for code too long or too quoted for a
/// command line.
fn text_arg(arg: String, what: &str) -> Result<String, Failure> {
    if arg != "-" {
        return Ok(arg);
    }
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .map_err(|e| Failure::other(format!("cannot read the {what} from stdin: {}", io_text(&e))))?;
    Ok(s)
}

/// Call arguments: positional literals, then `NAME=LITERAL` keywords.
type CallArgs = (Vec<Object>, Vec<(String, Object)>);

fn parse_call_args(raw: &[String]) -> Result<CallArgs, Failure> {
    let mut args = Vec::new();
    let mut kwargs: Vec<(String, Object)> = Vec::new();
    for (i, text) in raw.iter().enumerate() {
        let n = i + 1;
        let (name, literal) = match keyword_split(text) {
            Some((name, lit)) => (Some(name), lit),
            None => (None, text.as_str()),
        };
        let value = rpyc_rs::literal::parse(literal)
            .map_err(|e| Failure::other(format!("argument {n} ({text:?}) is not a Python literal: {e}")))?;
        match name {
            Some(name) => {
                if kwargs.iter().any(|(k, _)| k == name) {
                    return Err(Failure::other(format!("keyword argument repeated: {name}")));
                }
                kwargs.push((name.to_owned(), Object::Value(value)));
            }
            None if !kwargs.is_empty() => {
                return Err(Failure::other(format!(
                    "argument {n} ({text:?}): a positional argument follows a keyword argument"
                )));
            }
            None => args.push(Object::Value(value)),
        }
    }
    Ok((args, kwargs))
}

/// `NAME=rest` when `text` starts with an identifier and a single `=`.
fn keyword_split(text: &str) -> Option<(&str, &str)> {
    let (name, rest) = text.split_once('=')?;
    let mut chars = name.chars();
    let first = chars.next()?;
    let ident = (first == '_' || first.is_alphabetic()) && chars.all(|c| c == '_' || c.is_alphanumeric());
    (ident && !rest.starts_with('=')).then_some((name, rest))
}

fn ping(addr: &Address, count: u32, size: usize, timeout: Duration) -> Result<(), Failure> {
    let conn = connect(addr, timeout)?;
    let fail = |e| describe(e, addr, timeout);
    // Not all zeros, so a compressing channel does not flatter the numbers.
    let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
    // The first round trip pays for lazy setup on both sides; leave it out.
    conn.ping(&data, timeout).map_err(fail)?;
    let mut times = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let t0 = Instant::now();
        conn.ping(&data, timeout).map_err(fail)?;
        times.push(t0.elapsed());
    }
    conn.close();
    let s = Stats::of(&mut times);
    print_line(&format!("PING {addr}: {count} round trips of {size} bytes"));
    for (name, d) in [("min", s.min), ("median", s.median), ("mean", s.mean), ("p99", s.p99), ("max", s.max)]
    {
        print_line(&format!("{name:<7}{:>10.1} µs", d.as_secs_f64() * 1e6));
    }
    Ok(())
}

/// Latency statistics of a sample.
struct Stats {
    min: Duration,
    median: Duration,
    mean: Duration,
    p99: Duration,
    max: Duration,
}

impl Stats {
    /// Sorts `times` (which must not be empty) and summarises it; p99 is
    /// the nearest-rank percentile, an observed value.
    fn of(times: &mut [Duration]) -> Stats {
        times.sort_unstable();
        let n = times.len().max(1);
        let at = |i: usize| times.get(i.min(n - 1)).copied().unwrap_or_default();
        let median = if n % 2 == 1 { at(n / 2) } else { (at(n / 2 - 1) + at(n / 2)) / 2 };
        let total: Duration = times.iter().sum();
        Stats {
            min: at(0),
            median,
            mean: total / n as u32,
            p99: at((n * 99).div_ceil(100).saturating_sub(1)),
            max: at(n - 1),
        }
    }
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
    fn addresses() {
        let tcp = |h: &str, p| Address::tcp(h, p);
        use rpyc_rs::classic::DEFAULT_PORT;
        assert_eq!(parse_address("127.0.0.1:18812"), Ok(tcp("127.0.0.1", 18812)));
        assert_eq!(parse_address("localhost:1"), Ok(tcp("localhost", 1)));
        assert_eq!(parse_address("localhost"), Ok(tcp("localhost", DEFAULT_PORT)));
        assert_eq!(parse_address("[::1]:5000"), Ok(tcp("::1", 5000)));
        assert_eq!(parse_address("[::1]"), Ok(tcp("::1", DEFAULT_PORT)));
        assert_eq!(parse_address("/tmp/x.sock"), Ok(Address::unix("/tmp/x.sock")));
        assert_eq!(parse_address("./x.sock"), Ok(Address::unix("./x.sock")));
        assert_eq!(parse_address("service:DEMO"), Ok(Address::service("DEMO")));
        assert!(parse_address("::1:5000").unwrap_err().contains("brackets"));
        assert!(parse_address("host:99999").unwrap_err().contains("port"));
        assert!(parse_address(":5").unwrap_err().contains("host"));
        assert!(parse_address("[::1").unwrap_err().contains("']'"));
        assert!(parse_address("").is_err());
        assert_eq!(tcp("::1", 5).to_string(), "[::1]:5");
    }

    #[test]
    fn keywords() {
        assert_eq!(keyword_split("b=2"), Some(("b", "2")));
        assert_eq!(keyword_split("name='a=b'"), Some(("name", "'a=b'")));
        assert_eq!(keyword_split("'a=b'"), None);
        assert_eq!(keyword_split("x==1"), None);
        assert_eq!(keyword_split("1=2"), None);
        let (a, k) = parse_call_args(&["1".into(), "b=(2,)".into()]).ok().unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!(k[0].0, "b");
        assert!(parse_call_args(&["b=1".into(), "2".into()]).is_err());
        assert!(parse_call_args(&["foo".into()]).is_err());
    }

    #[test]
    fn stats() {
        let mut t: Vec<Duration> = (1..=100).rev().map(Duration::from_micros).collect();
        let s = Stats::of(&mut t);
        assert_eq!(s.min, Duration::from_micros(1));
        assert_eq!(s.max, Duration::from_micros(100));
        assert_eq!(s.p99, Duration::from_micros(99));
        assert_eq!(s.median, Duration::from_nanos(50_500));
        let mut one = vec![Duration::from_micros(7)];
        let s = Stats::of(&mut one);
        assert_eq!((s.min, s.median, s.p99, s.max), (one[0], one[0], one[0], one[0]));
    }

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_timeout("0").is_err());
        assert!(parse_timeout("-1").is_err());
        assert!(parse_timeout("nan").is_err());
        assert!(parse_timeout("abc").is_err());
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
