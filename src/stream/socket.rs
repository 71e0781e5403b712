//! The halves of a socket (TCP or Unix) and of other descriptors.
//!
//! A socket read with a timeout is one `recv` that the kernel bounds
//! (`SO_RCVTIMEO`), not a `poll` followed by a `read`: on a request/reply
//! protocol every call waits once per message, so the second syscall is a
//! measurable share of a loopback round trip. The option is set only when
//! the wanted timeout moves far from the one already set (an early kernel
//! timeout just means a `poll` for the rest), so steady traffic sets it once.
//!
//! On TCP, acknowledgements are forced (`TCP_QUICKACK`) only when waiting
//! without having sent since data arrived. A peer with Nagle's algorithm on
//! (stock rpyc servers) holds its second small message until the first is
//! acknowledged, and Linux delays that ACK by up to 40 ms if we have nothing
//! to send; forcing it is a whole extra packet, which a send that carries
//! the ACK makes unnecessary. So the reader notes "data received since our
//! last send", the writer clears the note, and a reader about to wait with
//! the note set forces the ACK first.

use std::io::{self, Read, Write};
use std::mem::MaybeUninit;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{InterruptHook, ReadHalf, WriteHalf};

/// "Data has arrived since our last send", shared by a TCP socket's halves.
pub(super) type AckDebt = Arc<AtomicBool>;

/// Waits until `fd` is readable (or hung up), at most `timeout`. False when
/// the time ran out; an `Interrupted` error when `on_interrupt` abandoned
/// the wait.
pub(crate) fn wait_readable(
    fd: RawFd,
    timeout: Option<Duration>,
    mut on_interrupt: Option<&mut InterruptHook>,
) -> io::Result<bool> {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let ms: libc::c_int = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                // Round up so a sub-millisecond wait does not spin.
                let ms = left.as_micros().div_ceil(1000);
                ms.min(libc::c_int::MAX as u128) as libc::c_int
            }
        };
        let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd on the stack, count 1.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        if rc > 0 {
            return Ok(true);
        }
        if rc == 0 {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(false);
            }
            continue;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
        if let Some(hook) = on_interrupt.as_mut() {
            if let Some(why) = hook() {
                return Err(why.into_io_error());
            }
        }
    }
}

pub(super) fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "timed out waiting for data")
}

/// Sets an int socket option to 1. A failure only loses an optimisation.
pub(super) fn set_int_option(fd: RawFd, level: libc::c_int, name: libc::c_int) {
    let one: libc::c_int = 1;
    // SAFETY: a socket descriptor the caller keeps open and a c_int option
    // of its size.
    unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            &one as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Sets `SO_RCVTIMEO`; `None` (the kernel's 0) blocks without limit.
fn set_receive_timeout(fd: RawFd, t: Option<Duration>) -> io::Result<()> {
    let tv = match t {
        None => libc::timeval { tv_sec: 0, tv_usec: 0 },
        Some(d) => {
            // Past ~34 years the kernel treats it as "no limit" anyway; and
            // a zero timeval would mean no limit, so a tiny one is 1 µs.
            let secs = d.as_secs().min(1 << 30) as libc::time_t;
            let usec = d.subsec_micros() as libc::suseconds_t;
            libc::timeval { tv_sec: secs, tv_usec: if secs == 0 && usec == 0 { 1 } else { usec } }
        }
    };
    // SAFETY: a socket descriptor the caller keeps open and a timeval of
    // the option's size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &tv as *const libc::timeval as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether a kernel receive timeout of `have` (`None`: not known; `Some(None)`:
/// no limit) serves a wait of `want` (`None`: no limit) without being set
/// again. It must not be longer than `want` (the wait would overrun). It
/// may be shorter, since an early return costs one `poll` for the rest of
/// the wait, but not so short that ordinary waits pay that: at least half
/// of `want`, or at least [`LONG_ENOUGH`], past which a wait is rare and
/// long enough that one more system call does not count.
///
/// The second allowance matters to a server whose request calls back into
/// its client: it waits for the next request with its serve loop's tick
/// (a second) and for the callback's answer with the request timeout (say
/// 30 s); with "half of the wait" alone, each such request set the kernel's
/// timeout twice, two system calls out of eight.
fn timeout_fits(have: Option<Option<Duration>>, want: Option<Duration>) -> bool {
    match (have, want) {
        (Some(None), None) => true,
        (Some(Some(have)), None) => have >= LONG_ENOUGH,
        (Some(Some(have)), Some(w)) => have <= w && (have >= w / 2 || have >= LONG_ENOUGH),
        _ => false,
    }
}

/// A kernel receive timeout this long serves any longer wait (see
/// [`timeout_fits`]).
const LONG_ENOUGH: Duration = Duration::from_millis(500);

/// The receiving half of a connected socket, TCP or Unix.
pub(super) struct SocketReader {
    sock: UnixStream,
    /// Shared with the writer on TCP; `None` on Unix sockets (no ACKs).
    ack: Option<AckDebt>,
    /// What `SO_RCVTIMEO` is set to, as far as we know: `None` when unknown
    /// (nothing set yet), `Some(None)` for no limit.
    timeo: Option<Option<Duration>>,
    /// Setting `SO_RCVTIMEO` failed once: wait with `poll` from then on.
    poll_only: bool,
    on_interrupt: Option<InterruptHook>,
    /// The peer runs on this host (read once, at the start).
    local: bool,
}

impl SocketReader {
    /// A reader on `sock` (any connected stream socket: the receive
    /// syscalls are the same for every family).
    pub(super) fn new(sock: UnixStream, ack: Option<AckDebt>, on_interrupt: Option<InterruptHook>) -> Self {
        let local = super::locality::peer_on_this_host(sock.as_raw_fd());
        SocketReader { sock, ack, timeo: None, poll_only: false, on_interrupt, local }
    }

    /// Makes the kernel's receive timeout fit a wait of `want` (see
    /// [`timeout_fits`]), so that waits of about the same length (a
    /// connection's request timeout, a serve loop's tick) set it once.
    fn fit_timeout(&mut self, want: Option<Duration>) -> io::Result<()> {
        if timeout_fits(self.timeo, want) {
            return Ok(());
        }
        let set = want.map(|w| w * 3 / 4);
        self.timeo = None;
        set_receive_timeout(self.sock.as_raw_fd(), set)?;
        self.timeo = Some(set);
        Ok(())
    }

    /// One `recv` into `buf`; `None` for "would block / kernel timeout".
    /// The bytes it reports are initialized; the rest of `buf` is left as
    /// it was.
    fn recv(&mut self, buf: &mut [MaybeUninit<u8>], flags: libc::c_int) -> io::Result<Option<usize>> {
        loop {
            // SAFETY: `buf` is valid for `buf.len()` writable bytes (the
            // kernel only writes to it, never reads it) and the descriptor
            // is owned by `self.sock`.
            let rc = unsafe {
                libc::recv(self.sock.as_raw_fd(), buf.as_mut_ptr() as *mut libc::c_void, buf.len(), flags)
            };
            if rc >= 0 {
                return Ok(Some(rc as usize));
            }
            let err = io::Error::last_os_error();
            match err.kind() {
                io::ErrorKind::WouldBlock => return Ok(None),
                io::ErrorKind::Interrupted => {
                    if let Some(hook) = self.on_interrupt.as_mut() {
                        if let Some(why) = hook() {
                            return Err(why.into_io_error());
                        }
                    }
                }
                _ => return Err(err),
            }
        }
    }

    fn read_inner(&mut self, buf: &mut [MaybeUninit<u8>], timeout: Option<Duration>) -> io::Result<usize> {
        let deadline = timeout.map(|t| Instant::now() + t);
        if self.poll_only {
            if !wait_readable(self.sock.as_raw_fd(), timeout, self.on_interrupt.as_mut())? {
                return Err(timed_out());
            }
            return self.recv(buf, libc::MSG_DONTWAIT)?.ok_or_else(timed_out);
        }
        let mut left = timeout;
        loop {
            if left == Some(Duration::ZERO) {
                // A poll: whatever has arrived, without waiting.
                return self.recv(buf, libc::MSG_DONTWAIT)?.ok_or_else(timed_out);
            }
            if let Err(e) = self.fit_timeout(left) {
                log::debug!("SO_RCVTIMEO failed ({e}); waiting with poll instead");
                self.poll_only = true;
                return self.read_inner(buf, left);
            }
            if let Some(n) = self.recv(buf, 0)? {
                return Ok(n);
            }
            // The kernel's timeout ran out (it may be shorter than ours), or
            // someone made the descriptor non-blocking: wait for the rest
            // with poll rather than spin.
            left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if !wait_readable(self.sock.as_raw_fd(), left, self.on_interrupt.as_mut())? {
                return Err(timed_out());
            }
            left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        }
    }

    /// One read with the ACK bookkeeping of the module docs around it.
    fn read_acked(&mut self, buf: &mut [MaybeUninit<u8>], timeout: Option<Duration>) -> io::Result<usize> {
        if let Some(ack) = &self.ack {
            // About to wait with data unacknowledged: see the module docs.
            if ack.swap(false, Ordering::Relaxed) {
                set_int_option(self.sock.as_raw_fd(), libc::IPPROTO_TCP, libc::TCP_QUICKACK);
            }
        }
        let n = self.read_inner(buf, timeout)?;
        if n > 0 {
            if let Some(ack) = &self.ack {
                ack.store(true, Ordering::Relaxed);
            }
        }
        Ok(n)
    }
}

impl ReadHalf for SocketReader {
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Option<Duration>) -> io::Result<usize> {
        // SAFETY: the same memory seen as possibly uninitialized: `recv`
        // only ever writes initialized bytes into it, so it stays a valid
        // `[u8]` whatever happens.
        let buf = unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) };
        self.read_acked(buf, timeout)
    }

    fn read_append(&mut self, buf: &mut Vec<u8>, max: usize, timeout: Option<Duration>) -> io::Result<usize> {
        buf.reserve(max);
        let room = &mut buf.spare_capacity_mut()[..max];
        let n = self.read_acked(room, timeout)?.min(max);
        // SAFETY: `recv` initialized the first `n` bytes of the spare
        // capacity, which directly follows the initialized part.
        unsafe { buf.set_len(buf.len() + n) };
        Ok(n)
    }

    fn polls_cheaply(&self) -> bool {
        true
    }

    fn peer_on_this_host(&self) -> bool {
        self.local
    }
}

/// The sending half of a connected socket, TCP or Unix.
pub(super) struct SocketWriter {
    pub(super) sock: UnixStream,
    pub(super) ack: Option<AckDebt>,
}

impl WriteHalf for SocketWriter {
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        // Cleared before the send: data arriving meanwhile sets it again,
        // which at worst forces one ACK too many, never one too few.
        if let Some(ack) = &self.ack {
            ack.store(false, Ordering::Relaxed);
        }
        self.sock.write_all(data)
    }
    fn shutdown(&mut self) -> io::Result<()> {
        self.sock.shutdown(Shutdown::Both)
    }
}

/// Reads from a descriptor that is not a socket (a child's stdout), waiting
/// with `poll`.
pub(super) struct FdReader<R: Read + AsRawFd + Send> {
    pub(super) inner: R,
}

impl<R: Read + AsRawFd + Send> ReadHalf for FdReader<R> {
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Option<Duration>) -> io::Result<usize> {
        if timeout.is_some() && !wait_readable(self.inner.as_raw_fd(), timeout, None)? {
            return Err(timed_out());
        }
        loop {
            match self.inner.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }

    fn polls_cheaply(&self) -> bool {
        true
    }

    /// A child process's pipe: the child runs here.
    fn peer_on_this_host(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::OwnedFd;

    use super::super::Stream;
    use super::*;

    fn tcp_pair() -> (Stream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        (Stream::from_tcp(c).unwrap(), s)
    }

    fn read_exact(st: &mut Stream, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        let mut got = 0;
        while got < n {
            got += st.reader.read_timeout(&mut buf[got..], Some(Duration::from_secs(5))).unwrap();
        }
        buf
    }

    #[test]
    fn timeouts_hold_whatever_was_set_before() {
        let (mut st, mut peer) = tcp_pair();
        let mut buf = [0u8; 8];
        // Long, then shorter (the kernel's timeout must be lowered), then
        // a poll, then "no limit" answered by data.
        for ms in [60u64, 15, 0] {
            let t0 = Instant::now();
            let e = st.reader.read_timeout(&mut buf, Some(Duration::from_millis(ms))).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::TimedOut);
            let took = t0.elapsed();
            assert!(took >= Duration::from_millis(ms), "{ms} ms wait returned after {took:?}");
        }
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            peer.write_all(b"late").unwrap();
            peer
        });
        let n = st.reader.read_timeout(&mut buf, None).unwrap();
        assert_eq!(&buf[..n], b"late");
        drop(writer.join().unwrap());
        assert_eq!(st.reader.read_timeout(&mut buf, Some(Duration::from_secs(5))).unwrap(), 0);
    }

    #[test]
    fn a_request_timeout_serves_an_unbounded_wait_too() {
        let s = |ms: u64| Some(Some(Duration::from_millis(ms)));
        let want = |ms: u64| Some(Duration::from_millis(ms));
        // Bounded waits: not past the wait; at least half of it, or half
        // a second (a serve loop's 0.75 s tick serves a 30 s request).
        assert!(timeout_fits(s(90_000), want(120_000)));
        assert!(!timeout_fits(s(130_000), want(120_000)));
        assert!(timeout_fits(s(750), want(30_000)));
        assert!(!timeout_fits(s(400), want(30_000)));
        assert!(timeout_fits(s(30), want(50)));
        assert!(!timeout_fits(s(20), want(50)));
        // Unbounded waits: any limit of half a second or more (one poll
        // when it runs out), not a short one; and a bounded wait never
        // gets "no limit".
        assert!(timeout_fits(Some(None), None));
        assert!(timeout_fits(s(90_000), None));
        assert!(timeout_fits(s(500), None));
        assert!(!timeout_fits(s(499), None));
        assert!(!timeout_fits(Some(None), want(120_000)));
        assert!(!timeout_fits(None, None));
        // And an unbounded read under a long limit still gets data, and
        // waits past the limit with poll (here: a 1.5 s limit, a 1.6 s wait).
        let (mut st, mut peer) = tcp_pair();
        let mut buf = [0u8; 8];
        let e = st.reader.read_timeout(&mut buf, Some(Duration::from_millis(2_000))).map(|_| ());
        assert!(e.is_err(), "nothing was sent");
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(1_600));
            peer.write_all(b"late").unwrap();
            peer
        });
        let n = st.reader.read_timeout(&mut buf, None).unwrap();
        assert_eq!(&buf[..n], b"late");
        drop(writer.join().unwrap());
    }

    /// `read_append` reads into a vector's spare room: never more than
    /// `max` bytes, after what the vector held, and only what arrived.
    #[test]
    fn read_append_adds_what_arrived_within_max() {
        let (mut st, mut peer) = tcp_pair();
        peer.write_all(b"0123456789").unwrap();
        let mut v = b"ab".to_vec();
        let t = Some(Duration::from_secs(5));
        assert_eq!(st.reader.read_append(&mut v, 4, t).unwrap(), 4);
        assert_eq!(v, b"ab0123");
        let mut got = 0;
        while got < 6 {
            got += st.reader.read_append(&mut v, 100, t).unwrap();
        }
        assert_eq!(v, b"ab0123456789");
        let e = st.reader.read_append(&mut v, 100, Some(Duration::from_millis(20))).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        drop(peer);
        assert_eq!(st.reader.read_append(&mut v, 100, t).unwrap(), 0);
        assert_eq!(v.len(), 12);
    }

    #[test]
    fn a_non_blocking_descriptor_waits_instead_of_spinning() {
        let (a, mut b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let mut st = Stream::from_socket_fd(OwnedFd::from(a), "pair".into(), false, None).unwrap();
        let mut buf = [0u8; 8];
        let t0 = Instant::now();
        let e = st.reader.read_timeout(&mut buf, Some(Duration::from_millis(40))).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(t0.elapsed() >= Duration::from_millis(40));
        b.write_all(b"x").unwrap();
        assert_eq!(st.reader.read_timeout(&mut buf, Some(Duration::from_secs(5))).unwrap(), 1);
    }

    /// The stall the quick ACK exists for: a peer with Nagle on sends two
    /// small messages back to back; the second leaves only once the first
    /// is acknowledged. We read the first and wait for the second without
    /// sending anything, which is when Linux would delay our ACK by 40 ms
    /// (once the connection looks interactive). 20 such exchanges stalling
    /// would take 800 ms; without stalls they take a few.
    #[test]
    fn waiting_without_sending_acknowledges_at_once() {
        let (mut st, mut peer) = tcp_pair();
        peer.set_nodelay(false).unwrap();
        // Interactive traffic first, so the kernel leaves quick-ACK mode.
        for _ in 0..50 {
            st.writer.write_all(b"q").unwrap();
            let mut b = [0u8; 1];
            peer.read_exact(&mut b).unwrap();
            peer.write_all(b"r").unwrap();
            read_exact(&mut st, 1);
        }
        let t0 = Instant::now();
        for _ in 0..20 {
            st.writer.write_all(b"q").unwrap();
            let mut b = [0u8; 1];
            peer.read_exact(&mut b).unwrap();
            peer.write_all(b"first").unwrap();
            peer.write_all(b"second").unwrap();
            assert_eq!(read_exact(&mut st, 5), b"first");
            assert_eq!(read_exact(&mut st, 6), b"second");
        }
        let took = t0.elapsed();
        assert!(took < Duration::from_millis(400), "20 exchanges took {took:?}: delayed-ACK stalls");
    }
}
