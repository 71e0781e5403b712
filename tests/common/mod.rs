//! Shared helpers for the Rust integration tests that talk to the real
//! `rpyc` package in Python subprocesses.
//!
//! Use it from a test crate with `mod common;`. What is here:
//!
//! * [`python`]: the interpreter to run (`RPYC_RS_PYTHON`, else the project's
//!   `.venv/bin/python`, else `python3`), and [`require_rpyc`], which fails a
//!   test with a clear "run `bash ci/setup` first" message when that
//!   interpreter cannot `import rpyc`;
//! * [`PyProcess`]: a Python child (`python -c CODE` or a script from
//!   `examples/py/`) that announces itself with a first stdout line such as
//!   `PORT 12345` or `READY /path`, talks a line protocol over stdin/stdout,
//!   and is killed when dropped. Its stderr is collected and printed when the
//!   test fails, so a Python traceback shows up next to the Rust panic;
//! * [`spawn_rpyc_server`] / [`spawn_classic_server`] (and their `_with`
//!   variants): a stock `rpyc.utils.server.ThreadedServer` on 127.0.0.1 with
//!   an ephemeral port, or on a Unix socket;
//! * small utilities: [`accept_tcp`]/[`accept_unix`] (accept with a
//!   timeout, for a Python client connecting to us), [`TempDir`],
//!   [`hex`]/[`unhex`], the [`XorShift64`] generator and [`gen_payload`]
//!   (the same as `examples/py/channel_peer.py`'s), and [`within`] to put a
//!   hard time limit on a blocking step.
//!
//! Everything binds 127.0.0.1 or a Unix socket, and every wait has a
//! timeout: a broken peer fails a test, it never hangs it.
//!
//! Where it is: the interpreter and the constants here; [`PyProcess`] in
//! `process.rs`; the server spawners and [`ServerOptions`] in `servers.rs`
//! (a child module of `process`, so that it may start a `PyProcess` with
//! its private constructor); the accept helpers, [`TempDir`], [`within`]
//! and hex in `util.rs`; [`XorShift64`] and [`gen_payload`] in
//! `payload.rs`; certificates in `pki.rs`. Every name is still reached as
//! `common::NAME`.

// Each test crate compiles this module and uses a different part of it.
#![allow(dead_code)]

pub mod pki;

mod payload;
mod process;
mod util;

// Each test crate uses a different part of these re-exports too.
#[allow(unused_imports)]
pub use payload::{gen_payload, XorShift64};
#[allow(unused_imports)]
pub use process::{
    spawn_classic_server, spawn_classic_server_with, spawn_rpyc_server, spawn_rpyc_server_using,
    spawn_rpyc_server_with, PyProcess, ServerOptions,
};
#[allow(unused_imports)]
pub use util::{accept_tcp, accept_unix, hex, unhex, within, TempDir};

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// How long a Python child gets to print its first line. Importing rpyc
/// takes a fraction of a second, but CI machines can be slow and busy.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The default wait for one reply line or one frame from a Python peer.
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// The most stderr kept per child; beyond it only the tail is kept, so a
/// chatty child cannot eat the test's memory.
const STDERR_KEEP: usize = 256 * 1024;

/// The crate's root directory.
pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python interpreter the tests run: `$RPYC_RS_PYTHON` if set, else the
/// project's `.venv/bin/python` (made by `bash ci/setup`) if it exists, else
/// `python3` from `PATH`.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("RPYC_RS_PYTHON").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let venv = manifest_dir().join(".venv/bin/python");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

/// The path of a helper script in `examples/py/`.
pub fn py_script(name: &str) -> PathBuf {
    let p = manifest_dir().join("examples/py").join(name);
    assert!(p.is_file(), "helper script {} does not exist", p.display());
    p
}

/// Fails the calling test unless [`python`] can `import rpyc`; returns the
/// rpyc version. The check runs once per test binary.
pub fn require_rpyc() -> String {
    static VERSION: OnceLock<Result<String, String>> = OnceLock::new();
    let found = VERSION.get_or_init(|| {
        let py = python();
        let out = Command::new(&py)
            .args(["-c", "import rpyc; print(rpyc.__version__)"])
            .stdin(Stdio::null())
            .output();
        match out {
            Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).trim().to_owned()),
            Ok(o) => Err(format!(
                "`{} -c 'import rpyc'` failed ({}):\n{}",
                py.display(),
                o.status,
                String::from_utf8_lossy(&o.stderr)
            )),
            Err(e) => Err(format!("cannot run {}: {e}", py.display())),
        }
    });
    match found {
        Ok(v) => v.clone(),
        Err(why) => panic!(
            "these tests need Python with the real rpyc package.\n{why}\n\
             Run `bash ci/setup` first (it creates .venv with rpyc), or point \
             RPYC_RS_PYTHON at an interpreter that has rpyc installed."
        ),
    }
}

/// True when the Python peers run rpyc 5.x, whose message framing differs
/// from 6.x's: a Rust *client* must then be configured for it
/// (`Config::with_legacy_framing`, the CLI's `--rpyc5`).
pub fn rpyc5() -> bool {
    require_rpyc().starts_with("5.")
}
