//! Hostile input at the wire layers: brine values and channel frames that a
//! broken or malicious peer could send.
//!
//! Every case asserts the *specific* error (variant and fields), not just
//! "some error": a caller (the protocol engine, a log reader) relies on the
//! variant to tell a truncated message from a lying length or a bad tag.
//! The brine cases are a table; the frame cases run over both an in-memory
//! [`Stream::pair`] and a real TCP connection on 127.0.0.1, since a socket
//! delivers bytes in its own chunking and closes in its own way. Nothing
//! here may panic, hang, or allocate what a length field merely claims.
//!
//! The cases are in `wire_hostile/`, by topic: `brine_table.rs` (the table
//! of malformed brine and its exact errors), `brine.rs` (tags, the depth
//! and int-digits limits, lenient forms, the pull decoder), `memory.rs`
//! (length claims that must not reserve memory, brine and frames), and
//! `frames.rs` (channel frames over both transports). [`cat`], shared by
//! all of them, is here.

#[path = "wire_hostile/brine.rs"]
mod brine;
#[path = "wire_hostile/brine_table.rs"]
mod brine_table;
#[path = "wire_hostile/frames.rs"]
mod frames;
#[path = "wire_hostile/memory.rs"]
mod memory;

/// Concatenates byte pieces, for readable test inputs.
fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}
