//! Prefixed random ids (`proj_…`, `model_…`): the prefix says what a thing is, the rest is random.

use rand::Rng;

const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// A new id `prefix_` followed by 20 random base-36 characters (about 103 bits).
pub fn new_id(prefix: &str) -> String {
    let mut rng = rand::rng();
    let mut s = String::with_capacity(prefix.len() + 21);
    s.push_str(prefix);
    s.push('_');
    for _ in 0..20 {
        s.push(ALPHABET[rng.random_range(0..ALPHABET.len())] as char);
    }
    s
}

/// An id that sorts by creation: the time in milliseconds, a per-process counter (so ids made in the
/// same millisecond keep their order), then randomness. Used for timeline entries, which are listed
/// by time and then id.
pub fn new_sortable_id(prefix: &str, at_ms: i64) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    fn push_base36(out: &mut String, mut n: u64, width: usize) {
        let mut digits = [b'0'; 13];
        for slot in digits[..width].iter_mut().rev() {
            *slot = ALPHABET[(n % 36) as usize];
            n /= 36;
        }
        out.extend(digits[..width].iter().map(|&b| b as char));
    }
    let count = COUNTER.fetch_add(1, Ordering::Relaxed) as u64 % (36 * 36 * 36 * 36);
    let mut out = String::with_capacity(prefix.len() + 22);
    out.push_str(prefix);
    out.push('_');
    push_base36(&mut out, at_ms.max(0) as u64, 9);
    push_base36(&mut out, count, 4);
    let mut rng = rand::rng();
    for _ in 0..8 {
        out.push(ALPHABET[rng.random_range(0..ALPHABET.len())] as char);
    }
    out
}

/// Random secret material for API keys: 40 base-36 characters (about 206 bits).
pub fn new_secret() -> String {
    let mut rng = rand::rng();
    (0..40)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

pub const ORG: &str = "org";
pub const PROJECT: &str = "proj";
pub const DATASET: &str = "ds";
pub const DATASET_VERSION: &str = "dsv";
pub const MODEL: &str = "model";
pub const KEY: &str = "key";
pub const JOB: &str = "job";
pub const EVENT: &str = "evt";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sortable_ids_keep_creation_order_within_a_millisecond() {
        let ids: Vec<String> = (0..100)
            .map(|_| new_sortable_id(EVENT, 1_795_600_000_000))
            .collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        assert!(new_sortable_id(EVENT, 5) < new_sortable_id(EVENT, 6));
    }

    #[test]
    fn ids_carry_prefix_and_differ() {
        let a = new_id(MODEL);
        let b = new_id(MODEL);
        assert!(a.starts_with("model_"));
        assert_eq!(a.len(), "model_".len() + 20);
        assert_ne!(a, b);
    }
}
