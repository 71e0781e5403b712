//! The `rpyc-rs` command-line tool: poke at RPyC servers from a shell.
//!
//! ```text
//! rpyc-rs ping 127.0.0.1:18812 --count 1000      # latency of PING round trips
//! rpyc-rs eval 127.0.0.1:18812 '6 * 7'            # classic server: print repr(eval(EXPR))
//! rpyc-rs exec 127.0.0.1:18812 'import os'        # classic server: exec(CODE)
//! rpyc-rs call 127.0.0.1:18861 echo "(1, 'a')"    # any server: print repr(root.echo((1, 'a')))
//! rpyc-rs call /tmp/rpyc.sock add 1 b=2           # a Unix socket, a keyword argument
//! ```
//!
//! An address is `HOST:PORT`, `[IPV6]:PORT`, `HOST` (port 18812, the
//! classic default), or a Unix socket path (anything with a `/`, or the name
//! of an existing socket file).
//!
//! Exit status: 0 on success, 1 when the server raised (its exception and
//! traceback go to stderr), 2 for everything else: usage errors, bad
//! literals, connection, timeout and protocol failures.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};

mod serve;

use rpyc_rs::classic::{Classic, DEFAULT_PORT};
use rpyc_rs::protocol::{Config, Connection, Error, NetRef, Object, RemoteException};
use rpyc_rs::service::VoidService;
use rpyc_rs::stream::Stream;
use rpyc_rs::FromObject;

#[derive(Parser, Debug)]
#[command(
    name = "rpyc-rs",
    version,
    args_override_self = true,
    about = "Talk to RPyC servers: ping them, call their services, run code on classic servers",
    after_help = "ADDR is HOST:PORT, [IPV6]:PORT, HOST (port 18812), or a Unix socket path.\n\
                  Exit status: 0 ok, 1 the server raised, 2 usage/connection/protocol error."
)]
struct Cli {
    /// Seconds to wait for the connection and for each reply.
    #[arg(long, global = true, value_name = "SECS", default_value = "30", value_parser = parse_timeout)]
    timeout: Duration,

    /// The server runs rpyc 5.x (whose messages are framed differently from
    /// 6.x); default: 6.x. Servers need no such flag.
    #[arg(long, global = true)]
    rpyc5: bool,

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

/// Where a server is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Address {
    Tcp { host: String, port: u16 },
    Unix(PathBuf),
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Address::Tcp { host, port } => write!(f, "{host}:{port}"),
            Address::Unix(p) => write!(f, "{}", p.display()),
        }
    }
}

fn parse_address(s: &str) -> Result<Address, String> {
    if s.is_empty() {
        return Err("empty address; expected HOST:PORT or a Unix socket path".into());
    }
    if s.contains('/') || is_socket_file(s) {
        return Ok(Address::Unix(PathBuf::from(s)));
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, after) =
            rest.split_once(']').ok_or_else(|| format!("{s:?}: missing ']' after the IPv6 address"))?;
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(p) => (host, Some(p)),
                None => return Err(format!("{s:?}: expected ':PORT' after ']'")),
            },
        }
    } else if s.matches(':').count() > 1 {
        return Err(format!("{s:?}: an IPv6 address needs brackets, as in [::1]:18812"));
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return Err(format!("{s:?}: missing host before the port"));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => p.parse::<u16>().map_err(|_| format!("{s:?}: {p:?} is not a port number (0-65535)"))?,
    };
    Ok(Address::Tcp { host: host.to_owned(), port })
}

fn is_socket_file(s: &str) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(s).is_ok_and(|m| m.file_type().is_socket())
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

/// `--rpyc5`: set once from the command line before any connection is made.
static RPYC5: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn connect(addr: &Address, timeout: Duration) -> Result<Connection, Failure> {
    use std::io::ErrorKind;
    let stream = match addr {
        Address::Tcp { host, port } => Stream::tcp_connect((host.as_str(), *port), Some(timeout)),
        Address::Unix(path) => Stream::unix_connect(path),
    };
    let stream = stream.map_err(|e| {
        let hint = match e.kind() {
            ErrorKind::ConnectionRefused => " (is an RPyC server running there?)".to_owned(),
            ErrorKind::NotFound if matches!(addr, Address::Unix(_)) => {
                " (no such socket; is the server listening on this path?)".to_owned()
            }
            ErrorKind::TimedOut | ErrorKind::WouldBlock => {
                format!(" after {} s (is the host reachable? see --timeout)", timeout.as_secs_f64())
            }
            _ => String::new(),
        };
        Failure::other(format!("cannot connect to {addr}: {}{hint}", io_text(&e)))
    })?;
    let config = Config::default()
        .with_timeout(Some(timeout))
        .with_connect_timeout(Some(timeout))
        .with_legacy_framing(RPYC5.load(std::sync::atomic::Ordering::Relaxed));
    Ok(Connection::new(stream, Arc::new(VoidService), config))
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
    RPYC5.store(cli.rpyc5, std::sync::atomic::Ordering::Relaxed);
    match cli.command {
        Command::Ping { addr, count, size } => ping(&addr, count, size as usize, timeout),
        Command::Serve {
            host,
            port,
            unix,
            mode,
            workers,
            max_connections,
            grace,
            idle_timeout,
            write_timeout,
        } => serve::serve(serve::ServeArgs {
            host,
            port,
            unix,
            mode,
            workers,
            max_connections,
            grace: Duration::from_secs_f64(grace),
            idle_timeout: idle_timeout.map(Duration::from_secs_f64),
            write_timeout: (write_timeout > 0.0).then(|| Duration::from_secs_f64(write_timeout)),
        })
        .map_err(Failure::other),
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
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
            ExitCode::from(1)
        }
        Err(Failure::Other(msg)) => {
            let _ = writeln!(std::io::stderr().lock(), "rpyc-rs: {msg}");
            ExitCode::from(2)
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
        let tcp = |h: &str, p| Address::Tcp { host: h.into(), port: p };
        assert_eq!(parse_address("127.0.0.1:18812"), Ok(tcp("127.0.0.1", 18812)));
        assert_eq!(parse_address("localhost:1"), Ok(tcp("localhost", 1)));
        assert_eq!(parse_address("localhost"), Ok(tcp("localhost", DEFAULT_PORT)));
        assert_eq!(parse_address("[::1]:5000"), Ok(tcp("::1", 5000)));
        assert_eq!(parse_address("[::1]"), Ok(tcp("::1", DEFAULT_PORT)));
        assert_eq!(parse_address("/tmp/x.sock"), Ok(Address::Unix("/tmp/x.sock".into())));
        assert_eq!(parse_address("./x.sock"), Ok(Address::Unix("./x.sock".into())));
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
