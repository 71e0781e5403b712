//! The raw TCP ping-pong: the floor under an RPyC call on this machine.
//!
//! The client first sends an 8-byte header (request size, reply size, both
//! big-endian u32); then each round trip is one `write` of the request
//! bytes and one blocking `read_exact` of the reply, mirrored by the
//! server. `TCP_NODELAY` on both ends, as rpyc and rpyc-rs set it. No
//! framing, no parsing: the bytes are not even looked at, so the time left
//! is the kernel's (two syscalls and a wake-up per side per round trip).
//!
//! Scenarios: `raw` (a blocking read), `raw-poll` (`poll(2)`, then the
//! read), `raw-spin` (non-blocking reads for up to the engine's
//! reply-polling budget, yielding between them, then a blocking read: the
//! way an rpyc-rs client waits for a reply) and `raw-spin-both` (the
//! same, and the server waits for the next request that way too, as an
//! rpyc-rs serving loop does). A request's first byte tells the server how
//! to wait for the next one, so one connection serves every scenario.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use rpyc_rs::channel::DEFAULT_REPLY_SPIN;

use super::driver::{self, Target};

/// The largest request or reply size the server accepts (a sanity bound on
/// what the header claims, not a limit anyone should reach).
const MAX_SIZE: u32 = 1 << 20;
/// A request's first byte when the server is to sleep on the next one.
const SLEEP_NEXT: u8 = 0x24;
/// A request's first byte when the server is to poll for the next one.
const POLL_NEXT: u8 = 0x25;

/// Accepts connections on 127.0.0.1 and echoes fixed-size replies, a
/// thread per connection, until stdin closes.
pub fn serve(port: u16) -> Result<(), String> {
    let listener = TcpListener::bind(("127.0.0.1", port)).map_err(|e| format!("bind: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("listening on {addr} (raw ping-pong)");
    driver::exit_when_stdin_closes();
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        std::thread::spawn(move || {
            if let Err(e) = serve_one(conn) {
                eprintln!("bench pingpong-serve: connection ended: {e}");
            }
        });
    }
    Ok(())
}

fn serve_one(mut s: TcpStream) -> std::io::Result<()> {
    s.set_nodelay(true)?;
    let mut hdr = [0u8; 8];
    s.read_exact(&mut hdr)?;
    let req = u32::from_be_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
    let rep = u32::from_be_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]);
    if req == 0 || req > MAX_SIZE || rep == 0 || rep > MAX_SIZE {
        return Err(std::io::Error::other(format!("bad sizes {req}/{rep}")));
    }
    let mut inb = vec![0u8; req as usize];
    let out = vec![0x42u8; rep as usize];
    let mut poll_next = false;
    loop {
        let got = if poll_next { read_spinning(&s, &mut inb) } else { Ok(0) };
        match got.and_then(|got| s.read_exact(&mut inb[got..])) {
            Ok(()) => {
                poll_next = inb[0] == POLL_NEXT;
                s.write_all(&out)?
            }
            // The client hung up between round trips: a normal end.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

struct PingPong {
    s: TcpStream,
    out: Vec<u8>,
    inb: Vec<u8>,
}

/// Blocks in `poll(2)` until `s` is readable, as the rpyc-rs engine waits
/// for a reply (it needs the timeout); `raw-poll` measures whether that
/// way of waiting costs or saves anything against a plain blocking read.
fn wait_readable(s: &TcpStream) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    let mut pfd = libc::pollfd { fd: s.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    loop {
        // SAFETY: one valid pollfd on the stack, count 1.
        let rc = unsafe { libc::poll(&mut pfd, 1, 30_000) };
        match rc {
            1.. => return Ok(()),
            0 => return Err("no reply within 30 s".into()),
            _ if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => continue,
            _ => return Err(format!("poll: {}", std::io::Error::last_os_error())),
        }
    }
}

/// Reads without waiting, yielding the CPU between tries, for up to
/// [`DEFAULT_REPLY_SPIN`], as an rpyc-rs client waits for a reply (and a
/// serving loop for the next request); how many bytes of `buf` came (0:
/// none in time, and the caller waits as usual). The peer's hang-up is an
/// `UnexpectedEof` error.
fn read_spinning(s: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    let start = Instant::now();
    loop {
        // SAFETY: `recv` writes at most `buf.len()` bytes into `buf`, a
        // live, exclusively borrowed buffer.
        let n = unsafe { libc::recv(s.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
        match n {
            1.. => return Ok(n as usize),
            0 => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the peer closed the connection")),
            _ => {
                let e = io::Error::last_os_error();
                if !matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) {
                    return Err(e);
                }
            }
        }
        if start.elapsed() >= DEFAULT_REPLY_SPIN {
            return Ok(0);
        }
        std::thread::yield_now();
    }
}

impl Target for PingPong {
    /// `raw`: write, then a blocking read; `raw-poll`: write, poll, read;
    /// `raw-spin`: write, reads without waiting for a while, then a
    /// blocking read for the rest; `raw-spin-both`: the same, with the
    /// request telling the server to poll for the next one.
    fn op(&mut self, scenario: &str) -> Result<(), String> {
        self.out[0] = if scenario == "raw-spin-both" { POLL_NEXT } else { SLEEP_NEXT };
        self.s.write_all(&self.out).map_err(|e| format!("write: {e}"))?;
        let got = match scenario {
            "raw" => 0,
            "raw-poll" => {
                wait_readable(&self.s)?;
                0
            }
            "raw-spin" | "raw-spin-both" => {
                read_spinning(&self.s, &mut self.inb).map_err(|e| format!("read: {e}"))?
            }
            other => {
                return Err(format!(
                    "unknown scenario {other:?} (have raw, raw-poll, raw-spin, raw-spin-both)"
                ))
            }
        };
        self.s.read_exact(&mut self.inb[got..]).map_err(|e| format!("read: {e}"))
    }
}

/// Connects and drives round trips of `req` bytes out and `rep` back.
pub fn client(addr: &str, req: u32, rep: u32) -> Result<(), String> {
    if req == 0 || req > MAX_SIZE || rep == 0 || rep > MAX_SIZE {
        return Err(format!("sizes must be 1..={MAX_SIZE}"));
    }
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    // A dead server must end a run, not hang it.
    s.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
    let mut hdr = [0u8; 8];
    hdr[..4].copy_from_slice(&req.to_be_bytes());
    hdr[4..].copy_from_slice(&rep.to_be_bytes());
    s.write_all(&hdr).map_err(|e| e.to_string())?;
    let mut target = PingPong { s, out: vec![SLEEP_NEXT; req as usize], inb: vec![0u8; rep as usize] };
    driver::drive(&mut target, &format!("rust raw tcp {req}/{rep} bytes"));
    Ok(())
}
