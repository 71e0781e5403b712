//! One direction of a proxied connection: a pump that reads what one side
//! sends and passes it on to the other, raw or frame by frame (re-framed
//! for the other dialect), feeding the connection's trace on the way.
//!
//! The two pumps of a connection share a [`Decision`]: the client's pump
//! settles it from the client's first message, the server's pump waits
//! for it before passing anything on. What it hands back to
//! [`super::relay`] is only how it ended (the reason, when a translation
//! had to give up).

use std::fs::File;
use std::io::{self, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use crate::brine::DecodeOptions;
use crate::channel::{frame_payload, ChannelConfig, FrameWriter};
use crate::protocol::message::{self, split_message, Dialect};
use crate::trace::{ConnTrace, FrameSplitter, GarbageRecord, Piece, Record, Side};

use super::{Shared, Sock, SockWriter};

/// What the client's first message (or its absence) decided for both pumps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// The connection ended before the client said anything.
    Ended,
    /// Relay bytes unchanged (garbage came before any dialect was known).
    Raw,
    /// The client's and the server's dialects.
    Dialects(Dialect, Dialect),
}

/// The verdict both pumps share, and a wait for it.
pub(super) struct Decision {
    state: Mutex<Option<Verdict>>,
    ready: Condvar,
}

impl Decision {
    pub(super) fn new() -> Decision {
        Decision { state: Mutex::new(None), ready: Condvar::new() }
    }

    pub(super) fn set(&self, v: Verdict) {
        *self.state.lock() = Some(v);
        self.ready.notify_all();
    }

    /// The verdict, if it is in.
    pub(super) fn peek(&self) -> Option<Verdict> {
        *self.state.lock()
    }

    /// Sets `v` unless a verdict is already in.
    fn set_if_pending(&self, v: Verdict) {
        let mut s = self.state.lock();
        if s.is_none() {
            *s = Some(v);
            self.ready.notify_all();
        }
    }

    fn wait(&self) -> Verdict {
        let mut s = self.state.lock();
        loop {
            if let Some(v) = *s {
                return v;
            }
            self.ready.wait(&mut s);
        }
    }
}

/// One pump's ends and its part of the connection.
pub(super) struct Pump {
    pub(super) shared: Arc<Shared>,
    pub(super) conn: u64,
    pub(super) from: Side,
    pub(super) src: Arc<Sock>,
    pub(super) dst: Arc<Sock>,
    pub(super) trace: Option<Arc<Mutex<ConnTrace>>>,
    pub(super) record: Option<File>,
    pub(super) decision: Arc<Decision>,
    /// Bytes already read from `src` (the client's first message, read
    /// to decide the dialect), handled before anything else.
    pub(super) first: Vec<u8>,
}

/// How a pump forwards.
enum Mode {
    /// Bytes as they come.
    Raw,
    /// Frame by frame, re-framed from one dialect to another when
    /// `translate` says so; `None` until the client's dialect is known.
    Frames(Option<(Dialect, Dialect)>),
}

impl Pump {
    pub(super) fn run(mut self) {
        let ended = self.pump();
        if let Err(why) = ended {
            self.shared.notice(self.conn, &why);
            self.src.shutdown(Shutdown::Both);
            self.dst.shutdown(Shutdown::Both);
        } else {
            // The sender is done: pass the end of stream on, and let the
            // other direction finish what it is sending.
            self.dst.shutdown(Shutdown::Write);
        }
        if self.from == Side::Client {
            // The connection may have ended before the client said anything.
            self.decision.set_if_pending(Verdict::Ended);
        }
    }

    /// The mode to start in, waiting (server side) for the decision.
    fn start_mode(&self) -> Option<Mode> {
        let decided = self.decision.peek();
        let v = match (self.from, decided) {
            (_, Some(v)) => v,
            (Side::Client, None) => return Some(Mode::Frames(None)),
            (Side::Server, None) => self.decision.wait(),
        };
        match v {
            Verdict::Ended => None,
            Verdict::Raw => Some(Mode::Raw),
            Verdict::Dialects(c, s) if c == s => Some(Mode::Raw),
            Verdict::Dialects(c, s) => Some(Mode::Frames(Some((c, s)))),
        }
    }

    /// Relays until the sender ends (Ok) or a translation fails (Err with
    /// the reason).
    fn pump(&mut self) -> Result<(), String> {
        let Some(mut mode) = self.start_mode() else {
            return Ok(());
        };
        let mut split = FrameSplitter::new(self.shared.max);
        let mut writer = FrameWriter::new(Box::new(SockWriter(self.dst.clone())), &ChannelConfig::default());
        let mut out_buf = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        let mut first = std::mem::take(&mut self.first);
        loop {
            let held: Vec<u8>;
            let data = if first.is_empty() {
                match self.src.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => &chunk[..n],
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            } else {
                held = std::mem::take(&mut first);
                &held[..]
            };
            if let Some(f) = self.record.as_mut() {
                let _ = f.write_all(data);
            }
            match mode {
                Mode::Raw => {
                    // Traced before it is passed on, so that a request is
                    // on record before its reply can come back.
                    if self.trace.is_some() {
                        split.push(data);
                        self.trace_pieces(&mut split);
                    }
                    if self.dst.write_all(data).is_err() {
                        break;
                    }
                }
                Mode::Frames(_) => {
                    split.push(data);
                    while let Some(piece) = split.next_piece() {
                        match piece {
                            Piece::Frame(raw, span, offset) => {
                                let at = Instant::now();
                                let payload = match frame_payload(&raw, span, self.shared.max) {
                                    Ok(p) => p,
                                    Err(e) => {
                                        let g = garbage(&raw, offset, format!("frame does not inflate: {e}"));
                                        return self.bad_input(&mode, g, &mut split);
                                    }
                                };
                                let m = match split_message(&payload, DecodeOptions::default()) {
                                    Ok(m) => m,
                                    Err(e) => {
                                        let g = garbage(
                                            &raw,
                                            offset,
                                            format!("frame holds no rpyc message: {e}"),
                                        );
                                        return self.bad_input(&mode, g, &mut split);
                                    }
                                };
                                if let Mode::Frames(None) = mode {
                                    let d = (m.dialect, (*self.shared.server.lock()).unwrap_or(m.dialect));
                                    self.decision.set(Verdict::Dialects(d.0, d.1));
                                    mode = Mode::Frames(Some(d));
                                }
                                let Mode::Frames(Some((c, s))) = mode else { continue };
                                let from = self.from;
                                self.traced(|t| {
                                    t.payload(from, &payload, raw.len(), span.compressed, offset, Some(at))
                                });
                                let to = if self.from == Side::Client { s } else { c };
                                let sent = if m.dialect == to {
                                    self.dst.write_all(&raw).map_err(|_| ())
                                } else {
                                    message::reframe(&payload, &m, to, &mut out_buf);
                                    writer.send_prepared(&mut out_buf).map_err(|_| ())
                                };
                                if sent.is_err() {
                                    return Ok(());
                                }
                                if c == s {
                                    // No translation needed: relay raw from here on,
                                    // starting with what is buffered (traced first,
                                    // as in raw mode).
                                    let rest = split.buffered().to_vec();
                                    self.trace_pieces(&mut split);
                                    if self.dst.write_all(&rest).is_err() {
                                        return Ok(());
                                    }
                                    mode = Mode::Raw;
                                    break;
                                }
                            }
                            Piece::Garbage(g) => return self.bad_input(&mode, g, &mut split),
                        }
                    }
                }
            }
        }
        if let Some(g) = split.finish() {
            let from = self.from;
            self.traced(|t| t.garbage(from, g, Some(Instant::now())));
        }
        if let Some(t) = &self.trace {
            t.lock().unparsed(self.from, split.unparsed());
        }
        Ok(())
    }

    /// Garbage while working frame by frame: when translating, the end of
    /// this connection; before the dialect is known, a switch to raw
    /// relaying of everything held and all that follows.
    fn bad_input(&mut self, mode: &Mode, g: GarbageRecord, split: &mut FrameSplitter) -> Result<(), String> {
        let excerpt = g.excerpt.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ");
        let why = format!(
            "the {} sent bytes that are not an rpyc message at byte {} ({}; starts {excerpt})",
            if self.from == Side::Client { "client" } else { "server" },
            g.offset,
            g.reason
        );
        let from = self.from;
        self.traced(|t| t.garbage(from, g, Some(Instant::now())));
        if let Mode::Frames(Some((c, s))) = mode {
            if c != s {
                return Err(format!(
                    "{why}; translating {c} <-> {s} needs whole messages, so this connection is closed"
                ));
            }
        }
        // Not translating: relay it unchanged, and everything after it.
        self.decision.set_if_pending(Verdict::Raw);
        let _ = self.dst.write_all(split.buffered());
        split.give_up();
        if let Some(t) = &self.trace {
            t.lock().unparsed(self.from, split.unparsed());
        }
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            match self.src.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if let Some(f) = self.record.as_mut() {
                        let _ = f.write_all(&chunk[..n]);
                    }
                    if let Some(t) = &self.trace {
                        t.lock().unparsed(self.from, n as u64);
                    }
                    if self.dst.write_all(&chunk[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    fn trace_pieces(&self, split: &mut FrameSplitter) {
        if self.trace.is_none() {
            return;
        }
        while let Some(piece) = split.next_piece() {
            let at = Some(Instant::now());
            let from = self.from;
            self.traced(|t| match piece {
                Piece::Frame(raw, span, offset) => t.frame(from, &raw, span, offset, at),
                Piece::Garbage(g) => t.garbage(from, g, at),
            });
        }
    }

    /// Adds a record to the trace and prints it, under the trace's lock:
    /// lines come out in the order the trace saw them (a reply after its
    /// request).
    fn traced(&self, make: impl FnOnce(&mut ConnTrace) -> Record) {
        if let (Some(t), Some(f)) = (&self.trace, self.shared.format) {
            let mut t = t.lock();
            let rec = make(&mut t);
            self.shared.emit(&[f.record(&rec)]);
        }
    }
}

fn garbage(raw: &[u8], offset: u64, reason: String) -> GarbageRecord {
    GarbageRecord {
        offset,
        excerpt: raw[..raw.len().min(crate::trace::GARBAGE_EXCERPT)].to_vec(),
        len: raw.len(),
        reason,
    }
}
