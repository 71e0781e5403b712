//! Small utilities for the tests: [`accept_tcp`] and [`accept_unix`]
//! (accept with a timeout, for a Python client connecting to us),
//! [`TempDir`] (removed on drop), [`within`] (a hard time limit on a
//! blocking step), and [`hex`]/[`unhex`].

use std::io::ErrorKind;
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

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
