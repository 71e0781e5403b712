//! Both directions of a connection relayed raw by one thread: what a
//! connection gets when nothing has to look at its bytes (no trace, no
//! record, the same dialect on both sides). When the client's dialect is
//! `auto`, [`read_first`] reads its first message to find out, and the
//! connection goes raw from there (or, when a translation is needed, to
//! the pumps with what was read).
//!
//! Why one thread and not the two pumps (`pump.rs`): on a CPU shared with
//! the peers, a thread per direction is woken once per message and, having
//! passed it on, must go back to sleep; when the peer it woke preempts it
//! first, it is scheduled again only to block, an extra context switch per
//! message. One thread for both directions that was preempted after
//! passing a request on usually finds the reply waiting when it runs again
//! (`ci/bench proxy` measures it against minimal relays of both shapes).
//!
//! The sockets are non-blocking and each direction has a buffer of its
//! own: a peer that does not read stalls only what is sent to it (that
//! direction stops reading its source until its buffer drains), never the
//! other direction. A peer that reads only once its own send is done (as
//! rpyc's server does) would otherwise deadlock against one whose
//! receiving thread is separate from its sending one. The relay ends when
//! both directions have ended; what it hands back is nothing (the end of a
//! direction is passed on as a half-close, a failed write ends it).

use std::io;
use std::net::Shutdown;

use crate::brine::DecodeOptions;
use crate::channel::frame_payload;
use crate::protocol::message::{split_message, Dialect};
use crate::trace::{FrameSplitter, Piece};

use super::Sock;

/// What the client sent first, read by [`read_first`].
pub(super) struct First {
    /// Every byte read (the first frame and whatever came with it).
    pub(super) bytes: Vec<u8>,
    /// The first message's dialect; `None` when the bytes are not an rpyc
    /// message or the client ended before sending a whole frame.
    pub(super) dialect: Option<Dialect>,
}

/// Reads from `client` until its first frame is complete (or turns out
/// not to be one, or the client ends), as the client's pump would before
/// deciding on a dialect; frames of up to `max` bytes.
pub(super) fn read_first(client: &Sock, max: usize) -> First {
    let mut split = FrameSplitter::new(max);
    let mut bytes = Vec::new();
    let mut chunk = vec![0u8; BUF];
    loop {
        let n = match client.read(&mut chunk) {
            Ok(0) => return First { bytes, dialect: None },
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return First { bytes, dialect: None },
        };
        bytes.extend_from_slice(&chunk[..n]);
        split.push(&chunk[..n]);
        let dialect = match split.next_piece() {
            None => continue,
            Some(Piece::Garbage(_)) => None,
            Some(Piece::Frame(raw, span, _)) => frame_payload(&raw, span, max)
                .ok()
                .and_then(|p| split_message(&p, DecodeOptions::default()).ok())
                .map(|m| m.dialect),
        };
        return First { bytes, dialect };
    }
}

/// How much of one direction is held between a read and its write.
const BUF: usize = 64 * 1024;

/// One direction: bytes read from `src` not yet written to `dst`.
struct Dir<'a> {
    src: &'a Sock,
    dst: &'a Sock,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// False once `src` ended (or `dst` failed): nothing more is read.
    open: bool,
}

impl Dir<'_> {
    fn pending(&self) -> bool {
        self.start < self.end
    }

    /// Writes what is pending, as far as `dst` takes it now.
    fn flush(&mut self) {
        while self.pending() {
            match self.dst.write(&self.buf[self.start..self.end]) {
                Ok(0) => return self.fail(),
                Ok(n) => self.start += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => return self.fail(),
            }
        }
    }

    /// Reads what `src` has (once), then passes it on.
    fn fill(&mut self) {
        loop {
            match self.src.read(&mut self.buf) {
                Ok(0) => {
                    self.open = false;
                    self.dst.shutdown(Shutdown::Write);
                    return;
                }
                Ok(n) => {
                    (self.start, self.end) = (0, n);
                    return self.flush();
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // A reset counts as an end, as in the pumps.
                Err(_) => {
                    self.open = false;
                    self.dst.shutdown(Shutdown::Write);
                    return;
                }
            }
        }
    }

    /// The receiver is gone: drop what is held, read no more from the
    /// sender (the pumps' behaviour: that direction just ends).
    fn fail(&mut self) {
        (self.start, self.end) = (0, 0);
        self.open = false;
        self.src.shutdown(Shutdown::Read);
    }

    /// Done: nothing more to read and nothing left to write.
    fn done(&self) -> bool {
        !self.open && !self.pending()
    }
}

/// Relays `client` <-> `server` until both directions have ended.
pub(super) fn relay(client: &Sock, server: &Sock) -> io::Result<()> {
    client.set_nonblocking(true)?;
    server.set_nonblocking(true)?;
    let mut up = Dir { src: client, dst: server, buf: vec![0; BUF], start: 0, end: 0, open: true };
    let mut down = Dir { src: server, dst: client, buf: vec![0; BUF], start: 0, end: 0, open: true };
    loop {
        if up.done() && down.done() {
            return Ok(());
        }
        // A direction either waits to read (its buffer is empty) or to
        // write (it is not): never both, so a slow receiver holds back its
        // own sender only.
        let want = |d: &Dir<'_>, reading: bool| -> libc::c_short {
            match (reading, d.pending(), d.open) {
                (true, false, true) => libc::POLLIN,
                (false, true, _) => libc::POLLOUT,
                _ => 0,
            }
        };
        // A socket nothing waits on is left out (a negative fd): an error
        // or hang-up on it would otherwise wake the poll at once, again
        // and again, while the other socket is what matters.
        let entry = |fd: i32, events: libc::c_short| libc::pollfd {
            fd: if events == 0 { -1 } else { fd },
            events,
            revents: 0,
        };
        let mut fds = [
            entry(client.fd(), want(&up, true) | want(&down, false)),
            entry(server.fd(), want(&down, true) | want(&up, false)),
        ];
        // SAFETY: two valid pollfds on the stack, count 2.
        if unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) } < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        // An error or hang-up shows up in the read or write that follows.
        let (c, s) = (fds[0].revents, fds[1].revents);
        let ready = |r: libc::c_short, what: libc::c_short| r & (what | libc::POLLERR | libc::POLLHUP) != 0;
        if down.pending() && ready(c, libc::POLLOUT) {
            down.flush();
        }
        if up.pending() && ready(s, libc::POLLOUT) {
            up.flush();
        }
        if !up.pending() && up.open && ready(c, libc::POLLIN) {
            up.fill();
        }
        if !down.pending() && down.open && ready(s, libc::POLLIN) {
            down.fill();
        }
    }
}
