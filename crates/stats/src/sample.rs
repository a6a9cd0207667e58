//! Samples handed to the drift tests in pieces (one per parsing thread, say), with exact
//! decimals kept as fixed-point integers.
//!
//! Numbers read from text are decimals: `-0.069057` is the integer −69057 with 6 decimals.
//! Kept that way, a sample sorts as narrow integers and never goes through `f64` division
//! (the `f64` value is the correctly rounded quotient, recomputed only where a statistic
//! needs it). [`SampleBuilder`] packs each decimal of up to eight digits into 32 bits (its
//! mantissa and its number of decimals: half the memory of an `i64` or `f64`, and half the
//! fresh pages the kernel must zero for a large file). A piece with longer numbers keeps
//! `i64` integers at one scale, raised when a value has more decimals, and falls back to
//! `f64` values when its numbers do not fit one scale.

use crate::sort::{decimals, fixed_point, fixed_value, pow10, raise_scale, FIXED_LIMIT};

/// A piece of a sample as a caller holds it.
#[derive(Debug, Clone, PartialEq)]
pub enum SamplePart {
    /// Values; NaN and ±∞ are missing.
    Values(Vec<f64>),
    /// Exact decimal values `values[i] / 10^decimals`, each integer below 2^52 in size (so
    /// that different integers are different `f64` values) and `decimals` at most 22. The
    /// values are the correctly rounded quotients, as `str::parse` reads the same numbers.
    Fixed { values: Vec<i64>, decimals: u32 },
    /// Exact decimals of at most eight digits, 32 bits each (see [`PackedDecimals`]).
    Packed(PackedDecimals),
    /// A number of missing values.
    Missing(usize),
}

impl SamplePart {
    /// Number of values, missing ones included.
    pub fn len(&self) -> usize {
        match self {
            SamplePart::Values(v) => v.len(),
            SamplePart::Fixed { values, .. } => values.len(),
            SamplePart::Packed(p) => p.words.len(),
            SamplePart::Missing(n) => *n,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values as `f64` (missing ones as NaN), as `str::parse` reads them.
    pub fn to_values(&self) -> Vec<f64> {
        match self {
            SamplePart::Values(v) => v.clone(),
            SamplePart::Fixed { values, decimals } => {
                values.iter().map(|&i| fixed_value(i, *decimals)).collect()
            }
            SamplePart::Packed(p) => p.to_values(),
            SamplePart::Missing(n) => vec![f64::NAN; *n],
        }
    }
}

/// Bits of a packed word that hold the number of decimals.
const PACKED_DECIMAL_BITS: u32 = 4;

/// Bound (exclusive) on the size of a packed mantissa: 2^27, all numbers of eight digits.
const PACKED_LIMIT: u64 = 1 << 27;

/// Decimals `mantissa / 10^decimals`, each packed in one `i32` as
/// `mantissa << 4 | decimals` (`|mantissa|` below 2^27, `decimals` below 16), with the
/// smallest and largest mantissa for each number of decimals (what the sort needs to know
/// the range of the sample at one scale without reading it).
#[derive(Debug, Clone, PartialEq)]
pub struct PackedDecimals {
    pub(crate) words: Vec<i32>,
    /// `(smallest, largest)` mantissa per number of decimals; `(i32::MAX, i32::MIN)` when none.
    pub(crate) ranges: [(i32, i32); 1 << PACKED_DECIMAL_BITS],
}

impl PackedDecimals {
    fn with_capacity(capacity: usize) -> Self {
        PackedDecimals {
            words: Vec::with_capacity(capacity),
            ranges: [(i32::MAX, i32::MIN); 1 << PACKED_DECIMAL_BITS],
        }
    }

    /// Add `mantissa / 10^decimals`; `false` (and unchanged) if it does not pack.
    #[inline(always)]
    fn push(&mut self, mantissa: i64, decimals: u32) -> bool {
        if mantissa.unsigned_abs() >= PACKED_LIMIT || decimals >= 1 << PACKED_DECIMAL_BITS {
            return false;
        }
        let m = mantissa as i32;
        let range = &mut self.ranges[decimals as usize];
        *range = (range.0.min(m), range.1.max(m));
        self.words.push(m << PACKED_DECIMAL_BITS | decimals as i32);
        true
    }

    /// The most decimals of any value (0 when empty).
    pub(crate) fn decimals(&self) -> u32 {
        self.ranges.iter().rposition(|r| r.0 <= r.1).unwrap_or(0) as u32
    }

    /// The smallest and largest value as fixed-point integers with `scale` decimals (at
    /// least [`PackedDecimals::decimals`] and at most [`MAX_PACKED_SCALE`], so that nothing
    /// overflows); `(i64::MAX, i64::MIN)` when empty.
    pub(crate) fn range_at(&self, scale: u32) -> (i64, i64) {
        let mut range = (i64::MAX, i64::MIN);
        for (d, &(lo, hi)) in self.ranges.iter().enumerate().filter(|(_, r)| r.0 <= r.1) {
            let factor = POW10_INT[scale as usize - d];
            range = (
                range.0.min(lo as i64 * factor),
                range.1.max(hi as i64 * factor),
            );
        }
        range
    }

    /// The fixed-point integers with `scale` decimals, if they all stay below
    /// [`FIXED_LIMIT`].
    pub(crate) fn to_fixed(&self, scale: u32) -> Option<Vec<i64>> {
        let d = self.decimals();
        if scale < d || scale > 18 {
            return None;
        }
        let widest = self
            .ranges
            .iter()
            .enumerate()
            .filter(|(_, r)| r.0 <= r.1)
            .map(|(d, r)| (r.0.unsigned_abs().max(r.1.unsigned_abs()) as u64, d))
            .try_fold(0u64, |w, (m, d)| {
                Some(w.max(m.checked_mul(POW10_INT[scale as usize - d] as u64)?))
            })?;
        (widest < FIXED_LIMIT).then(|| {
            self.words
                .iter()
                .map(|&w| {
                    let (m, d) = unpack(w);
                    m * POW10_INT[(scale - d) as usize]
                })
                .collect()
        })
    }

    /// The values as `f64` (each the correctly rounded quotient).
    pub(crate) fn to_values(&self) -> Vec<f64> {
        self.words
            .iter()
            .map(|&w| {
                let (m, d) = unpack(w);
                fixed_value(m, d)
            })
            .collect()
    }
}

/// Largest scale a packed sample is sorted at directly: below it, no mantissa times a power
/// of ten can overflow (2^27 · 10^10 < 2^62).
pub(crate) const MAX_PACKED_SCALE: u32 = 10;

/// The mantissa and decimals of a packed word.
#[inline(always)]
pub(crate) fn unpack(w: i32) -> (i64, u32) {
    (
        (w >> PACKED_DECIMAL_BITS) as i64,
        (w & ((1 << PACKED_DECIMAL_BITS) - 1)) as u32,
    )
}

/// The fixed-point integer of a packed word at `scale` decimals (at least the word's, and at
/// most [`MAX_PACKED_SCALE`]); the index is masked so that it needs no bounds check.
#[inline(always)]
pub(crate) fn unpack_at(w: i32, scale: u32) -> i64 {
    let (m, d) = unpack(w);
    m * POW10_INT[(scale.wrapping_sub(d) & 15) as usize]
}

/// Powers of ten as integers, for raising a decimal to the piece's scale.
pub(crate) const POW10_INT: [i64; 19] = {
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

/// Builds one [`SamplePart`] from parsed numbers: packed decimals while every number has at
/// most eight digits, then fixed-point integers at one scale while the numbers allow it,
/// `f64` values otherwise.
#[derive(Debug)]
pub struct SampleBuilder {
    packed: PackedDecimals,
    /// Once the piece no longer packs: fixed-point integers with `scale` decimals, or (when
    /// `scale` is [`FLOAT`]) `f64` bit patterns.
    words: Vec<i64>,
    /// The packed words' capacity, for the words that take over.
    capacity: usize,
    scale: u32,
    /// Whether the values are in `packed`.
    is_packed: bool,
}

impl SampleBuilder {
    /// An empty piece with room for `capacity` values.
    pub fn with_capacity(capacity: usize) -> Self {
        SampleBuilder {
            packed: PackedDecimals::with_capacity(capacity),
            words: Vec::new(),
            capacity,
            scale: 0,
            is_packed: true,
        }
    }

    pub fn len(&self) -> usize {
        self.packed.words.len() + self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the next value would make the piece grow (a caller that never wants it to
    /// grow starts another piece instead).
    #[inline(always)]
    pub fn is_full(&self) -> bool {
        if self.is_packed {
            self.packed.words.len() == self.packed.words.capacity()
        } else {
            self.words.len() == self.words.capacity()
        }
    }

    /// Add the decimal `mantissa / 10^frac` (`mantissa` below 2^53 in size).
    #[inline(always)]
    pub fn push_decimal(&mut self, mantissa: i64, frac: u32) {
        if self.is_packed {
            if self.packed.push(mantissa, frac) {
                return;
            }
        } else if self.push_at_scale(mantissa, frac) {
            return;
        }
        self.push_decimal_slow(mantissa, frac);
    }

    /// Add `mantissa / 10^frac` as an `i64` integer at the piece's scale, if it has at least
    /// `frac` decimals and the integer stays below [`FIXED_LIMIT`] (never for a piece of
    /// `f64`s: [`FLOAT`] is past the tables).
    #[inline(always)]
    fn push_at_scale(&mut self, mantissa: i64, frac: u32) -> bool {
        let shift = self.scale.wrapping_sub(frac) as usize;
        let fits = shift < POW10_INT.len() && mantissa.unsigned_abs() < FITS[shift];
        if fits {
            self.words.push(mantissa * POW10_INT[shift]);
        }
        fits
    }

    #[cold]
    #[inline(never)]
    fn push_decimal_slow(&mut self, mantissa: i64, frac: u32) {
        self.unpack();
        if self.push_at_scale(mantissa, frac) {
            return;
        }
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
        if self.is_packed {
            let packed = decimals(x)
                .and_then(|d| Some((fixed_point(x, pow10(d as u32))?, d as u32)))
                .is_some_and(|(i, d)| self.packed.push(i, d));
            if packed {
                return;
            }
            self.unpack();
        }
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

    /// The scale of the piece's `i64` integers, if it holds them.
    fn decimals(&self) -> Option<u32> {
        (!self.is_packed && self.scale != FLOAT).then_some(self.scale)
    }

    /// Move packed values to `words`, as fixed-point integers at their most decimals if they
    /// fit, as `f64` values otherwise.
    fn unpack(&mut self) {
        if !self.is_packed {
            return;
        }
        let mut words = Vec::with_capacity(self.capacity.max(self.packed.words.len() + 1));
        let scale = self.packed.decimals();
        match self.packed.to_fixed(scale) {
            Some(fixed) => {
                words.extend(fixed);
                self.scale = scale;
            }
            None => {
                words.extend(self.packed.to_values().iter().map(|x| x.to_bits() as i64));
                self.scale = FLOAT;
            }
        }
        self.packed = PackedDecimals::with_capacity(0);
        self.words = words;
        self.is_packed = false;
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
        if self.is_packed {
            return SamplePart::Packed(self.packed);
        }
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

    /// Whatever the mix of numbers, the piece holds exactly the values `str::parse` reads.
    #[test]
    fn builder_keeps_the_parsed_values() {
        // Whether the piece stays packed.
        let cases: [(&[&str], bool); 6] = [
            (&["1", "-0.5", "2.25", "0.000125", "-3", "1e-3"], true),
            (&["12.5", "7", "-0.069057", "314.713"], true),
            (&["-99999999", "0.00000012", "1.2345678e-7"], true),
            // Nine digits: `i64` integers at one scale.
            (&["0.5", "923456.789", "-2"], false),
            // Too wide for one scale: 2^60 with 6 decimals would pass the limit.
            (&["0.000001", "1152921504606846976", "2.5"], false),
            (&["1.5", "inf", "0.1"], false),
        ];
        for (texts, packed) in cases {
            let mut b = SampleBuilder::with_capacity(2);
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
            let part = b.finish();
            assert_eq!(matches!(part, SamplePart::Packed(_)), packed, "{texts:?}");
            let got = part.to_values();
            assert_eq!(
                got.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                expected.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                "{texts:?}"
            );
        }
        // One value too wide for any scale: the piece holds `f64`s.
        let mut b = SampleBuilder::with_capacity(1);
        b.push_decimal(8_000_000_000_000_002, 1);
        assert_eq!(b.finish(), SamplePart::Values(vec![8e14 + 0.25]));
        // Packed values move to `i64` integers at their most decimals, then at the scale the
        // longer number needs.
        let mut b = SampleBuilder::with_capacity(4);
        b.push_decimal(-69057, 6);
        b.push_decimal(15, 1);
        b.push_decimal(123_456_789_012, 3);
        b.push_decimal(5, 7);
        assert_eq!(
            b.finish(),
            SamplePart::Fixed {
                values: vec![-690570, 15_000_000, 1_234_567_890_120_000, 5],
                decimals: 7
            }
        );
    }

    /// A packed piece knows its most decimals and its range at a scale without reading
    /// its words.
    #[test]
    fn packed_ranges() {
        let mut b = SampleBuilder::with_capacity(8);
        for (m, d) in [(-5, 0), (125, 2), (-1, 3), (7, 0), (99_999_999, 8)] {
            b.push_decimal(m, d);
        }
        let SamplePart::Packed(p) = b.finish() else {
            panic!("not packed");
        };
        assert_eq!(p.decimals(), 8);
        assert_eq!(p.range_at(8), (-500_000_000, 700_000_000));
        assert_eq!(p.range_at(9), (-5_000_000_000, 7_000_000_000));
        assert_eq!(
            p.to_fixed(8),
            Some(vec![
                -500_000_000,
                125_000_000,
                -100_000,
                700_000_000,
                99_999_999
            ])
        );
        assert_eq!(p.to_fixed(7), None);
        assert_eq!(p.to_fixed(19), None);
    }
}
