//! Unit tests of the engine's concurrency core over an in-memory stream,
//! with the test playing the peer frame by frame: the reader role passing
//! between threads, replies meant for another thread, requests nested in a
//! wait, interruption, deadlines, and a peer dying mid-frame.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use parking_lot::Mutex;

use super::*;
use crate::brine::{put_int, put_tuple_header, Decoder, Token};
use crate::channel::{begin_frame, Channel, ChannelConfig, FrameReader, FrameWriter};
use crate::protocol::message::{begin_message, MSG_REPLY};
use crate::stream::Stream;

/// What the test's object world saw, and how it answers requests.
#[derive(Default)]
struct Recorder {
    requests: Mutex<Vec<(i64, thread::ThreadId)>>,
    orphans: Mutex<Vec<i64>>,
    /// Requests with this seq interrupt the wait they are served in.
    interrupt_on: Option<i64>,
}

impl Peer for Recorder {
    fn on_request(&self, core: &Core, msg: Incoming) -> std::result::Result<(), Interruption> {
        let seq = msg.seq().unwrap_or(-1);
        self.requests.lock().push((seq, thread::current().id()));
        if self.interrupt_on == Some(seq) {
            return Err(Interruption::new("test", format!("raised while serving {seq}")));
        }
        let mut frame = Vec::new();
        core.begin_answer(&mut frame, MSG_REPLY, &msg);
        put_value(&mut frame, seq * 10);
        let _ = core.send(&mut frame);
        Ok(())
    }

    fn on_orphan(&self, msg: Incoming) {
        self.orphans.lock().push(msg.seq().unwrap_or(-1));
    }
}

/// A boxed int: `(LABEL_VALUE, n)`.
fn put_value(buf: &mut Vec<u8>, n: i64) {
    let _ = put_tuple_header(buf, 2);
    put_int(buf, 1);
    put_int(buf, n);
}

/// The engine on one end of an in-memory pair, the test's raw frames on
/// the other.
fn engine() -> (Arc<Core>, FrameReader, FrameWriter) {
    let (a, b) = Stream::pair();
    let cfg = ChannelConfig::default();
    let core = Arc::new(Core::new(Channel::new(a, &cfg)));
    let Channel { reader, writer, .. } = Channel::new(b, &cfg);
    (core, reader, writer)
}

fn reply(w: &mut FrameWriter, seq: i64, n: i64) {
    let mut f = Vec::new();
    begin_message(&mut f, MSG_REPLY, seq);
    put_value(&mut f, n);
    w.send_prepared(&mut f).unwrap();
}

fn request_from_peer(w: &mut FrameWriter, seq: i64) {
    let mut f = Vec::new();
    begin_request(&mut f, seq, Handler::Ping, false);
    put_value(&mut f, seq);
    w.send_prepared(&mut f).unwrap();
}

/// The int a reply carries.
fn value_of(msg: &Incoming) -> i64 {
    let mut d: Decoder<'_> = msg.body(Default::default());
    assert_eq!(d.next_token().unwrap(), Token::Tuple(2));
    d.next_token().unwrap();
    match d.next_token().unwrap() {
        Token::Int(n) => n,
        t => panic!("not an int: {t:?}"),
    }
}

/// Sends a request from the engine's side (its body does not matter here).
fn send(core: &Core, seq: i64) {
    let mut f = Vec::new();
    core.begin_request(&mut f, seq, Handler::Ping);
    put_value(&mut f, seq);
    core.send_request(seq, &mut f).unwrap();
}

#[test]
fn replies_reach_their_own_waiters_whoever_reads() {
    let (core, mut peer_rx, mut peer_tx) = engine();
    let world = Arc::new(Recorder::default());
    let mut waiters = Vec::new();
    for seq in [1, 2, 3] {
        send(&core, seq);
        let (core, world) = (core.clone(), world.clone());
        waiters.push(thread::spawn(move || {
            value_of(&core.wait(&*world, seq, Some(Duration::from_secs(10))).unwrap())
        }));
    }
    for _ in 0..3 {
        peer_rx.recv(Some(Duration::from_secs(5))).unwrap();
    }
    // Answered in reverse: whichever thread holds the reader role reads
    // replies meant for the others and hands them over.
    for seq in [3, 2, 1] {
        reply(&mut peer_tx, seq, seq * 100);
        thread::sleep(Duration::from_millis(20));
    }
    let got: Vec<i64> = waiters.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(got, [100, 200, 300]);
    assert!(world.orphans.lock().is_empty());
}

#[test]
fn a_request_nested_in_a_wait_is_served_on_the_waiting_thread() {
    let (core, mut peer_rx, mut peer_tx) = engine();
    let world = Recorder::default();
    send(&core, 7);
    let me = thread::current().id();
    let peer = thread::spawn(move || {
        peer_rx.recv(Some(Duration::from_secs(5))).unwrap();
        // A callback before the reply, and its answer before ours.
        request_from_peer(&mut peer_tx, 40);
        let answer = Incoming::parse(peer_rx.recv(Some(Duration::from_secs(5))).unwrap()).unwrap();
        assert_eq!((answer.msg(), answer.seq(), value_of(&answer)), (MSG_REPLY, Some(40), 400));
        reply(&mut peer_tx, 7, 70);
    });
    let got = core.wait(&world, 7, Some(Duration::from_secs(10))).unwrap();
    assert_eq!(value_of(&got), 70);
    assert_eq!(*world.requests.lock(), [(40, me)]);
    peer.join().unwrap();
}

#[test]
fn an_interruption_ends_the_wait_with_its_cause_and_the_reply_is_an_orphan() {
    let (core, mut peer_rx, mut peer_tx) = engine();
    let world = Recorder { interrupt_on: Some(5), ..Recorder::default() };
    send(&core, 1);
    peer_rx.recv(Some(Duration::from_secs(5))).unwrap();
    request_from_peer(&mut peer_tx, 5);
    match core.wait(&world, 1, Some(Duration::from_secs(10))) {
        Err(Error::Interrupted(why)) => {
            assert_eq!(why.cause::<String>().map(String::as_str), Some("raised while serving 5"));
        }
        other => panic!("expected an interruption, got {:?}", other.map(|m| m.seq())),
    }
    // The connection lives on; the reply that comes later is an orphan.
    assert!(!core.is_closed());
    reply(&mut peer_tx, 1, 10);
    assert!(core.serve(&world, Some(Duration::from_secs(5))).unwrap());
    assert_eq!(*world.orphans.lock(), [1]);
}

#[test]
fn a_deadline_ends_the_wait_and_a_late_reply_is_an_orphan() {
    let (core, mut peer_rx, mut peer_tx) = engine();
    let world = Recorder::default();
    send(&core, 3);
    peer_rx.recv(Some(Duration::from_secs(5))).unwrap();
    assert!(matches!(core.wait(&world, 3, Some(Duration::from_millis(50))), Err(Error::Timeout)));
    reply(&mut peer_tx, 3, 30);
    assert!(core.serve(&world, Some(Duration::from_secs(5))).unwrap());
    assert_eq!(*world.orphans.lock(), [3]);
    // A reply with a seq nobody could have sent is an orphan too.
    let mut f = Vec::new();
    begin_frame(&mut f);
    f.extend_from_slice(b"\x02\x11\x16\x1412345678901234567890\x11\x51\x00");
    peer_tx.send_prepared(&mut f).unwrap();
    assert!(core.serve(&world, Some(Duration::from_secs(5))).unwrap());
    assert_eq!(world.orphans.lock().len(), 2);
}

#[test]
fn a_peer_dying_mid_frame_fails_every_waiter_at_once() {
    let (a, b) = Stream::pair();
    let cfg = ChannelConfig::default();
    let core = Arc::new(Core::new(Channel::new(a, &cfg)));
    let mut peer = b;
    let world = Arc::new(Recorder::default());
    let served = Arc::new(AtomicUsize::new(0));
    let mut waiters = Vec::new();
    for seq in [1, 2] {
        send(&core, seq);
        let (core, world, served) = (core.clone(), world.clone(), served.clone());
        waiters.push(thread::spawn(move || {
            let r = core.wait(&*world, seq, Some(Duration::from_secs(10)));
            served.fetch_add(1, Ordering::SeqCst);
            r
        }));
    }
    // Half a frame (the header promises 100 bytes), then the peer is gone.
    peer.writer.write_all(b"\x00\x00\x00\x64\x00\x01\x11").unwrap();
    thread::sleep(Duration::from_millis(50));
    (peer.closer)();
    for t in waiters {
        match t.join().unwrap() {
            Err(Error::Closed { reason }) => assert!(reason.contains("failed"), "{reason}"),
            other => panic!("expected Closed, got {:?}", other.map(|m| m.seq())),
        }
    }
    assert_eq!(served.load(Ordering::SeqCst), 2);
    assert!(core.is_closed());
}

/// The race behind a stalled `AsyncResult.wait()`: the waiter checks its
/// result (not ready), then a serving thread delivers it and goes back to
/// reading; a plain `serve` would now wait for the next event, which never
/// comes. `serve_since` with the generation read before the check returns
/// at once instead.
#[test]
fn serve_since_does_not_wait_for_an_event_that_already_came() {
    let (core, mut peer_rx, mut peer_tx) = engine();
    let world = Arc::new(Recorder::default());
    let delivered = Arc::new(AtomicUsize::new(0));
    let mut f = Vec::new();
    core.begin_request(&mut f, 7, Handler::Ping);
    put_value(&mut f, 7);
    let d = delivered.clone();
    core.send_request_with_callback(
        7,
        &mut f,
        Box::new(move |_| {
            d.store(1, Ordering::SeqCst);
            Ok(())
        }),
    )
    .unwrap();
    peer_rx.recv(Some(Duration::from_secs(5))).unwrap();

    // The waiter's check, before the reply arrives: not ready.
    let since = core.generation();
    assert_eq!(delivered.load(Ordering::SeqCst), 0);

    // A serving thread reads and delivers the reply, then reads on (it
    // holds the reader until the peer sends something else).
    let server = {
        let (core, world) = (core.clone(), world.clone());
        thread::spawn(move || while core.serve(&*world, Some(Duration::from_secs(10))).is_ok() {})
    };
    reply(&mut peer_tx, 7, 70);
    while delivered.load(Ordering::SeqCst) == 0 {
        thread::sleep(Duration::from_millis(1));
    }
    thread::sleep(Duration::from_millis(50)); // the server is back to reading

    // The waiter now calls serve with its stale generation: no 10 s wait.
    let started = std::time::Instant::now();
    assert!(!core.serve_since(&*world, Some(Duration::from_secs(10)), Some(since)).unwrap());
    assert!(started.elapsed() < Duration::from_secs(5), "waited {:?}", started.elapsed());
    // With the current generation it waits as before (here: the deadline).
    let now = core.generation();
    assert!(!core.serve_since(&*world, Some(Duration::from_millis(100)), Some(now)).unwrap());

    core.shutdown("test over");
    server.join().unwrap();
}

/// The DELs the peer sends right behind the reply we waited for are
/// served by `answer_buffered_dels` (the caller runs it once the reply is
/// decoded), not by the wait; anything else buffered behind them waits for
/// the next read, as before.
#[test]
fn dels_right_behind_a_reply_are_served_when_the_caller_asks() {
    let (core, mut peer_rx, mut peer_tx) = engine();
    let world = Recorder::default();
    send(&core, 7);
    peer_rx.recv(Some(Duration::from_secs(5))).unwrap();
    let frame = |seq: i64, handler: Option<Handler>| {
        let mut f = Vec::new();
        match handler {
            Some(h) => begin_request(&mut f, seq, h, false),
            None => begin_message(&mut f, MSG_REPLY, seq),
        }
        put_value(&mut f, seq);
        f
    };
    // One write: our reply, two DELs, a PING, one more DEL.
    let mut all = vec![
        frame(7, None),
        frame(50, Some(Handler::Del)),
        frame(51, Some(Handler::Del)),
        frame(52, Some(Handler::Ping)),
        frame(53, Some(Handler::Del)),
    ];
    peer_tx.send_prepared_all(&mut all).unwrap();
    let got = core.wait(&world, 7, Some(Duration::from_secs(10))).unwrap();
    assert_eq!(value_of(&got), 7);
    let served = |w: &Recorder| w.requests.lock().iter().map(|(s, _)| *s).collect::<Vec<_>>();
    // The wait leaves them alone: the reply may name what they release.
    assert!(served(&world).is_empty());
    core.answer_buffered_dels(&world).unwrap();
    assert_eq!(served(&world), [50, 51]);
    // The rest is read as it always was.
    for _ in 0..2 {
        assert!(core.serve(&world, Some(Duration::from_secs(5))).unwrap());
    }
    assert_eq!(served(&world), [50, 51, 52, 53]);
}
