//! The compact form of a logged prediction's features.
//!
//! The features were most of a logged row as JSON text (a number such as `-0.13826430117118466`
//! takes 20 bytes as text and 8 as an `f64`), and on SQLite every byte is written twice, to the
//! write-ahead log and to the table. This form keeps the names and every JSON value exactly
//! (integers stay integers) in about half the space, is cheaper to write than formatting the
//! numbers, and can be read entry by entry without building a JSON object (the live drift sketches
//! fold it that way). It is made on the response path, so the row's allocations are freed by the
//! thread that made them. SQLite stores it as is; PostgreSQL stores the JSON text; readers accept
//! both.
//!
//! Layout: a version byte (1), then per feature: the name's length (one byte below 255, else 255
//! and a u32), the name (UTF-8), a tag and its payload: null, false, true (no payload); an `f64`,
//! `i64` or `u64` (8 bytes); a string, or any other value as JSON text (u32 length, bytes). Integers
//! are little-endian.

use serde_json::{Map, Number, Value};

const VERSION: u8 = 1;
const NULL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const F64: u8 = 3;
const I64: u8 = 4;
const U64: u8 = 5;
const STRING: u8 = 6;
const JSON: u8 = 7;
const LONG_NAME: u8 = 255;

/// One feature's value, borrowed from the encoded bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FeatureValue<'a> {
    Null,
    Bool(bool),
    F64(f64),
    I64(i64),
    U64(u64),
    String(&'a str),
    /// An array or object, as JSON text.
    Json(&'a str),
}

impl FeatureValue<'_> {
    /// The value as a number, if it is one.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            FeatureValue::F64(x) => Some(x),
            FeatureValue::I64(i) => Some(i as f64),
            FeatureValue::U64(u) => Some(u as f64),
            _ => None,
        }
    }

    pub fn to_json(&self) -> Value {
        match *self {
            FeatureValue::Null => Value::Null,
            FeatureValue::Bool(b) => Value::Bool(b),
            FeatureValue::F64(x) => Number::from_f64(x).map_or(Value::Null, Value::Number),
            FeatureValue::I64(i) => Value::Number(i.into()),
            FeatureValue::U64(u) => Value::Number(u.into()),
            FeatureValue::String(s) => Value::String(s.to_string()),
            FeatureValue::Json(j) => serde_json::from_str(j).unwrap_or(Value::Null),
        }
    }
}

/// A row of features in the compact form.
pub fn encode(features: &Map<String, Value>) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + features.len() * 16);
    out.push(VERSION);
    for (name, value) in features {
        match u8::try_from(name.len()) {
            Ok(len) if len < LONG_NAME => out.push(len),
            _ => {
                out.push(LONG_NAME);
                out.extend_from_slice(&(name.len() as u32).to_le_bytes());
            }
        }
        out.extend_from_slice(name.as_bytes());
        match value {
            Value::Null => out.push(NULL),
            Value::Bool(false) => out.push(FALSE),
            Value::Bool(true) => out.push(TRUE),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    out.push(I64);
                    out.extend_from_slice(&i.to_le_bytes());
                } else if let Some(u) = n.as_u64() {
                    out.push(U64);
                    out.extend_from_slice(&u.to_le_bytes());
                } else {
                    out.push(F64);
                    out.extend_from_slice(&n.as_f64().unwrap_or(f64::NAN).to_le_bytes());
                }
            }
            Value::String(s) => push_text(&mut out, STRING, s),
            other => push_text(&mut out, JSON, &other.to_string()),
        }
    }
    out
}

fn push_text(out: &mut Vec<u8>, tag: u8, s: &str) {
    out.push(tag);
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// The entries of an encoded row, in order. Malformed bytes end the iteration (see [`decode`]).
pub fn entries(bytes: &[u8]) -> impl Iterator<Item = (&str, FeatureValue<'_>)> {
    let mut rest = match bytes.split_first() {
        Some((&VERSION, rest)) => rest,
        _ => &[][..],
    };
    std::iter::from_fn(move || read_entry(&mut rest))
}

fn read_entry<'a>(rest: &mut &'a [u8]) -> Option<(&'a str, FeatureValue<'a>)> {
    let (&len, r) = rest.split_first()?;
    let (len, r) = if len == LONG_NAME {
        let (l, r) = r.split_first_chunk::<4>()?;
        (u32::from_le_bytes(*l) as usize, r)
    } else {
        (len as usize, r)
    };
    let (name, r) = r.split_at_checked(len)?;
    let (&tag, r) = r.split_first()?;
    let (value, r) = match tag {
        NULL => (FeatureValue::Null, r),
        FALSE => (FeatureValue::Bool(false), r),
        TRUE => (FeatureValue::Bool(true), r),
        F64 | I64 | U64 => {
            let (b, r) = r.split_first_chunk::<8>()?;
            let v = match tag {
                F64 => FeatureValue::F64(f64::from_le_bytes(*b)),
                I64 => FeatureValue::I64(i64::from_le_bytes(*b)),
                _ => FeatureValue::U64(u64::from_le_bytes(*b)),
            };
            (v, r)
        }
        STRING | JSON => {
            let (l, r) = r.split_first_chunk::<4>()?;
            let (text, r) = r.split_at_checked(u32::from_le_bytes(*l) as usize)?;
            let text = std::str::from_utf8(text).ok()?;
            let v = if tag == STRING {
                FeatureValue::String(text)
            } else {
                FeatureValue::Json(text)
            };
            (v, r)
        }
        _ => return None,
    };
    *rest = r;
    Some((std::str::from_utf8(name).ok()?, value))
}

/// The features of `bytes` as a JSON object, or `None` when they are not a whole row in this form.
pub fn decode(bytes: &[u8]) -> Option<Value> {
    let (&VERSION, mut rest) = bytes.split_first()? else {
        return None;
    };
    let mut map = Map::new();
    while !rest.is_empty() {
        let (name, value) = read_entry(&mut rest)?;
        if let FeatureValue::Json(j) = value {
            map.insert(name.to_string(), serde_json::from_str(j).ok()?);
        } else {
            map.insert(name.to_string(), value.to_json());
        }
    }
    Some(Value::Object(map))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_json_value_comes_back_exactly() {
        let row = serde_json::json!({
            "x": -0.13826430117118466, "n": 3, "big": u64::MAX, "neg": -7,
            "s": "München", "empty": "", "none": null, "yes": true, "no": false,
            "list": [1, "a"], "obj": {"k": 1.5}, "tiny": 5e-324,
        });
        let Value::Object(map) = &row else {
            unreachable!()
        };
        let b = encode(map);
        assert_eq!(decode(&b), Some(row.clone()));
        // Serialized the same way, so a client sees what it sent.
        assert_eq!(decode(&b).unwrap().to_string(), row.to_string());
        assert!(b.len() < row.to_string().len());
        let read: Vec<(&str, FeatureValue)> = entries(&b).collect();
        assert_eq!(read.len(), map.len());
        assert!(read.contains(&("x", FeatureValue::F64(-0.13826430117118466))));
        assert!(read.contains(&("n", FeatureValue::I64(3))));
        assert!(read.contains(&("s", FeatureValue::String("München"))));
        assert!(read.contains(&("list", FeatureValue::Json("[1,\"a\"]"))));
    }

    /// Rows of every kind of value, from a fixed-seed generator: each comes back exactly, and no
    /// truncation of its bytes reads as the whole row (a cut between entries is a shorter row).
    #[test]
    fn generated_rows_round_trip_and_truncations_are_refused() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..300 {
            let mut map = Map::new();
            for i in 0..(next() % 12) {
                let value = match next() % 8 {
                    0 => Value::Null,
                    1 => Value::Bool(next() % 2 == 0),
                    2 => Value::from(f64::from_bits(next() >> 2) - 1.0),
                    3 => Value::from(next() as i64),
                    4 => Value::from(next()),
                    5 => Value::from("é✓".repeat((next() % 5) as usize)),
                    6 => serde_json::json!([next() % 100, {"k": "v"}]),
                    _ => Value::from((next() % 1000) as f64 / 7.0),
                };
                let name = format!("{}{i}", "f".repeat((next() % 300) as usize));
                map.insert(name, value);
            }
            let b = encode(&map);
            assert_eq!(decode(&b), Some(Value::Object(map.clone())));
            for cut in 1..b.len() {
                let whole =
                    decode(&b[..cut]).is_some_and(|v| v.as_object().unwrap().len() == map.len());
                assert!(!whole, "a truncated row read as the whole row");
            }
        }
    }

    #[test]
    fn long_names_and_garbage() {
        let mut map = Map::new();
        map.insert("n".repeat(300), Value::from(1.5));
        map.insert("m".repeat(255), Value::from(2));
        let b = encode(&map);
        assert_eq!(decode(&b), Some(Value::Object(map)));
        assert_eq!(decode(b"{\"a\":1}"), None);
        assert_eq!(decode(&[VERSION, 1, b'a', F64, 0, 0]), None);
        assert_eq!(decode(&[VERSION, 1, b'a', 99]), None);
        assert_eq!(entries(&[VERSION, 1, b'a', 99]).count(), 0);
    }
}
