//! The GraphQL schema of the clinic node: queries, mutations and subscriptions over the
//! services, with the limits that keep one request from exhausting a small machine.

/// Mirrors a domain enum as a GraphQL enum, both ways.
macro_rules! gql_enum {
    ($(#[$doc:meta])* $gql:ident = $name:literal, $domain:ty { $($v:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(async_graphql::Enum, Copy, Clone, Eq, PartialEq, Debug)]
        #[graphql(name = $name)]
        pub enum $gql { $($v),+ }

        impl From<$domain> for $gql {
            fn from(v: $domain) -> Self {
                match v { $(<$domain>::$v => $gql::$v),+ }
            }
        }

        impl From<$gql> for $domain {
            fn from(v: $gql) -> Self {
                match v { $($gql::$v => <$domain>::$v),+ }
            }
        }
    };
}

mod audit;
pub mod billing;
pub mod clinical;
mod inputs;
pub mod loaders;
pub mod messages;
mod mutation;
mod query;
pub mod read_audit;
mod sessions;
mod subscription;
pub mod types;

use async_graphql::{Context, Schema};
use chrono::{DateTime, Utc};
use healsync_auth::Claims;
use healsync_graphql_guard::{Guard, Limits};

pub use loaders::{Loaders, new_loaders};
pub use subscription::SubscriptionRoot;

use crate::session::Auth;
use crate::{ApiError, Node, Session};

/// The query root: the core's fields and billing's, merged.
#[derive(async_graphql::MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(
    query::CoreQuery,
    billing::BillingQuery,
    messages::MessagesQuery,
    audit::AuditQuery,
    sessions::SessionsQuery,
);

/// The mutation root, merged the same way.
#[derive(async_graphql::MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    mutation::CoreMutation,
    billing::BillingMutation,
    messages::MessagesMutation,
    sessions::SessionsMutation,
);

pub type NodeSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// The most items of nested lists that have no `limit` argument: the cost model
/// multiplies by these, and the resolvers return no more.
pub const MAX_SCHEDULES: usize = 10;
pub const MAX_LEAVES: usize = 200;
pub const MAX_WEEKLY_RULES: usize = 50;

/// Bounds of the list fields without a `limit` argument, for the cost model.
pub const LIST_BOUNDS: &[(&str, &str, u64)] = &[
    (
        "Invoice",
        "lines",
        healsync_domain::billing::MAX_LINES as u64,
    ),
    ("Invoice", "payments", billing::MAX_PAYMENTS as u64),
    (
        "Query",
        "priceList",
        healsync_store::queries::billing::MAX_PRICE_ITEMS as u64,
    ),
    ("Doctor", "schedules", MAX_SCHEDULES as u64),
    ("Doctor", "leaves", MAX_LEAVES as u64),
    ("Schedule", "weekly", MAX_WEEKLY_RULES as u64),
];

/// What one request may cost (see `healsync-graphql-guard`); batches are refused by
/// the transport.
pub fn limits() -> Limits {
    Limits::standard(LIST_BOUNDS)
}

fn builder() -> async_graphql::SchemaBuilder<QueryRoot, MutationRoot, SubscriptionRoot> {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot,
    )
    .extension(Guard::new(limits()))
    .extension(read_audit::ReadAudit)
    // The guard bounds depth and cost (introspection is deeper than any query
    // of the product); these stay as a second line.
    .limit_depth(24)
    .limit_recursive_depth(32)
    .limit_directives(10)
}

pub fn build_schema(node: Node) -> NodeSchema {
    builder().data(node).finish()
}

/// The schema's SDL, as committed in `schema/healsync.graphql`.
pub fn schema_sdl() -> String {
    builder().finish().sdl()
}

pub(crate) fn node<'a>(ctx: &'a Context<'_>) -> Result<&'a Node, ApiError> {
    ctx.data::<Node>()
        .map_err(|_| ApiError::internal("schema has no node"))
}

pub(crate) fn session<'a>(ctx: &'a Context<'_>) -> Result<&'a Session, ApiError> {
    static ANONYMOUS: Auth = Auth::Anonymous;
    ctx.data::<Auth>().unwrap_or(&ANONYMOUS).session()
}

pub(crate) fn parse_instant(field: &'static str, s: &str) -> Result<DateTime<Utc>, ApiError> {
    healsync_domain::appointment::parse_instant(field, s).map_err(ApiError::from)
}

/// Validates `limit` (1..=500) and `offset` (>= 0).
pub(crate) fn page(limit: i32, offset: i32) -> Result<(u32, u32), ApiError> {
    if !(1..=500).contains(&limit) {
        return Err(ApiError::BadInput("limit must be 1 to 500".into()));
    }
    let offset =
        u32::try_from(offset).map_err(|_| ApiError::BadInput("offset must be 0 or more".into()))?;
    Ok((limit as u32, offset))
}

/// Validates the `limit` of a nested list (1..=`max`).
pub(crate) fn nested_limit(limit: i32, max: i32) -> Result<usize, ApiError> {
    if !(1..=max).contains(&limit) {
        return Err(ApiError::BadInput(format!("limit must be 1 to {max}")));
    }
    Ok(limit as usize)
}

/// What a request carries into the schema: how it authenticated, and its loaders.
pub fn request_data(
    node: &Node,
    bearer: Option<&str>,
    peer: Option<std::net::IpAddr>,
) -> (Auth, Loaders) {
    (authenticate(node, bearer, peer), new_loaders(node))
}

/// Turns an `Authorization` header value (or WebSocket init payload value) into an
/// [`Auth`], noting the request of the session (the idle limit counts from it).
pub fn authenticate(node: &Node, header: Option<&str>, peer: Option<std::net::IpAddr>) -> Auth {
    authenticate_until(node, header, peer).0
}

/// [`authenticate`], with the claims of the session when it is one: a WebSocket
/// connection must end when its session does (it expires, or the session gate ends it).
pub fn authenticate_until(
    node: &Node,
    header: Option<&str>,
    peer: Option<std::net::IpAddr>,
) -> (Auth, Option<Claims>) {
    match node.keys().bearer(header) {
        // A hub-only role is no session at a clinic, whoever signed it.
        Ok(Some(claims)) if claims.role.is_hub_only() => (
            Auth::Invalid(format!("a {} account signs in at the hub", claims.role)),
            None,
        ),
        Ok(Some(claims)) => {
            let holds = node.accounts().check(&claims).and_then(|()| {
                node.accounts()
                    .gate()
                    .touch(&claims, node.now().timestamp_millis(), peer)
            });
            match holds {
                Ok(()) => (
                    Auth::Session(crate::Session::from(claims.clone())).from_peer(peer),
                    Some(claims),
                ),
                Err(end) => (Auth::Invalid(end.message().to_string()), None),
            }
        }
        Ok(None) => (Auth::Anonymous, None),
        Err(why) => (Auth::Invalid(why), None),
    }
}
