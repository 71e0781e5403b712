//! `rpyc-rs proxy` and `rpyc-rs decode` against real rpyc peers: a stock
//! rpyc 5.3.1 client reaching a stock 6.0.2 server through the proxy and
//! the reverse (calls, netrefs, iteration, callbacks, exceptions, payloads
//! of several MB), the trace of README's example client against a golden
//! file, a tracing proxy under a hammering client (counted, not timed),
//! and garbage and truncated streams fed to the proxy and to `decode`.
//!
//! The two-version tests need an interpreter with each rpyc: `.venv`
//! (6.0.2, `ci/setup`) and `.venv-rpyc-old` (5.3.1, made by `ci/test`), or
//! `RPYC_RS_OLD_PYTHON`. Without them they say so and pass, unless
//! `RPYC_RS_REQUIRE_BOTH_RPYC=1` (which `ci/test` sets) makes that a
//! failure.
//!
//! This file has what every case uses: [`ProxyProc`] (a running
//! `rpyc-rs proxy`) and [`run`] (a program run to completion, bounded). The
//! cases are in `proxy/`: `two_versions.rs` (rpyc 5.x and 6.x through the
//! proxy), `trace.rs` (the README client's trace against the golden file, a
//! tracing proxy under hammering clients), `garbage.rs` (garbage and
//! truncated streams, to the proxy and to `decode`) and `untraced.rs`
//! (relaying and translating without a trace).

mod common;
#[path = "proxy/garbage.rs"]
mod garbage;
#[path = "proxy/trace.rs"]
mod trace;
#[path = "proxy/two_versions.rs"]
mod two_versions;
#[path = "proxy/untraced.rs"]
mod untraced;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long a client script or the proxy's shutdown may take.
const RUN_LIMIT: Duration = Duration::from_secs(180);

/// A running `rpyc-rs proxy`: its address, and its stdout and stderr as
/// they come.
struct ProxyProc {
    child: Child,
    addr: String,
    lines: mpsc::Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl ProxyProc {
    fn start(to: &str, extra: &[&str]) -> ProxyProc {
        ProxyProc::start_on("127.0.0.1:0", to, extra)
    }

    fn start_on(listen: &str, to: &str, extra: &[&str]) -> ProxyProc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rpyc-rs"))
            .args(["proxy", "--listen", listen, "--to", to])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start rpyc-rs proxy");
        let (tx, lines) = mpsc::channel();
        let out = BufReader::new(child.stdout.take().expect("piped stdout"));
        thread::spawn(move || {
            for line in out.lines() {
                let Ok(l) = line else { return };
                if tx.send(l).is_err() {
                    return;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().expect("piped stderr");
        let keep = stderr.clone();
        thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            keep.lock().unwrap_or_else(|p| p.into_inner()).push_str(&s);
        });
        let first = lines.recv_timeout(Duration::from_secs(30)).expect("the proxy prints its address");
        let addr = first
            .strip_prefix("listening on ")
            .and_then(|r| r.rsplit_once(", relaying to ").map(|(a, _)| a))
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_owned();
        ProxyProc { child, addr, lines, stderr }
    }

    fn port(&self) -> u16 {
        self.addr.rsplit(':').next().and_then(|p| p.parse().ok()).expect("a port")
    }

    /// SIGTERM, then everything it printed; it must exit 0 in time.
    fn stop(mut self) -> (Vec<String>, String) {
        // SAFETY: kill(2) on our own child's pid, which has not been reaped.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + RUN_LIMIT;
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait for the proxy") {
                break s;
            }
            assert!(Instant::now() < deadline, "the proxy did not stop on SIGTERM");
            thread::sleep(Duration::from_millis(20));
        };
        let lines: Vec<String> = self.lines.iter().collect();
        thread::sleep(Duration::from_millis(50));
        let err = self.stderr.lock().unwrap_or_else(|p| p.into_inner()).clone();
        assert!(status.success(), "proxy exit {status}\n{err}");
        (lines, err)
    }
}

impl Drop for ProxyProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a program to completion (bounded), returning (success, stdout,
/// stderr).
fn run(cmd: &mut Command) -> (bool, String, String) {
    let mut child =
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let o = thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let e = thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + RUN_LIMIT;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{cmd:?} did not finish in {RUN_LIMIT:?}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    (status.success(), o.join().unwrap_or_default(), e.join().unwrap_or_default())
}
