//! Subscriptions over WebSocket with the `graphql-transport-ws` protocol (graphql-ws),
//! with the protocol's close codes:
//!
//! | code | when |
//! |---|---|
//! | 4400 | a message that is not JSON or not of the protocol |
//! | 4401 | `subscribe` before the connection is acknowledged |
//! | 4403 | `connection_init` whose session is refused |
//! | 4406 | the client did not offer the `graphql-transport-ws` subprotocol |
//! | 4408 | no `connection_init` within [`INIT_TIMEOUT`] |
//! | 4409 | a second subscription with an id that is in use |
//! | 4429 | a second `connection_init` |
//!
//! A browser's WebSocket must come from the server's own origin (a page elsewhere
//! cannot open one with a staff member's browser). A query that cannot run comes back
//! as an `error` message with `extensions.code`; a connection lives no longer than the
//! session that opened it ([`super::SESSION_EXPIRED_CLOSE`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::{Data, Executor};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use healsync_graphql_guard::Caller;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::{
    GraphqlApp, Incoming, SESSION_EXPIRED_CLOSE, error_response, is_request_error, with_codes,
};

pub type Upgrade = WebSocketUpgrade;

/// The subprotocol served.
pub const PROTOCOL: &str = "graphql-transport-ws";
/// How long a new connection may wait before `connection_init`.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(5);
/// Subscriptions one connection may hold at once.
pub const MAX_SUBSCRIPTIONS: usize = 50;

/// Whether a browser's `Origin` is the server's own (`Host`). Clients that are not
/// browsers send no `Origin`.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let (Ok(origin), Some(Ok(host))) = (
        origin.to_str(),
        headers.get(header::HOST).map(|h| h.to_str()),
    ) else {
        return false;
    };
    let origin = origin.trim_end_matches('/');
    origin == format!("http://{host}") || origin == format!("https://{host}")
}

pub(crate) fn upgrade<A: GraphqlApp>(
    app: A,
    headers: HeaderMap,
    peer: Option<IpAddr>,
    upgrade: WebSocketUpgrade,
) -> Response {
    if !same_origin(&headers) {
        app.metrics().error("FORBIDDEN");
        return error_response(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "WebSockets are accepted from this server's own pages only",
        );
    }
    upgrade
        .protocols([PROTOCOL])
        .on_upgrade(move |socket| async move {
            app.metrics().websocket(true);
            serve(app.clone(), socket, peer).await;
            app.metrics().websocket(false);
        })
        .into_response()
}

/// A close frame; its reason is cut to the 123 bytes a frame may carry.
fn close(code: u16, reason: &str) -> Message {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Message::Close(Some(CloseFrame {
        code,
        reason: reason[..end].to_string().into(),
    }))
}

fn text(v: Value) -> Message {
    Message::Text(v.to_string().into())
}

/// A client message, or why it is not one.
enum ClientMessage {
    Init(Value),
    Subscribe(String, Value),
    Complete(String),
    Ping,
    Pong,
    Bad(String),
    Closed,
}

fn read(msg: Option<Result<Message, axum::Error>>) -> Option<ClientMessage> {
    let text = match msg {
        None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return Some(ClientMessage::Closed),
        Some(Ok(Message::Text(t))) => t,
        Some(Ok(Message::Ping(_) | Message::Pong(_))) => return None,
        Some(Ok(Message::Binary(_))) => {
            return Some(ClientMessage::Bad(
                "binary messages are not of the protocol".into(),
            ));
        }
    };
    let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else {
        return Some(ClientMessage::Bad("the message is not JSON".into()));
    };
    let id = v.get("id").and_then(Value::as_str).map(str::to_string);
    let payload = v.get("payload").cloned().unwrap_or(Value::Null);
    Some(match (v.get("type").and_then(Value::as_str), id) {
        (Some("connection_init"), _) => ClientMessage::Init(payload),
        (Some("subscribe"), Some(id)) if payload.is_object() => {
            ClientMessage::Subscribe(id, payload)
        }
        (Some("complete"), Some(id)) => ClientMessage::Complete(id),
        (Some("ping"), _) => ClientMessage::Ping,
        (Some("pong"), _) => ClientMessage::Pong,
        (Some(t), _) => ClientMessage::Bad(format!("invalid message of type {t:?}")),
        (None, _) => ClientMessage::Bad("the message has no type".into()),
    })
}

/// What subscription tasks hand to the connection.
enum Out {
    Send(Message),
    Done(String),
}

async fn serve<A: GraphqlApp>(app: A, mut socket: WebSocket, peer: Option<IpAddr>) {
    if socket.protocol().is_none() {
        let _ = socket.send(close(4406, "Subprotocol not acceptable")).await;
        return;
    }
    let (mut to_client, mut from_client) = socket.split();
    // Before the connection is acknowledged: connection_init within the time, pings.
    let (data, ends) = {
        let deadline = tokio::time::Instant::now() + INIT_TIMEOUT;
        loop {
            let msg = match tokio::time::timeout_at(deadline, from_client.next()).await {
                Err(_) => {
                    let _ = to_client
                        .send(close(4408, "Connection initialisation timeout"))
                        .await;
                    return;
                }
                Ok(m) => m,
            };
            match read(msg) {
                None | Some(ClientMessage::Pong) => {}
                Some(ClientMessage::Closed) => return,
                Some(ClientMessage::Ping) => {
                    let _ = to_client.send(text(json!({"type": "pong"}))).await;
                }
                Some(ClientMessage::Subscribe(..)) => {
                    let _ = to_client.send(close(4401, "Unauthorized")).await;
                    return;
                }
                Some(ClientMessage::Complete(_)) => {}
                Some(ClientMessage::Bad(why)) => {
                    let _ = to_client.send(close(4400, &why)).await;
                    return;
                }
                Some(ClientMessage::Init(payload)) => {
                    let bearer = payload
                        .get("Authorization")
                        .or_else(|| payload.get("authorization"))
                        .and_then(Value::as_str);
                    match app.connect(Incoming { bearer, peer }) {
                        Ok(c) => {
                            let mut data = c.data;
                            data.insert(Caller {
                                signed_in: true,
                                refused: None,
                            });
                            break (Arc::new(data), c.ends);
                        }
                        Err(why) => {
                            app.metrics().error("UNAUTHENTICATED");
                            let _ = to_client
                                .send(close(4403, &format!("Forbidden: {why}")))
                                .await;
                            return;
                        }
                    }
                }
            }
        }
    };
    if to_client
        .send(text(json!({"type": "connection_ack"})))
        .await
        .is_err()
    {
        return;
    }

    let (out_tx, mut out_rx) = mpsc::channel::<Out>(64);
    let mut running: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    let mut expiry = ends;
    let ending: Option<Message> = loop {
        tokio::select! {
            why = &mut expiry => {
                break Some(close(SESSION_EXPIRED_CLOSE, &why));
            }
            out = out_rx.recv() => match out {
                Some(Out::Send(m)) => {
                    if to_client.send(m).await.is_err() {
                        break None;
                    }
                }
                Some(Out::Done(id)) => {
                    running.remove(&id);
                }
                None => break None,
            },
            msg = from_client.next() => match read(msg) {
                None | Some(ClientMessage::Pong) => {}
                Some(ClientMessage::Closed) => break None,
                Some(ClientMessage::Ping) => {
                    if to_client.send(text(json!({"type": "pong"}))).await.is_err() {
                        break None;
                    }
                }
                Some(ClientMessage::Bad(why)) => break Some(close(4400, &why)),
                Some(ClientMessage::Init(_)) => {
                    break Some(close(4429, "Too many initialisation requests"));
                }
                Some(ClientMessage::Complete(id)) => {
                    if let Some(task) = running.remove(&id) {
                        task.abort();
                    }
                }
                Some(ClientMessage::Subscribe(id, payload)) => {
                    if running.contains_key(&id) {
                        break Some(close(4409, &format!("Subscriber for {id} already exists")));
                    }
                    let request: async_graphql::Request = match serde_json::from_value(payload) {
                        Ok(r) => r,
                        Err(e) => break Some(close(4400, &format!("invalid subscribe payload: {e}"))),
                    };
                    if running.len() >= MAX_SUBSCRIPTIONS {
                        app.metrics().error("RATE_LIMITED");
                        let msg = json!({"id": id, "type": "error", "payload": [{
                            "message": format!("at most {MAX_SUBSCRIPTIONS} subscriptions per connection"),
                            "extensions": {"code": "RATE_LIMITED"}
                        }]});
                        if to_client.send(text(msg)).await.is_err() {
                            break None;
                        }
                        continue;
                    }
                    let task = tokio::spawn(subscription(app.clone(), id.clone(), request, data.clone(), out_tx.clone()));
                    running.insert(id, task);
                }
            },
        }
    };
    for (_, task) in running.drain() {
        task.abort();
    }
    if let Some(m) = ending {
        let _ = to_client.send(m).await;
    }
}

/// Runs one subscription, handing its messages to the connection.
async fn subscription<A: GraphqlApp>(
    app: A,
    id: String,
    request: async_graphql::Request,
    data: Arc<Data>,
    out: mpsc::Sender<Out>,
) {
    let _running = app.metrics().subscription();
    let mut stream = app.schema().execute_stream(request, Some(data));
    let mut first = true;
    while let Some(resp) = stream.next().await {
        let resp = with_codes(resp, &app);
        let msg = if first && is_request_error(&resp) {
            let errors = serde_json::to_value(&resp.errors).unwrap_or(Value::Null);
            let _ = out
                .send(Out::Send(text(
                    json!({"id": id, "type": "error", "payload": errors}),
                )))
                .await;
            let _ = out.send(Out::Done(id)).await;
            return;
        } else {
            let payload = serde_json::to_value(&resp).unwrap_or(Value::Null);
            json!({"id": id, "type": "next", "payload": payload})
        };
        first = false;
        if out.send(Out::Send(text(msg))).await.is_err() {
            return;
        }
    }
    let _ = out
        .send(Out::Send(text(json!({"id": id, "type": "complete"}))))
        .await;
    let _ = out.send(Out::Done(id)).await;
}
