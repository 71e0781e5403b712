//! The `rpyc-rs` command-line tool.
fn main() {}
