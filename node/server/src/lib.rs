//! The clinic node's HTTP side: the only crate of the node that knows axum.
//!
//! Routes (one port): `POST /graphql` (GraphQL over HTTP, one operation per request,
//! batches refused), `GET /graphql` with the `graphql-transport-ws` subprotocol
//! (subscriptions, authenticated in `connection_init`), `GET /graphiql` (a GraphQL
//! console whose assets are embedded: it works with no internet), `GET /` and
//! `GET /assets/*` (the clinic web app, embedded: see `web`), `GET /healthz` (alive),
//! `GET /readyz` (the database answers and is migrated),
//! `GET /metrics` (Prometheus text, to loopback only). Every response carries the
//! security headers of `healsync-graphql-http`. Every failure a client can cause comes
//! back as a GraphQL error with `extensions.code`, never as a bare 500.

mod metrics;
mod web;

use std::future::Future;
use std::sync::Arc;

use async_graphql::Data;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use healsync_graphql_http::{
    Connected, GraphqlApp, Incoming, Prepared, Transport, error_response, is_loopback, routes,
    security_headers,
};
use healsync_node_api::graphql::{authenticate_until, new_loaders, request_data};
use healsync_node_api::session::Auth;
use healsync_node_api::{Node, NodeSchema, build_schema};
use serde_json::json;
use tokio::net::TcpListener;

pub use healsync_graphql_http::MAX_BODY_BYTES;
pub use healsync_graphql_http::tls;
pub use metrics::Metrics;

#[derive(Clone)]
struct App {
    node: Node,
    schema: NodeSchema,
    metrics: Arc<Metrics>,
    transport: Arc<Transport>,
}

impl GraphqlApp for App {
    type Schema = NodeSchema;

    fn schema(&self) -> &NodeSchema {
        &self.schema
    }

    fn transport(&self) -> &Transport {
        &self.transport
    }

    fn prepare(&self, request: async_graphql::Request, incoming: Incoming<'_>) -> Prepared {
        let (auth, loaders) = request_data(&self.node, incoming.bearer, incoming.peer);
        let signed_in = matches!(auth, Auth::Session(_));
        let refused = match &auth {
            Auth::Invalid(why) => Some(why.clone()),
            _ => None,
        };
        let mut request = request.data(auth).data(loaders);
        if let Some(ip) = incoming.peer {
            request = request.data(healsync_node_api::Peer(ip));
        }
        Prepared {
            request,
            signed_in,
            refused,
        }
    }

    fn connect(&self, incoming: Incoming<'_>) -> Result<Connected, String> {
        match authenticate_until(&self.node, incoming.bearer, incoming.peer) {
            (auth @ Auth::Session(_), Some(claims)) => {
                let mut data = Data::default();
                data.insert(auth);
                data.insert(new_loaders(&self.node));
                Ok(Connected {
                    data,
                    ends: session_ends(self.node.clone(), claims),
                })
            }
            (Auth::Session(_), None) => Err("the session could not be opened".into()),
            (Auth::Invalid(why), _) => Err(why),
            (Auth::Anonymous, _) => {
                Err("send {\"Authorization\": \"Bearer <token>\"} in connection_init".into())
            }
        }
    }

    fn metrics(&self) -> &healsync_graphql_http::metrics::HttpMetrics {
        &self.metrics.http
    }
}

/// A WebSocket's session ends when its token expires or the session gate ends it (the
/// account disabled, moved, changed or its password reset).
fn session_ends(
    node: Node,
    claims: healsync_node_api::Claims,
) -> healsync_graphql_http::SessionEnds {
    Box::pin(async move {
        let expiry = healsync_graphql_http::expires(Some(claims.exp));
        tokio::select! {
            why = expiry => why,
            end = node.accounts().ended(claims) => end.message().to_string(),
        }
    })
}

/// The node's router, ready to serve.
pub fn router(node: Node) -> Router {
    let app = App {
        schema: build_schema(node.clone()),
        node,
        metrics: Arc::new(Metrics::default()),
        transport: Arc::default(),
    };
    routes::<App>()
        .route("/", get(web::index))
        .route("/assets/{name}", get(web::asset))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::map_response(security_headers))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response,
        ))
        .with_state(app)
}

/// Serves until `shutdown` resolves, then finishes in-flight requests and returns.
pub async fn serve(
    listener: TcpListener,
    node: Node,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(node).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// [`serve`] over TLS (HTTPS, and WSS for subscriptions).
pub async fn serve_tls(
    listener: TcpListener,
    node: Node,
    config: std::sync::Arc<healsync_graphql_http::tls::ServerConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    healsync_graphql_http::tls::serve_tls(listener, router(node), config, shutdown).await
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "INTERNAL",
        "internal error",
    )
}

/// Alive: the process answers (a supervisor restarts it when this stops answering).
async fn healthz(State(app): State<App>) -> Response {
    let id = app.node.store().identity();
    Json(json!({ "status": "ok", "site": id.site.to_string(), "nodeId": id.node_id.to_string() }))
        .into_response()
}

/// Ready: the database answers a read through the same pool as requests do, and is at
/// the schema this build migrates to.
async fn readyz(State(app): State<App>) -> Response {
    match app.node.read(healsync_store::schema_version).await {
        Ok(Some(version)) => Json(json!({ "status": "ready", "schemaVersion": version })).into_response(),
        Ok(None) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "reason": "the database is not at this build's schema" })),
        )
            .into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "reason": "the database does not answer" })),
        )
            .into_response(),
    }
}

/// Prometheus text, for the machine itself only (a monitoring agent on the clinic box,
/// or a tunnel to it): the figures say how busy the clinic is.
async fn metrics_text(
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
    let store = app.node.store().clone();
    let read = tokio::task::spawn_blocking(move || {
        Ok::<_, healsync_store::StoreError>((store.stats()?, store.status()?))
    })
    .await;
    let read = match read {
        Ok(Ok(s)) => Some(s),
        _ => None,
    };
    let body = app.metrics.render(
        read.as_ref().map(|(stats, status)| (stats, status)),
        app.node.last_sync_round().as_ref(),
        app.node.now(),
    );
    (
        [(
            header::CONTENT_TYPE,
            healsync_graphql_http::metrics::CONTENT_TYPE,
        )],
        body,
    )
        .into_response()
}
