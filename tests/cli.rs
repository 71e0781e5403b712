//! The `rpyc-rs` binary against real Python rpyc servers: what it prints,
//! where, and with which exit status (0 ok, 1 the server raised, 2 usage,
//! connection or protocol error).

mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long one run of the binary may take before the test fails.
const RUN_LIMIT: Duration = Duration::from_secs(60);

const ECHO_SERVICE: &str = r#"
    class EchoService(rpyc.Service):
        def exposed_echo(self, x):
            return x
        def exposed_add(self, a, b=0):
            return a + b
        def exposed_fail(self, msg):
            raise ValueError(msg)
        def exposed_numbers(self):
            return [1, 2, 3]
"#;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}\n--- stdout ---\n{}--- stderr ---\n{}", self.code, self.stdout, self.stderr)
    }
}

/// Runs the binary with `args` (plus a `--timeout` so it cannot hang on its
/// own), killing it if it outlives [`RUN_LIMIT`].
fn rpyc_rs(args: &[&str]) -> Run {
    rpyc_rs_in(None, args)
}

fn rpyc_rs_in(dir: Option<&Path>, args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rpyc-rs"));
    cmd.arg("--timeout").arg("20").args(args);
    // Client commands against rpyc 5.x servers need 5.x's message framing;
    // the flag is global, so it may follow the subcommand's arguments.
    if common::rpyc5() {
        cmd.arg("--rpyc5");
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    let mut child = cmd.spawn().expect("start the rpyc-rs binary");
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    // Drained on their own threads, so a chatty child never blocks on a
    // full pipe while we wait for it.
    let out_t = thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_t = thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + RUN_LIMIT;
    let status = loop {
        match child.try_wait().expect("wait for rpyc-rs") {
            Some(status) => break status,
            None if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("rpyc-rs {args:?} still running after {RUN_LIMIT:?}");
            }
        }
    };
    Run {
        code: status.code().unwrap_or(-1),
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    }
}

fn addr(server: &common::PyProcess) -> String {
    format!("127.0.0.1:{}", server.port())
}

#[test]
fn ping_prints_latency_statistics() {
    let server = common::spawn_rpyc_server(ECHO_SERVICE);
    let r = rpyc_rs(&["ping", &addr(&server), "--count", "50", "--size", "64"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("50 round trips of 64 bytes"), "{r:?}");
    let mut seen = Vec::new();
    for line in r.stdout.lines().skip(1) {
        let mut words = line.split_whitespace();
        let (Some(name), Some(num), Some("µs")) = (words.next(), words.next(), words.next()) else {
            panic!("unexpected line {line:?} in {r:?}");
        };
        let micros: f64 = num.parse().unwrap_or_else(|_| panic!("{num:?} in {r:?}"));
        assert!(micros > 0.0 && micros < 20e6, "{line}");
        seen.push((name.to_owned(), micros));
    }
    let names: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["min", "median", "mean", "p99", "max"], "{r:?}");
    let get = |n: &str| seen.iter().find(|(k, _)| k == n).map(|(_, v)| *v).unwrap_or(f64::NAN);
    assert!(get("min") <= get("median") && get("median") <= get("p99") && get("p99") <= get("max"), "{r:?}");
}

#[test]
fn eval_prints_the_repr() {
    let server = common::spawn_classic_server();
    let a = addr(&server);
    let r = rpyc_rs(&["eval", &a, "6*7"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "42\n"), "{r:?}");
    assert!(r.stderr.is_empty(), "{r:?}");
    // A value is printed with Python's repr...
    let r = rpyc_rs(&["eval", &a, "('it\\'s', b'\\x00', None, 2**70, 1.5)"]);
    assert_eq!(r.stdout, "(\"it's\", b'\\x00', None, 1180591620717411303424, 1.5)\n", "{r:?}");
    // ... and a netref with the server's repr of the object.
    let r = rpyc_rs(&["eval", &a, "{'a': [1, 2]}"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "{'a': [1, 2]}\n"), "{r:?}");
    let r = rpyc_rs(&["eval", &a, "__import__('os').getpid()"]);
    assert_eq!(r.stdout.trim(), server.pid().to_string(), "{r:?}");
}

#[test]
fn exec_then_eval() {
    let server = common::spawn_classic_server();
    let a = addr(&server);
    // Each run is a new connection with a fresh namespace, so the state
    // lives in a module.
    let r = rpyc_rs(&["exec", &a, "import sys\nsys.rpyc_rs_cli_test = 41"]);
    assert_eq!((r.code, r.stdout.as_str(), r.stderr.as_str()), (0, "", ""), "{r:?}");
    let r = rpyc_rs(&["eval", &a, "__import__('sys').rpyc_rs_cli_test + 1"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "42\n"), "{r:?}");
}

#[test]
fn call_passes_literals_and_prints_the_repr() {
    let server = common::spawn_rpyc_server(ECHO_SERVICE);
    let a = addr(&server);
    let r = rpyc_rs(&["call", &a, "echo", "(1, 'a')"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "(1, 'a')\n"), "{r:?}");
    let arg = "(-5, 2.5, -2e3, b'\\xff', \"q'\", (), (None,), True, 123456789012345678901234567890)";
    let r = rpyc_rs(&["call", &a, "echo", arg]);
    assert_eq!(
        r.stdout, "(-5, 2.5, -2000.0, b'\\xff', \"q'\", (), (None,), True, 123456789012345678901234567890)\n",
        "{r:?}"
    );
    let r = rpyc_rs(&["call", &a, "add", "40", "b=2"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "42\n"), "{r:?}");
    let r = rpyc_rs(&["call", &a, "add", "-1"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "-1\n"), "{r:?}");
    let r = rpyc_rs(&["call", &a, "numbers"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "[1, 2, 3]\n"), "{r:?}");
}

#[test]
fn a_remote_exception_exits_1_with_its_traceback() {
    let server = common::spawn_classic_server();
    let r = rpyc_rs(&["eval", &addr(&server), "1/0"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.is_empty(), "{r:?}");
    assert!(r.stderr.contains("Traceback (most recent call last)"), "{r:?}");
    assert!(r.stderr.contains("ZeroDivisionError: division by zero"), "{r:?}");
    assert!(r.stderr.contains("rpyc-rs: the server raised ZeroDivisionError"), "{r:?}");

    let server = common::spawn_rpyc_server(ECHO_SERVICE);
    let r = rpyc_rs(&["call", &addr(&server), "fail", "'boom'"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("exposed_fail"), "{r:?}");
    assert!(r.stderr.contains("ValueError: boom"), "{r:?}");
    // eval against a server that is not classic: the AttributeError, with a hint.
    let r = rpyc_rs(&["eval", &addr(&server), "1"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("AttributeError") && r.stderr.contains("classic"), "{r:?}");
}

#[test]
fn a_refused_port_exits_2() {
    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let r = rpyc_rs(&["eval", &format!("127.0.0.1:{port}"), "1"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stdout.is_empty(), "{r:?}");
    assert!(r.stderr.contains(&format!("cannot connect to 127.0.0.1:{port}: Connection refused")), "{r:?}");
    assert!(r.stderr.contains("is an RPyC server running there?"), "{r:?}");
    let r = rpyc_rs(&["ping", &format!("127.0.0.1:{port}")]);
    assert_eq!(r.code, 2, "{r:?}");
}

#[test]
fn a_bad_literal_exits_2_before_connecting() {
    // Port 1 would refuse; the literal error must come first.
    let r = rpyc_rs(&["call", "127.0.0.1:1", "echo", "foo"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("argument 1 (\"foo\") is not a Python literal"), "{r:?}");
    assert!(r.stderr.contains("quote it: 'foo'"), "{r:?}");
    assert!(!r.stderr.contains("connect"), "{r:?}");
    let r = rpyc_rs(&["call", "127.0.0.1:1", "echo", "[1, 2]"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("use a tuple"), "{r:?}");
}

#[test]
fn usage_errors_exit_2() {
    let r = rpyc_rs(&["eval"]);
    assert_eq!(r.code, 2, "{r:?}");
    let r = rpyc_rs(&["eval", "::1:5", "1"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("brackets"), "{r:?}");
    let r = rpyc_rs(&["ping", "127.0.0.1:1", "--count", "0"]);
    assert_eq!(r.code, 2, "{r:?}");
}

#[test]
fn a_slow_reply_times_out_with_exit_2() {
    let server = common::spawn_classic_server();
    let started = Instant::now();
    let r = rpyc_rs(&["eval", &addr(&server), "__import__('time').sleep(5)", "--timeout", "0.5"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("no reply") && r.stderr.contains("--timeout"), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(4), "took {:?}", started.elapsed());
}

#[test]
fn a_unix_socket_address_works() {
    let dir = common::TempDir::new();
    let sock = dir.join("classic.sock");
    let opts = common::ServerOptions { unix_socket: Some(sock.clone()), ..Default::default() };
    let server = common::spawn_classic_server_with(&opts);
    let path = sock.display().to_string();
    let r = rpyc_rs(&["eval", &path, "__import__('os').getpid()"]);
    assert_eq!((r.code, r.stdout.trim()), (0, server.pid().to_string().as_str()), "{r:?}");
    let r = rpyc_rs(&["ping", &path, "--count", "5"]);
    assert_eq!(r.code, 0, "{r:?}");
    // A bare name is a socket when such a socket file exists.
    let r = rpyc_rs_in(Some(dir.path()), &["call", "classic.sock", "eval", "'6*7'"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "42\n"), "{r:?}");
    // A socket path nobody listens on is a connection error.
    let r = rpyc_rs(&["eval", &dir.join("nobody.sock").display().to_string(), "1"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("cannot connect to"), "{r:?}");
}

/// `rpyc-rs serve` announces its address, serves the demo service to a
/// stock Python client, and exits 0 on SIGTERM after closing connections.
#[test]
fn serve_runs_the_demo_service_until_sigterm() {
    common::require_rpyc();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rpyc-rs"))
        .args(["serve", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let first = common::within(Duration::from_secs(20), "serve's first line", move || {
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while out.read(&mut b).map(|n| n == 1).unwrap_or(false) && b[0] != b'\n' {
            line.push(b[0]);
        }
        String::from_utf8_lossy(&line).to_string()
    });
    let port = first
        .strip_prefix("listening on 127.0.0.1:")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
    let script = common::manifest_dir().join("tests/scripts/demo_client.py");
    let client = Command::new(common::python())
        .arg(script)
        .args([&port.to_string(), "basics", "objects", "callbacks"])
        .output()
        .unwrap();
    assert!(client.status.success(), "{}", String::from_utf8_lossy(&client.stderr));
    assert_eq!(String::from_utf8_lossy(&client.stdout).matches("OK ").count(), 3);
    // SAFETY: signalling our own child by its pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let start = Instant::now();
    let status = common::within(Duration::from_secs(10), "serve to exit", move || child.wait().unwrap());
    assert!(status.success(), "{status}");
    assert!(start.elapsed() < Duration::from_secs(5));
}

/// Starts `rpyc-rs ARGS serve --port 0` with `env` and at most `max_files`
/// open descriptors; returns the child and its port.
fn spawn_serve(args: &[&str], env: &[(&str, &str)], max_files: Option<u64>) -> (std::process::Child, u16) {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rpyc-rs"));
    cmd.args(args).args(["serve", "--port", "0"]).env_remove("RUST_LOG").envs(env.iter().copied());
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some(n) = max_files {
        let limit = libc::rlimit { rlim_cur: n, rlim_max: n };
        // SAFETY: setrlimit is async-signal-safe and touches only the child.
        unsafe {
            cmd.pre_exec(move || match libc::setrlimit(libc::RLIMIT_NOFILE, &limit) {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            });
        }
    }
    let mut child = cmd.spawn().expect("start rpyc-rs serve");
    let _kill = KillOnPanic(child.id() as i32);
    let mut out = child.stdout.take().expect("piped stdout");
    let first = common::within(Duration::from_secs(20), "serve's first line", move || {
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while out.read(&mut b).map(|n| n == 1).unwrap_or(false) && b[0] != b'\n' {
            line.push(b[0]);
        }
        String::from_utf8_lossy(&line).to_string()
    });
    let port = first
        .strip_prefix("listening on 127.0.0.1:")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
    (child, port)
}

/// Reads the child's stderr until a line contains `needle` (true) or it
/// ends (false); it is then stopped with SIGTERM. Returns what was read.
/// Kills a child with SIGKILL when the test panics while it runs (a timed
/// out wait), so no `rpyc-rs serve` outlives a failed test.
struct KillOnPanic(i32);

impl Drop for KillOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // SAFETY: signalling our own child by its pid.
            unsafe { libc::kill(self.0, libc::SIGKILL) };
        }
    }
}

fn stderr_until(child: &mut std::process::Child, needle: &'static str) -> (bool, String) {
    use std::io::BufRead;
    let err = child.stderr.take().expect("piped stderr");
    let pid = child.id() as i32;
    let _kill = KillOnPanic(pid);
    common::within(Duration::from_secs(30), "a log line on stderr", move || {
        let mut seen = String::new();
        for line in std::io::BufReader::new(err).lines() {
            let Ok(line) = line else { break };
            seen.push_str(&line);
            seen.push('\n');
            if line.contains(needle) {
                // SAFETY: signalling our own child by its pid.
                unsafe { libc::kill(pid, libc::SIGTERM) };
                return (true, seen);
            }
        }
        (false, seen)
    })
}

/// Log output: `-vv` shows each connection accepted; an accept error (out of file
/// descriptors) is a warning, shown without any flag; RUST_LOG is honoured
/// when no -v/-q is given, and -q hides the debug lines RUST_LOG asks for.
#[test]
fn serve_logs_at_the_level_asked_for() {
    // -vv: a connection accepted and ended, at debug level.
    let (mut child, port) = spawn_serve(&["-vv"], &[], None);
    drop(std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect"));
    let (found, seen) = stderr_until(&mut child, "connection from 127.0.0.1:");
    let _ = child.wait();
    assert!(found, "{seen}");

    // RUST_LOG alone does the same.
    let (mut child, port) = spawn_serve(&[], &[("RUST_LOG", "rpyc_rs::server=debug")], None);
    drop(std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect"));
    let (found, seen) = stderr_until(&mut child, "connection from");
    let _ = child.wait();
    assert!(found, "{seen}");

    // No flag: accept errors (warnings) show, connections (debug) do not.
    // With 16 descriptors the server runs out after a few connections.
    let (mut child, port) = spawn_serve(&[], &[], Some(16));
    let clients: Vec<_> =
        (0..24).filter_map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).ok()).collect();
    // (The server refuses the client it cannot keep, and says so.)
    let (found, seen) = stderr_until(&mut child, "out of file descriptors");
    let _ = child.wait();
    drop(clients);
    assert!(found, "{seen}");
    assert!(!seen.contains("connection from"), "{seen}");

    // -q beats RUST_LOG: no debug lines, and the run still ends cleanly.
    let (mut child, port) = spawn_serve(&["-q"], &[("RUST_LOG", "debug")], None);
    drop(std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect"));
    let stop = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    drop(stop);
    // SAFETY: signalling our own child by its pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let (found, seen) = stderr_until(&mut child, "connection from");
    let status = child.wait().expect("wait");
    assert!(!found && status.success(), "{status} {seen}");
}
