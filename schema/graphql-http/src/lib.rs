//! GraphQL over HTTP and WebSocket, as CONTRACT.md fixes it for both the node and the
//! hub: `POST /graphql` takes one operation per request (batches refused, bodies over
//! [`MAX_BODY_BYTES`] refused), `GET /graphql` upgrades to `graphql-transport-ws` with
//! the session in `connection_init`'s `Authorization`, `GET /graphiql` serves the
//! embedded console (no CDN). Every failure a client can cause comes back as a GraphQL
//! error whose `extensions.code` is one of the contract's codes.
//!
//! A server plugs in by implementing [`GraphqlApp`] (its schema, how a bearer token
//! becomes request data, and optional counters) and merging [`routes`] into its router.
//! A WebSocket lives no longer than the session that opened it.

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::{Data, Executor, Response as GqlResponse};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use serde_json::json;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The close code a WebSocket gets when its session expires (graphql-transport-ws's
/// "Unauthorized"); the reason says to log in again.
pub const SESSION_EXPIRED_CLOSE: u16 = 4401;

/// What a WebSocket's `connection_init` opens: the connection's request data, and when
/// its session ends (unix seconds), at which the server closes the connection.
pub struct Connected {
    pub data: Data,
    pub expires_at: Option<i64>,
}

/// What a server provides to be served by [`routes`].
pub trait GraphqlApp: Clone + Send + Sync + 'static {
    type Schema: Executor + Clone;
    fn schema(&self) -> &Self::Schema;
    /// Adds what resolvers need (the session from `bearer`, loaders) to an HTTP request.
    fn prepare(
        &self,
        request: async_graphql::Request,
        bearer: Option<&str>,
    ) -> async_graphql::Request;
    /// The data of a WebSocket connection whose `connection_init` carried `bearer`, and
    /// when its session ends, or the reason it is refused.
    fn connect(&self, bearer: Option<&str>) -> Result<Connected, String>;
    /// Counts a GraphQL request over HTTP.
    fn count_request(&self) {}
    /// Counts an error by its contract code.
    fn count_error(&self, _code: &str) {}
    /// A WebSocket opened (`true`) or closed (`false`).
    fn count_websocket(&self, _open: bool) {}
}

/// `/graphql` (POST and WebSocket) and `/graphiql`, for a router whose state is `A`.
pub fn routes<A: GraphqlApp>() -> Router<A> {
    Router::new()
        .route("/graphql", get(graphql_ws::<A>).post(graphql_post::<A>))
        .route("/graphiql", get(console))
}

/// A GraphQL-shaped error response for failures outside the schema.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let body =
        json!({ "data": null, "errors": [{ "message": message, "extensions": { "code": code } }] });
    (status, axum::Json(body)).into_response()
}

/// Gives every error a contract code: errors the schema raised itself (syntax,
/// validation, limits, argument coercion) are the client's, so `BAD_USER_INPUT`.
fn with_codes<A: GraphqlApp>(mut resp: GqlResponse, app: &A) -> GqlResponse {
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
        app.count_error(&code);
    }
    resp
}

fn refuse<A: GraphqlApp>(app: &A, status: StatusCode, message: &str) -> Response {
    app.count_error("BAD_USER_INPUT");
    error_response(status, "BAD_USER_INPUT", message)
}

async fn graphql_post<A: GraphqlApp>(
    State(app): State<A>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    app.count_request();
    let body = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return refuse(
                &app,
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("request body larger than {MAX_BODY_BYTES} bytes"),
            );
        }
        Err(_) => return refuse(&app, StatusCode::BAD_REQUEST, "unreadable request body"),
    };
    let value: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return refuse(
                &app,
                StatusCode::BAD_REQUEST,
                &format!("malformed JSON: {e}"),
            );
        }
    };
    if value.is_array() {
        return refuse(
            &app,
            StatusCode::BAD_REQUEST,
            "batched requests are not accepted: send one operation per request",
        );
    }
    let request: async_graphql::Request = match serde_json::from_value(value) {
        Ok(r) => r,
        Err(e) => {
            return refuse(
                &app,
                StatusCode::BAD_REQUEST,
                &format!("not a GraphQL request: {e}"),
            );
        }
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let request = app.prepare(request, bearer);
    let resp = app.schema().execute(request).await;
    axum::Json(with_codes(resp, &app)).into_response()
}

async fn graphql_ws<A: GraphqlApp>(
    State(app): State<A>,
    protocol: Result<GraphQLProtocol, StatusCode>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let (Ok(protocol), Ok(upgrade)) = (protocol, upgrade) else {
        return Redirect::temporary("/graphiql").into_response();
    };
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| async move {
            app.count_websocket(true);
            serve_ws(app.clone(), socket, protocol).await;
            app.count_websocket(false);
        })
}

/// Serves one WebSocket until the client leaves or its session expires; at expiry the
/// subscriptions stop and the connection closes with [`SESSION_EXPIRED_CLOSE`], so a
/// screen left open never outlives the login that opened it.
async fn serve_ws<A: GraphqlApp>(app: A, socket: WebSocket, protocol: GraphQLProtocol) {
    use futures_util::{SinkExt, StreamExt};
    let (mut to_client, from_client) = socket.split();
    // Outgoing messages pass through a channel, so the socket is still ours to close
    // when the session ends.
    let (out_tx, mut out_rx) = tokio::sync::mpsc::channel::<Message>(16);
    let sink = futures_util::sink::unfold(out_tx, |tx, msg: Message| async move {
        tx.send(msg).await.map(|()| tx)
    });
    let (until_tx, mut until_rx) = tokio::sync::watch::channel(None::<i64>);
    let init_app = app.clone();
    let serve = GraphQLWebSocket::new_with_pair(sink, from_client, app.schema().clone(), protocol)
        .on_connection_init(move |payload| async move {
            let header = payload
                .get("Authorization")
                .or_else(|| payload.get("authorization"))
                .and_then(|v| v.as_str());
            let connected = init_app
                .connect(header)
                .map_err(async_graphql::Error::new)?;
            until_tx.send_replace(connected.expires_at);
            Ok(connected.data)
        })
        .serve();
    let expired = {
        let forward = async {
            while let Some(m) = out_rx.recv().await {
                if to_client.send(m).await.is_err() {
                    break;
                }
            }
        };
        let expiry = async {
            loop {
                let until = *until_rx.borrow_and_update();
                if let Some(exp) = until {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
                    let left = u64::try_from(exp.saturating_sub(now)).unwrap_or(0);
                    tokio::time::sleep(std::time::Duration::from_secs(left)).await;
                    return;
                }
                if until_rx.changed().await.is_err() {
                    // The connection ended before it was initialised.
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            _ = async { tokio::join!(serve, forward) } => false,
            () = expiry => true,
        }
    };
    if expired {
        let _ = to_client
            .send(Message::Close(Some(CloseFrame {
                code: SESSION_EXPIRED_CLOSE,
                reason: "the session has expired; log in again".into(),
            })))
            .await;
    }
}

async fn console() -> Response {
    let mut resp = Html(include_str!("../console.html")).into_response();
    resp.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
        ),
    );
    resp
}
