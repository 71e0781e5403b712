//! Streams: the byte pipes a connection runs over.
//!
//! This layer hands the [`channel`](crate::channel) two halves of a duplex
//! byte stream: a [`ReadHalf`] whose reads take a timeout (so a caller can
//! wait for "data or deadline", as rpyc's `poll` does), and a [`WriteHalf`].
//! The halves are separate because one thread may be reading a reply while
//! another sends a request, exactly as in rpyc.
//!
//! Transports: TCP over IPv4 and IPv6 (with `TCP_NODELAY`, since RPyC is
//! request/response and Nagle would add a delayed-ACK stall to every call),
//! Unix domain sockets, a child process's stdin/stdout, and an in-memory pair
//! for tests. [`tls`] wraps any of them in a rustls session and hands back
//! a `Stream` again.
//!
//! A read that times out returns [`io::ErrorKind::TimedOut`]; a clean end of
//! stream returns `Ok(0)`. The channel builds "EOF between frames" versus
//! "EOF mid-frame" on top of that.
//!
//! Use a constructor here when [`Connection::connect`](crate::Connection::connect)
//! and its siblings do not fit: a socket you already have, a child process, a
//! connect timeout of your own:
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use rpyc_rs::service::VoidService;
//! use rpyc_rs::stream::Stream;
//! use rpyc_rs::{Config, Connection};
//!
//! let stream = Stream::tcp_connect(("127.0.0.1", 18812), Some(Duration::from_secs(2)))?;
//! let conn = Connection::new(stream, Arc::new(VoidService), Config::default());
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io::{self, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

mod locality;
mod memory;
mod socket;
pub mod tls;

use memory::{MemReader, MemWriter, Pipe};
/// The Python backend waits out an idle connection with it.
#[cfg(feature = "python")]
pub(crate) use socket::wait_readable;
use socket::{set_int_option, AckDebt, FdReader, SocketReader, SocketWriter};

/// The receiving half of a stream.
pub trait ReadHalf: Send {
    /// Reads at least one byte into `buf`, waiting at most `timeout` (`None`
    /// waits forever). Returns `Ok(0)` at end of stream and an error of kind
    /// [`io::ErrorKind::TimedOut`] when the time runs out with nothing read.
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Option<Duration>) -> io::Result<usize>;

    /// Like [`ReadHalf::read_timeout`], but appends at most `max` bytes to
    /// `buf` (reserving room for them) and returns how many it appended.
    ///
    /// The channel reads large frames this way, straight into the payload
    /// it hands on. The default zeroes the room first, at most
    /// [`APPEND_CHUNK`] bytes a call (a read returns what has arrived, so
    /// zeroing all of `max` each time would cost a large frame quadratic
    /// time); a stream that can read into uninitialized memory (sockets
    /// do) overrides it, so that a large frame is not written twice.
    fn read_append(&mut self, buf: &mut Vec<u8>, max: usize, timeout: Option<Duration>) -> io::Result<usize> {
        let max = max.min(APPEND_CHUNK);
        let old = buf.len();
        buf.resize(old + max, 0);
        let r = self.read_timeout(&mut buf[old..], timeout);
        buf.truncate(old + r.as_ref().map_or(0, |&n| n.min(max)));
        r
    }

    /// True when a read with a zero timeout is a non-blocking system call
    /// or two, cheap enough to repeat for some microseconds (sockets,
    /// pipes): the channel then polls for a reply a short while before it
    /// sleeps on it (see
    /// [`ChannelConfig::reply_spin`](crate::channel::ChannelConfig::reply_spin)).
    /// False by default.
    fn polls_cheaply(&self) -> bool {
        false
    }

    /// True when the peer runs on this host (a Unix socket, a pipe, TCP to
    /// a loopback or our own address): the channel then polls for every
    /// reply, where for a peer elsewhere it backs off when replies keep
    /// coming late (the channel's `spin` module says why). False by
    /// default.
    fn peer_on_this_host(&self) -> bool {
        false
    }
}

/// The most [`ReadHalf::read_append`]'s default reads (and zeroes) a call:
/// a TLS record's plaintext at most, so a TLS stream zeroes what it reads.
pub const APPEND_CHUNK: usize = 16 * 1024;

/// The sending half of a stream.
pub trait WriteHalf: Send {
    /// Writes all of `data`.
    fn write_all(&mut self, data: &[u8]) -> io::Result<()>;
    /// Writes several whole frames, in order. The default gathers them into
    /// one write (one syscall, one wake-up of the peer). A stream whose peer
    /// may only see a frame in the unit it was written in overrides this:
    /// over TLS, a stock rpyc peer waits on `select`, which cannot see a
    /// second frame decrypted along with the first.
    fn write_frames(&mut self, frames: &[&[u8]]) -> io::Result<()> {
        match frames {
            [one] => self.write_all(one),
            _ => self.write_all(&frames.concat()),
        }
    }
    /// Ends the stream in both directions, waking a reader blocked on the
    /// other half (it sees end of stream).
    fn shutdown(&mut self) -> io::Result<()>;
}

/// Ends a stream from any thread, even while another thread is blocked
/// reading or writing it (those calls then fail or see end of stream).
pub type Closer = Box<dyn Fn() + Send + Sync>;

/// A duplex stream: its two halves, a closer, and a description of the peer.
///
/// Build one with the constructors below and hand it to
/// [`Connection::new`](crate::Connection::new) when the `connect` shortcuts do
/// not fit.
pub struct Stream {
    /// The receiving half.
    pub reader: Box<dyn ReadHalf>,
    /// The sending half.
    pub writer: Box<dyn WriteHalf>,
    /// Shuts the stream down without needing either half.
    pub closer: Closer,
    /// Who is on the other end, for messages and logs (`"127.0.0.1:18812"`).
    pub peer: String,
    /// The file descriptor to poll for incoming data, where there is one
    /// (servers multiplex connections on it; rpyc exposes it as `fileno()`).
    pub fd: Option<RawFd>,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream").field("peer", &self.peer).finish_non_exhaustive()
    }
}

/// Runs when a wait for data is interrupted by a signal (the Python
/// bindings run Python's signal handlers here). Returning an
/// [`Interruption`] abandons the wait: the read fails with an
/// [`io::ErrorKind::Interrupted`] error carrying it, which the channel turns
/// into [`ChannelError::Interrupted`](crate::channel::ChannelError) and the
/// engine hands to the waiting caller. `None` keeps waiting.
pub type InterruptHook = Box<dyn FnMut() -> Option<Interruption> + Send>;

/// Why a wait was abandoned before its reply came, carrying the object
/// world's own error (a Python exception raised by a signal handler, or by a
/// request served during the wait) up to the caller that waited.
///
/// The engine never looks inside `cause`; the world that made it takes it
/// back out with [`Interruption::cause`].
#[derive(Clone)]
pub struct Interruption {
    what: String,
    cause: Arc<dyn std::any::Any + Send + Sync>,
}

impl Interruption {
    /// An interruption described by `what`, carrying `cause`.
    pub fn new(what: impl Into<String>, cause: impl std::any::Any + Send + Sync) -> Self {
        Interruption { what: what.into(), cause: Arc::new(cause) }
    }

    /// The cause, if it is a `T`.
    pub fn cause<T: 'static>(&self) -> Option<&T> {
        self.cause.downcast_ref()
    }

    /// The interruption as an I/O error, for a stream's read to return.
    pub fn into_io_error(self) -> io::Error {
        io::Error::new(io::ErrorKind::Interrupted, self)
    }

    /// The interruption an I/O error carries, if it is one.
    pub fn from_io_error(e: &io::Error) -> Option<Interruption> {
        e.get_ref()?.downcast_ref::<Interruption>().cloned()
    }
}

impl std::fmt::Debug for Interruption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Interruption").field(&self.what).finish()
    }
}

impl std::fmt::Display for Interruption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "interrupted: {}", self.what)
    }
}

impl std::error::Error for Interruption {}

impl Stream {
    /// Connects over TCP to the first address of `addr` that answers, each
    /// attempt bounded by `timeout`.
    pub fn tcp_connect<A: ToSocketAddrs>(addr: A, timeout: Option<Duration>) -> io::Result<Stream> {
        let mut last_err = None;
        for sa in addr.to_socket_addrs()? {
            let attempt = match timeout {
                Some(t) => TcpStream::connect_timeout(&sa, t),
                None => TcpStream::connect(sa),
            };
            match attempt {
                Ok(s) => return Stream::from_tcp(s),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err
            .unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "address resolved to nothing")))
    }

    /// Wraps a connected TCP socket (sets `TCP_NODELAY`).
    pub fn from_tcp(s: TcpStream) -> io::Result<Stream> {
        s.set_nodelay(true)?;
        let peer = s.peer_addr().map(|a| a.to_string()).unwrap_or_else(|_| "tcp".into());
        Stream::from_socket(OwnedFd::from(s), peer, true, None)
    }

    /// Connects to a Unix domain socket.
    pub fn unix_connect<P: AsRef<Path>>(path: P) -> io::Result<Stream> {
        let s = UnixStream::connect(path.as_ref())?;
        let mut st = Stream::from_unix(s)?;
        st.peer = path.as_ref().display().to_string();
        Ok(st)
    }

    /// Wraps a connected Unix domain socket.
    pub fn from_unix(s: UnixStream) -> io::Result<Stream> {
        let peer = s
            .peer_addr()
            .ok()
            .and_then(|a| a.as_pathname().map(|p| p.display().to_string()))
            .unwrap_or_else(|| "unix".into());
        Stream::from_socket(OwnedFd::from(s), peer, false, None)
    }

    /// Wraps a connected stream socket of any family (TCP or Unix) that
    /// someone else opened, such as a socket handed over from Python.
    /// Reads, writes and shutdown are the same syscalls for every family;
    /// `tcp` turns on Nagle-free writes and quick ACKs. `on_interrupt` runs
    /// when a signal interrupts a wait for data.
    pub fn from_socket_fd(
        fd: OwnedFd,
        peer: String,
        tcp: bool,
        on_interrupt: Option<InterruptHook>,
    ) -> io::Result<Stream> {
        if tcp {
            set_int_option(fd.as_raw_fd(), libc::IPPROTO_TCP, libc::TCP_NODELAY);
        }
        Stream::from_socket(fd, peer, tcp, on_interrupt)
    }

    /// The halves of any connected stream socket. `UnixStream` is only the
    /// owner of the descriptor here: `recv`, `send` and `shutdown` are the
    /// same syscalls for every address family.
    fn from_socket(
        fd: OwnedFd,
        peer: String,
        tcp: bool,
        on_interrupt: Option<InterruptHook>,
    ) -> io::Result<Stream> {
        let s = UnixStream::from(fd);
        let w = s.try_clone()?;
        let c = s.try_clone()?;
        let fd = Some(s.as_raw_fd());
        let ack = tcp.then(AckDebt::default);
        Ok(Stream {
            fd,
            reader: Box::new(SocketReader::new(s, ack.clone(), on_interrupt)),
            writer: Box::new(SocketWriter { sock: w, ack }),
            closer: Box::new(move || {
                let _ = c.shutdown(Shutdown::Both);
            }),
            peer,
        })
    }

    /// Starts `cmd` with piped stdin/stdout and talks to it over them (as
    /// rpyc's `connect_subproc`). The child is killed when the stream is shut
    /// down or dropped.
    pub fn spawn(cmd: &mut Command) -> io::Result<Stream> {
        let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
        let stdout = child.stdout.take().ok_or_else(|| io::Error::other("child has no stdout"))?;
        let stdin = child.stdin.take().ok_or_else(|| io::Error::other("child has no stdin"))?;
        let peer = format!("process {}", child.id());
        let child = Arc::new(Mutex::new(child));
        let killer = child.clone();
        let fd = Some(stdout.as_raw_fd());
        Ok(Stream {
            fd,
            reader: Box::new(FdReader { inner: stdout }),
            writer: Box::new(ChildWriter { stdin: Some(stdin), child }),
            closer: Box::new(move || {
                let mut c = killer.lock();
                let _ = c.kill();
                let _ = c.wait();
            }),
            peer,
        })
    }

    /// Two connected in-memory streams, for tests: what one writes the other
    /// reads.
    pub fn pair() -> (Stream, Stream) {
        let a = Arc::new(Pipe::default());
        let b = Arc::new(Pipe::default());
        let closer = |x: &Arc<Pipe>, y: &Arc<Pipe>| -> Closer {
            let (x, y) = (x.clone(), y.clone());
            Box::new(move || {
                x.close();
                y.close();
            })
        };
        let left = Stream {
            reader: Box::new(MemReader(a.clone())),
            writer: Box::new(MemWriter { out: b.clone(), back: a.clone() }),
            closer: closer(&a, &b),
            peer: "memory".into(),
            fd: None,
        };
        let right = Stream {
            reader: Box::new(MemReader(b.clone())),
            writer: Box::new(MemWriter { out: a.clone(), back: b.clone() }),
            closer: closer(&a, &b),
            peer: "memory".into(),
            fd: None,
        };
        (left, right)
    }
}

struct ChildWriter {
    stdin: Option<ChildStdin>,
    child: Arc<Mutex<Child>>,
}

impl WriteHalf for ChildWriter {
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match &mut self.stdin {
            Some(s) => {
                s.write_all(data)?;
                s.flush()
            }
            None => Err(io::Error::new(io::ErrorKind::BrokenPipe, "stream shut down")),
        }
    }
    fn shutdown(&mut self) -> io::Result<()> {
        // Closing stdin lets a well-behaved child exit; kill makes sure, and
        // its stdout closing wakes our reader.
        self.stdin = None;
        let mut c = self.child.lock();
        let _ = c.kill();
        let _ = c.wait();
        Ok(())
    }
}

impl Drop for ChildWriter {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_pair_reads_times_out_and_closes() {
        let (mut a, mut b) = Stream::pair();
        a.writer.write_all(b"hi").unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(b.reader.read_timeout(&mut buf, Some(Duration::from_millis(50))).unwrap(), 2);
        let e = b.reader.read_timeout(&mut buf, Some(Duration::from_millis(20))).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        a.writer.shutdown().unwrap();
        assert_eq!(b.reader.read_timeout(&mut buf, None).unwrap(), 0);
    }

    #[test]
    fn tcp_loopback_v4_and_v6() {
        for host in ["127.0.0.1:0", "[::1]:0"] {
            let Ok(l) = std::net::TcpListener::bind(host) else { continue };
            let addr = l.local_addr().unwrap();
            let t = std::thread::spawn(move || {
                let (s, _) = l.accept().unwrap();
                let mut st = Stream::from_tcp(s).unwrap();
                st.writer.write_all(b"pong").unwrap();
            });
            let mut c = Stream::tcp_connect(addr, Some(Duration::from_secs(5))).unwrap();
            let mut buf = [0u8; 4];
            let mut got = 0;
            while got < 4 {
                got += c.reader.read_timeout(&mut buf[got..], Some(Duration::from_secs(5))).unwrap();
            }
            assert_eq!(&buf, b"pong");
            t.join().unwrap();
        }
    }
}
