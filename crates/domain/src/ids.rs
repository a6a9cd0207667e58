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
    fn ids_carry_prefix_and_differ() {
        let a = new_id(MODEL);
        let b = new_id(MODEL);
        assert!(a.starts_with("model_"));
        assert_eq!(a.len(), "model_".len() + 20);
        assert_ne!(a, b);
    }
}
