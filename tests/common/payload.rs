//! Reproducible test data: the [`XorShift64`] generator and
//! [`gen_payload`], which build the same bytes as
//! `examples/py/channel_peer.py` does for the same kind, size and seed.

/// A tiny deterministic PRNG (xorshift64), so tests are reproducible
/// without extra crates, and payloads can be rebuilt on the Python side.
#[derive(Debug, Clone)]
pub struct XorShift64(u64);

impl XorShift64 {
    /// A generator; seed 0 is replaced by a fixed non-zero constant (as in
    /// `channel_peer.py`), since xorshift would stay at 0 forever.
    pub fn new(seed: u64) -> Self {
        XorShift64(if seed == 0 { 0x9E37_79B9_7F4A_7C15 } else { seed })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `0..n` (`n > 0`); the slight modulo bias does not matter here.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True with probability `1/n`.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    /// `n` random bytes: each step's 8 bytes little-endian, as
    /// `channel_peer.py`'s `generate("random", ...)` does.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(n);
        out
    }
}

/// The payloads `channel_peer.py` builds for `GEN <kind> <size> <seed>`:
/// `text` compresses well, `random` hardly at all.
pub fn gen_payload(kind: &str, size: usize, seed: u64) -> Vec<u8> {
    match kind {
        "text" => {
            let mut out = Vec::with_capacity(size + 64);
            let mut i = 0u64;
            while out.len() < size {
                out.extend_from_slice(format!("rpyc-rs line {i:08} seed {seed}\n").as_bytes());
                i += 1;
            }
            out.truncate(size);
            out
        }
        "random" => XorShift64::new(seed).bytes(size),
        other => panic!("unknown payload kind {other:?}"),
    }
}
