//! Ingest: whether a node may sync, and storing its uploads in the hub's log. Ingest is
//! idempotent (a change is stored once per hash, inside the same transaction as the
//! node's new upload position) and bulk (one `UNNEST` insert per batch); cursors are
//! allocated by updating the single `log_head` row, which serialises appends: cursor
//! order is commit order. What a refusal says on the wire is the sync adapter's
//! (`hub/sync`); here a node is admitted or not, and why.

use healsync_sync_protocol::{Change, Rejection};
use sqlx::{Postgres, Row, Transaction};
use uuid::Uuid;

use crate::error::{db, to_i64, to_u64};
use crate::{
    GRANTED_KINDS, HubStore, HubStoreError, OWNER_EDITED_KINDS, SHARED_KINDS, scope, writes,
};

/// Whether a node may sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// It may: the hub's committed upload position for it, and the refusals past
    /// the position the node reported (those it has not recorded).
    Admitted {
        upload_acked: u64,
        rejected: Vec<Rejection>,
        /// The node's last audit event the hub holds.
        audit_acked: u64,
    },
    /// No such node is enrolled.
    Unknown,
    Revoked,
    /// It is enrolled for another site than it says.
    WrongSite {
        enrolled: String,
    },
}

/// Why `site` may not change the existing document `doc` owned as `owner` (`granted`:
/// the document was shared with the site), or `None` when it may.
pub(crate) fn may_not_write(
    doc: Uuid,
    owner: &writes::Owner,
    site: &str,
    granted: bool,
) -> Option<String> {
    let kind = owner.kind.as_str();
    if owner.site == site {
        None
    } else if !owner.shared {
        Some(format!("document {doc} belongs to site {}", owner.site))
    } else if OWNER_EDITED_KINDS.contains(&kind) {
        Some(format!(
            "account {doc} belongs to site {}: it is changed there or at the hub",
            owner.site
        ))
    } else if GRANTED_KINDS.contains(&kind) && !granted {
        Some(format!(
            "document {doc} belongs to site {} and was not shared with site {site}",
            owner.site
        ))
    } else {
        None
    }
}

/// Appends changes to the hub's log with the next cursors (allocated by updating the
/// single `log_head` row, which serialises appends: cursor order is commit order).
pub(crate) async fn append_changes(
    tx: &mut Transaction<'_, Postgres>,
    origin: Uuid,
    fresh: &[&Change],
) -> Result<(), HubStoreError> {
    if fresh.is_empty() {
        return Ok(());
    }
    let n = i64::try_from(fresh.len()).unwrap_or(i64::MAX);
    let last: i64 = sqlx::query_scalar(
        "UPDATE log_head SET last_cursor = last_cursor + $1 RETURNING last_cursor",
    )
    .bind(n)
    .fetch_one(&mut **tx)
    .await
    .map_err(db("allocate cursors"))?;
    let first = last - n + 1;
    let cursors: Vec<i64> = (first..=last).collect();
    let hashes: Vec<Vec<u8>> = fresh.iter().map(|c| c.hash.to_vec()).collect();
    let docs: Vec<Uuid> = fresh.iter().map(|c| Uuid::from_bytes(c.doc_id)).collect();
    let kinds: Vec<String> = fresh.iter().map(|c| c.kind.clone()).collect();
    let bytes: Vec<Vec<u8>> = fresh.iter().map(|c| c.bytes.clone()).collect();
    sqlx::query(
        "INSERT INTO changes (cursor, hash, doc_id, kind, origin_node, bytes)
         SELECT c, h, d, k, $5, b FROM UNNEST($1::bigint[], $2::bytea[], $3::uuid[], $4::text[], $6::bytea[])
             AS t(c, h, d, k, b)",
    )
    .bind(&cursors)
    .bind(&hashes)
    .bind(&docs)
    .bind(&kinds)
    .bind(origin)
    .bind(&bytes)
    .execute(&mut **tx)
    .await
    .map_err(db("store changes"))?;
    Ok(())
}

impl HubStore {
    /// Decides whether a node may sync: the hub's committed upload position for it and
    /// the refusals past `node_upload_acked` (those the node has not recorded), or why not.
    pub async fn authenticate(
        &self,
        node_id: Uuid,
        site: &str,
        node_upload_acked: u64,
    ) -> Result<Admission, HubStoreError> {
        let row = sqlx::query(
            "SELECT site, revoked_at IS NOT NULL AS revoked, upload_acked FROM nodes WHERE id = $1",
        )
        .bind(node_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db("look up a node"))?;
        let Some(row) = row else {
            return Ok(Admission::Unknown);
        };
        let (own_site, revoked, acked): (String, bool, i64) = (
            row.try_get("site").map_err(db("read a node"))?,
            row.try_get("revoked").map_err(db("read a node"))?,
            row.try_get("upload_acked").map_err(db("read a node"))?,
        );
        if revoked {
            return Ok(Admission::Revoked);
        }
        if own_site != site {
            return Ok(Admission::WrongSite { enrolled: own_site });
        }
        let rejected = sqlx::query(
            "SELECT seq, doc_id, reason FROM rejections WHERE node_id = $1 AND seq > $2 ORDER BY seq",
        )
        .bind(node_id)
        .bind(to_i64(node_upload_acked))
        .fetch_all(&self.pool)
        .await
        .map_err(db("read refusals"))?
        .into_iter()
        .map(|r| {
            let doc: Uuid = r.try_get("doc_id")?;
            Ok(Rejection { seq: to_u64(r.try_get("seq")?), doc_id: *doc.as_bytes(), reason: r.try_get("reason")? })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(db("read refusals"))?;
        Ok(Admission::Admitted {
            upload_acked: to_u64(acked),
            rejected,
            audit_acked: self.audit_acked(node_id).await?,
        })
    }

    /// Stores an upload batch and the node's new upload position in one transaction:
    /// changes already present (same hash) are skipped; changes that do not load, do
    /// not match their hash or are labelled with another kind than their document's
    /// (a new document's first change must set its kind), and changes to documents
    /// the node's site may not write, are refused and recorded. Returns the refusals.
    pub async fn commit_upload(
        &self,
        node_id: Uuid,
        changes: &[Change],
        through: u64,
    ) -> Result<Vec<Rejection>, HubStoreError> {
        let mut tx = self.pool.begin().await.map_err(db("begin an upload"))?;
        let row = sqlx::query(
            "SELECT site, revoked_at IS NOT NULL AS revoked FROM nodes WHERE id = $1 FOR UPDATE",
        )
        .bind(node_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db("lock a node"))?
        .ok_or(HubStoreError::UnknownNode(node_id))?;
        let site: String = row.try_get("site").map_err(db("read a node"))?;
        if row
            .try_get::<bool, _>("revoked")
            .map_err(db("read a node"))?
        {
            return Err(HubStoreError::Revoked(node_id));
        }

        let doc_ids: Vec<Uuid> = changes.iter().map(|c| Uuid::from_bytes(c.doc_id)).collect();
        let owners = writes::owners(&mut tx, &doc_ids).await?;

        // Another site's document may be edited only if it is shared and this site
        // holds it (every site holds the shared kinds that are not granted one by one).
        let foreign: Vec<Uuid> = owners
            .iter()
            .filter(|(_, o)| o.site != site && GRANTED_KINDS.contains(&o.kind.as_str()))
            .map(|(id, _)| *id)
            .collect();
        let granted = scope::granted(&mut tx, &site, &foreign).await?;
        let mut rejected = Vec::new();
        let mut accepted: Vec<&Change> = Vec::with_capacity(changes.len());
        let mut new_owners: std::collections::BTreeMap<Uuid, &str> =
            std::collections::BTreeMap::new();
        for c in changes {
            let doc = Uuid::from_bytes(c.doc_id);
            // The kind a change is labelled with decides who receives its document: it
            // must be the document's kind, set by the change that creates it.
            let known = owners
                .get(&doc)
                .map(|o| o.kind.as_str())
                .or_else(|| new_owners.get(&doc).copied());
            let creates = known.is_none().then_some(c.kind.as_str());
            let refusal =
                healsync_hub_projection::check_change(&c.bytes, &c.hash, doc, known, creates)
                    .err()
                    .or_else(|| {
                        known.filter(|k| *k != c.kind).map(|k| {
                            format!(
                                "the change is labelled {} but document {doc} is a {k}",
                                c.kind
                            )
                        })
                    })
                    .or_else(|| {
                        owners
                            .get(&doc)
                            .and_then(|o| may_not_write(doc, o, &site, granted.contains(&doc)))
                    });
            match refusal {
                Some(reason) => rejected.push(Rejection {
                    seq: c.seq,
                    doc_id: c.doc_id,
                    reason,
                }),
                None => {
                    if !owners.contains_key(&doc) {
                        new_owners.entry(doc).or_insert(c.kind.as_str());
                    }
                    accepted.push(c);
                }
            }
        }

        if !new_owners.is_empty() {
            let ids: Vec<Uuid> = new_owners.keys().copied().collect();
            let kinds: Vec<String> = new_owners.values().map(|k| k.to_string()).collect();
            let shared: Vec<bool> = new_owners
                .values()
                .map(|k| SHARED_KINDS.contains(k))
                .collect();
            sqlx::query(
                "INSERT INTO document_owners (doc_id, kind, site, shared)
                 SELECT d, k, $3, s FROM UNNEST($1::uuid[], $2::text[], $4::bool[]) AS t(d, k, s)
                 ON CONFLICT (doc_id) DO NOTHING",
            )
            .bind(&ids)
            .bind(&kinds)
            .bind(&site)
            .bind(&shared)
            .execute(&mut *tx)
            .await
            .map_err(db("record document owners"))?;
        }

        // Leave out what is already stored (a batch resent after a cut) and repeats
        // within the batch.
        let hashes: Vec<Vec<u8>> = accepted.iter().map(|c| c.hash.to_vec()).collect();
        let present: std::collections::HashSet<Vec<u8>> =
            sqlx::query_scalar::<_, Vec<u8>>("SELECT hash FROM changes WHERE hash = ANY($1)")
                .bind(&hashes)
                .fetch_all(&mut *tx)
                .await
                .map_err(db("find stored changes"))?
                .into_iter()
                .collect();
        let mut seen = std::collections::HashSet::new();
        let fresh: Vec<&Change> = accepted
            .into_iter()
            .filter(|c| !present.contains(c.hash.as_slice()) && seen.insert(c.hash))
            .collect();

        append_changes(&mut tx, node_id, &fresh).await?;

        if !rejected.is_empty() {
            let seqs: Vec<i64> = rejected.iter().map(|r| to_i64(r.seq)).collect();
            let docs: Vec<Uuid> = rejected
                .iter()
                .map(|r| Uuid::from_bytes(r.doc_id))
                .collect();
            let reasons: Vec<String> = rejected.iter().map(|r| r.reason.clone()).collect();
            sqlx::query(
                "INSERT INTO rejections (node_id, seq, doc_id, reason)
                 SELECT $1, s, d, r FROM UNNEST($2::bigint[], $3::uuid[], $4::text[]) AS t(s, d, r)
                 ON CONFLICT DO NOTHING",
            )
            .bind(node_id)
            .bind(&seqs)
            .bind(&docs)
            .bind(&reasons)
            .execute(&mut *tx)
            .await
            .map_err(db("record refusals"))?;
        }

        sqlx::query("UPDATE nodes SET upload_acked = GREATEST(upload_acked, $2), last_sync_at = now() WHERE id = $1")
            .bind(node_id)
            .bind(to_i64(through))
            .execute(&mut *tx)
            .await
            .map_err(db("advance the upload position"))?;
        tx.commit().await.map_err(db("commit an upload"))?;
        Ok(rejected)
    }
}
