//! Samples handed to the drift tests in pieces (one per parsing thread, say), with exact
//! decimals kept as fixed-point integers.
//!
//! Numbers read from text are decimals: `-0.069057` is the integer −69057 with 6 decimals.
//! Kept that way, a sample sorts as narrow integers and never goes through `f64` division
//! (the `f64` value is the correctly rounded quotient, recomputed only where a statistic
//! needs it). [`SampleBuilder`] keeps one scale per piece, raises it when a value has more
//! decimals, and falls back to `f64` values for a piece whose numbers do not fit one scale.

use crate::sort::{decimals, fixed_point, fixed_value, pow10, raise_scale, FIXED_LIMIT};

/// A piece of a sample as a caller holds it.
#[derive(Debug, Clone, PartialEq)]
pub enum SamplePart {
    /// Values; NaN and ±∞ are missing.
    Values(Vec<f64>),
    /// Exact decimal values `values[i] / 10^decimals`, each integer below 2^52 in size (so
    /// that different integers are different `f64` values) and `decimals` at most 22. The values are the correctly rounded quotients, as `str::parse`
    /// reads the same numbers.
    Fixed { values: Vec<i64>, decimals: u32 },
    /// A number of missing values.
    Missing(usize),
}

impl SamplePart {
    /// Number of values, missing ones included.
    pub fn len(&self) -> usize {
        match self {
            SamplePart::Values(v) => v.len(),
            SamplePart::Fixed { values, .. } => values.len(),
            SamplePart::Missing(n) => *n,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Powers of ten as integers, for raising a decimal to the piece's scale.
const POW10_INT: [i64; 19] = {
    let mut p = [1i64; 19];
    let mut i = 1;
    while i < 19 {
        p[i] = p[i - 1] * 10;
        i += 1;
    }
    p
};

/// `POW10_INT[s]` times a value below `FITS[s]` in size stays below [`FIXED_LIMIT`].
const FITS: [u64; 19] = {
    let mut f = [0u64; 19];
    let mut i = 0;
    while i < 19 {
        f[i] = FIXED_LIMIT / POW10_INT[i] as u64;
        i += 1;
    }
    f
};

/// [`SampleBuilder::scale`] of a piece of `f64` values.
const FLOAT: u32 = u32::MAX;

/// Builds one [`SamplePart`] from parsed numbers: fixed-point integers at one scale while the
/// numbers allow it, `f64` values otherwise.
#[derive(Debug)]
pub struct SampleBuilder {
    /// Fixed-point integers with `scale` decimals, or (when `scale` is [`FLOAT`]) `f64` bit
    /// patterns.
    words: Vec<i64>,
    scale: u32,
}

impl SampleBuilder {
    /// An empty piece with room for `capacity` values, starting at the scale `decimals` (the
    /// scale of the previous piece of the same column saves raising it again).
    pub fn with_capacity(capacity: usize, decimals: Option<u32>) -> Self {
        SampleBuilder {
            words: Vec::with_capacity(capacity),
            scale: decimals.unwrap_or(0),
        }
    }

    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Whether the next value would make the piece grow (a caller that never wants it to
    /// grow starts another piece instead).
    #[inline(always)]
    pub fn is_full(&self) -> bool {
        self.words.len() == self.words.capacity()
    }

    /// The piece's scale: `Some(k)` while it holds fixed-point integers with `k` decimals.
    pub fn decimals(&self) -> Option<u32> {
        (self.scale != FLOAT).then_some(self.scale)
    }

    /// Add the decimal `mantissa / 10^frac` (`mantissa` below 2^53 in size): one multiply
    /// when the piece's scale has at least `frac` decimals, as it nearly always has.
    #[inline(always)]
    pub fn push_decimal(&mut self, mantissa: i64, frac: u32) {
        // Past the tables when `frac` exceeds the scale (or the piece holds `f64`s).
        let shift = self.scale.wrapping_sub(frac) as usize;
        if shift < POW10_INT.len() && mantissa.unsigned_abs() < FITS[shift] {
            self.words.push(mantissa * POW10_INT[shift]);
        } else {
            self.push_decimal_slow(mantissa, frac);
        }
    }

    #[cold]
    #[inline(never)]
    fn push_decimal_slow(&mut self, mantissa: i64, frac: u32) {
        if frac <= 22
            && mantissa.unsigned_abs() < FIXED_LIMIT
            && self.scale != FLOAT
            && frac > self.scale
            && self.rescale(frac)
        {
            self.words.push(mantissa);
            return;
        }
        self.push(fixed_value(mantissa, frac.min(22)));
    }

    /// Add any value (NaN and ±∞ count as missing in the tests, as in [`SamplePart::Values`]).
    pub fn push(&mut self, x: f64) {
        if let Some(k) = self.decimals() {
            if let Some(i) = fixed_point(x, pow10(k)) {
                self.words.push(i);
                return;
            }
            if let Some(d) = decimals(x).map(|d| d as u32).filter(|&d| d > k) {
                if self.rescale(d) {
                    let i = fixed_point(x, pow10(d)).expect("a decimal with d decimals");
                    self.words.push(i);
                    return;
                }
            }
            self.switch_to_values();
        }
        self.words.push(x.to_bits() as i64);
    }

    /// Raise the scale to `decimals`; `false` (and unchanged) if an integer would reach
    /// [`FIXED_LIMIT`].
    fn rescale(&mut self, decimals: u32) -> bool {
        let raised = self
            .decimals()
            .is_some_and(|k| raise_scale(&mut self.words, k, decimals));
        if raised {
            self.scale = decimals;
        }
        raised
    }

    /// Turn the piece into `f64` values (each the correctly rounded quotient).
    fn switch_to_values(&mut self) {
        if let Some(k) = self.decimals() {
            self.scale = FLOAT;
            for w in &mut self.words {
                *w = fixed_value(*w, k).to_bits() as i64;
            }
        }
    }

    pub fn finish(self) -> SamplePart {
        match self.decimals() {
            Some(decimals) => SamplePart::Fixed {
                values: self.words,
                decimals,
            },
            None => SamplePart::Values(
                self.words
                    .into_iter()
                    .map(|w| f64::from_bits(w as u64))
                    .collect(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(part: &SamplePart) -> Vec<f64> {
        match part {
            SamplePart::Values(v) => v.clone(),
            SamplePart::Fixed { values, decimals } => values
                .iter()
                .map(|&i| i as f64 / pow10(*decimals))
                .collect(),
            SamplePart::Missing(n) => vec![f64::NAN; *n],
        }
    }

    /// Whatever the mix of numbers, the piece holds exactly the values `str::parse` reads.
    #[test]
    fn builder_keeps_the_parsed_values() {
        let cases: [&[&str]; 4] = [
            &["1", "-0.5", "2.25", "0.000125", "-3", "1e-3"],
            &["12.5", "7", "-0.069057", "314.713"],
            // Too wide for one scale: 2^60 with 6 decimals would pass the limit.
            &["0.000001", "1152921504606846976", "2.5"],
            &["1.5", "inf", "0.1"],
        ];
        for texts in cases {
            let mut b = SampleBuilder::with_capacity(2, None);
            for t in texts {
                match t.split_once('.') {
                    Some((int, frac)) if !t.contains('e') => {
                        let m: i64 = format!("{int}{frac}").parse().unwrap();
                        b.push_decimal(m, frac.len() as u32);
                    }
                    _ => b.push(t.parse().unwrap()),
                }
            }
            let expected: Vec<f64> = texts.iter().map(|t| t.parse().unwrap()).collect();
            let got = values(&b.finish());
            assert_eq!(
                got.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                expected.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                "{texts:?}"
            );
        }
        // One value too wide for any scale: the piece holds `f64`s.
        let mut b = SampleBuilder::with_capacity(1, None);
        b.push_decimal(8_000_000_000_000_002, 1);
        assert_eq!(b.finish(), SamplePart::Values(vec![8e14 + 0.25]));
        let mut b = SampleBuilder::with_capacity(4, Some(3));
        b.push_decimal(-69057, 6);
        b.push_decimal(15, 1);
        assert_eq!(
            b.finish(),
            SamplePart::Fixed {
                values: vec![-69057, 1_500_000],
                decimals: 6
            }
        );
    }
}
