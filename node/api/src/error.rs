//! API errors and their GraphQL `extensions.code`.
//!
//! Every error a client sees carries one of the codes of the public contract. Internal
//! failures are logged here, once, with their cause, and reach the client as `INTERNAL`
//! with no detail (no stack traces, no SQL).

use healsync_domain::DomainError;
use healsync_store::StoreError;

/// What went wrong, as the client should learn it. Deliberately not `Display`: it is
/// turned into a GraphQL error (with its code) and nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    Unauthenticated(String),
    Forbidden(String),
    NotFound(String),
    BadInput(String),
    Conflict(String),
    RateLimited(String),
    Internal,
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated(_) => "UNAUTHENTICATED",
            ApiError::Forbidden(_) => "FORBIDDEN",
            ApiError::NotFound(_) => "NOT_FOUND",
            ApiError::BadInput(_) => "BAD_USER_INPUT",
            ApiError::Conflict(_) => "CONFLICT",
            ApiError::RateLimited(_) => "RATE_LIMITED",
            ApiError::Internal => "INTERNAL",
        }
    }

    pub fn message(&self) -> &str {
        match self {
            ApiError::Unauthenticated(m)
            | ApiError::Forbidden(m)
            | ApiError::NotFound(m)
            | ApiError::BadInput(m)
            | ApiError::Conflict(m)
            | ApiError::RateLimited(m) => m,
            ApiError::Internal => "internal error",
        }
    }

    /// Logs an unexpected failure and hides it from the client.
    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %e, "internal error");
        ApiError::Internal
    }

    pub fn forbidden() -> ApiError {
        ApiError::Forbidden("you may not access this".into())
    }

    pub fn not_found(what: &str) -> ApiError {
        ApiError::NotFound(format!("no such {what}"))
    }
}

/// An error with its causes, `outer: inner: innermost`, for the log.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

impl From<healsync_auth::LoginRefusal> for ApiError {
    fn from(e: healsync_auth::LoginRefusal) -> Self {
        use healsync_auth::LoginRefusal as R;
        match e {
            R::RateLimited(_) | R::Busy => ApiError::RateLimited(e.to_string()),
            R::Invalid => ApiError::Unauthenticated(e.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::internal(chain(&e))
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Refused(why) => ApiError::Conflict(why),
            e => ApiError::BadInput(e.to_string()),
        }
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(e: ApiError) -> Self {
        let code = e.code();
        async_graphql::Error::new(e.message()).extend_with(|_, ext| ext.set("code", code))
    }
}

use async_graphql::ErrorExtensions as _;
