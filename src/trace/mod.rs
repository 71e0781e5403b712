//! Traces: RPyC traffic read as a conversation.
//!
//! This module turns the frames of one connection, in either message
//! dialect (rpyc 5.x or 6.x), into [`Record`]s a person can read:
//! direction, time, seq, message type, the handler's name, the decoded
//! arguments (references shown as `<S3 builtins.list>`: owner, a
//! per-connection number and the id pack's class name; long values
//! elided), for a reply the request it answers and its latency, for an
//! exception its class and first line. At the end, [`ConnTrace::summary`]
//! sums the connection up: messages by handler, bytes and compression,
//! round trips and the slowest requests, netrefs created, released and
//! still alive.
//!
//! Layers below it do the parsing: [`crate::channel::split_frame`] finds
//! frames in raw bytes ([`FrameSplitter`] keeps a stream's partial frame
//! between reads), [`crate::protocol::message`] reads message headers of
//! both dialects, and the brine decoder reads bodies. [`format`](mod@format) turns
//! records and summaries into text or JSON lines; [`decode`] runs a
//! captured byte stream through all of it. The proxy
//! ([`crate::proxy`]) and the CLI's `decode` hand it live or recorded
//! traffic.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use crate::brine::{DecodeOptions, Value};
use crate::channel::{frame_payload, FrameSpan};
use crate::protocol::message::{split_message, Dialect, Handler, MessageSpan, MSG_EXCEPTION, MSG_REPLY};

pub mod decode;
pub mod format;
mod render;
mod split;

pub use render::{RefSeen, MAX_ITEMS, MAX_TEXT};
pub use split::{FrameSplitter, Piece};

use render::{Aliases, Renderer};

/// One end of a proxied or captured connection: the client is the side
/// that connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The side that connected.
    Client = 0,
    /// The side that was connected to.
    Server = 1,
}

impl Side {
    /// The other end.
    pub fn other(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }

    /// `C` or `S`.
    pub fn letter(self) -> char {
        match self {
            Side::Client => 'C',
            Side::Server => 'S',
        }
    }

    /// `C>S` for what the client sends, `S>C` for the server.
    pub fn arrow(self) -> &'static str {
        match self {
            Side::Client => "C>S",
            Side::Server => "S>C",
        }
    }
}

/// What a trace line is about.
#[derive(Debug, Clone)]
pub enum Event {
    /// A message.
    Message(MessageRecord),
    /// Bytes that are not a frame or not a message.
    Garbage(GarbageRecord),
}

/// One traced message or piece of garbage.
#[derive(Debug, Clone)]
pub struct Record {
    /// The connection's number (counting from 1 per proxy or per decode run).
    pub conn: u64,
    /// Who sent it.
    pub from: Side,
    /// When the proxy read it (`None` in a capture, which has no times).
    pub time: Option<SystemTime>,
    /// What it is.
    pub event: Event,
}

/// A decoded message.
#[derive(Debug, Clone)]
pub struct MessageRecord {
    /// The dialect it was framed in.
    pub dialect: Dialect,
    /// 1 request, 2 reply, 3 exception.
    pub msg: u8,
    /// Its seq.
    pub seq: i64,
    /// For a request its handler; for a reply or exception the handler of
    /// the request it answers, when that request was seen.
    pub handler: Option<Handler>,
    /// The handler number when it is not one rpyc has.
    pub unknown_handler: Option<i64>,
    /// The arguments (a request), the result (a reply) or `Class: first
    /// line` (an exception), elided.
    pub text: String,
    /// For a reply or exception: the request's latency, when both were
    /// timed; `Some(None)` when the request was seen but not timed.
    pub answers: Option<Option<Duration>>,
    /// For an exception: its class and first line.
    pub exception: Option<(String, String)>,
    /// The references the message carries.
    pub refs: Vec<RefSeen>,
    /// Bytes on the wire (the whole frame).
    pub wire_len: usize,
    /// Bytes of the payload once inflated.
    pub payload_len: usize,
    /// The frame was compressed.
    pub compressed: bool,
}

impl MessageRecord {
    /// `request`, `reply` or `exception`.
    pub fn kind(&self) -> &'static str {
        match self.msg {
            MSG_REPLY => "reply",
            MSG_EXCEPTION => "exception",
            _ => "request",
        }
    }

    /// The handler's name, `HANDLER#n` for an unknown number, `?` for an
    /// answer to a request that was not seen.
    pub fn handler_name(&self) -> String {
        match (self.handler, self.unknown_handler) {
            (Some(h), _) => h.name().to_owned(),
            (None, Some(n)) => format!("HANDLER#{n}"),
            (None, None) => "?".to_owned(),
        }
    }
}

/// Bytes that did not parse.
#[derive(Debug, Clone)]
pub struct GarbageRecord {
    /// Offset of the bad bytes in the sender's stream.
    pub offset: u64,
    /// The first bytes of it (at most [`GARBAGE_EXCERPT`]).
    pub excerpt: Vec<u8>,
    /// How many bytes the bad frame or stretch has, as far as known.
    pub len: usize,
    /// Why it is not a message.
    pub reason: String,
}

/// Bytes of garbage shown in a trace.
pub const GARBAGE_EXCERPT: usize = 32;

/// Netref accounting for one object, from its receiver's point of view.
#[derive(Debug, Clone)]
struct Alive {
    count: u64,
    short: String,
}

/// The slowest requests kept for a summary.
pub const SLOWEST: usize = 5;

/// One connection's trace state: the requests awaiting answers, the
/// object numbering, netref accounting and the counters of the summary.
#[derive(Debug)]
pub struct ConnTrace {
    conn: u64,
    started: Instant,
    aliases: Aliases,
    pending: HashMap<(Side, i64), (Handler, Option<Instant>)>,
    max: usize,
    alive: HashMap<(Side, i64, i64), Alive>,
    s: Summary,
}

/// A connection summed up (see [`ConnTrace::summary`]).
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// The connection's number.
    pub conn: u64,
    /// How long it was traced (zero for a capture).
    pub duration: Duration,
    /// Messages sent by the client and by the server.
    pub messages: [u64; 2],
    /// Requests by handler, most frequent first.
    pub by_handler: Vec<(String, u64)>,
    /// Frame bytes on the wire per sender (client, server).
    pub wire_bytes: [u64; 2],
    /// Payload bytes once inflated, per sender.
    pub payload_bytes: [u64; 2],
    /// Compressed frames, with their wire and inflated sizes.
    pub compressed: (u64, u64, u64),
    /// Requests answered (replies and exceptions matched to a request).
    pub round_trips: u64,
    /// Exceptions sent back.
    pub exceptions: u64,
    /// The slowest answered requests: handler, seq, requester, latency.
    pub slowest: Vec<(String, i64, Side, Duration)>,
    /// Objects first sent by reference (a new netref on the other side).
    pub netrefs_created: u64,
    /// Netrefs whose DEL dropped the last reference.
    pub netrefs_released: u64,
    /// Netrefs still alive at the end, as `<S3 builtins.list>`.
    pub netrefs_alive: Vec<String>,
    /// Pieces of garbage met.
    pub garbage: u64,
    /// Bytes not parsed, per sender.
    pub unparsed: [u64; 2],
    /// The dialects the two sides were seen to speak.
    pub dialects: [Option<Dialect>; 2],
    handler_counts: HashMap<String, u64>,
}

impl ConnTrace {
    /// A fresh trace for connection number `conn`; compressed frames may
    /// inflate to at most `max` bytes.
    pub fn new(conn: u64, max: usize) -> ConnTrace {
        ConnTrace {
            conn,
            max,
            started: Instant::now(),
            aliases: Aliases::default(),
            pending: HashMap::new(),
            alive: HashMap::new(),
            s: Summary { conn, ..Summary::default() },
        }
    }

    /// The connection's number.
    pub fn conn(&self) -> u64 {
        self.conn
    }

    /// Traces a complete frame `raw` (found by [`FrameSplitter`]) sent by
    /// `from`; `at` is when it was read, for live traffic.
    pub fn frame(
        &mut self,
        from: Side,
        raw: &[u8],
        span: FrameSpan,
        offset: u64,
        at: Option<Instant>,
    ) -> Record {
        match frame_payload(raw, span, self.max) {
            Ok(payload) => self.payload(from, &payload, raw.len(), span.compressed, offset, at),
            Err(e) => self.garbage(
                from,
                GarbageRecord {
                    offset,
                    excerpt: raw[..raw.len().min(GARBAGE_EXCERPT)].to_vec(),
                    len: raw.len(),
                    reason: format!("frame does not inflate: {e}"),
                },
                at,
            ),
        }
    }

    /// Traces a payload (a frame's content, inflated).
    pub fn payload(
        &mut self,
        from: Side,
        payload: &[u8],
        wire_len: usize,
        compressed: bool,
        offset: u64,
        at: Option<Instant>,
    ) -> Record {
        let time = at.map(|_| SystemTime::now());
        let i = from as usize;
        self.s.wire_bytes[i] += wire_len as u64;
        self.s.payload_bytes[i] += payload.len() as u64;
        if compressed {
            self.s.compressed.0 += 1;
            self.s.compressed.1 += wire_len as u64;
            self.s.compressed.2 += payload.len() as u64;
        }
        let parsed =
            split_message(payload, DecodeOptions::default()).map_err(|e| e.to_string()).and_then(|span| {
                // Bytes after the body are ignored, as by the engine and
                // rpyc's brine.load (the peer acts on the message).
                crate::brine::Decoder::new(&payload[span.body..])
                    .read_value()
                    .map(|body| (span, body))
                    .map_err(|e| e.to_string())
            });
        let (span, body) = match parsed {
            Ok(p) => p,
            Err(why) => {
                let g = GarbageRecord {
                    offset,
                    excerpt: payload[..payload.len().min(GARBAGE_EXCERPT)].to_vec(),
                    len: payload.len(),
                    reason: format!("frame holds no rpyc message: {why}"),
                };
                return self.garbage(from, g, at);
            }
        };
        self.s.messages[i] += 1;
        self.s.dialects[i] = Some(span.dialect);
        let mut rec = self.message(from, &span, &body, at);
        rec.wire_len = wire_len;
        rec.payload_len = payload.len();
        rec.compressed = compressed;
        Record { conn: self.conn, from, time, event: Event::Message(rec) }
    }

    fn message(
        &mut self,
        from: Side,
        span: &MessageSpan,
        body: &Value,
        at: Option<Instant>,
    ) -> MessageRecord {
        let mut r = Renderer { sender: from, aliases: &mut self.aliases, refs: Vec::new() };
        let mut text = String::new();
        let mut handler = None;
        let mut unknown_handler = None;
        let mut answers = None;
        let mut exception = None;
        let mut released = None;
        if span.msg == MSG_REPLY || span.msg == MSG_EXCEPTION {
            if let Some((h, sent)) = self.pending.remove(&(from.other(), span.seq)) {
                handler = Some(h);
                let latency = sent.zip(at).map(|(s, a)| a.saturating_duration_since(s));
                answers = Some(latency);
                self.s.round_trips += 1;
                if let Some(l) = latency {
                    let entry = (h.name().to_owned(), span.seq, from.other(), l);
                    let pos = self.s.slowest.iter().position(|x| x.3 < l).unwrap_or(self.s.slowest.len());
                    if pos < SLOWEST {
                        self.s.slowest.insert(pos, entry);
                        self.s.slowest.truncate(SLOWEST);
                    }
                }
            }
            if span.msg == MSG_REPLY {
                if handler != Some(Handler::Inspect) || !render::inspect_reply(body, &mut text) {
                    r.boxed(body, &mut text);
                }
            } else {
                self.s.exceptions += 1;
                let (class, line) = render::exception(body);
                text = if line.is_empty() { class.clone() } else { format!("{class}: {line}") };
                exception = Some((class, line));
            }
        } else {
            match body.as_tuple() {
                Some([Value::Int(n), args]) => {
                    handler = Handler::from_number(*n);
                    if handler.is_none() {
                        unknown_handler = Some(*n);
                    }
                    if handler == Some(Handler::Inspect) {
                        r.inspect_args(args, &mut text);
                    } else {
                        r.boxed_args(args, &mut text);
                    }
                    if handler == Some(Handler::Del) {
                        released = del_target(&mut r, args);
                    }
                }
                _ => {
                    text.push('?');
                    render::value(body, &mut text);
                }
            }
            let name = handler
                .map_or_else(|| format!("HANDLER#{}", unknown_handler.unwrap_or(0)), |h| h.name().to_owned());
            *self.s.handler_counts.entry(name).or_default() += 1;
            if let Some(h) = handler {
                self.pending.insert((from, span.seq), (h, at));
            }
        }
        let refs = r.refs;
        if let Some((key, count)) = released {
            self.release(key, count);
        }
        for rf in &refs {
            if rf.label == crate::protocol::boxing::LABEL_REMOTE_REF {
                let key = (rf.owner, rf.class_id, rf.instance_id);
                match self.alive.get_mut(&key) {
                    Some(a) => a.count += 1,
                    None => {
                        self.s.netrefs_created += 1;
                        self.alive.insert(key, Alive { count: 1, short: rf.short() });
                    }
                }
            }
        }
        MessageRecord {
            dialect: span.dialect,
            msg: span.msg,
            seq: span.seq,
            handler,
            unknown_handler,
            text,
            answers,
            exception,
            refs,
            wire_len: 0,
            payload_len: 0,
            compressed: false,
        }
    }

    /// A DEL of `count` references: the object's netref is gone when no
    /// reference is left, and its number is retired, since the owner may
    /// reuse the id pack for a new object.
    fn release(&mut self, key: (Side, i64, i64), count: u64) {
        if let Some(a) = self.alive.get_mut(&key) {
            if a.count <= count {
                self.alive.remove(&key);
                self.aliases.retire(key);
                self.s.netrefs_released += 1;
            } else {
                a.count -= count;
            }
        }
    }

    /// Traces garbage sent by `from`.
    pub fn garbage(&mut self, from: Side, g: GarbageRecord, at: Option<Instant>) -> Record {
        self.s.garbage += 1;
        Record { conn: self.conn, from, time: at.map(|_| SystemTime::now()), event: Event::Garbage(g) }
    }

    /// Notes bytes relayed without being parsed.
    pub fn unparsed(&mut self, from: Side, n: u64) {
        self.s.unparsed[from as usize] += n;
    }

    /// The connection summed up so far.
    pub fn summary(&self, live: bool) -> Summary {
        let mut s = self.s.clone();
        s.duration = if live { self.started.elapsed() } else { Duration::ZERO };
        let mut by: Vec<(String, u64)> = s.handler_counts.iter().map(|(k, v)| (k.clone(), *v)).collect();
        by.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        s.by_handler = by;
        let mut alive: Vec<&Alive> = self.alive.values().collect();
        alive.sort_by(|a, b| a.short.cmp(&b.short));
        s.netrefs_alive = alive
            .iter()
            .map(|a| if a.count > 1 { format!("{} x{}", a.short, a.count) } else { a.short.clone() })
            .collect();
        s
    }
}

/// The object and count of a DEL request's arguments, keyed for the
/// netref table.
fn del_target(r: &mut Renderer<'_>, args: &Value) -> Option<((Side, i64, i64), u64)> {
    let (_, inner) = render::as_box(args)?;
    let [obj, count] = inner.as_tuple()? else {
        return None;
    };
    let rf = r.reference(obj)?;
    let count = match render::as_box(count) {
        Some((_, Value::Int(n))) => u64::try_from(*n).ok()?,
        _ => match count {
            Value::Int(n) => u64::try_from(*n).ok()?,
            _ => return None,
        },
    };
    Some(((rf.owner, rf.class_id, rf.instance_id), count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_match_requests_and_netrefs_are_counted() {
        let mut t = ConnTrace::new(1, 1 << 20);
        // GETROOT request from the client (6.x), a REMOTE_REF reply.
        let req = b"\x01\x11\x50\x11\x53\x11\x51\x02";
        let rec = t.payload(Side::Client, req, req.len() + 6, false, 0, None);
        let Event::Message(m) = &rec.event else { panic!("{rec:?}") };
        assert_eq!((m.kind(), m.handler_name().as_str(), m.text.as_str()), ("request", "GETROOT", ""));
        let mut reply = vec![2u8];
        crate::brine::encode_into(
            &Value::Tuple(vec![
                0.into(),
                Value::Tuple(vec![4.into(), Value::Tuple(vec!["mod.Svc".into(), 10.into(), 11.into()])]),
            ]),
            &mut reply,
        )
        .unwrap();
        let rec = t.payload(Side::Server, &reply, reply.len() + 6, false, 0, None);
        let Event::Message(m) = &rec.event else { panic!("{rec:?}") };
        assert_eq!(
            (m.kind(), m.handler_name().as_str(), m.text.as_str()),
            ("reply", "GETROOT", "<S1 mod.Svc>")
        );
        assert_eq!(m.answers, Some(None));
        let s = t.summary(false);
        assert_eq!(
            (s.round_trips, s.netrefs_created, s.netrefs_alive.clone()),
            (1, 1, vec!["<S1 mod.Svc>".into()])
        );
        // DEL(obj, 1) from the client releases it.
        let mut del = vec![1u8];
        crate::brine::encode_into(
            &Value::Tuple(vec![
                1.into(),
                Value::Tuple(vec![
                    15.into(),
                    Value::Tuple(vec![
                        2.into(),
                        Value::Tuple(vec![
                            Value::Tuple(vec![
                                3.into(),
                                Value::Tuple(vec!["mod.Svc".into(), 10.into(), 11.into()]),
                            ]),
                            Value::Tuple(vec![1.into(), 1.into()]),
                        ]),
                    ]),
                ]),
            ]),
            &mut del,
        )
        .unwrap();
        let rec = t.payload(Side::Client, &del, del.len() + 6, false, 0, None);
        let Event::Message(m) = &rec.event else { panic!("{rec:?}") };
        assert_eq!(m.text, "<S1 mod.Svc>, 1");
        let s = t.summary(false);
        assert_eq!((s.netrefs_released, s.netrefs_alive.len()), (1, 0));
        // The owner reuses the id pack for a new object: a new number.
        let rec = t.payload(Side::Server, &reply, reply.len() + 6, false, 0, None);
        let Event::Message(m) = &rec.event else { panic!("{rec:?}") };
        assert_eq!(m.text, "<S2 mod.Svc>");
        // Not a message at all.
        let rec = t.payload(Side::Client, b"\x07junk", 12, false, 0, None);
        assert!(matches!(rec.event, Event::Garbage(_)));
    }
}
