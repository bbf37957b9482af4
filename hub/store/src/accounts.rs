//! Account lifecycle from the hub: disable, re-enable, change role or sites, reset a
//! password. A clinic's account is a document its site owns; the hub edits it as a
//! hub change that reaches every node by sync, where the node's session gate ends the
//! sessions it no longer admits. A central account (the hub's own) is edited the same
//! way, and its site limits live in `admin_sites`.
//!
//! Every change stamps `credentials_changed_at`, so no session opened before it
//! survives (a re-enabled account does not revive the sessions it had).

use chrono::{DateTime, Utc};
use healsync_domain::{Role, SiteCode, User};
use healsync_records::AnyRecord;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::error::db;
use crate::queries::read_typed;
use crate::rows::{HUB_ONLY, lock_meta};
use crate::scope::GrantReason;
use crate::writes::write_record_at_hub;
use crate::{HubStore, HubStoreError};

/// What to change about an account; `None` leaves a part as it is.
#[derive(Debug, Clone, Default)]
pub struct AccountChange {
    pub active: Option<bool>,
    pub role: Option<Role>,
    /// For a clinic account, the clinics where it holds its role, its home (owning)
    /// clinic first; for a central account, the sites it is limited to (empty: every
    /// site).
    pub sites: Option<Vec<SiteCode>>,
    /// A new argon2id hash (the caller hashes; the store never sees a password).
    pub password_hash: Option<String>,
}

/// An account as the hub holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub user: User,
    /// The site that owns it, or `None` for a central account.
    pub site: Option<String>,
    /// For a central account, the sites it is limited to (`None`: every site).
    pub limited_to: Option<Vec<String>>,
}

impl HubStore {
    /// Applies `change` to the account named `who` (a user name, or an account id when
    /// two sites made the same name offline) in one transaction. The clinic's nodes
    /// receive it at their next sync.
    pub async fn update_account(
        &self,
        who: &str,
        change: AccountChange,
        now: DateTime<Utc>,
    ) -> Result<Account, HubStoreError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(db("begin changing an account"))?;
        let (_, actor) = lock_meta(&mut tx).await?;
        let (user, owner) = account_in(&mut tx, who).await?;
        let central = owner == HUB_ONLY;
        let role = change.role.unwrap_or(user.role);
        healsync_domain::user::check_links(role, user.patient_id, user.doctor_id)?;
        if central != role.is_central() || (!central && role.is_hub_only()) {
            return Err(HubStoreError::Rule(healsync_domain::DomainError::invalid(
                "role",
                if central {
                    "a central account is ADMIN or FINANCE"
                } else {
                    "a clinic account is PATIENT, DOCTOR, RECEPTIONIST or ADMIN"
                },
            )));
        }
        let mut sites = user.sites.clone();
        if let Some(new) = &change.sites {
            for code in new {
                if !crate::site_exists(&mut tx, code.as_str()).await? {
                    return Err(HubStoreError::UnknownSite(code.to_string()));
                }
            }
            if central {
                set_limits(&mut tx, user.id.0, new).await?;
            } else {
                // The owning clinic stays the account's home: it is the one that may
                // change the account (its password, offline) and it stays first.
                if new.first().map(SiteCode::as_str) != Some(owner.as_str()) {
                    return Err(HubStoreError::Rule(healsync_domain::DomainError::invalid(
                        "sites",
                        format!(
                            "the account belongs to {owner}: list {owner} first, then the other clinics where it works"
                        ),
                    )));
                }
                sites = dedup(new);
            }
        }
        let updated = User {
            active: change.active.unwrap_or(user.active),
            role,
            sites,
            password_hash: change.password_hash.unwrap_or(user.password_hash.clone()),
            credentials_changed_at: Some(now),
            ..user
        };
        write_record_at_hub(&mut tx, &actor, &owner, false, &updated).await?;
        // The other clinics it works at receive the account, with its history. (A
        // clinic taken off the list keeps its copy, which no longer admits it.)
        if !central {
            for site in updated.sites.iter().filter(|s| s.as_str() != owner) {
                crate::scope::grant(&mut tx, updated.id.0, site.as_str(), GrantReason::Account)
                    .await?;
            }
        }
        let limited_to = if central {
            limits(&mut tx, updated.id.0).await?
        } else {
            None
        };
        tx.commit().await.map_err(db("commit an account change"))?;
        Ok(Account {
            user: updated,
            site: (!central).then_some(owner),
            limited_to,
        })
    }

    /// Every central account (the hub's own) with the sites it is limited to: what the
    /// hub's session gate holds.
    pub async fn central_accounts(&self) -> Result<Vec<Account>, HubStoreError> {
        let rows: Vec<(Vec<u8>, Option<Vec<String>>)> = sqlx::query_as(
            "SELECT d.bytes, a.sites FROM documents d
             JOIN document_owners o ON o.doc_id = d.doc_id
             LEFT JOIN admin_sites a ON a.user_id = d.doc_id
             WHERE d.kind = 'user' AND o.site = $1",
        )
        .bind(HUB_ONLY)
        .fetch_all(&self.pool)
        .await
        .map_err(db("list the central accounts"))?;
        let mut out = Vec::with_capacity(rows.len());
        for (bytes, limited_to) in rows {
            if let Some(user) = read_typed(&bytes, pick_user)? {
                out.push(Account {
                    user,
                    site: None,
                    limited_to,
                });
            }
        }
        Ok(out)
    }

    /// Ends a central admin's session for good (kept until `expires_at`, unix
    /// seconds); the expired ones are forgotten here.
    pub async fn end_session(
        &self,
        id: &str,
        user: Uuid,
        expires_at: i64,
        now: DateTime<Utc>,
    ) -> Result<(), HubStoreError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(db("begin ending a session"))?;
        sqlx::query("DELETE FROM ended_sessions WHERE expires_at < $1")
            .bind(now.timestamp())
            .execute(&mut *tx)
            .await
            .map_err(db("forget expired sessions"))?;
        sqlx::query(
            "INSERT INTO ended_sessions (id, user_id, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(user)
        .bind(expires_at)
        .execute(&mut *tx)
        .await
        .map_err(db("end a session"))?;
        tx.commit().await.map_err(db("commit an ended session"))
    }

    /// The ids of the sessions ended one by one that have not expired yet.
    pub async fn ended_sessions(&self, now: DateTime<Utc>) -> Result<Vec<String>, HubStoreError> {
        sqlx::query_scalar("SELECT id FROM ended_sessions WHERE expires_at >= $1")
            .bind(now.timestamp())
            .fetch_all(&self.pool)
            .await
            .map_err(db("list ended sessions"))
    }

    /// Gives each clinic account written before roles were scoped to sites its owning
    /// site, once, at start: such an account otherwise signs in only at the node that
    /// created it. Returns how many it changed.
    pub async fn adopt_unscoped_accounts(&self) -> Result<usize, HubStoreError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(db("begin scoping accounts"))?;
        let (_, actor) = lock_meta(&mut tx).await?;
        let rows: Vec<(Vec<u8>, String)> = sqlx::query_as(
            "SELECT d.bytes, o.site FROM documents d JOIN document_owners o ON o.doc_id = d.doc_id
             WHERE d.kind = 'user' AND o.site <> $1 AND NOT (d.record ? 'sites')",
        )
        .bind(HUB_ONLY)
        .fetch_all(&mut *tx)
        .await
        .map_err(db("find accounts without sites"))?;
        let mut n = 0;
        for (bytes, site) in rows {
            let Some(user) = read_typed(&bytes, pick_user)? else {
                continue;
            };
            let Ok(code) = SiteCode::parse(&site) else {
                continue;
            };
            let scoped = User {
                sites: vec![code],
                ..user
            };
            write_record_at_hub(&mut tx, &actor, &site, false, &scoped).await?;
            n += 1;
        }
        tx.commit().await.map_err(db("commit scoped accounts"))?;
        Ok(n)
    }
}

fn pick_user(r: AnyRecord) -> Option<User> {
    match r {
        AnyRecord::User(u) => Some(u),
        _ => None,
    }
}

fn dedup(sites: &[SiteCode]) -> Vec<SiteCode> {
    let mut out: Vec<SiteCode> = Vec::with_capacity(sites.len());
    for s in sites {
        if !out.contains(s) {
            out.push(s.clone());
        }
    }
    out
}

/// The account named `who` (user name or id), locked, with its owning site.
async fn account_in(
    tx: &mut Transaction<'_, Postgres>,
    who: &str,
) -> Result<(User, String), HubStoreError> {
    let by_id = Uuid::parse_str(who.trim()).ok();
    let name = who.trim().to_lowercase();
    let rows: Vec<(Vec<u8>, String)> = sqlx::query_as(
        "SELECT d.bytes, o.site FROM documents d JOIN document_owners o ON o.doc_id = d.doc_id
         WHERE d.kind = 'user' AND (d.doc_id = $1 OR d.record->>'username' = $2)
         ORDER BY d.doc_id
         FOR UPDATE OF d",
    )
    .bind(by_id)
    .bind(&name)
    .fetch_all(&mut **tx)
    .await
    .map_err(db("look up an account"))?;
    match rows.len() {
        0 => Err(HubStoreError::UnknownAccount(who.to_string())),
        1 => {
            let (bytes, site) = rows
                .into_iter()
                .next()
                .ok_or(HubStoreError::Corrupt("an account row vanished".into()))?;
            let user = read_typed(&bytes, pick_user)?.ok_or_else(|| {
                HubStoreError::Corrupt("an account document is no account".into())
            })?;
            Ok((user, site))
        }
        _ => Err(HubStoreError::Rule(healsync_domain::DomainError::invalid(
            "account",
            format!(
                "{who:?} names more than one account (two clinics made it offline): name it by id"
            ),
        ))),
    }
}

async fn set_limits(
    tx: &mut Transaction<'_, Postgres>,
    user: Uuid,
    sites: &[SiteCode],
) -> Result<(), HubStoreError> {
    if sites.is_empty() {
        sqlx::query("DELETE FROM admin_sites WHERE user_id = $1")
            .bind(user)
            .execute(&mut **tx)
            .await
            .map_err(db("lift an account's site limits"))?;
        return Ok(());
    }
    let codes: Vec<String> = dedup(sites).iter().map(|s| s.to_string()).collect();
    sqlx::query(
        "INSERT INTO admin_sites (user_id, sites) VALUES ($1, $2)
         ON CONFLICT (user_id) DO UPDATE SET sites = EXCLUDED.sites",
    )
    .bind(user)
    .bind(codes)
    .execute(&mut **tx)
    .await
    .map_err(db("limit an account to sites"))?;
    Ok(())
}

async fn limits(
    tx: &mut Transaction<'_, Postgres>,
    user: Uuid,
) -> Result<Option<Vec<String>>, HubStoreError> {
    sqlx::query_scalar("SELECT sites FROM admin_sites WHERE user_id = $1")
        .bind(user)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db("read an account's sites"))
}
