//! Row types and helpers every module of the store shares: what the hub announces
//! (changed documents, cross-site collisions), the owner of hub-only documents, and
//! the `hub_meta` row lock that serialises the fold and the hub's own writes. A leaf:
//! it imports no other module of the store, so none of them import each other through
//! it.

use automerge::ActorId;
use chrono::{DateTime, Utc};
use healsync_hub_projection::Merged;
use sqlx::{Postgres, Row, Transaction};
use uuid::Uuid;

use crate::error::{HubStoreError, db};

/// `origin_node` of the changes written at the hub.
pub const HUB_ORIGIN: Uuid = Uuid::nil();

/// The owner of documents that stay at the hub (central admins' accounts): no site has
/// this code (site codes are letters and digits), so no node receives them.
pub const HUB_ONLY: &str = "*hub";

/// A document the hub changed, as subscriptions report it (see `events`).
#[derive(Debug, Clone)]
pub struct DocumentChanged {
    pub doc_id: Uuid,
    pub kind: String,
    pub site: String,
    /// The document's heads after the change.
    pub heads: String,
    pub record: serde_json::Value,
    pub conflicts: usize,
}

/// A cross-site collision the hub found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrossSiteConflict {
    pub id: Uuid,
    pub kind: String,
    pub first_appointment: Uuid,
    pub second_appointment: Uuid,
    pub first_site: String,
    pub second_site: String,
    pub detected_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
}

/// Locks the `hub_meta` row (the fold's cursor and the hub's actor) for this
/// transaction: the fold's steps, backfills and the hub's own writes take it, so
/// projections are never computed from facts another transaction is changing.
pub(crate) async fn lock_meta(
    tx: &mut Transaction<'_, Postgres>,
) -> Result<(i64, ActorId), HubStoreError> {
    let row = sqlx::query("SELECT projected_cursor, actor FROM hub_meta FOR UPDATE")
        .fetch_one(&mut **tx)
        .await
        .map_err(db("lock the hub's projection state"))?;
    let cursor: i64 = row
        .try_get("projected_cursor")
        .map_err(db("read hub_meta"))?;
    let actor: Uuid = row.try_get("actor").map_err(db("read hub_meta"))?;
    Ok((cursor, ActorId::from(actor.as_bytes().as_slice())))
}

pub(crate) fn changed(id: Uuid, site: &str, m: &Merged) -> DocumentChanged {
    DocumentChanged {
        doc_id: id,
        kind: m.kind.clone(),
        site: site.to_string(),
        heads: m.heads.clone(),
        record: m.record.clone(),
        conflicts: m.conflicts.len(),
    }
}
