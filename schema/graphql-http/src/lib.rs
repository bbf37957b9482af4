//! GraphQL over HTTP and WebSocket, as CONTRACT.md fixes it for both the node and the
//! hub, following the GraphQL-over-HTTP specification:
//!
//! - `POST /graphql` takes one operation per request as `application/json` (batches,
//!   other media types and bodies over [`MAX_BODY_BYTES`] are refused, so a web page
//!   cannot post a "simple" cross-site request). `GET /graphql?query=...` runs queries
//!   (never mutations). A client that accepts `application/graphql-response+json` gets
//!   that media type and 400 for requests that never ran (parse, validation, variables,
//!   cost); `application/json` gets 200 with the errors, as the specification says.
//! - Work is bounded: at most [`MAX_CONCURRENT`] operations execute at once (others
//!   wait up to [`QUEUE_WAIT`], then `RATE_LIMITED`), a query may run
//!   [`QUERY_TIME`], a mutation [`MUTATION_TIME`]; the cost of each is checked before
//!   it runs by `healsync-graphql-guard`, which the transport tells who is calling.
//! - `GET /graphql` with the `graphql-transport-ws` subprotocol serves subscriptions
//!   ([`ws`]): the session comes in `connection_init`'s `Authorization`, the `Origin`
//!   must be the server's own, and the protocol's close codes are used.
//! - `GET /graphiql` serves the embedded console (no CDN).
//! - [`security_headers`] sets the headers every page of both servers carries.
//!
//! Every failure a client can cause comes back as a GraphQL error whose
//! `extensions.code` is one of the contract's codes. A server plugs in by implementing
//! [`GraphqlApp`] and merging [`routes`] into its router.

pub mod metrics;
pub mod tls;
pub mod ws;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use async_graphql::parser::types::OperationType;
use async_graphql::{Data, Executor, Response as GqlResponse};
use axum::Router;
use axum::body::Bytes;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use healsync_graphql_guard::Caller;
use serde_json::json;
use tokio::sync::Semaphore;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Operations executing at once (a clinic box has two cores).
pub const MAX_CONCURRENT: usize = 8;
/// How long an operation waits for its turn before it is refused.
pub const QUEUE_WAIT: Duration = Duration::from_secs(2);
/// How long a query may run.
pub const QUERY_TIME: Duration = Duration::from_secs(2);
/// How long a mutation may run (writes queue behind one writer; a login waits for a
/// password check).
pub const MUTATION_TIME: Duration = Duration::from_secs(30);

/// The close code a WebSocket gets when its session expires (graphql-transport-ws's
/// "Unauthorized"); the reason says to log in again.
pub const SESSION_EXPIRED_CLOSE: u16 = 4401;

/// The media type of the GraphQL-over-HTTP specification.
pub const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

/// Who sent a request: the `Authorization` value and the peer's address.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    pub bearer: Option<&'a str>,
    pub peer: Option<IpAddr>,
}

/// What a request brings into the schema: its data, and whether it carries a valid
/// session (anonymous callers may run `login` and nothing else of cost).
pub struct Prepared {
    pub request: async_graphql::Request,
    pub signed_in: bool,
    /// Why the credentials the request carried were refused, if they were.
    pub refused: Option<String>,
}

/// What a WebSocket's `connection_init` opens: the connection's request data, and the
/// end of its session (it expires, or the account is disabled, changed or signed out),
/// at which the server closes the connection with [`SESSION_EXPIRED_CLOSE`] and the
/// reason the future gives.
pub struct Connected {
    pub data: Data,
    pub ends: SessionEnds,
}

/// Resolves, with the reason, when a WebSocket's session ends.
pub type SessionEnds = std::pin::Pin<Box<dyn std::future::Future<Output = String> + Send>>;

/// A session that ends when it expires at `exp` (unix seconds), or never (`None`).
pub fn expires(exp: Option<i64>) -> SessionEnds {
    Box::pin(async move {
        match exp {
            Some(exp) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
                let left = u64::try_from(exp.saturating_sub(now)).unwrap_or(0);
                tokio::time::sleep(std::time::Duration::from_secs(left)).await;
                "the session has expired; log in again".to_string()
            }
            None => std::future::pending().await,
        }
    })
}

/// The transport's own state: the bound on concurrent operations.
pub struct Transport {
    running: Semaphore,
}

impl Default for Transport {
    fn default() -> Self {
        Transport {
            running: Semaphore::new(MAX_CONCURRENT),
        }
    }
}

/// What a server provides to be served by [`routes`].
pub trait GraphqlApp: Clone + Send + Sync + 'static {
    type Schema: Executor + Clone;
    fn schema(&self) -> &Self::Schema;
    fn transport(&self) -> &Transport;
    /// Adds what resolvers need (the session, the peer, loaders) to an HTTP request.
    fn prepare(&self, request: async_graphql::Request, incoming: Incoming<'_>) -> Prepared;
    /// The data of a WebSocket connection whose `connection_init` carried `bearer`, and
    /// when its session ends, or the reason it is refused.
    fn connect(&self, incoming: Incoming<'_>) -> Result<Connected, String>;
    /// The transport's figures, registered in the server's `/metrics` registry.
    fn metrics(&self) -> &metrics::HttpMetrics;
}

/// `/graphql` (POST, GET and WebSocket) and `/graphiql`, for a router whose state is
/// `A`. Serve the router with `into_make_service_with_connect_info::<SocketAddr>()`
/// so requests know their peer.
pub fn routes<A: GraphqlApp>() -> Router<A> {
    Router::new()
        .route(
            "/graphql",
            get(graphql_get::<A>)
                .post(graphql_post::<A>)
                .options(preflight),
        )
        .route("/graphiql", get(console))
        .route("/graphiql/console.js", get(console_js))
        .route("/graphiql/console.css", get(console_css))
}

/// The content security policy of every page: nothing from elsewhere, no inline
/// script or style, no framing.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Middleware (for `axum::middleware::map_response`) that sets the security headers
/// on every response of a server.
pub async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    resp
}

/// Whether a peer is this machine (for `/metrics` and other operator-only pages).
pub fn is_loopback(peer: Option<&ConnectInfo<SocketAddr>>) -> bool {
    peer.is_some_and(|c| c.0.ip().is_loopback())
}

/// A GraphQL-shaped error response for failures outside the schema.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    (status, axum::Json(body)).into_response()
}

/// Gives every error a contract code: errors the schema raised itself (syntax,
/// validation, argument coercion) are the client's, so `BAD_USER_INPUT`.
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
        app.metrics().error(&code);
    }
    resp
}

/// A response whose operation never ran: no data, errors without a path.
fn is_request_error(resp: &GqlResponse) -> bool {
    resp.data == async_graphql::Value::Null
        && !resp.errors.is_empty()
        && resp.errors.iter().all(|e| e.path.is_empty())
}

fn refuse<A: GraphqlApp>(app: &A, status: StatusCode, code: &str, message: &str) -> Response {
    app.metrics().error(code);
    error_response(status, code, message)
}

/// Whether the client asked for the specification's media type (an `Accept` that
/// names it before, or without, `application/json`).
fn wants_graphql_response(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mut first = None;
    for part in accept.split(',') {
        let media = part.split(';').next().unwrap_or("").trim();
        if media == GRAPHQL_RESPONSE_JSON || media == "application/json" || media == "*/*" {
            first.get_or_insert(media == GRAPHQL_RESPONSE_JSON);
        }
    }
    first.unwrap_or(false)
}

fn acceptable(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    accept.split(',').any(|part| {
        let media = part.split(';').next().unwrap_or("").trim();
        matches!(
            media,
            GRAPHQL_RESPONSE_JSON | "application/json" | "application/*" | "*/*"
        )
    })
}

/// The 406 for a client that accepts none of the media types this server answers.
fn not_acceptable<A: GraphqlApp>(app: &A, headers: &HeaderMap) -> Option<Response> {
    (!acceptable(headers)).then(|| {
        refuse(
            app,
            StatusCode::NOT_ACCEPTABLE,
            "BAD_USER_INPUT",
            "this server answers application/graphql-response+json or application/json",
        )
    })
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

/// How a request came: GET runs queries only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Post,
}

/// Runs one operation within the transport's bounds and shapes the HTTP response.
///
/// The document is parsed once, under the bound on concurrent operations and on the
/// blocking pool: a large document takes a parser tens of milliseconds, and the async
/// workers (two on a clinic box) must stay free for everything else the server does
/// meanwhile — health checks, subscriptions, sync.
async fn run<A: GraphqlApp>(
    app: &A,
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    request: async_graphql::Request,
    method: Method,
) -> Response {
    let graphql_response = wants_graphql_response(headers);
    let permit = match tokio::time::timeout(QUEUE_WAIT, app.transport().running.acquire()).await {
        Ok(Ok(p)) => p,
        _ => {
            return refuse(
                app,
                StatusCode::SERVICE_UNAVAILABLE,
                "RATE_LIMITED",
                "the server is busy; try again in a moment",
            );
        }
    };
    let started = std::time::Instant::now();
    let parsed = tokio::task::spawn_blocking(move || {
        let mut request = request;
        let op = operation(&mut request);
        (request, op)
    })
    .await;
    let Ok((request, op)) = parsed else {
        return refuse(
            app,
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "internal error",
        );
    };
    let ty = op.as_ref().map(|(t, _)| *t);
    if method == Method::Get && ty.is_some_and(|t| t != OperationType::Query) {
        let mut resp = refuse(
            app,
            StatusCode::METHOD_NOT_ALLOWED,
            "BAD_USER_INPUT",
            "mutations and subscriptions are not run by GET: use POST (or the WebSocket)",
        );
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return resp;
    }
    let mutation = ty != Some(OperationType::Query);
    let Prepared {
        request,
        signed_in,
        refused,
    } = app.prepare(
        request,
        Incoming {
            bearer: bearer(headers),
            peer,
        },
    );
    let request = request.data(Caller { signed_in, refused });
    let limit = if mutation { MUTATION_TIME } else { QUERY_TIME };
    let resp = match tokio::time::timeout(limit, app.schema().execute(request)).await {
        Ok(r) => r,
        Err(_) => {
            drop(permit);
            return refuse(
                app,
                StatusCode::SERVICE_UNAVAILABLE,
                "RATE_LIMITED",
                &format!(
                    "the operation took longer than {} s and was stopped; ask for less",
                    limit.as_secs()
                ),
            );
        }
    };
    drop(permit);
    let resp = with_codes(resp, app);
    let request_error = is_request_error(&resp);
    // The root field labels the figure only once the schema has accepted the document,
    // so the label's values are the schema's fields, never a client's inventions.
    let field = op
        .as_ref()
        .and_then(|(_, f)| f.as_deref())
        .filter(|_| !request_error);
    app.metrics()
        .operation(kind_name(ty), field, started.elapsed());
    let mut body = match serde_json::to_value(&resp) {
        Ok(v) => v,
        Err(_) => {
            return refuse(
                app,
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "internal error",
            );
        }
    };
    if request_error && let Some(o) = body.as_object_mut() {
        // The operation never ran: the response has no `data` entry.
        o.remove("data");
    }
    let (status, media) = if graphql_response {
        let status = if request_error {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        };
        (status, GRAPHQL_RESPONSE_JSON)
    } else {
        (StatusCode::OK, "application/json")
    };
    let mut out = (status, axum::Json(body)).into_response();
    out.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    out
}

/// The operation a request would run and its first root field (unvalidated), if they
/// can be told without executing it. The document is parsed once and kept in the
/// request, which the guard and async-graphql then use.
fn operation(request: &mut async_graphql::Request) -> Option<(OperationType, Option<String>)> {
    use async_graphql::parser::types::Selection;
    let name = request.operation_name.clone();
    let doc = request.parsed_query().ok()?;
    let mut ops = doc.operations.iter();
    let op = match name.as_deref() {
        Some(name) => ops
            .find(|(n, _)| n.map(|n| n.as_str()) == Some(name))
            .map(|(_, op)| op),
        None => ops.next().map(|(_, op)| op),
    }?;
    let field = op
        .node
        .selection_set
        .node
        .items
        .first()
        .map(|s| match &s.node {
            Selection::Field(f) => f.node.name.node.to_string(),
            Selection::FragmentSpread(_) | Selection::InlineFragment(_) => "(fragment)".into(),
        });
    Some((op.node.ty, field))
}

fn kind_name(ty: Option<OperationType>) -> &'static str {
    match ty {
        Some(OperationType::Query) | None => "query",
        Some(OperationType::Mutation) => "mutation",
        Some(OperationType::Subscription) => "subscription",
    }
}

async fn graphql_post<A: GraphqlApp>(
    State(app): State<A>,
    peer: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    app.metrics().request();
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    if !matches!(
        media.as_deref(),
        Some("application/json" | GRAPHQL_RESPONSE_JSON)
    ) {
        return refuse(
            &app,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "BAD_USER_INPUT",
            "send the request as Content-Type: application/json",
        );
    }
    if let Some(refused) = not_acceptable(&app, &headers) {
        return refused;
    }
    let body = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return refuse(
                &app,
                StatusCode::PAYLOAD_TOO_LARGE,
                "BAD_USER_INPUT",
                &format!("request body larger than {MAX_BODY_BYTES} bytes"),
            );
        }
        Err(_) => {
            return refuse(
                &app,
                StatusCode::BAD_REQUEST,
                "BAD_USER_INPUT",
                "unreadable request body",
            );
        }
    };
    let value: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return refuse(
                &app,
                StatusCode::BAD_REQUEST,
                "BAD_USER_INPUT",
                &format!("malformed JSON: {e}"),
            );
        }
    };
    if value.is_array() {
        return refuse(
            &app,
            StatusCode::BAD_REQUEST,
            "BAD_USER_INPUT",
            "batched requests are not accepted: send one operation per request",
        );
    }
    if !value.get("query").is_some_and(serde_json::Value::is_string) {
        return refuse(
            &app,
            StatusCode::BAD_REQUEST,
            "BAD_USER_INPUT",
            "a GraphQL request is a JSON object with a `query` string",
        );
    }
    let request: async_graphql::Request = match serde_json::from_value(value) {
        Ok(r) => r,
        Err(e) => {
            return refuse(
                &app,
                StatusCode::BAD_REQUEST,
                "BAD_USER_INPUT",
                &format!("not a GraphQL request: {e}"),
            );
        }
    };
    let peer = peer.map(|p| p.0.0.ip());
    run(&app, &headers, peer, request, Method::Post).await
}

/// The parameters of a GraphQL GET request.
#[derive(serde::Deserialize)]
struct GetParams {
    query: Option<String>,
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
    variables: Option<String>,
    extensions: Option<String>,
}

async fn graphql_get<A: GraphqlApp>(
    State(app): State<A>,
    peer: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    params: Result<Query<GetParams>, axum::extract::rejection::QueryRejection>,
    upgrade: Result<ws::Upgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    if let Ok(upgrade) = upgrade {
        return ws::upgrade(app, headers, peer.map(|p| p.0.0.ip()), upgrade);
    }
    let params = match params {
        Ok(Query(p)) => p,
        Err(_) => {
            return refuse(
                &app,
                StatusCode::BAD_REQUEST,
                "BAD_USER_INPUT",
                "unreadable query string",
            );
        }
    };
    let Some(query) = params.query else {
        // A person opening the address in a browser is shown the console.
        let html = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"));
        if html {
            return Redirect::temporary("/graphiql").into_response();
        }
        return refuse(
            &app,
            StatusCode::BAD_REQUEST,
            "BAD_USER_INPUT",
            "a GET request needs a `query` parameter",
        );
    };
    app.metrics().request();
    if let Some(refused) = not_acceptable(&app, &headers) {
        return refused;
    }
    let parse_json = |what: &str, s: Option<String>| -> Result<Option<serde_json::Value>, String> {
        s.filter(|s| !s.is_empty())
            .map(|s| serde_json::from_str(&s).map_err(|e| format!("{what} is not JSON: {e}")))
            .transpose()
    };
    let variables = match parse_json("variables", params.variables) {
        Ok(v) => v,
        Err(m) => return refuse(&app, StatusCode::BAD_REQUEST, "BAD_USER_INPUT", &m),
    };
    if let Err(m) = parse_json("extensions", params.extensions) {
        return refuse(&app, StatusCode::BAD_REQUEST, "BAD_USER_INPUT", &m);
    }
    let mut request = async_graphql::Request::new(query);
    if let Some(name) = params.operation_name {
        request = request.operation_name(name);
    }
    if let Some(v) = variables {
        request = request.variables(async_graphql::Variables::from_json(v));
    }
    let peer = peer.map(|p| p.0.0.ip());
    run(&app, &headers, peer, request, Method::Get).await
}

/// Answers CORS preflights with no permission: the API is same-origin only.
async fn preflight() -> Response {
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
    resp
}

async fn console() -> Response {
    Html(include_str!("../console.html")).into_response()
}

fn asset(media: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, media),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

async fn console_js() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../console.js"),
    )
}

async fn console_css() -> Response {
    asset("text/css; charset=utf-8", include_str!("../console.css"))
}
