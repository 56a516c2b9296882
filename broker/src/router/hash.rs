//! The hash function of the tries' child maps and of the session map: keys chosen by clients.
//!
//! std's SipHash-1-3 was about 30% of the instructions of a whole match (a wide level costs a
//! hash per lookup), so the child maps use a keyed folded-multiply hash instead, the
//! construction of `foldhash` and of `ahash`'s fallback: each 16-byte block is split in two
//! words, each word is combined with a secret, and the 128-bit product of the two is folded
//! to 64 bits. The secrets come from std's `RandomState` (OS randomness), per map.
//!
//! Keys are client-chosen topic levels, so a predictable hash would let a client fill one
//! node (the root, say) with colliding levels and slow every publish. Without the secrets a
//! client cannot aim for collisions; this is the DoS resistance of `foldhash` — adequate
//! against blind flooding, not a cryptographic guarantee. If the workspace adopts `foldhash`,
//! its `fast::RandomState` can replace [`KeyedHashBuilder`] one for one.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

/// An arbitrary odd constant (the fractional digits of pi), mixed into the secrets so that a
/// zero secret still multiplies by something large.
const PI: [u64; 2] = [0x243f_6a88_85a3_08d3, 0x1319_8a2e_0370_7344];

#[inline]
fn folded_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// Reads up to 16 bytes as two words (zero-padded), without a loop for the short keys that
/// are the common case.
#[inline]
fn read_small(b: &[u8]) -> (u64, u64) {
    let n = b.len();
    let word = |s: &[u8]| {
        let mut w = [0; 8];
        w[..s.len()].copy_from_slice(s);
        u64::from_le_bytes(w)
    };
    match n {
        0 => (0, 0),
        1..=3 => (
            u64::from(b[0]) | u64::from(b[n / 2]) << 8 | u64::from(b[n - 1]) << 16,
            0,
        ),
        4..=8 => {
            let lo = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            let hi = u32::from_le_bytes([b[n - 4], b[n - 3], b[n - 2], b[n - 1]]);
            (u64::from(lo), u64::from(hi))
        }
        _ => (word(&b[..8]), word(&b[n - 8..])),
    }
}

/// Builds [`KeyedHasher`]s sharing one pair of random secrets.
#[derive(Clone, Debug)]
pub struct KeyedHashBuilder {
    seeds: [u64; 2],
}

impl Default for KeyedHashBuilder {
    fn default() -> Self {
        let random = RandomState::new();
        KeyedHashBuilder {
            seeds: [
                random.hash_one(PI[0]) ^ PI[0],
                random.hash_one(PI[1]) ^ PI[1],
            ],
        }
    }
}

impl BuildHasher for KeyedHashBuilder {
    type Hasher = KeyedHasher;

    #[inline]
    fn build_hasher(&self) -> KeyedHasher {
        KeyedHasher {
            acc: self.seeds[0],
            key: self.seeds[1],
        }
    }
}

/// State of one hash computation; see the module docs.
pub struct KeyedHasher {
    acc: u64,
    key: u64,
}

impl Hasher for KeyedHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        while rest.len() > 16 {
            let (block, tail) = rest.split_at(16);
            let (a, b) = read_small(block);
            self.acc = folded_mul(a ^ self.acc, b ^ self.key);
            rest = tail;
        }
        // The length goes into the last block, so that the overlapping reads of `read_small`
        // (which see some bytes twice) cannot make two lengths collide.
        let (a, b) = read_small(rest);
        self.acc = folded_mul(
            a ^ self.acc,
            b ^ self.key ^ (bytes.len() as u64).rotate_left(32),
        );
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        // `<[u8] as Hash>` writes the length before the bytes; `write` already covers it.
        self.acc ^= n as u64;
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn hash(b: &KeyedHashBuilder, s: &[u8]) -> u64 {
        b.hash_one(s)
    }

    #[test]
    fn equal_keys_hash_equal_and_builders_differ() {
        let b = KeyedHashBuilder::default();
        assert_eq!(hash(&b, b"device"), hash(&b, b"device"));
        assert_eq!(hash(&b, b"device"), b.clone().hash_one(&b"device"[..]));
        let other = KeyedHashBuilder::default();
        assert_ne!(hash(&b, b"device"), hash(&other, b"device"));
    }

    #[test]
    fn no_collisions_among_many_short_and_long_levels() {
        let b = KeyedHashBuilder::default();
        let mut seen = HashSet::new();
        let mut levels: Vec<Vec<u8>> = (0..100_000).map(|i| i.to_string().into_bytes()).collect();
        levels.extend((0..40).map(|n| vec![b'a'; n]));
        levels.extend((1..40).map(|n| vec![0u8; n]));
        levels.extend((0..2000).map(|i| format!("{i:0>30}").into_bytes()));
        for level in &levels {
            assert!(seen.insert(hash(&b, level)), "{level:?}");
        }
    }

    #[test]
    fn low_bits_are_spread() {
        // hashbrown indexes buckets by the low bits: sequential keys must not cluster there.
        let b = KeyedHashBuilder::default();
        let mut buckets = [0u32; 64];
        for i in 0..64_000 {
            buckets[(hash(&b, i.to_string().as_bytes()) & 63) as usize] += 1;
        }
        assert!(
            buckets.iter().all(|&n| (800..1200).contains(&n)),
            "{buckets:?}"
        );
    }
}
