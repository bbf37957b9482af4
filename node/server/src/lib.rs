//! The clinic node's HTTP side: the only crate of the node that knows axum.
//!
//! Routes (one port): `POST /graphql` (GraphQL over HTTP, one operation per request,
//! batches refused), `GET /graphql` with the `graphql-transport-ws` subprotocol
//! (subscriptions, authenticated in `connection_init`), `GET /graphiql` (a GraphQL
//! console whose assets are embedded: it works with no internet), `GET /` (start page),
//! `GET /healthz`, `GET /metrics` (Prometheus text). Every failure a client can cause
//! comes back as a GraphQL error with `extensions.code`, never as a bare 500.

mod metrics;

use std::future::Future;
use std::sync::Arc;

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::{Data, Response as GqlResponse};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::body::Bytes;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use healsync_node_api::graphql::{authenticate, new_loaders, request_data};
use healsync_node_api::session::Auth;
use healsync_node_api::{Node, NodeSchema, build_schema};
use serde_json::json;
use tokio::net::TcpListener;

pub use metrics::Metrics;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Clone)]
struct App {
    node: Node,
    schema: NodeSchema,
    metrics: Arc<Metrics>,
}

/// The node's router, ready to serve.
pub fn router(node: Node) -> Router {
    let app = App {
        schema: build_schema(node.clone()),
        node,
        metrics: Arc::new(Metrics::default()),
    };
    Router::new()
        .route("/graphql", get(graphql_ws).post(graphql_post))
        .route("/graphiql", get(console))
        .route("/", get(start_page))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
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
    axum::serve(listener, router(node))
        .with_graceful_shutdown(shutdown)
        .await
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "INTERNAL",
        "internal error",
    )
}

fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let body =
        json!({ "data": null, "errors": [{ "message": message, "extensions": { "code": code } }] });
    (status, Json(body)).into_response()
}

/// Gives every error a contract code: errors the schema raised itself (syntax,
/// validation, limits, argument coercion) are the client's, so `BAD_USER_INPUT`.
fn with_codes(mut resp: GqlResponse, metrics: &Metrics) -> GqlResponse {
    for e in &mut resp.errors {
        let code = match e.extensions.as_ref().and_then(|x| x.get("code")) {
            Some(async_graphql::Value::String(c)) => c.clone(),
            _ => {
                e.extensions
                    .get_or_insert_with(Default::default)
                    .set("code", "BAD_USER_INPUT");
                "BAD_USER_INPUT".to_string()
            }
        };
        metrics.graphql_error(&code);
    }
    resp
}

async fn graphql_post(
    State(app): State<App>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    app.metrics.graphql_request();
    let body = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            app.metrics.graphql_error("BAD_USER_INPUT");
            return error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                "BAD_USER_INPUT",
                &format!("request body larger than {MAX_BODY_BYTES} bytes"),
            );
        }
        Err(_) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "BAD_USER_INPUT",
                "unreadable request body",
            );
        }
    };
    let value: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            app.metrics.graphql_error("BAD_USER_INPUT");
            return error_response(
                StatusCode::BAD_REQUEST,
                "BAD_USER_INPUT",
                &format!("malformed JSON: {e}"),
            );
        }
    };
    if value.is_array() {
        app.metrics.graphql_error("BAD_USER_INPUT");
        return error_response(
            StatusCode::BAD_REQUEST,
            "BAD_USER_INPUT",
            "batched requests are not accepted: send one operation per request",
        );
    }
    let request: async_graphql::Request = match serde_json::from_value(value) {
        Ok(r) => r,
        Err(e) => {
            app.metrics.graphql_error("BAD_USER_INPUT");
            return error_response(
                StatusCode::BAD_REQUEST,
                "BAD_USER_INPUT",
                &format!("not a GraphQL request: {e}"),
            );
        }
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let (auth, loaders) = request_data(&app.node, bearer);
    let resp = app.schema.execute(request.data(auth).data(loaders)).await;
    Json(with_codes(resp, &app.metrics)).into_response()
}

async fn graphql_ws(
    State(app): State<App>,
    protocol: Result<GraphQLProtocol, StatusCode>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let (Ok(protocol), Ok(upgrade)) = (protocol, upgrade) else {
        return Redirect::temporary("/graphiql").into_response();
    };
    let node = app.node.clone();
    let metrics = app.metrics.clone();
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| async move {
            let _open = metrics.websocket_opened();
            GraphQLWebSocket::new(socket, app.schema.clone(), protocol)
                .on_connection_init(move |payload| async move {
                    let header = payload
                        .get("Authorization")
                        .or_else(|| payload.get("authorization"))
                        .and_then(|v| v.as_str());
                    match authenticate(&node, header) {
                        auth @ Auth::Session(_) => {
                            let mut data = Data::default();
                            data.insert(auth);
                            data.insert(new_loaders(&node));
                            Ok(data)
                        }
                        Auth::Invalid(why) => Err(async_graphql::Error::new(why)),
                        Auth::Anonymous => Err(async_graphql::Error::new(
                            "send {\"Authorization\": \"Bearer <token>\"} in connection_init",
                        )),
                    }
                })
                .serve()
                .await;
        })
}

async fn console() -> Response {
    let mut resp = Html(include_str!("../assets/console.html")).into_response();
    resp.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
        ),
    );
    resp
}

async fn start_page(State(app): State<App>) -> Response {
    let site = app.node.store().identity().site.to_string();
    Html(include_str!("../assets/start.html").replace("{{SITE}}", &site)).into_response()
}

async fn healthz(State(app): State<App>) -> Response {
    let node = app.node.clone();
    match node.read(healsync_store::queries::count_users).await {
        Ok(_) => {
            let id = app.node.store().identity();
            Json(json!({ "status": "ok", "site": id.site.to_string(), "nodeId": id.node_id.to_string() }))
                .into_response()
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable" })),
        )
            .into_response(),
    }
}

async fn metrics_text(State(app): State<App>) -> Response {
    let store = app.node.store().clone();
    let stats = tokio::task::spawn_blocking(move || store.stats()).await;
    let stats = match stats {
        Ok(Ok(s)) => Some(s),
        _ => None,
    };
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(stats.as_ref()),
    )
        .into_response()
}
