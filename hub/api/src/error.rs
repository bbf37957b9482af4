//! Hub API errors and their GraphQL `extensions.code` (the contract's codes). Internal
//! failures are logged once, here, and reach the client as `INTERNAL` with no detail.

use healsync_hub_store::HubStoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubApiError {
    Unauthenticated(String),
    Forbidden(String),
    NotFound(String),
    BadInput(String),
    Conflict(String),
    RateLimited(String),
    Internal,
}

impl HubApiError {
    fn code_and_message(&self) -> (&'static str, &str) {
        match self {
            HubApiError::Unauthenticated(m) => ("UNAUTHENTICATED", m),
            HubApiError::Forbidden(m) => ("FORBIDDEN", m),
            HubApiError::NotFound(m) => ("NOT_FOUND", m),
            HubApiError::BadInput(m) => ("BAD_USER_INPUT", m),
            HubApiError::Conflict(m) => ("CONFLICT", m),
            HubApiError::RateLimited(m) => ("RATE_LIMITED", m),
            HubApiError::Internal => ("INTERNAL", "internal error"),
        }
    }

    pub fn code(&self) -> &'static str {
        self.code_and_message().0
    }

    pub fn internal(e: impl std::fmt::Display) -> HubApiError {
        tracing::error!(error = %e, "internal error");
        HubApiError::Internal
    }
}

impl From<healsync_auth::LoginRefusal> for HubApiError {
    fn from(e: healsync_auth::LoginRefusal) -> Self {
        use healsync_auth::LoginRefusal as R;
        match e {
            R::RateLimited(_) | R::Busy => HubApiError::RateLimited(e.to_string()),
            R::Invalid => HubApiError::Unauthenticated(e.to_string()),
        }
    }
}

impl From<HubStoreError> for HubApiError {
    fn from(e: HubStoreError) -> Self {
        match e {
            HubStoreError::UnknownSite(s) => HubApiError::NotFound(format!("there is no site {s}")),
            HubStoreError::UnknownDocument(d) => {
                HubApiError::NotFound(format!("there is no record {d}"))
            }
            HubStoreError::Busy(m) => HubApiError::Conflict(m),
            HubStoreError::Rule(e) => e.into(),
            HubStoreError::UnknownAccount(u) => {
                HubApiError::NotFound(format!("there is no account {u}"))
            }
            HubStoreError::UserExists(u) => {
                HubApiError::Conflict(format!("user {u} already exists"))
            }
            other => HubApiError::internal(other),
        }
    }
}

impl From<healsync_domain::DomainError> for HubApiError {
    fn from(e: healsync_domain::DomainError) -> Self {
        match e {
            // Valid input, wrong moment (the slot is taken): as on the node.
            healsync_domain::DomainError::Refused(why) => HubApiError::Conflict(why),
            other => HubApiError::BadInput(other.to_string()),
        }
    }
}

impl From<HubApiError> for async_graphql::Error {
    fn from(e: HubApiError) -> Self {
        let (code, message) = e.code_and_message();
        use async_graphql::ErrorExtensions;
        async_graphql::Error::new(message).extend_with(|_, x| x.set("code", code))
    }
}
