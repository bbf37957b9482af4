//! The audit trail of health data: who read or wrote which record, when, from where and
//! why, as events chained by hash so that an edited, deleted, inserted or reordered
//! event is found by [`verify`].
//!
//! Each event's hash is SHA-256 of the previous event's hash and the event's canonical
//! bytes ([`AuditEvent::canonical`]: every field, length-prefixed, in a fixed order);
//! the first event follows [`GENESIS`], and events are numbered from 1 without gaps.
//! Recomputing the hashes needs no secret, so someone who can write the store could
//! rewrite the whole tail consistently; a copy of the chain's head kept elsewhere is
//! what makes that evident, which is why [`verify`] returns the head it reached.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{PatientId, Role, UserId};

/// How long a break-glass access lasts: a clinician who opens a record outside their
/// care gives a reason and reads it for these hours, each read flagged with the reason.
pub const BREAK_GLASS_HOURS: i64 = 4;

/// The kind the trail gives the event that opens a break-glass access.
pub const BREAK_GLASS: &str = "break_glass";

/// A break-glass reason as given: trimmed, 10 to 500 characters (a reason a reviewer
/// can judge, not a keystroke).
pub fn parse_break_glass_reason(s: &str) -> Result<String, crate::DomainError> {
    let s = s.trim();
    match s.chars().count() {
        10..=500 => Ok(s.to_string()),
        _ => Err(crate::DomainError::invalid(
            "reason",
            "say why the record must be opened, in 10 to 500 characters",
        )),
    }
}

/// Until when a break-glass opened at `opened` holds.
pub fn break_glass_until(opened: DateTime<Utc>) -> DateTime<Utc> {
    opened + chrono::Duration::hours(BREAK_GLASS_HOURS)
}

/// Whether a break-glass opened at `opened` still holds at `now` (not before it was
/// opened: a clock set back does not stretch it).
pub fn break_glass_holds(opened: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    opened <= now && now < break_glass_until(opened)
}

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// What the first event's hash follows.
pub const GENESIS: Hash = [0; 32];

/// Whether an event is a read, a write, or an attempt the access policy refused (the
/// record, or the part of it asked for, was not shown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    Read,
    Write,
    Refused,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "READ",
            Access::Write => "WRITE",
            Access::Refused => "REFUSED",
        }
    }

    pub fn parse(s: &str) -> Option<Access> {
        match s {
            "READ" => Some(Access::Read),
            "WRITE" => Some(Access::Write),
            "REFUSED" => Some(Access::Refused),
            _ => None,
        }
    }
}

/// Who acted: a signed-in account, or the node itself (reminders, a record made at the
/// command line), named by what it was doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user_id: Option<UserId>,
    /// The account's user name, or `system:<what>`.
    pub username: String,
    pub role: Option<Role>,
}

impl Actor {
    pub fn system(what: &str) -> Actor {
        Actor {
            user_id: None,
            username: format!("system:{what}"),
            role: None,
        }
    }
}

/// One access to one record of health data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// 1, 2, 3, ... at this node, without gaps.
    pub seq: u64,
    /// The node's clock, in whole microseconds (what the store keeps).
    pub at: DateTime<Utc>,
    pub actor: Actor,
    /// The site of the node that recorded the event.
    pub site: String,
    pub access: Access,
    /// The record's kind (`patient`, `medical_record`, `invoice`, ...).
    pub kind: String,
    pub record_id: Uuid,
    /// The patient the record is about, when it is about one.
    pub patient_id: Option<PatientId>,
    /// What was done: the operation (`bookAppointment`, `patient`, ...).
    pub operation: String,
    /// The client's address, when the access came over the network.
    pub peer: Option<String>,
    /// A reason given for the access (break-glass).
    pub reason: Option<String>,
}

impl AuditEvent {
    /// The bytes the hash covers: every field, each length-prefixed (so no value can
    /// pass for two), in declaration order; absent values differ from empty ones.
    pub fn canonical(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        let mut field = |v: Option<&[u8]>| match v {
            None => out.push(0),
            Some(b) => {
                out.push(1);
                out.extend_from_slice(&(b.len() as u64).to_be_bytes());
                out.extend_from_slice(b);
            }
        };
        field(Some(&self.seq.to_be_bytes()));
        field(Some(&self.at.timestamp_micros().to_be_bytes()));
        let user = self.actor.user_id.map(|u| u.to_string());
        field(user.as_deref().map(str::as_bytes));
        field(Some(self.actor.username.as_bytes()));
        field(self.actor.role.map(|r| r.as_str().as_bytes()));
        field(Some(self.site.as_bytes()));
        field(Some(self.access.as_str().as_bytes()));
        field(Some(self.kind.as_bytes()));
        field(Some(self.record_id.as_bytes()));
        let patient = self.patient_id.map(|p| p.to_string());
        field(patient.as_deref().map(str::as_bytes));
        field(Some(self.operation.as_bytes()));
        field(self.peer.as_deref().map(str::as_bytes));
        field(self.reason.as_deref().map(str::as_bytes));
        out
    }
}

impl AuditEvent {
    /// The event whose [`AuditEvent::canonical`] bytes these are: how events travel to
    /// the hub, which recomputes the chain from them. `None` for bytes that are not
    /// exactly one event's (truncated, trailing, a value out of range).
    pub fn from_canonical(bytes: &[u8]) -> Option<AuditEvent> {
        let mut rest = bytes;
        let mut field = || -> Option<Option<&[u8]>> {
            let (&present, tail) = rest.split_first()?;
            match present {
                0 => {
                    rest = tail;
                    Some(None)
                }
                1 => {
                    let (len, tail) = tail.split_first_chunk::<8>()?;
                    let len = usize::try_from(u64::from_be_bytes(*len)).ok()?;
                    if len > tail.len() {
                        return None;
                    }
                    let (value, tail) = tail.split_at(len);
                    rest = tail;
                    Some(Some(value))
                }
                _ => None,
            }
        };
        let text = |v: &[u8]| std::str::from_utf8(v).ok().map(str::to_string);
        let uuid = |v: &[u8]| {
            std::str::from_utf8(v)
                .ok()
                .and_then(|s| Uuid::parse_str(s).ok())
        };
        let seq = u64::from_be_bytes(field()??.try_into().ok()?);
        let at = DateTime::from_timestamp_micros(i64::from_be_bytes(field()??.try_into().ok()?))?;
        let user_id = match field()? {
            Some(v) => Some(UserId(uuid(v)?)),
            None => None,
        };
        let username = text(field()??)?;
        let role = match field()? {
            Some(v) => Some(Role::parse(std::str::from_utf8(v).ok()?).ok()?),
            None => None,
        };
        let site = text(field()??)?;
        let access = Access::parse(std::str::from_utf8(field()??).ok()?)?;
        let kind = text(field()??)?;
        let record_id = Uuid::from_slice(field()??).ok()?;
        let patient_id = match field()? {
            Some(v) => Some(PatientId(uuid(v)?)),
            None => None,
        };
        let operation = text(field()??)?;
        let peer = field()?.map(text).map_or(Some(None), |t| t.map(Some))?;
        let reason = field()?.map(text).map_or(Some(None), |t| t.map(Some))?;
        let event = AuditEvent {
            seq,
            at,
            actor: Actor {
                user_id,
                username,
                role,
            },
            site,
            access,
            kind,
            record_id,
            patient_id,
            operation,
            peer,
            reason,
        };
        // Exactly one event, written as the store writes it.
        (rest.is_empty() && event.canonical() == bytes).then_some(event)
    }
}

/// The hash of `event` following `prev`.
pub fn link(prev: &Hash, event: &AuditEvent) -> Hash {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(event.canonical());
    h.finalize().into()
}

/// Where a chain stops being the one that was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    /// The event in this position is not numbered as it must be: an event before it
    /// was deleted, or one was inserted or moved.
    #[error(
        "audit event at position {position} is numbered {found}: events were deleted, inserted or reordered before it"
    )]
    Sequence { position: u64, found: u64 },
    /// The event's stored hash is not the hash of its content and its predecessor: it,
    /// or one before it, was edited.
    #[error("audit event {seq} does not match its hash: it or the chain before it was edited")]
    Hash { seq: u64 },
}

impl ChainBreak {
    /// The number of the first event that is not as written.
    pub fn first_bad(&self) -> u64 {
        match self {
            ChainBreak::Sequence { position, .. } => *position,
            ChainBreak::Hash { seq } => *seq,
        }
    }
}

/// What a verified chain holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub events: u64,
    /// The last event's hash ([`GENESIS`] for an empty chain).
    pub head: Hash,
}

impl Verified {
    /// The head hash in hexadecimal, as a person compares it with a copy kept
    /// elsewhere.
    pub fn head_hex(&self) -> String {
        self.head.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Checks stored events one by one, in stored order, from the first (for a log too
/// large to hold in memory at once).
#[derive(Debug, Clone)]
pub struct Verifier {
    done: Verified,
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier {
            done: Verified {
                events: 0,
                head: GENESIS,
            },
        }
    }
}

impl Verifier {
    /// The next stored event and its stored hash.
    pub fn push(&mut self, event: &AuditEvent, stored: &Hash) -> Result<(), ChainBreak> {
        let position = self.done.events + 1;
        if event.seq != position {
            return Err(ChainBreak::Sequence {
                position,
                found: event.seq,
            });
        }
        let h = link(&self.done.head, event);
        if h != *stored {
            return Err(ChainBreak::Hash { seq: event.seq });
        }
        self.done = Verified {
            events: position,
            head: h,
        };
        Ok(())
    }

    /// What has been verified so far.
    pub fn verified(&self) -> Verified {
        self.done
    }
}

/// Walks stored events, in stored order, with their stored hashes, from the first.
/// Stops at the first that is not as written.
pub fn verify(
    events: impl IntoIterator<Item = (AuditEvent, Hash)>,
) -> Result<Verified, ChainBreak> {
    let mut v = Verifier::default();
    for (event, stored) in events {
        v.push(&event, &stored)?;
    }
    Ok(v.verified())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64) -> AuditEvent {
        AuditEvent {
            seq,
            at: DateTime::from_timestamp_micros(1_764_000_000_000_000 + seq as i64)
                .unwrap_or_default(),
            actor: Actor {
                user_id: Some(UserId(Uuid::from_u128(7))),
                username: "dr.kamau".into(),
                role: Some(Role::Doctor),
            },
            site: "NBO".into(),
            access: if seq.is_multiple_of(2) {
                Access::Read
            } else {
                Access::Write
            },
            kind: "medical_record".into(),
            record_id: Uuid::from_u128(seq as u128),
            patient_id: Some(PatientId(Uuid::from_u128(99))),
            operation: "addMedicalRecord".into(),
            peer: Some("192.168.1.20".into()),
            reason: None,
        }
    }

    fn chain(n: u64) -> Vec<(AuditEvent, Hash)> {
        let mut prev = GENESIS;
        (1..=n)
            .map(|s| {
                let e = event(s);
                prev = link(&prev, &e);
                (e, prev)
            })
            .collect()
    }

    #[test]
    fn an_untouched_chain_verifies_and_reports_its_head() {
        let c = chain(6);
        let v = verify(c.clone()).expect("verifies");
        assert_eq!(v.events, 6);
        assert_eq!(v.head, c[5].1);
        assert_eq!(
            verify(Vec::new()),
            Ok(Verified {
                events: 0,
                head: GENESIS
            })
        );
    }

    #[test]
    fn every_kind_of_tampering_names_the_first_bad_event() {
        type Tamper = fn(&mut Vec<(AuditEvent, Hash)>);
        let cases: [(&str, Tamper, u64); 9] = [
            ("edit a field", |c| c[2].0.operation = "nothing".into(), 3),
            ("edit the actor", |c| c[3].0.actor.username = "x".into(), 4),
            (
                "clear the reason",
                |c| c[0].0.reason = Some(String::new()),
                1,
            ),
            (
                "edit the time",
                |c| c[4].0.at += chrono::Duration::microseconds(1),
                5,
            ),
            ("edit a stored hash", |c| c[1].1[0] ^= 1, 2),
            (
                "delete one",
                |c| {
                    c.remove(2);
                },
                3,
            ),
            (
                "delete the first",
                |c| {
                    c.remove(0);
                },
                1,
            ),
            ("swap two", |c| c.swap(1, 2), 2),
            (
                "insert a copy",
                |c| {
                    let e = c[1].clone();
                    c.insert(3, e);
                },
                4,
            ),
        ];
        for (what, tamper, first_bad) in cases {
            let mut c = chain(6);
            tamper(&mut c);
            let err = verify(c).expect_err(what);
            assert_eq!(err.first_bad(), first_bad, "{what}: {err}");
        }
    }

    #[test]
    fn renumbering_after_a_deletion_still_breaks_the_hashes() {
        // Deleting event 3 and renumbering the rest fixes the sequence but not the
        // hashes, which cover the numbers.
        let mut c = chain(5);
        c.remove(2);
        for (i, (e, _)) in c.iter_mut().enumerate() {
            e.seq = i as u64 + 1;
        }
        assert_eq!(verify(c), Err(ChainBreak::Hash { seq: 3 }));
    }

    #[test]
    fn events_travel_as_their_canonical_bytes_and_nothing_else_reads_as_one() {
        let mut bare = event(3);
        (bare.actor.user_id, bare.actor.role, bare.patient_id) = (None, None, None);
        (bare.peer, bare.reason) = (None, Some("break-glass: unconscious".into()));
        for e in [event(1), event(2), bare] {
            let bytes = e.canonical();
            assert_eq!(AuditEvent::from_canonical(&bytes), Some(e.clone()));
            // Every truncation, and anything after the event, is refused.
            for n in 0..bytes.len() {
                assert_eq!(AuditEvent::from_canonical(&bytes[..n]), None, "{n}");
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert_eq!(AuditEvent::from_canonical(&longer), None);
            // A flipped presence byte or a huge length is refused, never a panic.
            let mut forged = bytes.clone();
            forged[0] = 7;
            assert_eq!(AuditEvent::from_canonical(&forged), None);
            let mut huge = bytes.clone();
            huge[1..9].copy_from_slice(&u64::MAX.to_be_bytes());
            assert_eq!(AuditEvent::from_canonical(&huge), None);
        }
    }

    #[test]
    fn break_glass_needs_a_reason_and_ends_after_its_hours() {
        for (given, ok) in [
            ("", false),
            ("   urgent  ", false),
            ("Unconscious in A&E, no treating doctor on site", true),
            (&"x".repeat(501), false),
            (&"é".repeat(500), true),
        ] {
            assert_eq!(parse_break_glass_reason(given).is_ok(), ok, "{given:?}");
        }
        let opened = DateTime::from_timestamp(1_764_000_000, 0).unwrap_or_default();
        let h = chrono::Duration::hours;
        for (now, holds) in [
            (opened - chrono::Duration::seconds(1), false),
            (opened, true),
            (
                opened + h(BREAK_GLASS_HOURS) - chrono::Duration::seconds(1),
                true,
            ),
            (opened + h(BREAK_GLASS_HOURS), false),
            (opened + h(48), false),
        ] {
            assert_eq!(break_glass_holds(opened, now), holds, "{now}");
        }
    }

    #[test]
    fn no_two_field_splits_hash_alike() {
        let mut a = event(1);
        let mut b = event(1);
        a.operation = "ab".into();
        a.peer = Some("c".into());
        b.operation = "a".into();
        b.peer = Some("bc".into());
        assert_ne!(a.canonical(), b.canonical());
        let mut c = event(1);
        c.peer = None;
        let mut d = event(1);
        d.peer = Some(String::new());
        assert_ne!(c.canonical(), d.canonical());
    }
}
