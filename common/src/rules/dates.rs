//! The dates every rule of a run uses, all derived from `as_of` (SPEC §2). Rules never read the
//! clock: a redrive must compute exactly what the original run computed.

use chrono::{Days, Months, NaiveDate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunDates {
    /// The execution's start date (UTC).
    pub as_of: NaiveDate,
    /// A charge is active when it ends on or after this date: 15 days of grace after expiry.
    pub expired_end_date: NaiveDate,
    /// Objects that expired before this date are dropped (and their orgs marked); also the
    /// SOQL `#{end_date}`. Three years and one day before `as_of`.
    pub three_years_out: NaiveDate,
}

impl RunDates {
    pub fn new(as_of: NaiveDate) -> RunDates {
        RunDates {
            as_of,
            expired_end_date: as_of - Days::new(15),
            // 29 February minus three years clamps to 28 February (chrono's month arithmetic).
            three_years_out: as_of
                .checked_sub_months(Months::new(36))
                .expect("as_of is a real date three years after chrono's minimum")
                - Days::new(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn derived_dates() {
        let dates = RunDates::new(d("2026-11-23"));
        assert_eq!(dates.expired_end_date, d("2026-11-08"));
        assert_eq!(dates.three_years_out, d("2023-11-22"));
    }

    #[test]
    fn leap_day_and_year_boundaries() {
        let dates = RunDates::new(d("2028-02-29"));
        assert_eq!(dates.three_years_out, d("2025-02-27"));
        let dates = RunDates::new(d("2027-01-01"));
        assert_eq!(dates.expired_end_date, d("2026-12-17"));
        assert_eq!(dates.three_years_out, d("2023-12-31"));
    }
}
