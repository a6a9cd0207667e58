//! Sorting of finite `f64` samples: an LSD radix sort over order-preserving integer keys, or
//! over exact fixed-point integers when the sample is decimal data (far fewer passes).
//!
//! Sorting dominates exact drift tests on large samples (everything else is linear), and a
//! radix sort is about twice as fast as a comparison sort on a million values. (Sorting the
//! two samples together with a tag per value, to scan their merged order instead of merging,
//! was measured slower: carrying the tags doubles the scattered write streams.)

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

/// The finite values of a sample, sorted ascending and kept as their sort keys (see [`key`]),
/// followed by [`SENTINEL`].
///
/// The tests read the sorted sample straight from the keys the radix sort leaves behind:
/// converting back to `f64` would be two more passes over every column, and the merge of two
/// samples compares integers and needs no bounds checks thanks to the sentinel.
#[derive(Debug, Clone)]
pub(crate) struct SortedSample {
    keys: Vec<u64>,
}

impl SortedSample {
    /// From values already sorted ascending and free of NaN.
    pub(crate) fn from_sorted(values: &[f64]) -> SortedSample {
        let mut keys = Vec::with_capacity(values.len() + 1);
        keys.extend(values.iter().map(|&x| key(x)));
        keys.push(SENTINEL);
        SortedSample { keys }
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

    #[inline]
    pub(crate) fn value(&self, i: usize) -> f64 {
        unkey(self.keys[i])
    }

    /// The values in ascending order.
    pub(crate) fn values(&self) -> impl Iterator<Item = f64> + '_ {
        self.keys[..self.len()].iter().map(|&k| unkey(k))
    }

    /// How many values are `< x`.
    pub(crate) fn rank_lt(&self, x: f64) -> usize {
        if x.is_nan() {
            return 0;
        }
        let k = key(x);
        self.keys[..self.len()].partition_point(|&v| v < k)
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
    if n < 4096 || n >= u32::MAX as usize {
        let mut keys = take_buffer();
        keys.clear();
        keys.reserve(n + 1);
        keys.extend(finite_keys(&parts));
        keys.sort_unstable();
        keys.push(SENTINEL);
        return (SortedSample { keys }, missing);
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
        return (SortedSample { keys }, missing);
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
    (SortedSample { keys }, missing)
}

/// Exact powers of ten representable in an `f64`.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// `x` as a fixed-point integer `i` with `k` decimals (`p` = 10^k): `Some(i)` when `|i| < 2^53`
/// and `i / p`, correctly rounded, is exactly `x`.
#[inline(always)]
fn fixed_point(x: f64, p: f64) -> Option<i64> {
    let t = x * p;
    if t.abs() >= 9_007_199_254_740_992.0 {
        return None;
    }
    // The nearest integer (any candidate is checked below). Exact conversions: |i| < 2^53.
    let i = (t + 0.5f64.copysign(t)) as i64;
    (i as f64 / p == x).then_some(i)
}

/// The fewest decimals with which `x` is a fixed-point integer, if any.
fn decimals(x: f64) -> Option<usize> {
    (0..POW10.len()).find(|&k| fixed_point(x, POW10[k]).is_some())
}

/// Largest radix digit of the fixed-point sort.
const DECIMAL_DIGIT_BITS: u32 = 13;

/// Sort of decimal data (what CSV files hold: numbers written with a few significant digits).
///
/// Each value is `i / 10^k` for an integer `i` below 2^53 with one `k` for the whole sample
/// (checked exactly for every value; `None` when some value is not, and the caller sorts the
/// keys of the `f64`s instead). Integers in order give the values in order, and equal
/// integers equal values, so radix-sorting `i − min` sorts the sample; its range is far
/// narrower than 64 bits (a column of `%.6g` numbers spans 8 to 45 bits), which saves two or
/// three of the five passes. The last pass writes each value's key, `i / 10^k` rounded as
/// the parser rounded it.
fn sort_decimal(parts: &[Vec<f64>], total: usize) -> Option<(SortedSample, usize)> {
    let mut fixed = buffer_of_len(total);
    let Some((n, lo, hi, p)) = fixed_points(parts, &mut fixed) else {
        give_back(fixed);
        return None;
    };
    let missing = total - n;
    let range = (hi as u64).wrapping_sub(lo as u64);
    let bits = u64::BITS - range.leading_zeros();
    let passes = bits.div_ceil(DECIMAL_DIGIT_BITS);
    let value_key = |u: u64| key((u.wrapping_add(lo as u64) as i64) as f64 / p);
    if passes == 0 {
        // Every value is the same.
        let k = value_key(0);
        fixed[..n].fill(k);
        fixed.truncate(n);
        fixed.push(SENTINEL);
        return Some((SortedSample { keys: fixed }, missing));
    }
    let digit_bits = bits.div_ceil(passes);
    let mask = (1u64 << digit_bits) - 1;
    let from_fixed = |v: u64| v.wrapping_sub(lo as u64);
    let mut histograms = vec![vec![0u32; 1 << digit_bits]; passes as usize];
    for &v in &fixed[..n] {
        let u = from_fixed(v);
        for (pass, h) in histograms.iter_mut().enumerate() {
            h[((u >> (pass as u32 * digit_bits)) & mask) as usize] += 1;
        }
    }
    let mut scratch = buffer_of_len(n);
    let mut src: &mut [u64] = &mut fixed[..n];
    let mut dst: &mut [u64] = &mut scratch[..n];
    let last = passes as usize - 1;
    // The first pass reads the integers (offset by `lo` on the fly), the last one writes keys.
    let same = |u: u64| u;
    for (pass, h) in histograms.iter_mut().enumerate() {
        prefix_sums(h);
        let shift = pass as u32 * digit_bits;
        match (pass == 0, pass == last) {
            (true, true) => scatter(src, dst, h, shift, mask, from_fixed, value_key),
            (true, false) => scatter(src, dst, h, shift, mask, from_fixed, same),
            (false, true) => scatter(src, dst, h, shift, mask, same, value_key),
            (false, false) => scatter(src, dst, h, shift, mask, same, same),
        }
        std::mem::swap(&mut src, &mut dst);
    }
    // After an odd number of passes the keys are in the scratch buffer.
    let mut keys = fixed;
    if passes % 2 == 1 {
        std::mem::swap(&mut keys, &mut scratch);
    }
    keys.truncate(n);
    keys.push(SENTINEL);
    give_back(scratch);
    Some((SortedSample { keys }, missing))
}

/// One radix pass: `load` turns a stored word into the sorted integer, `store` into what
/// the pass writes.
#[inline(always)]
fn scatter(
    src: &[u64],
    dst: &mut [u64],
    h: &mut [u32],
    shift: u32,
    mask: u64,
    load: impl Fn(u64) -> u64,
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
/// their count, smallest, largest and scale `10^k`; `None` unless they all are, with one `k`.
fn fixed_points(parts: &[Vec<f64>], out: &mut [u64]) -> Option<(usize, i64, i64, f64)> {
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
                    // More decimals: scale what is done (exact while below 2^53) or give up.
                    let more = decimals(x).filter(|&d| d > k)?;
                    let factor = 10i64.checked_pow((more - k) as u32)?;
                    let limit = 1i64 << 53;
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
    (n > 0).then_some((n, lo, hi, p))
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
        // Not decimal with fewer than 2^53 units (17 significant digits, a binary fraction):
        // the key sort takes over.
        assert!(sort_decimal(&[vec![0.1 + 0.2; 5000]], 5000).is_none());
        assert!(sort_decimal(&[vec![0.1; 5000], vec![2f64.powi(-40)]], 5001).is_none());
    }

    #[test]
    fn small_samples_sort() {
        let small = sort_finite(&[2.0, f64::INFINITY, -1.0, 0.5]);
        assert_eq!(small.values().collect::<Vec<_>>(), [-1.0, 0.5, 2.0]);
        assert_eq!((small.rank_lt(0.5), small.rank_lt(9.0)), (1, 3));
    }
}
