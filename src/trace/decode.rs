//! Captured traffic read back as a trace: a raw byte stream as Wireshark's
//! "Follow TCP stream -> Save as raw" writes it (one direction, or the
//! whole conversation), or as `rpyc-rs proxy --record` writes it.
//!
//! A capture carries no times and, for a whole conversation, no marks of
//! who sent what. When the sender is not given, each message is
//! attributed from RPyC's own numbering: every side numbers its requests
//! 0, 1, 2, ... and a reply carries the seq of the request it answers. A
//! request goes to the side whose next seq it is (the first one is the
//! client's, and when both sides expect the same number, the side that did
//! not send last: a callback answers a call); a reply goes to the side that
//! owes the latest unanswered request with that seq. Captures cut at an
//! arbitrary point or with interleaved frames can fool it; `from` settles
//! a one-direction capture.
//!
//! It hands [`Record`]s and a [`Summary`] to the caller, as the proxy does.

use crate::brine::DecodeOptions;
use crate::channel::frame_payload;
use crate::protocol::message::{split_message, MSG_REQUEST};

use super::{ConnTrace, FrameSplitter, GarbageRecord, Piece, Record, Side, Summary, GARBAGE_EXCERPT};

/// Who sent what in a conversation capture, from the seq numbering.
#[derive(Debug, Default)]
struct Attribution {
    next_seq: [i64; 2],
    pending: Vec<(Side, i64)>,
    last: Option<Side>,
}

impl Attribution {
    fn request(&mut self, seq: i64) -> Side {
        let fits = |s: Side| self.next_seq[s as usize] == seq;
        let side = match (fits(Side::Client), fits(Side::Server)) {
            (true, true) => self.last.map_or(Side::Client, Side::other),
            (true, false) => Side::Client,
            (false, true) => Side::Server,
            // A capture that starts mid-conversation: the client's numbers
            // run ahead of the server's, which only counts callbacks.
            (false, false) if seq >= self.next_seq[0] => Side::Client,
            (false, false) => Side::Server,
        };
        self.next_seq[side as usize] = seq.saturating_add(1);
        self.pending.push((side, seq));
        side
    }

    fn answer(&mut self, seq: i64) -> Side {
        match self.pending.iter().rposition(|p| p.1 == seq) {
            Some(i) => self.pending.remove(i).0.other(),
            // An answer to a request the capture does not hold: servers
            // answer far more often than clients do.
            None => Side::Server,
        }
    }
}

/// One frame or piece of garbage of a capture, parsed as far as needed
/// to put it in order.
enum Unit {
    Message { payload: Vec<u8>, wire: usize, compressed: bool, offset: u64, msg: u8, seq: i64 },
    Other { payload: Vec<u8>, wire: usize, compressed: bool, offset: u64 },
    Garbage(GarbageRecord),
}

impl Unit {
    /// (is a request, seq) for a message.
    fn head(&self) -> Option<(bool, i64)> {
        match self {
            Unit::Message { msg, seq, .. } => Some((*msg == MSG_REQUEST, *seq)),
            _ => None,
        }
    }
}

/// Splits a capture into units; also returns the bytes left unparsed.
fn units(data: &[u8], max: usize) -> (Vec<Unit>, u64) {
    let mut split = FrameSplitter::new(max);
    split.push(data);
    let mut out = Vec::new();
    while let Some(piece) = split.next_piece() {
        out.push(match piece {
            Piece::Frame(raw, span, offset) => match frame_payload(&raw, span, max) {
                Ok(payload) => {
                    let (wire, compressed) = (raw.len(), span.compressed);
                    match split_message(&payload, DecodeOptions::default()) {
                        Ok(m) => Unit::Message { payload, wire, compressed, offset, msg: m.msg, seq: m.seq },
                        Err(_) => Unit::Other { payload, wire, compressed, offset },
                    }
                }
                Err(e) => Unit::Garbage(GarbageRecord {
                    offset,
                    excerpt: raw[..raw.len().min(GARBAGE_EXCERPT)].to_vec(),
                    len: raw.len(),
                    reason: format!("frame does not inflate: {e}"),
                }),
            },
            Piece::Garbage(g) => Unit::Garbage(g),
        });
    }
    if let Some(g) = split.finish() {
        out.push(Unit::Garbage(g));
    }
    (out, split.unparsed())
}

fn trace_unit(trace: &mut ConnTrace, side: Side, unit: Unit) -> Record {
    match unit {
        Unit::Message { payload, wire, compressed, offset, .. }
        | Unit::Other { payload, wire, compressed, offset } => {
            trace.payload(side, &payload, wire, compressed, offset, None)
        }
        Unit::Garbage(g) => trace.garbage(side, g, None),
    }
}

/// Decodes one capture as connection `conn`, handing each record to
/// `emit`, and returns the connection's summary. `from` names the sender
/// of a one-direction capture; `None` attributes messages from their seq
/// numbers (see the module documentation). Frames inflate to at most `max`
/// bytes; bytes after garbage are counted, not parsed; a capture that ends
/// mid-frame ends with a garbage record saying so.
pub fn decode_stream(
    data: &[u8],
    conn: u64,
    from: Option<Side>,
    max: usize,
    emit: &mut dyn FnMut(&Record),
) -> Summary {
    let mut trace = ConnTrace::new(conn, max);
    let mut who = Attribution::default();
    let (units, unparsed) = units(data, max);
    let mut last = from.unwrap_or(Side::Client);
    for unit in units {
        let side = match (from, unit.head()) {
            (Some(side), _) => side,
            (None, Some((true, seq))) => who.request(seq),
            (None, Some((false, seq))) => who.answer(seq),
            (None, None) => last,
        };
        who.last = Some(side);
        last = side;
        let rec = trace_unit(&mut trace, side, unit);
        emit(&rec);
    }
    trace.unparsed(last, unparsed);
    trace.summary(false)
}

/// Decodes the two directions of one connection, captured apart (as
/// `rpyc-rs proxy --record` writes them), as one conversation. Without
/// times, the two are merged in an order RPyC allows: an answer as soon
/// as the request it answers has been shown, otherwise the next request,
/// the client's first.
pub fn decode_pair(
    client: &[u8],
    server: &[u8],
    conn: u64,
    max: usize,
    emit: &mut dyn FnMut(&Record),
) -> Summary {
    let mut trace = ConnTrace::new(conn, max);
    let (c, c_unparsed) = units(client, max);
    let (s, s_unparsed) = units(server, max);
    let mut queues = [c.into_iter().peekable(), s.into_iter().peekable()];
    // Requests shown and not yet answered, per requester.
    let mut open: [Vec<i64>; 2] = [Vec::new(), Vec::new()];
    loop {
        let answerable = |side: Side, q: &mut std::iter::Peekable<std::vec::IntoIter<Unit>>| match q.peek() {
            Some(u) => match u.head() {
                Some((false, seq)) => open[side.other() as usize].contains(&seq),
                _ => false,
            },
            None => false,
        };
        let pick = if answerable(Side::Client, &mut queues[0]) {
            Side::Client
        } else if answerable(Side::Server, &mut queues[1]) {
            Side::Server
        } else {
            let is_request = |q: &mut std::iter::Peekable<std::vec::IntoIter<Unit>>| {
                q.peek().is_some_and(|u| !matches!(u.head(), Some((false, _))))
            };
            if is_request(&mut queues[0]) {
                Side::Client
            } else if is_request(&mut queues[1]) {
                Side::Server
            } else if queues[0].peek().is_some() {
                // Answers to requests the capture does not hold.
                Side::Client
            } else {
                Side::Server
            }
        };
        let Some(unit) = queues[pick as usize].next() else {
            break;
        };
        match unit.head() {
            Some((true, seq)) => open[pick as usize].push(seq),
            Some((false, seq)) => {
                let mine = &mut open[pick.other() as usize];
                if let Some(i) = mine.iter().rposition(|&x| x == seq) {
                    mine.remove(i);
                }
            }
            None => {}
        }
        let rec = trace_unit(&mut trace, pick, unit);
        emit(&rec);
    }
    trace.unparsed(Side::Client, c_unparsed);
    trace.unparsed(Side::Server, s_unparsed);
    trace.summary(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::Event;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut f = (payload.len() as u32).to_be_bytes().to_vec();
        f.push(0);
        f.extend_from_slice(payload);
        f.push(b'\n');
        f
    }

    #[test]
    fn a_conversation_is_attributed_from_seqs() {
        // client GETROOT #0, server reply #0, client PING #1, server
        // callback request #0 (PING), client reply #0, server reply #1.
        let mut data = Vec::new();
        data.extend(frame(b"\x01\x11\x50\x11\x53\x11\x51\x02"));
        data.extend(frame(b"\x02\x11\x50\x11\x51\x00"));
        data.extend(frame(b"\x01\x11\x51\x11\x51\x11\x51\x10\x0ax"));
        data.extend(frame(b"\x01\x11\x50\x11\x51\x11\x51\x10\x0ay"));
        data.extend(frame(b"\x02\x11\x50\x11\x51\x0ay"));
        data.extend(frame(b"\x02\x11\x51\x11\x51\x0ax"));
        let mut got = Vec::new();
        let s = decode_stream(&data, 1, None, 1 << 20, &mut |r| {
            if let Event::Message(m) = &r.event {
                got.push(format!("{} {} {} {}", r.from.arrow(), m.kind(), m.seq, m.handler_name()));
            }
        });
        assert_eq!(
            got,
            [
                "C>S request 0 GETROOT",
                "S>C reply 0 GETROOT",
                "C>S request 1 PING",
                "S>C request 0 PING",
                "C>S reply 0 PING",
                "S>C reply 1 PING"
            ]
        );
        assert_eq!(s.round_trips, 3);

        // The same conversation captured per direction, merged back.
        let frames: Vec<Vec<u8>> = {
            let mut v = Vec::new();
            let mut rest = &data[..];
            while !rest.is_empty() {
                let n = 5 + u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize + 1;
                v.push(rest[..n].to_vec());
                rest = &rest[n..];
            }
            v
        };
        let client: Vec<u8> = [0, 2, 4].iter().flat_map(|&i| frames[i].clone()).collect();
        let server: Vec<u8> = [1, 3, 5].iter().flat_map(|&i| frames[i].clone()).collect();
        let mut merged = Vec::new();
        decode_pair(&client, &server, 1, 1 << 20, &mut |r| {
            if let Event::Message(m) = &r.event {
                merged.push(format!("{} {} {} {}", r.from.arrow(), m.kind(), m.seq, m.handler_name()));
            }
        });
        assert_eq!(merged, got);
    }

    #[test]
    fn garbage_and_truncation_are_reported_not_fatal() {
        let mut data = frame(b"\x01\x11\x50\x11\x53\x11\x51\x02");
        data.extend(frame(b"\xff\xfe"));
        data.extend_from_slice(b"\x00\x00\x00\x10\x00abc");
        let mut kinds = Vec::new();
        let s = decode_stream(&data, 1, Some(Side::Client), 1 << 20, &mut |r| {
            kinds.push(match &r.event {
                Event::Message(m) => m.kind().to_owned(),
                Event::Garbage(g) => format!("garbage: {}", g.reason),
            })
        });
        assert_eq!(kinds.len(), 3, "{kinds:?}");
        assert!(kinds[1].contains("no rpyc message"), "{kinds:?}");
        assert!(kinds[2].contains("mid-frame"), "{kinds:?}");
        assert_eq!(s.garbage, 2);
        // Bytes that are not frames at all.
        let mut n = 0;
        decode_stream(b"GET / HTTP/1.1\r\n\r\n", 2, None, 1 << 20, &mut |r| {
            assert!(matches!(r.event, Event::Garbage(_)));
            n += 1;
        });
        assert_eq!(n, 1);
    }
}
