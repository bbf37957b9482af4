//! The hub's store: the only crate that knows PostgreSQL (through sqlx).
//!
//! It keeps the registry of sites and nodes (enrollment tokens, revocation, here),
//! the ownership of documents, and the hub's change log that nodes sync into
//! (`ingest`): cursor order is commit order, so a node that has read up to cursor N can
//! never miss a change committed later with a smaller cursor. `error` is the leaf every
//! module uses; `writes` the one writer of documents and their projections; `queries`
//! and `billing` the reads; `central` the writes central admins make; `scope` what each
//! site receives; `materialize` the fold; `events` the announcements.

pub mod accounts;
pub mod audit;
mod backfill;
pub mod billing;
mod central;
mod error;
pub mod events;
mod ingest;
mod materialize;
mod queries;
mod rows;
mod scope;
mod writes;

pub use central::NewPatient;
pub use error::HubStoreError;
pub use ingest::Admission;
pub use materialize::{MATERIALIZE_STEP, Materialized};
pub use queries::*;
pub use rows::{CrossSiteConflict, DocumentChanged, HUB_ONLY, HUB_ORIGIN};
pub use scope::{GRANTED_KINDS, GrantReason};

use error::{db, to_u64};
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

/// The hub's schema migrations, embedded at build time.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

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
        MIGRATOR.run(&pool).await?;
        Ok(HubStore { pool })
    }

    /// Whether PostgreSQL answers and holds every migration this build knows (what a
    /// readiness probe asks; a replica of an older build behind a newer database, or
    /// one cut off from PostgreSQL, is not ready).
    pub async fn ready(&self) -> Result<bool, HubStoreError> {
        let applied: i64 =
            sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.pool)
                .await
                .map_err(db("read the applied migrations"))?;
        Ok(applied == MIGRATOR.iter().count() as i64)
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
}

#[cfg(test)]
mod tests;
