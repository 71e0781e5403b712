//! The project's demo: rpyc-rs's wire layers side by side with the real
//! `rpyc` package. Run it with `cargo run --release --example demo`.
//!
//! 1. **brine**: a handful of values is encoded by rpyc-rs and by
//!    `rpyc.core.brine.dump` (in a Python subprocess, which rebuilds each
//!    value from our `repr()`); both hex dumps are shown and must match.
//! 2. **channel**: a Python peer frames with `rpyc.core.channel.Channel`
//!    over TCP on 127.0.0.1; we exchange a small, a compressed and a 1 MiB
//!    frame with it, time the round trips, and check what it sent us.
//!
//! Python is found as in the tests: `$RPYC_RS_PYTHON`, else the project's
//! `.venv/bin/python` (made by `bash ci/setup`), else `python3`. Any
//! mismatch or failure ends the demo with a message and a non-zero exit.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use rpyc_rs::brine::{self, Value};
use rpyc_rs::channel::{Channel, ChannelConfig, COMPRESSION_THRESHOLD};
use rpyc_rs::stream::Stream;

/// How long any single step may take before the demo gives up.
const TIMEOUT: Duration = Duration::from_secs(20);

type Result<T> = std::result::Result<T, String>;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\ndemo FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let python = find_python();
    let version = rpyc_version(&python)?;
    println!("rpyc-rs {} demo: the wire layers against the real rpyc", env!("CARGO_PKG_VERSION"));
    println!("python: {} (rpyc {version})\n", python.display());
    brine_demo(&python)?;
    println!();
    channel_demo(&python)?;
    println!("\nall checks passed");
    Ok(())
}

/// `$RPYC_RS_PYTHON`, else `<crate>/.venv/bin/python` if it exists, else
/// `python3` (the same lookup as `tests/common`).
fn find_python() -> PathBuf {
    if let Some(p) = std::env::var_os("RPYC_RS_PYTHON").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

fn rpyc_version(python: &PathBuf) -> Result<String> {
    let out = Command::new(python)
        .args(["-c", "import rpyc; print(rpyc.__version__)"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} cannot import rpyc:\n{}\nrun `bash ci/setup` first, or set RPYC_RS_PYTHON",
            python.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

// ---------------------------------------------------------------------------
// 1. brine
// ---------------------------------------------------------------------------

fn brine_demo(python: &PathBuf) -> Result<()> {
    println!("[1] brine: rpyc-rs encode vs rpyc.core.brine.dump");
    let mut py = Child2::spawn(python, "brine_echo.py", &[])?;
    let values = vec![
        Value::Tuple(vec![Value::from(7), Value::from("he"), Value::None]),
        Value::Tuple(vec![Value::from(-48), Value::from(159), Value::from(160)]),
        Value::from(1u128 << 100),
        Value::from("héllo 🌍"),
        Value::Bytes(b"\x00\xffrpyc".to_vec()),
        Value::Float(18.2),
        Value::Complex(1.5, -2.0),
        Value::slice(Value::from(1), Value::None, Value::from(-1)),
        Value::FrozenSet(vec![Value::from(5)]),
        Value::Tuple(vec![Value::Bool(true), Value::Bool(false), Value::Ellipsis, Value::NotImplemented]),
        Value::Tuple((-50..200).map(Value::from).collect()),
    ];
    let mut same = 0;
    for v in &values {
        let ours = brine::encode(v).map_err(|e| e.to_string())?;
        // Python rebuilds the value from our repr() and dumps it: this also
        // shows that the repr is what Python would print.
        py.send(&format!("E {}", v.repr()))?;
        let reply = py.line()?;
        let theirs = match reply.split(' ').collect::<Vec<_>>().as_slice() {
            ["OK", dump, _repr, _type] => unhex(dump)?,
            _ => return Err(format!("rpyc could not dump {}: {reply}", v.repr())),
        };
        let identical = ours == theirs;
        same += identical as usize;
        println!("  {}", shorten(&v.repr(), 72));
        println!("    rpyc-rs : {}", hex_dump(&ours));
        println!("    rpyc    : {}", hex_dump(&theirs));
        println!("    identical: {}", if identical { "yes" } else { "NO" });
        // And we read rpyc's bytes back as the same value.
        let back = brine::decode(&theirs).map_err(|e| format!("decoding rpyc's bytes: {e}"))?;
        if back != *v {
            return Err(format!("rpyc's bytes decode to {back:?}, not {v:?}"));
        }
    }
    println!("  {same} of {} values byte-identical", values.len());
    if same != values.len() {
        return Err("rpyc-rs and rpyc encode differently".into());
    }
    Ok(())
}

fn hex_dump(bytes: &[u8]) -> String {
    const SHOWN: usize = 24;
    let mut s: Vec<String> = bytes.iter().take(SHOWN).map(|b| format!("{b:02x}")).collect();
    if bytes.len() > SHOWN {
        s.push(format!("... ({} bytes)", bytes.len()));
    }
    s.join(" ")
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        format!("{}...", s.chars().take(max - 3).collect::<String>())
    }
}

fn unhex(text: &str) -> Result<Vec<u8>> {
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("bad hex from Python".to_owned())
        })
        .collect()
}

// ---------------------------------------------------------------------------
// 2. channel
// ---------------------------------------------------------------------------

fn channel_demo(python: &PathBuf) -> Result<()> {
    let mut py = Child2::spawn(python, "channel_peer.py", &["--listen-tcp"])?;
    let port: u16 = py
        .ready
        .strip_prefix("PORT ")
        .and_then(|p| p.trim().parse().ok())
        .ok_or_else(|| format!("channel_peer.py said {:?}", py.ready))?;
    let stream =
        Stream::tcp_connect(("127.0.0.1", port), Some(TIMEOUT)).map_err(|e| format!("connect: {e}"))?;
    let mut ch = Channel::new(stream, &ChannelConfig::default());
    println!("[2] channel: frames echoed by rpyc.core.channel.Channel over TCP 127.0.0.1:{port}");

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("small", b"hello, rpyc!\n".to_vec()),
        ("100 kB text", text_payload(100_000, 1)),
        ("1 MiB text", text_payload(1 << 20, 2)),
        ("1 MiB random", random_payload(1 << 20, 3)),
    ];
    let rounds = 5;
    let mut medians = Vec::new();
    for (name, payload) in &cases {
        let mut times = Vec::new();
        for _ in 0..rounds {
            let t = Instant::now();
            ch.send(payload).map_err(|e| format!("send: {e}"))?;
            let echo = ch.recv(Some(TIMEOUT)).map_err(|e| format!("recv: {e}"))?;
            times.push(t.elapsed());
            if echo != *payload {
                return Err(format!("the echo of {name} differs ({} bytes back)", echo.len()));
            }
        }
        times.sort();
        medians.push(times[rounds / 2]);
    }

    // What rpyc read, frame by frame (it reported each one before echoing;
    // read only now, so the timings above do not include it): our frames,
    // compressed ones included, arrived intact.
    println!(
        "  {:<14} {:>9}  {:>22}  {:>14}",
        "payload", "bytes", "our frame, as rpyc read it", "round trip"
    );
    let mut frames = 0;
    for ((name, payload), median) in cases.iter().zip(&medians) {
        let mut wire = String::new();
        for _ in 0..rounds {
            let line = py.line()?;
            let f: Vec<&str> = line.split(' ').collect();
            // Above the threshold we compress unless zlib would not shrink
            // the payload (random bytes go raw: rpyc accepts either form).
            let compressed = f.get(2) == Some(&"1");
            let wire_len: usize = f.get(3).and_then(|n| n.parse().ok()).unwrap_or(usize::MAX);
            let flag_ok = if compressed {
                payload.len() > COMPRESSION_THRESHOLD && wire_len < payload.len()
            } else {
                f.get(2) == Some(&"0") && wire_len == payload.len()
            };
            let ok = f.len() == 5
                && f[0] == "RECV"
                && f[1] == payload.len().to_string()
                && flag_ok
                && f[4] == crc32(payload).to_string();
            if !ok {
                return Err(format!("rpyc reported {line:?} for a {}-byte payload", payload.len()));
            }
            let how = match (compressed, payload.len() > COMPRESSION_THRESHOLD) {
                (true, _) => "zlib",
                (false, true) => "raw (incompressible)",
                (false, false) => "raw",
            };
            wire = format!("{how} {} B", f[3]);
            frames += 1;
        }
        println!("  {:<14} {:>9}  {:>26}  {:>11.3} ms", name, payload.len(), wire, ms(*median));
    }
    println!(
        "  (round trip: median of {rounds}, including the Python peer inflating, CRC-ing and re-deflating)"
    );
    println!("  rpyc read all {frames} frames intact, CRC-32 checked");

    // A frame rpyc builds itself (1 MiB, compressed by rpyc's zlib).
    let mut cmd = b"\xffrpyc-rs-cmd ".to_vec();
    cmd.extend_from_slice(b"GEN text 1048576 42");
    let t = Instant::now();
    ch.send(&cmd).map_err(|e| format!("send: {e}"))?;
    let theirs = ch.recv(Some(TIMEOUT)).map_err(|e| format!("recv: {e}"))?;
    let elapsed = t.elapsed();
    let _recv = py.line()?;
    let sent = py.line()?;
    let identical = theirs == text_payload(1 << 20, 42);
    println!(
        "  rpyc's own 1 MiB text frame ({}): built, sent and received in {:.3} ms, identical: {}",
        sent.split(' ').nth(3).map_or("?".into(), |w| format!("{w} bytes of zlib on the wire")),
        ms(elapsed),
        if identical { "yes" } else { "NO" }
    );
    if !identical {
        return Err("rpyc's frame arrived different".into());
    }

    // Closing is a clean end of stream for rpyc.
    ch.writer.shutdown().map_err(|e| format!("shutdown: {e}"))?;
    let bye = py.line()?;
    let want = format!("BYE {}", frames + 1);
    println!("  closed; rpyc saw a clean EOF: {}", if bye == want { "yes" } else { "NO" });
    if bye != want {
        return Err(format!("expected {want:?}, rpyc said {bye:?}"));
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `channel_peer.py`'s `generate("text", ...)`.
fn text_payload(size: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 64);
    let mut i = 0u64;
    while out.len() < size {
        out.extend_from_slice(format!("rpyc-rs line {i:08} seed {seed}\n").as_bytes());
        i += 1;
    }
    out.truncate(size);
    out
}

/// `channel_peer.py`'s `generate("random", ...)`: xorshift64, little-endian.
fn random_payload(size: usize, seed: u64) -> Vec<u8> {
    let mut x = if seed == 0 { 0x9E37_79B9_7F4A_7C15 } else { seed };
    let mut out = Vec::with_capacity(size + 8);
    while out.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(size);
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(data);
    c.sum()
}

// ---------------------------------------------------------------------------
// a Python helper process
// ---------------------------------------------------------------------------

/// A script from `examples/py/` with a line protocol on stdin/stdout and a
/// timeout on every read; killed when dropped. Its stderr goes to ours.
struct Child2 {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    name: String,
    /// The first line it printed (`PORT n`, `READY ...`).
    ready: String,
}

impl Child2 {
    fn spawn(python: &PathBuf, script: &str, args: &[&str]) -> Result<Child2> {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/py").join(script);
        let mut child = Command::new(python)
            .arg("-u")
            .arg(&path)
            .args(args)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", path.display()))?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(l) = line else { return };
                if tx.send(l).is_err() {
                    return;
                }
            }
        });
        let mut c = Child2 { child, stdin, lines, name: script.to_owned(), ready: String::new() };
        c.ready = c.line()?;
        Ok(c)
    }

    fn send(&mut self, line: &str) -> Result<()> {
        writeln!(self.stdin, "{line}")
            .and_then(|_| self.stdin.flush())
            .map_err(|e| format!("writing to {}: {e}", self.name))
    }

    fn line(&mut self) -> Result<String> {
        self.lines.recv_timeout(TIMEOUT).map_err(|_| {
            let status = self.child.try_wait().ok().flatten();
            format!("no answer from {} within {TIMEOUT:?} (exit status: {status:?})", self.name)
        })
    }
}

impl Drop for Child2 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
