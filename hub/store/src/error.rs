//! The store's error type and the small conversions every module uses (a leaf: it
//! imports nothing of the crate).

use uuid::Uuid;

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
    #[error("there is no account {0}")]
    UnknownAccount(String),
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
    /// A node sent something no node writes.
    #[error("a node sent {0}")]
    Malformed(&'static str),
}

pub(crate) fn db(action: &'static str) -> impl FnOnce(sqlx::Error) -> HubStoreError {
    move |source| HubStoreError::Db { action, source }
}

pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}
