//! The nodes' audit trails at the hub: stored as each node chained them (idempotent by
//! node and number, with the time they arrived), read by central admins, and walked
//! again by `healsync-hub audit verify` with the same rule as at the node
//! (`healsync_domain::audit::Verifier`), so an event edited, deleted, inserted or
//! reordered in PostgreSQL, or a node's trail rewritten after it was shipped, is found
//! and named.

use chrono::{DateTime, Utc};
use healsync_domain::audit::{AuditEvent, ChainBreak, Hash, Verified, Verifier};
use healsync_sync_protocol::AuditRecord;
use sqlx::Row;
use uuid::Uuid;

use crate::error::{db, to_i64, to_u64};
use crate::{HubStore, HubStoreError};

/// Events read per query while walking a chain.
const PAGE: i64 = 10_000;

/// One node's trail as `verify_audit` found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeTrail {
    pub node_id: Uuid,
    pub site: String,
    pub result: Result<Verified, ChainBreak>,
}

impl HubStore {
    /// The highest audit event of `node_id` the hub holds (0: none).
    pub async fn audit_acked(&self, node_id: Uuid) -> Result<u64, HubStoreError> {
        let max: Option<i64> =
            sqlx::query_scalar("SELECT max(seq) FROM audit_events WHERE node_id = $1")
                .bind(node_id)
                .fetch_one(&self.pool)
                .await
                .map_err(db("read the audit position"))?;
        Ok(max.map_or(0, to_u64))
    }

    /// Stores a node's audit events in one transaction; an event already held (same
    /// node and number) is left as it was. A batch holding bytes that are not one
    /// event, or an event of another site than the node's (a node speaks for its own
    /// site only: admins of a site read its events by that field), is refused whole:
    /// nothing of it is stored.
    pub async fn commit_audit(
        &self,
        node_id: Uuid,
        events: &[AuditRecord],
    ) -> Result<(), HubStoreError> {
        let site: Option<String> = sqlx::query_scalar("SELECT site FROM nodes WHERE id = $1")
            .bind(node_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db("look up a node"))?;
        let site = site.ok_or(HubStoreError::UnknownNode(node_id))?;
        let mut decoded = Vec::with_capacity(events.len());
        for r in events {
            let e = AuditEvent::from_canonical(&r.event)
                .filter(|e| e.seq == r.seq)
                .ok_or(HubStoreError::Malformed(
                    "an audit event that does not decode",
                ))?;
            if e.site != site {
                return Err(HubStoreError::Malformed("an audit event of another site"));
            }
            decoded.push(e);
        }
        let seqs: Vec<i64> = events.iter().map(|r| to_i64(r.seq)).collect();
        let bytes: Vec<Vec<u8>> = events.iter().map(|r| r.event.clone()).collect();
        let hashes: Vec<Vec<u8>> = events.iter().map(|r| r.hash.to_vec()).collect();
        let at: Vec<chrono::DateTime<chrono::Utc>> = decoded.iter().map(|e| e.at).collect();
        let site: Vec<String> = decoded.iter().map(|e| e.site.clone()).collect();
        let username: Vec<String> = decoded.iter().map(|e| e.actor.username.clone()).collect();
        let access: Vec<String> = decoded.iter().map(|e| e.access.as_str().into()).collect();
        let kind: Vec<String> = decoded.iter().map(|e| e.kind.clone()).collect();
        let record: Vec<Uuid> = decoded.iter().map(|e| e.record_id).collect();
        let patient: Vec<Option<Uuid>> =
            decoded.iter().map(|e| e.patient_id.map(|p| p.0)).collect();
        let operation: Vec<String> = decoded.iter().map(|e| e.operation.clone()).collect();
        let peer: Vec<Option<String>> = decoded.iter().map(|e| e.peer.clone()).collect();
        let reason: Vec<Option<String>> = decoded.iter().map(|e| e.reason.clone()).collect();
        sqlx::query(
            "INSERT INTO audit_events (node_id, seq, event, hash, at, site, username, access,
                                       kind, record_id, patient_id, operation, peer, reason)
             SELECT $1, t.* FROM UNNEST($2::bigint[], $3::bytea[], $4::bytea[],
                                        $5::timestamptz[], $6::text[], $7::text[], $8::text[],
                                        $9::text[], $10::uuid[], $11::uuid[], $12::text[],
                                        $13::text[], $14::text[]) AS t
             ON CONFLICT (node_id, seq) DO NOTHING",
        )
        .bind(node_id)
        .bind(&seqs)
        .bind(&bytes)
        .bind(&hashes)
        .bind(&at)
        .bind(&site)
        .bind(&username)
        .bind(&access)
        .bind(&kind)
        .bind(&record)
        .bind(&patient)
        .bind(&operation)
        .bind(&peer)
        .bind(&reason)
        .execute(&self.pool)
        .await
        .map_err(db("store audit events"))?;
        Ok(())
    }

    /// Walks every node's trail as stored here, in order, from its first event: the
    /// chain as the node wrote it, or its first event that is not.
    pub async fn verify_audit(&self) -> Result<Vec<NodeTrail>, HubStoreError> {
        let nodes = sqlx::query("SELECT id, site FROM nodes ORDER BY site, id")
            .fetch_all(&self.pool)
            .await
            .map_err(db("list nodes"))?;
        let mut out = Vec::with_capacity(nodes.len());
        for n in nodes {
            let node_id: Uuid = n.try_get("id").map_err(db("read a node"))?;
            let site: String = n.try_get("site").map_err(db("read a node"))?;
            let result = self.walk(node_id).await?;
            out.push(NodeTrail {
                node_id,
                site,
                result,
            });
        }
        Ok(out)
    }

    async fn walk(&self, node_id: Uuid) -> Result<Result<Verified, ChainBreak>, HubStoreError> {
        let mut v = Verifier::default();
        let mut after = i64::MIN;
        loop {
            let rows = sqlx::query(
                "SELECT * FROM audit_events WHERE node_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            )
            .bind(node_id)
            .bind(after)
            .bind(PAGE)
            .fetch_all(&self.pool)
            .await
            .map_err(db("read audit events"))?;
            let Some(last) = rows.last() else {
                return Ok(Ok(v.verified()));
            };
            after = last.try_get("seq").map_err(db("read an audit event"))?;
            for r in rows {
                let seq: i64 = r.try_get("seq").map_err(db("read an audit event"))?;
                let bytes: Vec<u8> = r.try_get("event").map_err(db("read an audit event"))?;
                let hash: Vec<u8> = r.try_get("hash").map_err(db("read an audit event"))?;
                let (Some(event), Ok(hash)) = (
                    AuditEvent::from_canonical(&bytes),
                    Hash::try_from(hash.as_slice()),
                ) else {
                    // Bytes no node writes: the row was edited.
                    return Ok(Err(ChainBreak::Hash { seq: to_u64(seq) }));
                };
                // The columns admins query by must say what the event says.
                if !columns_match(&r, &event).map_err(db("read an audit event"))? {
                    return Ok(Err(ChainBreak::Hash { seq: to_u64(seq) }));
                }
                if event.seq != to_u64(seq) {
                    // The row's number was changed: it stands where it does not belong.
                    return Ok(Err(ChainBreak::Sequence {
                        position: v.verified().events + 1,
                        found: to_u64(seq),
                    }));
                }
                if let Err(bad) = v.push(&event, &hash) {
                    return Ok(Err(bad));
                }
            }
        }
    }
}

/// Whether a row's decoded columns hold what its event's bytes say.
fn columns_match(r: &sqlx::postgres::PgRow, e: &AuditEvent) -> Result<bool, sqlx::Error> {
    let at: chrono::DateTime<chrono::Utc> = r.try_get("at")?;
    let patient: Option<Uuid> = r.try_get("patient_id")?;
    Ok(at == e.at
        && r.try_get::<String, _>("site")? == e.site
        && r.try_get::<String, _>("username")? == e.actor.username
        && r.try_get::<String, _>("access")? == e.access.as_str()
        && r.try_get::<String, _>("kind")? == e.kind
        && r.try_get::<Uuid, _>("record_id")? == e.record_id
        && patient == e.patient_id.map(|p| p.0)
        && r.try_get::<String, _>("operation")? == e.operation
        && r.try_get::<Option<String>, _>("peer")? == e.peer
        && r.try_get::<Option<String>, _>("reason")? == e.reason)
}

/// What a central admin asks of the trails the hub holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// The sites an admin is limited to (`None`: every site).
    pub visible_to: Option<Vec<String>>,
    pub site: Option<String>,
    pub patient: Option<Uuid>,
    pub username: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Only events with a reason given (break-glass).
    pub with_reason: bool,
    pub limit: i64,
    pub offset: i64,
}

/// An event as the hub holds it: which node recorded it and when it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldEvent {
    pub node_id: Uuid,
    pub received_at: DateTime<Utc>,
    pub event: AuditEvent,
}

impl HubStore {
    /// Events under `q`, newest first (by the node's clock). Rows whose bytes no longer
    /// read as an event are left out: `audit verify` is where they are reported.
    pub async fn audit_events(&self, q: &AuditQuery) -> Result<Vec<HeldEvent>, HubStoreError> {
        let mut b = sqlx::QueryBuilder::<sqlx::Postgres>::new(
            "SELECT node_id, received_at, event FROM audit_events WHERE TRUE",
        );
        if let Some(sites) = &q.visible_to {
            b.push(" AND site = ANY(")
                .push_bind(sites.clone())
                .push(")");
        }
        if let Some(site) = &q.site {
            b.push(" AND site = ").push_bind(site.clone());
        }
        if let Some(p) = q.patient {
            b.push(" AND patient_id = ").push_bind(p);
        }
        if let Some(u) = &q.username {
            b.push(" AND username = ").push_bind(u.clone());
        }
        if let Some(t) = q.from {
            b.push(" AND at >= ").push_bind(t);
        }
        if let Some(t) = q.to {
            b.push(" AND at < ").push_bind(t);
        }
        if q.with_reason {
            b.push(" AND reason IS NOT NULL");
        }
        b.push(" ORDER BY at DESC, node_id, seq DESC LIMIT ")
            .push_bind(q.limit)
            .push(" OFFSET ")
            .push_bind(q.offset);
        let rows = b
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(db("list audit events"))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let bytes: Vec<u8> = r.try_get("event").map_err(db("read an audit event"))?;
            if let Some(event) = AuditEvent::from_canonical(&bytes) {
                out.push(HeldEvent {
                    node_id: r.try_get("node_id").map_err(db("read an audit event"))?,
                    received_at: r
                        .try_get("received_at")
                        .map_err(db("read an audit event"))?,
                    event,
                });
            }
        }
        Ok(out)
    }
}
