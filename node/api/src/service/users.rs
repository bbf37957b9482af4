//! Accounts and logging in.

use healsync_domain::user::{check_links, check_password, parse_username};
use healsync_domain::{DoctorId, PatientId, Role, User};
use healsync_store::{Store, queries};

use super::new_id;
use crate::{ApiError, Node, Session};

#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub password: String,
    pub role: Role,
    pub patient_id: Option<PatientId>,
    pub doctor_id: Option<DoctorId>,
}

/// Creates an account directly in the store: used by the command line (`users add`,
/// first admin) and by [`create`] after its access check.
pub fn create_in_store(store: &Store, input: NewUser) -> Result<User, ApiError> {
    let username = parse_username(&input.username)?;
    check_password(&input.password)?;
    check_links(input.role, input.patient_id, input.doctor_id)?;
    if input.role.is_hub_only() {
        return Err(ApiError::BadInput(format!(
            "{} accounts exist at the hub only",
            input.role
        )));
    }
    let password_hash =
        healsync_auth::hash_password(&input.password).map_err(ApiError::internal)?;
    let (user, _changed) = store.write(chrono::Utc::now(), |tx| {
        if !queries::users_named(tx.conn(), &username)?.is_empty() {
            return Err(ApiError::Conflict(format!(
                "user {username:?} already exists"
            )));
        }
        if let Some(p) = input.patient_id {
            queries::patient(tx.conn(), p)?.ok_or_else(|| ApiError::not_found("patient"))?;
        }
        if let Some(d) = input.doctor_id {
            queries::doctor(tx.conn(), d)?.ok_or_else(|| ApiError::not_found("doctor"))?;
        }
        let user = User {
            id: new_id(),
            username,
            role: input.role,
            password_hash,
            patient_id: input.patient_id,
            doctor_id: input.doctor_id,
            active: true,
            // A clinic's account holds its role at this clinic; the hub adds others.
            sites: vec![tx.site().clone()],
            credentials_changed_at: None,
        };
        tx.put(&user)?;
        Ok(user)
    })?;
    Ok(user)
}

pub async fn create(node: &Node, session: &Session, input: NewUser) -> Result<User, ApiError> {
    session.require(&[Role::Admin])?;
    let store = node.store().clone();
    let user = tokio::task::spawn_blocking(move || create_in_store(&store, input))
        .await
        .map_err(ApiError::internal)??;
    node.refresh_accounts().await?;
    Ok(user)
}

/// Creates the first ADMIN if the store has no user yet. Returns whether it did.
pub fn ensure_first_admin(store: &Store, password: &str) -> Result<bool, ApiError> {
    let users = store.read(queries::count_users)?;
    if users > 0 {
        return Ok(false);
    }
    create_in_store(
        store,
        NewUser {
            username: "admin".into(),
            password: password.into(),
            role: Role::Admin,
            patient_id: None,
            doctor_id: None,
        },
    )?;
    Ok(true)
}

/// A session token for a user name and password (the procedure and its limits are
/// `healsync_auth::login`'s). Failures say only "invalid".
pub async fn login(
    node: &Node,
    username: &str,
    password: &str,
    peer: Option<healsync_auth::Peer>,
) -> Result<(String, healsync_auth::Claims), ApiError> {
    let admitted = node.inner.login.admit(username, peer)?;
    let candidates = {
        let name = admitted.username().to_string();
        node.read(move |c| queries::users_named(c, &name)).await?
    };
    let user = node
        .inner
        .login
        // Only an account that holds a role at this clinic signs in here (a hub-only
        // role never does, whatever reached its store).
        .verify(admitted, password, candidates, |u| {
            node.accounts().admits(u).is_ok()
        })
        .await?;
    confirmed_by_hub(node).await?;
    // The gate reloads on its own every few seconds; a login reloads it now, so that
    // the session it opens meets the account as the login just did (an account
    // changed by `healsync-node sync` in another process, say).
    node.refresh_accounts().await?;
    // A session opens no earlier than the account's last change: a change stamped by
    // a hub whose clock runs ahead of this node's must not refuse the sessions opened
    // after it arrived.
    let opened = node.now().timestamp_millis().max(
        user.credentials_changed_at
            .map_or(i64::MIN, |t| t.timestamp_millis()),
    );
    node.keys().issue(&user, opened).map_err(ApiError::internal)
}

/// Changes the session's own password, offline: the current password is checked with
/// the login's limits, the new hash and the moment of the change are written (every
/// session opened before ends, this one included) and a new session is returned. The
/// change syncs to the hub and the account's other clinics. Only the account's home
/// clinic (its first site) writes it: the hub accepts account changes from the site
/// that owns the account.
pub async fn change_password(
    node: &Node,
    session: &Session,
    current: &str,
    new: &str,
) -> Result<(String, healsync_auth::Claims), ApiError> {
    check_password(new)?;
    let admitted = node
        .inner
        .login
        .admit(&session.username, session.peer.map(healsync_auth::Peer))?;
    let id = session.user_id;
    let account = node
        .read(move |c| queries::user(c, id))
        .await?
        .ok_or_else(|| ApiError::Unauthenticated("the account no longer exists".into()))?;
    let site = node.store().identity().site.clone();
    if account.sites.first().is_some_and(|home| *home != site) {
        return Err(ApiError::Forbidden(format!(
            "change the password at {} (the account's home clinic) or ask the hub",
            account.sites[0]
        )));
    }
    node.inner
        .login
        .verify(admitted, current, vec![account], |u| {
            node.accounts().admits(u).is_ok()
        })
        .await?;
    let hash = healsync_auth::hash_password(new).map_err(ApiError::internal)?;
    let now = node.now();
    let user = node
        .write(session.acting("changePassword"), move |tx| {
            let user = queries::user(tx.conn(), id)?.ok_or_else(|| ApiError::not_found("user"))?;
            let user = User {
                password_hash: hash,
                credentials_changed_at: Some(now),
                ..user
            };
            tx.put(&user)?;
            Ok(user)
        })
        .await?;
    node.keys()
        .issue(&user, now.timestamp_millis())
        .map_err(ApiError::internal)
}

/// With a maximum offline credential age set, nobody signs in at an enrolled node whose
/// last sync round with the hub is older than that (asked after the password check, so
/// only an account holder learns it). A node without a hub has nobody to confirm it.
async fn confirmed_by_hub(node: &Node) -> Result<(), ApiError> {
    let Some(max) = node.max_offline() else {
        return Ok(());
    };
    let store = node.store().clone();
    let contact = tokio::task::spawn_blocking(move || store.hub_contact())
        .await
        .map_err(ApiError::internal)??;
    let last = match contact {
        healsync_store::HubContact::NotEnrolled => return Ok(()),
        healsync_store::HubContact::Never => None,
        healsync_store::HubContact::Last(at) => Some(at),
    };
    if healsync_domain::user::confirmation_expired(last, max, node.now()) {
        return Err(ApiError::Unauthenticated(format!(
            "this clinic has not reached the hub for longer than {} hours: its accounts must be confirmed again (a sync with the hub) before anyone signs in",
            max.num_hours()
        )));
    }
    Ok(())
}
