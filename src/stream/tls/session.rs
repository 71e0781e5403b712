//! One TLS session as a [`Stream`]: the reader and writer halves over a
//! rustls state machine, and the handshake that starts it.
//!
//! The two halves share the session behind one lock, held only to move
//! bytes in and out of it, never while waiting on the socket: a reader
//! blocked for data does not stop a writer, as in rpyc where one thread
//! waits for a reply while another sends. Ciphertext moves through the
//! plain socket halves underneath, so their behaviour (one `recv` per read
//! under `SO_RCVTIMEO`, the quick-ACK rule) is kept.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, MutexGuard};

use super::{PeerCertificate, TlsError};
use crate::stream::{ReadHalf, Stream, WriteHalf};

/// The most plaintext handed to rustls per flush: bounds the ciphertext
/// held in memory for one large write.
const WRITE_CHUNK: usize = 64 * 1024;

/// What both halves share.
struct Session {
    /// The rustls state machine. Held only to move bytes through it.
    tls: Mutex<rustls::Connection>,
    /// The socket's sending half; taken while `tls` is still held so
    /// ciphertext leaves in the order rustls made it.
    send: Mutex<Box<dyn WriteHalf>>,
    /// "client" or "server": who the peer is, for messages.
    peer: &'static str,
}

impl Session {
    /// Sends whatever rustls has queued (handshake messages, records,
    /// alerts), releasing the session lock before the socket write.
    fn flush(&self, mut tls: MutexGuard<'_, rustls::Connection>) -> io::Result<()> {
        let mut out = Vec::new();
        while tls.wants_write() {
            tls.write_tls(&mut out)?;
        }
        if out.is_empty() {
            return Ok(());
        }
        let mut send = self.send.lock();
        drop(tls);
        send.write_all(&out)
    }
}

/// Why ciphertext could not be taken in.
enum FeedError {
    Tls(rustls::Error),
    Io(io::Error),
}

/// The receiving half: socket ciphertext in, plaintext out.
struct TlsReader {
    inner: Box<dyn ReadHalf>,
    session: Arc<Session>,
    /// Ciphertext read from the socket and not yet taken by rustls.
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// The socket reached end of stream.
    eof: bool,
}

impl TlsReader {
    /// Hands buffered ciphertext to rustls and processes it. A rustls
    /// error is returned as is (for the handshake to classify).
    fn feed(&mut self, tls: &mut rustls::Connection) -> Result<(), FeedError> {
        while self.start < self.end {
            let mut rd = &self.buf[self.start..self.end];
            match tls.read_tls(&mut rd) {
                Ok(0) => break,
                Ok(n) => self.start += n,
                Err(e) => {
                    // Its plaintext buffer is full: the reader drains it
                    // before more is fed. Anything else is a real failure.
                    let state = tls.process_new_packets().map_err(FeedError::Tls)?;
                    if state.plaintext_bytes_to_read() == 0 {
                        return Err(FeedError::Io(e));
                    }
                    break;
                }
            }
            tls.process_new_packets().map_err(FeedError::Tls)?;
        }
        Ok(())
    }

    /// One socket read (bounded by `timeout`) fed to rustls; Ok(false) at
    /// end of stream.
    fn pump(&mut self, timeout: Option<Duration>) -> Result<bool, TlsError> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.eof {
                return Ok(false);
            }
            let n = match self.inner.read_timeout(&mut self.buf, timeout) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::TimedOut => return Err(TlsError::Timeout),
                Err(e) => return Err(TlsError::Io(e)),
            };
            if n == 0 {
                self.eof = true;
                let mut tls = self.session.tls.lock();
                let _ = tls.read_tls(&mut &[][..]);
                return Ok(false);
            }
            self.end = n;
        }
        let session = self.session.clone();
        let mut tls = session.tls.lock();
        match self.feed(&mut tls) {
            Ok(()) => {}
            Err(FeedError::Tls(e)) => {
                let err = TlsError::classify(&e, self.session.peer);
                // rustls queued an alert telling the peer why: send it.
                let _ = session.flush(tls);
                return Err(err);
            }
            Err(FeedError::Io(e)) => return Err(TlsError::Io(e)),
        }
        session.flush(tls)?;
        Ok(true)
    }
}

impl ReadHalf for TlsReader {
    fn read_timeout(&mut self, out: &mut [u8], timeout: Option<Duration>) -> io::Result<usize> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            {
                let mut tls = self.session.tls.lock();
                match tls.reader().read(out) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    // The peer closed without close_notify: Python's ssl
                    // often does. No data is lost here (RPyC frames carry
                    // their own lengths), so it is an ordinary end.
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                    Err(e) => return Err(e),
                }
            }
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            match self.pump(left) {
                Ok(true) => {}
                Ok(false) => {
                    // End of stream: whatever rustls still holds, then 0.
                    let mut tls = self.session.tls.lock();
                    return match tls.reader().read(out) {
                        Ok(n) => Ok(n),
                        Err(_) => Ok(0),
                    };
                }
                Err(TlsError::Timeout) => {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out waiting for data"))
                }
                Err(TlsError::Io(e)) => return Err(e),
                Err(other) => return Err(other.to_io()),
            }
        }
    }
}

/// The sending half: plaintext in, ciphertext to the socket.
struct TlsWriter {
    session: Arc<Session>,
}

impl WriteHalf for TlsWriter {
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        for chunk in data.chunks(WRITE_CHUNK) {
            let mut tls = self.session.tls.lock();
            tls.writer().write_all(chunk)?;
            self.session.flush(tls)?;
        }
        Ok(())
    }

    /// Each frame in TLS records of its own, sent on its own: a stock rpyc
    /// peer reads a frame, then waits on `select` for the next, which would
    /// not show a frame decrypted in the same record.
    fn write_frames(&mut self, frames: &[&[u8]]) -> io::Result<()> {
        frames.iter().try_for_each(|f| self.write_all(f))
    }

    fn shutdown(&mut self) -> io::Result<()> {
        let mut tls = self.session.tls.lock();
        tls.send_close_notify();
        let _ = self.session.flush(tls);
        self.session.send.lock().shutdown()
    }
}

/// Drives a handshake to its end over `stream`, then wraps it.
pub(super) fn handshake(
    stream: Stream,
    tls: rustls::Connection,
    peer: &'static str,
    timeout: Option<Duration>,
    cancel: &dyn Fn() -> bool,
) -> Result<(Stream, Option<PeerCertificate>), TlsError> {
    let Stream { reader, writer, closer, peer: peer_name, fd } = stream;
    let session = Arc::new(Session { tls: Mutex::new(tls), send: Mutex::new(writer), peer });
    // A TLS record is at most 16 KiB plus its header and tag.
    let mut rd = TlsReader {
        inner: reader,
        session: session.clone(),
        buf: vec![0u8; 18 * 1024].into(),
        start: 0,
        end: 0,
        eof: false,
    };
    let deadline = timeout.map(|t| Instant::now() + t);
    let result = (|| loop {
        let tls = session.tls.lock();
        if !tls.is_handshaking() {
            return session.flush(tls).map_err(TlsError::Io);
        }
        session.flush(tls)?;
        if cancel() {
            return Err(TlsError::Closed);
        }
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left == Some(Duration::ZERO) {
            return Err(TlsError::Timeout);
        }
        let slice = Some(left.map_or(Duration::from_millis(100), |l| l.min(Duration::from_millis(100))));
        match rd.pump(slice) {
            Ok(true) => {}
            Ok(false) => return Err(TlsError::Closed),
            Err(TlsError::Timeout) => {}
            Err(e) => return Err(e),
        }
    })();
    if let Err(e) = result {
        closer();
        return Err(e);
    }
    let cert =
        session.tls.lock().peer_certificates().and_then(|c| c.first()).map(|c| PeerCertificate::from_der(c));
    let stream =
        Stream { reader: Box::new(rd), writer: Box::new(TlsWriter { session }), closer, peer: peer_name, fd };
    Ok((stream, cert))
}
