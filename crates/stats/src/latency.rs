//! Mergeable latency sketch for percentiles (p50/p95/p99) and the average, per variant and
//! window, merged across windows and server processes.
//!
//! [`LatencySketch`] is a DDSketch (Masson, Rim & Lee, "DDSketch: A Fast and Fully-Mergeable
//! Quantile Sketch with Relative-Error Guarantees", VLDB 2019): value `x > 0` goes to bucket
//! `⌈log_γ x⌉` with `γ = (1 + α)/(1 − α)`, and a bucket answers with `2γ^i/(γ + 1)`, which is
//! within relative error `α` of every value in it. Merging adds bucket counts, so merged
//! sketches answer exactly as a sketch of the concatenated stream would. With `α = 1%` the
//! range 1 µs … 1 hour needs ~1,100 buckets; beyond [`MAX_BUCKETS`] the lowest buckets are
//! collapsed (only the smallest quantiles lose accuracy), so memory is bounded.

use serde::{Deserialize, Serialize};

/// Relative accuracy of every quantile (1%).
pub const RELATIVE_ACCURACY: f64 = 0.01;
/// Most buckets kept.
pub const MAX_BUCKETS: usize = 2048;
/// Values at or below this (in the caller's unit, e.g. milliseconds) count as zero.
const MIN_INDEXABLE: f64 = 1e-9;

fn gamma() -> f64 {
    (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY)
}

/// Mergeable relative-error quantile sketch of non-negative values (latencies).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LatencySketch {
    /// Bucket index of `counts[0]`.
    offset: i32,
    counts: Vec<u64>,
    /// Values too small to index (including exact zeros).
    zero_count: u64,
    count: u64,
    sum: f64,
    min: Option<f64>,
    max: Option<f64>,
}

impl Default for LatencySketch {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencySketch {
    pub fn new() -> Self {
        LatencySketch {
            offset: 0,
            counts: Vec::new(),
            zero_count: 0,
            count: 0,
            sum: 0.0,
            min: None,
            max: None,
        }
    }

    /// Record one value; negative and non-finite values are ignored (a latency cannot be one).
    pub fn push(&mut self, x: f64) {
        if !(x.is_finite() && x >= 0.0) {
            return;
        }
        self.count += 1;
        self.sum += x;
        self.min = Some(self.min.map_or(x, |m| m.min(x)));
        self.max = Some(self.max.map_or(x, |m| m.max(x)));
        if x <= MIN_INDEXABLE {
            self.zero_count += 1;
        } else {
            self.add_to_bucket(Self::index(x), 1);
        }
    }

    /// Fold `other` into `self`.
    pub fn merge(&mut self, other: &LatencySketch) {
        if other.count == 0 {
            return;
        }
        self.count += other.count;
        self.sum += other.sum;
        self.zero_count += other.zero_count;
        self.min = match (self.min, other.min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.max = match (self.max, other.max) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        for (i, &c) in other.counts.iter().enumerate() {
            if c > 0 {
                self.add_to_bucket(other.offset + i as i32, c);
            }
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn sum(&self) -> f64 {
        self.sum
    }

    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }

    pub fn min(&self) -> Option<f64> {
        self.min
    }

    pub fn max(&self) -> Option<f64> {
        self.max
    }

    /// Quantile `q` in [0, 1], within 1% relative error of the exact lower-rank quantile
    /// (the value of rank `⌊q·(n − 1)⌋`), clamped to the observed min and max.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        let rank = (q * (self.count - 1) as f64).floor() as u64;
        let (min, max) = (self.min?, self.max?);
        if rank < self.zero_count {
            return Some(min.max(0.0).min(max));
        }
        let mut seen = self.zero_count;
        let g = gamma();
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen > rank {
                let index = self.offset + i as i32;
                let value = 2.0 * g.powi(index) / (g + 1.0);
                return Some(value.clamp(min, max));
            }
        }
        Some(max)
    }

    pub fn p50(&self) -> Option<f64> {
        self.quantile(0.5)
    }

    pub fn p95(&self) -> Option<f64> {
        self.quantile(0.95)
    }

    pub fn p99(&self) -> Option<f64> {
        self.quantile(0.99)
    }

    fn index(x: f64) -> i32 {
        (x.ln() / gamma().ln()).ceil() as i32
    }

    fn add_to_bucket(&mut self, index: i32, n: u64) {
        if self.counts.is_empty() {
            self.offset = index;
            self.counts.push(n);
            return;
        }
        if index < self.offset {
            let grow = (self.offset - index) as usize;
            if self.counts.len() + grow > MAX_BUCKETS {
                // Collapse: too small to keep its own bucket, count it in the lowest one.
                self.counts[0] += n;
                return;
            }
            let mut counts = vec![0; grow];
            counts.extend_from_slice(&self.counts);
            self.counts = counts;
            self.offset = index;
        }
        let pos = (index - self.offset) as usize;
        if pos >= self.counts.len() {
            self.counts.resize(pos + 1, 0);
        }
        self.counts[pos] += n;
        if self.counts.len() > MAX_BUCKETS {
            // Fold the lowest buckets into the first one kept.
            let excess = self.counts.len() - MAX_BUCKETS;
            let folded: u64 = self.counts.drain(..excess).sum();
            self.counts[0] += folded;
            self.offset += excess as i32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact_lower(sorted: &[f64], q: f64) -> f64 {
        sorted[(q * (sorted.len() - 1) as f64).floor() as usize]
    }

    #[test]
    fn quantiles_within_relative_error_and_merge_is_exact() {
        let mut state: u64 = 9;
        let values: Vec<f64> = (0..100_000)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
                // Log-normal-ish latencies around 20 ms with a long tail.
                20.0 * (3.0 * (u - 0.5)).exp() / (1.0 - u).sqrt()
            })
            .collect();
        let mut whole = LatencySketch::new();
        let mut parts = [
            LatencySketch::new(),
            LatencySketch::new(),
            LatencySketch::new(),
        ];
        for (i, &v) in values.iter().enumerate() {
            whole.push(v);
            parts[i % 3].push(v);
        }
        let mut merged = LatencySketch::new();
        for p in &parts {
            merged.merge(p);
        }
        assert_eq!(merged.counts, whole.counts);
        assert_eq!(merged.count(), whole.count());
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        for q in [0.0, 0.5, 0.95, 0.99, 1.0] {
            let got = whole.quantile(q).unwrap();
            let want = exact_lower(&sorted, q);
            assert!(
                (got - want).abs() <= RELATIVE_ACCURACY * want * 1.0000001,
                "q {q}: {got} vs {want}"
            );
        }
        let json = serde_json::to_string(&whole).unwrap();
        assert_eq!(serde_json::from_str::<LatencySketch>(&json).unwrap(), whole);
        assert!(json.len() < 8_000, "{} bytes", json.len());
    }

    #[test]
    fn zeros_and_bounds() {
        let mut s = LatencySketch::new();
        assert_eq!(s.p50(), None);
        s.push(0.0);
        s.push(-1.0);
        s.push(f64::NAN);
        s.push(10.0);
        assert_eq!(s.count(), 2);
        assert_eq!(s.quantile(0.0), Some(0.0));
        assert_eq!(s.quantile(1.0), Some(10.0));
        assert_eq!(s.mean(), Some(5.0));
    }

    #[test]
    fn bucket_count_is_bounded() {
        let mut s = LatencySketch::new();
        let mut x = 1e-6;
        while x < 1e12 {
            s.push(x);
            x *= 1.001;
        }
        assert!(s.counts.len() <= MAX_BUCKETS);
        let p99 = s.p99().unwrap();
        assert!(p99 > 1e11 * 0.5);
    }
}
