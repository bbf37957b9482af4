//! The hub's HTTP side (the only hub code that knows axum): GraphQL over HTTP and
//! `graphql-transport-ws` through the shared transport, the console, `/healthz` (alive),
//! `/readyz` (PostgreSQL answers and is migrated) and `/metrics` (Prometheus text, to
//! loopback only), with the security headers on every response.

use std::sync::Arc;

use async_graphql::Data;
use axum::Router;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use healsync_graphql_http::{
    Connected, GraphqlApp, Incoming, MAX_BODY_BYTES, Prepared, Transport, error_response,
    is_loopback, routes, security_headers,
};
use healsync_hub_api::graphql::{HubAuth, authenticate, new_loaders};
use healsync_hub_api::{Hub, HubSchema, build_schema};

#[derive(Clone)]
struct App {
    hub: Hub,
    schema: HubSchema,
    metrics: Arc<crate::metrics::Metrics>,
    transport: Arc<Transport>,
}

impl GraphqlApp for App {
    type Schema = HubSchema;

    fn schema(&self) -> &HubSchema {
        &self.schema
    }

    fn transport(&self) -> &Transport {
        &self.transport
    }

    fn prepare(&self, request: async_graphql::Request, incoming: Incoming<'_>) -> Prepared {
        let auth = authenticate(&self.hub, incoming.bearer, incoming.peer);
        let signed_in = matches!(auth, HubAuth::Central(_));
        let refused = match &auth {
            HubAuth::Invalid(why) => Some(why.clone()),
            _ => None,
        };
        let mut request = match &auth {
            HubAuth::Central(c) => request.data(new_loaders(&self.hub, c.sites.clone())),
            _ => request,
        };
        request = request.data(auth);
        if let Some(ip) = incoming.peer {
            request = request.data(healsync_auth::Peer(ip));
        }
        Prepared {
            request,
            signed_in,
            refused,
        }
    }

    fn connect(&self, incoming: Incoming<'_>) -> Result<Connected, String> {
        match authenticate(&self.hub, incoming.bearer, incoming.peer) {
            HubAuth::Central(claims) => {
                let ends = session_ends(self.hub.clone(), claims.clone());
                let mut data = Data::default();
                data.insert(new_loaders(&self.hub, claims.sites.clone()));
                data.insert(HubAuth::Central(claims));
                Ok(Connected { data, ends })
            }
            HubAuth::Invalid(why) => Err(why),
            HubAuth::Anonymous => {
                Err("send {\"Authorization\": \"Bearer <token>\"} in connection_init".into())
            }
        }
    }

    fn metrics(&self) -> &healsync_graphql_http::metrics::HttpMetrics {
        &self.metrics.http
    }
}

pub fn router(hub: Hub) -> Router {
    let app = App {
        schema: build_schema(hub.clone()),
        hub,
        metrics: Arc::default(),
        transport: Arc::default(),
    };
    routes::<App>()
        .route("/", get(|| async { Redirect::temporary("/graphiql") }))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(app)
}

/// Alive: the process answers. PostgreSQL is not asked: a database outage must not make
/// an orchestrator restart every replica (that is readiness, below).
async fn healthz() -> Response {
    axum::Json(serde_json::json!({ "status": "ok" })).into_response()
}

/// Ready: PostgreSQL answers and holds this build's migrations.
async fn readyz(State(app): State<App>) -> Response {
    let unavailable = |reason: &str| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({ "status": "unavailable", "reason": reason })),
        )
            .into_response()
    };
    match app.hub.store().ready().await {
        Ok(true) => axum::Json(serde_json::json!({ "status": "ready" })).into_response(),
        Ok(false) => unavailable("the database is not at this build's migrations"),
        Err(_) => unavailable("the database does not answer"),
    }
}

/// Prometheus text, to this machine only.
async fn metrics(
    State(app): State<App>,
    peer: Option<axum::Extension<ConnectInfo<std::net::SocketAddr>>>,
) -> Response {
    if !is_loopback(peer.as_ref().map(|p| &p.0)) {
        return error_response(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "metrics are served to this machine only",
        );
    }
    let sites = app.hub.store().sites().await.ok();
    let body = app.metrics.render(sites.as_deref(), chrono::Utc::now());
    (
        [(
            header::CONTENT_TYPE,
            healsync_graphql_http::metrics::CONTENT_TYPE,
        )],
        body,
    )
        .into_response()
}

/// A WebSocket's session ends when its token expires or the hub's session gate ends
/// it (the account disabled, changed or its password reset).
fn session_ends(hub: Hub, claims: healsync_auth::Claims) -> healsync_graphql_http::SessionEnds {
    Box::pin(async move {
        let expiry = healsync_graphql_http::expires(Some(claims.exp));
        tokio::select! {
            why = expiry => why,
            end = hub.accounts().ended(claims) => end.message().to_string(),
        }
    })
}
