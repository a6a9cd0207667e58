//! Time as the product sees it: milliseconds since the Unix epoch, read from a [`Clock`] that is
//! handed in. Production uses [`SystemClock`]; tests use [`ManualClock`] and move it forward by hours
//! in microseconds.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Milliseconds since 1970-01-01T00:00:00Z.
pub type Timestamp = i64;

pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Timestamp;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        chrono::Utc::now().timestamp_millis()
    }
}

/// A clock that only moves when told to. Clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        ManualClock(Arc::new(AtomicI64::new(start)))
    }
    pub fn advance_ms(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
    pub fn advance_minutes(&self, minutes: i64) {
        self.advance_ms(minutes * 60_000);
    }
    pub fn set(&self, t: Timestamp) {
        self.0.store(t, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        self.0.load(Ordering::SeqCst)
    }
}

/// RFC 3339 text for a timestamp, as the API shows times.
pub fn to_rfc3339(t: Timestamp) -> String {
    chrono::DateTime::from_timestamp_millis(t)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// Parse RFC 3339 text into a timestamp.
pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told_and_clones_share_time() {
        let c = ManualClock::new(1_000);
        let c2 = c.clone();
        assert_eq!(c.now(), 1_000);
        c.advance_minutes(2);
        assert_eq!(c2.now(), 121_000);
    }

    #[test]
    fn rfc3339_round_trips() {
        let t = 1_764_000_000_123;
        assert_eq!(parse_rfc3339(&to_rfc3339(t)), Some(t));
        assert_eq!(to_rfc3339(0), "1970-01-01T00:00:00.000Z");
    }
}
