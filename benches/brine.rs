//! Criterion benchmarks of the brine codec on the Rust side, on the two
//! payloads that `ci/bench` also times from Python against rpyc:
//!
//! * `triples`: a tuple of 1000 `(int, str, float)` tuples, the shape of a
//!   typical bulk result;
//! * `mixed`: one small tuple holding every brine type once (the kind of
//!   value an RPyC request carries).
//!
//! For each: `encode` ([`Value`] to bytes), `decode` (bytes to [`Value`]) and
//! `tokens` (walking the pull [`Decoder`] without building anything, the
//! floor under both `decode` and the Python `load`).
//!
//! Run with `cargo bench --bench brine` (add `-- --quick` for a short run).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rpyc_rs::brine::{decode, encode, encode_into, BrineError, Decoder, Token, Value};

/// `tuple((i, f"item-{i}", i * 0.5) for i in range(1000))`, as in ci/bench_brine.py.
fn triples() -> Value {
    Value::Tuple(
        (0..1000i64)
            .map(|i| {
                Value::Tuple(vec![
                    Value::from(i),
                    Value::from(format!("item-{i}")),
                    Value::Float(i as f64 * 0.5),
                ])
            })
            .collect(),
    )
}

/// One value of every brine type, as in ci/bench_brine.py.
fn mixed() -> Value {
    Value::Tuple(vec![
        Value::None,
        Value::NotImplemented,
        Value::Ellipsis,
        Value::Bool(true),
        Value::Bool(false),
        Value::from(0),
        Value::from(-48),
        Value::from(159),
        Value::from(160),
        Value::from(-49),
        Value::from(1u128 << 100),
        Value::Float(1.5),
        Value::Float(f64::NAN),
        Value::Complex(1.0, 2.0),
        Value::Bytes(Vec::new()),
        Value::Bytes(b"abc".to_vec()),
        Value::Bytes(vec![b'x'; 300]),
        Value::from(""),
        Value::from("héllo"),
        Value::from("🌍🌍🌍"),
        Value::Tuple(Vec::new()),
        Value::Tuple(vec![Value::from(1), Value::from(2)]),
        Value::FrozenSet(vec![Value::from(1), Value::from(2), Value::from(3)]),
        Value::slice(Value::from(1), Value::None, Value::from(2)),
    ])
}

/// Reads one value's tokens, descending into compounds, and counts them.
fn walk(dec: &mut Decoder<'_>) -> Result<usize, BrineError> {
    let items = match dec.next_token()? {
        Token::Tuple(n) | Token::FrozenSet(n) => n,
        Token::Slice => 3,
        _ => return Ok(1),
    };
    dec.enter()?;
    let mut count = 1;
    for _ in 0..items {
        count += walk(dec)?;
    }
    dec.leave();
    Ok(count)
}

fn bench_payload(c: &mut Criterion, name: &str, value: &Value) {
    let bytes = encode(value).expect("the payload encodes");
    let mut group = c.benchmark_group(format!("brine/{name}"));
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("encode", |b| {
        // A reused buffer, as the protocol engine writes messages.
        let mut out = Vec::with_capacity(bytes.len());
        b.iter(|| {
            out.clear();
            encode_into(black_box(value), &mut out).expect("encodes");
            black_box(out.len())
        })
    });
    group.bench_function("decode", |b| b.iter(|| decode(black_box(&bytes)).expect("decodes")));
    group.bench_function("tokens", |b| {
        b.iter(|| {
            let mut dec = Decoder::new(black_box(&bytes));
            walk(&mut dec).expect("decodes")
        })
    });
    group.finish();
}

fn brine(c: &mut Criterion) {
    bench_payload(c, "triples", &triples());
    bench_payload(c, "mixed", &mixed());
}

criterion_group!(benches, brine);
criterion_main!(benches);
