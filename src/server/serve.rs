//! Running a bound server: the accept loop, and the shutdown after it.
//!
//! [`Server::serve`] accepts clients, refuses those past the limits, and
//! hands each new connection to a thread or to the watcher (`watcher.rs`).
//! When it stops, it drives `Shared`'s shutdown and joins what it can.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use super::{join_within, watcher, Mode, Server, ServerAddr};
use crate::listener::{Accepted, Listener};
use crate::registry::Registrar;
use crate::stream::Stream;

impl Server {
    /// Serves until shut down (or, in one-shot mode, until the first
    /// connection ends), then shuts down as the module docs describe.
    pub fn serve(mut self) -> io::Result<()> {
        log::info!("rpyc-rs server listening on {} ({:?})", self.addr, self.mode);
        let watcher = watcher::Watcher::start(&self.shared, self.mode)?;
        let registrar = self.start_registrar();
        let result = match self.listener.take() {
            Some(l) => {
                let r = self.accept_loop(&l, &watcher);
                // Dropped before the grace period: new clients are refused
                // by the kernel rather than queued.
                drop(l);
                r
            }
            None => Ok(()),
        };
        drop(registrar); // unregisters
        let sh = &self.shared;
        sh.begin_shutdown();
        let clean = sh.finish_shutdown(sh.limits.grace);
        // Threads still inside a handler after the grace period are left
        // to finish on their own (their connection is closed); the rest
        // are joined.
        let wait = if clean { Duration::from_secs(1) } else { Duration::from_millis(100) };
        watcher.stop(wait);
        let threads = std::mem::take(&mut *sh.threads.lock());
        join_within(threads, wait);
        log::info!("rpyc-rs server on {} stopped", self.addr);
        result
    }

    /// Starts re-registering with the registry, when asked to.
    fn start_registrar(&self) -> Option<Registrar> {
        let (client, aliases) = self.register.clone()?;
        let ServerAddr::Tcp(addr) = &self.addr else {
            log::warn!("only TCP servers can register with a registry");
            return None;
        };
        let interface = Some(addr.ip()).filter(|ip| !ip.is_unspecified());
        Registrar::start_default(client, aliases, addr.port(), interface)
            .map_err(|e| log::warn!("cannot start registering: {e}"))
            .ok()
    }

    fn accept_loop(&self, listener: &Listener, watcher: &watcher::Watcher) -> io::Result<()> {
        let sh = &self.shared;
        let mut fds = [
            libc::pollfd { fd: listener.fd(), events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: sh.wake.rx.as_raw_fd(), events: libc::POLLIN, revents: 0 },
        ];
        // A descriptor held in reserve: when the process runs out, it is
        // closed so that the waiting client can be accepted and refused
        // instead of left in the backlog.
        let mut spare = std::fs::File::open("/dev/null").ok();
        let mut served_one = false;
        loop {
            if sh.stopping() {
                return Ok(());
            }
            if served_one {
                // One-shot: wait for the connection to end.
                let mut conns = sh.conns.lock();
                if conns.is_empty() {
                    return Ok(());
                }
                sh.count_changed.wait_for(&mut conns, Duration::from_millis(200));
                continue;
            }
            fds[0].revents = 0;
            fds[1].revents = 0;
            // SAFETY: two valid pollfds on the stack.
            let rc = unsafe { libc::poll(fds.as_mut_ptr(), 2, 1000) };
            if rc < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if fds[1].revents != 0 {
                sh.wake.drain();
            }
            if fds[0].revents == 0 {
                continue;
            }
            let stream = match listener.accept().and_then(|a| match a {
                Accepted::Tcp(s) => Stream::from_tcp(s),
                Accepted::Unix(s) => Stream::from_unix(s),
            }) {
                Ok(s) => s,
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                    log::warn!("out of file descriptors: refusing a client");
                    drop(spare.take());
                    listener.refuse_one();
                    spare = std::fs::File::open("/dev/null").ok();
                    continue;
                }
                Err(e) => {
                    // A client that gave up before we accepted, or a
                    // transient resource shortage: log and keep serving.
                    log::warn!("accept failed: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            };
            if sh.conns.lock().len() >= sh.limits.max_connections {
                log::warn!(
                    "{} connections open (the maximum): refusing {}",
                    sh.limits.max_connections,
                    stream.peer
                );
                drop(stream);
                continue;
            }
            if let (Some(fd), Some(t)) = (stream.fd, sh.limits.write_timeout) {
                set_send_timeout(fd, t);
            }
            let peer = stream.peer.clone();
            log::debug!("connection from {peer}");
            let (stream, cert) = match &sh.tls {
                None => (stream, None),
                Some(tls) if self.mode != Mode::OneShot => {
                    let linger = match self.mode {
                        Mode::Pool { .. } => Duration::ZERO,
                        _ => sh.limits.linger,
                    };
                    sh.spawn_tls(tls.clone(), stream, linger);
                    continue;
                }
                Some(tls) => match tls.accept(stream, sh.config.connect_timeout, &|| sh.stopping()) {
                    Ok(x) => x,
                    Err(e) => {
                        log::info!("TLS handshake with {peer} failed: {e}");
                        continue;
                    }
                },
            };
            let conn = sh.connection(stream, cert);
            let id = sh.register(conn.clone());
            match self.mode {
                Mode::OneShot => {
                    served_one = true;
                    sh.spawn_for(id, conn, None);
                }
                // A new connection may already have a request waiting:
                // serve it now rather than after a trip through the watcher.
                _ => watcher.dispatch(id),
            }
        }
    }
}

/// Sets `SO_SNDTIMEO`: a send that can write nothing for `t` fails, which
/// ends the connection (see
/// [`ServerBuilder::write_timeout`](super::ServerBuilder::write_timeout)).
fn set_send_timeout(fd: RawFd, t: Duration) {
    let secs = t.as_secs().min(1 << 30) as libc::time_t;
    let usec = t.subsec_micros() as libc::suseconds_t;
    let tv = libc::timeval { tv_sec: secs, tv_usec: if secs == 0 && usec == 0 { 1 } else { usec } };
    // SAFETY: a socket descriptor we own and a timeval of the option's size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            &tv as *const libc::timeval as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        log::debug!("SO_SNDTIMEO failed: {}", io::Error::last_os_error());
    }
}
