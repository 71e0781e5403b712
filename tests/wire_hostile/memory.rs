//! Length fields that pass the "length <= bytes present" check and could
//! still make a decoder reserve far more than it was sent: nested brine
//! tuples and a frame header claiming nearly `max_frame_size`, measured by
//! this process's peak memory (Linux; skipped elsewhere). "This file" in
//! its comment is the whole `wire_hostile` test binary, whose other tests
//! stay small.

use std::time::Duration;

use rpyc_rs::brine::{self, tag, BrineError};
use rpyc_rs::channel::{Channel, ChannelConfig, ChannelError, DEFAULT_MAX_FRAME_SIZE};
use rpyc_rs::stream::Stream;

use super::cat;

/// Peak resident and virtual memory of this process, in bytes, from
/// /proc/self/status (Linux); `None` elsewhere.
fn peak_memory() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
    };
    Some((field("VmHWM:")?, field("VmPeak:")?))
}

#[test]
fn length_claims_do_not_reserve_memory() {
    // Two attacks that pass the "length <= bytes present" check and can
    // still make a decoder reserve far more than it was sent:
    //
    // 1. brine: each of 500 nested tuples claims as many items as there are
    //    bytes left (1 MiB). Reserving `claimed * size_of::<Value>()` at
    //    every level would reserve ~16 GiB of address space for a 1 MiB
    //    message (and abort the process where memory is not overcommitted).
    // 2. frames: a 5-byte header claiming a payload just under
    //    max_frame_size (default 1 GiB). Sizing the read buffer for the claim
    //    before the bytes arrive would touch 1 GiB for 5 bytes received.
    //
    // Both run in this one test, one after the other, so that the peak
    // counters measure them alone (other tests in this file stay small).
    let Some((rss0, virt0)) = peak_memory() else { return };

    let size = 1 << 20;
    let levels = 500;
    let mut msg = Vec::with_capacity(size);
    for _ in 0..levels {
        msg.push(tag::TUPLE_L4);
        let left = (size - msg.len() - 4) as u32;
        msg.extend_from_slice(&left.to_be_bytes());
    }
    msg.resize(size, tag::NONE);
    // The innermost tuple takes all the Nones; its parent then runs dry.
    match brine::decode(&msg) {
        Err(BrineError::Truncated { offset, needed: 1 }) => assert_eq!(offset, size),
        other => panic!("{other:?}"),
    }
    let (_, virt1) = peak_memory().unwrap();
    assert!(
        virt1 - virt0 < 4 << 30,
        "decoding a 1 MiB message raised peak virtual memory by {} MiB",
        (virt1 - virt0) >> 20
    );

    let (mut raw, other) = Stream::pair();
    let mut ch = Channel::new(other, &ChannelConfig::default());
    let claim = DEFAULT_MAX_FRAME_SIZE as u32 - 1;
    raw.writer.write_all(&cat(&[&claim.to_be_bytes(), &[0], b"just a few bytes"])).unwrap();
    assert!(matches!(ch.recv(Some(Duration::from_millis(100))), Err(ChannelError::Timeout)));
    let (rss1, _) = peak_memory().unwrap();
    assert!(
        rss1 - rss0 < 256 << 20,
        "a 5-byte header claiming {claim} bytes raised peak RSS by {} MiB",
        (rss1 - rss0) >> 20
    );
}
