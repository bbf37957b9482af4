//! What changed at the hub, told to every hub replica (for their subscriptions).
//!
//! Hub replicas share nothing but PostgreSQL, and a change may be folded or written by
//! any of them, so the transaction that stores a document or records a collision also
//! announces it with `NOTIFY` on one channel. PostgreSQL delivers a notification only
//! when its transaction commits, to every listening connection, so subscribers never
//! hear of a rolled-back write and every replica hears of every committed one. A
//! notification carries ids only (its payload is capped at 8,000 bytes); a listening
//! replica reads the current rows it names, and only when it has subscribers.
//!
//! Notifications are transient: while a replica's listening connection is down it hears
//! nothing, and [`EventFeed::next`] says so with [`Announcement::Lost`]. Subscriptions
//! are live views, not a log: nothing is stored through them, and every record stays
//! readable by query.

use sqlx::postgres::PgListener;
use sqlx::{Postgres, Row, Transaction};
use uuid::Uuid;

use crate::error::db;
use crate::rows::{CrossSiteConflict, DocumentChanged};
use crate::{HubStore, HubStoreError};

/// The `NOTIFY` channel of the hub's events.
pub const CHANNEL: &str = "healsync_hub_events";

/// Ids per notification: 33 bytes each, well under PostgreSQL's 8,000-byte payload.
const IDS_PER_NOTIFICATION: usize = 200;

/// One notification, as a listener reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Announcement {
    /// These documents changed (stored by a fold or written at the hub).
    Documents(Vec<Uuid>),
    /// These cross-site collisions were found.
    Collisions(Vec<Uuid>),
    /// The listening connection was lost and has been re-established: whatever was
    /// announced meanwhile was not heard.
    Lost,
}

const DOCUMENTS: char = 'd';
const COLLISIONS: char = 'c';

/// The payloads announcing `ids` under `tag` (`d` documents, `c` collisions): the tag,
/// then the ids in simple hex separated by spaces.
fn payloads(tag: char, ids: &[Uuid]) -> Vec<String> {
    ids.chunks(IDS_PER_NOTIFICATION)
        .map(|chunk| {
            let mut p = String::with_capacity(1 + chunk.len() * 33);
            p.push(tag);
            for id in chunk {
                p.push(' ');
                p.push_str(&id.simple().to_string());
            }
            p
        })
        .collect()
}

/// Reads a payload written by [`payloads`]; `None` for anything else.
pub fn parse(payload: &str) -> Option<Announcement> {
    let mut parts = payload.split(' ');
    let tag = parts.next()?;
    let ids = parts
        .map(|p| Uuid::try_parse(p).ok())
        .collect::<Option<Vec<Uuid>>>()?;
    match tag {
        "d" => Some(Announcement::Documents(ids)),
        "c" => Some(Announcement::Collisions(ids)),
        _ => None,
    }
}

async fn announce(
    tx: &mut Transaction<'_, Postgres>,
    tag: char,
    ids: &[Uuid],
) -> Result<(), HubStoreError> {
    for payload in payloads(tag, ids) {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(payload)
            .execute(&mut **tx)
            .await
            .map_err(db("announce a change"))?;
    }
    Ok(())
}

/// Announces, when `tx` commits, that these documents changed.
pub(crate) async fn documents_changed(
    tx: &mut Transaction<'_, Postgres>,
    ids: &[Uuid],
) -> Result<(), HubStoreError> {
    announce(tx, DOCUMENTS, ids).await
}

/// Announces, when `tx` commits, that these collisions were found.
pub(crate) async fn collisions_found(
    tx: &mut Transaction<'_, Postgres>,
    ids: &[Uuid],
) -> Result<(), HubStoreError> {
    announce(tx, COLLISIONS, ids).await
}

/// A replica's subscription to the hub's announcements (one dedicated connection).
pub struct EventFeed {
    listener: PgListener,
}

impl EventFeed {
    /// The next announcement. Notifications that do not parse are skipped with a
    /// warning; an error means the connection could not be re-established.
    pub async fn next(&mut self) -> Result<Announcement, HubStoreError> {
        loop {
            let Some(n) = self
                .listener
                .try_recv()
                .await
                .map_err(db("listen for the hub's events"))?
            else {
                return Ok(Announcement::Lost);
            };
            match parse(n.payload()) {
                Some(a) => return Ok(a),
                None => tracing::warn!(payload = n.payload(), "an event that does not parse"),
            }
        }
    }
}

impl HubStore {
    /// Starts listening for the announcements of every replica (this one included).
    /// The feed holds one of the pool's connections for as long as it lives.
    pub async fn listen(&self) -> Result<EventFeed, HubStoreError> {
        let mut listener = PgListener::connect_with(&self.pool)
            .await
            .map_err(db("connect to listen for the hub's events"))?;
        listener
            .listen(CHANNEL)
            .await
            .map_err(db("listen for the hub's events"))?;
        Ok(EventFeed { listener })
    }

    /// The current state of the announced documents (those still present), in the
    /// order asked.
    pub async fn changed_documents(
        &self,
        ids: &[Uuid],
    ) -> Result<Vec<DocumentChanged>, HubStoreError> {
        let rows = sqlx::query(
            "SELECT d.doc_id, d.kind, d.site, d.heads, d.record,
                    (SELECT count(*) FROM field_conflicts f WHERE f.doc_id = d.doc_id) AS conflicts
             FROM UNNEST($1::uuid[]) WITH ORDINALITY AS a(id, n)
             JOIN documents d ON d.doc_id = a.id ORDER BY a.n",
        )
        .bind(ids)
        .fetch_all(&self.pool)
        .await
        .map_err(db("read changed documents"))?;
        rows.into_iter()
            .map(|r| {
                let conflicts: i64 = r.try_get("conflicts")?;
                Ok(DocumentChanged {
                    doc_id: r.try_get("doc_id")?,
                    kind: r.try_get("kind")?,
                    site: r.try_get("site")?,
                    heads: r.try_get("heads")?,
                    record: r.try_get("record")?,
                    conflicts: usize::try_from(conflicts).unwrap_or(0),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(db("read changed documents"))
    }

    /// The announced collisions, in the order asked.
    pub async fn collisions(&self, ids: &[Uuid]) -> Result<Vec<CrossSiteConflict>, HubStoreError> {
        let rows = sqlx::query(
            "SELECT x.* FROM UNNEST($1::uuid[]) WITH ORDINALITY AS a(id, n)
             JOIN cross_site_conflicts x ON x.id = a.id ORDER BY a.n",
        )
        .bind(ids)
        .fetch_all(&self.pool)
        .await
        .map_err(db("read collisions"))?;
        rows.into_iter()
            .map(crate::queries::cross_site_conflict)
            .collect::<Result<_, sqlx::Error>>()
            .map_err(db("read collisions"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_fit_a_notification() {
        let ids: Vec<Uuid> = (0..450).map(|_| Uuid::now_v7()).collect();
        let out = payloads(DOCUMENTS, &ids);
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|p| p.len() < 8000), "under the payload cap");
        let back: Vec<Uuid> = out
            .iter()
            .flat_map(|p| match parse(p) {
                Some(Announcement::Documents(ids)) => ids,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(back, ids);
        let one = payloads(COLLISIONS, &ids[..1]);
        assert_eq!(parse(&one[0]), Some(Announcement::Collisions(vec![ids[0]])));
        assert!(payloads(DOCUMENTS, &[]).is_empty());
    }

    #[test]
    fn other_payloads_are_not_events() {
        for p in [
            "",
            "x",
            "d nonsense",
            "q 0190c0de00007000800000000000000a",
            "d  ",
        ] {
            assert_eq!(parse(p), None, "{p:?}");
        }
        assert_eq!(parse("d"), Some(Announcement::Documents(vec![])));
    }
}
