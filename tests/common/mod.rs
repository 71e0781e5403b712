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

// Each test crate compiles this module and uses a different part of it.
#![allow(dead_code)]

pub mod pki;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use rpyc_rs::stream::Stream;

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

/// One event from a child's stdout reader thread.
enum StdoutEvent {
    Line(String),
    Eof,
    Error(String),
}

/// A Python child process speaking a line protocol, killed on drop.
///
/// The child must print one line announcing that it is ready, starting with
/// `PORT ` (followed by a TCP port) or `READY` (followed by anything, often a
/// socket path); [`PyProcess::port`] and [`PyProcess::ready_arg`] expose it.
/// Other lines before it are passed on to the test's output.
pub struct PyProcess {
    label: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Receiver<StdoutEvent>,
    stdout_done: bool,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_done: Receiver<()>,
    ready: String,
}

impl PyProcess {
    /// Runs `python -c CODE ARGS...` and waits for its ready line.
    pub fn spawn_code(code: &str, args: &[&str]) -> PyProcess {
        let mut cmd = python_command();
        cmd.arg("-c").arg(code).args(args);
        PyProcess::start(cmd, "python -c <code>".into(), &[])
    }

    /// Runs `python examples/py/NAME ARGS...` and waits for its ready line.
    pub fn spawn_script(name: &str, args: &[&str]) -> PyProcess {
        PyProcess::spawn_script_env(name, args, &[])
    }

    /// As [`PyProcess::spawn_script`], with extra environment variables.
    pub fn spawn_script_env(name: &str, args: &[&str], env: &[(&str, &str)]) -> PyProcess {
        let mut cmd = python_command();
        cmd.arg(py_script(name)).args(args);
        PyProcess::start(cmd, name.to_owned(), env)
    }

    fn start(mut cmd: Command, label: String, env: &[(&str, &str)]) -> PyProcess {
        require_rpyc();
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {label} with {}: {e}", python().display()));
        let stdin = child.stdin.take();
        let out = child.stdout.take().expect("piped stdout");
        let err = child.stderr.take().expect("piped stderr");

        // A thread per pipe: the std library has no read-with-timeout on
        // pipes, and a thread that drains stderr also keeps a chatty child
        // from blocking on a full pipe.
        let (tx, stdout) = mpsc::channel();
        thread::spawn(move || {
            let mut r = BufReader::new(out);
            loop {
                let mut line = Vec::new();
                let ev = match r.read_until(b'\n', &mut line) {
                    Ok(0) => StdoutEvent::Eof,
                    Ok(_) => {
                        while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                            line.pop();
                        }
                        StdoutEvent::Line(String::from_utf8_lossy(&line).into_owned())
                    }
                    Err(e) => StdoutEvent::Error(e.to_string()),
                };
                let last = !matches!(ev, StdoutEvent::Line(_));
                if tx.send(ev).is_err() || last {
                    return;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (done_tx, stderr_done) = mpsc::channel();
        {
            let stderr = stderr.clone();
            let echo = std::env::var_os("RPYC_RS_TEST_STDERR").is_some_and(|v| v == "inherit");
            thread::spawn(move || {
                let mut err = err;
                let mut chunk = [0u8; 8192];
                while let Ok(n) = err.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    if echo {
                        let _ = std::io::stderr().write_all(&chunk[..n]);
                    }
                    let mut buf = stderr.lock().unwrap_or_else(|p| p.into_inner());
                    buf.extend_from_slice(&chunk[..n]);
                    if buf.len() > STDERR_KEEP {
                        let cut = buf.len() - STDERR_KEEP;
                        buf.drain(..cut);
                    }
                }
                let _ = done_tx.send(());
            });
        }

        let mut p = PyProcess {
            label,
            child,
            stdin,
            stdout,
            stdout_done: false,
            stderr,
            stderr_done,
            ready: String::new(),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match p.try_read_line(left) {
                Ok(line) if line.starts_with("PORT ") || line.starts_with("READY") => {
                    p.ready = line;
                    break;
                }
                Ok(other) => eprintln!("[{}] {other}", p.label),
                Err(why) => p.fail(&format!("did not report ready: {why}")),
            }
        }
        p
    }

    /// The whole ready line (`PORT 12345`, `READY /tmp/x.sock`, ...).
    pub fn ready_line(&self) -> &str {
        &self.ready
    }

    /// The ready line without its first word.
    pub fn ready_arg(&self) -> &str {
        self.ready.split_once(' ').map_or("", |(_, rest)| rest.trim())
    }

    /// The TCP port from a `PORT <n>` ready line.
    pub fn port(&self) -> u16 {
        match self.ready.strip_prefix("PORT ").map(|p| p.trim().parse()) {
            Some(Ok(p)) => p,
            _ => panic!("{} announced {:?}, not `PORT <n>`", self.label, self.ready),
        }
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port()))
    }

    /// A TCP [`Stream`] connected to [`PyProcess::addr`].
    pub fn connect_tcp(&self) -> Stream {
        Stream::tcp_connect(self.addr(), Some(IO_TIMEOUT))
            .unwrap_or_else(|e| panic!("cannot connect to {} at {}: {e}", self.label, self.addr()))
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Writes one line to the child's stdin.
    pub fn send_line(&mut self, line: &str) {
        debug_assert!(!line.contains('\n'), "one line at a time");
        let Some(stdin) = self.stdin.as_mut() else { panic!("{}: stdin already closed", self.label) };
        let r =
            stdin.write_all(line.as_bytes()).and_then(|_| stdin.write_all(b"\n")).and_then(|_| stdin.flush());
        if let Err(e) = r {
            self.fail(&format!("cannot write to its stdin: {e}"));
        }
    }

    /// The next stdout line, or the test fails (with the child's stderr)
    /// after `timeout` or when the child closes stdout.
    pub fn read_line(&mut self, timeout: Duration) -> String {
        match self.try_read_line(timeout) {
            Ok(line) => line,
            Err(why) => self.fail(&why),
        }
    }

    /// The next stdout line, or why there is none.
    pub fn try_read_line(&mut self, timeout: Duration) -> Result<String, String> {
        if self.stdout_done {
            return Err("its stdout is closed".into());
        }
        match self.stdout.recv_timeout(timeout) {
            Ok(StdoutEvent::Line(l)) => Ok(l),
            Ok(StdoutEvent::Eof) | Err(RecvTimeoutError::Disconnected) => {
                self.stdout_done = true;
                Err("it closed its stdout (exited?)".into())
            }
            Ok(StdoutEvent::Error(e)) => {
                self.stdout_done = true;
                Err(format!("reading its stdout failed: {e}"))
            }
            Err(RecvTimeoutError::Timeout) => Err(format!("no line on its stdout within {timeout:?}")),
        }
    }

    /// Closes the child's stdin (our helper scripts exit when it closes).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits up to `timeout` for the child to exit by itself; the test fails
    /// (and the child is killed) if it does not.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
                Ok(None) => self.fail(&format!("did not exit within {timeout:?}")),
                Err(e) => self.fail(&format!("cannot wait for it: {e}")),
            }
        }
    }

    /// Everything the child wrote to stderr so far (its tail, if long).
    pub fn stderr_text(&self) -> String {
        let buf = self.stderr.lock().unwrap_or_else(|p| p.into_inner());
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// Kills the child and fails the test with `why` and the child's stderr.
    pub fn fail(&mut self, why: &str) -> ! {
        let status = self.kill_and_wait();
        panic!(
            "{} (pid {}) {why}\nexit status: {status}\n--- its stderr ---\n{}--- end of stderr ---",
            self.label,
            self.child.id(),
            self.stderr_text()
        );
    }

    /// Kills the child if it still runs, reaps it, and lets the stderr
    /// thread collect what was left in the pipe.
    fn kill_and_wait(&mut self) -> String {
        self.stdin = None;
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let status = match self.child.wait() {
            Ok(s) => s.to_string(),
            Err(e) => format!("unknown ({e})"),
        };
        let _ = self.stderr_done.recv_timeout(Duration::from_secs(2));
        status
    }
}

impl Drop for PyProcess {
    fn drop(&mut self) {
        self.kill_and_wait();
        // Shown by the test harness only when the test fails.
        if thread::panicking() {
            let err = self.stderr_text();
            if !err.is_empty() {
                eprintln!("--- stderr of {} (pid {}) ---\n{err}--- end ---", self.label, self.child.id());
            }
        }
    }
}

fn python_command() -> Command {
    python_command_for(&python())
}

fn python_command_for(python: &Path) -> Command {
    let mut cmd = Command::new(python);
    // -u and PYTHONUNBUFFERED: every line reaches us as soon as it is
    // printed. No .pyc files next to the helper scripts.
    cmd.arg("-u").env("PYTHONUNBUFFERED", "1").env("PYTHONDONTWRITEBYTECODE", "1");
    cmd.current_dir(manifest_dir());
    cmd
}

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

/// Accepts one connection on `listener`, waiting at most `timeout` (std's
/// `accept` has no timeout of its own). The listener is left non-blocking.
pub fn accept_tcp(listener: &TcpListener, timeout: Duration) -> TcpStream {
    listener.set_nonblocking(true).expect("set_nonblocking");
    let deadline = Instant::now() + timeout;
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).expect("set_nonblocking");
                return s;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(5))
            }
            Err(e) => panic!("no TCP connection accepted within {timeout:?}: {e}"),
        }
    }
}

/// [`accept_tcp`] for a Unix socket listener.
pub fn accept_unix(listener: &UnixListener, timeout: Duration) -> UnixStream {
    listener.set_nonblocking(true).expect("set_nonblocking");
    let deadline = Instant::now() + timeout;
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).expect("set_nonblocking");
                return s;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(5))
            }
            Err(e) => panic!("no Unix connection accepted within {timeout:?}: {e}"),
        }
    }
}

/// A fresh directory under the system temp dir, removed with its contents
/// on drop. Short paths, since a Unix socket path is limited to ~100 bytes.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `<tmp>/rpyc-rs-<pid>-<n>-<nanos>`.
    pub fn new() -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("rpyc-rs-{}-{n}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        TempDir(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A path inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Default for TempDir {
    fn default() -> Self {
        TempDir::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `f` on its own thread and fails the test if it takes longer than
/// `limit`: for steps that could block forever if the code under test is
/// wrong (a lost reply, a deadlock). The stuck thread is left behind; the
/// test binary exits anyway once all tests are done.
pub fn within<T: Send + 'static>(limit: Duration, what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let handle = thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => v,
        // The closure panicked: re-raise its panic here, message and all.
        Err(RecvTimeoutError::Disconnected) => match handle.join() {
            Err(payload) => std::panic::resume_unwind(payload),
            Ok(()) => unreachable!("the thread ends only after sending"),
        },
        Err(RecvTimeoutError::Timeout) => panic!("{what}: still running after {limit:?}"),
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Bytes from hex text (either case); panics on anything else.
pub fn unhex(text: &str) -> Vec<u8> {
    assert!(text.len() % 2 == 0, "odd-length hex: {text:?}");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap_or_else(|_| panic!("bad hex: {text:?}")))
        .collect()
}

/// A tiny deterministic PRNG (xorshift64), so tests are reproducible
/// without extra crates, and payloads can be rebuilt on the Python side.
#[derive(Debug, Clone)]
pub struct XorShift64(u64);

impl XorShift64 {
    /// A generator; seed 0 is replaced by a fixed non-zero constant (as in
    /// `channel_peer.py`), since xorshift would stay at 0 forever.
    pub fn new(seed: u64) -> Self {
        XorShift64(if seed == 0 { 0x9E37_79B9_7F4A_7C15 } else { seed })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `0..n` (`n > 0`); the slight modulo bias does not matter here.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True with probability `1/n`.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    /// `n` random bytes: each step's 8 bytes little-endian, as
    /// `channel_peer.py`'s `generate("random", ...)` does.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(n);
        out
    }
}

/// The payloads `channel_peer.py` builds for `GEN <kind> <size> <seed>`:
/// `text` compresses well, `random` hardly at all.
pub fn gen_payload(kind: &str, size: usize, seed: u64) -> Vec<u8> {
    match kind {
        "text" => {
            let mut out = Vec::with_capacity(size + 64);
            let mut i = 0u64;
            while out.len() < size {
                out.extend_from_slice(format!("rpyc-rs line {i:08} seed {seed}\n").as_bytes());
                i += 1;
            }
            out.truncate(size);
            out
        }
        "random" => XorShift64::new(seed).bytes(size),
        other => panic!("unknown payload kind {other:?}"),
    }
}
