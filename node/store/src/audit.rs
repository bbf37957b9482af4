//! The node's audit trail (`healsync_domain::audit`): one hash-chained event per access
//! to a record of health data. Writes append theirs inside the transaction of the write
//! they record (a write without its event, or an event without its write, cannot be
//! committed); `healsync-node audit verify` walks the chain; admins and patients read
//! it through the API.

use chrono::{DateTime, Utc};
use healsync_domain::audit::{
    Access, Actor, AuditEvent, ChainBreak, Hash, Verified, Verifier, link,
};
use healsync_domain::{PatientId, Role, UserId};
use rusqlite::{Connection, OptionalExtension, Row, ToSql, TransactionBehavior, params};
use uuid::Uuid;

use crate::StoreError;
type Result<T> = std::result::Result<T, StoreError>;

/// Who is acting and through what: given to [`crate::Store::write_as`], copied into
/// every event the write leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditContext {
    pub actor: Actor,
    /// The operation (`bookAppointment`, `users add`, ...).
    pub operation: String,
    /// The client's address, when the access came over the network.
    pub peer: Option<String>,
    /// A reason given for the access (break-glass).
    pub reason: Option<String>,
}

impl AuditContext {
    /// The node acting by itself (reminders, the command line, a demo's seeding).
    pub fn system(what: &str) -> AuditContext {
        AuditContext {
            actor: Actor::system(what),
            operation: what.to_string(),
            peer: None,
            reason: None,
        }
    }
}

/// One record touched by an access: its kind, id and the patient it is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Touched {
    pub kind: String,
    pub id: Uuid,
    pub patient: Option<PatientId>,
}

/// Appends one event per record to the chain, inside the caller's transaction.
pub(crate) fn append(
    conn: &Connection,
    site: &str,
    at: DateTime<Utc>,
    who: &AuditContext,
    access: Access,
    records: &[Touched],
) -> std::result::Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    let last: Option<(i64, Vec<u8>)> = conn
        .query_row(
            "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(StoreError::sqlite("read the audit chain's head"))?;
    let (mut seq, mut prev) = match last {
        Some((seq, hash)) => (
            u64::try_from(seq).map_err(|_| StoreError::Corrupt("audit seq".into()))?,
            Hash::try_from(hash.as_slice())
                .map_err(|_| StoreError::Corrupt("audit hash".into()))?,
        ),
        None => (0, healsync_domain::audit::GENESIS),
    };
    // The store keeps whole microseconds; the hash covers what is kept.
    let at = DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at);
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO audit_log (seq, at, user_id, username, role, site, access, kind,
                                    record_id, patient_id, operation, peer, reason, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )
        .map_err(StoreError::sqlite("prepare the audit log"))?;
    for r in records {
        seq += 1;
        let event = AuditEvent {
            seq,
            at,
            actor: who.actor.clone(),
            site: site.to_string(),
            access,
            kind: r.kind.clone(),
            record_id: r.id,
            patient_id: r.patient,
            operation: who.operation.clone(),
            peer: who.peer.clone(),
            reason: who.reason.clone(),
        };
        prev = link(&prev, &event);
        insert
            .execute(params![
                seq as i64,
                at.timestamp_micros(),
                event.actor.user_id.map(|u| u.to_string()),
                event.actor.username,
                event.actor.role.map(Role::as_str),
                event.site,
                access.as_str(),
                event.kind,
                event.record_id.to_string(),
                event.patient_id.map(|p| p.to_string()),
                event.operation,
                event.peer,
                event.reason,
                prev.as_slice(),
            ])
            .map_err(StoreError::sqlite("append to the audit log"))?;
    }
    Ok(())
}

/// A stored row as the event it claims to be; `None` when a value is not one the store
/// writes (an edited row).
fn event_row(r: &Row<'_>) -> rusqlite::Result<(i64, Option<AuditEvent>, Vec<u8>)> {
    let seq: i64 = r.get("seq")?;
    let hash: Vec<u8> = r.get("hash")?;
    let parsed = (|| {
        let user_id = match r.get::<_, Option<String>>("user_id").ok()? {
            Some(u) => Some(UserId(Uuid::parse_str(&u).ok()?)),
            None => None,
        };
        let role = match r.get::<_, Option<String>>("role").ok()? {
            Some(s) => Some(Role::parse(&s).ok()?),
            None => None,
        };
        let patient_id = match r.get::<_, Option<String>>("patient_id").ok()? {
            Some(p) => Some(PatientId(Uuid::parse_str(&p).ok()?)),
            None => None,
        };
        Some(AuditEvent {
            seq: u64::try_from(seq).ok()?,
            at: DateTime::from_timestamp_micros(r.get("at").ok()?)?,
            actor: Actor {
                user_id,
                username: r.get("username").ok()?,
                role,
            },
            site: r.get("site").ok()?,
            access: Access::parse(&r.get::<_, String>("access").ok()?)?,
            kind: r.get("kind").ok()?,
            record_id: Uuid::parse_str(&r.get::<_, String>("record_id").ok()?).ok()?,
            patient_id,
            operation: r.get("operation").ok()?,
            peer: r.get("peer").ok()?,
            reason: r.get("reason").ok()?,
        })
    })();
    Ok((seq, parsed, hash))
}

/// Walks the whole chain in order. `Ok(Err(_))` names the first event that is not as
/// written; `Err` is a failure to read the store at all.
pub fn verify(conn: &Connection) -> Result<std::result::Result<Verified, ChainBreak>> {
    let mut stmt = conn
        .prepare("SELECT * FROM audit_log ORDER BY seq")
        .map_err(StoreError::sqlite("read the audit log"))?;
    let mut rows = stmt
        .query([])
        .map_err(StoreError::sqlite("read the audit log"))?;
    let mut v = Verifier::default();
    while let Some(row) = rows
        .next()
        .map_err(StoreError::sqlite("read the audit log"))?
    {
        let (seq, event, hash) =
            event_row(row).map_err(StoreError::sqlite("read an audit event"))?;
        let position = v.verified().events + 1;
        let (Some(event), Ok(hash)) = (event, Hash::try_from(hash.as_slice())) else {
            // A value the store never writes: the row was edited.
            return Ok(Err(ChainBreak::Hash {
                seq: u64::try_from(seq).unwrap_or(position),
            }));
        };
        if let Err(bad) = v.push(&event, &hash) {
            return Ok(Err(bad));
        }
    }
    Ok(Ok(v.verified()))
}

/// When `user` last opened `patient`'s record by break-glass at or after `since`, and
/// why (the newest such event of the trail).
pub fn break_glass(
    conn: &Connection,
    user: UserId,
    patient: PatientId,
    since: DateTime<Utc>,
) -> Result<Option<(DateTime<Utc>, String)>> {
    let row: Option<(i64, Option<String>)> = conn
        .prepare_cached(
            // `kind` is spelled out so the partial index `audit_break_glass` applies
            // (a test checks it is `healsync_domain::audit::BREAK_GLASS`).
            "SELECT at, reason FROM audit_log
             WHERE patient_id = ?1 AND kind = 'break_glass' AND user_id = ?2
               AND access = 'WRITE' AND at >= ?3
             ORDER BY at DESC LIMIT 1",
        )
        .and_then(|mut s| {
            s.query_row(
                params![
                    patient.to_string(),
                    user.to_string(),
                    since.timestamp_micros()
                ],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
        })
        .map_err(StoreError::sqlite("look up a break-glass"))?;
    Ok(row.and_then(|(at, reason)| Some((DateTime::from_timestamp_micros(at)?, reason?))))
}

/// One event as it travels to the hub: its number, canonical bytes and chain hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shipped {
    pub seq: u64,
    pub canonical: Vec<u8>,
    pub hash: Hash,
}

/// The events after `after`, ascending and numbered on from it, about `max_bytes` of
/// them (at least one if any is left). Stops before a row that no longer reads as an
/// event or leaves a gap (the file was edited): the hub's copy of the chain ends where
/// the node's stopped being trustworthy, and the rest of sync goes on.
pub fn shipment(conn: &Connection, after: u64, max_bytes: usize) -> Result<Vec<Shipped>> {
    let mut stmt = conn
        .prepare_cached("SELECT * FROM audit_log WHERE seq > ?1 ORDER BY seq")
        .map_err(StoreError::sqlite("read the audit log"))?;
    let mut rows = stmt
        .query([i64::try_from(after).unwrap_or(i64::MAX)])
        .map_err(StoreError::sqlite("read the audit log"))?;
    let (mut out, mut size) = (Vec::new(), 0);
    while let Some(row) = rows
        .next()
        .map_err(StoreError::sqlite("read the audit log"))?
    {
        let (seq, event, hash) =
            event_row(row).map_err(StoreError::sqlite("read an audit event"))?;
        let expected = after + out.len() as u64 + 1;
        let (Some(event), Ok(hash)) = (event, Hash::try_from(hash.as_slice())) else {
            tracing::error!(
                seq,
                "audit event unreadable: not shipped (run `audit verify`)"
            );
            break;
        };
        if event.seq != expected {
            tracing::error!(
                seq,
                expected,
                "audit trail has a gap: not shipped (run `audit verify`)"
            );
            break;
        }
        let canonical = event.canonical();
        if !out.is_empty() && size + canonical.len() > max_bytes {
            break;
        }
        size += canonical.len();
        out.push(Shipped {
            seq: event.seq,
            canonical,
            hash,
        });
    }
    Ok(out)
}

/// What an audit query asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub patient: Option<PatientId>,
    pub username: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Only events with a reason (break-glass).
    pub with_reason: bool,
    pub limit: u32,
    pub offset: u32,
}

/// Events under `f`, newest first. Rows that no longer read as events (edited) are
/// left out: `verify` is where they are reported.
pub fn events(conn: &Connection, f: &AuditFilter) -> Result<Vec<AuditEvent>> {
    let mut cond = vec!["1 = 1"];
    let mut args: Vec<Box<dyn ToSql>> = Vec::new();
    if let Some(p) = f.patient {
        cond.push("patient_id = ?");
        args.push(Box::new(p.to_string()));
    }
    if let Some(u) = &f.username {
        cond.push("username = ?");
        args.push(Box::new(u.clone()));
    }
    if let Some(t) = f.from {
        cond.push("at >= ?");
        args.push(Box::new(t.timestamp_micros()));
    }
    if let Some(t) = f.to {
        cond.push("at < ?");
        args.push(Box::new(t.timestamp_micros()));
    }
    if f.with_reason {
        cond.push("reason IS NOT NULL");
    }
    args.push(Box::new(i64::from(f.limit)));
    args.push(Box::new(i64::from(f.offset)));
    // Built from this function's constants; every value is bound.
    let sql = format!(
        "SELECT * FROM audit_log WHERE {} ORDER BY seq DESC LIMIT ? OFFSET ?",
        cond.join(" AND ")
    );
    let rows = crate::queries::boxed(conn, "list audit events", &sql, &args, event_row)?;
    Ok(rows.into_iter().filter_map(|(_, event, _)| event).collect())
}

/// The reads one request (or one subscription event) made, by the operation that made
/// them: [`record_reads`] appends them together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reads {
    pub who: AuditContext,
    pub access: Access,
    pub records: Vec<Touched>,
}

/// Appends the events of many requests' reads in one transaction (group commit: the
/// reads of concurrent requests share it). The commit is made with
/// `synchronous=NORMAL`: it survives the process dying at once, and reaches the disk
/// with the next write's or checkpoint's sync (a read leaves no data of its own to
/// lose, so the cost of a sync per read buys little); the writer's own setting
/// (`FULL`) is restored whatever happens.
pub(crate) fn record_reads(
    conn: &mut Connection,
    site: &str,
    at: DateTime<Utc>,
    batches: &[Reads],
) -> Result<()> {
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(StoreError::sqlite("set synchronous=NORMAL"))?;
    let done = (|| {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::sqlite("begin recording reads"))?;
        for b in batches {
            append(&tx, site, at, &b.who, b.access, &b.records)?;
        }
        tx.commit()
            .map_err(StoreError::sqlite("commit recorded reads"))
    })();
    let restored = conn
        .pragma_update(None, "synchronous", "FULL")
        .map_err(StoreError::sqlite("set synchronous=FULL"));
    done.and(restored)
}
