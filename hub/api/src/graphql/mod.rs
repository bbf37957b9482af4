//! The hub's GraphQL schema for central admins: the same object types as a clinic's
//! node (`Patient`, `Doctor`, `Appointment`, `TimeSlot`, `Notification`, each with its
//! `site`), resolved across sites, plus what only the hub knows (sites and their nodes'
//! sync state, refusals, conflicts across sites, cross-site availability). The same
//! conventions as the node (login, bearer tokens, error codes, cost limits). Every
//! operation but `login` needs an ADMIN session of the hub; an admin limited to named
//! sites sees and writes only those, in every query, mutation and subscription.
//!
//! `query`, `mutation` and `subscription` hold the three roots, `types` the objects,
//! `loaders` the batch loaders that keep nested fields to one query per field.

mod audit;
mod billing;
mod loaders;
mod mutation;
mod query;
mod subscription;
mod types;

use async_graphql::{Context, ID, Schema};
use chrono::{DateTime, SecondsFormat, Utc};
use healsync_auth::Claims;
use healsync_domain::Role;
use uuid::Uuid;

pub use loaders::{Loaders, new_loaders};
pub use mutation::MutationRoot;
pub use query::CoreQuery;

/// The query root: the node's types across sites, and the billing roll-ups.
#[derive(async_graphql::MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(CoreQuery, billing::BillingQuery, audit::AuditQuery);
pub use subscription::SubscriptionRoot;

use crate::{Hub, HubApiError};

pub type HubSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Longest range for availability and appointment queries.
pub const MAX_RANGE_DAYS: i64 = healsync_domain::schedule::MAX_RANGE_DAYS;

/// Bounds of the list fields without a `limit` argument, for the cost model.
pub const LIST_BOUNDS: &[(&str, &str, u64)] = &[
    ("Query", "sites", 200),
    ("Site", "nodes", 20),
    ("Query", "appointments", 500),
    ("Query", "doctorAvailability", 50),
    ("SiteAvailability", "freeSlots", 500),
    ("SiteAvailability", "booked", 500),
    ("Query", "conflicts", 500),
    ("Query", "crossSiteConflicts", 500),
    ("Patient", "sharedWith", 200),
    ("Doctor", "specializations", 10),
    ("Doctor", "sites", 200),
    ("Doctor", "appointments", 500),
    ("Record", "sharedWith", 200),
    ("Query", "revenue", 5000),
    ("Query", "claimsByAge", 500),
    ("Query", "doctorUtilisation", 200),
];

/// What one request may cost (see `healsync-graphql-guard`).
pub fn limits() -> healsync_graphql_guard::Limits {
    healsync_graphql_guard::Limits::standard(LIST_BOUNDS)
}

fn builder() -> async_graphql::SchemaBuilder<QueryRoot, MutationRoot, SubscriptionRoot> {
    Schema::build(QueryRoot::default(), MutationRoot, SubscriptionRoot)
        .extension(healsync_graphql_guard::Guard::new(limits()))
        .limit_depth(24)
        .limit_recursive_depth(32)
        .limit_directives(10)
}

pub fn build_schema(hub: Hub) -> HubSchema {
    builder().data(hub).finish()
}

/// The schema's SDL, as committed in `schema/hub.graphql`.
pub fn schema_sdl() -> String {
    builder().finish().sdl()
}

/// What a request carries about authentication.
#[derive(Debug, Clone)]
pub enum HubAuth {
    /// A central account's session (ADMIN or FINANCE).
    Central(Claims),
    Invalid(String),
    Anonymous,
}

/// Turns an `Authorization` value into a [`HubAuth`]: only central roles (ADMIN,
/// FINANCE) are admitted, and only while the session gate says the account still
/// holds the session.
pub fn authenticate(hub: &Hub, header: Option<&str>, peer: Option<std::net::IpAddr>) -> HubAuth {
    match hub.keys().bearer(header) {
        Ok(Some(c)) if c.role.is_central() => {
            let holds = hub.accounts().check(&c).and_then(|()| {
                hub.accounts()
                    .touch(&c, chrono::Utc::now().timestamp_millis(), peer)
            });
            match holds {
                Ok(()) => HubAuth::Central(c),
                Err(end) => HubAuth::Invalid(end.message().to_string()),
            }
        }
        Ok(Some(c)) => HubAuth::Invalid(format!("a {} may not use the hub", c.role.as_str())),
        Ok(None) => HubAuth::Anonymous,
        Err(why) => HubAuth::Invalid(why),
    }
}

fn hub<'a>(ctx: &'a Context<'_>) -> Result<&'a Hub, HubApiError> {
    ctx.data::<Hub>()
        .map_err(|_| HubApiError::internal("schema has no hub"))
}

/// A signed-in central account and the sites it may see.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Central<'a> {
    claims: &'a Claims,
}

impl<'a> Central<'a> {
    /// The sites this account is limited to; `None`: every site.
    pub fn sites(&self) -> Option<&'a [String]> {
        self.claims.sites.as_deref()
    }

    pub fn sees_site(&self, site: &str) -> bool {
        self.sites().is_none_or(|s| s.iter().any(|x| x == site))
    }

    /// A site an operation names, normalised; FORBIDDEN when outside this account's
    /// sites.
    pub fn site(&self, site: &str) -> Result<String, HubApiError> {
        let code = site.trim().to_ascii_uppercase();
        if self.sees_site(&code) {
            Ok(code)
        } else {
            Err(HubApiError::Forbidden(format!(
                "this account is limited to sites {}",
                self.sites().unwrap_or_default().join(", ")
            )))
        }
    }

    /// An optional site filter, checked like [`Central::site`].
    pub fn site_filter(&self, site: Option<String>) -> Result<Option<String>, HubApiError> {
        site.map(|s| self.site(&s)).transpose()
    }

    pub fn username(&self) -> &'a str {
        &self.claims.username
    }

    pub fn claims(&self) -> &'a Claims {
        self.claims
    }
}

/// The signed-in central account, any role, or UNAUTHENTICATED.
pub(crate) fn central<'a>(ctx: &'a Context<'_>) -> Result<Central<'a>, HubApiError> {
    match ctx.data::<HubAuth>() {
        Ok(HubAuth::Central(claims)) => Ok(Central { claims }),
        Ok(HubAuth::Invalid(why)) => Err(HubApiError::Unauthenticated(why.clone())),
        _ => Err(HubApiError::Unauthenticated(
            "log in first: send Authorization: Bearer <token>".into(),
        )),
    }
}

/// A central ADMIN: everything at its sites but clinical content. Other central
/// roles are FORBIDDEN.
pub(crate) fn admin<'a>(ctx: &'a Context<'_>) -> Result<Central<'a>, HubApiError> {
    let c = central(ctx)?;
    match c.claims.role {
        Role::Admin => Ok(c),
        other => Err(HubApiError::Forbidden(format!(
            "a {other} account reads the billing roll-ups and the sites only"
        ))),
    }
}

/// Anyone who reads the organisation's figures (billing roll-ups, utilisation, the
/// sites' sync state): ADMIN and FINANCE, each at its sites.
pub(crate) fn reporter<'a>(ctx: &'a Context<'_>) -> Result<Central<'a>, HubApiError> {
    central(ctx)
}

pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub(crate) fn uuid(field: &str, id: &ID) -> Result<Uuid, HubApiError> {
    Uuid::parse_str(id.trim())
        .map_err(|_| HubApiError::BadInput(format!("{field}: {:?} is not a valid id", id.as_str())))
}

/// `[from, to)` from two RFC 3339 instants: forward, at most [`MAX_RANGE_DAYS`].
pub(crate) fn range(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), HubApiError> {
    if to <= from || to - from > chrono::Duration::days(MAX_RANGE_DAYS) {
        return Err(HubApiError::BadInput(format!(
            "`to` must be after `from`, at most {MAX_RANGE_DAYS} days later"
        )));
    }
    Ok((from, to))
}

pub(crate) fn instant(field: &'static str, s: &str) -> Result<DateTime<Utc>, HubApiError> {
    Ok(healsync_domain::appointment::parse_instant(field, s)?)
}

/// A `limit` argument: 1 to `max`.
pub(crate) fn limit(n: i32, max: i64) -> Result<i64, HubApiError> {
    let n = i64::from(n);
    if (1..=max).contains(&n) {
        Ok(n)
    } else {
        Err(HubApiError::BadInput(format!(
            "limit must be between 1 and {max}"
        )))
    }
}

/// An `offset` argument: 0 to 100,000.
pub(crate) fn offset(n: i32) -> Result<i64, HubApiError> {
    match n {
        0..=100_000 => Ok(i64::from(n)),
        _ => Err(HubApiError::BadInput(
            "offset must be between 0 and 100000".into(),
        )),
    }
}
