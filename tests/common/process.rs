//! [`PyProcess`]: a Python child (`python -c CODE` or a script from
//! `examples/py/`) that announces itself with a ready line, talks a line
//! protocol over stdin/stdout, has its stderr kept for the test's failure
//! message, and is killed when dropped; and the commands that run the
//! interpreter. The server spawners live in the child module `servers`
//! (`servers.rs`), so that they can start a `PyProcess` the way its own
//! constructors do; they are re-exported here.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rpyc_rs::stream::Stream;

use super::{manifest_dir, py_script, python, require_rpyc, IO_TIMEOUT, START_TIMEOUT, STDERR_KEEP};

#[path = "servers.rs"]
mod servers;

pub use servers::{
    spawn_classic_server, spawn_classic_server_with, spawn_rpyc_server, spawn_rpyc_server_using,
    spawn_rpyc_server_with, ServerOptions,
};

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
