//! Retraining policies: what can trigger a retraining and when a schedule next fires (UTC, with
//! month ends and leap years handled).

use crate::clock::Timestamp;
use crate::error::{DomainError, Result};
use chrono::{Datelike, Duration, NaiveDate, TimeZone, Utc, Weekday};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Drift,
    Schedule,
    Performance,
}

impl Trigger {
    pub fn parse(field: &str, s: &str) -> Result<Trigger> {
        Ok(match s {
            "drift" => Trigger::Drift,
            "schedule" => Trigger::Schedule,
            "performance" => Trigger::Performance,
            other => {
                return Err(DomainError::invalid(
                    field,
                    format!("unknown trigger `{other}`; use drift, schedule or performance"),
                ))
            }
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Drift => "drift",
            Trigger::Schedule => "schedule",
            Trigger::Performance => "performance",
        }
    }
}

/// A retraining schedule in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "every", rename_all = "snake_case")]
pub enum Schedule {
    Daily {
        hour_utc: u32,
    },
    Weekly {
        day_of_week: u32,
        hour_utc: u32,
    },
    /// On `day_of_month` (clamped to the month's last day: 31 means "the last day").
    Monthly {
        day_of_month: u32,
        hour_utc: u32,
    },
}

pub fn parse_weekday(field: &str, s: &str) -> Result<u32> {
    let d = match s.to_ascii_lowercase().as_str() {
        "monday" | "mon" => Weekday::Mon,
        "tuesday" | "tue" => Weekday::Tue,
        "wednesday" | "wed" => Weekday::Wed,
        "thursday" | "thu" => Weekday::Thu,
        "friday" | "fri" => Weekday::Fri,
        "saturday" | "sat" => Weekday::Sat,
        "sunday" | "sun" => Weekday::Sun,
        other => {
            return Err(DomainError::invalid(
                field,
                format!("unknown day `{other}`; use monday … sunday"),
            ))
        }
    };
    Ok(d.num_days_from_monday())
}

pub fn weekday_name(d: u32) -> &'static str {
    [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ][(d % 7) as usize]
}

impl Schedule {
    /// Builds a schedule from a policy's fields, naming the field at fault.
    pub fn from_fields(
        schedule: Option<&str>,
        day_of_week: Option<&str>,
        day_of_month: Option<u32>,
        hour_utc: Option<i64>,
    ) -> Result<Schedule> {
        let hour = hour_utc.unwrap_or(0);
        if !(0..=23).contains(&hour) {
            return Err(DomainError::invalid(
                "hour_utc",
                format!("{hour} is not an hour of the day; use 0 to 23"),
            ));
        }
        let hour = hour as u32;
        match schedule {
            Some("daily") => Ok(Schedule::Daily { hour_utc: hour }),
            Some("weekly") => {
                let day = day_of_week.ok_or_else(|| {
                    DomainError::invalid(
                        "day_of_week",
                        "a weekly schedule needs a day, e.g. \"sunday\"",
                    )
                })?;
                Ok(Schedule::Weekly {
                    day_of_week: parse_weekday("day_of_week", day)?,
                    hour_utc: hour,
                })
            }
            Some("monthly") => {
                let d = day_of_month.unwrap_or(1);
                if !(1..=31).contains(&d) {
                    return Err(DomainError::invalid(
                        "day_of_month",
                        "1 to 31 (31 = the last day of each month)",
                    ));
                }
                Ok(Schedule::Monthly {
                    day_of_month: d,
                    hour_utc: hour,
                })
            }
            Some(other) => Err(DomainError::invalid(
                "schedule",
                format!("unknown schedule `{other}`; use daily, weekly or monthly"),
            )),
            None => Err(DomainError::invalid(
                "schedule",
                "a schedule trigger needs `schedule`: daily, weekly or monthly",
            )),
        }
    }

    /// The first firing time strictly after `after`.
    pub fn next_after(&self, after: Timestamp) -> Timestamp {
        let t = Utc
            .timestamp_millis_opt(after)
            .single()
            .unwrap_or_else(Utc::now);
        let at = |d: NaiveDate, h: u32| {
            d.and_hms_opt(h, 0, 0)
                .map(|x| x.and_utc().timestamp_millis())
                .unwrap_or(i64::MAX)
        };
        let today = t.date_naive();
        match *self {
            Schedule::Daily { hour_utc } => (0..3)
                .map(|i| at(today + Duration::days(i), hour_utc))
                .find(|x| *x > after)
                .unwrap_or(i64::MAX),
            Schedule::Weekly {
                day_of_week,
                hour_utc,
            } => (0..15)
                .map(|i| today + Duration::days(i))
                .filter(|d| d.weekday().num_days_from_monday() == day_of_week)
                .map(|d| at(d, hour_utc))
                .find(|x| *x > after)
                .unwrap_or(i64::MAX),
            Schedule::Monthly {
                day_of_month,
                hour_utc,
            } => {
                let (mut y, mut m) = (today.year(), today.month());
                for _ in 0..3 {
                    let last = last_day(y, m);
                    let d = NaiveDate::from_ymd_opt(y, m, day_of_month.min(last)).unwrap_or(today);
                    let x = at(d, hour_utc);
                    if x > after {
                        return x;
                    }
                    (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                }
                i64::MAX
            }
        }
    }
}

fn last_day(y: i32, m: u32) -> u32 {
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    NaiveDate::from_ymd_opt(ny, nm, 1)
        .and_then(|d| d.pred_opt())
        .map(|d| d.day())
        .unwrap_or(28)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        crate::clock::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn weekly_sunday_three_am_utc() {
        let s = Schedule::from_fields(Some("weekly"), Some("sunday"), None, Some(3)).unwrap();
        // 2026-11-25 is a Wednesday.
        assert_eq!(
            s.next_after(ts("2026-11-25T10:00:00Z")),
            ts("2026-11-29T03:00:00Z")
        );
        assert_eq!(
            s.next_after(ts("2026-11-29T03:00:00Z")),
            ts("2026-12-06T03:00:00Z")
        );
        assert_eq!(
            s.next_after(ts("2026-11-29T02:59:59Z")),
            ts("2026-11-29T03:00:00Z")
        );
    }

    #[test]
    fn daily_and_monthly_handle_month_ends_and_leap_years() {
        let d = Schedule::from_fields(Some("daily"), None, None, Some(23)).unwrap();
        assert_eq!(
            d.next_after(ts("2026-12-31T23:00:00Z")),
            ts("2027-01-01T23:00:00Z")
        );
        let m = Schedule::from_fields(Some("monthly"), None, Some(31), Some(0)).unwrap();
        assert_eq!(
            m.next_after(ts("2028-02-01T00:00:00Z")),
            ts("2028-02-29T00:00:00Z"),
            "leap year"
        );
        assert_eq!(
            m.next_after(ts("2027-02-01T00:00:00Z")),
            ts("2027-02-28T00:00:00Z")
        );
        assert_eq!(
            m.next_after(ts("2026-04-30T00:00:00Z")),
            ts("2026-05-31T00:00:00Z")
        );
        let first = Schedule::from_fields(Some("monthly"), None, None, Some(6)).unwrap();
        assert_eq!(
            first.next_after(ts("2026-12-15T00:00:00Z")),
            ts("2027-01-01T06:00:00Z")
        );
    }

    #[test]
    fn bad_fields_are_named() {
        assert_eq!(
            Schedule::from_fields(Some("weekly"), None, None, Some(3))
                .unwrap_err()
                .to_string(),
            "day_of_week: a weekly schedule needs a day, e.g. \"sunday\""
        );
        assert!(Schedule::from_fields(Some("daily"), None, None, Some(24))
            .unwrap_err()
            .to_string()
            .starts_with("hour_utc: 24 is not an hour"));
        assert!(Schedule::from_fields(Some("hourly"), None, None, None)
            .unwrap_err()
            .to_string()
            .starts_with("schedule: unknown schedule"));
        assert!(Trigger::parse("trigger", "vibes").is_err());
    }
}
