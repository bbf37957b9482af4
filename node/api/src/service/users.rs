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
        };
        tx.put(&user)?;
        Ok(user)
    })?;
    Ok(user)
}

pub async fn create(node: &Node, session: &Session, input: NewUser) -> Result<User, ApiError> {
    session.require(&[Role::Admin])?;
    let store = node.store().clone();
    tokio::task::spawn_blocking(move || create_in_store(&store, input))
        .await
        .map_err(ApiError::internal)?
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
        // A hub-only role never signs in at a clinic, whatever reached its store.
        .verify(admitted, password, candidates, |u| !u.role.is_hub_only())
        .await?;
    node.keys()
        .issue(&user, node.now().timestamp())
        .map_err(ApiError::internal)
}
