//! Data drift between a reference sample and a current sample (SPEC §6).
//!
//! What lives here:
//! - the tests: two-sample Kolmogorov–Smirnov ([`ks_2samp`], as `scipy.stats.ks_2samp` with
//!   its default method), Pearson's chi-squared test of homogeneity ([`chi2_homogeneity`], as
//!   `scipy.stats.chi2_contingency(table, correction=False)`), the population stability index
//!   ([`psi_numeric`], [`psi_categorical`]), the normed Wasserstein distance
//!   ([`wasserstein_normed`]) and the Jensen–Shannon distance ([`jensen_shannon_numeric`],
//!   [`jensen_shannon_categorical`]);
//! - the same quantities from two mergeable profiles ([`ks_from_sketches`],
//!   [`psi_from_sketches`], [`chi2_from_counts`], …; see [`crate::sketch`]);
//! - the decision rule (p-value < `alpha` **and** PSI ≥ `psi_threshold`) and the report over
//!   many features ([`DriftReport`]) with its `data_drift_score`.
//!
//! Missing values (NaN, ±∞) are left out of every test and reported as a missing share.
//! A feature whose reference or current sample has no values at all cannot be tested: its
//! statistics are absent and it does not count as drifted (it still counts in the denominator
//! of `data_drift_score`, which is the share of *all* features that drifted).

pub use crate::sample::SamplePart;
use crate::sketch::{CategoricalCounts, NumericSketch, SortedView};
use crate::sort::{fixed_int, pow10, sort_finite, sort_parts, unkey, SortedSample, SENTINEL};
use crate::{check_open_unit, invalid, special, Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Default significance level of the drift tests.
pub const DEFAULT_ALPHA: f64 = 0.05;
/// Default PSI from which a change counts as practically significant.
pub const DEFAULT_PSI_THRESHOLD: f64 = 0.1;
/// PSI proportions below this are raised to it, so empty bins give a finite PSI.
pub const PSI_FLOOR: f64 = 1e-4;
/// Equal-width bins of the numeric Jensen–Shannon distance.
pub const JS_BINS: usize = 30;
/// `ks_2samp`'s `method='auto'` is exact while both samples have at most this many values.
pub const KS_EXACT_MAX_N: u64 = 10_000;
/// Floor of the reference standard deviation in the normed Wasserstein distance (Evidently's).
const WASSERSTEIN_STD_FLOOR: f64 = 0.001;

/// How the p-value of a KS test was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KsMethod {
    /// Exact null distribution of the two-sample statistic (both samples ≤ 10,000 values).
    Exact,
    /// Kolmogorov distribution with `n = round(n1·n2 / (n1 + n2))`, as SciPy.
    Asymptotic,
}

/// Result of a two-sample Kolmogorov–Smirnov test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KsTest {
    pub statistic: f64,
    pub p_value: f64,
    pub method: KsMethod,
}

/// Result of a chi-squared test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Chi2Test {
    pub statistic: f64,
    pub p_value: f64,
    pub dof: u64,
}

/// Samples summarised as sorted distinct-or-repeated values with cumulative weights: a sorted
/// slice (every weight 1) or a sketch. The tests are written once over this view.
trait Ranked {
    /// Number of stored items.
    fn items(&self) -> usize;
    fn value(&self, i: usize) -> f64;
    /// Total weight of items `..=i`.
    fn cumulative(&self, i: usize) -> u64;
    /// Total weight.
    fn total(&self) -> u64;
    /// Value of the `j`-th smallest element (0-based) of the summarised sample.
    fn value_at(&self, j: u64) -> f64;

    /// Weight of values `< x`.
    fn rank_lt(&self, x: f64) -> u64;
}

impl Ranked for [f64] {
    fn items(&self) -> usize {
        self.len()
    }
    fn value(&self, i: usize) -> f64 {
        self[i]
    }
    fn cumulative(&self, i: usize) -> u64 {
        i as u64 + 1
    }
    fn total(&self) -> u64 {
        self.len() as u64
    }
    fn value_at(&self, j: u64) -> f64 {
        self[j as usize]
    }
    fn rank_lt(&self, x: f64) -> u64 {
        self.partition_point(|&v| v < x) as u64
    }
}

impl Ranked for SortedSample {
    fn items(&self) -> usize {
        self.len()
    }
    fn value(&self, i: usize) -> f64 {
        SortedSample::value(self, i)
    }
    fn cumulative(&self, i: usize) -> u64 {
        i as u64 + 1
    }
    fn total(&self) -> u64 {
        self.len() as u64
    }
    fn value_at(&self, j: u64) -> f64 {
        SortedSample::value(self, j as usize)
    }
    fn rank_lt(&self, x: f64) -> u64 {
        SortedSample::rank_lt(self, x) as u64
    }
}

impl Ranked for SortedView {
    fn items(&self) -> usize {
        self.values.len()
    }
    fn value(&self, i: usize) -> f64 {
        self.values[i]
    }
    fn cumulative(&self, i: usize) -> u64 {
        self.cumulative[i]
    }
    fn total(&self) -> u64 {
        SortedView::total(self)
    }
    fn value_at(&self, j: u64) -> f64 {
        let i = self.cumulative.partition_point(|&c| c <= j);
        self.values[i.min(self.values.len() - 1)]
    }
    fn rank_lt(&self, x: f64) -> u64 {
        SortedView::rank_lt(self, x)
    }
}

/// NumPy's default (`method='linear'`) quantile of a sorted sample.
fn quantile<R: Ranked + ?Sized>(sorted: &R, q: f64) -> f64 {
    let n = sorted.total();
    let virtual_index = (n - 1) as f64 * q;
    let previous = virtual_index.floor();
    let gamma = virtual_index - previous;
    let previous = (previous as u64).min(n - 1);
    let next = (previous + 1).min(n - 1);
    let (a, b) = (sorted.value_at(previous), sorted.value_at(next));
    // NumPy's `_lerp`, exact at both ends.
    let diff = b - a;
    if gamma >= 0.5 {
        b - diff * (1.0 - gamma)
    } else {
        a + diff * gamma
    }
}

/// Largest gap `|F_a − F_b|` between the empirical CDFs (the two-sided KS statistic),
/// evaluated (like SciPy) at every observed value with right-continuous CDFs, so ties are
/// handled exactly.
fn largest_ecdf_gap<A: Ranked + ?Sized, B: Ranked + ?Sized>(a: &A, b: &B) -> f64 {
    let (na, nb) = (a.total() as f64, b.total() as f64);
    let (la, lb) = (a.items(), b.items());
    let (mut i, mut j) = (0usize, 0usize);
    let mut gap = 0.0f64;
    while i < la || j < lb {
        let x = match (i < la, j < lb) {
            (true, true) => a.value(i).min(b.value(j)),
            (true, false) => a.value(i),
            _ => b.value(j),
        };
        while i < la && a.value(i) <= x {
            i += 1;
        }
        while j < lb && b.value(j) <= x {
            j += 1;
        }
        let ca = if i == 0 { 0 } else { a.cumulative(i - 1) };
        let cb = if j == 0 { 0 } else { b.cumulative(j - 1) };
        gap = gap.max((ca as f64 / na - cb as f64 / nb).abs());
    }
    gap
}

/// What one merge pass over two sorted samples yields.
struct MergeWalk {
    /// Largest `|F_a − F_b|` over observed values: the two-sided KS statistic.
    gap: f64,
    /// ∫ |F_a − F_b| dx: the Wasserstein-1 distance.
    area: f64,
}

/// The KS gaps and the Wasserstein area of two sorted samples in one merge pass.
///
/// This is the hot loop of the drift report (two million steps for a million rows per side).
/// A merge step depends on the previous one (which side advanced decides what to load next),
/// so one merge runs at the speed of that dependency chain. The value range is therefore cut
/// at quantiles of `a` into [`MERGE_LANES`] independent ranges whose merges advance in
/// lockstep, letting the processor overlap their chains. Each step takes one element without
/// a data-dependent branch (the side is a select) and compares sort keys, which are integers,
/// and the sentinel ending both samples stands for "no more values" without a bounds test;
/// the CDFs are evaluated where a run of equal values ends, a branch that is predictable
/// (nearly always taken for continuous data, nearly never inside long ties). Lanes cut at a
/// value `v` with lower bounds on both sides, so runs of equal values never straddle two
/// lanes, and the last step of a lane looks at the first value of the next lane, exactly as
/// one long merge would.
fn merge_walk(a: &mut SortedSample, b: &mut SortedSample) -> MergeWalk {
    SortedSample::align(a, b);
    let (na, nb) = (a.len(), b.len());
    match a.decimals() {
        // Fixed-point keys: all in integers (see [`FixedLane`]), scaled once at the end.
        Some(d)
            if (na as u64)
                .checked_mul(nb as u64)
                .is_some_and(|p| p < 1 << 62) =>
        {
            let lanes: [FixedLane; MERGE_LANES] = merge_lanes(a.keys(), b.keys(), na, nb, ());
            let cells = na as f64 * nb as f64;
            let (mut gap, mut area) = (0u64, 0u128);
            for l in lanes {
                (gap, area) = (gap.max(l.gap), area + l.area);
            }
            MergeWalk {
                gap: gap as f64 / cells,
                area: area as f64 / cells / pow10(d),
            }
        }
        Some(d) => {
            let mut walk = float_walk(a, b, |k| fixed_int(k) as f64);
            walk.area /= pow10(d);
            walk
        }
        None => float_walk(a, b, unkey),
    }
}

/// [`merge_walk`] in `f64`: `at` gives a key's position on the value axis.
fn float_walk(a: &SortedSample, b: &SortedSample, at: fn(u64) -> f64) -> MergeWalk {
    let (na, nb) = (a.len(), b.len());
    let ctx = FloatContext {
        fa: 1.0 / na as f64,
        fb: 1.0 / nb as f64,
        at,
    };
    let lanes: [FloatLane; MERGE_LANES] = merge_lanes(a.keys(), b.keys(), na, nb, ctx);
    let mut total = MergeWalk {
        gap: 0.0,
        area: 0.0,
    };
    for l in lanes {
        total.gap = total.gap.max(l.gap);
        total.area += l.area;
    }
    total
}

/// One merge of a range of both key slices (each ending with the sentinel), advanced a step
/// at a time.
trait Lane: Copy {
    type Context: Copy;
    fn new(a: &[u64], b: &[u64], i: usize, j: usize, steps: usize, ctx: Self::Context) -> Self;
    fn steps(&self) -> usize;
    fn step(&mut self, a: &[u64], b: &[u64], ctx: Self::Context);
}

/// Run [`MERGE_LANES`] lanes over the merged order of `a` and `b` cut into equal parts, in
/// lockstep; the finished lanes hold the partial results.
#[inline(always)]
fn merge_lanes<L: Lane>(
    a: &[u64],
    b: &[u64],
    na: usize,
    nb: usize,
    ctx: L::Context,
) -> [L; MERGE_LANES] {
    // Cut the merged order into equal parts at value boundaries (small samples: one lane
    // does all and the others nothing).
    let mut cuts = [(na, nb); MERGE_LANES + 1];
    cuts[0] = (0, 0);
    if na + nb >= 8192 {
        for (k, cut) in cuts.iter_mut().enumerate().take(MERGE_LANES).skip(1) {
            let v = kth_smallest(&a[..na], &b[..nb], k * (na + nb) / MERGE_LANES);
            *cut = (
                a[..na].partition_point(|&x| x < v),
                b[..nb].partition_point(|&x| x < v),
            );
        }
    }
    let lane = |k: usize| {
        let ((i0, j0), (i1, j1)) = (cuts[k], cuts[k + 1]);
        L::new(a, b, i0, j0, (i1 - i0) + (j1 - j0), ctx)
    };
    let mut lanes: [L; MERGE_LANES] = std::array::from_fn(lane);
    let common = lanes.iter().map(L::steps).min().unwrap_or(0);
    // Independent merges interleaved.
    for _ in 0..common {
        for l in &mut lanes {
            l.step(a, b, ctx);
        }
    }
    for l in &mut lanes {
        for _ in common..l.steps() {
            l.step(a, b, ctx);
        }
    }
    lanes
}

/// The `t`-th smallest (0-based) key of the union of two sorted key slices, by binary search
/// on how many of the first `t + 1` come from `a` (the "merge path" co-rank).
fn kth_smallest(a: &[u64], b: &[u64], t: usize) -> u64 {
    let at = |s: &[u64], i: usize| s.get(i).copied().unwrap_or(SENTINEL);
    let (mut lo, mut hi) = (t.saturating_sub(b.len()), t.min(a.len()));
    while lo < hi {
        let i = (lo + hi) / 2;
        let j = t - i;
        if j > 0 && a[i] < b[j - 1] {
            lo = i + 1;
        } else {
            hi = i;
        }
    }
    at(a, lo).min(at(b, t - lo))
}

/// Independent merges advanced together by [`merge_walk`].
const MERGE_LANES: usize = 4;

#[derive(Clone, Copy)]
struct FloatContext {
    fa: f64,
    fb: f64,
    at: fn(u64) -> f64,
}

/// A lane of [`float_walk`]: global positions, steps, the value at the current position,
/// partial results.
#[derive(Clone, Copy)]
struct FloatLane {
    i: usize,
    j: usize,
    steps: usize,
    x: f64,
    gap: f64,
    area: f64,
}

impl Lane for FloatLane {
    type Context = FloatContext;

    fn new(a: &[u64], b: &[u64], i: usize, j: usize, steps: usize, ctx: FloatContext) -> Self {
        FloatLane {
            i,
            j,
            steps,
            x: (ctx.at)(a[i].min(b[j])),
            gap: 0.0,
            area: 0.0,
        }
    }

    fn steps(&self) -> usize {
        self.steps
    }

    #[inline(always)]
    fn step(&mut self, a: &[u64], b: &[u64], ctx: FloatContext) {
        let (ai, bj) = (a[self.i], b[self.j]);
        let take_a = ai <= bj;
        self.i += usize::from(take_a);
        self.j += usize::from(!take_a);
        let next = a[self.i].min(b[self.j]);
        if next != ai.min(bj) {
            // Counts are below 2^53, so the conversions are exact.
            let diff = self.i as i64 as f64 * ctx.fa - self.j as i64 as f64 * ctx.fb;
            self.gap = self.gap.max(diff.abs());
            if next != SENTINEL {
                let next = (ctx.at)(next);
                self.area += diff.abs() * (next - self.x);
                self.x = next;
            }
        }
    }
}

/// A lane of [`merge_walk`] over fixed-point keys, in integers only and without a branch.
///
/// `d = i·n_b − j·n_a` is the CDF gap `F_a − F_b` times `n_a·n_b`, updated by `+n_b` or
/// `−n_a` per step; the largest `|d|` is taken where a run of equal values ends. The area
/// adds `|d| · (next − current)` at every step, which is 0 inside a run, so it needs no
/// condition; key differences are integer differences, and the sum is exact in 128 bits
/// (at most `n_a·n_b` times the value range). At the very end `d` is 0, so the sentinel's
/// term vanishes.
#[derive(Clone, Copy)]
struct FixedLane {
    i: usize,
    j: usize,
    steps: usize,
    d: i64,
    gap: u64,
    area: u128,
}

impl Lane for FixedLane {
    type Context = ();

    fn new(a: &[u64], b: &[u64], i: usize, j: usize, steps: usize, _: ()) -> Self {
        let (na, nb) = (a.len() as i64 - 1, b.len() as i64 - 1);
        FixedLane {
            i,
            j,
            steps,
            d: i as i64 * nb - j as i64 * na,
            gap: 0,
            area: 0,
        }
    }

    fn steps(&self) -> usize {
        self.steps
    }

    #[inline(always)]
    fn step(&mut self, a: &[u64], b: &[u64], _: ()) {
        let (na, nb) = (a.len() as i64 - 1, b.len() as i64 - 1);
        let (ai, bj) = (a[self.i], b[self.j]);
        let take_a = ai <= bj;
        let current = ai.min(bj);
        self.i += usize::from(take_a);
        self.j += usize::from(!take_a);
        self.d += if take_a { nb } else { -na };
        let next = a[self.i].min(b[self.j]);
        let size = self.d.unsigned_abs();
        self.gap = self.gap.max(if next != current { size } else { 0 });
        self.area += u128::from(size) * u128::from(next.wrapping_sub(current));
    }
}

/// Two-sample Kolmogorov–Smirnov test, two-sided, as `scipy.stats.ks_2samp(reference,
/// current)`. Non-finite values are treated as missing and left out.
pub fn ks_2samp(reference: &[f64], current: &[f64]) -> Result<KsTest> {
    ks_sorted(&mut sort_finite(reference), &mut sort_finite(current))
}

/// [`ks_2samp`] on samples already sorted ascending and free of NaN.
pub fn ks_2samp_sorted(reference: &[f64], current: &[f64]) -> Result<KsTest> {
    ks_sorted(
        &mut SortedSample::from_sorted(reference),
        &mut SortedSample::from_sorted(current),
    )
}

fn ks_sorted(reference: &mut SortedSample, current: &mut SortedSample) -> Result<KsTest> {
    check_nonempty(reference.len(), "reference sample")?;
    check_nonempty(current.len(), "current sample")?;
    let walk = merge_walk(reference, current);
    Ok(ks_from_statistic(
        reference.len() as u64,
        current.len() as u64,
        walk.gap,
    ))
}

/// p-value of a two-sided KS statistic `d` for sample sizes `n1`, `n2`, chosen as SciPy's
/// `method='auto'`: the exact distribution when both sizes are ≤ [`KS_EXACT_MAX_N`] (the
/// statistic is then snapped to the lattice `h / lcm(n1, n2)` it must lie on), otherwise the
/// Kolmogorov distribution `kstwo.sf(d, round(n1·n2/(n1+n2)))`.
pub fn ks_from_statistic(n1: u64, n2: u64, d: f64) -> KsTest {
    if n1.max(n2) <= KS_EXACT_MAX_N {
        let g = special::gcd(n1, n2);
        let lcm = (n1 / g) as f64 * n2 as f64;
        let h = round_half_even(d * lcm);
        let d = h / lcm;
        let p = special::ks_2samp_exact_sf(n1, n2, h as u64);
        return KsTest {
            statistic: d,
            p_value: p.clamp(0.0, 1.0),
            method: KsMethod::Exact,
        };
    }
    let (m, n) = (n1.max(n2) as f64, n1.min(n2) as f64);
    let en = round_half_even(m * n / (m + n)) as u64;
    let p = special::kolmogorov_sf(en.max(1), d);
    KsTest {
        statistic: d,
        p_value: p.clamp(0.0, 1.0),
        method: KsMethod::Asymptotic,
    }
}

/// Pearson's chi-squared test of homogeneity on the 2×k table whose rows are `reference` and
/// `current` counts per category (same order), without continuity correction, as
/// `scipy.stats.chi2_contingency([reference, current], correction=False)`.
///
/// Categories absent from both rows are dropped (SciPy would refuse the zero expected count).
/// With a single category left the samples cannot differ: statistic 0, p-value 1.
pub fn chi2_homogeneity(reference: &[u64], current: &[u64]) -> Result<Chi2Test> {
    if reference.len() != current.len() {
        return Err(Error::LengthMismatch {
            what: "category counts",
            left: reference.len(),
            right: current.len(),
        });
    }
    let cols: Vec<(f64, f64)> = reference
        .iter()
        .zip(current)
        .filter(|(a, b)| **a + **b > 0)
        .map(|(&a, &b)| (a as f64, b as f64))
        .collect();
    let r1: f64 = cols.iter().map(|c| c.0).sum();
    let r2: f64 = cols.iter().map(|c| c.1).sum();
    check_nonempty(r1 as usize, "reference sample")?;
    check_nonempty(r2 as usize, "current sample")?;
    let dof = cols.len().saturating_sub(1) as u64;
    if dof == 0 {
        return Ok(Chi2Test {
            statistic: 0.0,
            p_value: 1.0,
            dof: 0,
        });
    }
    let total = r1 + r2;
    let mut statistic = 0.0;
    for &(a, b) in &cols {
        let col = a + b;
        for (observed, row) in [(a, r1), (b, r2)] {
            let expected = row * col / total;
            statistic += (observed - expected) * (observed - expected) / expected;
        }
    }
    Ok(Chi2Test {
        statistic,
        p_value: special::chi2_sf(statistic, dof as f64),
        dof,
    })
}

/// Chi-squared goodness-of-fit of `observed` counts to `expected` proportions (any positive
/// weights, rescaled to the observed total), as `scipy.stats.chisquare(observed, f_exp)`.
pub fn chi2_goodness_of_fit(observed: &[u64], expected_weights: &[f64]) -> Result<Chi2Test> {
    if observed.len() != expected_weights.len() {
        return Err(Error::LengthMismatch {
            what: "observed counts and expected weights",
            left: observed.len(),
            right: expected_weights.len(),
        });
    }
    if observed.len() < 2 {
        return Err(invalid("observed counts", "at least two groups are needed"));
    }
    if expected_weights
        .iter()
        .any(|w| !(w.is_finite() && *w > 0.0))
    {
        return Err(invalid(
            "expected weights",
            "every weight must be positive and finite",
        ));
    }
    let n: u64 = observed.iter().sum();
    check_nonempty(n as usize, "observed counts")?;
    let wsum: f64 = expected_weights.iter().sum();
    let mut statistic = 0.0;
    for (&o, &w) in observed.iter().zip(expected_weights) {
        let e = n as f64 * w / wsum;
        statistic += (o as f64 - e) * (o as f64 - e) / e;
    }
    let dof = (observed.len() - 1) as u64;
    Ok(Chi2Test {
        statistic,
        p_value: special::chi2_sf(statistic, dof as f64),
        dof,
    })
}

/// The PSI cut points of a sorted reference: its 10%, 20%, …, 90% quantiles (linear
/// interpolation), duplicates removed.
fn psi_cut_points<R: Ranked + ?Sized>(reference: &R) -> Vec<f64> {
    let mut cuts: Vec<f64> = (1..10)
        .map(|i| quantile(reference, i as f64 / 10.0))
        .collect();
    cuts.dedup();
    cuts
}

/// Share of a sorted sample in each PSI bin; bin `i` holds the values with exactly `i` cut
/// points `<= x`.
fn psi_bin_shares<R: Ranked + ?Sized>(sample: &R, cuts: &[f64]) -> Vec<f64> {
    let n = sample.total() as f64;
    let mut shares = Vec::with_capacity(cuts.len() + 1);
    let mut below = 0u64;
    for &c in cuts {
        let lt = sample.rank_lt(c);
        shares.push((lt - below) as f64 / n);
        below = lt;
    }
    shares.push((sample.total() - below) as f64 / n);
    shares
}

/// PSI = Σ (cur − ref) · ln(cur / ref) over bins, each proportion raised to at least
/// [`PSI_FLOOR`].
pub fn psi_from_shares(reference: &[f64], current: &[f64]) -> f64 {
    reference
        .iter()
        .zip(current)
        .map(|(&r, &c)| {
            let (r, c) = (r.max(PSI_FLOOR), c.max(PSI_FLOOR));
            (c - r) * (c / r).ln()
        })
        .sum()
}

/// Population stability index of a numeric feature (SPEC §6). Non-finite values are missing.
pub fn psi_numeric(reference: &[f64], current: &[f64]) -> Result<f64> {
    psi_sorted(&sort_finite(reference), &sort_finite(current))
}

/// [`psi_numeric`] on samples already sorted ascending and free of NaN.
pub fn psi_numeric_sorted(reference: &[f64], current: &[f64]) -> Result<f64> {
    psi_sorted(reference, current)
}

fn psi_sorted<A: Ranked + ?Sized, B: Ranked + ?Sized>(reference: &A, current: &B) -> Result<f64> {
    check_nonempty(reference.items(), "reference sample")?;
    check_nonempty(current.items(), "current sample")?;
    Ok(psi_ranked(reference, current))
}

fn psi_ranked<A: Ranked + ?Sized, B: Ranked + ?Sized>(reference: &A, current: &B) -> f64 {
    let cuts = psi_cut_points(reference);
    psi_from_shares(
        &psi_bin_shares(reference, &cuts),
        &psi_bin_shares(current, &cuts),
    )
}

/// Population stability index of a categorical feature: bins are the categories seen in
/// either sample.
pub fn psi_categorical(reference: &CategoricalCounts, current: &CategoricalCounts) -> Result<f64> {
    let (r, c) = aligned_counts(reference, current);
    check_nonempty(reference.total() as usize, "reference sample")?;
    check_nonempty(current.total() as usize, "current sample")?;
    Ok(psi_from_shares(&shares(&r), &shares(&c)))
}

/// Wasserstein-1 distance between two empirical distributions, as
/// `scipy.stats.wasserstein_distance(u, v)`: ∫ |F_u − F_v| dx.
pub fn wasserstein(u: &[f64], v: &[f64]) -> Result<f64> {
    let (mut a, mut b) = (sort_finite(u), sort_finite(v));
    check_nonempty(a.len(), "reference sample")?;
    check_nonempty(b.len(), "current sample")?;
    Ok(merge_walk(&mut a, &mut b).area)
}

fn wasserstein_ranked<A: Ranked + ?Sized, B: Ranked + ?Sized>(a: &A, b: &B) -> f64 {
    let (na, nb) = (a.total() as f64, b.total() as f64);
    let (la, lb) = (a.items(), b.items());
    let (mut i, mut j) = (0usize, 0usize);
    let mut distance = 0.0;
    let mut previous: Option<(f64, f64)> = None; // (x, |F_a(x) − F_b(x)|)
    while i < la || j < lb {
        let x = match (i < la, j < lb) {
            (true, true) => a.value(i).min(b.value(j)),
            (true, false) => a.value(i),
            _ => b.value(j),
        };
        if let Some((px, gap)) = previous {
            distance += gap * (x - px);
        }
        while i < la && a.value(i) <= x {
            i += 1;
        }
        while j < lb && b.value(j) <= x {
            j += 1;
        }
        let ca = if i == 0 { 0 } else { a.cumulative(i - 1) };
        let cb = if j == 0 { 0 } else { b.cumulative(j - 1) };
        previous = Some((x, (ca as f64 / na - cb as f64 / nb).abs()));
    }
    distance
}

/// Wasserstein distance divided by the reference's standard deviation (ddof = 0, floored at
/// 0.001), as Evidently's `wasserstein` drift method defines it.
pub fn wasserstein_normed(reference: &[f64], current: &[f64]) -> Result<f64> {
    wasserstein_normed_keys(&mut sort_finite(reference), &mut sort_finite(current))
}

/// [`wasserstein_normed`] on samples already sorted ascending and free of NaN.
pub fn wasserstein_normed_sorted(reference: &[f64], current: &[f64]) -> Result<f64> {
    wasserstein_normed_keys(
        &mut SortedSample::from_sorted(reference),
        &mut SortedSample::from_sorted(current),
    )
}

fn wasserstein_normed_keys(
    reference: &mut SortedSample,
    current: &mut SortedSample,
) -> Result<f64> {
    check_nonempty(reference.len(), "reference sample")?;
    check_nonempty(current.len(), "current sample")?;
    let std = population_std(reference);
    Ok(merge_walk(reference, current).area / std.max(WASSERSTEIN_STD_FLOOR))
}

fn population_std(x: &SortedSample) -> f64 {
    match x.decimals() {
        // The standard deviation of the exact integers, scaled once: no division per value.
        Some(d) => {
            let keys = &x.keys()[..x.len()];
            let n = keys.len() as f64;
            let mean = sum_by(keys, |k| fixed_int(k) as f64) / n;
            let squares = sum_by(keys, |k| {
                let v = fixed_int(k) as f64 - mean;
                v * v
            });
            (squares / n).sqrt() / pow10(d)
        }
        None => {
            // Two passes, as NumPy computes it.
            let n = x.len() as f64;
            let mean = x.values().sum::<f64>() / n;
            (x.values().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt()
        }
    }
}

/// Σ f(key) in four interleaved sums (one long chain of additions would wait on each).
#[inline(always)]
fn sum_by(keys: &[u64], f: impl Fn(u64) -> f64) -> f64 {
    let mut sums = [0.0f64; 4];
    let chunks = keys.chunks_exact(4);
    let rest = chunks.remainder();
    for c in chunks {
        for (sum, &k) in sums.iter_mut().zip(c) {
            *sum += f(k);
        }
    }
    rest.iter()
        .fold((sums[0] + sums[1]) + (sums[2] + sums[3]), |t, &k| t + f(k))
}

/// Jensen–Shannon distance (natural log, as `scipy.spatial.distance.jensenshannon`) between the
/// histograms of two numeric samples over [`JS_BINS`] equal-width bins spanning both samples
/// (`numpy.histogram_bin_edges(concat, bins=30)`). 0 = identical, ln(2)^½ ≈ 0.833 = disjoint.
pub fn jensen_shannon_numeric(reference: &[f64], current: &[f64]) -> Result<f64> {
    jensen_shannon_sorted(&sort_finite(reference), &sort_finite(current))
}

/// [`jensen_shannon_numeric`] on samples already sorted ascending and free of NaN.
pub fn jensen_shannon_numeric_sorted(reference: &[f64], current: &[f64]) -> Result<f64> {
    jensen_shannon_sorted(reference, current)
}

/// [`jensen_shannon_numeric`] over the bins spanning both sorted samples.
fn jensen_shannon_sorted<A: Ranked + ?Sized, B: Ranked + ?Sized>(
    reference: &A,
    current: &B,
) -> Result<f64> {
    let (n_ref, n_cur) = (reference.items(), current.items());
    check_nonempty(n_ref, "reference sample")?;
    check_nonempty(n_cur, "current sample")?;
    let lo = reference.value(0).min(current.value(0));
    let hi = reference.value(n_ref - 1).max(current.value(n_cur - 1));
    Ok(js_ranked(reference, current, lo, hi))
}

fn js_ranked<A: Ranked + ?Sized, B: Ranked + ?Sized>(a: &A, b: &B, lo: f64, hi: f64) -> f64 {
    let edges = histogram_edges(lo, hi, JS_BINS);
    jensen_shannon(&histogram_counts(a, &edges), &histogram_counts(b, &edges))
}

/// `numpy.histogram_bin_edges(x, bins)` for data spanning `[lo, hi]`.
fn histogram_edges(lo: f64, hi: f64, bins: usize) -> Vec<f64> {
    let (lo, hi) = if lo == hi {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo, hi)
    };
    // `numpy.linspace`: start + i·step, with the last edge set exactly to the stop.
    let step = (hi - lo) / bins as f64;
    let mut edges: Vec<f64> = (0..=bins).map(|i| i as f64 * step + lo).collect();
    edges[bins] = hi;
    edges
}

/// `numpy.histogram` counts of a sorted sample for given edges (last bin closed).
fn histogram_counts<R: Ranked + ?Sized>(sorted: &R, edges: &[f64]) -> Vec<f64> {
    let bins = edges.len() - 1;
    let mut counts = Vec::with_capacity(bins);
    let mut below = sorted.rank_lt(edges[0]);
    for (i, &edge) in edges.iter().enumerate().skip(1) {
        let lt = if i == bins {
            sorted.total()
        } else {
            sorted.rank_lt(edge)
        };
        counts.push((lt - below) as f64);
        below = lt;
    }
    counts
}

/// Jensen–Shannon distance between two count vectors (normalised to distributions), natural
/// log, as `scipy.spatial.distance.jensenshannon(p, q)`.
pub fn jensen_shannon(p: &[f64], q: &[f64]) -> f64 {
    let (sp, sq): (f64, f64) = (p.iter().sum(), q.iter().sum());
    let mut left = 0.0;
    let mut right = 0.0;
    for (&pi, &qi) in p.iter().zip(q) {
        let (pi, qi) = (pi / sp, qi / sq);
        let m = (pi + qi) / 2.0;
        left += rel_entr(pi, m);
        right += rel_entr(qi, m);
    }
    ((left + right) / 2.0).max(0.0).sqrt()
}

fn rel_entr(x: f64, y: f64) -> f64 {
    if x > 0.0 && y > 0.0 {
        x * (x / y).ln()
    } else if x == 0.0 && y >= 0.0 {
        0.0
    } else {
        f64::INFINITY
    }
}

/// Jensen–Shannon distance between the category distributions of two samples.
pub fn jensen_shannon_categorical(
    reference: &CategoricalCounts,
    current: &CategoricalCounts,
) -> Result<f64> {
    check_nonempty(reference.total() as usize, "reference sample")?;
    check_nonempty(current.total() as usize, "current sample")?;
    let (r, c) = aligned_counts(reference, current);
    let to_f = |v: &[u64]| v.iter().map(|&x| x as f64).collect::<Vec<_>>();
    Ok(jensen_shannon(&to_f(&r), &to_f(&c)))
}

/// Counts of both samples over the union of their categories, in category order.
pub fn aligned_counts(
    reference: &CategoricalCounts,
    current: &CategoricalCounts,
) -> (Vec<u64>, Vec<u64>) {
    let mut union: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for (k, &n) in &reference.counts {
        union.entry(k).or_default().0 += n;
    }
    for (k, &n) in &current.counts {
        union.entry(k).or_default().1 += n;
    }
    union.values().map(|&(a, b)| (a, b)).unzip()
}

fn shares(counts: &[u64]) -> Vec<f64> {
    let total: u64 = counts.iter().sum();
    counts.iter().map(|&c| c as f64 / total as f64).collect()
}

/// Chi-squared test of homogeneity between two category profiles over the union of their
/// categories (see [`chi2_homogeneity`]).
pub fn chi2_from_counts(
    reference: &CategoricalCounts,
    current: &CategoricalCounts,
) -> Result<Chi2Test> {
    let (r, c) = aligned_counts(reference, current);
    chi2_homogeneity(&r, &c)
}

/// KS test between two numeric sketches: the statistic is the largest gap between the CDFs the
/// sketches describe, the p-value is [`ks_from_statistic`] for their exact counts. Identical to
/// [`ks_2samp`] while both sketches are exact ([`NumericSketch::is_exact`]); after compaction
/// the statistic is within the sum of the two sketches' rank errors (below 0.01 on samples of a
/// million, about 0.0015 observed, see `tests/sketch_accuracy.rs`).
///
/// Caveat: on very large samples the KS critical value shrinks below the sketch error
/// (`1.36·√(2/n)` ≈ 0.0019 at a million per side), so the p-value from sketches is then too
/// small for undrifted data. The PSI condition of the decision rule (PSI ≥ 0.1, which sketches
/// estimate well) is what keeps such features from being reported as drifted.
pub fn ks_from_sketches(reference: &NumericSketch, current: &NumericSketch) -> Result<KsTest> {
    check_nonempty(reference.count() as usize, "reference sample")?;
    check_nonempty(current.count() as usize, "current sample")?;
    let (a, b) = (reference.view(), current.view());
    Ok(ks_from_statistic(
        reference.count(),
        current.count(),
        largest_ecdf_gap(&a, &b),
    ))
}

/// PSI between two numeric sketches: cut points are the reference sketch's deciles, shares
/// come from the sketches' ranks. Exact while both sketches are exact.
pub fn psi_from_sketches(reference: &NumericSketch, current: &NumericSketch) -> Result<f64> {
    check_nonempty(reference.count() as usize, "reference sample")?;
    check_nonempty(current.count() as usize, "current sample")?;
    Ok(psi_ranked(&reference.view(), &current.view()))
}

/// Normed Wasserstein distance between two numeric sketches (reference std from the sketch's
/// exact moments).
pub fn wasserstein_normed_from_sketches(
    reference: &NumericSketch,
    current: &NumericSketch,
) -> Result<f64> {
    check_nonempty(reference.count() as usize, "reference sample")?;
    check_nonempty(current.count() as usize, "current sample")?;
    let std = reference.std_population().unwrap_or(0.0);
    Ok(wasserstein_ranked(&reference.view(), &current.view()) / std.max(WASSERSTEIN_STD_FLOOR))
}

/// Jensen–Shannon distance between two numeric sketches over [`JS_BINS`] equal-width bins.
pub fn jensen_shannon_from_sketches(
    reference: &NumericSketch,
    current: &NumericSketch,
) -> Result<f64> {
    let (Some(rmin), Some(rmax), Some(cmin), Some(cmax)) = (
        reference.min(),
        reference.max(),
        current.min(),
        current.max(),
    ) else {
        return Err(Error::EmptySample {
            what: "reference or current sample",
        });
    };
    Ok(js_ranked(
        &reference.view(),
        &current.view(),
        rmin.min(cmin),
        rmax.max(cmax),
    ))
}

/// Thresholds of the drift decision rule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DriftOptions {
    /// A test's p-value must be below this…
    pub alpha: f64,
    /// …and the PSI at least this for a feature to count as drifted.
    pub psi_threshold: f64,
}

impl Default for DriftOptions {
    fn default() -> Self {
        DriftOptions {
            alpha: DEFAULT_ALPHA,
            psi_threshold: DEFAULT_PSI_THRESHOLD,
        }
    }
}

impl DriftOptions {
    pub fn validate(&self) -> Result<()> {
        check_open_unit("alpha", self.alpha)?;
        if !(self.psi_threshold.is_finite() && self.psi_threshold >= 0.0) {
            return Err(invalid(
                "psi_threshold",
                format!("must be a non-negative number, got {}", self.psi_threshold),
            ));
        }
        Ok(())
    }

    /// The decision rule of SPEC §6: statistically **and** practically significant.
    pub fn is_drifted(&self, p_value: Option<f64>, psi: Option<f64>) -> bool {
        matches!((p_value, psi), (Some(p), Some(psi)) if p < self.alpha && psi >= self.psi_threshold)
    }
}

/// Numeric or categorical.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeatureKind {
    Numeric,
    Categorical,
}

/// Drift of one feature, with the JSON shape of SPEC §10 (absent statistics are omitted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureDrift {
    pub name: String,
    pub kind: FeatureKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ks_statistic: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ks_p_value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chi2_statistic: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chi2_p_value: Option<f64>,
    pub psi: Option<f64>,
    /// Wasserstein distance / reference std (numeric features only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wasserstein_normed: Option<f64>,
    /// Jensen–Shannon distance of the two distributions.
    pub jensen_shannon_distance: Option<f64>,
    pub missing_share_reference: f64,
    pub missing_share_current: f64,
    /// Non-missing values in each sample.
    pub n_reference: u64,
    pub n_current: u64,
    pub drifted: bool,
}

impl FeatureDrift {
    /// Exact drift of a numeric feature; non-finite values are missing. The vectors are taken
    /// by value because they are consumed by the sort.
    pub fn numeric(
        name: impl Into<String>,
        reference: Vec<f64>,
        current: Vec<f64>,
        options: &DriftOptions,
    ) -> FeatureDrift {
        Self::numeric_parts(
            name,
            vec![SamplePart::Values(reference)],
            vec![SamplePart::Values(current)],
            options,
        )
    }

    /// [`FeatureDrift::numeric`] for samples that arrive in several pieces (e.g. one per
    /// parsing thread), possibly as exact decimals; the pieces are joined by the sort, without
    /// a separate copy.
    pub fn numeric_parts(
        name: impl Into<String>,
        reference: Vec<SamplePart>,
        current: Vec<SamplePart>,
        options: &DriftOptions,
    ) -> FeatureDrift {
        let ref_total: usize = reference.iter().map(SamplePart::len).sum();
        let cur_total: usize = current.iter().map(SamplePart::len).sum();
        let (mut reference, ref_missing) = sort_parts(reference);
        let (mut current, cur_missing) = sort_parts(current);
        let mut out = FeatureDrift {
            name: name.into(),
            kind: FeatureKind::Numeric,
            ks_statistic: None,
            ks_p_value: None,
            chi2_statistic: None,
            chi2_p_value: None,
            psi: None,
            wasserstein_normed: None,
            jensen_shannon_distance: None,
            missing_share_reference: share(ref_missing, ref_total),
            missing_share_current: share(cur_missing, cur_total),
            n_reference: reference.len() as u64,
            n_current: current.len() as u64,
            drifted: false,
        };
        if !reference.is_empty() && !current.is_empty() {
            // One merge pass serves both the KS statistic and the Wasserstein distance.
            let walk = merge_walk(&mut reference, &mut current);
            let ks = ks_from_statistic(reference.len() as u64, current.len() as u64, walk.gap);
            out.ks_statistic = Some(ks.statistic);
            out.ks_p_value = Some(ks.p_value);
            out.psi = Some(psi_ranked(&reference, &current));
            let std = population_std(&reference).max(WASSERSTEIN_STD_FLOOR);
            out.wasserstein_normed = Some(walk.area / std);
            out.jensen_shannon_distance = jensen_shannon_sorted(&reference, &current).ok();
        }
        out.drifted = options.is_drifted(out.ks_p_value, out.psi);
        out
    }

    /// Drift of a categorical feature from its category counts.
    pub fn categorical(
        name: impl Into<String>,
        reference: &CategoricalCounts,
        current: &CategoricalCounts,
        options: &DriftOptions,
    ) -> FeatureDrift {
        let mut out = FeatureDrift {
            name: name.into(),
            kind: FeatureKind::Categorical,
            ks_statistic: None,
            ks_p_value: None,
            chi2_statistic: None,
            chi2_p_value: None,
            psi: None,
            wasserstein_normed: None,
            jensen_shannon_distance: None,
            missing_share_reference: reference.missing_share(),
            missing_share_current: current.missing_share(),
            n_reference: reference.total(),
            n_current: current.total(),
            drifted: false,
        };
        if let Ok(chi2) = chi2_from_counts(reference, current) {
            out.chi2_statistic = Some(chi2.statistic);
            out.chi2_p_value = Some(chi2.p_value);
            out.psi = psi_categorical(reference, current).ok();
            out.jensen_shannon_distance = jensen_shannon_categorical(reference, current).ok();
        }
        out.drifted = options.is_drifted(out.chi2_p_value, out.psi);
        out
    }

    /// Drift of a numeric feature from two sketches (see [`ks_from_sketches`] for accuracy).
    pub fn from_sketches(
        name: impl Into<String>,
        reference: &NumericSketch,
        current: &NumericSketch,
        options: &DriftOptions,
    ) -> FeatureDrift {
        let mut out = FeatureDrift {
            name: name.into(),
            kind: FeatureKind::Numeric,
            ks_statistic: None,
            ks_p_value: None,
            chi2_statistic: None,
            chi2_p_value: None,
            psi: None,
            wasserstein_normed: None,
            jensen_shannon_distance: None,
            missing_share_reference: reference.missing_share(),
            missing_share_current: current.missing_share(),
            n_reference: reference.count(),
            n_current: current.count(),
            drifted: false,
        };
        if let Ok(ks) = ks_from_sketches(reference, current) {
            out.ks_statistic = Some(ks.statistic);
            out.ks_p_value = Some(ks.p_value);
            out.psi = psi_from_sketches(reference, current).ok();
            out.wasserstein_normed = wasserstein_normed_from_sketches(reference, current).ok();
            out.jensen_shannon_distance = jensen_shannon_from_sketches(reference, current).ok();
        }
        out.drifted = options.is_drifted(out.ks_p_value, out.psi);
        out
    }
}

/// Data for one feature of a [`DriftReport`].
#[derive(Debug, Clone)]
pub enum FeatureInput {
    /// Raw values; NaN and ±∞ are missing.
    Numeric {
        name: String,
        reference: Vec<f64>,
        current: Vec<f64>,
    },
    /// Values in pieces (e.g. one per parsing thread), joined without a copy of their own.
    NumericParts {
        name: String,
        reference: Vec<SamplePart>,
        current: Vec<SamplePart>,
    },
    Categorical {
        name: String,
        reference: CategoricalCounts,
        current: CategoricalCounts,
    },
}

/// Drift of every feature and the share of features that drifted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    pub features: Vec<FeatureDrift>,
    /// Share of features drifted, 0…1 (0 when there are no features).
    pub data_drift_score: f64,
    pub drifted_features: usize,
    pub alpha: f64,
    pub psi_threshold: f64,
}

impl DriftReport {
    /// Compute every feature's drift, features in parallel on all available cores (each
    /// feature's work is independent; most of it is sorting).
    pub fn compute(features: Vec<FeatureInput>, options: &DriftOptions) -> Result<DriftReport> {
        Self::compute_with_threads(features, options, default_threads())
    }

    /// [`DriftReport::compute`] with an explicit number of worker threads (at least one).
    pub fn compute_with_threads(
        features: Vec<FeatureInput>,
        options: &DriftOptions,
        threads: usize,
    ) -> Result<DriftReport> {
        options.validate()?;
        let n = features.len();
        let inputs: Vec<std::sync::Mutex<Option<FeatureInput>>> = features
            .into_iter()
            .map(|f| std::sync::Mutex::new(Some(f)))
            .collect();
        let outputs: Vec<std::sync::Mutex<Option<FeatureDrift>>> =
            (0..n).map(|_| std::sync::Mutex::new(None)).collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let work = || loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if i >= n {
                break;
            }
            let Some(input) = inputs[i].lock().expect("worker panicked").take() else {
                continue;
            };
            let drift = match input {
                FeatureInput::Numeric {
                    name,
                    reference,
                    current,
                } => FeatureDrift::numeric(name, reference, current, options),
                FeatureInput::NumericParts {
                    name,
                    reference,
                    current,
                } => FeatureDrift::numeric_parts(name, reference, current, options),
                FeatureInput::Categorical {
                    name,
                    reference,
                    current,
                } => FeatureDrift::categorical(name, &reference, &current, options),
            };
            *outputs[i].lock().expect("worker panicked") = Some(drift);
        };
        let threads = threads.clamp(1, n.max(1));
        if threads == 1 {
            work();
        } else {
            std::thread::scope(|s| {
                for _ in 0..threads {
                    s.spawn(work);
                }
            });
        }
        let features = outputs
            .into_iter()
            .map(|m| {
                m.into_inner()
                    .expect("worker panicked")
                    .expect("every feature computed")
            })
            .collect();
        Ok(Self::from_features(features, options))
    }

    /// Assemble a report from features computed elsewhere (e.g. from sketches).
    pub fn from_features(features: Vec<FeatureDrift>, options: &DriftOptions) -> DriftReport {
        let drifted = features.iter().filter(|f| f.drifted).count();
        let data_drift_score = if features.is_empty() {
            0.0
        } else {
            drifted as f64 / features.len() as f64
        };
        DriftReport {
            features,
            data_drift_score,
            drifted_features: drifted,
            alpha: options.alpha,
            psi_threshold: options.psi_threshold,
        }
    }

    /// Largest PSI over features (the `max_psi` alert metric); `None` without any PSI.
    pub fn max_psi(&self) -> Option<f64> {
        self.features.iter().filter_map(|f| f.psi).reduce(f64::max)
    }
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn check_nonempty(n: usize, what: &'static str) -> Result<()> {
    if n == 0 {
        Err(Error::EmptySample { what })
    } else {
        Ok(())
    }
}

fn share(part: usize, total: usize) -> f64 {
    if total == 0 {
        0.0
    } else {
        part as f64 / total as f64
    }
}

/// `numpy.round`: halves go to the even neighbour.
fn round_half_even(x: f64) -> f64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 {
        2.0 * (x / 2.0).round()
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ks_small_exact_example() {
        // scipy.stats.ks_2samp([1,2,3,4,5], [3,4,5,6,7,8]) -> D = 0.5, p = 0.35714285714285715
        let t = ks_2samp(&[1.0, 2.0, 3.0, 4.0, 5.0], &[3.0, 4.0, 5.0, 6.0, 7.0, 8.0]).unwrap();
        assert!((t.statistic - 0.5).abs() < 1e-15);
        assert_eq!(t.method, KsMethod::Exact);
        assert!(
            (t.p_value - 0.35714285714285715).abs() < 1e-12,
            "{}",
            t.p_value
        );
    }

    #[test]
    fn ks_rejects_empty() {
        assert!(matches!(
            ks_2samp(&[], &[1.0]),
            Err(Error::EmptySample { .. })
        ));
        assert!(ks_2samp(&[f64::NAN], &[1.0]).is_err());
    }

    #[test]
    fn chi2_single_category_and_empty_rows() {
        let t = chi2_homogeneity(&[5], &[7]).unwrap();
        assert_eq!((t.statistic, t.p_value, t.dof), (0.0, 1.0, 0));
        assert!(chi2_homogeneity(&[0, 0], &[1, 2]).is_err());
        assert!(chi2_homogeneity(&[1], &[1, 2]).is_err());
    }

    #[test]
    fn psi_identical_is_zero_and_floor_applies() {
        let x: Vec<f64> = (0..100).map(|i| i as f64).collect();
        assert!(psi_numeric(&x, &x).unwrap().abs() < 1e-15);
        let shifted: Vec<f64> = x.iter().map(|v| v + 1000.0).collect();
        // All current values land in the last bin: 9 bins at the floor.
        let psi = psi_numeric(&x, &shifted).unwrap();
        let expected = 9.0 * (1e-4 - 0.1) * (1e-4f64 / 0.1).ln() + (1.0 - 0.1) * (10f64).ln();
        assert!((psi - expected).abs() < 1e-12, "{psi} vs {expected}");
    }

    #[test]
    fn decision_rule_needs_both_conditions() {
        let o = DriftOptions::default();
        assert!(o.is_drifted(Some(0.01), Some(0.2)));
        assert!(!o.is_drifted(Some(0.01), Some(0.05)));
        assert!(!o.is_drifted(Some(0.2), Some(0.5)));
        assert!(!o.is_drifted(None, Some(0.5)));
        assert!(DriftOptions {
            alpha: 1.0,
            psi_threshold: 0.1
        }
        .validate()
        .is_err());
    }

    #[test]
    fn report_scores_share_of_drifted_features() {
        let a: Vec<f64> = (0..500).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = a.iter().map(|v| v + 2.0).collect();
        let mut cat_a = CategoricalCounts::new();
        let mut cat_b = CategoricalCounts::new();
        for i in 0..300 {
            cat_a.push(if i % 2 == 0 { "x" } else { "y" });
            cat_b.push(if i % 2 == 0 { "x" } else { "y" });
        }
        cat_b.push_missing();
        let features = vec![
            FeatureInput::Numeric {
                name: "shifted".into(),
                reference: a.clone(),
                current: b,
            },
            FeatureInput::Numeric {
                name: "same".into(),
                reference: a.clone(),
                current: a,
            },
            FeatureInput::Categorical {
                name: "cat".into(),
                reference: cat_a,
                current: cat_b,
            },
            FeatureInput::Numeric {
                name: "empty".into(),
                reference: vec![],
                current: vec![1.0],
            },
        ];
        let report =
            DriftReport::compute_with_threads(features, &DriftOptions::default(), 2).unwrap();
        let names: Vec<_> = report.features.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["shifted", "same", "cat", "empty"]);
        assert!(report.features[0].drifted);
        assert!(!report.features[1].drifted);
        assert!(!report.features[2].drifted);
        assert!(report.features[2].missing_share_current > 0.0);
        assert_eq!(report.features[3].ks_statistic, None);
        assert_eq!(report.data_drift_score, 0.25);
        let json = serde_json::to_value(&report).unwrap();
        assert!(json["features"][0].get("chi2_statistic").is_none());
        assert!(json["features"][2].get("ks_statistic").is_none());
        assert_eq!(json["features"][2]["kind"], "categorical");
    }

    #[test]
    fn sketches_match_exact_tests_while_exact() {
        let a: Vec<f64> = (0..300)
            .map(|i| ((i * 7919) % 1000) as f64 / 10.0)
            .collect();
        let b: Vec<f64> = (0..250)
            .map(|i| ((i * 104729) % 1100) as f64 / 10.0)
            .collect();
        let (mut sa, mut sb) = (NumericSketch::new(), NumericSketch::new());
        a.iter().for_each(|&x| sa.push(x));
        b.iter().for_each(|&x| sb.push(x));
        assert!(sa.is_exact() && sb.is_exact());
        let exact = ks_2samp(&a, &b).unwrap();
        let approx = ks_from_sketches(&sa, &sb).unwrap();
        assert_eq!(exact, approx);
        assert!(
            (psi_numeric(&a, &b).unwrap() - psi_from_sketches(&sa, &sb).unwrap()).abs() < 1e-15
        );
        let w = wasserstein_normed(&a, &b).unwrap();
        assert!((w - wasserstein_normed_from_sketches(&sa, &sb).unwrap()).abs() < 1e-9 * w);
        let js = jensen_shannon_numeric(&a, &b).unwrap();
        assert!((js - jensen_shannon_from_sketches(&sa, &sb).unwrap()).abs() < 1e-12);
    }

    /// The lane-parallel merge must equal a plain merge, ties and lane edges included.
    #[test]
    fn merge_walk_equals_plain_merge() {
        fn plain(a: &[f64], b: &[f64]) -> (f64, f64, f64) {
            let mut all: Vec<f64> = a.iter().chain(b).copied().collect();
            all.sort_by(f64::total_cmp);
            all.dedup();
            let (mut max, mut min, mut area) = (0.0f64, 0.0f64, 0.0);
            for (k, &x) in all.iter().enumerate() {
                let fa = a.partition_point(|&v| v <= x) as f64 / a.len() as f64;
                let fb = b.partition_point(|&v| v <= x) as f64 / b.len() as f64;
                max = max.max(fa - fb);
                min = min.min(fa - fb);
                if let Some(&next) = all.get(k + 1) {
                    area += (fa - fb).abs() * (next - x);
                }
            }
            (max, min, area)
        }
        let mut state: u64 = 5;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as f64 / (1u64 << 31) as f64
        };
        for (na, nb, ties, shift) in [
            (9000, 7000, 50.0, 0.0),
            (20000, 3000, 1e6, 0.3),
            (5000, 5000, 3.0, 0.0),
        ] {
            let mut a: Vec<f64> = (0..na).map(|_| (next() * ties).floor()).collect();
            let mut b: Vec<f64> = (0..nb).map(|_| ((next() + shift) * ties).floor()).collect();
            a.sort_by(f64::total_cmp);
            b.sort_by(f64::total_cmp);
            let (max, min, area) = plain(&a, &b);
            // Keys of the values, fixed-point keys (the samples are integers), and one of each.
            let walks = [
                merge_walk(
                    &mut SortedSample::from_sorted(&a),
                    &mut SortedSample::from_sorted(&b),
                ),
                merge_walk(&mut sort_finite(&a), &mut sort_finite(&b)),
                merge_walk(&mut sort_finite(&a), &mut SortedSample::from_sorted(&b)),
            ];
            for w in walks {
                assert!((w.gap - max.max(-min)).abs() < 1e-12);
                assert!(
                    (w.area - area).abs() <= 1e-9 * area.abs().max(1.0),
                    "{} vs {area}",
                    w.area
                );
            }
        }
        // Fixed-point samples with different decimals are brought to one scale; one too wide
        // for that scale falls back to the keys of the values.
        let a: Vec<f64> = (0..6000).map(|i| (i % 997) as f64 / 100.0).collect();
        let b: Vec<f64> = (0..5000)
            .map(|i| ((i % 1009) + 1500) as f64 / 1000.0)
            .collect();
        let wide: Vec<f64> = (0..5000).map(|i| (i % 1009) as f64 * 1e11 + 0.5).collect();
        for b in [b, wide] {
            let (mut sa, mut sb) = (sort_finite(&a), sort_finite(&b));
            assert!(sa.decimals().is_some() && sb.decimals().is_some());
            let w = merge_walk(&mut sa, &mut sb);
            let (mut sorted_a, mut sorted_b) = (a.clone(), b.clone());
            sorted_a.sort_by(f64::total_cmp);
            sorted_b.sort_by(f64::total_cmp);
            let (max, min, area) = plain(&sorted_a, &sorted_b);
            assert!((w.gap - max.max(-min)).abs() < 1e-12);
            assert!(
                (w.area - area).abs() <= 1e-9 * area.abs(),
                "{} vs {area}",
                w.area
            );
        }
    }

    /// Two decimals that read as one `f64` are one value to the tests, as they are to SciPy:
    /// `800000000000000.2` and `.3` both read as `800000000000000.25`.
    #[test]
    fn decimals_that_read_as_one_value_are_ties() {
        let part = |i: i64| SamplePart::Fixed {
            values: vec![i; 5000],
            decimals: 1,
        };
        assert_eq!(
            "800000000000000.2".parse::<f64>(),
            "800000000000000.3".parse::<f64>()
        );
        let d = FeatureDrift::numeric_parts(
            "x",
            vec![part(8_000_000_000_000_002)],
            vec![part(8_000_000_000_000_003)],
            &DriftOptions::default(),
        );
        assert_eq!(d.ks_statistic, Some(0.0));
        assert_eq!(d.wasserstein_normed, Some(0.0));
        let mut b = crate::sample::SampleBuilder::with_capacity(2);
        b.push_decimal(8_000_000_000_000_002, 1);
        b.push_decimal(8_000_000_000_000_003, 1);
        assert_eq!(b.finish(), SamplePart::Values(vec![8e14 + 0.25; 2]));
    }

    #[test]
    fn round_half_even_matches_numpy() {
        assert_eq!(round_half_even(2.5), 2.0);
        assert_eq!(round_half_even(3.5), 4.0);
        assert_eq!(round_half_even(2.4), 2.0);
        assert_eq!(round_half_even(-2.5), -2.0);
    }
}
