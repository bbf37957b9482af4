//! The hub's store: the only crate that knows PostgreSQL (through sqlx).
//!
//! It keeps the registry of sites and nodes (enrollment tokens, revocation), the
//! ownership of documents, and the hub's change log that nodes sync into. Ingest is
//! idempotent (a change is stored once per hash, inside the same transaction as the
//! node's new upload position) and bulk (one `UNNEST` insert per batch). Cursors are
//! allocated by updating the single `log_head` row, which serialises appends: cursor
//! order is commit order, so a node that has read up to cursor N can never miss a change
//! committed later with a smaller cursor.

mod backfill;
pub mod billing;
mod central;
pub mod events;
mod materialize;
mod queries;
mod scope;
mod writes;

pub use central::NewPatient;
pub use materialize::{CrossSiteConflict, DocumentChanged, MATERIALIZE_STEP, Materialized};
pub use queries::*;
pub use scope::{GRANTED_KINDS, GrantReason};
pub use writes::{HUB_ONLY, HUB_ORIGIN};

use healsync_sync_protocol::{Change, Refusal, RefusalCode, Rejection};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, Row, Transaction};
use uuid::Uuid;

/// Kinds of record any site that holds them may edit (their concurrent edits become
/// conflicts for people, not refusals). Every site holds them, except the
/// [`GRANTED_KINDS`], which a site holds when it owns or was granted them. Everything
/// else belongs to the site that created it.
pub const SHARED_KINDS: &[&str] = &["patient", "doctor", "user"];

/// Shared kinds that every site holds but only the owning site (and the hub) may
/// change: accounts carry password hashes and roles, so a node of one clinic must not
/// be able to change another clinic's logins.
pub const OWNER_EDITED_KINDS: &[&str] = &["user"];

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HubStoreError {
    #[error("could not {action}")]
    Db {
        action: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("could not migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("there is no site {0}")]
    UnknownSite(String),
    #[error("site {0} already exists")]
    SiteExists(String),
    #[error("the enrollment token is unknown or already used")]
    InvalidToken,
    #[error("there is no node {0}")]
    UnknownNode(Uuid),
    #[error("node {0} is revoked")]
    Revoked(Uuid),
    #[error("could not generate a token")]
    Random,
    #[error("user {0} already exists")]
    UserExists(String),
    #[error("{0}")]
    Busy(String),
    #[error("a record could not be written")]
    Record(#[source] healsync_records::RecordError),
    /// The domain's rule refuses the write (a slot already taken, an inactive doctor,
    /// a step the appointment lifecycle does not allow).
    #[error(transparent)]
    Rule(#[from] healsync_domain::DomainError),
    #[error("there is no document {0}")]
    UnknownDocument(Uuid),
    #[error("the database holds a damaged row: {0}")]
    Corrupt(String),
}

fn db(action: &'static str) -> impl FnOnce(sqlx::Error) -> HubStoreError {
    move |source| HubStoreError::Db { action, source }
}

/// A node as admins see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub id: Uuid,
    pub site: String,
    pub revoked: bool,
    pub upload_acked: u64,
    pub last_sync_unix: Option<i64>,
}

#[derive(Clone)]
pub struct HubStore {
    pool: PgPool,
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Why `site` may not change the existing document `doc` owned as `owner` (`granted`:
/// the document was shared with the site), or `None` when it may.
fn may_not_write(doc: Uuid, owner: &writes::Owner, site: &str, granted: bool) -> Option<String> {
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
async fn append_changes(
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

/// Whether `code` is a registered site.
pub(crate) async fn site_exists(
    tx: &mut Transaction<'_, Postgres>,
    code: &str,
) -> Result<bool, HubStoreError> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM sites WHERE code = $1)")
        .bind(code)
        .fetch_one(&mut **tx)
        .await
        .map_err(db("look up a site"))
}

fn sha256(s: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, s.as_bytes())
        .as_ref()
        .to_vec()
}

impl HubStore {
    /// Connects and migrates the database to the newest schema.
    pub async fn connect(url: &str, max_connections: u32) -> Result<HubStore, HubStoreError> {
        // One plain connection first: an unreachable or misconfigured server fails at
        // once with its own reason (the pool would retry for its whole timeout and then
        // report only that it timed out).
        use sqlx::Connection;
        let probe = sqlx::PgConnection::connect(url);
        match tokio::time::timeout(std::time::Duration::from_secs(10), probe).await {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
            }
            Ok(Err(e)) => return Err(db("connect to PostgreSQL")(e)),
            Err(_) => return Err(db("connect to PostgreSQL")(sqlx::Error::PoolTimedOut)),
        }
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(db("connect to PostgreSQL"))?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(HubStore { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn add_site(&self, code: &str, name: &str) -> Result<(), HubStoreError> {
        let done =
            sqlx::query("INSERT INTO sites (code, name) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(code)
                .bind(name)
                .execute(&self.pool)
                .await
                .map_err(db("add a site"))?;
        if done.rows_affected() == 0 {
            return Err(HubStoreError::SiteExists(code.to_string()));
        }
        Ok(())
    }

    /// A new one-time enrollment token for `site` (only its hash is stored).
    pub async fn create_enrollment_token(&self, site: &str) -> Result<String, HubStoreError> {
        use ring::rand::SecureRandom;
        let mut raw = [0u8; 24];
        ring::rand::SystemRandom::new()
            .fill(&mut raw)
            .map_err(|_| HubStoreError::Random)?;
        let token: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let done = sqlx::query(
            "INSERT INTO enrollment_tokens (token_hash, site) SELECT $1, code FROM sites WHERE code = $2",
        )
        .bind(sha256(&token))
        .bind(site)
        .execute(&self.pool)
        .await
        .map_err(db("store an enrollment token"))?;
        if done.rows_affected() == 0 {
            return Err(HubStoreError::UnknownSite(site.to_string()));
        }
        Ok(token)
    }

    /// Spends a token: registers `node_id` for the token's site and returns the site.
    pub async fn enroll(&self, token: &str, node_id: Uuid) -> Result<String, HubStoreError> {
        let mut tx = self.pool.begin().await.map_err(db("begin enrollment"))?;
        let row = sqlx::query(
            "UPDATE enrollment_tokens SET used_at = now(), node_id = $2
             WHERE token_hash = $1 AND used_at IS NULL RETURNING site",
        )
        .bind(sha256(token))
        .bind(node_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db("spend an enrollment token"))?;
        let Some(row) = row else {
            return Err(HubStoreError::InvalidToken);
        };
        let site: String = row.try_get("site").map_err(db("read the token's site"))?;
        sqlx::query("INSERT INTO nodes (id, site) VALUES ($1, $2)")
            .bind(node_id)
            .bind(&site)
            .execute(&mut *tx)
            .await
            .map_err(db("register a node"))?;
        tx.commit().await.map_err(db("commit enrollment"))?;
        Ok(site)
    }

    pub async fn revoke(&self, node_id: Uuid) -> Result<(), HubStoreError> {
        let done =
            sqlx::query("UPDATE nodes SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1")
                .bind(node_id)
                .execute(&self.pool)
                .await
                .map_err(db("revoke a node"))?;
        if done.rows_affected() == 0 {
            return Err(HubStoreError::UnknownNode(node_id));
        }
        Ok(())
    }

    pub async fn nodes(&self) -> Result<Vec<NodeInfo>, HubStoreError> {
        let rows = sqlx::query(
            "SELECT id, site, revoked_at IS NOT NULL AS revoked, upload_acked,
                    extract(epoch FROM last_sync_at)::bigint AS last_sync
             FROM nodes ORDER BY site, enrolled_at",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db("list nodes"))?;
        rows.into_iter()
            .map(|r| {
                Ok(NodeInfo {
                    id: r.try_get("id")?,
                    site: r.try_get("site")?,
                    revoked: r.try_get("revoked")?,
                    upload_acked: to_u64(r.try_get("upload_acked")?),
                    last_sync_unix: r.try_get("last_sync")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(db("read nodes"))
    }

    /// Decides whether a node may sync: the hub's committed upload position for it and
    /// the refusals past `node_upload_acked` (those the node has not recorded), or why not.
    pub async fn authenticate(
        &self,
        node_id: Uuid,
        site: &str,
        node_upload_acked: u64,
    ) -> Result<Result<(u64, Vec<Rejection>), Refusal>, HubStoreError> {
        let row = sqlx::query(
            "SELECT site, revoked_at IS NOT NULL AS revoked, upload_acked FROM nodes WHERE id = $1",
        )
        .bind(node_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db("look up a node"))?;
        let Some(row) = row else {
            return Ok(Err(Refusal {
                code: RefusalCode::UnknownNode,
                message: format!(
                    "node {node_id} is not enrolled at this hub; enroll it with a token"
                ),
            }));
        };
        let (own_site, revoked, acked): (String, bool, i64) = (
            row.try_get("site").map_err(db("read a node"))?,
            row.try_get("revoked").map_err(db("read a node"))?,
            row.try_get("upload_acked").map_err(db("read a node"))?,
        );
        if revoked {
            return Ok(Err(Refusal {
                code: RefusalCode::Revoked,
                message: format!(
                    "node {node_id} has been revoked; ask the central admin to enroll a new one"
                ),
            }));
        }
        if own_site != site {
            return Ok(Err(Refusal {
                code: RefusalCode::WrongSite,
                message: format!("node {node_id} is enrolled for site {own_site}, not {site}"),
            }));
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
        Ok(Ok((to_u64(acked), rejected)))
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

#[cfg(test)]
mod tests;
