//! What the CLI needs to reach real deployments: the `--tls` options every
//! command shares, `--registry` (which resolves `service:NAME` addresses),
//! and the `registry` and `list` subcommands.
//!
//! ```text
//! rpyc-rs registry --mode udp --port 18811 --listing   # serve a registry
//! rpyc-rs list --registry 127.0.0.1                    # what is registered
//! rpyc-rs call service:DEMO add 1 2 --registry 127.0.0.1
//! rpyc-rs eval 127.0.0.1:18821 '6*7' --tls --ca ca.pem --cert me.pem --key me.key
//! ```

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::ValueEnum;

use rpyc_rs::registry::{RegistryClient, RegistryServer, Transport, REGISTRY_PORT};
use rpyc_rs::stream::tls::{TlsAcceptor, TlsOptions, TlsServerOptions};

/// `--tls [--ca FILE] [--cert FILE --key FILE] [--insecure]`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TlsArgs {
    /// Speak TLS. Clients verify the server against --ca (else the system's
    /// CAs) and its host name; `serve` serves TLS with --cert and --key.
    #[arg(long, global = true, help_heading = "TLS")]
    pub tls: bool,
    /// CA certificates (PEM). Clients trust only these; `serve` requires
    /// client certificates signed by them.
    #[arg(long, global = true, value_name = "FILE", help_heading = "TLS")]
    pub ca: Option<PathBuf>,
    /// Our certificate chain (PEM): a client's, shown to servers that ask,
    /// or the server's on `serve`.
    #[arg(long, global = true, value_name = "FILE", help_heading = "TLS")]
    pub cert: Option<PathBuf>,
    /// The private key (PEM) for --cert.
    #[arg(long, global = true, value_name = "FILE", help_heading = "TLS")]
    pub key: Option<PathBuf>,
    /// DANGER: accept any server certificate, unverified (encrypted but
    /// not authenticated: anyone in between can read along).
    #[arg(long, global = true, help_heading = "TLS")]
    pub insecure: bool,
}

impl TlsArgs {
    fn check(&self) -> Result<(), String> {
        let any = self.ca.is_some() || self.cert.is_some() || self.key.is_some() || self.insecure;
        if any && !self.tls {
            return Err("--ca, --cert, --key and --insecure need --tls".into());
        }
        if self.cert.is_some() != self.key.is_some() {
            return Err("--cert and --key go together".into());
        }
        Ok(())
    }

    /// The client side, when `--tls` was given.
    pub fn client(&self) -> Result<Option<TlsOptions>, String> {
        self.check()?;
        if !self.tls {
            return Ok(None);
        }
        let mut o = TlsOptions::new().danger_accept_invalid_certs(self.insecure);
        if let Some(ca) = &self.ca {
            o = o.ca_file(ca);
        }
        if let (Some(c), Some(k)) = (&self.cert, &self.key) {
            o = o.client_cert(c, k);
        }
        Ok(Some(o))
    }

    /// The server side (`serve --tls --cert C --key K [--ca CA]`).
    pub fn server(&self) -> Result<Option<TlsAcceptor>, String> {
        self.check()?;
        if !self.tls {
            return Ok(None);
        }
        if self.insecure {
            return Err("--insecure is for clients; a server has nothing to skip".into());
        }
        let (Some(cert), Some(key)) = (&self.cert, &self.key) else {
            return Err("serve --tls needs --cert and --key".into());
        };
        let mut o = TlsServerOptions::new(cert, key);
        if let Some(ca) = &self.ca {
            o = o.client_ca_file(ca);
        }
        TlsAcceptor::new(&o).map(Some).map_err(|e| e.to_string())
    }
}

/// `--registry [tcp:]HOST[:PORT]`.
#[derive(clap::Args, Debug, Clone)]
pub struct RegistryArg {
    /// The registry that resolves service:NAME (and that `list` asks, and
    /// `serve --register` registers with): UDP unless prefixed `tcp:`,
    /// port 18811 unless given. rpyc's default broadcasts to the LAN.
    #[arg(long, global = true, value_name = "[tcp:]HOST[:PORT]", default_value = "255.255.255.255")]
    pub registry: String,
}

impl RegistryArg {
    /// The client for it, answering within `timeout`.
    pub fn client(&self, timeout: Duration) -> Result<RegistryClient, String> {
        let (tcp, rest) = match self.registry.strip_prefix("tcp:") {
            Some(r) => (true, r),
            None => (false, self.registry.strip_prefix("udp:").unwrap_or(&self.registry)),
        };
        let (host, port) = match rpyc_rs::Address::parse_with_port(rest, REGISTRY_PORT) {
            Ok(rpyc_rs::Address::Tcp { host, port }) => (host, port),
            Ok(_) => return Err(format!("--registry {:?}: expected [tcp:]HOST[:PORT]", self.registry)),
            Err(e) => return Err(format!("--registry {e}")),
        };
        let c = if tcp { RegistryClient::tcp(host, port) } else { RegistryClient::udp(host, port) };
        Ok(c.with_timeout(timeout))
    }
}

/// The registry's transport, for `registry --mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RegistryMode {
    /// Datagrams (rpyc_registry's default).
    Udp,
    /// One TCP connection per request.
    Tcp,
}

/// `rpyc-rs registry`.
#[derive(clap::Args, Debug, Clone)]
pub struct RegistryCmd {
    /// UDP or TCP.
    #[arg(long, value_enum, default_value = "udp")]
    pub mode: RegistryMode,
    /// Interface to listen on (0.0.0.0 serves the network).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port (0 picks a free one).
    #[arg(long, default_value_t = REGISTRY_PORT)]
    pub port: u16,
    /// Seconds after which a server that stopped re-registering is dropped.
    #[arg(long, value_name = "SECS", default_value_t = 240.0)]
    pub pruning_timeout: f64,
    /// Answer `list` requests (rpyc_registry's --listing; off by default).
    #[arg(long)]
    pub listing: bool,
}

/// Serves a registry until SIGINT/SIGTERM. Prints where it listens first.
pub fn registry(cmd: RegistryCmd) -> Result<(), String> {
    let transport = match cmd.mode {
        RegistryMode::Udp => Transport::Udp,
        RegistryMode::Tcp => Transport::Tcp,
    };
    if !cmd.pruning_timeout.is_finite() || cmd.pruning_timeout <= 0.0 {
        return Err("--pruning-timeout must be a positive number of seconds".into());
    }
    let server = RegistryServer::bind(transport, (cmd.host.as_str(), cmd.port))
        .map_err(|e| format!("cannot listen on {}:{} ({transport}): {e}", cmd.host, cmd.port))?
        .pruning_timeout(Duration::from_secs_f64(cmd.pruning_timeout))
        .allow_listing(cmd.listing);
    let addr = server.local_addr();
    super::serve::install_signal_handlers();
    let handle = server.spawn().map_err(|e| format!("cannot start the registry thread: {e}"))?;
    {
        let mut out = std::io::stdout().lock();
        let listing = if cmd.listing { "listing on" } else { "listing off" };
        let _ = writeln!(out, "registry listening on {addr} ({transport}, {listing}); Ctrl-C stops");
        let _ = out.flush();
    }
    while !super::serve::stopped() && handle.is_running() {
        std::thread::sleep(Duration::from_millis(50));
    }
    handle.stop().map_err(|e| format!("the registry stopped with an error: {e}"))?;
    eprintln!("rpyc-rs: registry on {addr} stopped");
    Ok(())
}

/// Prints the registered service names, one a line.
pub fn list(registry: &RegistryClient) -> Result<(), String> {
    let mut names = registry.list(None).map_err(|e| e.to_string())?;
    names.sort();
    let mut out = std::io::stdout().lock();
    for n in names {
        let _ = writeln!(out, "{n}");
    }
    let _ = out.flush();
    Ok(())
}
