//! The store's error type.

use healsync_records::RecordError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("could not {action}")]
    Sqlite {
        action: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("could not {action}")]
    Io {
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("document {id} is damaged")]
    Record {
        id: String,
        #[source]
        source: Box<RecordError>,
    },
    #[error(
        "this data directory belongs to site {stored}, not {requested}; use the right --data-dir or omit --site"
    )]
    SiteMismatch { stored: String, requested: String },
    #[error(
        "the database was written by a newer HealSync (schema {found}, this build knows {known})"
    )]
    TooNew { found: i64, known: i64 },
    #[error("the database is damaged: {0}")]
    Corrupt(String),
    #[error("a database connection was poisoned by an earlier panic")]
    Poisoned,
}

impl StoreError {
    /// `map_err(StoreError::sqlite("load a document"))`: names what was being done.
    pub fn sqlite(action: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
        move |source| StoreError::Sqlite { action, source }
    }

    pub fn record(id: impl ToString) -> impl FnOnce(RecordError) -> StoreError {
        move |source| StoreError::Record {
            id: id.to_string(),
            source: Box::new(source),
        }
    }
}
