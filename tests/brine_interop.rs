//! Brine interop: rpyc-rs's codec against the real `rpyc.core.brine`.
//!
//! One Python subprocess (`examples/py/brine_echo.py`) per test loads each
//! value we encoded with `brine.load`, dumps it again with `brine.dump`, and
//! reports the bytes, `repr()` and type name. We assert that rpyc's bytes are
//! exactly ours (so rpyc reads our bytes as the value we meant, and we write
//! what rpyc writes), that our decoder reads rpyc's bytes back to the value,
//! and that our `Value::repr` and `type_name` match Python's. The values are
//! a few hundred from a seeded generator plus the encoding boundaries: lengths
//! 1/4/255/256, ints far outside i64, text beyond the BMP, NaN payloads.
//!
//! A frozenset with several members is the one exception to byte equality:
//! rpyc dumps `tuple(fs)`, in hash order, so only the member set must match.

mod common;

use common::{hex, unhex, PyProcess, XorShift64, IO_TIMEOUT};
use rpyc_rs::brine::{self, BrineError, Value};

/// What the Python side said about one request.
#[derive(Debug)]
enum Reply {
    Ok { dump: Vec<u8>, repr: String, type_name: String },
    Err { kind: String, message: String },
}

/// The real rpyc brine, behind `brine_echo.py`'s line protocol.
struct Oracle {
    py: PyProcess,
    version: String,
}

impl Oracle {
    fn start() -> Oracle {
        let py = PyProcess::spawn_script("brine_echo.py", &[]);
        let version = py.ready_line().trim_start_matches("READY rpyc ").to_owned();
        Oracle { py, version }
    }

    fn ask(&mut self, line: &str) -> Reply {
        self.py.send_line(line);
        let answer = self.py.read_line(IO_TIMEOUT);
        let mut words = answer.split(' ');
        match (words.next(), words.next(), words.next(), words.next()) {
            (Some("OK"), Some(dump), Some(repr), Some(type_name)) => Reply::Ok {
                dump: unhex(dump),
                repr: String::from_utf8(unhex(repr)).expect("repr is UTF-8"),
                type_name: type_name.to_owned(),
            },
            (Some("ERR"), Some(kind), Some(msg), None) => Reply::Err {
                kind: kind.to_owned(),
                message: String::from_utf8_lossy(&unhex(msg)).into_owned(),
            },
            _ => panic!("unexpected reply from brine_echo.py: {answer:?}"),
        }
    }

    /// `brine.dump(brine.load(bytes))`, with repr and type name.
    fn reload(&mut self, bytes: &[u8]) -> Reply {
        self.ask(&format!("D {}", hex(bytes)))
    }

    /// `brine.dump(eval(expr))`, with repr and type name.
    fn eval(&mut self, expr: &str) -> Reply {
        assert!(!expr.contains('\n'));
        self.ask(&format!("E {expr}"))
    }
}

// ---------------------------------------------------------------------------
// comparing values
// ---------------------------------------------------------------------------

/// Equality as the round trip must preserve it: floats by bits (NaN payload
/// and the sign of zero included), frozensets as sets (rpyc reorders them).
fn same(a: &Value, b: &Value) -> bool {
    use Value::*;
    let seq = |x: &[Value], y: &[Value]| x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q));
    match (a, b) {
        (Float(x), Float(y)) => x.to_bits() == y.to_bits(),
        (Complex(r1, i1), Complex(r2, i2)) => r1.to_bits() == r2.to_bits() && i1.to_bits() == i2.to_bits(),
        (Tuple(x), Tuple(y)) => seq(x, y),
        (Slice(x), Slice(y)) => seq(&x[..], &y[..]),
        (FrozenSet(x), FrozenSet(y)) => x.len() == y.len() && x.iter().all(|m| y.iter().any(|n| same(m, n))),
        (Float(_) | Complex(..) | Tuple(_) | Slice(_) | FrozenSet(_), _) => false,
        _ => a == b,
    }
}

/// True if `v` contains a frozenset whose member order rpyc may change.
fn has_reorderable_set(v: &Value) -> bool {
    match v {
        Value::FrozenSet(m) => m.len() > 1 || m.iter().any(has_reorderable_set),
        Value::Tuple(items) => items.iter().any(has_reorderable_set),
        Value::Slice(parts) => parts.iter().any(has_reorderable_set),
        _ => false,
    }
}

/// Characters whose `repr()` escaping our `repr_str` gets right: those that
/// are either printable for Python or a C0/C1 control. Python also escapes
/// the other non-printables (U+00A0, U+00AD, U+200B, U+2028, private use,
/// unassigned code points...), which needs Unicode tables `repr_str` does
/// not have; values with such text skip the repr comparison.
fn repr_safe_char(c: char) -> bool {
    let n = c as u32;
    matches!(n,
        0x00..=0x7f | 0x80..=0x9f | 0xa1..=0xac | 0xae..=0xff
        | 0x391..=0x3a1 | 0x3a3..=0x3a9 | 0x3b1..=0x3c9 | 0x410..=0x44f
        | 0x4e00..=0x9fff | 0x1d11e | 0x1f600..=0x1f64f | 0x20000..=0x2a6df)
}

fn repr_comparable(v: &Value) -> bool {
    match v {
        Value::Str(s) => s.chars().all(repr_safe_char),
        Value::FrozenSet(m) => m.len() <= 1 && m.iter().all(repr_comparable),
        Value::Tuple(items) => items.iter().all(repr_comparable),
        Value::Slice(parts) => parts.iter().all(repr_comparable),
        _ => true,
    }
}

/// A short description of a value for failure messages (some are 70 kB).
fn brief(v: &Value) -> String {
    let s = format!("{v:?}");
    if s.len() > 300 {
        format!(
            "{}... ({} chars of Debug)",
            &s[..s.char_indices().nth(300).map_or(s.len(), |(i, _)| i)],
            s.len()
        )
    } else {
        s
    }
}

/// Sends our encoding of `v` through rpyc and checks everything we can.
/// Returns a description of what went wrong, if anything.
fn check_against_rpyc(oracle: &mut Oracle, v: &Value) -> Option<String> {
    let ours = brine::encode(v).unwrap();
    let (dump, repr, type_name) = match oracle.reload(&ours) {
        Reply::Ok { dump, repr, type_name } => (dump, repr, type_name),
        Reply::Err { kind, message } => {
            return Some(format!("rpyc cannot load our bytes: {kind}: {message}"))
        }
    };
    let reorderable = has_reorderable_set(v);
    if !reorderable && dump != ours {
        return Some(format!(
            "rpyc re-dumps differently\n  ours: {}\n  rpyc: {}",
            hex(&ours[..ours.len().min(200)]),
            hex(&dump[..dump.len().min(200)])
        ));
    }
    if reorderable && dump.len() != ours.len() {
        return Some(format!("rpyc's dump has {} bytes, ours {}", dump.len(), ours.len()));
    }
    match brine::decode(&dump) {
        Ok(back) if same(&back, v) => {}
        Ok(back) => return Some(format!("rpyc's bytes decode to {}", brief(&back))),
        Err(e) => return Some(format!("we cannot decode rpyc's bytes: {e}")),
    }
    if type_name != v.type_name() {
        return Some(format!("type {type_name} in Python, {} here", v.type_name()));
    }
    if repr_comparable(v) && repr != v.repr() {
        let cut = |s: &str| s.chars().take(300).collect::<String>();
        return Some(format!("repr differs\n  python: {}\n  ours:   {}", cut(&repr), cut(&v.repr())));
    }
    None
}

fn check_all(oracle: &mut Oracle, values: &[Value]) {
    let mut failures = Vec::new();
    for (i, v) in values.iter().enumerate() {
        if let Some(why) = check_against_rpyc(oracle, v) {
            failures.push(format!("#{i} {}: {why}", brief(v)));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} values disagree with rpyc {}:\n{}",
        failures.len(),
        values.len(),
        oracle.version,
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------
// a seeded generator of values
// ---------------------------------------------------------------------------

struct Gen(XorShift64);

/// Floats that stress encoding and repr.
const SPECIAL_FLOATS: &[f64] = &[
    0.0,
    -0.0,
    1.0,
    -2.5,
    0.1,
    1e16,
    1e15,
    123456.789,
    1.5e-5,
    1e-4,
    5e-324,
    2.2250738585072014e-308,
    f64::MAX,
    f64::MIN,
    f64::EPSILON,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::NAN,
];

/// Ranges to draw characters from: ASCII (controls included), Latin-1,
/// Greek, Cyrillic, CJK, and beyond the BMP (emoji, a musical symbol, CJK
/// extension B), plus "wild" picks anywhere in Unicode.
const CHAR_RANGES: &[(u32, u32)] = &[
    (0x20, 0x7e),
    (0x00, 0x1f),
    (0x7f, 0xff),
    (0x391, 0x3c9),
    (0x410, 0x44f),
    (0x4e00, 0x9fff),
    (0x1f600, 0x1f64f),
    (0x1d11e, 0x1d11e),
    (0x20000, 0x2a6df),
];

impl Gen {
    fn new(seed: u64) -> Gen {
        Gen(XorShift64::new(seed))
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.0.below(items.len() as u64) as usize]
    }

    fn len(&mut self) -> usize {
        // The boundaries between brine's forms, and some ordinary sizes.
        match self.0.below(10) {
            0..=3 => *self.pick(&[0, 1, 2, 3, 4, 5, 254, 255, 256, 257]),
            4..=8 => self.0.below(40) as usize,
            _ => self.0.below(600) as usize,
        }
    }

    fn char(&mut self) -> char {
        if self.0.one_in(20) {
            // Anywhere: private use, unassigned, astral...
            loop {
                if let Some(c) = char::from_u32(self.0.below(0x11_0000) as u32) {
                    return c;
                }
            }
        }
        let &(lo, hi) = self.pick(CHAR_RANGES);
        let n = lo + self.0.below((hi - lo + 1) as u64) as u32;
        char::from_u32(n).unwrap_or('?')
    }

    fn string(&mut self) -> String {
        let n = self.len();
        (0..n).map(|_| self.char()).collect()
    }

    fn float(&mut self) -> f64 {
        match self.0.below(4) {
            0 => *self.pick(SPECIAL_FLOATS),
            1 => f64::from_bits(self.0.next_u64()),
            2 => (self.0.next_u64() as i64 >> self.0.below(60)) as f64 / 10f64.powi(self.0.below(12) as i32),
            _ => (self.0.next_u64() >> 11) as f64 * f64::EPSILON * 2f64.powi(self.0.below(200) as i32 - 100),
        }
    }

    fn int(&mut self) -> Value {
        match self.0.below(5) {
            0 => Value::Int(self.0.below(230) as i64 - 60),
            1 => Value::Int((self.0.next_u64() as i64) >> self.0.below(64)),
            2 => Value::Int(*self.pick(&[i64::MIN, i64::MAX, -49, -48, 159, 160, 255, 256, -1])),
            _ => {
                // Far outside i64: up to 600 digits (INT_L4 past 255).
                let digits = 19 + self.0.below(600) as usize;
                let mut s = String::new();
                if self.0.one_in(2) {
                    s.push('-');
                }
                s.push(char::from(b'1' + self.0.below(9) as u8));
                for _ in 1..digits {
                    s.push(char::from(b'0' + self.0.below(10) as u8));
                }
                Value::int(s.parse().unwrap())
            }
        }
    }

    /// A value Python can put in a frozenset without it colliding with
    /// another member: ints, strs, bytes and tuples of those (no bools or
    /// floats, which equal ints in Python: `frozenset({1, True, 1.0})` has
    /// one member).
    fn hashable(&mut self, depth: u32) -> Value {
        match self.0.below(if depth > 0 { 4 } else { 3 }) {
            0 => self.int(),
            1 => Value::Str(self.string()),
            2 => {
                let n = self.0.below(12) as usize;
                Value::Bytes(self.0.bytes(n))
            }
            _ => Value::Tuple((0..self.0.below(4)).map(|_| self.hashable(depth - 1)).collect()),
        }
    }

    fn value(&mut self, depth: u32) -> Value {
        let compound = depth > 0 && self.0.below(10) < 3;
        if compound {
            return match self.0.below(6) {
                0..=2 => {
                    let n = if self.0.one_in(4) { self.len() } else { self.0.below(7) as usize };
                    Value::Tuple((0..n).map(|_| self.value(depth - 1)).collect())
                }
                3 | 4 => {
                    let n = self.0.below(6) as usize;
                    let mut members: Vec<Value> = Vec::new();
                    while members.len() < n {
                        let m = self.hashable(2);
                        if !members.contains(&m) {
                            members.push(m);
                        }
                    }
                    Value::FrozenSet(members)
                }
                _ => Value::slice(self.value(depth - 1), self.value(depth - 1), self.value(depth - 1)),
            };
        }
        match self.0.below(12) {
            0 => Value::None,
            1 => Value::NotImplemented,
            2 => Value::Ellipsis,
            3 => Value::Bool(self.0.one_in(2)),
            4 | 5 => self.int(),
            6 => Value::Float(self.float()),
            7 => Value::Complex(self.float(), self.float()),
            8 | 9 => {
                let n = self.len();
                Value::Bytes(self.0.bytes(n))
            }
            _ => Value::Str(self.string()),
        }
    }
}

// ---------------------------------------------------------------------------
// tests
// ---------------------------------------------------------------------------

#[test]
fn seeded_random_values_match_rpyc_byte_for_byte() {
    let mut oracle = Oracle::start();
    let mut gen = Gen::new(0x5eed_b41e);
    let values: Vec<Value> = (0..400).map(|_| gen.value(4)).collect();
    // The generator must actually cover what this test claims to cover.
    let encoded: Vec<Vec<u8>> = values.iter().map(|v| brine::encode(v).unwrap()).collect();
    let all = encoded.concat();
    for (tag, name) in [
        (0x0f, "bytes L4"),
        (0x15, "tuple L4"),
        (0x16, "int L1"),
        (0x17, "int L4"),
        (0x19, "slice"),
        (0x1a, "frozenset"),
        (0x1b, "complex"),
    ] {
        assert!(all.contains(&tag), "the seeded values never use {name} (0x{tag:02x})");
    }
    assert!(values.iter().any(has_reorderable_set), "no multi-member frozenset generated");
    check_all(&mut oracle, &values);
}

#[test]
fn boundary_values_match_rpyc() {
    let mut oracle = Oracle::start();
    let big = |s: &str| Value::int(s.parse().unwrap());
    let mut values = vec![
        Value::None,
        Value::NotImplemented,
        Value::Ellipsis,
        Value::Bool(true),
        Value::Bool(false),
        Value::Tuple(vec![]),
        Value::Bytes(vec![]),
        Value::from(""),
        Value::FrozenSet(vec![]),
        Value::slice(Value::None, Value::None, Value::None),
    ];
    // Ints: the one-byte range, i64's edges, and text lengths 1/4/255/256.
    for n in [-49i64, -48, -1, 0, 159, 160, 1000, i64::MIN, i64::MIN + 1, i64::MAX] {
        values.push(Value::Int(n));
    }
    for s in [
        "9223372036854775808",
        "-9223372036854775809",
        "18446744073709551616",
        "-170141183460469231731687303715884105728",
    ] {
        values.push(big(s));
    }
    for digits in [254usize, 255, 256, 1000, 4300] {
        let text = format!("1{}", "0".repeat(digits - 1));
        values.push(big(&text));
        values.push(big(&format!("-{text}")));
    }
    // bytes, str (in UTF-8 bytes) and tuples at each length boundary.
    for n in [1usize, 2, 3, 4, 5, 254, 255, 256, 257, 65535, 65536, 70000] {
        values.push(Value::Bytes((0..n).map(|i| (i * 31 % 256) as u8).collect()));
        values.push(Value::Str("a".repeat(n)));
    }
    for n in [1usize, 4, 5, 255, 256, 300] {
        values.push(Value::Tuple((0..n).map(|i| Value::Int(i as i64 - 50)).collect()));
    }
    // Multi-byte text whose UTF-8 length sits on 255/256: é is 2 bytes,
    // 🌍 is 4 (outside the BMP, a surrogate pair in UTF-16).
    values.push(Value::Str(format!("{}a", "é".repeat(127)))); // 255 bytes
    values.push(Value::Str("é".repeat(128))); // 256 bytes
    values.push(Value::Str("🌍".repeat(64))); // 256 bytes
    values.push(Value::Str(format!("{}abc", "🌍".repeat(63)))); // 255 bytes
    values.push(Value::Str("𝄞 𠀀 😀 \u{10ffff}".into()));
    values.push(Value::Str("quote ' \" \\ \n\t\r\0 \u{7f}\u{80}\u{9f}".into()));
    for x in SPECIAL_FLOATS {
        values.push(Value::Float(*x));
    }
    // NaN payloads and signs survive both ways.
    for bits in
        [0x7ff8_0000_0000_0001u64, 0xfff8_0000_0000_0000, 0x7ff0_0000_0000_0001, 0x8000_0000_0000_0001]
    {
        values.push(Value::Float(f64::from_bits(bits)));
    }
    for (re, im) in
        [(0.0, 2.0), (-0.0, 2.0), (1.0, -2.0), (0.0, -0.0), (1e16, f64::NAN), (f64::INFINITY, -1.5)]
    {
        values.push(Value::Complex(re, im));
    }
    values.push(Value::FrozenSet(vec![Value::from("one")]));
    values.push(Value::FrozenSet((0..300).map(Value::from).collect()));
    values.push(Value::slice(Value::from(1), Value::from(-1), Value::from(2)));
    values.push(Value::slice(Value::from("a"), Value::Tuple(vec![Value::None]), big("99999999999999999999")));
    // Deep nesting well inside what Python's recursion limit allows.
    let mut deep = Value::from("core");
    for _ in 0..200 {
        deep = Value::Tuple(vec![deep]);
    }
    values.push(deep);
    check_all(&mut oracle, &values);
}

#[test]
fn values_built_by_python_decode_and_reencode_identically() {
    // The other direction: rpyc dumps an object it built itself, we decode
    // it, and our encoding of what we decoded is rpyc's bytes again.
    let mut oracle = Oracle::start();
    let exprs = [
        "(7, 'he', None)",
        "tuple(range(-60, 300))",
        "10**400",
        "-(2**64)",
        "'\\U0001d11e' * 100",
        "'héllo wörld ' * 30",
        "bytes(range(256)) * 3",
        "(1.5+2j, -0.0, float('inf'), 1e-310)",
        "frozenset({42})",
        "frozenset({'a', 'b', 'c', 1, 2, 3})",
        "slice(None, 5, -1)",
        "((((((((((),),),),),),),),),)",
        "(NotImplemented, Ellipsis, True, False, b'', '', ())",
        "tuple(str(i) * i for i in range(20))",
    ];
    let mut failures = Vec::new();
    for expr in exprs {
        let Reply::Ok { dump, repr, type_name } = oracle.eval(expr) else {
            panic!("rpyc could not dump {expr}")
        };
        let v = match brine::decode(&dump) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{expr}: we cannot decode rpyc's dump: {e}"));
                continue;
            }
        };
        let ours = brine::encode(&v).unwrap();
        if has_reorderable_set(&v) {
            if ours.len() != dump.len() {
                failures.push(format!("{expr}: {} bytes from us, {} from rpyc", ours.len(), dump.len()));
            }
        } else if ours != dump {
            failures.push(format!("{expr}: re-encoded as {}, rpyc: {}", hex(&ours), hex(&dump)));
        }
        if type_name != v.type_name() {
            failures.push(format!("{expr}: type {type_name} vs {}", v.type_name()));
        }
        if repr_comparable(&v) && repr != v.repr() {
            failures.push(format!("{expr}: repr {repr:?} vs {:?}", v.repr()));
        }
    }
    assert!(failures.is_empty(), "rpyc {}:\n{}", oracle.version, failures.join("\n"));
}

#[test]
fn rpyc_knows_exactly_the_tags_we_accept() {
    // rpyc's loader knows the tags in its registry plus the small ints;
    // any other byte is not a tag for it. Ask it for that set, as a brine
    // tuple of ints, and compare with the bytes our decoder refuses as tags.
    let mut oracle = Oracle::start();
    let reply = oracle.eval(
        "tuple(sorted(__import__('rpyc.core.brine', fromlist=['x'])._load_registry.keys() \
         | __import__('rpyc.core.brine', fromlist=['x']).IMM_INTS_LOADER.keys()))",
    );
    let Reply::Ok { dump, .. } = reply else { panic!("{reply:?}") };
    let known: Vec<u8> = brine::decode(&dump)
        .unwrap()
        .as_tuple()
        .unwrap()
        .iter()
        .map(|v| match v {
            Value::Bytes(b) if b.len() == 1 => b[0],
            other => panic!("not a one-byte tag: {other:?}"),
        })
        .collect();
    let ours: Vec<u8> =
        (0..=255u8).filter(|t| !matches!(brine::decode(&[*t]), Err(BrineError::InvalidTag { .. }))).collect();
    assert_eq!(ours, known, "tags we accept vs tags rpyc {} loads", oracle.version);
    assert_eq!(known.len(), 256 - 22);
}
