//! Replays the fuzzers' committed corpus as a plain test: every seed in
//! `fuzz/seeds/<target>/` and every crash the fuzzers once found
//! (`fuzz/regressions/<target>/`) goes through the same function the
//! libFuzzer target calls (`rpyc_rs::fuzzing`), so a fix stays fixed on
//! machines without cargo-fuzz. (`python_brine` is replayed by
//! `tests/python/test_fuzz_seeds.py`, through the extension.)

use std::path::PathBuf;

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut out = Vec::new();
    for dir in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else { continue };
        for e in entries.flatten() {
            let data = std::fs::read(e.path()).expect("read a corpus file");
            out.push((e.path(), data));
        }
    }
    out.sort();
    out
}

fn replay(target: &str, run: fn(&[u8])) {
    let cases = inputs(target);
    assert!(!cases.is_empty(), "no corpus for {target}");
    for (path, data) in cases {
        if std::panic::catch_unwind(|| run(&data)).is_err() {
            panic!("{target}: {} fails", path.display());
        }
    }
}

#[test]
fn brine_decode_corpus() {
    replay("brine_decode", rpyc_rs::fuzzing::brine_decode);
}

#[test]
fn frame_reader_corpus() {
    replay("frame_reader", rpyc_rs::fuzzing::frame_reader);
}

#[test]
fn dispatch_corpus() {
    replay("dispatch", rpyc_rs::fuzzing::dispatch);
}
