//! Doctors' weekly schedules at a site, their leave, and which instants are bookable slots.
//!
//! A schedule is written in the site's wall-clock time with a fixed UTC offset
//! (`utc_offset_minutes`); slots are returned in UTC. Each site owns its schedules, so two
//! offline clinics never hand out the same slot.

use chrono::{
    DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveTime, Offset, TimeZone, Utc, Weekday,
};

use crate::{DoctorId, DomainError, LeaveId, ScheduleId};

/// One block of weekly availability, e.g. Monday 09:00-12:30.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WeeklyRule {
    pub weekday: Weekday,
    pub start: NaiveTime,
    pub end: NaiveTime,
}

/// A doctor's weekly availability at one site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub id: ScheduleId,
    pub doctor_id: DoctorId,
    pub site: String,
    pub slot_minutes: u32,
    pub utc_offset_minutes: i32,
    pub rules: Vec<WeeklyRule>,
    pub active: bool,
    pub updated_at: DateTime<Utc>,
}

/// A period in which the doctor takes no appointments (leave, training, sickness).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leave {
    pub id: LeaveId,
    pub doctor_id: DoctorId,
    pub site: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub reason: Option<String>,
    pub cancelled: bool,
}

/// A bookable period, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Slot {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// The longest range one availability question may cover.
pub const MAX_RANGE_DAYS: i64 = 92;

pub fn parse_slot_minutes(m: i64) -> Result<u32, DomainError> {
    if !(5..=240).contains(&m) {
        return Err(DomainError::invalid("slotMinutes", "5 to 240 minutes"));
    }
    u32::try_from(m).map_err(|_| DomainError::invalid("slotMinutes", "5 to 240 minutes"))
}

pub fn parse_utc_offset(m: i64) -> Result<i32, DomainError> {
    if !(-14 * 60..=14 * 60).contains(&m) {
        return Err(DomainError::invalid("utcOffsetMinutes", "-840 to 840"));
    }
    i32::try_from(m).map_err(|_| DomainError::invalid("utcOffsetMinutes", "-840 to 840"))
}

pub fn parse_weekday(s: &str) -> Result<Weekday, DomainError> {
    s.trim()
        .parse::<Weekday>()
        .map_err(|_| DomainError::invalid("weekday", format!("{s:?} is not a weekday")))
}

pub fn parse_time(field: &'static str, s: &str) -> Result<NaiveTime, DomainError> {
    NaiveTime::parse_from_str(s.trim(), "%H:%M")
        .map_err(|_| DomainError::invalid(field, format!("{s:?} is not a time (HH:MM)")))
}

/// Checks a set of weekly rules: each block has a positive length that fits at least one
/// slot, and blocks on the same day do not overlap.
pub fn check_rules(rules: &[WeeklyRule], slot_minutes: u32) -> Result<(), DomainError> {
    if rules.len() > 50 {
        return Err(DomainError::invalid("weekly", "at most 50 blocks"));
    }
    for (i, r) in rules.iter().enumerate() {
        if r.end <= r.start {
            return Err(DomainError::invalid(
                "weekly",
                "a block must end after it starts",
            ));
        }
        if (r.end - r.start) < Duration::minutes(i64::from(slot_minutes)) {
            return Err(DomainError::invalid(
                "weekly",
                "a block is shorter than one slot",
            ));
        }
        for other in &rules[i + 1..] {
            if other.weekday == r.weekday && other.start < r.end && r.start < other.end {
                return Err(DomainError::invalid(
                    "weekly",
                    format!("two blocks overlap on {}", r.weekday),
                ));
            }
        }
    }
    Ok(())
}

pub fn overlaps(
    a_start: DateTime<Utc>,
    a_end: DateTime<Utc>,
    b_start: DateTime<Utc>,
    b_end: DateTime<Utc>,
) -> bool {
    a_start < b_end && b_start < a_end
}

impl Schedule {
    fn offset(&self) -> FixedOffset {
        FixedOffset::east_opt(self.utc_offset_minutes * 60).unwrap_or(Utc.fix())
    }

    /// Every slot that starts in `[from, to)`, minus those that touch a (non-cancelled)
    /// leave. Slots already booked are the caller's to remove: this is the schedule alone.
    pub fn slots(&self, leaves: &[Leave], from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Slot> {
        let mut out = Vec::new();
        if !self.active || to <= from || self.slot_minutes == 0 {
            return out;
        }
        let tz = self.offset();
        let step = Duration::minutes(i64::from(self.slot_minutes));
        let first_day = from.with_timezone(&tz).date_naive() - Duration::days(1);
        let last_day = to.with_timezone(&tz).date_naive();
        let mut day = first_day;
        while day <= last_day {
            for rule in self.rules.iter().filter(|r| r.weekday == day.weekday()) {
                push_day_slots(&mut out, &tz, day, rule, step, leaves, from, to);
            }
            day += Duration::days(1);
        }
        out.sort();
        out
    }

    /// The slot that starts exactly at `start`, if the schedule offers one.
    pub fn slot_at(&self, leaves: &[Leave], start: DateTime<Utc>) -> Result<Slot, DomainError> {
        self.slots(leaves, start, start + Duration::seconds(1))
            .into_iter()
            .find(|s| s.start == start)
            .ok_or_else(|| DomainError::NotASlot(start.to_rfc3339()))
    }
}

#[allow(clippy::too_many_arguments)]
fn push_day_slots(
    out: &mut Vec<Slot>,
    tz: &FixedOffset,
    day: NaiveDate,
    rule: &WeeklyRule,
    step: Duration,
    leaves: &[Leave],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) {
    let Some(block_start) = tz.from_local_datetime(&day.and_time(rule.start)).single() else {
        return;
    };
    let Some(block_end) = tz.from_local_datetime(&day.and_time(rule.end)).single() else {
        return;
    };
    let (block_start, block_end) = (
        block_start.with_timezone(&Utc),
        block_end.with_timezone(&Utc),
    );
    let mut start = block_start;
    while start + step <= block_end {
        let end = start + step;
        let on_leave = leaves
            .iter()
            .any(|l| !l.cancelled && overlaps(start, end, l.start, l.end));
        if start >= from && start < to && !on_leave {
            out.push(Slot { start, end });
        }
        start = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    fn schedule(offset: i32, rules: Vec<WeeklyRule>) -> Schedule {
        Schedule {
            id: ScheduleId(Uuid::nil()),
            doctor_id: DoctorId(Uuid::nil()),
            site: "DEV".into(),
            slot_minutes: 30,
            utc_offset_minutes: offset,
            rules,
            active: true,
            updated_at: t("2026-01-01T00:00:00Z"),
        }
    }

    fn rule(day: Weekday, start: &str, end: &str) -> WeeklyRule {
        WeeklyRule {
            weekday: day,
            start: parse_time("start", start).expect("start"),
            end: parse_time("end", end).expect("end"),
        }
    }

    #[test]
    fn slots_of_one_morning() {
        // 2026-11-23 is a Monday.
        let s = schedule(0, vec![rule(Weekday::Mon, "09:00", "10:45")]);
        let got: Vec<String> = s
            .slots(&[], t("2026-11-23T00:00:00Z"), t("2026-11-24T00:00:00Z"))
            .iter()
            .map(|s| s.start.format("%H:%M").to_string())
            .collect();
        assert_eq!(got, ["09:00", "09:30", "10:00"]);
    }

    #[test]
    fn offset_is_applied() {
        // Nairobi, UTC+3: 09:00 local is 06:00 UTC.
        let s = schedule(180, vec![rule(Weekday::Mon, "09:00", "10:00")]);
        let slots = s.slots(&[], t("2026-11-23T00:00:00Z"), t("2026-11-24T00:00:00Z"));
        assert_eq!(slots[0].start, t("2026-11-23T06:00:00Z"));
        assert_eq!(slots.len(), 2);
        // A block that begins on the local day before `from` in UTC is still found.
        let s = schedule(-600, vec![rule(Weekday::Sun, "20:00", "21:00")]);
        let slots = s.slots(&[], t("2026-11-23T00:00:00Z"), t("2026-11-24T00:00:00Z"));
        assert_eq!(
            slots.first().map(|s| s.start),
            Some(t("2026-11-23T06:00:00Z"))
        );
    }

    #[test]
    fn leave_removes_slots_and_cancelled_leave_does_not() {
        let s = schedule(0, vec![rule(Weekday::Mon, "09:00", "11:00")]);
        let mut leave = Leave {
            id: LeaveId(Uuid::nil()),
            doctor_id: DoctorId(Uuid::nil()),
            site: "DEV".into(),
            start: t("2026-11-23T09:15:00Z"),
            end: t("2026-11-23T10:00:00Z"),
            reason: None,
            cancelled: false,
        };
        let day = (t("2026-11-23T00:00:00Z"), t("2026-11-24T00:00:00Z"));
        assert_eq!(s.slots(std::slice::from_ref(&leave), day.0, day.1).len(), 2);
        leave.cancelled = true;
        assert_eq!(s.slots(&[leave], day.0, day.1).len(), 4);
    }

    #[test]
    fn slot_at_accepts_only_slot_starts() {
        let s = schedule(0, vec![rule(Weekday::Mon, "09:00", "10:00")]);
        assert!(s.slot_at(&[], t("2026-11-23T09:30:00Z")).is_ok());
        assert!(s.slot_at(&[], t("2026-11-23T09:10:00Z")).is_err());
        assert!(s.slot_at(&[], t("2026-11-24T09:30:00Z")).is_err());
        let mut inactive = s.clone();
        inactive.active = false;
        assert!(inactive.slot_at(&[], t("2026-11-23T09:30:00Z")).is_err());
    }

    #[test]
    fn rules_are_checked() {
        assert!(check_rules(&[rule(Weekday::Mon, "09:00", "12:00")], 30).is_ok());
        assert!(check_rules(&[rule(Weekday::Mon, "12:00", "09:00")], 30).is_err());
        assert!(check_rules(&[rule(Weekday::Mon, "09:00", "09:10")], 30).is_err());
        assert!(
            check_rules(
                &[
                    rule(Weekday::Mon, "09:00", "12:00"),
                    rule(Weekday::Mon, "11:00", "13:00")
                ],
                30
            )
            .is_err()
        );
        assert!(
            check_rules(
                &[
                    rule(Weekday::Mon, "09:00", "12:00"),
                    rule(Weekday::Tue, "11:00", "13:00")
                ],
                30
            )
            .is_ok()
        );
    }
}
