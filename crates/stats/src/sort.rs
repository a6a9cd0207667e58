//! Sorting of finite `f64` samples: an LSD radix sort over order-preserving integer keys, or
//! over exact fixed-point integers when the sample is decimal data (far fewer passes).
//!
//! Sorting dominates exact drift tests on large samples (everything else is linear), and a
//! radix sort is about twice as fast as a comparison sort on a million values. (Sorting the
//! two samples together with a tag per value, to scan their merged order instead of merging,
//! was measured slower: carrying the tags doubles the scattered write streams.)

use crate::sample::{unpack_at, PackedDecimals, SamplePart, MAX_PACKED_SCALE};

/// Map an `f64` to a `u64` whose unsigned order is the numeric order. −0 maps to the key of
/// +0: the two are equal numbers, and the tests must see them as one value (as SciPy does).
#[inline]
pub(crate) fn key(x: f64) -> u64 {
    let bits = (x + 0.0).to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

#[inline]
pub(crate) fn unkey(k: u64) -> f64 {
    let bits = if k >> 63 == 1 { k & !(1 << 63) } else { !k };
    f64::from_bits(bits)
}

/// Ends every [`SortedSample`]: above the key of every number (it would be a NaN's key).
pub(crate) const SENTINEL: u64 = u64::MAX;

/// Offset added (modulo 2^64) to a fixed-point integer to make its key: signed order becomes
/// unsigned order, and every key of an integer below [`FIXED_LIMIT`] in size stays below
/// [`SENTINEL`].
const FIXED_BIAS: u64 = 1 << 63;

/// Key of the fixed-point integer `i`.
#[inline(always)]
fn fixed_key(i: i64) -> u64 {
    (i as u64) ^ FIXED_BIAS
}

/// The fixed-point integer of a key.
#[inline(always)]
pub(crate) fn fixed_int(k: u64) -> i64 {
    (k ^ FIXED_BIAS) as i64
}

/// The value of the fixed-point integer `i` with `decimals` decimals: `i / 10^decimals`,
/// correctly rounded (both operands are exact), as `str::parse` reads the decimal.
#[inline(always)]
pub(crate) fn fixed_value(i: i64, decimals: u32) -> f64 {
    i as f64 / POW10[decimals as usize]
}

/// Multiply fixed-point integers with `from` decimals by 10^(to − from), giving them `to`
/// decimals; `false` (and unchanged) when an integer would reach [`FIXED_LIMIT`].
pub(crate) fn raise_scale(values: &mut [i64], from: u32, to: u32) -> bool {
    let Some(factor) = to.checked_sub(from).and_then(|s| 10u64.checked_pow(s)) else {
        return false;
    };
    let widest = values.iter().map(|i| i.unsigned_abs()).max().unwrap_or(0);
    if widest.checked_mul(factor).is_none_or(|w| w >= FIXED_LIMIT) {
        return false;
    }
    for v in values {
        *v *= factor as i64;
    }
    true
}

/// Bound (exclusive) on the size of a fixed-point integer: 2^52. Below it, `i / 10^k` rounds
/// to a different `f64` for every `i` (the grid step 10^-k is wider than an ulp of the
/// values), so integer order and ties are exactly those of the `f64` values the tests must
/// see (as SciPy sees them). From 2^52 on, two decimals can round to one `f64`
/// (`800000000000000.2` and `.3` do).
pub(crate) const FIXED_LIMIT: u64 = 1 << 52;

/// The finite values of a sample, sorted ascending and kept as sort keys, followed by
/// [`SENTINEL`].
///
/// A key is either a value's order-preserving bits (see [`key`]) or, for decimal data with
/// `decimals = Some(k)`, the key of the exact fixed-point integer `i` (see [`fixed_key`])
/// whose value is `i / 10^k` correctly rounded, the very `f64` a parser reads from the text.
/// The tests read the sorted sample straight from the keys the radix sort leaves behind:
/// converting back to `f64` would be two more passes over every column, and the merge of two
/// samples compares integers and needs no bounds checks thanks to the sentinel.
#[derive(Debug, Clone)]
pub(crate) struct SortedSample {
    keys: Vec<u64>,
    decimals: Option<u32>,
}

impl SortedSample {
    /// From values already sorted ascending and free of NaN.
    pub(crate) fn from_sorted(values: &[f64]) -> SortedSample {
        let mut keys = Vec::with_capacity(values.len() + 1);
        keys.extend(values.iter().map(|&x| key(x)));
        keys.push(SENTINEL);
        SortedSample {
            keys,
            decimals: None,
        }
    }

    /// Number of values.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.keys.len() - 1
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The keys, sentinel included.
    #[inline]
    pub(crate) fn keys(&self) -> &[u64] {
        &self.keys
    }

    /// `Some(k)` when the keys are fixed-point integers with `k` decimals.
    #[inline]
    pub(crate) fn decimals(&self) -> Option<u32> {
        self.decimals
    }

    /// The value of a key of this sample.
    #[inline]
    pub(crate) fn key_value(&self, k: u64) -> f64 {
        match self.decimals {
            None => unkey(k),
            Some(d) => fixed_value(fixed_int(k), d),
        }
    }

    #[inline]
    pub(crate) fn value(&self, i: usize) -> f64 {
        self.key_value(self.keys[i])
    }

    /// The values in ascending order.
    pub(crate) fn values(&self) -> impl Iterator<Item = f64> + Clone + '_ {
        self.keys[..self.len()].iter().map(|&k| self.key_value(k))
    }

    /// How many values are `< x`.
    pub(crate) fn rank_lt(&self, x: f64) -> usize {
        if x.is_nan() {
            return 0;
        }
        let keys = &self.keys[..self.len()];
        match self.decimals {
            None => {
                let k = key(x);
                keys.partition_point(|&v| v < k)
            }
            // Values are non-decreasing in the key (rounding is monotonic).
            Some(_) => keys.partition_point(|&v| self.key_value(v) < x),
        }
    }

    /// Give both samples the same kind of keys, so that comparing keys compares values: the
    /// same number of decimals when both are fixed-point and the wider scale keeps every
    /// integer below [`FIXED_LIMIT`], the keys of the `f64` values otherwise.
    pub(crate) fn align(a: &mut SortedSample, b: &mut SortedSample) {
        if a.decimals == b.decimals {
            return;
        }
        if let (Some(da), Some(db)) = (a.decimals, b.decimals) {
            let rescaled = if da < db {
                a.rescale(db)
            } else {
                b.rescale(da)
            };
            if rescaled {
                return;
            }
        }
        a.use_value_keys();
        b.use_value_keys();
    }

    /// Raise a fixed-point sample to `decimals`; `false` (and unchanged) if an integer would
    /// reach [`FIXED_LIMIT`].
    fn rescale(&mut self, decimals: u32) -> bool {
        let Some(d) = self.decimals.filter(|&d| d <= decimals) else {
            return false;
        };
        let Some(factor) = 10i64.checked_pow(decimals - d) else {
            return false;
        };
        let n = self.len();
        let fits = |k: u64| {
            fixed_int(k)
                .checked_mul(factor)
                .is_some_and(|i| i.unsigned_abs() < FIXED_LIMIT)
        };
        if n > 0 && !(fits(self.keys[0]) && fits(self.keys[n - 1])) {
            return false;
        }
        for k in &mut self.keys[..n] {
            *k = fixed_key(fixed_int(*k) * factor);
        }
        self.decimals = Some(decimals);
        true
    }

    /// Replace fixed-point keys by the keys of their values.
    fn use_value_keys(&mut self) {
        if let Some(d) = self.decimals.take() {
            let n = self.len();
            for k in &mut self.keys[..n] {
                *k = key(fixed_value(fixed_int(*k), d));
            }
        }
    }
}

const DIGIT_BITS: usize = 13;
const BUCKETS: usize = 1 << DIGIT_BITS;
const PASSES: usize = 64_usize.div_ceil(DIGIT_BITS);

/// The finite values of `values`, sorted.
pub(crate) fn sort_finite(values: &[f64]) -> SortedSample {
    sort_finite_parts(vec![values.to_vec()]).0
}

/// The finite values of all `parts`, sorted, and how many values were not finite (missing).
///
/// Samples often arrive in pieces (one per parsing thread). Decimal data takes the shorter
/// fixed-point sort ([`sort_decimal`]). Otherwise a first read-only pass over the pieces counts
/// the digit histograms of the keys, and the first radix pass reads the pieces again, dropping
/// missing values and converting to keys on the fly, so no separate key array is written.
pub(crate) fn sort_finite_parts(parts: Vec<Vec<f64>>) -> (SortedSample, usize) {
    let total: usize = parts.iter().map(Vec::len).sum();
    if (4096..u32::MAX as usize).contains(&total) {
        if let Some(sorted) = sort_decimal(&parts, total) {
            return sorted;
        }
    }
    // 13-bit digits: five passes over 64-bit keys (one fewer than 11-bit digits; measured
    // faster despite the larger tables), counted in 32 bits to halve the tables.
    let mut histograms = vec![[0u32; BUCKETS]; PASSES];
    let mut n = 0;
    for part in &parts {
        for &x in part {
            if x.is_finite() {
                let k = key(x);
                for (pass, h) in histograms.iter_mut().enumerate() {
                    h[((k >> (pass * DIGIT_BITS)) as usize) & (BUCKETS - 1)] += 1;
                }
                n += 1;
            }
        }
    }
    let missing = total - n;
    if !radix_pays(n) {
        let mut keys = take_buffer();
        keys.clear();
        keys.reserve(n + 1);
        keys.extend(finite_keys(&parts));
        keys.sort_unstable();
        keys.push(SENTINEL);
        return (
            SortedSample {
                keys,
                decimals: None,
            },
            missing,
        );
    }
    let mut keys = buffer_of_len(n);
    let mut scratch = buffer_of_len(n);
    // The passes to run: a digit shared by every key (common for the exponent bits) needs none.
    let mut passes = histograms
        .iter_mut()
        .enumerate()
        .filter(|(_, h)| !h.contains(&(n as u32)));
    let Some((first, h)) = passes.next() else {
        // Every key is the same.
        for (slot, k) in keys.iter_mut().zip(finite_keys(&parts)) {
            *slot = k;
        }
        keys.truncate(n);
        keys.push(SENTINEL);
        give_back(scratch);
        return (
            SortedSample {
                keys,
                decimals: None,
            },
            missing,
        );
    };
    let shift = first * DIGIT_BITS;
    prefix_sums(h);
    for part in &parts {
        for &x in part {
            if x.is_finite() {
                let k = key(x);
                let d = ((k >> shift) as usize) & (BUCKETS - 1);
                keys[h[d] as usize] = k;
                h[d] += 1;
            }
        }
    }
    drop(parts);
    let mut src: &mut [u64] = &mut keys[..n];
    let mut dst: &mut [u64] = &mut scratch[..n];
    let mut sorted_in_scratch = false;
    for (pass, h) in passes {
        prefix_sums(h);
        let shift = pass * DIGIT_BITS;
        for &k in src.iter() {
            let d = ((k >> shift) as usize) & (BUCKETS - 1);
            dst[h[d] as usize] = k;
            h[d] += 1;
        }
        std::mem::swap(&mut src, &mut dst);
        sorted_in_scratch = !sorted_in_scratch;
    }
    // The sorted keys are whichever buffer the last pass wrote; the other becomes the scratch.
    if sorted_in_scratch {
        std::mem::swap(&mut keys, &mut scratch);
    }
    keys.truncate(n);
    keys.push(SENTINEL);
    give_back(scratch);
    (
        SortedSample {
            keys,
            decimals: None,
        },
        missing,
    )
}

/// Exact powers of ten representable in an `f64`.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// 10^d, exactly (`d` at most 22).
pub(crate) fn pow10(d: u32) -> f64 {
    POW10[d as usize]
}

/// `x` as a fixed-point integer `i` with `k` decimals (`p` = 10^k): `Some(i)` when `|i|` is
/// below [`FIXED_LIMIT`] and `i / p`, correctly rounded, is exactly `x`.
#[inline(always)]
pub(crate) fn fixed_point(x: f64, p: f64) -> Option<i64> {
    let t = x * p;
    if t.abs() >= FIXED_LIMIT as f64 {
        return None;
    }
    // The nearest integer (any candidate is checked below). Exact conversions: |i| < 2^52.
    let i = (t + 0.5f64.copysign(t)) as i64;
    (i as f64 / p == x).then_some(i)
}

/// The fewest decimals with which `x` is a fixed-point integer, if any.
pub(crate) fn decimals(x: f64) -> Option<usize> {
    (0..POW10.len()).find(|&k| fixed_point(x, POW10[k]).is_some())
}

/// Largest radix digit of the fixed-point sort.
const DECIMAL_DIGIT_BITS: u32 = 13;

/// The finite values of all `parts`, sorted, and how many values were missing. Fixed-point
/// parts sort as integers without ever becoming `f64`; parts of `f64` values take
/// [`sort_finite_parts`].
pub(crate) fn sort_parts(parts: Vec<SamplePart>) -> (SortedSample, usize) {
    let mut missing = 0;
    let mut fixed = Vec::new();
    let mut packed = Vec::new();
    let mut floats = Vec::new();
    for part in parts {
        match part {
            SamplePart::Missing(n) => missing += n,
            SamplePart::Values(v) => floats.push(v),
            SamplePart::Fixed { values, decimals } => fixed.push((values, decimals)),
            SamplePart::Packed(p) => packed.push(p),
        }
    }
    if floats.is_empty() && fixed.is_empty() && !packed.is_empty() {
        if let Some(sorted) = sort_packed(&packed) {
            return (sorted, missing);
        }
    }
    // Pieces of several kinds, or packed decimals too wide for one scale: as `i64` integers.
    for p in packed {
        let decimals = p.decimals();
        match p.to_fixed(decimals) {
            Some(values) => fixed.push((values, decimals)),
            None => floats.push(p.to_values()),
        }
    }
    if floats.is_empty() && !fixed.is_empty() {
        if let Some(sorted) = sort_fixed_parts(&mut fixed) {
            return (sorted, missing);
        }
    }
    // Mixed pieces (or integers too wide for one scale): as `f64` values.
    for (values, decimals) in fixed {
        floats.push(values.iter().map(|&i| fixed_value(i, decimals)).collect());
    }
    let (sorted, more) = sort_finite_parts(floats);
    (sorted, missing + more)
}

/// Sort packed decimals at the most decimals any of them has: their range comes from the
/// pieces' per-decimals ranges, and each word is unpacked as the radix sort reads it (no
/// conversion pass); `None` if that scale is above [`MAX_PACKED_SCALE`] or takes an integer
/// to [`FIXED_LIMIT`].
fn sort_packed(parts: &[PackedDecimals]) -> Option<SortedSample> {
    let scale = parts.iter().map(PackedDecimals::decimals).max()?;
    if scale > MAX_PACKED_SCALE {
        return None;
    }
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    for p in parts {
        let (l, h) = p.range_at(scale);
        (lo, hi) = (lo.min(l), hi.max(h));
    }
    let n: usize = parts.iter().map(|p| p.words.len()).sum();
    if n == 0 || lo.unsigned_abs() >= FIXED_LIMIT || hi.unsigned_abs() >= FIXED_LIMIT {
        return None;
    }
    let words: Vec<&[i32]> = parts.iter().map(|p| p.words.as_slice()).collect();
    if !radix_pays(n) {
        let ints = words
            .iter()
            .flat_map(|w| w.iter().map(|&w| unpack_at(w, scale)));
        return Some(comparison_sort_fixed(ints, n, scale));
    }
    Some(radix_fixed(
        FixedSource::Packed(&words, scale),
        n,
        lo,
        hi,
        scale,
    ))
}

/// Sort fixed-point pieces, brought to one scale first; `None` if that scale would take an
/// integer to [`FIXED_LIMIT`].
fn sort_fixed_parts(parts: &mut [(Vec<i64>, u32)]) -> Option<SortedSample> {
    let decimals = parts.iter().map(|p| p.1).max()?;
    if decimals > 22 {
        return None;
    }
    for (values, d) in parts.iter_mut().filter(|p| p.1 < decimals) {
        if !raise_scale(values, *d, decimals) {
            return None;
        }
        *d = decimals;
    }
    let n: usize = parts.iter().map(|p| p.0.len()).sum();
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    for (values, _) in parts.iter() {
        let (l, h) = min_max(values);
        (lo, hi) = (lo.min(l), hi.max(h));
    }
    if n > 0 && (lo.unsigned_abs() >= FIXED_LIMIT || hi.unsigned_abs() >= FIXED_LIMIT) {
        return None;
    }
    if !radix_pays(n) {
        let ints = parts.iter().flat_map(|p| p.0.iter().copied());
        return Some(comparison_sort_fixed(ints, n, decimals));
    }
    let sources: Vec<&[i64]> = parts.iter().map(|p| p.0.as_slice()).collect();
    Some(radix_fixed(
        FixedSource::Parts(&sources),
        n,
        lo,
        hi,
        decimals,
    ))
}

/// Whether `n` values are worth a radix sort: not for small samples (the histograms would
/// cost more than the values), and not past the `u32` offsets of its histograms.
fn radix_pays(n: usize) -> bool {
    (4096..u32::MAX as usize).contains(&n)
}

/// The `n` fixed-point integers `ints` with `decimals` decimals, sorted by comparison.
fn comparison_sort_fixed(ints: impl Iterator<Item = i64>, n: usize, decimals: u32) -> SortedSample {
    let mut keys = take_buffer();
    keys.clear();
    keys.reserve(n + 1);
    keys.extend(ints.map(fixed_key));
    keys.sort_unstable();
    keys.push(SENTINEL);
    SortedSample {
        keys,
        decimals: Some(decimals),
    }
}

/// Smallest and largest of `values` (`(i64::MAX, i64::MIN)` when empty), with the widest
/// vector compares the processor has: baseline x86-64 has no 64-bit integer compare, and the
/// emulated one costs as much as a radix pass.
fn min_max(values: &[i64]) -> (i64, i64) {
    #[inline(always)]
    fn portable(values: &[i64]) -> (i64, i64) {
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        for &v in values {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        (lo, hi)
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx512vl")]
        fn avx512(values: &[i64]) -> (i64, i64) {
            portable(values)
        }
        #[target_feature(enable = "avx2")]
        fn avx2(values: &[i64]) -> (i64, i64) {
            portable(values)
        }
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
        {
            // SAFETY: the processor has the features the function is compiled for.
            return unsafe { avx512(values) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: as above.
            return unsafe { avx2(values) };
        }
    }
    portable(values)
}

/// Sort of decimal `f64` data (what CSV files hold: numbers written with a few significant
/// digits).
///
/// Each value is `i / 10^k` for an integer `i` below [`FIXED_LIMIT`] with one `k` for the whole sample
/// (checked exactly for every value; `None` when some value is not, and the caller sorts the
/// keys of the `f64`s instead); the integers are then sorted by [`radix_fixed`].
fn sort_decimal(parts: &[Vec<f64>], total: usize) -> Option<(SortedSample, usize)> {
    let mut fixed = buffer_of_len(total);
    let Some((n, lo, hi, decimals)) = fixed_points(parts, &mut fixed) else {
        give_back(fixed);
        return None;
    };
    fixed.truncate(n);
    let sorted = radix_fixed(FixedSource::Buffer(fixed), n, lo, hi, decimals);
    Some((sorted, total - n))
}

/// Where [`radix_fixed`] reads the integers: the caller's pieces, packed decimals (unpacked
/// at the given scale into a pooled buffer as they are counted), or a pooled buffer of
/// two's-complement words that becomes a scatter buffer once read.
enum FixedSource<'a> {
    Parts(&'a [&'a [i64]]),
    Packed(&'a [&'a [i32]], u32),
    Buffer(Vec<u64>),
}

/// LSD radix sort of `n` fixed-point integers in `[lo, hi]` with `decimals` decimals.
///
/// Integers in order give the values in order, and equal integers equal values, so
/// radix-sorting `i − lo` sorts the sample; its range is far narrower than 64 bits (a column
/// of `%.6g` numbers spans 8 to 45 bits), which saves two or three of the five passes of a
/// key sort, and the digits are balanced over the passes. The first pass reads the sources
/// (offset by `lo` on the fly), the last one writes each value's key.
fn radix_fixed(source: FixedSource<'_>, n: usize, lo: i64, hi: i64, decimals: u32) -> SortedSample {
    let range = (hi as u64).wrapping_sub(lo as u64);
    let bits = u64::BITS - range.leading_zeros();
    let passes = bits.div_ceil(DECIMAL_DIGIT_BITS);
    let offset = |v: u64| v.wrapping_sub(lo as u64);
    let to_key = |u: u64| u.wrapping_add(lo as u64) ^ FIXED_BIAS;
    let finish = |mut keys: Vec<u64>| {
        keys.truncate(n);
        keys.push(SENTINEL);
        SortedSample {
            keys,
            decimals: Some(decimals),
        }
    };
    if passes == 0 {
        // Every value is the same.
        let mut keys = match source {
            FixedSource::Buffer(b) => b,
            FixedSource::Parts(_) | FixedSource::Packed(..) => buffer_of_len(n),
        };
        keys[..n].fill(fixed_key(lo));
        return finish(keys);
    }
    let digit_bits = bits.div_ceil(passes);
    let mask = (1u64 << digit_bits) - 1;
    let mut histograms = vec![vec![0u32; 1 << digit_bits]; passes as usize];
    let mut count = |u: u64| {
        for (pass, h) in histograms.iter_mut().enumerate() {
            h[((u >> (pass as u32 * digit_bits)) & mask) as usize] += 1;
        }
    };
    let source = match source {
        FixedSource::Parts(parts) => {
            parts
                .iter()
                .flat_map(|p| p.iter())
                .for_each(|&v| count(offset(v as u64)));
            source
        }
        // Unpacked once, as they are counted: the first pass reads the integers.
        FixedSource::Packed(parts, scale) => {
            let mut unpacked = buffer_of_len(n);
            let words = parts.iter().flat_map(|p| p.iter());
            for (out, &w) in unpacked.iter_mut().zip(words) {
                let i = unpack_at(w, scale) as u64;
                *out = i;
                count(offset(i));
            }
            FixedSource::Buffer(unpacked)
        }
        FixedSource::Buffer(ref b) => {
            b[..n].iter().for_each(|&v| count(offset(v)));
            source
        }
    };
    let last = passes as usize - 1;
    let mut dst = buffer_of_len(n);
    // The first pass: from the source into `dst` (keys already if it is the only pass).
    let h = &mut histograms[0];
    prefix_sums(h);
    if last == 0 {
        scatter_source(&source, &mut dst[..n], h, mask, offset, to_key);
    } else {
        scatter_source(&source, &mut dst[..n], h, mask, offset, |u| u);
    }
    if last == 0 {
        if let FixedSource::Buffer(b) = source {
            give_back(b);
        }
        return finish(dst);
    }
    let mut src = dst;
    let mut dst = match source {
        FixedSource::Buffer(b) => b,
        FixedSource::Parts(_) | FixedSource::Packed(..) => buffer_of_len(n),
    };
    for (pass, h) in histograms.iter_mut().enumerate().skip(1) {
        prefix_sums(h);
        let shift = pass as u32 * digit_bits;
        if pass == last {
            scatter(&src[..n], &mut dst[..n], h, shift, mask, |u| u, to_key);
        } else {
            scatter(&src[..n], &mut dst[..n], h, shift, mask, |u| u, |u| u);
        }
        std::mem::swap(&mut src, &mut dst);
    }
    give_back(dst);
    finish(src)
}

/// The first radix pass (lowest digit), reading every integer of `source` offset by `offset`.
#[inline(always)]
fn scatter_source(
    source: &FixedSource<'_>,
    out: &mut [u64],
    h: &mut [u32],
    mask: u64,
    offset: impl Fn(u64) -> u64 + Copy,
    store: impl Fn(u64) -> u64 + Copy,
) {
    match source {
        FixedSource::Parts(parts) => {
            for p in parts.iter() {
                scatter(p, out, h, 0, mask, |v| offset(v as u64), store);
            }
        }
        FixedSource::Packed(..) => unreachable!("packed words are unpacked as they are counted"),
        FixedSource::Buffer(b) => scatter(&b[..out.len()], out, h, 0, mask, offset, store),
    }
}

/// One radix pass: `load` turns a stored word into the sorted integer, `store` into what
/// the pass writes.
#[inline(always)]
fn scatter<W: Copy>(
    src: &[W],
    dst: &mut [u64],
    h: &mut [u32],
    shift: u32,
    mask: u64,
    load: impl Fn(W) -> u64,
    store: impl Fn(u64) -> u64,
) {
    for &v in src {
        let u = load(v);
        let d = ((u >> shift) & mask) as usize;
        dst[h[d] as usize] = store(u);
        h[d] += 1;
    }
}

/// The finite values of `parts` as fixed-point integers (two's complement in `out`), with
/// their count, smallest, largest and decimals `k`; `None` unless they all are, with one `k`.
fn fixed_points(parts: &[Vec<f64>], out: &mut [u64]) -> Option<(usize, i64, i64, u32)> {
    // Decimals from the first values; raised when a later value needs more.
    let mut k = 0;
    for x in parts.iter().flatten().filter(|x| x.is_finite()).take(64) {
        k = k.max(decimals(*x)?);
    }
    let mut p = POW10[k];
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    let mut n = 0;
    for part in parts {
        for &x in part {
            if !x.is_finite() {
                continue;
            }
            let i = match fixed_point(x, p) {
                Some(i) => i,
                None => {
                    // More decimals: scale what is done (while below the limit) or give up.
                    let more = decimals(x).filter(|&d| d > k)?;
                    let factor = 10i64.checked_pow((more - k) as u32)?;
                    let limit = FIXED_LIMIT as i64;
                    if n > 0
                        && (lo.checked_mul(factor)?.abs() >= limit
                            || hi.checked_mul(factor)?.abs() >= limit)
                    {
                        return None;
                    }
                    for v in &mut out[..n] {
                        *v = (*v as i64 * factor) as u64;
                    }
                    if n > 0 {
                        (lo, hi) = (lo * factor, hi * factor);
                    }
                    (k, p) = (more, POW10[more]);
                    fixed_point(x, p)?
                }
            };
            out[n] = i as u64;
            n += 1;
            lo = lo.min(i);
            hi = hi.max(i);
        }
    }
    (n > 0).then_some((n, lo, hi, k as u32))
}

/// The keys of the finite values of `parts`, in order.
fn finite_keys(parts: &[Vec<f64>]) -> impl Iterator<Item = u64> + '_ {
    parts
        .iter()
        .flat_map(|p| p.iter().copied().filter(|x| x.is_finite()).map(key))
}

/// Turn digit counts into the start offset of each digit.
fn prefix_sums(h: &mut [u32]) {
    let mut offset = 0;
    for c in h.iter_mut() {
        let count = *c;
        *c = offset;
        offset += count;
    }
}

/// A pooled buffer of at least `n` keys with room for one more (only its growth is zeroed).
fn buffer_of_len(n: usize) -> Vec<u64> {
    let mut buffer = take_buffer();
    buffer.reserve((n + 1).saturating_sub(buffer.len()));
    if buffer.len() < n {
        buffer.resize(n, 0);
    }
    buffer
}

/// Key buffers are kept per thread and reused: a drift report sorts two columns per feature
/// on each worker (two sorted samples and one scatter buffer alive at a time), and fresh
/// multi-megabyte buffers would cost page faults every time. At most three buffers of at most
/// 32 MB are kept (long-lived server threads included).
const POOLED_BUFFERS: usize = 3;
const MAX_POOLED_LEN: usize = 4 << 20;

thread_local! {
    static POOL: std::cell::RefCell<Vec<Vec<u64>>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn take_buffer() -> Vec<u64> {
    POOL.with(|p| p.borrow_mut().pop()).unwrap_or_default()
}

fn give_back(buffer: Vec<u64>) {
    if buffer.capacity() > 0 && buffer.capacity() <= MAX_POOLED_LEN {
        POOL.with(|p| {
            let mut pool = p.borrow_mut();
            if pool.len() < POOLED_BUFFERS {
                pool.push(buffer);
            }
        });
    }
}

impl Drop for SortedSample {
    fn drop(&mut self) {
        give_back(std::mem::take(&mut self.keys));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_preserve_order() {
        let xs = [-f64::MAX, -1.5, -1e-300, 0.0, 1e-300, 2.0, f64::MAX];
        for w in xs.windows(2) {
            assert!(key(w[0]) < key(w[1]), "{} {}", w[0], w[1]);
            assert!(key(w[1]) < SENTINEL);
        }
        for x in xs {
            assert_eq!(unkey(key(x)).to_bits(), x.to_bits());
        }
        assert_eq!(key(-0.0), key(0.0));
    }

    #[test]
    fn radix_sort_matches_comparison_sort() {
        let mut s: u64 = 12345;
        let mut v: Vec<f64> = (0..100_000)
            .map(|i| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = (s >> 11) as f64 / (1u64 << 53) as f64;
                if i % 7 == 0 {
                    (u * 10.0).round() - 5.0
                } else {
                    (u - 0.5) * 1e6
                }
            })
            .collect();
        v[3] = -0.0;
        let mut expected = v.clone();
        expected.sort_by(f64::total_cmp);
        let sorted = sort_finite(&v);
        assert_eq!(sorted.values().collect::<Vec<_>>(), expected);
        assert_eq!(sorted.keys()[sorted.len()], SENTINEL);
        let parts = vec![
            expected[..500].to_vec(),
            vec![f64::NAN, 3.0],
            expected[500..].to_vec(),
        ];
        let (sorted, missing) = sort_finite_parts(parts);
        let mut with_three = expected.clone();
        with_three.push(3.0);
        with_three.sort_by(f64::total_cmp);
        assert_eq!(
            (sorted.values().collect::<Vec<_>>(), missing),
            (with_three, 1)
        );
        let small = sort_finite(&[2.0, f64::INFINITY, -1.0, 0.5]);
        assert_eq!(small.values().collect::<Vec<_>>(), [-1.0, 0.5, 2.0]);
        assert_eq!((small.rank_lt(0.5), small.rank_lt(9.0)), (1, 3));
    }

    /// The fixed-point path (decimal data) sorts exactly like a comparison sort, including
    /// samples that need more decimals further on, ties, −0 and missing values, and gives
    /// up (to the key sort) when a value is not decimal.
    #[test]
    fn decimal_sort_matches_comparison_sort() {
        let mut s: u64 = 99;
        let mut next = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            s >> 11
        };
        let shapes: [&dyn Fn(u64) -> String; 5] = [
            // `%.6g`-like numbers of every magnitude, a few tiny ones late in the sample.
            &|r| {
                let e = if r % 5000 == 7 {
                    -9
                } else {
                    (r % 7) as i32 - 3
                };
                format!(
                    "{:.5e}",
                    ((r >> 8) % 1_000_000) as f64 / 1e5 * 10f64.powi(e) - 4.0
                )
            },
            &|r| format!("{}", (r % 100) as i64 - 50),
            &|r| format!("{:.2}", (r % 1000) as f64 / 7.0),
            &|r| {
                if r % 3 == 0 {
                    "-0".into()
                } else {
                    "0.5".into()
                }
            },
            &|r| format!("{:.3}", (r % 10_000_000) as f64 * 1e9),
        ];
        for (case, shape) in shapes.iter().enumerate() {
            let mut v: Vec<f64> = (0..20_000)
                .map(|_| shape(next()).parse().unwrap())
                .collect();
            v[17] = f64::NAN;
            let mut expected: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
            expected.sort_by(f64::total_cmp);
            let parts = vec![v[..5000].to_vec(), v[5000..].to_vec()];
            let (sorted, missing) = sort_finite_parts(parts);
            assert_eq!(missing, 1, "case {case}");
            let got: Vec<f64> = sorted.values().collect();
            assert_eq!(got, expected, "case {case}");
            assert_eq!(sorted.keys()[sorted.len()], SENTINEL);
        }
        // Not decimal with fewer than 2^52 units (17 significant digits, a binary fraction):
        // the key sort takes over.
        assert!(sort_decimal(&[vec![0.1 + 0.2; 5000]], 5000).is_none());
        assert!(sort_decimal(&[vec![0.1; 5000], vec![2f64.powi(-40)]], 5001).is_none());
    }

    /// Fixed-point pieces sort as their values: at one scale when their decimals differ,
    /// through `f64` values when mixed with values, as `f64` keys when too wide for one scale.
    #[test]
    fn fixed_parts_sort_like_their_values() {
        use crate::sample::SampleBuilder;
        let mut s: u64 = 7;
        let mut ints = |n: usize, spread: i64| -> Vec<i64> {
            (0..n)
                .map(|_| {
                    s = s
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((s >> 20) as i64 % spread) - spread / 2
                })
                .collect()
        };
        let a = ints(6000, 2_000_000);
        let b = ints(3000, 5_000);
        let wide = vec![1i64 << 52, -(1 << 52)];
        let value = |i: i64, d: u32| i as f64 / pow10(d);
        // Packed decimals with `decimals(i)` decimals each.
        let packed = |ints: &[i64], decimals: &dyn Fn(i64) -> u32| {
            let mut builder = SampleBuilder::with_capacity(ints.len());
            for &i in ints {
                builder.push_decimal(i, decimals(i));
            }
            let part = builder.finish();
            assert!(matches!(part, SamplePart::Packed(_)));
            part
        };
        let cases: Vec<(Vec<SamplePart>, bool)> = vec![
            (
                vec![
                    SamplePart::Fixed {
                        values: a.clone(),
                        decimals: 6,
                    },
                    SamplePart::Missing(3),
                    SamplePart::Fixed {
                        values: b.clone(),
                        decimals: 2,
                    },
                ],
                true,
            ),
            (
                vec![
                    SamplePart::Fixed {
                        values: a.clone(),
                        decimals: 6,
                    },
                    SamplePart::Values(vec![0.25, f64::NAN, -7.5]),
                ],
                // Through `f64`s, then found decimal again.
                true,
            ),
            (
                vec![
                    SamplePart::Fixed {
                        values: b.clone(),
                        decimals: 0,
                    },
                    SamplePart::Fixed {
                        values: wide.clone(),
                        decimals: 0,
                    },
                    SamplePart::Fixed {
                        values: vec![1],
                        decimals: 3,
                    },
                ],
                false,
            ),
            // Packed pieces with up to 7 decimals: sorted as they unpack.
            (
                vec![
                    packed(&a, &|i| (i.rem_euclid(8)) as u32),
                    SamplePart::Missing(2),
                    packed(&b, &|_| 1),
                ],
                true,
            ),
            // Packed and `i64` pieces: at one scale.
            (
                vec![
                    packed(&a, &|i| (i.rem_euclid(3)) as u32),
                    SamplePart::Fixed {
                        values: b.clone(),
                        decimals: 4,
                    },
                ],
                true,
            ),
            // Packed at 12 decimals: too many for the packed sort, and integers of eight
            // digits at that scale pass the limit.
            (
                vec![
                    packed(&a, &|i| if i % 5 == 0 { 12 } else { 0 }),
                    packed(&[1, 2, 3], &|_| 12),
                ],
                false,
            ),
        ];
        for (case, (parts, fixed)) in cases.into_iter().enumerate() {
            let mut expected: Vec<f64> = Vec::new();
            let mut missing = 0;
            for p in &parts {
                match p {
                    SamplePart::Values(v) => {
                        expected.extend(v.iter().filter(|x| x.is_finite()));
                        missing += v.iter().filter(|x| !x.is_finite()).count();
                    }
                    SamplePart::Fixed { values, decimals } => {
                        expected.extend(values.iter().map(|&i| value(i, *decimals)))
                    }
                    SamplePart::Packed(p) => expected.extend(p.to_values()),
                    SamplePart::Missing(n) => missing += n,
                }
            }
            expected.sort_by(f64::total_cmp);
            let (sorted, got_missing) = sort_parts(parts);
            assert_eq!(sorted.decimals().is_some(), fixed, "case {case}");
            assert_eq!(got_missing, missing, "case {case}");
            assert_eq!(sorted.values().collect::<Vec<_>>(), expected, "case {case}");
            assert_eq!(sorted.keys()[sorted.len()], SENTINEL);
            let probe = expected[expected.len() / 3];
            let below = expected.iter().filter(|&&x| x < probe).count();
            assert_eq!(sorted.rank_lt(probe), below, "case {case}");
        }
    }

    #[test]
    fn small_samples_sort() {
        let small = sort_finite(&[2.0, f64::INFINITY, -1.0, 0.5]);
        assert_eq!(small.values().collect::<Vec<_>>(), [-1.0, 0.5, 2.0]);
        assert_eq!((small.rank_lt(0.5), small.rank_lt(9.0)), (1, 3));
    }
}
