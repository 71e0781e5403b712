//! Messages: the numbers of `rpyc/core/consts.py` and the shape of a payload,
//! `u8 msg_type` followed by `brine((seq, body))`.
//!
//! Messages are built straight into a frame buffer (see
//! [`begin_frame`]) and parsed in place: the
//! header parse reads only the type and seq, so the thread that routes a
//! reply never decodes a body meant for another thread.

use std::ops::Range;

use crate::brine::{put_int, put_tuple_header, tag, DecodeOptions, Decoder, Token};
use crate::channel::begin_frame;

use super::{Error, Result};

/// `MSG_REQUEST`
pub const MSG_REQUEST: u8 = 1;
/// `MSG_REPLY`
pub const MSG_REPLY: u8 = 2;
/// `MSG_EXCEPTION`
pub const MSG_EXCEPTION: u8 = 3;

/// `EXC_STOP_ITERATION`: the whole body of an exception message for
/// `StopIteration`.
pub const EXC_STOP_ITERATION: i64 = 1;

/// The request handlers (`HANDLE_*` in `rpyc/core/consts.py`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Handler {
    /// Echo the argument.
    Ping = 1,
    /// The sender is closing the connection.
    Close = 2,
    /// Return the root (service) object.
    GetRoot = 3,
    /// `getattr(obj, name)`, policy-checked.
    GetAttr = 4,
    /// `delattr(obj, name)`.
    DelAttr = 5,
    /// `setattr(obj, name, value)`.
    SetAttr = 6,
    /// `obj(*args, **dict(kwargs))`.
    Call = 7,
    /// `getattr(obj, name)(*args, **dict(kwargs))`.
    CallAttr = 8,
    /// `repr(obj)`.
    Repr = 9,
    /// `str(obj)`.
    Str = 10,
    /// `type(obj).<op>(obj, other)`.
    Cmp = 11,
    /// `hash(obj)`.
    Hash = 12,
    /// `tuple(dir(obj))`.
    Dir = 13,
    /// `pickle.dumps(obj, proto)`, when allowed.
    Pickle = 14,
    /// Drop `count` references to `obj`.
    Del = 15,
    /// The methods of the object named by an id pack.
    Inspect = 16,
    /// Up to `count` next items of an iterator.
    BuffIter = 17,
    /// Python 2 slicing, kept for old peers.
    OldSlicing = 18,
    /// `obj.__exit__(...)`.
    CtxExit = 19,
    /// `isinstance` across the connection.
    InstanceCheck = 20,
}

impl Handler {
    /// The handler with this number.
    pub fn from_number(n: i64) -> Option<Handler> {
        use Handler::*;
        Some(match n {
            1 => Ping,
            2 => Close,
            3 => GetRoot,
            4 => GetAttr,
            5 => DelAttr,
            6 => SetAttr,
            7 => Call,
            8 => CallAttr,
            9 => Repr,
            10 => Str,
            11 => Cmp,
            12 => Hash,
            13 => Dir,
            14 => Pickle,
            15 => Del,
            16 => Inspect,
            17 => BuffIter,
            18 => OldSlicing,
            19 => CtxExit,
            20 => InstanceCheck,
            _ => return None,
        })
    }
}

impl Handler {
    /// rpyc's name for the handler, as in `HANDLE_GETATTR` without the
    /// prefix: what traces print.
    pub fn name(self) -> &'static str {
        use Handler::*;
        match self {
            Ping => "PING",
            Close => "CLOSE",
            GetRoot => "GETROOT",
            GetAttr => "GETATTR",
            DelAttr => "DELATTR",
            SetAttr => "SETATTR",
            Call => "CALL",
            CallAttr => "CALLATTR",
            Repr => "REPR",
            Str => "STR",
            Cmp => "CMP",
            Hash => "HASH",
            Dir => "DIR",
            Pickle => "PICKLE",
            Del => "DEL",
            Inspect => "INSPECT",
            BuffIter => "BUFFITER",
            OldSlicing => "OLDSLICING",
            CtxExit => "CTXEXIT",
            InstanceCheck => "INSTANCECHECK",
        }
    }
}

/// Starts a message in `buf` (clearing it and reserving the frame header):
/// the type byte and `(seq, ` — the caller appends the body.
pub fn begin_message(buf: &mut Vec<u8>, msg: u8, seq: i64) {
    begin_frame(buf);
    buf.push(msg);
    // Two items can never fail to encode.
    let _ = put_tuple_header(buf, 2);
    put_int(buf, seq);
}

/// Starts a message in rpyc 5.x's framing, `brine((msg, seq, body))`; the
/// caller appends the body.
pub fn begin_legacy_message(buf: &mut Vec<u8>, msg: u8, seq: i64) {
    begin_frame(buf);
    // Three items can never fail to encode.
    let _ = put_tuple_header(buf, 3);
    put_int(buf, msg as i64);
    put_int(buf, seq);
}

/// Starts a message in either framing.
pub fn begin_framed(buf: &mut Vec<u8>, msg: u8, seq: i64, legacy: bool) {
    if legacy {
        begin_legacy_message(buf, msg, seq);
    } else {
        begin_message(buf, msg, seq);
    }
}

/// Starts a request: the message header plus `(handler, ` — the caller
/// appends the boxed argument tuple.
pub fn begin_request(buf: &mut Vec<u8>, seq: i64, handler: Handler, legacy: bool) {
    begin_framed(buf, MSG_REQUEST, seq, legacy);
    let _ = put_tuple_header(buf, 2);
    put_int(buf, handler as i64);
}

/// A parsed message header: its type, seq, and a decoder positioned at the
/// body.
pub struct Header<'a> {
    /// `MSG_REQUEST`, `MSG_REPLY` or `MSG_EXCEPTION`.
    pub msg: u8,
    /// The request's sequence number.
    pub seq: i64,
    /// A decoder at the start of the body.
    pub body: Decoder<'a>,
}

/// The first byte of an rpyc 5.x message. rpyc 5.x sends
/// `brine((msg_type, seq, body))`, a 3-tuple, where 6.x sends `u8 msg_type`
/// followed by `brine((seq, body))`; the two cannot read each other. No 6.x
/// message starts with this byte (its types are 1 to 3), so a reader can
/// take both.
pub const LEGACY_MESSAGE_TAG: u8 = 0x12;

/// Parses the type and seq of a payload, in either framing (rpyc 6.x, or
/// 5.x: see [`LEGACY_MESSAGE_TAG`]).
pub fn parse_header(payload: &[u8], opts: DecodeOptions) -> Result<Header<'_>> {
    if payload.first() == Some(&LEGACY_MESSAGE_TAG) {
        let mut body = Decoder::with_options(payload, opts);
        body.next_token()?;
        let msg = match body.next_token()? {
            Token::Int(n) if (MSG_REQUEST as i64..=MSG_EXCEPTION as i64).contains(&n) => n as u8,
            _ => return Err(Error::protocol("invalid message type in an rpyc 5.x message")),
        };
        let seq = match body.next_token()? {
            Token::Int(n) => n,
            _ => return Err(Error::protocol("message seq is not an int")),
        };
        return Ok(Header { msg, seq, body });
    }
    let (&msg, rest) = payload.split_first().ok_or_else(|| Error::protocol("empty message"))?;
    if !(MSG_REQUEST..=MSG_EXCEPTION).contains(&msg) {
        return Err(Error::protocol(format!("invalid message type {msg}")));
    }
    let mut body = Decoder::with_options(rest, opts);
    if body.next_token()? != Token::Tuple(2) {
        return Err(Error::protocol("message is not a (seq, body) pair"));
    }
    let seq = match body.next_token()? {
        Token::Int(n) => n,
        _ => return Err(Error::protocol("message seq is not an int")),
    };
    Ok(Header { msg, seq, body })
}

/// True when `payload` is a DEL request, in either dialect: what the engine
/// answers at once when one arrives right behind the reply it waited for
/// (see `Core::answer_buffered_dels`).
pub fn is_del_request(payload: &[u8]) -> bool {
    let Ok(mut h) = parse_header(payload, DecodeOptions::default()) else { return false };
    h.msg == MSG_REQUEST
        && h.body.next_token().is_ok_and(|t| t == Token::Tuple(2))
        && h.body.next_token().is_ok_and(|t| t == Token::Int(Handler::Del as i64))
}

/// A received message, its header parsed once by the engine and handed on
/// with the payload: the object world decodes the body from where the
/// header ended, and a reply echoes the request's seq byte for byte.
///
/// The seq is kept as the peer encoded it because rpyc accepts any int as a
/// seq and echoes it back; a peer counting past `i64` (or sending a 40-digit
/// seq) still gets its answer, as from stock rpyc.
pub struct Incoming {
    payload: Vec<u8>,
    msg: u8,
    seq: Option<i64>,
    seq_bytes: Range<usize>,
    body: usize,
}

impl Incoming {
    /// Parses the header of `payload` (either dialect): type, seq, and
    /// where the body starts. The body itself is not read here.
    pub fn parse(payload: Vec<u8>) -> Result<Incoming> {
        let legacy = payload.first() == Some(&LEGACY_MESSAGE_TAG);
        let (msg, start) = if legacy {
            let mut dec = Decoder::new(&payload);
            dec.next_token()?;
            let msg = match dec.next_token()? {
                Token::Int(n) if (MSG_REQUEST as i64..=MSG_EXCEPTION as i64).contains(&n) => n as u8,
                _ => return Err(Error::protocol("invalid message type in an rpyc 5.x message")),
            };
            (msg, dec.offset())
        } else {
            let &msg = payload.first().ok_or_else(|| Error::protocol("empty message"))?;
            if !(MSG_REQUEST..=MSG_EXCEPTION).contains(&msg) {
                return Err(Error::protocol(format!("invalid message type {msg}")));
            }
            let mut dec = Decoder::new(&payload[1..]);
            if dec.next_token()? != Token::Tuple(2) {
                return Err(Error::protocol("message is not a (seq, body) pair"));
            }
            (msg, 1 + dec.offset())
        };
        let mut dec = Decoder::new(&payload[start..]);
        let seq = match dec.next_token()? {
            Token::Int(n) => Some(n),
            Token::BigInt(_) => None,
            _ => return Err(Error::protocol("message seq is not an int")),
        };
        let end = start + dec.offset();
        if end >= payload.len() {
            return Err(Error::protocol("message has no body"));
        }
        Ok(Incoming { msg, seq, seq_bytes: start..end, body: end, payload })
    }

    /// `MSG_REQUEST`, `MSG_REPLY` or `MSG_EXCEPTION`.
    pub fn msg(&self) -> u8 {
        self.msg
    }

    /// The seq, when it fits an `i64` (ours always do).
    pub fn seq(&self) -> Option<i64> {
        self.seq
    }

    /// True when the message came in rpyc 5.x's framing.
    pub fn is_legacy(&self) -> bool {
        self.payload.first() == Some(&LEGACY_MESSAGE_TAG)
    }

    /// The whole payload.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// True for a DEL request with its handler written the way brine
    /// writes 15 (one byte), as every rpyc peer writes it. The cheap check
    /// behind a shortcut: a DEL written otherwise is served all the same.
    pub fn is_del(&self) -> bool {
        const DEL_TAG: u8 = (Handler::Del as i64 + 0x50) as u8;
        self.msg == MSG_REQUEST && self.payload[self.body..].starts_with(&[tag::TUPLE1 + 1, DEL_TAG])
    }

    /// True for a REPLY whose body is a plain `None` (what a DEL, a SETATTR
    /// or a CLOSE answers): nothing in it to unbox or release.
    pub fn is_reply_of_none(&self) -> bool {
        self.msg == MSG_REPLY && self.payload[self.body..].starts_with(&[0x11, 0x51, 0x00])
    }

    /// A decoder at the start of the body. The body sits one level deep in
    /// the message tuple, and the depth limit counts that level.
    pub fn body(&self, opts: DecodeOptions) -> Decoder<'_> {
        let mut dec = Decoder::with_options(&self.payload[self.body..], opts);
        // A depth limit of 0 makes every compound fail, as before.
        let _ = dec.enter();
        dec
    }

    /// Checks that the body is one whole, well-formed brine value within the
    /// limits, without building anything, so that garbage is refused before
    /// any object or proxy exists. Bytes after the body are ignored, as
    /// rpyc's `brine.load` ignores them.
    pub fn validate(&self, opts: DecodeOptions) -> Result<()> {
        let mut dec = self.body(opts);
        dec.skip_value()?;
        Ok(())
    }

    /// Starts the answer to this message in `buf` (clearing it): `msg`
    /// with this message's seq, in the given framing; the caller appends
    /// the body.
    pub fn begin_answer(&self, buf: &mut Vec<u8>, msg: u8, legacy: bool) {
        begin_frame(buf);
        if legacy {
            let _ = put_tuple_header(buf, 3);
            put_int(buf, msg as i64);
        } else {
            buf.push(msg);
            let _ = put_tuple_header(buf, 2);
        }
        buf.extend_from_slice(&self.payload[self.seq_bytes.clone()]);
    }
}

/// How a peer frames its messages (see [`LEGACY_MESSAGE_TAG`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// rpyc 5.x: `brine((msg_type, seq, body))`.
    Rpyc5,
    /// rpyc 6.x: `u8 msg_type` then `brine((seq, body))`.
    Rpyc6,
}

impl Dialect {
    /// The dialect a payload is written in, from its first byte alone.
    pub fn of(payload: &[u8]) -> Option<Dialect> {
        match payload.first()? {
            &LEGACY_MESSAGE_TAG => Some(Dialect::Rpyc5),
            b if (MSG_REQUEST..=MSG_EXCEPTION).contains(b) => Some(Dialect::Rpyc6),
            _ => None,
        }
    }
}

impl std::fmt::Display for Dialect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Dialect::Rpyc5 => "rpyc 5.x",
            Dialect::Rpyc6 => "rpyc 6.x",
        })
    }
}

/// A message's header fields and where its body starts in the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageSpan {
    /// The dialect it is framed in.
    pub dialect: Dialect,
    /// `MSG_REQUEST`, `MSG_REPLY` or `MSG_EXCEPTION`.
    pub msg: u8,
    /// The sequence number.
    pub seq: i64,
    /// Offset of the body in the payload.
    pub body: usize,
}

/// Parses a payload's header (either dialect) and checks that its body is
/// one well-formed brine value, without building it. Bytes after the
/// value are accepted, as the engine and rpyc's `brine.load` ignore them;
/// they stay in the payload after the body (and [`reframe`] passes them on).
pub fn split_message(payload: &[u8], opts: DecodeOptions) -> Result<MessageSpan> {
    let mut h = parse_header(payload, opts)?;
    let (dialect, skip) = match Dialect::of(payload) {
        Some(Dialect::Rpyc5) => (Dialect::Rpyc5, 0),
        _ => (Dialect::Rpyc6, 1),
    };
    let body = h.body.offset() + skip;
    h.body.skip_value()?;
    Ok(MessageSpan { dialect, msg: h.msg, seq: h.seq, body })
}

/// Re-frames a payload for a peer speaking `to`: the same message, type,
/// seq and body bytes (with any bytes after the body, unchanged), under the
/// header of the other dialect. Returns a buffer ready for
/// [`FrameWriter::send_prepared`](crate::channel::FrameWriter::send_prepared).
pub fn reframe(payload: &[u8], span: &MessageSpan, to: Dialect, buf: &mut Vec<u8>) {
    begin_framed(buf, span.msg, span.seq, to == Dialect::Rpyc5);
    buf.extend_from_slice(&payload[span.body..]);
}

/// Parses only the type and seq; for routing a reply to its waiter.
pub fn peek_header(payload: &[u8]) -> Result<(u8, i64)> {
    let h = parse_header(payload, DecodeOptions::default())?;
    Ok((h.msg, h.seq))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::HEADER_LEN;

    #[test]
    fn request_layout_matches_rpyc() {
        // rpyc: I1.pack(1) + brine.dump((0, (3, (1, ())))) for GETROOT.
        let mut buf = Vec::new();
        begin_request(&mut buf, 0, Handler::GetRoot, false);
        buf.extend_from_slice(b"\x11\x51\x02");
        assert_eq!(&buf[HEADER_LEN..], b"\x01\x11\x50\x11\x53\x11\x51\x02");
        let h = parse_header(&buf[HEADER_LEN..], DecodeOptions::default()).unwrap();
        assert_eq!((h.msg, h.seq), (MSG_REQUEST, 0));
    }

    #[test]
    fn is_del_agrees_with_is_del_request() {
        // A DEL of ((label 1, ("m.C", 1, 2)), 1) and a GETROOT, in both
        // framings; a reply and a DEL whose handler is written long.
        let args = b"\x11\x11\x51\x12\x08\x0cm.C\x51\x52\x51";
        for legacy in [false, true] {
            for (handler, want) in [(Handler::Del, true), (Handler::GetRoot, false)] {
                let mut buf = Vec::new();
                begin_request(&mut buf, 7, handler, legacy);
                buf.extend_from_slice(args);
                let payload = buf[HEADER_LEN..].to_vec();
                assert_eq!(is_del_request(&payload), want);
                assert_eq!(Incoming::parse(payload).unwrap().is_del(), want);
            }
        }
        assert!(!Incoming::parse(b"\x02\x11\x57\x11\x5f\x00".to_vec()).unwrap().is_del());
        // 15 as text: still a DEL (served all the same), not the shortcut's.
        let long = b"\x01\x11\x57\x11\x16\x0215\x00".to_vec();
        assert!(is_del_request(&long));
        assert!(!Incoming::parse(long).unwrap().is_del());
    }

    #[test]
    fn rpyc5_framing_parses_too() {
        // rpyc 5.3: brine.dump((1, 0, (3, (1, ())))) for GETROOT.
        let payload = b"\x12\x51\x50\x11\x53\x11\x51\x02";
        let mut h = parse_header(payload, DecodeOptions::default()).unwrap();
        assert_eq!((h.msg, h.seq), (MSG_REQUEST, 0));
        assert_eq!(h.body.next_token().unwrap(), Token::Tuple(2));
        let m = Incoming::parse(b"\x12\x52\x55\x11\x51\x00".to_vec()).unwrap();
        assert_eq!((m.msg(), m.seq()), (MSG_REPLY, Some(5)));
        assert!(parse_header(b"\x12\x59\x50\x00", DecodeOptions::default()).is_err());
        assert!(parse_header(b"\x12\x51", DecodeOptions::default()).is_err());
        let mut buf = Vec::new();
        begin_request(&mut buf, 0, Handler::GetRoot, true);
        buf.extend_from_slice(b"\x11\x51\x02");
        assert_eq!(&buf[crate::channel::HEADER_LEN..], payload);
    }

    #[test]
    fn incoming_echoes_any_seq_and_ignores_trailing_bytes() {
        // A 40-digit seq (rpyc accepts any int) and two bytes after the body.
        let seq = "1234567890123456789012345678901234567890";
        let mut payload = vec![MSG_REQUEST, 0x11, 0x16, seq.len() as u8];
        payload.extend_from_slice(seq.as_bytes());
        payload.extend_from_slice(b"\x11\x51\x02\xff\xff");
        let m = Incoming::parse(payload).unwrap();
        assert_eq!(m.seq(), None);
        m.validate(DecodeOptions::default()).unwrap();
        let mut reply = Vec::new();
        m.begin_answer(&mut reply, MSG_REPLY, false);
        reply.extend_from_slice(b"\x11\x51\x00");
        let back = Incoming::parse(reply[HEADER_LEN..].to_vec()).unwrap();
        assert_eq!(back.msg(), MSG_REPLY);
        assert_eq!(&back.payload()[4..4 + seq.len()], seq.as_bytes());
        // No body at all is refused.
        assert!(Incoming::parse(vec![MSG_REQUEST, 0x11, 0x50]).is_err());
    }

    #[test]
    fn reframing_goes_both_ways() {
        let v5: &[u8] = b"\x12\x51\x50\x11\x53\x11\x51\x02";
        let v6: &[u8] = b"\x01\x11\x50\x11\x53\x11\x51\x02";
        let mut buf = Vec::new();
        let s5 = split_message(v5, DecodeOptions::default()).unwrap();
        assert_eq!((s5.dialect, s5.msg, s5.seq, s5.body), (Dialect::Rpyc5, MSG_REQUEST, 0, 3));
        reframe(v5, &s5, Dialect::Rpyc6, &mut buf);
        assert_eq!(&buf[HEADER_LEN..], v6);
        let s6 = split_message(v6, DecodeOptions::default()).unwrap();
        assert_eq!((s6.dialect, s6.body), (Dialect::Rpyc6, 3));
        reframe(v6, &s6, Dialect::Rpyc5, &mut buf);
        assert_eq!(&buf[HEADER_LEN..], v5);
        // Bytes past the body's value are accepted (the engine and rpyc's
        // brine.load ignore them) and carried over unchanged either way.
        let t6: &[u8] = b"\x01\x11\x50\x11\x53\x11\x51\x02\xde\xad";
        let t5: &[u8] = b"\x12\x51\x50\x11\x53\x11\x51\x02\xde\xad";
        let s = split_message(t6, DecodeOptions::default()).unwrap();
        assert_eq!((s.dialect, s.msg, s.seq, s.body), (Dialect::Rpyc6, MSG_REQUEST, 0, 3));
        reframe(t6, &s, Dialect::Rpyc5, &mut buf);
        assert_eq!(&buf[HEADER_LEN..], t5);
        let s = split_message(t5, DecodeOptions::default()).unwrap();
        reframe(t5, &s, Dialect::Rpyc6, &mut buf);
        assert_eq!(&buf[HEADER_LEN..], t6);
        // A body cut short is refused.
        assert!(split_message(b"\x01\x11\x50\x12", DecodeOptions::default()).is_err());
        assert_eq!(Dialect::of(b"\x07"), None);
        assert_eq!(Handler::GetAttr.name(), "GETATTR");
    }

    #[test]
    fn del_requests_are_told_apart_in_both_dialects() {
        for legacy in [false, true] {
            let payload = |handler: Handler| {
                let mut f = Vec::new();
                begin_request(&mut f, 9, handler, legacy);
                put_tuple_header(&mut f, 2).unwrap();
                put_int(&mut f, 1);
                put_int(&mut f, 2);
                f[crate::channel::HEADER_LEN..].to_vec()
            };
            assert!(is_del_request(&payload(Handler::Del)), "legacy={legacy}");
            assert!(!is_del_request(&payload(Handler::Ping)), "legacy={legacy}");
        }
        let mut reply = Vec::new();
        begin_message(&mut reply, MSG_REPLY, 9);
        put_int(&mut reply, 2);
        assert!(!is_del_request(&reply[crate::channel::HEADER_LEN..]));
        assert!(!is_del_request(b""));
        assert!(!is_del_request(b"\x01\xff"));
    }

    #[test]
    fn handler_numbers_round_trip() {
        for n in 1..=20 {
            assert_eq!(Handler::from_number(n).unwrap() as i64, n);
        }
        assert!(Handler::from_number(0).is_none());
        assert!(Handler::from_number(21).is_none());
    }
}
