//! The compact form of a logged prediction's features on SQLite.
//!
//! The features were most of a logged row as JSON text (a number such as `-0.13826430117118466`
//! takes 20 bytes as text and 8 as an `f64`), and every byte is written twice, to the write-ahead
//! log and to the table. This form keeps the names and every JSON value exactly (integers stay
//! integers) in about half the space, and takes less work to write than formatting the numbers.
//! PostgreSQL keeps the JSON text; readers accept both.
//!
//! Layout: a version byte (1), then per feature: name length (u8), name (UTF-8), a tag and its
//! payload: null, false, true (no payload); an `f64`, `i64` or `u64` (8 bytes, little-endian); a
//! string (u32 length, bytes); any other value as JSON text (u32 length, bytes). A name longer than
//! 255 bytes makes the whole row fall back to JSON text.

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

/// How a row of features is stored: compact bytes, or JSON text when a name is too long.
pub(crate) enum Encoded {
    Bytes(Vec<u8>),
    Json(String),
}

pub(crate) fn encode(features: &Map<String, Value>) -> Encoded {
    let mut out = Vec::with_capacity(1 + features.len() * 12);
    out.push(VERSION);
    for (name, value) in features {
        let Ok(len) = u8::try_from(name.len()) else {
            return Encoded::Json(serde_json::to_string(features).unwrap_or_default());
        };
        out.push(len);
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
    Encoded::Bytes(out)
}

fn push_text(out: &mut Vec<u8>, tag: u8, s: &str) {
    out.push(tag);
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// The features of `bytes` as a JSON object, or `None` when they are not in this form.
pub(crate) fn decode(bytes: &[u8]) -> Option<Value> {
    let (&version, mut rest) = bytes.split_first()?;
    if version != VERSION {
        return None;
    }
    let mut map = Map::new();
    while let Some((&len, r)) = rest.split_first() {
        let (name, r) = r.split_at_checked(len as usize)?;
        let (&tag, r) = r.split_first()?;
        let (value, r) = match tag {
            NULL => (Value::Null, r),
            FALSE => (Value::Bool(false), r),
            TRUE => (Value::Bool(true), r),
            F64 | I64 | U64 => {
                let (b, r) = r.split_first_chunk::<8>()?;
                let n = match tag {
                    F64 => {
                        Number::from_f64(f64::from_le_bytes(*b)).map_or(Value::Null, Value::Number)
                    }
                    I64 => Value::Number(i64::from_le_bytes(*b).into()),
                    _ => Value::Number(u64::from_le_bytes(*b).into()),
                };
                (n, r)
            }
            STRING | JSON => {
                let (l, r) = r.split_first_chunk::<4>()?;
                let (text, r) = r.split_at_checked(u32::from_le_bytes(*l) as usize)?;
                let text = std::str::from_utf8(text).ok()?;
                let v = if tag == STRING {
                    Value::String(text.to_string())
                } else {
                    serde_json::from_str(text).ok()?
                };
                (v, r)
            }
            _ => return None,
        };
        map.insert(std::str::from_utf8(name).ok()?.to_string(), value);
        rest = r;
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
        let Encoded::Bytes(b) = encode(map) else {
            panic!("short names are encoded")
        };
        assert_eq!(decode(&b), Some(row.clone()));
        // Serialized the same way, so a client sees what it sent.
        assert_eq!(decode(&b).unwrap().to_string(), row.to_string());
        assert!(b.len() < row.to_string().len());
    }

    #[test]
    fn long_names_fall_back_to_json_and_garbage_is_refused() {
        let mut map = Map::new();
        map.insert("n".repeat(300), Value::from(1.5));
        assert!(matches!(encode(&map), Encoded::Json(j) if j.contains("1.5")));
        assert_eq!(decode(b"{\"a\":1}"), None);
        assert_eq!(decode(&[VERSION, 1, b'a', F64, 0, 0]), None);
        assert_eq!(decode(&[VERSION, 1, b'a', 99]), None);
    }
}
