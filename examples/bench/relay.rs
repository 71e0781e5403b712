//! The floor of any relay: the least a user-space TCP relay can do per
//! message, measured in the same run as `rpyc-rs proxy` so the proxy's
//! overhead can be told from the relaying's own.
//!
//! Two shapes, both with nothing but the syscalls a relay cannot avoid:
//!
//! * `threads`: a thread per direction, a blocking `read` then
//!   `write_all` of what came, `shutdown(SHUT_WR)` at the end (the shape
//!   of the proxy's pumps, which trace, record and translate);
//! * `poll`: one thread per connection for both directions, `poll(2)` on
//!   the two sockets, then a read and a (blocking) write of the ready one
//!   (the shape of the proxy's untraced relay, `src/proxy/raw.rs`).
//!
//! No parsing, no tracing, no allocation per message, no locks. `poll`
//! blocks the whole connection while a write waits, which a production
//! relay must not do (the proxy's is non-blocking, a buffer per
//! direction); as a floor it is exact, since in a ping-pong no write waits.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;

use super::driver;

/// Accepts on 127.0.0.1 (a free port), relays each client to `to`, until
/// stdin closes.
pub fn serve(to: &str, poll: bool) -> Result<(), String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let shape = if poll { "poll" } else { "threads" };
    println!("listening on {addr} (floor relay, {shape}), relaying to {to}");
    driver::exit_when_stdin_closes();
    for client in listener.incoming() {
        let Ok(client) = client else { continue };
        let to = to.to_owned();
        std::thread::spawn(move || {
            let server = match TcpStream::connect(&to) {
                Ok(s) => s,
                Err(e) => return eprintln!("bench relay: connect {to}: {e}"),
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            if poll {
                both_ways(&client, &server);
            } else {
                let (c2, s2) = match (client.try_clone(), server.try_clone()) {
                    (Ok(c), Ok(s)) => (c, s),
                    _ => return,
                };
                let down = std::thread::spawn(move || one_way(&s2, &c2));
                one_way(&client, &server);
                let _ = down.join();
            }
        });
    }
    Ok(())
}

/// Bytes from `src` to `dst` until `src` ends.
fn one_way(mut src: &TcpStream, mut dst: &TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match src.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if dst.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = dst.shutdown(Shutdown::Write);
}

/// Both directions on this thread, until either side ends.
fn both_ways(a: &TcpStream, b: &TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut fds = [
        libc::pollfd { fd: a.as_raw_fd(), events: libc::POLLIN, revents: 0 },
        libc::pollfd { fd: b.as_raw_fd(), events: libc::POLLIN, revents: 0 },
    ];
    loop {
        // SAFETY: two valid pollfds on the stack, count 2.
        if unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) } < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        for (i, (mut src, mut dst)) in [(a, b), (b, a)].into_iter().enumerate() {
            if fds[i].revents == 0 {
                continue;
            }
            match src.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if dst.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            }
        }
    }
}
