//! An in-memory duplex stream, for tests and examples: what one end writes
//! the other reads, with the same timeout and close semantics as a socket.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::socket::timed_out;
use super::{ReadHalf, WriteHalf};

/// One direction of an in-memory stream.
#[derive(Default)]
pub(super) struct Pipe {
    state: Mutex<PipeState>,
    ready: Condvar,
}

#[derive(Default)]
struct PipeState {
    data: VecDeque<u8>,
    closed: bool,
}

impl Pipe {
    pub(super) fn close(&self) {
        self.state.lock().closed = true;
        self.ready.notify_all();
    }
}

pub(super) struct MemReader(pub(super) Arc<Pipe>);

impl ReadHalf for MemReader {
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Option<Duration>) -> io::Result<usize> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut st = self.0.state.lock();
        while st.data.is_empty() && !st.closed {
            match deadline {
                None => self.0.ready.wait(&mut st),
                Some(d) => {
                    if self.0.ready.wait_until(&mut st, d).timed_out() && st.data.is_empty() {
                        return if st.closed { Ok(0) } else { Err(timed_out()) };
                    }
                }
            }
        }
        let n = buf.len().min(st.data.len());
        for (slot, byte) in buf.iter_mut().zip(st.data.drain(..n)) {
            *slot = byte;
        }
        Ok(n)
    }
}

impl Drop for MemReader {
    fn drop(&mut self) {
        self.0.close();
    }
}

pub(super) struct MemWriter {
    pub(super) out: Arc<Pipe>,
    pub(super) back: Arc<Pipe>,
}

impl WriteHalf for MemWriter {
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        let mut st = self.out.state.lock();
        if st.closed {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "peer closed"));
        }
        st.data.extend(data);
        drop(st);
        self.out.ready.notify_all();
        Ok(())
    }
    fn shutdown(&mut self) -> io::Result<()> {
        self.out.close();
        self.back.close();
        Ok(())
    }
}

impl Drop for MemWriter {
    fn drop(&mut self) {
        self.out.close();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::{Stream, APPEND_CHUNK};

    /// The default `read_append` (a stream that reads into initialized
    /// memory) adds what arrived, within `max` and one chunk a call.
    #[test]
    fn default_read_append_is_bounded_per_call() {
        let (mut a, mut b) = Stream::pair();
        a.writer.write_all(&vec![5u8; APPEND_CHUNK + 10]).unwrap();
        let mut v = vec![1u8];
        let t = Some(Duration::from_secs(5));
        assert_eq!(b.reader.read_append(&mut v, 3, t).unwrap(), 3);
        assert_eq!(b.reader.read_append(&mut v, usize::MAX / 2, t).unwrap(), APPEND_CHUNK);
        assert_eq!(b.reader.read_append(&mut v, 100, t).unwrap(), 7);
        assert_eq!(v.len(), 1 + APPEND_CHUNK + 10);
        assert!(v[1..].iter().all(|&x| x == 5));
    }
}
