//! The bodies of the coverage-guided fuzz targets (`fuzz/`), here so that
//! the committed corpus replays through exactly the same code as a plain
//! `cargo test` (`tests/fuzz_corpus.rs`). Not API: hidden from the docs.
//!
//! Each function takes arbitrary bytes and must return without panicking,
//! hanging or allocating beyond its bounds; a broken invariant panics,
//! which is what the fuzzer reports.

use std::sync::Arc;
use std::time::Duration;

use crate::brine::{self, DecodeOptions, Decoder};
use crate::channel::{ChannelConfig, ChannelError, FrameReader};
use crate::protocol::{Config, Connection, Object, RemoteException};
use crate::service::{Expose, ObjectBuilder, Service};
use crate::stream::Stream;

/// The frame bound the targets use: small, so that a bomb costs the
/// fuzzer milliseconds, not seconds.
const MAX_FRAME: usize = 1 << 20;

/// Brine decoding: `decode` and `skip_value` agree on what is valid, and
/// whatever decodes encodes back to bytes that decode to the same value.
pub fn brine_decode(data: &[u8]) {
    let opts = DecodeOptions::default();
    let value = brine::decode_with(data, opts);
    let mut d = Decoder::with_options(data, opts);
    let skipped = d.skip_value().and_then(|()| d.finish());
    assert_eq!(value.is_ok(), skipped.is_ok(), "decode and skip_value disagree: {value:?} vs {skipped:?}");
    if let Ok(v) = value {
        let bytes = brine::encode(&v).unwrap_or_else(|e| panic!("a decoded value does not encode: {e}"));
        let again =
            brine::decode_with(&bytes, opts).unwrap_or_else(|e| panic!("an encoding does not decode: {e}"));
        // NaN != NaN, so compare encodings rather than values.
        assert_eq!(brine::encode(&again).ok(), Some(bytes), "encode(decode(encode(x))) changed");
    }
}

/// The frame reader (inflate included) over a stream carrying `data` and
/// then ending: every frame it returns is within the bound, and it ends
/// with an error rather than a hang.
pub fn frame_reader(data: &[u8]) {
    let (a, mut b) = Stream::pair();
    let config = ChannelConfig { max_frame_size: MAX_FRAME, ..ChannelConfig::default() };
    let mut r = FrameReader::new(a.reader, &config);
    if b.writer.write_all(data).is_err() {
        return;
    }
    (b.closer)();
    loop {
        match r.recv(Some(Duration::from_secs(5))) {
            Ok(frame) => assert!(frame.len() <= MAX_FRAME, "a frame past the bound came through"),
            Err(ChannelError::Timeout) => panic!("the reader waited on a closed stream"),
            Err(_) => return,
        }
    }
}

/// A small service with state, without anything that waits (no sleep, no
/// calls back into the peer, which never answers here).
fn fuzz_root() -> Arc<dyn Expose> {
    Service::builder("FuzzService")
        .method("echo", |x: Object| x)
        .method("add", |a: i64, b: i64| -> Result<i64, RemoteException> {
            a.checked_add(b).ok_or_else(|| RemoteException::builtin("OverflowError", "sum past 64 bits"))
        })
        .method("items", |n: i64| -> Result<Object, RemoteException> {
            let n = usize::try_from(n)
                .ok()
                .filter(|n| *n <= 64)
                .ok_or_else(|| RemoteException::value_error("0..=64 items"))?;
            Ok(Object::tuple((0..n as i64).map(Object::from).collect()))
        })
        .method("thing", || {
            ObjectBuilder::new("fuzz.Thing").attribute("x", 1).repr(|| "Thing()".into()).into_object()
        })
        .build()
}

/// Message parsing and dispatch into a Rust service: `data` is a sequence
/// of payloads, each preceded by its length as two big-endian bytes, sent
/// as frames to a connection serving `fuzz_root`. The connection must
/// serve or refuse every one of them without panicking or hanging.
pub fn dispatch(data: &[u8]) {
    let (a, mut b) = Stream::pair();
    let config =
        Config::default().with_timeout(Some(Duration::from_millis(1))).with_max_frame_size(MAX_FRAME);
    // One root for every input: it has no state, and building it per
    // input would be most of each run.
    static ROOT: std::sync::OnceLock<Arc<dyn Expose>> = std::sync::OnceLock::new();
    let conn = Connection::new(a, ROOT.get_or_init(fuzz_root).clone(), config);
    let mut rest = data;
    let mut frames = Vec::new();
    while rest.len() >= 2 {
        let n = (usize::from(rest[0]) << 8 | usize::from(rest[1])).min(rest.len() - 2);
        let (payload, tail) = rest[2..].split_at(n);
        frames.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        frames.push(0);
        frames.extend_from_slice(payload);
        frames.push(b'\n');
        rest = tail;
    }
    if b.writer.write_all(&frames).is_err() {
        return;
    }
    // The stream stays open (closing it would also close our replies'
    // direction): serving stops once nothing complete is buffered. Each
    // round serves one frame, so the loop is bounded by the input.
    for _ in 0..=data.len() / 2 + 1 {
        match conn.serve(Some(Duration::ZERO)) {
            Ok(true) => {}
            Ok(false) | Err(_) => break,
        }
    }
    conn.abort("fuzz input done");
}
