//! The listening socket shared by the servers ([`crate::server`]) and the
//! proxy ([`crate::proxy`]): TCP or a Unix socket, bound (a stale socket
//! file left by a dead process is replaced, a live one is not), accepted
//! from, polled through its descriptor, and, for a Unix socket, its file
//! removed when the listener is dropped.
//!
//! What it hands on is an [`Accepted`] connection, still a plain std
//! stream: each user wraps it its own way (the servers in a
//! [`crate::stream::Stream`], the proxy in its relay socket).

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// A bound listening socket.
pub(crate) enum Listener {
    /// TCP, IPv4 or IPv6.
    Tcp(TcpListener),
    /// A Unix socket and its path (removed on drop).
    Unix(UnixListener, PathBuf),
}

/// A connection just accepted.
pub(crate) enum Accepted {
    /// From a TCP listener.
    Tcp(TcpStream),
    /// From a Unix socket listener.
    Unix(UnixStream),
}

impl Listener {
    /// Binds a TCP listener (the first of `addr`'s addresses that binds).
    pub(crate) fn bind_tcp<A: ToSocketAddrs>(addr: A) -> io::Result<Listener> {
        Ok(Listener::Tcp(TcpListener::bind(addr)?))
    }

    /// Binds a Unix socket at `path`. A socket file nobody listens on any
    /// more (its server died without cleaning up) is removed first; one
    /// that still answers is left alone, and binding fails.
    pub(crate) fn bind_unix(path: &Path) -> io::Result<Listener> {
        if path.exists() && UnixStream::connect(path).is_err() {
            std::fs::remove_file(path)?;
        }
        Ok(Listener::Unix(UnixListener::bind(path)?, path.to_path_buf()))
    }

    /// The listening descriptor, for `poll(2)` and `listen(2)`.
    pub(crate) fn fd(&self) -> RawFd {
        match self {
            Listener::Tcp(l) => l.as_raw_fd(),
            Listener::Unix(l, _) => l.as_raw_fd(),
        }
    }

    /// The TCP address bound (with the real port when bound to port 0).
    pub(crate) fn tcp_addr(&self) -> Option<io::Result<SocketAddr>> {
        match self {
            Listener::Tcp(l) => Some(l.local_addr()),
            Listener::Unix(..) => None,
        }
    }

    /// The Unix socket's path.
    pub(crate) fn unix_path(&self) -> Option<&Path> {
        match self {
            Listener::Tcp(_) => None,
            Listener::Unix(_, p) => Some(p),
        }
    }

    /// Sets the accept queue's length (std listens with 128; a second
    /// `listen(2)` on a listening socket only changes the backlog).
    pub(crate) fn set_backlog(&self, backlog: u32) -> io::Result<()> {
        let backlog = backlog.min(libc::c_int::MAX as u32) as libc::c_int;
        // SAFETY: our listening descriptor; listen() only sets its queue.
        if unsafe { libc::listen(self.fd(), backlog) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Accepts one connection (blocking unless the caller polled first).
    pub(crate) fn accept(&self) -> io::Result<Accepted> {
        match self {
            Listener::Tcp(l) => Ok(Accepted::Tcp(l.accept()?.0)),
            Listener::Unix(l, _) => Ok(Accepted::Unix(l.accept()?.0)),
        }
    }

    /// Accepts one client and closes it at once (no descriptor to spare,
    /// or no room): it sees the connection end rather than hang.
    pub(crate) fn refuse_one(&self) {
        // SAFETY: accepting on our listening descriptor; a returned
        // descriptor is ours and closed right away.
        unsafe {
            let fd = libc::accept(self.fd(), std::ptr::null_mut(), std::ptr::null_mut());
            if fd >= 0 {
                libc::close(fd);
            }
        }
    }

    /// Waits up to `ms` milliseconds for a connection to accept; false on
    /// timeout or when a signal interrupted the wait.
    pub(crate) fn wait_readable(&self, ms: i32) -> io::Result<bool> {
        let mut p = libc::pollfd { fd: self.fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: `p` is a valid pollfd for the duration of the call, and
        // the count passed is 1.
        let r = unsafe { libc::poll(&mut p, 1, ms) };
        if r < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted { Ok(false) } else { Err(e) };
        }
        Ok(r > 0)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        // The socket file would otherwise outlive us and refuse the next
        // bind (until `bind_unix` found it dead).
        if let Listener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_socket_file_is_replaced_when_stale_kept_when_live_and_removed_on_drop() {
        let dir = std::env::temp_dir().join(format!("rpyc-rs-listener-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        // A stale file: std's listener leaves its file behind when dropped.
        drop(UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let l = Listener::bind_unix(&path).unwrap();
        assert_eq!(l.unix_path(), Some(path.as_path()));
        // A live one is not taken over.
        assert!(Listener::bind_unix(&path).is_err());
        let c = UnixStream::connect(&path).unwrap();
        assert!(l.wait_readable(5000).unwrap());
        assert!(matches!(l.accept().unwrap(), Accepted::Unix(_)));
        drop(c);
        drop(l);
        assert!(!path.exists());
        let _ = std::fs::remove_dir(&dir);
    }

    #[test]
    fn tcp_listener_reports_its_port_and_accepts() {
        let l = Listener::bind_tcp("127.0.0.1:0").unwrap();
        l.set_backlog(16).unwrap();
        let addr = l.tcp_addr().unwrap().unwrap();
        assert_ne!(addr.port(), 0);
        assert!(!l.wait_readable(0).unwrap());
        let _c = TcpStream::connect(addr).unwrap();
        assert!(l.wait_readable(5000).unwrap());
        assert!(matches!(l.accept().unwrap(), Accepted::Tcp(_)));
    }
}
