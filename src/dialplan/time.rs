//! Instants and schedules in China Standard Time.
//!
//! Schedules of destinations and gateways are written in local time of the hotlines. China
//! has used UTC+08:00 all year since 1992, without daylight saving time, so local time is
//! computed with a fixed offset of +08:00 and no time-zone database.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Serialize, Serializer};

/// Offset of China Standard Time from UTC, in seconds.
pub const CHINA_OFFSET_SECS: i64 = 8 * 3600;

const SECS_PER_DAY: i64 = 86_400;
const MINUTES_PER_DAY: u16 = 24 * 60;

/// An instant, stored as whole seconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    unix_secs: i64,
}

/// Failure to parse an RFC 3339 timestamp, a date, a day range or an hour range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("{text:?} is not an RFC 3339 timestamp such as \"2025-01-06T09:30:00+08:00\"")]
    InvalidTimestamp { text: String },
    #[error("{text:?} is not a date such as \"2025-01-01\"")]
    InvalidDate { text: String },
    #[error("{text:?} is not a weekday or weekday range such as \"mon\" or \"mon-fri\"")]
    InvalidDays { text: String },
    #[error("{text:?} is not an hour range such as \"08:00-20:00\"")]
    InvalidHours { text: String },
    #[error("hour range {text:?} is empty because it starts where it ends")]
    EmptyHours { text: String },
}

impl Timestamp {
    /// Creates a timestamp `secs` seconds after the Unix epoch.
    pub const fn from_unix_secs(secs: i64) -> Self {
        Timestamp { unix_secs: secs }
    }

    /// Seconds since the Unix epoch.
    pub const fn unix_secs(self) -> i64 {
        self.unix_secs
    }

    /// Reads the system clock. A clock set before 1970 gives the epoch itself.
    pub fn now() -> Self {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| {
                i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
            });
        Timestamp::from_unix_secs(secs)
    }

    /// Parses an RFC 3339 date-time (§5.6) such as `2025-01-06T09:30:00+08:00` or
    /// `2025-01-06T01:30:00Z`. Fractions of a second are dropped and a leap second 60 is
    /// read as 59.
    ///
    /// # Errors
    ///
    /// [`TimeError::InvalidTimestamp`] when `text` does not have that form or names a day
    /// that does not exist.
    pub fn parse_rfc3339(text: &str) -> Result<Self, TimeError> {
        let invalid = || TimeError::InvalidTimestamp {
            text: text.to_owned(),
        };
        let bytes = text.as_bytes();
        if bytes.len() < 20 || !matches!(bytes[10], b'T' | b't' | b' ') {
            return Err(invalid());
        }
        // Byte 10 is ASCII, so 10 and 11 are character boundaries; 19 may not be, hence
        // the checked slices.
        let date = Date::parse(&text[..10]).map_err(|_| invalid())?;
        let clock = text.get(11..19).ok_or_else(invalid)?;
        let (hour, minute, second) = parse_clock(clock).ok_or_else(invalid)?;
        let mut rest = text.get(19..).ok_or_else(invalid)?;
        if let Some(fraction) = rest.strip_prefix('.') {
            let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(invalid());
            }
            rest = &fraction[digits..];
        }
        let offset_secs = parse_offset(rest).ok_or_else(invalid)?;

        let days = date.days_since_epoch();
        let local_secs = days * SECS_PER_DAY + hour * 3600 + minute * 60 + second.min(59);
        Ok(Timestamp::from_unix_secs(local_secs - offset_secs))
    }

    /// Converts the instant to China Standard Time.
    pub fn china_time(self) -> LocalTime {
        let local = self.unix_secs.saturating_add(CHINA_OFFSET_SECS);
        let days = local.div_euclid(SECS_PER_DAY);
        let secs_of_day = local.rem_euclid(SECS_PER_DAY);
        // rem_euclid keeps the values in 0..7 and 0..86400, so the casts below are exact.
        let weekday = Weekday::ALL[(days + 3).rem_euclid(7) as usize];
        LocalTime {
            date: Date::from_days_since_epoch(days),
            weekday,
            minute_of_day: (secs_of_day / 60) as u16,
            second: (secs_of_day % 60) as u8,
        }
    }
}

/// Writes the instant as RFC 3339 in China Standard Time, such as
/// `2025-01-06T09:30:00+08:00`.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let local = self.china_time();
        write!(
            f,
            "{}T{:02}:{:02}:{:02}+08:00",
            local.date,
            local.minute_of_day / 60,
            local.minute_of_day % 60,
            local.second
        )
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

fn parse_clock(clock: &str) -> Option<(i64, i64, i64)> {
    let bytes = clock.as_bytes();
    if bytes.len() != 8 || bytes[2] != b':' || bytes[5] != b':' {
        return None;
    }
    let hour = two_digits(&clock[0..2]).filter(|hour| *hour < 24)?;
    let minute = two_digits(&clock[3..5]).filter(|minute| *minute < 60)?;
    let second = two_digits(&clock[6..8]).filter(|second| *second <= 60)?;
    Some((i64::from(hour), i64::from(minute), i64::from(second)))
}

/// Reads `Z` or `±HH:MM` and returns the offset east of UTC in seconds.
fn parse_offset(text: &str) -> Option<i64> {
    if text.eq_ignore_ascii_case("z") {
        return Some(0);
    }
    let sign = match text.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let bytes = text.as_bytes();
    if bytes.len() != 6 || bytes[3] != b':' {
        return None;
    }
    let hours = two_digits(&text[1..3]).filter(|hours| *hours < 24)?;
    let minutes = two_digits(&text[4..6]).filter(|minutes| *minutes < 60)?;
    Some(sign * (i64::from(hours) * 3600 + i64::from(minutes) * 60))
}

fn two_digits(text: &str) -> Option<u8> {
    let bytes = text.as_bytes();
    if bytes.len() != 2 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some((bytes[0] - b'0') * 10 + (bytes[1] - b'0'))
}

/// A calendar date (proleptic Gregorian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    pub year: i32,
    pub month: u8,
    pub day: u8,
}

impl Date {
    /// Parses `YYYY-MM-DD`.
    ///
    /// # Errors
    ///
    /// [`TimeError::InvalidDate`] for another form or a day that does not exist, such as
    /// 2025-02-29.
    pub fn parse(text: &str) -> Result<Date, TimeError> {
        let invalid = || TimeError::InvalidDate {
            text: text.to_owned(),
        };
        let bytes = text.as_bytes();
        if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
            return Err(invalid());
        }
        if !text[..4].bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let year: i32 = text[..4].parse().map_err(|_| invalid())?;
        let month = two_digits(&text[5..7]).ok_or_else(invalid)?;
        let day = two_digits(&text[8..10]).ok_or_else(invalid)?;
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return Err(invalid());
        }
        Ok(Date { year, month, day })
    }

    /// Days from 1970-01-01 to this date, negative before it.
    fn days_since_epoch(self) -> i64 {
        // Counts from 1 March so that the leap day ends the year (a well-known method for
        // proleptic Gregorian dates).
        let month = i64::from(self.month);
        let year = i64::from(self.year) - i64::from(month <= 2);
        let era = year.div_euclid(400);
        let year_of_era = year - era * 400;
        let month_from_march = (month + 9) % 12;
        let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(self.day) - 1;
        let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
        era * 146_097 + day_of_era - 719_468
    }

    fn from_days_since_epoch(days: i64) -> Date {
        let shifted = days + 719_468;
        let era = shifted.div_euclid(146_097);
        let day_of_era = shifted - era * 146_097;
        let year_of_era =
            (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let month_from_march = (5 * day_of_year + 2) / 153;
        let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
        let month = if month_from_march < 10 {
            month_from_march + 3
        } else {
            month_from_march - 9
        };
        let year = year_of_era + era * 400 + i64::from(month <= 2);
        // Month and day are within 1..=12 and 1..=31 by construction; years beyond i32
        // only come from timestamps millions of years away and saturate.
        Date {
            year: i32::try_from(year).unwrap_or(if year < 0 { i32::MIN } else { i32::MAX }),
            month: month as u8,
            day: day as u8,
        }
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

fn days_in_month(year: i32, month: u8) -> u8 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Weekday {
    /// Monday first.
    pub const ALL: [Weekday; 7] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];

    /// Returns the three-letter lowercase name used in dialplans.
    pub fn as_str(self) -> &'static str {
        match self {
            Weekday::Mon => "mon",
            Weekday::Tue => "tue",
            Weekday::Wed => "wed",
            Weekday::Thu => "thu",
            Weekday::Fri => "fri",
            Weekday::Sat => "sat",
            Weekday::Sun => "sun",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    fn parse(name: &str) -> Option<Weekday> {
        Weekday::ALL
            .into_iter()
            .find(|day| day.as_str().eq_ignore_ascii_case(name.trim()))
    }
}

/// A local date, weekday and time of day in China Standard Time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    pub date: Date,
    pub weekday: Weekday,
    /// Minutes since local midnight, 0-1439.
    pub minute_of_day: u16,
    pub second: u8,
}

/// One schedule rule: the weekdays, the hours of the day and the dates it covers. A rule
/// matches when every part that is set matches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimeRule {
    /// Weekdays covered, bit 0 Monday to bit 6 Sunday; `None` covers every day.
    days: Option<u8>,
    /// Local time from `start` (inclusive) to `end` (exclusive), in minutes since midnight.
    /// A range with `end < start` runs over midnight.
    hours: Option<HourRange>,
    /// Local dates covered; empty covers every date.
    dates: Vec<Date>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HourRange {
    start: u16,
    end: u16,
}

impl TimeRule {
    /// Creates a rule that covers every instant, to be narrowed with the setters.
    pub fn new() -> Self {
        TimeRule::default()
    }

    /// Limits the rule to weekdays written as names (`mon`) or ranges (`mon-fri`,
    /// `fri-mon` runs over the weekend).
    ///
    /// # Errors
    ///
    /// [`TimeError::InvalidDays`] naming the first entry that is neither.
    pub fn set_days<S: AsRef<str>>(&mut self, entries: &[S]) -> Result<(), TimeError> {
        let mut mask = 0u8;
        for entry in entries {
            mask |= parse_day_range(entry.as_ref())?;
        }
        self.days = Some(mask);
        Ok(())
    }

    /// Limits the rule to local times `HH:MM-HH:MM`, the end excluded. `24:00` may end a
    /// range, and a range whose end is before its start runs over midnight.
    ///
    /// # Errors
    ///
    /// [`TimeError::InvalidHours`] for another form, [`TimeError::EmptyHours`] when start
    /// and end are equal.
    pub fn set_hours(&mut self, text: &str) -> Result<(), TimeError> {
        let invalid = || TimeError::InvalidHours {
            text: text.to_owned(),
        };
        let (start, end) = text.split_once('-').ok_or_else(invalid)?;
        let start = parse_hour_minute(start.trim()).ok_or_else(invalid)?;
        let end = parse_hour_minute(end.trim()).ok_or_else(invalid)?;
        if start == MINUTES_PER_DAY {
            return Err(invalid());
        }
        let end = if end == MINUTES_PER_DAY { 0 } else { end };
        if start == end && !(start == 0 && text.trim_end().ends_with("24:00")) {
            return Err(TimeError::EmptyHours {
                text: text.to_owned(),
            });
        }
        self.hours = Some(HourRange { start, end });
        Ok(())
    }

    /// Limits the rule to the given local dates.
    pub fn set_dates(&mut self, dates: Vec<Date>) {
        self.dates = dates;
    }

    /// Returns whether the rule limits nothing at all.
    pub fn is_unrestricted(&self) -> bool {
        self.days.is_none() && self.hours.is_none() && self.dates.is_empty()
    }

    /// Returns whether `local` falls within the rule.
    pub fn matches(&self, local: &LocalTime) -> bool {
        let day_ok = self
            .days
            .is_none_or(|mask| mask & (1 << local.weekday.index()) != 0);
        let date_ok = self.dates.is_empty() || self.dates.contains(&local.date);
        let hours_ok = self
            .hours
            .is_none_or(|range| range.contains(local.minute_of_day));
        day_ok && date_ok && hours_ok
    }
}

impl HourRange {
    fn contains(self, minute: u16) -> bool {
        if self.start < self.end {
            (self.start..self.end).contains(&minute)
        } else {
            // Over midnight, or 00:00-24:00 (start == end == 0) for the whole day.
            minute >= self.start || minute < self.end
        }
    }
}

impl fmt::Display for TimeRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(mask) = self.days {
            let days: Vec<&str> = Weekday::ALL
                .into_iter()
                .filter(|day| mask & (1 << day.index()) != 0)
                .map(Weekday::as_str)
                .collect();
            parts.push(format!("days {}", days.join(",")));
        }
        if let Some(range) = self.hours {
            let end = if range.end == 0 { 1440 } else { range.end };
            parts.push(format!(
                "hours {:02}:{:02}-{:02}:{:02}",
                range.start / 60,
                range.start % 60,
                end / 60,
                end % 60
            ));
        }
        if !self.dates.is_empty() {
            let dates: Vec<String> = self.dates.iter().map(Date::to_string).collect();
            parts.push(format!("dates {}", dates.join(",")));
        }
        if parts.is_empty() {
            return f.write_str("always");
        }
        f.write_str(&parts.join(" "))
    }
}

/// The rules under which a destination or gateway is in use. An empty schedule means
/// always; otherwise the schedule is active when any rule matches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schedule {
    pub rules: Vec<TimeRule>,
}

impl Schedule {
    /// Returns whether the schedule allows use at `at`, judged in China Standard Time.
    pub fn is_active(&self, at: Timestamp) -> bool {
        if self.rules.is_empty() {
            return true;
        }
        let local = at.china_time();
        self.rules.iter().any(|rule| rule.matches(&local))
    }
}

fn parse_day_range(entry: &str) -> Result<u8, TimeError> {
    let invalid = || TimeError::InvalidDays {
        text: entry.to_owned(),
    };
    let (first, last) = match entry.split_once('-') {
        Some((first, last)) => (first, last),
        None => (entry, entry),
    };
    let first = Weekday::parse(first).ok_or_else(invalid)?.index();
    let last = Weekday::parse(last).ok_or_else(invalid)?.index();

    let mut mask = 0u8;
    let mut day = first;
    loop {
        mask |= 1 << day;
        if day == last {
            return Ok(mask);
        }
        day = (day + 1) % 7;
    }
}

/// Reads `HH:MM` (00:00 to 24:00) as minutes since midnight.
fn parse_hour_minute(text: &str) -> Option<u16> {
    let (hours, minutes) = text.split_once(':')?;
    let hours = two_digits(hours)?;
    let minutes = two_digits(minutes).filter(|minutes| *minutes < 60)?;
    let total = u16::from(hours) * 60 + u16::from(minutes);
    (total <= MINUTES_PER_DAY).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).unwrap()
    }

    #[test]
    fn rfc3339_offsets_agree() {
        let china = at("2025-01-06T09:30:00+08:00");
        assert_eq!(china, at("2025-01-06T01:30:00Z"));
        assert_eq!(china, at("2025-01-05T20:30:00-05:00"));
        assert_eq!(china, at("2025-01-06t01:30:00.250z"));
        assert_eq!(china.unix_secs(), 1_736_127_000);
    }

    #[test]
    fn rfc3339_rejects_bad_forms() {
        for text in [
            "",
            "2025-01-06",
            "2025-01-06T09:30:00",
            "2025-01-06T09:30+08:00",
            "2025-02-29T00:00:00Z",
            "2025-01-06T24:00:00Z",
            "2025-01-06T09:30:00+8:00",
            "2025-01-06T09:30:00.Z",
            "2025-01-06T09:30:00Zjunk",
            "２025-01-06T09:30:00Z",
            "2025-01-06T09:30:0é+08:00",
            "2025-01-06T09:30:00é08:00",
            "2025-01-06T09:30:00+é:00",
            "2025-é1-06T09:30:00Z",
        ] {
            assert!(Timestamp::parse_rfc3339(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn china_time_of_instant() {
        let local = at("2024-12-31T16:30:05Z").china_time();
        assert_eq!(local.date.to_string(), "2025-01-01");
        assert_eq!(local.weekday, Weekday::Wed);
        assert_eq!(local.minute_of_day, 30);
        assert_eq!(local.second, 5);
        assert_eq!(
            Timestamp::from_unix_secs(0).china_time().weekday,
            Weekday::Thu
        );
    }

    #[test]
    fn display_round_trips() {
        let text = "2024-02-29T23:59:59+08:00";
        assert_eq!(at(text).to_string(), text);
        assert_eq!(
            at("1969-12-31T23:00:00Z").to_string(),
            "1970-01-01T07:00:00+08:00"
        );
    }

    #[test]
    fn date_round_trips_over_centuries() {
        for days in (-800_000..800_000).step_by(997) {
            let date = Date::from_days_since_epoch(days);
            assert_eq!(date.days_since_epoch(), days, "{date}");
            assert_eq!(
                Date::parse(&date.to_string()).ok(),
                Some(date).filter(|d| d.year >= 0)
            );
        }
    }

    #[test]
    fn date_rejects_missing_days() {
        assert!(Date::parse("2024-02-29").is_ok());
        assert!(Date::parse("2100-02-29").is_err());
        assert!(Date::parse("2025-04-31").is_err());
        assert!(Date::parse("2025-13-01").is_err());
        assert!(Date::parse("2025-1-01").is_err());
    }

    #[test]
    fn days_and_ranges() {
        let mut rule = TimeRule::new();
        rule.set_days(&["mon-wed", "sat"]).unwrap();
        assert_eq!(rule.to_string(), "days mon,tue,wed,sat");
        rule.set_days(&["fri-mon"]).unwrap();
        assert_eq!(rule.to_string(), "days mon,fri,sat,sun");
        assert!(rule.set_days(&["monday"]).is_err());
        assert!(rule.set_days(&["mon-"]).is_err());
    }

    #[test]
    fn hours_within_day() {
        let mut rule = TimeRule::new();
        rule.set_hours("08:00-20:00").unwrap();
        assert!(!rule.matches(&at("2025-01-06T07:59:59+08:00").china_time()));
        assert!(rule.matches(&at("2025-01-06T08:00:00+08:00").china_time()));
        assert!(rule.matches(&at("2025-01-06T19:59:59+08:00").china_time()));
        assert!(!rule.matches(&at("2025-01-06T20:00:00+08:00").china_time()));
    }

    #[test]
    fn hours_over_midnight() {
        let mut rule = TimeRule::new();
        rule.set_hours("20:00-08:00").unwrap();
        assert!(rule.matches(&at("2025-01-06T23:00:00+08:00").china_time()));
        assert!(rule.matches(&at("2025-01-06T07:00:00+08:00").china_time()));
        assert!(!rule.matches(&at("2025-01-06T12:00:00+08:00").china_time()));
        rule.set_hours("00:00-24:00").unwrap();
        assert!(rule.matches(&at("2025-01-06T12:00:00+08:00").china_time()));
        assert_eq!(rule.to_string(), "hours 00:00-24:00");
    }

    #[test]
    fn hours_rejects_bad_ranges() {
        let mut rule = TimeRule::new();
        assert!(matches!(
            rule.set_hours("08:00-08:00"),
            Err(TimeError::EmptyHours { .. })
        ));
        for text in [
            "8:00-20:00",
            "08:00",
            "08:60-09:00",
            "24:00-08:00",
            "25:00-26:00",
        ] {
            assert!(
                matches!(rule.set_hours(text), Err(TimeError::InvalidHours { .. })),
                "{text}"
            );
        }
    }

    #[test]
    fn rule_needs_every_part() {
        let mut rule = TimeRule::new();
        rule.set_days(&["mon-fri"]).unwrap();
        rule.set_hours("09:00-17:00").unwrap();
        // 2025-01-06 is a Monday, 2025-01-11 a Saturday.
        assert!(rule.matches(&at("2025-01-06T10:00:00+08:00").china_time()));
        assert!(!rule.matches(&at("2025-01-11T10:00:00+08:00").china_time()));
        assert!(!rule.matches(&at("2025-01-06T18:00:00+08:00").china_time()));
    }

    #[test]
    fn schedule_any_rule() {
        let mut weekdays = TimeRule::new();
        weekdays.set_days(&["mon-fri"]).unwrap();
        let mut holiday = TimeRule::new();
        holiday.set_dates(vec![Date::parse("2025-01-11").unwrap()]);
        let schedule = Schedule {
            rules: vec![weekdays, holiday],
        };
        assert!(schedule.is_active(at("2025-01-06T10:00:00+08:00")));
        assert!(schedule.is_active(at("2025-01-11T10:00:00+08:00")));
        assert!(!schedule.is_active(at("2025-01-12T10:00:00+08:00")));
        assert!(Schedule::default().is_active(at("2025-01-12T10:00:00+08:00")));
    }
}
