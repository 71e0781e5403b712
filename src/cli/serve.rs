//! `rpyc-rs serve`: the built-in demo service on a Rust server, for Python
//! rpyc clients to try (see `rpyc_rs::service::demo` for what it exposes).
//!
//! Prints the address it listens on as the first line of stdout (`listening
//! on 127.0.0.1:18861`), so scripts can wait for it. On SIGINT or SIGTERM it
//! stops accepting, closes idle connections, gives running requests the
//! grace period (`--grace`) to finish, then exits; a second signal exits at
//! once, whatever is running.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use clap::ValueEnum;

use rpyc_rs::registry::RegistryClient;
use rpyc_rs::server::{Mode, ServerBuilder};
use rpyc_rs::service::demo::demo_service;
use rpyc_rs::stream::tls::TlsAcceptor;

/// How the server gives connections threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ServeMode {
    /// A thread per connection.
    Threaded,
    /// A fixed pool of worker threads for all connections.
    Pool,
    /// Serve one connection, then exit.
    Oneshot,
}

/// What `serve` was asked for.
pub struct ServeArgs {
    pub host: String,
    pub port: u16,
    pub unix: Option<PathBuf>,
    pub mode: ServeMode,
    pub workers: usize,
    pub max_connections: usize,
    pub grace: Duration,
    pub idle_timeout: Option<Duration>,
    pub write_timeout: Option<Duration>,
    /// Serve TLS (`--tls --cert --key [--ca]`).
    pub tls: Option<TlsAcceptor>,
    /// Register as DEMO with this registry while serving (`--register`).
    pub register: Option<RegistryClient>,
}

/// Signals received so far.
static SIGNALS: AtomicUsize = AtomicUsize::new(0);

/// True once SIGINT or SIGTERM has arrived (also for `rpyc-rs registry`).
pub fn stopped() -> bool {
    SIGNALS.load(Ordering::SeqCst) > 0
}

extern "C" fn on_signal(_sig: libc::c_int) {
    // Only an atomic update and `_exit`: both async-signal-safe.
    if SIGNALS.fetch_add(1, Ordering::SeqCst) >= 1 {
        // SAFETY: `_exit` is async-signal-safe; a second signal means "now",
        // so nothing (no destructor, no handler still running) is waited for.
        unsafe { libc::_exit(130) };
    }
}

/// Raises the soft descriptor limit to the hard one (Linux often starts
/// at 1024): each connection needs one, and running out would refuse
/// clients long before `--max-connections`.
fn raise_fd_limit() {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid rlimit on the stack.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Makes SIGINT and SIGTERM count in [`stopped`] (a second one exits at once).
pub fn install_signal_handlers() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a plain C handler that only stores to an atomic.
        unsafe {
            libc::signal(sig, on_signal as *const () as libc::sighandler_t);
        }
    }
}

/// Runs the demo server until a signal (or, one-shot, until its client
/// leaves). Errors are messages for the user.
pub fn serve(args: ServeArgs) -> Result<(), String> {
    let mode = match args.mode {
        ServeMode::Threaded => Mode::Threaded,
        ServeMode::Pool => Mode::Pool { workers: args.workers.max(1) },
        ServeMode::Oneshot => Mode::OneShot,
    };
    raise_fd_limit();
    let mut b = ServerBuilder::new(demo_service)
        .mode(mode)
        .max_connections(args.max_connections)
        .grace(args.grace)
        .idle_timeout(args.idle_timeout)
        .write_timeout(args.write_timeout);
    let tls = args.tls.is_some();
    if let Some(acceptor) = args.tls {
        b = b.tls(acceptor);
    }
    // Kept to register once more before saying "listening" (below).
    let registry = args.register.clone();
    if let Some(registry) = args.register {
        b = b.auto_register(registry, &["DEMO"]);
    }
    b = match &args.unix {
        Some(path) => b.unix(path),
        None => b
            .tcp((args.host.as_str(), args.port))
            .map_err(|e| format!("cannot resolve {}:{}: {e}", args.host, args.port))?,
    };
    let server = b.bind().map_err(|e| {
        let what =
            args.unix.as_ref().map_or(format!("{}:{}", args.host, args.port), |p| p.display().to_string());
        format!("cannot listen on {what}: {e}")
    })?;
    let addr = server.addr().to_string();
    install_signal_handlers();
    let handle = server.spawn().map_err(|e| format!("cannot start the server thread: {e}"))?;
    // The server's registrar registers in the background; registering once
    // here too means that a `list` run as soon as "listening" is printed
    // (the README's next line) finds DEMO. A registry that does not answer
    // is the registrar's to retry, as it would have been.
    // (A Unix socket's address does not parse: it cannot register.)
    if let (Some(registry), Ok(bound)) = (registry, addr.parse::<std::net::SocketAddr>()) {
        let interface = Some(bound.ip()).filter(|ip| !ip.is_unspecified());
        if let Err(e) = registry.register(&["DEMO".to_owned()], bound.port(), interface) {
            log::info!("registering with {} did not work ({e}); the server keeps trying", registry.target());
        }
    }
    {
        let mut out = std::io::stdout().lock();
        let tls = if tls { ", TLS" } else { "" };
        let _ = writeln!(out, "listening on {addr} ({:?}{tls}); demo service DEMO; Ctrl-C stops", args.mode);
        let _ = out.flush();
    }
    while SIGNALS.load(Ordering::SeqCst) == 0 {
        if args.mode == ServeMode::Oneshot && handle.is_finished() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Returns within about the grace period: handlers still running then
    // are abandoned, and end with the process.
    handle.shutdown().map_err(|e| format!("server stopped with an error: {e}"))?;
    eprintln!("rpyc-rs: server on {addr} stopped");
    Ok(())
}
