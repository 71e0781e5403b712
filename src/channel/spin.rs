//! Polling briefly for a reply before sleeping on it.
//!
//! A thread that sleeps while it waits for a reply has to be woken when the
//! reply comes, and where the other CPUs are idle that wake-up costs more
//! than the round trip itself: the CPU the thread slept on has halted (on a
//! VM, its vCPU has left the host's CPU) and must be brought back. Measured
//! on a 2-vCPU VM, a held rpyc call between two processes on any CPU took
//! 56 µs sleeping and 23 µs polling (on one shared CPU, 0.4 µs more
//! polling than sleeping). So a reader told that a reply is
//! expected ([`FrameReader::expect_reply`](super::FrameReader::expect_reply))
//! first reads without waiting, again and again for up to
//! [`ChannelConfig::reply_spin`](super::ChannelConfig::reply_spin), and
//! gives the CPU to any other runnable thread between reads: on a shared
//! CPU that is the peer, whose reply it waits for. Only then does it sleep.
//!
//! Polling where replies take longer than the budget only burns it, so the
//! reader adapts: after [`MISSES`] polls in a row that ended without data
//! it sleeps at once for the next [`REST`] waits, then tries again. At
//! worst (every reply slower than the budget) that spends three budgets per
//! 67 waits, under 3 µs a wait at the default 50 µs. Only waits for a reply
//! poll: a connection waiting for the peer's next request (a server, a
//! background serving thread) sleeps at once as before, and so does a
//! stream whose reads cannot poll cheaply (TLS, a Python channel).
//!
//! It hands the [`FrameReader`](super::FrameReader) a budget per wait and
//! keeps the record of how polling went.

use std::time::Duration;

/// Polls in a row that found nothing before the reader stops polling.
pub(super) const MISSES: u8 = 3;
/// Waits that then sleep at once before the reader polls again.
pub(super) const REST: u16 = 64;

/// One reader's polling budget and its record of how polling went.
#[derive(Debug)]
pub(super) struct ReplySpin {
    budget: Duration,
    /// The next read is for a reply.
    armed: bool,
    /// Polls in a row that ended without data.
    misses: u8,
    /// Waits left that sleep at once.
    rest: u16,
}

impl ReplySpin {
    /// Polling for at most `budget` a wait (zero: never).
    pub(super) fn new(budget: Duration) -> Self {
        ReplySpin { budget, armed: false, misses: 0, rest: 0 }
    }

    /// The next read waits for a reply.
    pub(super) fn arm(&mut self) {
        self.armed = true;
    }

    /// How long the read about to wait at most `timeout` should poll:
    /// `None` when it is not for a reply, polling is off or resting, or
    /// there is no time. Disarms.
    pub(super) fn begin(&mut self, timeout: Option<Duration>) -> Option<Duration> {
        if !std::mem::take(&mut self.armed) || self.budget.is_zero() {
            return None;
        }
        if self.rest > 0 {
            self.rest -= 1;
            return None;
        }
        Some(timeout.map_or(self.budget, |t| t.min(self.budget))).filter(|b| !b.is_zero())
    }

    /// The poll ended with data (or the stream's end or an error).
    pub(super) fn hit(&mut self) {
        self.misses = 0;
    }

    /// The poll ran out of budget with nothing.
    pub(super) fn miss(&mut self) {
        self.misses += 1;
        if self.misses >= MISSES {
            self.misses = 0;
            self.rest = REST;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::os::unix::net::UnixStream;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Instant;

    use super::super::{ChannelConfig, ChannelError, FrameReader, FrameWriter};
    use super::*;
    use crate::stream::{ReadHalf, Stream};

    const US50: Duration = Duration::from_micros(50);

    /// A stream with nothing to read that counts its zero-timeout reads
    /// (polls) and waits out any other read's timeout.
    struct Silent {
        cheap: bool,
        polls: Arc<AtomicUsize>,
    }

    impl ReadHalf for Silent {
        fn read_timeout(&mut self, _buf: &mut [u8], timeout: Option<Duration>) -> io::Result<usize> {
            match timeout {
                Some(Duration::ZERO) => {
                    self.polls.fetch_add(1, Ordering::Relaxed);
                }
                Some(t) => std::thread::sleep(t),
                None => panic!("a test read without a timeout"),
            }
            Err(io::Error::new(io::ErrorKind::TimedOut, "nothing"))
        }
        fn polls_cheaply(&self) -> bool {
            self.cheap
        }
    }

    fn silent(cheap: bool) -> (FrameReader, Arc<AtomicUsize>) {
        let polls = Arc::new(AtomicUsize::new(0));
        let stream = Silent { cheap, polls: polls.clone() };
        (FrameReader::new(Box::new(stream), &ChannelConfig::default()), polls)
    }

    #[test]
    fn a_reader_polls_only_for_a_reply_and_only_on_a_stream_that_polls_cheaply() {
        let ms = Some(Duration::from_millis(1));
        let (mut r, polls) = silent(true);
        assert!(matches!(r.recv(ms), Err(ChannelError::Timeout)));
        assert_eq!(polls.load(Ordering::Relaxed), 0, "not a reply: no polling");
        r.expect_reply();
        assert!(matches!(r.recv(ms), Err(ChannelError::Timeout)));
        assert!(polls.load(Ordering::Relaxed) > 0, "a reply: polled first");

        let (mut r, polls) = silent(false);
        r.expect_reply();
        assert!(matches!(r.recv(ms), Err(ChannelError::Timeout)));
        assert_eq!(polls.load(Ordering::Relaxed), 0, "a stream that cannot poll cheaply sleeps at once");
    }

    #[test]
    fn polling_does_not_stretch_the_timeout_and_backs_off() {
        let (mut r, polls) = silent(true);
        let timeout = Duration::from_millis(20);
        let t0 = Instant::now();
        r.expect_reply();
        assert!(matches!(r.recv(Some(timeout)), Err(ChannelError::Timeout)));
        // The 50 µs of polling came out of the 20 ms, not on top of them
        // (the slack is for a busy machine, far below a second timeout).
        assert!(t0.elapsed() < timeout + Duration::from_millis(15), "{:?}", t0.elapsed());
        // Two more empty polls make three: the next REST replies sleep at
        // once.
        for _ in 1..MISSES {
            r.expect_reply();
            let _ = r.recv(Some(Duration::from_micros(100)));
        }
        let before = polls.load(Ordering::Relaxed);
        for _ in 0..REST {
            r.expect_reply();
            let _ = r.recv(Some(Duration::from_micros(100)));
        }
        assert_eq!(polls.load(Ordering::Relaxed), before);
        r.expect_reply();
        let _ = r.recv(Some(Duration::from_micros(100)));
        assert!(polls.load(Ordering::Relaxed) > before);
    }

    #[test]
    fn a_reply_arriving_while_polling_is_read_whole_and_errors_still_reach_the_caller() {
        let (a, b) = UnixStream::pair().unwrap();
        let (a, b) = (Stream::from_unix(a).unwrap(), Stream::from_unix(b).unwrap());
        let config = ChannelConfig { reply_spin: Duration::from_millis(200), ..ChannelConfig::default() };
        let mut r = FrameReader::new(a.reader, &config);
        let mut w = FrameWriter::new(b.writer, &config);
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(2));
            w.send(b"the reply").unwrap();
            w
        });
        r.expect_reply();
        assert_eq!(r.recv(Some(Duration::from_secs(5))).unwrap(), b"the reply");
        let w = sender.join().unwrap();
        // The peer goes away while we poll: the end, not a timeout.
        let closer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(2));
            drop(w);
            (b.closer)();
        });
        r.expect_reply();
        assert!(matches!(r.recv(Some(Duration::from_secs(5))), Err(ChannelError::Closed)));
        closer.join().unwrap();
    }

    #[test]
    fn polls_only_when_armed_and_on() {
        let mut spin = ReplySpin::new(US50);
        assert_eq!(spin.begin(None), None, "not armed");
        spin.arm();
        assert_eq!(spin.begin(None), Some(US50));
        assert_eq!(spin.begin(None), None, "disarmed by begin");
        let mut off = ReplySpin::new(Duration::ZERO);
        off.arm();
        assert_eq!(off.begin(None), None);
    }

    #[test]
    fn polls_within_the_timeout() {
        let mut spin = ReplySpin::new(US50);
        spin.arm();
        assert_eq!(spin.begin(Some(Duration::from_micros(20))), Some(Duration::from_micros(20)));
        spin.arm();
        assert_eq!(spin.begin(Some(Duration::from_secs(1))), Some(US50));
        spin.arm();
        assert_eq!(spin.begin(Some(Duration::ZERO)), None);
    }

    #[test]
    fn rests_after_misses_in_a_row_then_tries_again() {
        let mut spin = ReplySpin::new(US50);
        let poll = |spin: &mut ReplySpin| {
            spin.arm();
            spin.begin(None).is_some()
        };
        // Two misses and a hit: the count starts over.
        for _ in 0..2 {
            assert!(poll(&mut spin));
            spin.miss();
        }
        assert!(poll(&mut spin));
        spin.hit();
        // Three misses in a row: REST waits without polling.
        for _ in 0..MISSES {
            assert!(poll(&mut spin));
            spin.miss();
        }
        for _ in 0..REST {
            assert!(!poll(&mut spin));
        }
        assert!(poll(&mut spin), "polls again after resting");
    }
}
