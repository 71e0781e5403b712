//! Stock rpyc servers in a Python child (`examples/py/rpyc_server.py`):
//! [`spawn_rpyc_server`] for a service given as Python source,
//! [`spawn_classic_server`] for rpyc's classic service, their `_with`
//! variants taking [`ServerOptions`], and [`spawn_rpyc_server_using`] for
//! another interpreter. Each hands back a [`PyProcess`] that is listening.
//! A child module of `process` (see there), re-exported as `common::NAME`.

use std::path::{Path, PathBuf};

use super::super::py_script;
use super::{python_command_for, PyProcess};

/// How to start a stock rpyc server (see [`spawn_rpyc_server_with`]).
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// A Python expression naming the service class, evaluated after the
    /// source ran; default: the last `rpyc.Service` subclass it defined.
    pub service: Option<String>,
    /// A class from `rpyc.utils.server`; default `ThreadedServer`.
    pub server_class: Option<String>,
    /// The server's `protocol_config`, as JSON (`{"allow_public_attrs": true}`).
    pub protocol_config: Option<String>,
    /// Serve on this Unix socket instead of 127.0.0.1 (the ready line is
    /// then `READY <path>`, not `PORT <n>`).
    pub unix_socket: Option<PathBuf>,
    /// Extra environment variables for the server process.
    pub env: Vec<(String, String)>,
    /// Extra arguments for `examples/py/rpyc_server.py` (`--ssl-keyfile`,
    /// `--register`, ...).
    pub args: Vec<String>,
}

/// Starts `rpyc.utils.server.ThreadedServer` on 127.0.0.1 (ephemeral port)
/// serving the service class defined by `service_src` (Python source, run
/// with `rpyc` imported; indentation is removed first). The server listens
/// by the time this returns; [`PyProcess::port`] is its port.
///
/// ```ignore
/// let server = common::spawn_rpyc_server(r#"
///     class EchoService(rpyc.Service):
///         def exposed_echo(self, x):
///             return x
/// "#);
/// let stream = server.connect_tcp();
/// ```
pub fn spawn_rpyc_server(service_src: &str) -> PyProcess {
    spawn_rpyc_server_with(service_src, &ServerOptions::default())
}

/// [`spawn_rpyc_server`] with options.
pub fn spawn_rpyc_server_with(service_src: &str, opts: &ServerOptions) -> PyProcess {
    spawn_server(vec!["--source".into(), service_src.into()], opts)
}

/// Starts a classic server (`rpyc.SlaveService` on a `ThreadedServer`, what
/// the `rpyc_classic` command runs) on 127.0.0.1, ephemeral port. Classic
/// servers allow every attribute access already.
pub fn spawn_classic_server() -> PyProcess {
    spawn_classic_server_with(&ServerOptions::default())
}

/// [`spawn_classic_server`] with options (`service` is ignored).
pub fn spawn_classic_server_with(opts: &ServerOptions) -> PyProcess {
    spawn_server(vec!["--classic".into()], opts)
}

/// [`spawn_rpyc_server_with`] run by another interpreter (say, one with a
/// different rpyc version).
pub fn spawn_rpyc_server_using(python: &Path, service_src: &str, opts: &ServerOptions) -> PyProcess {
    let mut cmd = python_command_for(python);
    cmd.arg(py_script("rpyc_server.py")).args(["--source", service_src]);
    if let Some(c) = &opts.protocol_config {
        cmd.args(["--protocol-config", c]);
    }
    PyProcess::start(cmd, format!("rpyc_server.py ({})", python.display()), &[])
}

fn spawn_server(mut args: Vec<String>, opts: &ServerOptions) -> PyProcess {
    if let Some(s) = &opts.service {
        args.extend(["--service".into(), s.clone()]);
    }
    if let Some(s) = &opts.server_class {
        args.extend(["--server".into(), s.clone()]);
    }
    if let Some(c) = &opts.protocol_config {
        args.extend(["--protocol-config".into(), c.clone()]);
    }
    if let Some(p) = &opts.unix_socket {
        args.extend(["--unix".into(), p.display().to_string()]);
    }
    args.extend(opts.args.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let env: Vec<(&str, &str)> = opts.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    PyProcess::spawn_script_env("rpyc_server.py", &args, &env)
}
