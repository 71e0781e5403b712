//! The client side of the benchmark line protocol, shared by every client
//! driver (this Rust one and `ci/bench_peers/client.py`), so the
//! orchestrator measures all of them the same way.
//!
//! After connecting, a driver prints one JSON line `{"ready": true, ...}` (or
//! `{"ok": false, "error": ...}` and exits). Then it reads commands on stdin:
//!
//! * `run SCENARIO N`: do N operations;
//! * `time SCENARIO SECONDS`: do operations until SECONDS have passed;
//! * `quit` (or EOF): exit.
//!
//! and answers each with one JSON line: `{"ok": true, "scenario": S, "n": N,
//! "wall": s, "cpu": s, "p50": s}`: the wall time of the whole run, this
//! process's CPU time over it (user + system, from `getrusage`, so every
//! thread counts), and the median single-operation time. On failure:
//! `{"ok": false, "error": "..."}`; the driver keeps reading commands.
//!
//! The server's CPU is the orchestrator's to measure (from /proc), since
//! only it knows which process serves.

use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

/// What a client driver can do: one operation of a named scenario.
pub trait Target {
    /// Performs one operation of `scenario`; an error ends the run.
    fn op(&mut self, scenario: &str) -> Result<(), String>;
}

/// Never more operations than this in one run, whatever was asked: every
/// loop here ends by itself.
const MAX_OPS: u64 = 50_000_000;

/// Longest accepted `time` run.
const MAX_SECONDS: f64 = 600.0;

/// User + system CPU time of this process so far (all threads).
pub fn cpu_self() -> Duration {
    // SAFETY: getrusage only writes the struct we hand it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    if rc != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Escapes `s` for a JSON string.
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Prints a failure line.
pub fn fail(error: &str) {
    say(&format!("{{\"ok\": false, \"error\": {}}}", json_str(error)));
}

/// Announces readiness, then serves commands from stdin until `quit` or EOF.
pub fn drive(target: &mut dyn Target, what: &str) {
    say(&format!("{{\"ready\": true, \"driver\": {}, \"pid\": {}}}", json_str(what), std::process::id()));
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [] => continue,
            ["quit"] => break,
            ["run", scenario, n] => match n.parse::<u64>() {
                Ok(n) => report(scenario, measure(target, scenario, Stop::Count(n.clamp(1, MAX_OPS)))),
                Err(_) => fail(&format!("bad count {n:?}")),
            },
            ["time", scenario, secs] => match secs.parse::<f64>() {
                Ok(s) if s > 0.0 => {
                    let d = Duration::from_secs_f64(s.min(MAX_SECONDS));
                    report(scenario, measure(target, scenario, Stop::After(d)))
                }
                _ => fail(&format!("bad duration {secs:?}")),
            },
            _ => fail(&format!("unknown command {line:?}")),
        }
    }
}

enum Stop {
    Count(u64),
    After(Duration),
}

struct Run {
    n: u64,
    wall: Duration,
    cpu: Duration,
    p50: Duration,
}

fn measure(target: &mut dyn Target, scenario: &str, stop: Stop) -> Result<Run, String> {
    // Per-operation times, for the median; preallocated so that recording
    // one costs a store, not an allocation.
    let cap = match stop {
        Stop::Count(n) => n.min(10_000_000) as usize,
        Stop::After(_) => 1 << 16,
    };
    let mut times: Vec<u32> = Vec::with_capacity(cap);
    let cpu0 = cpu_self();
    let t0 = Instant::now();
    let mut n = 0u64;
    loop {
        let done = match stop {
            Stop::Count(c) => n >= c,
            Stop::After(d) => t0.elapsed() >= d || n >= MAX_OPS,
        };
        if done {
            break;
        }
        let t = Instant::now();
        target.op(scenario)?;
        times.push(t.elapsed().as_nanos().min(u32::MAX as u128) as u32);
        n += 1;
    }
    let wall = t0.elapsed();
    let cpu = cpu_self().saturating_sub(cpu0);
    let mid = times.len() / 2;
    let p50 = if times.is_empty() { 0 } else { *times.select_nth_unstable(mid).1 };
    Ok(Run { n, wall, cpu, p50: Duration::from_nanos(p50 as u64) })
}

fn report(scenario: &str, run: Result<Run, String>) {
    match run {
        Ok(r) => say(&format!(
            "{{\"ok\": true, \"scenario\": {}, \"n\": {}, \"wall\": {:.9}, \"cpu\": {:.9}, \"p50\": {:.9}}}",
            json_str(scenario),
            r.n,
            r.wall.as_secs_f64(),
            r.cpu.as_secs_f64(),
            r.p50.as_secs_f64()
        )),
        Err(e) => fail(&format!("{scenario}: {e}")),
    }
}

/// Exits the process when stdin reaches EOF: the parent holds the other
/// end, so a server dies with the benchmark that started it, even a killed
/// one.
pub fn exit_when_stdin_closes() {
    std::thread::spawn(|| {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
        std::process::exit(0);
    });
}
