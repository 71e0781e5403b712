//! Polling briefly for a reply, or a serving loop's next request, before
//! sleeping on it.
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
//! A wait for a reply from a peer on this host (a Unix socket, a pipe, TCP
//! to a loopback or our own address) polls every time, even where replies
//! come later than the budget. That costs the caller at most one budget of
//! CPU per call (50 µs by default), about what a stock rpyc client's own
//! Python spends per call (32–55 µs measured), and it is what a busy stock
//! `ThreadedServer` on the same host needs from its clients: its threads
//! hand the GIL to each other at every system call, and where a light
//! client leaves the CPUs around them idle each hand-off wakes a halted CPU
//! (eight clients that stopped polling once replies came late got 0.80x of
//! what eight stock clients got out of one, with 6.5 blocking waits per
//! call in the server against 1.2; eight that kept polling got 1.37x).
//!
//! A peer elsewhere gains nothing from our CPUs, and a network round trip
//! rarely fits in the budget, so there polling adapts: after [`MISSES`]
//! polls in a row that ended without data the reader sleeps at once for
//! the next [`REST`] replies, then tries again. At worst (every reply later
//! than the budget) that spends three budgets per 67 waits, under 3 µs a
//! wait at the default 50 µs.
//!
//! A serving loop that has just served a request polls the same way for
//! the peer's next one ([`FrameReader::expect_request`](super::FrameReader::expect_request)):
//! a client that calls again at once then finds the server awake, which
//! halves an unpinned round trip again (the raw ping-pong, any CPU: 55 µs
//! with both ends sleeping, 21 µs with one end polling, 10 µs with both).
//! That CPU is the server's, and a client may think for a long time between
//! calls, so this polling always adapts, the same way, with a record of its
//! own: a client's think time must not stop the server's callbacks from
//! polling for their replies. Any other wait (a background serving thread,
//! `serve` called by the user) sleeps at once as before, and so does a
//! stream whose reads cannot poll cheaply (TLS, a Python channel).
//!
//! It hands the [`FrameReader`](super::FrameReader) a budget per wait and
//! keeps the records of how polling went.

use std::time::Duration;

/// Polls in a row that found nothing before the reader stops polling for
/// that kind of wait (requests; replies from a peer elsewhere).
pub(super) const MISSES: u8 = 3;
/// Waits of that kind that then sleep at once before the reader polls
/// again.
pub(super) const REST: u16 = 64;

/// What the next read waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expect {
    /// The reply to a request of ours.
    Reply,
    /// The peer's next request, in a serving loop that has just served one.
    Request,
}

/// How polling went for one kind of wait.
#[derive(Debug, Default)]
struct Record {
    /// Polls in a row that ended without data.
    misses: u8,
    /// Waits left that sleep at once.
    rest: u16,
}

/// One reader's polling budget and its records of how polling went: one
/// for requests, and one for replies unless the peer is on this host
/// (those always poll).
#[derive(Debug)]
pub(super) struct Polling {
    budget: Duration,
    /// What the next read waits for, if someone said.
    armed: Option<Expect>,
    /// What the poll in progress waits for.
    current: Expect,
    request: Record,
    /// `None` for a peer on this host.
    reply: Option<Record>,
}

impl Polling {
    /// Polling for at most `budget` a wait (zero: never); `peer_local`:
    /// the peer runs on this host, and waits for its replies always poll.
    pub(super) fn new(budget: Duration, peer_local: bool) -> Self {
        let reply = (!peer_local).then(Record::default);
        Polling { budget, armed: None, current: Expect::Reply, request: Record::default(), reply }
    }

    /// The record of the wait in progress (`None`: it keeps none).
    fn record(&mut self) -> Option<&mut Record> {
        match self.current {
            Expect::Request => Some(&mut self.request),
            Expect::Reply => self.reply.as_mut(),
        }
    }

    /// The next read waits for `what`.
    pub(super) fn arm(&mut self, what: Expect) {
        self.armed = Some(what);
    }

    /// How long the read about to wait at most `timeout` should poll:
    /// `None` when nobody said what it waits for, polling is off or
    /// resting for that kind of wait, or there is no time. Disarms.
    pub(super) fn begin(&mut self, timeout: Option<Duration>) -> Option<Duration> {
        let what = self.armed.take()?;
        if self.budget.is_zero() {
            return None;
        }
        self.current = what;
        if let Some(record) = self.record().filter(|r| r.rest > 0) {
            record.rest -= 1;
            return None;
        }
        Some(timeout.map_or(self.budget, |t| t.min(self.budget))).filter(|b| !b.is_zero())
    }

    /// The poll ended with data (or the stream's end or an error).
    pub(super) fn hit(&mut self) {
        if let Some(record) = self.record() {
            record.misses = 0;
        }
    }

    /// The poll ran out of budget with nothing: one more miss towards
    /// resting, for a wait that keeps a record (the module says which).
    pub(super) fn miss(&mut self) {
        let Some(record) = self.record() else { return };
        record.misses += 1;
        if record.misses >= MISSES {
            record.misses = 0;
            record.rest = REST;
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
        local: bool,
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
        fn peer_on_this_host(&self) -> bool {
            self.local
        }
    }

    /// A [`Silent`] stream's reader, its peer on this host.
    fn silent(cheap: bool) -> (FrameReader, Arc<AtomicUsize>) {
        silent_peer(cheap, true)
    }

    fn silent_peer(cheap: bool, local: bool) -> (FrameReader, Arc<AtomicUsize>) {
        let polls = Arc::new(AtomicUsize::new(0));
        let stream = Silent { cheap, local, polls: polls.clone() };
        (FrameReader::new(Box::new(stream), &ChannelConfig::default()), polls)
    }

    #[test]
    fn a_reader_polls_only_when_told_and_only_on_a_stream_that_polls_cheaply() {
        let ms = Some(Duration::from_millis(1));
        let (mut r, polls) = silent(true);
        assert!(matches!(r.recv(ms), Err(ChannelError::Timeout)));
        assert_eq!(polls.load(Ordering::Relaxed), 0, "not a reply: no polling");
        r.expect_reply();
        assert!(matches!(r.recv(ms), Err(ChannelError::Timeout)));
        let after_reply = polls.load(Ordering::Relaxed);
        assert!(after_reply > 0, "a reply: polled first");
        r.expect_request();
        assert!(matches!(r.recv(ms), Err(ChannelError::Timeout)));
        assert!(polls.load(Ordering::Relaxed) > after_reply, "a serving loop's next request: polled first");

        let (mut r, polls) = silent(false);
        r.expect_reply();
        assert!(matches!(r.recv(ms), Err(ChannelError::Timeout)));
        assert_eq!(polls.load(Ordering::Relaxed), 0, "a stream that cannot poll cheaply sleeps at once");
    }

    #[test]
    fn polling_does_not_stretch_the_timeout_and_requests_back_off() {
        let (mut r, polls) = silent(true);
        let timeout = Duration::from_millis(20);
        let t0 = Instant::now();
        r.expect_reply();
        assert!(matches!(r.recv(Some(timeout)), Err(ChannelError::Timeout)));
        // The 50 µs of polling came out of the 20 ms, not on top of them
        // (the slack is for a busy machine, far below a second timeout).
        assert!(t0.elapsed() < timeout + Duration::from_millis(15), "{:?}", t0.elapsed());
        // Replies from a peer on this host that never come in time: every
        // wait still polls.
        for _ in 0..2 * REST {
            let before = polls.load(Ordering::Relaxed);
            r.expect_reply();
            let _ = r.recv(Some(Duration::from_micros(100)));
            assert!(polls.load(Ordering::Relaxed) > before, "a wait for a reply polls");
        }
        // Three empty polls for a request: the next REST requests sleep at
        // once.
        for _ in 0..MISSES {
            r.expect_request();
            let _ = r.recv(Some(Duration::from_micros(100)));
        }
        let before = polls.load(Ordering::Relaxed);
        for _ in 0..REST {
            r.expect_request();
            let _ = r.recv(Some(Duration::from_micros(100)));
        }
        assert_eq!(polls.load(Ordering::Relaxed), before);
        r.expect_request();
        let _ = r.recv(Some(Duration::from_micros(100)));
        assert!(polls.load(Ordering::Relaxed) > before);
    }

    #[test]
    fn replies_from_a_peer_elsewhere_back_off() {
        let (mut r, polls) = silent_peer(true, false);
        let wait = Some(Duration::from_micros(100));
        for _ in 0..MISSES {
            r.expect_reply();
            let _ = r.recv(wait);
        }
        let before = polls.load(Ordering::Relaxed);
        for _ in 0..REST {
            r.expect_reply();
            let _ = r.recv(wait);
        }
        assert_eq!(polls.load(Ordering::Relaxed), before, "rests after three late replies");
        r.expect_reply();
        let _ = r.recv(wait);
        assert!(polls.load(Ordering::Relaxed) > before, "then tries again");
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
        let mut spin = Polling::new(US50, true);
        assert_eq!(spin.begin(None), None, "not armed");
        spin.arm(Expect::Reply);
        assert_eq!(spin.begin(None), Some(US50));
        assert_eq!(spin.begin(None), None, "disarmed by begin");
        spin.arm(Expect::Request);
        assert_eq!(spin.begin(None), Some(US50));
        let mut off = Polling::new(Duration::ZERO, true);
        off.arm(Expect::Reply);
        assert_eq!(off.begin(None), None);
    }

    #[test]
    fn polls_within_the_timeout() {
        let mut spin = Polling::new(US50, true);
        spin.arm(Expect::Reply);
        assert_eq!(spin.begin(Some(Duration::from_micros(20))), Some(Duration::from_micros(20)));
        spin.arm(Expect::Reply);
        assert_eq!(spin.begin(Some(Duration::from_secs(1))), Some(US50));
        spin.arm(Expect::Reply);
        assert_eq!(spin.begin(Some(Duration::ZERO)), None);
    }

    #[test]
    fn replies_from_a_peer_here_never_rest_nor_stop_requests_resting() {
        let mut spin = Polling::new(US50, true);
        for _ in 0..3 * REST {
            spin.arm(Expect::Reply);
            assert_eq!(spin.begin(None), Some(US50));
            spin.miss();
        }
        for _ in 0..MISSES {
            spin.arm(Expect::Request);
            assert!(spin.begin(None).is_some());
            spin.miss();
        }
        // A reply polled for in between (a server's callback) neither ends
        // the requests' rest nor is stopped by it.
        spin.arm(Expect::Reply);
        assert_eq!(spin.begin(None), Some(US50), "replies still poll");
        spin.hit();
        spin.arm(Expect::Request);
        assert_eq!(spin.begin(None), None, "requests rest");
    }

    #[test]
    fn a_peer_elsewhere_keeps_a_record_for_replies_apart_from_requests() {
        let mut spin = Polling::new(US50, false);
        for _ in 0..MISSES {
            spin.arm(Expect::Reply);
            assert!(spin.begin(None).is_some());
            spin.miss();
        }
        spin.arm(Expect::Reply);
        assert_eq!(spin.begin(None), None, "replies rest");
        spin.arm(Expect::Request);
        assert_eq!(spin.begin(None), Some(US50), "requests still poll");
        // A hit between misses starts the count over.
        let mut spin = Polling::new(US50, false);
        for _ in 0..2 * MISSES {
            spin.arm(Expect::Reply);
            assert!(spin.begin(None).is_some());
            spin.miss();
            spin.arm(Expect::Reply);
            assert!(spin.begin(None).is_some());
            spin.hit();
        }
    }

    #[test]
    fn requests_rest_after_misses_in_a_row_then_try_again() {
        let mut spin = Polling::new(US50, true);
        let poll = |spin: &mut Polling| {
            spin.arm(Expect::Request);
            spin.begin(None).is_some()
        };
        // Two misses and a hit: the count starts over.
        for _ in 0..2 {
            assert!(poll(&mut spin));
            spin.miss();
        }
        assert!(poll(&mut spin));
        spin.hit();
        // A reply's miss in between counts for nothing.
        spin.arm(Expect::Reply);
        assert!(spin.begin(None).is_some());
        spin.miss();
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
