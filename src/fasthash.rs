//! A fast, unkeyed hasher for the hot maps whose keys a peer cannot choose:
//! the engine's pending requests (keyed by our own sequence numbers), the
//! Python object table's wire keys (the bytes of id packs we sent) and its
//! per-class facts (keyed by class addresses).
//!
//! std's default SipHash resists hash flooding, which matters when a peer
//! decides what goes into a map; here it only cost time (a SipHash of a
//! 35-byte id pack was about a tenth of serving a DEL). A peer's bytes are
//! only ever looked up in these maps, never inserted, so they cannot build
//! the long collision chains flooding needs. Maps a peer fills keep SipHash.
//!
//! The mixing is FxHash's (rustc's own hasher): each 8-byte word is folded
//! in with a rotate, an xor and a multiply.

use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` hasher builder for [`FastHasher`].
pub(crate) type FastBuild = BuildHasherDefault<FastHasher>;

/// A `HashMap` with [`FastHasher`], for keys a peer cannot choose.
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, FastBuild>;

/// FxHash: one rotate, xor and multiply per word.
#[derive(Default, Clone, Copy)]
pub(crate) struct FastHasher(u64);

/// FxHash's multiplier (an odd constant with well-spread bits).
const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FastHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }

    #[inline]
    fn write_u8(&mut self, n: u8) {
        self.add(n as u64);
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.add(n as u64);
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    #[inline]
    fn write_i64(&mut self, n: i64) {
        self.add(n as u64);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_work_and_bytes_differing_anywhere_hash_apart() {
        let mut m: FastMap<Box<[u8]>, u32> = FastMap::default();
        for i in 0..1000u32 {
            m.insert(format!("builtins.method/{i}").into_bytes().into(), i);
        }
        for i in 0..1000u32 {
            assert_eq!(m.get(format!("builtins.method/{i}").as_bytes()), Some(&i));
        }
        assert_eq!(m.get(&b"builtins.method/1000"[..]), None);
        let hash = |b: &[u8]| {
            let mut h = FastHasher::default();
            h.write(b);
            h.finish()
        };
        // A byte more, or one byte different, changes the hash.
        assert_ne!(hash(b"abcdefgh"), hash(b"abcdefghi"));
        assert_ne!(hash(b"abc"), hash(b"abd"));
    }
}
