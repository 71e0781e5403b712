//! Trace output: one line per [`Record`], as text for people or as JSON
//! lines for programs, and the per-connection [`Summary`] in the same two
//! forms. What it hands on is plain strings (no trailing newline); the
//! proxy and the CLI write them wherever they print.
//!
//! A text line reads
//!
//! ```text
//! 09:12:03.441920 c1 C>S #3 request   CALLATTR(<S1 __main__.CalculatorService>, 'add', (40, 2), ())
//! 09:12:03.442311 c1 S>C #3 reply     CALLATTR -> 42  [0.391 ms]
//! ```
//!
//! (`-` in place of the time for a capture, which has none).

use std::fmt::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Event, GarbageRecord, Record, Side, Summary};
use crate::protocol::message::Dialect;

/// How trace lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned text for people.
    Text,
    /// One JSON object per line.
    Json,
}

/// `HH:MM:SS.ffffff` (UTC).
pub fn clock(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let s = d.as_secs() % 86_400;
    format!("{:02}:{:02}:{:02}.{:06}", s / 3600, s / 60 % 60, s % 60, d.subsec_micros())
}

/// A latency as `0.391 ms`.
pub fn millis(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 3);
    for (i, x) in b.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let _ = write!(s, "{x:02x}");
    }
    s
}

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn dialect_name(d: Dialect) -> &'static str {
    match d {
        Dialect::Rpyc5 => "5",
        Dialect::Rpyc6 => "6",
    }
}

impl Format {
    /// One record as a line.
    pub fn record(self, r: &Record) -> String {
        match self {
            Format::Text => text_record(r),
            Format::Json => json_record(r),
        }
    }

    /// A summary as lines.
    pub fn summary(self, s: &Summary) -> Vec<String> {
        match self {
            Format::Text => text_summary(s),
            Format::Json => vec![json_summary(s)],
        }
    }

    /// A notice from the proxy about a connection (why it ended early).
    pub fn notice(self, conn: u64, text: &str) -> String {
        match self {
            Format::Text => format!("c{conn} !! {text}"),
            Format::Json => format!("{{\"conn\":{conn},\"type\":\"notice\",\"text\":{}}}", json_str(text)),
        }
    }
}

fn text_record(r: &Record) -> String {
    let time = r.time.map_or_else(|| "-".to_owned(), clock);
    let head = format!("{time} c{} {}", r.conn, r.from.arrow());
    match &r.event {
        Event::Message(m) => {
            let seq = format!("#{}", m.seq);
            let kind = m.kind();
            let mut line = if m.msg == crate::protocol::message::MSG_REQUEST {
                format!("{head} {seq:<5} {kind:<9} {}({})", m.handler_name(), m.text)
            } else {
                format!("{head} {seq:<5} {kind:<9} {} -> {}", m.handler_name(), m.text)
            };
            if let Some(Some(l)) = m.answers {
                let _ = write!(line, "  [{}]", millis(l));
            }
            if m.compressed {
                let _ = write!(line, "  (zlib {} -> {} bytes)", m.wire_len, m.payload_len);
            }
            line
        }
        Event::Garbage(g) => text_garbage(&head, g),
    }
}

fn text_garbage(head: &str, g: &GarbageRecord) -> String {
    let more = if g.len > g.excerpt.len() { " ..." } else { "" };
    format!(
        "{head} GARBAGE at byte {} ({} bytes): {}{more}  ({})",
        g.offset,
        g.len,
        hex(&g.excerpt),
        g.reason
    )
}

fn json_record(r: &Record) -> String {
    let mut o = format!("{{\"conn\":{},\"from\":\"{}\"", r.conn, side_name(r.from));
    if let Some(t) = r.time {
        let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        let _ = write!(o, ",\"time\":{:.6},\"clock\":\"{}\"", d.as_secs_f64(), clock(t));
    }
    match &r.event {
        Event::Message(m) => {
            let _ = write!(
                o,
                ",\"type\":\"{}\",\"dialect\":\"{}\",\"seq\":{},\"handler\":{},\"text\":{}",
                m.kind(),
                dialect_name(m.dialect),
                m.seq,
                json_str(&m.handler_name()),
                json_str(&m.text)
            );
            if let Some(latency) = m.answers {
                match latency {
                    Some(l) => {
                        let _ =
                            write!(o, ",\"answers\":{},\"latency_ms\":{:.3}", m.seq, l.as_secs_f64() * 1e3);
                    }
                    None => {
                        let _ = write!(o, ",\"answers\":{}", m.seq);
                    }
                }
            }
            if let Some((class, line)) = &m.exception {
                let _ = write!(o, ",\"exception\":{},\"message\":{}", json_str(class), json_str(line));
            }
            if !m.refs.is_empty() {
                o.push_str(",\"refs\":[");
                for (i, rf) in m.refs.iter().enumerate() {
                    if i > 0 {
                        o.push(',');
                    }
                    let _ = write!(
                        o,
                        "{{\"ref\":\"{}{}\",\"owner\":\"{}\",\"label\":{},\"id_pack\":[{},{},{}]}}",
                        rf.owner.letter(),
                        rf.alias,
                        side_name(rf.owner),
                        rf.label,
                        json_str(&rf.name),
                        rf.class_id,
                        rf.instance_id
                    );
                }
                o.push(']');
            }
            let _ = write!(
                o,
                ",\"wire_bytes\":{},\"payload_bytes\":{},\"compressed\":{}}}",
                m.wire_len, m.payload_len, m.compressed
            );
        }
        Event::Garbage(g) => {
            let _ = write!(
                o,
                ",\"type\":\"garbage\",\"offset\":{},\"len\":{},\"hex\":\"{}\",\"reason\":{}}}",
                g.offset,
                g.len,
                hex(&g.excerpt).replace(' ', ""),
                json_str(&g.reason)
            );
        }
    }
    o
}

fn side_name(s: Side) -> &'static str {
    match s {
        Side::Client => "client",
        Side::Server => "server",
    }
}

fn text_summary(s: &Summary) -> Vec<String> {
    let c = s.conn;
    let dialects = |i: usize| s.dialects[i].map_or("?", dialect_name);
    let mut out = vec![format!(
        "c{c} summary: {} messages (client {}, server {}) over {:.3} s; dialects: client {}, server {}",
        s.messages[0] + s.messages[1],
        s.messages[0],
        s.messages[1],
        s.duration.as_secs_f64(),
        dialects(0),
        dialects(1)
    )];
    let by: Vec<String> = s.by_handler.iter().map(|(h, n)| format!("{h} {n}")).collect();
    out.push(format!(
        "c{c}   requests by handler: {}",
        if by.is_empty() { "none".into() } else { by.join(", ") }
    ));
    let mut bytes = format!(
        "c{c}   bytes: C>S {} on the wire ({} payload), S>C {} ({})",
        s.wire_bytes[0], s.payload_bytes[0], s.wire_bytes[1], s.payload_bytes[1]
    );
    if s.compressed.0 > 0 {
        let _ = write!(
            bytes,
            "; {} compressed frames: {} -> {} bytes ({:.1}x)",
            s.compressed.0,
            s.compressed.1,
            s.compressed.2,
            s.compressed.2 as f64 / s.compressed.1.max(1) as f64
        );
    } else {
        bytes.push_str("; no compressed frames");
    }
    out.push(bytes);
    let slow: Vec<String> = s
        .slowest
        .iter()
        .map(|(h, seq, side, l)| format!("{h} {}#{seq} {}", side.letter(), millis(*l)))
        .collect();
    let mut rt = format!("c{c}   round trips: {} ({} exceptions)", s.round_trips, s.exceptions);
    if !slow.is_empty() {
        let _ = write!(rt, "; slowest: {}", slow.join(", "));
    }
    out.push(rt);
    let mut nr = format!(
        "c{c}   netrefs: {} created, {} released, {} alive at close",
        s.netrefs_created,
        s.netrefs_released,
        s.netrefs_alive.len()
    );
    if !s.netrefs_alive.is_empty() {
        const SHOWN: usize = 10;
        let _ =
            write!(nr, ": {}", s.netrefs_alive.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", "));
        if s.netrefs_alive.len() > SHOWN {
            let _ = write!(nr, ", ... ({} more)", s.netrefs_alive.len() - SHOWN);
        }
    }
    out.push(nr);
    if s.garbage > 0 || s.unparsed != [0, 0] {
        out.push(format!(
            "c{c}   garbage: {} pieces; bytes relayed unparsed: C>S {}, S>C {}",
            s.garbage, s.unparsed[0], s.unparsed[1]
        ));
    }
    out
}

fn json_summary(s: &Summary) -> String {
    let by: Vec<String> = s.by_handler.iter().map(|(h, n)| format!("{}:{n}", json_str(h))).collect();
    let slow: Vec<String> = s
        .slowest
        .iter()
        .map(|(h, seq, side, l)| {
            format!(
                "{{\"handler\":{},\"seq\":{seq},\"from\":\"{}\",\"latency_ms\":{:.3}}}",
                json_str(h),
                side_name(*side),
                l.as_secs_f64() * 1e3
            )
        })
        .collect();
    let alive: Vec<String> = s.netrefs_alive.iter().map(|a| json_str(a)).collect();
    format!(
        "{{\"conn\":{},\"type\":\"summary\",\"duration_s\":{:.6},\"messages\":{{\"client\":{},\"server\":{}}},\
         \"requests_by_handler\":{{{}}},\"wire_bytes\":{{\"client\":{},\"server\":{}}},\
         \"payload_bytes\":{{\"client\":{},\"server\":{}}},\"compressed_frames\":{},\"compressed_wire_bytes\":{},\
         \"compressed_payload_bytes\":{},\"round_trips\":{},\"exceptions\":{},\"slowest\":[{}],\
         \"netrefs_created\":{},\"netrefs_released\":{},\"netrefs_alive\":[{}],\"garbage\":{},\
         \"unparsed_bytes\":{{\"client\":{},\"server\":{}}}}}",
        s.conn,
        s.duration.as_secs_f64(),
        s.messages[0],
        s.messages[1],
        by.join(","),
        s.wire_bytes[0],
        s.wire_bytes[1],
        s.payload_bytes[0],
        s.payload_bytes[1],
        s.compressed.0,
        s.compressed.1,
        s.compressed.2,
        s.round_trips,
        s.exceptions,
        slow.join(","),
        s.netrefs_created,
        s.netrefs_released,
        alive.join(","),
        s.garbage,
        s.unparsed[0],
        s.unparsed[1]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_and_json_strings() {
        let t = UNIX_EPOCH + Duration::from_micros(3_723_000_042);
        assert_eq!(clock(t), "01:02:03.000042");
        assert_eq!(json_str("a\"b\\\n\u{1}"), "\"a\\\"b\\\\\\n\\u0001\"");
    }
}
