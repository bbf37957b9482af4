//! Test support for HealSync: a GraphQL-over-HTTP client, a `graphql-transport-ws`
//! client built on tokio-tungstenite, and control of real `healsync-node` processes
//! (start on a free port, SIGKILL, SIGTERM), and the seed's schema to check servers
//! against. Used by the integration tests and the benchmarks; never by the product.

pub mod contract;
pub mod flaky;
pub mod seed;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// The password the tests give the first administrator.
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

/// A GraphQL client for one node, optionally logged in.
#[derive(Clone)]
pub struct Gql {
    http: reqwest::Client,
    pub base: String,
    pub token: Option<String>,
}

/// An HTTP answer: status and JSON body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    /// The `data` of a successful answer; fails with the errors otherwise.
    pub fn data(&self) -> Result<&Value> {
        if let Some(errors) = self.body.get("errors") {
            bail!("GraphQL errors (HTTP {}): {errors}", self.status);
        }
        self.body
            .get("data")
            .ok_or_else(|| anyhow!("no data in {}", self.body))
    }

    /// The `extensions.code` of the first error, if any.
    pub fn code(&self) -> Option<&str> {
        self.body["errors"][0]["extensions"]["code"].as_str()
    }

    /// Every error code of the answer.
    pub fn codes(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|errs| {
                errs.iter()
                    .map(|e| {
                        e["extensions"]["code"]
                            .as_str()
                            .unwrap_or("<none>")
                            .to_string()
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Gql {
    pub fn new(base: &str) -> Gql {
        // reqwest is built without a TLS provider of its own (the workspace uses ring):
        // name it, or a test binary whose other crates did not install it panics here.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Gql {
            http: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_string(),
            token: None,
        }
    }

    /// A client whose requests leave from `local` (another loopback address, say
    /// 127.0.0.2, is another machine as far as the server can tell).
    pub fn from_address(base: &str, local: std::net::IpAddr) -> Result<Gql> {
        Ok(Gql {
            http: reqwest::Client::builder().local_address(local).build()?,
            base: base.trim_end_matches('/').to_string(),
            token: None,
        })
    }

    /// The underlying HTTP client, for requests that are not GraphQL-shaped.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn with_token(&self, token: &str) -> Gql {
        Gql {
            token: Some(token.to_string()),
            ..self.clone()
        }
    }

    /// Posts a raw body (for malformed-input tests).
    pub async fn post_raw(&self, body: impl Into<reqwest::Body>) -> Result<Answer> {
        let mut req = self
            .http
            .post(format!("{}/graphql", self.base))
            .header("content-type", "application/json")
            .body(body);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.context("send a GraphQL request")?;
        let status = resp.status().as_u16();
        let text = resp.text().await.context("read a GraphQL answer")?;
        let body = serde_json::from_str(&text)
            .with_context(|| format!("HTTP {status}, not JSON: {text}"))?;
        Ok(Answer { status, body })
    }

    pub async fn query(&self, query: &str, variables: Value) -> Result<Answer> {
        self.post_raw(json!({ "query": query, "variables": variables }).to_string())
            .await
    }

    /// Runs an operation that must succeed and returns its `data`.
    pub async fn ok(&self, query: &str, variables: Value) -> Result<Value> {
        let a = self.query(query, variables).await?;
        Ok(a.data()?.clone())
    }

    /// Logs in and returns a client carrying the token.
    pub async fn login(&self, username: &str, password: &str) -> Result<Gql> {
        let data = self
            .ok(
                "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }",
                json!({ "u": username, "p": password }),
            )
            .await?;
        let token = data["login"]["token"]
            .as_str()
            .ok_or_else(|| anyhow!("no token"))?;
        Ok(self.with_token(token))
    }

    pub async fn get(&self, path: &str) -> Result<(u16, String)> {
        let resp = self.http.get(format!("{}{path}", self.base)).send().await?;
        Ok((resp.status().as_u16(), resp.text().await?))
    }
}

/// A byte stream a WebSocket runs over: plain TCP, or TLS over it.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

type WsStream = tokio_tungstenite::WebSocketStream<Box<dyn Io>>;

/// A rustls client configuration that trusts the certificates in `pem` only (a
/// node's self-issued certificate, say).
pub fn trusting(pem: &str) -> Result<std::sync::Arc<rustls::ClientConfig>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        roots.add(cert?)?;
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(std::sync::Arc::new(config))
}

impl Gql {
    /// A client of an HTTPS server whose certificate is in `pem` (trusting nothing
    /// else).
    pub fn over_tls(base: &str, pem: &str) -> Result<Gql> {
        let config = std::sync::Arc::unwrap_or_clone(trusting(pem)?);
        Ok(Gql {
            http: reqwest::Client::builder()
                .use_preconfigured_tls(config)
                .build()?,
            base: base.trim_end_matches('/').to_string(),
            token: None,
        })
    }
}

/// A graphql-transport-ws connection.
pub struct Ws {
    stream: WsStream,
    last_close: Option<(u16, String)>,
}

/// How a WebSocket connection ended or what it delivered.
#[derive(Debug)]
pub enum WsEvent {
    Next { id: String, payload: Value },
    Error { id: String, payload: Value },
    Complete { id: String },
    Closed { code: u16, reason: String },
}

impl Ws {
    /// Opens the WebSocket with the `graphql-transport-ws` subprotocol and `headers`,
    /// and sends nothing (for protocol tests). Fails when the server refuses the upgrade.
    pub async fn open(base: &str, headers: &[(&'static str, &str)]) -> Result<Ws> {
        Ws::open_with(base, headers, None).await
    }

    /// [`Ws::open`] over TLS (`wss://`), trusting the certificates in `pem` only.
    pub async fn open_tls(base: &str, headers: &[(&'static str, &str)], pem: &str) -> Result<Ws> {
        Ws::open_with(base, headers, Some(pem)).await
    }

    async fn open_with(
        base: &str,
        headers: &[(&'static str, &str)],
        pem: Option<&str>,
    ) -> Result<Ws> {
        let url = format!("{}/graphql", base.replacen("http", "ws", 1));
        let authority = base
            .split("://")
            .nth(1)
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_string();
        let tcp = tokio::net::TcpStream::connect(&authority)
            .await
            .with_context(|| format!("connect to {authority}"))?;
        let io: Box<dyn Io> = match pem {
            None => Box::new(tcp),
            Some(pem) => {
                let host = authority
                    .rsplit_once(':')
                    .map_or(authority.as_str(), |h| h.0);
                let name = rustls::pki_types::ServerName::try_from(host.to_string())?;
                let tls = tokio_rustls::TlsConnector::from(trusting(pem)?)
                    .connect(name, tcp)
                    .await
                    .context("TLS handshake")?;
                Box::new(tls)
            }
        };
        let mut req = url.into_client_request()?;
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static("graphql-transport-ws"),
        );
        for (name, value) in headers {
            req.headers_mut()
                .insert(*name, HeaderValue::from_str(value)?);
        }
        let (stream, resp) = tokio_tungstenite::client_async(req, io)
            .await
            .context("connect the WebSocket")?;
        let proto = resp
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok());
        if proto != Some("graphql-transport-ws") {
            bail!("server chose subprotocol {proto:?}");
        }
        Ok(Ws {
            stream,
            last_close: None,
        })
    }

    /// Sends a raw text message (for protocol tests).
    pub async fn send_text(&mut self, text: &str) -> Result<()> {
        self.stream
            .send(Message::Text(text.to_string().into()))
            .await
            .context("send on the WebSocket")
    }

    /// The next JSON message, or `Err(close code)` once the server closed.
    pub async fn next_message(
        &mut self,
        timeout: Duration,
    ) -> Result<std::result::Result<Value, u16>> {
        match self.raw(timeout).await? {
            Some(v) => Ok(Ok(v)),
            None => Ok(Err(self.last_close.as_ref().map_or(0, |c| c.0))),
        }
    }

    /// Connects and sends `connection_init` with `payload`. Returns the connection once
    /// acknowledged, or the close the server answered with.
    pub async fn connect(base: &str, payload: Value) -> Result<std::result::Result<Ws, WsEvent>> {
        Ws::connect_with(base, payload, None).await
    }

    /// [`Ws::connect`] over TLS, trusting the certificates in `pem` only.
    pub async fn connect_tls(
        base: &str,
        payload: Value,
        pem: &str,
    ) -> Result<std::result::Result<Ws, WsEvent>> {
        Ws::connect_with(base, payload, Some(pem)).await
    }

    async fn connect_with(
        base: &str,
        payload: Value,
        pem: Option<&str>,
    ) -> Result<std::result::Result<Ws, WsEvent>> {
        let mut ws = Ws::open_with(base, &[], pem).await?;
        ws.send(json!({ "type": "connection_init", "payload": payload }))
            .await?;
        loop {
            match ws.raw(Duration::from_secs(10)).await? {
                Some(msg) if msg["type"] == "connection_ack" => return Ok(Ok(ws)),
                Some(msg) if msg["type"] == "ping" => ws.send(json!({ "type": "pong" })).await?,
                Some(other) => bail!("unexpected before ack: {other}"),
                None => {
                    return Ok(Err(ws.closed_event()));
                }
            }
        }
    }

    /// Connects with a bearer token.
    pub async fn connect_with_token(base: &str, token: &str) -> Result<Ws> {
        match Ws::connect(base, json!({ "Authorization": format!("Bearer {token}") })).await? {
            Ok(ws) => Ok(ws),
            Err(e) => bail!("connection refused: {e:?}"),
        }
    }

    async fn send(&mut self, v: Value) -> Result<()> {
        self.stream
            .send(Message::Text(v.to_string().into()))
            .await
            .context("send on the WebSocket")
    }

    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) -> Result<()> {
        self.send(json!({ "id": id, "type": "subscribe", "payload": { "query": query, "variables": variables } }))
            .await
    }

    fn closed_event(&self) -> WsEvent {
        let (code, reason) = self.last_close.clone().unwrap_or((0, String::new()));
        WsEvent::Closed { code, reason }
    }

    /// The next JSON message, `None` if the connection closed; errors on timeout.
    async fn raw(&mut self, timeout: Duration) -> Result<Option<Value>> {
        loop {
            let msg = tokio::time::timeout(timeout, self.stream.next())
                .await
                .map_err(|_| anyhow!("no WebSocket message within {timeout:?}"))?;
            match msg {
                None => return Ok(None),
                Some(Err(e)) => bail!("WebSocket error: {e}"),
                Some(Ok(Message::Text(t))) => return Ok(Some(serde_json::from_str(&t)?)),
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = frame
                        .map(|f| (u16::from(f.code), f.reason.to_string()))
                        .unwrap_or((0, String::new()));
                    self.last_close = Some((code, reason));
                    return Ok(None);
                }
                Some(Ok(_)) => continue,
            }
        }
    }

    /// The next subscription event (answering pings on the way).
    pub async fn next_event(&mut self, timeout: Duration) -> Result<WsEvent> {
        loop {
            let Some(msg) = self.raw(timeout).await? else {
                return Ok(self.closed_event());
            };
            let id = msg["id"].as_str().unwrap_or_default().to_string();
            match msg["type"].as_str() {
                Some("next") => {
                    return Ok(WsEvent::Next {
                        id,
                        payload: msg["payload"].clone(),
                    });
                }
                Some("error") => {
                    return Ok(WsEvent::Error {
                        id,
                        payload: msg["payload"].clone(),
                    });
                }
                Some("complete") => return Ok(WsEvent::Complete { id }),
                Some("ping") => self.send(json!({ "type": "pong" })).await?,
                _ => continue,
            }
        }
    }

    /// Asserts that nothing arrives within `wait`.
    pub async fn expect_silence(&mut self, wait: Duration) -> Result<()> {
        match tokio::time::timeout(wait, self.stream.next()).await {
            Err(_) => Ok(()),
            Ok(msg) => bail!("expected no message, got {msg:?}"),
        }
    }
}

/// A running `healsync-node serve` process on a free loopback port.
pub struct NodeProcess {
    child: Child,
    pub base: String,
    pub data_dir: PathBuf,
    binary: PathBuf,
    /// Everything the process printed on standard output before it served.
    pub banner: Vec<String>,
}

impl NodeProcess {
    /// Starts `binary serve` on `data_dir` (port 0) and waits until it serves.
    pub async fn start(binary: &Path, data_dir: &Path, extra: &[&str]) -> Result<NodeProcess> {
        let mut cmd = Command::new(binary);
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .args(extra)
            .env("HEALSYNC_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("HEALSYNC_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("start {}", binary.display()))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let mut banner = Vec::new();
        let base = tokio::time::timeout(Duration::from_secs(120), async {
            while let Some(line) = lines.next_line().await? {
                banner.push(line.clone());
                if let Some(rest) = line.split("serving on ").nth(1) {
                    let url = rest.split_whitespace().next().unwrap_or_default();
                    return Ok::<_, anyhow::Error>(url.trim_end_matches('/').to_string());
                }
            }
            bail!("the node exited before serving: {banner:?}")
        })
        .await
        .map_err(|_| anyhow!("the node did not start serving within 120 s"))??;
        // Keep draining stdout so the process never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(NodeProcess {
            child,
            base,
            data_dir: data_dir.to_path_buf(),
            binary: binary.to_path_buf(),
            banner,
        })
    }

    pub fn gql(&self) -> Gql {
        Gql::new(&self.base)
    }

    pub async fn admin(&self) -> Result<Gql> {
        self.gql().login("admin", ADMIN_PASSWORD).await
    }

    /// The process's resident memory in bytes (Linux), for memory bounds.
    pub fn rss(&self) -> Option<u64> {
        rss_of(self.child.id()?)
    }

    /// SIGKILL: the process gets no chance to clean up.
    pub async fn kill(mut self) -> Result<()> {
        self.child.kill().await.context("kill the node")?;
        Ok(())
    }

    /// SIGTERM, then waits for the exit; returns whether it exited successfully.
    pub async fn terminate(mut self) -> Result<bool> {
        terminate(&mut self.child, "node").await
    }

    /// Runs another `healsync-node` subcommand on the same binary.
    pub async fn run(&self, args: &[&str], stdin: Option<&str>) -> Result<std::process::Output> {
        run(&self.binary, args, stdin).await
    }
}

/// A running `healsync-hub serve` process.
pub struct HubProcess {
    child: Child,
    /// `http://127.0.0.1:PORT` of its GraphQL server.
    pub base: String,
    /// Its QUIC sync address, as nodes enroll with it.
    pub sync_addr: String,
}

impl HubProcess {
    /// Starts `binary serve` on `database_url` with its CA in `data_dir`, HTTP on port 0
    /// and sync on `sync_listen` (`127.0.0.1:0` for any port), and waits until it serves.
    /// The first administrator gets [`ADMIN_PASSWORD`].
    pub async fn start(
        binary: &Path,
        database_url: &str,
        data_dir: &Path,
        sync_listen: &str,
    ) -> Result<HubProcess> {
        HubProcess::start_with(binary, database_url, data_dir, sync_listen, &[]).await
    }

    /// [`HubProcess::start`] with `extra` arguments to `serve`.
    pub async fn start_with(
        binary: &Path,
        database_url: &str,
        data_dir: &Path,
        sync_listen: &str,
        extra: &[&str],
    ) -> Result<HubProcess> {
        let mut child = Command::new(binary)
            .arg("serve")
            .args(["--database-url", database_url, "--listen", "127.0.0.1:0"])
            .args(["--sync-listen", sync_listen])
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .env("HEALSYNC_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("HEALSYNC_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start {}", binary.display()))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let mut seen = Vec::new();
        let banner = tokio::time::timeout(Duration::from_secs(120), async {
            while let Some(line) = lines.next_line().await? {
                if line.contains("serving sync on ") {
                    return Ok::<_, anyhow::Error>(line);
                }
                seen.push(line);
            }
            bail!("the hub exited before serving: {seen:?}")
        })
        .await
        .map_err(|_| anyhow!("the hub did not start serving within 120 s"))??;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let word_after = |marker: &str| {
            banner
                .split(marker)
                .nth(1)
                .and_then(|s| s.split_whitespace().next())
                .map(|s| s.trim_end_matches('/').to_string())
                .ok_or_else(|| anyhow!("no {marker:?} in the hub's banner {banner:?}"))
        };
        Ok(HubProcess {
            sync_addr: word_after("sync on ")?,
            base: word_after("HTTP on ")?,
            child,
        })
    }

    pub fn gql(&self) -> Gql {
        Gql::new(&self.base)
    }

    pub async fn admin(&self) -> Result<Gql> {
        self.gql().login("admin", ADMIN_PASSWORD).await
    }

    /// The process's resident memory in bytes (Linux).
    pub fn rss(&self) -> Option<u64> {
        rss_of(self.child.id()?)
    }

    /// SIGKILL, and waits for the process to be gone.
    pub async fn kill(mut self) -> Result<()> {
        self.child.kill().await.context("kill the hub")?;
        Ok(())
    }

    /// SIGTERM, then waits for the exit; returns whether it exited successfully.
    pub async fn terminate(mut self) -> Result<bool> {
        terminate(&mut self.child, "hub").await
    }
}

/// Resident memory of a process, from `/proc/PID/status` (`VmRSS`, in kB).
pub fn rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// SIGTERM to `child`, then waits (30 s at most) for it to exit.
async fn terminate(child: &mut Child, what: &str) -> Result<bool> {
    let pid = child
        .id()
        .ok_or_else(|| anyhow!("the {what} already exited"))?;
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .await?;
    if !status.success() {
        bail!("kill -TERM failed");
    }
    let exit = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .map_err(|_| anyhow!("the {what} did not stop within 30 s of SIGTERM"))??;
    Ok(exit.success())
}

/// Runs `binary args...` with optional standard input and collects its output.
pub async fn run(
    binary: &Path,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<std::process::Output> {
    use tokio::io::AsyncWriteExt;
    let mut child = Command::new(binary)
        .args(args)
        .env("HEALSYNC_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("run {}", binary.display()))?;
    if let Some(mut input) = child.stdin.take() {
        if let Some(text) = stdin {
            // A command that refuses its arguments exits before reading its input.
            match input.write_all(text.as_bytes()).await {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                other => other?,
            }
        }
        drop(input);
    }
    Ok(child.wait_with_output().await?)
}

/// Posts a body of `size` bytes to `/graphql` over a raw TCP connection, reading the
/// answer while still writing: a server may refuse an oversized body before it has
/// all arrived and close the connection, which makes ordinary HTTP clients report a
/// send error instead of the answer. Returns the status and the JSON body.
pub async fn post_oversized(base: &str, size: usize) -> Result<Answer> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = base.trim_start_matches("http://").trim_end_matches('/');
    let stream = tokio::net::TcpStream::connect(host).await?;
    let (mut rd, mut wr) = stream.into_split();
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
    );
    let writer = tokio::spawn(async move {
        wr.write_all(head.as_bytes()).await?;
        let chunk = vec![b' '; 64 * 1024];
        let mut left = size;
        while left > 0 {
            let n = left.min(chunk.len());
            wr.write_all(&chunk[..n]).await?;
            left -= n;
        }
        Ok::<_, std::io::Error>(())
    });
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), rd.read_to_end(&mut raw))
        .await
        .map_err(|_| anyhow!("no answer to the oversized request"))??;
    // The writer may fail once the server closes: that is the point of this client.
    let _ = writer.await;
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("no HTTP status in {text:?}"))?;
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    // The body may be chunked; the JSON object is between the first '{' and last '}'.
    let json = match (body.find('{'), body.rfind('}')) {
        (Some(a), Some(b)) if a < b => &body[a..=b],
        _ => bail!("no JSON in {text:?}"),
    };
    Ok(Answer {
        status,
        body: serde_json::from_str(json)?,
    })
}

/// A fresh PostgreSQL database for one test or benchmark, on the server named by
/// `HEALSYNC_TEST_DATABASE_URL` (its maintenance database; default
/// `postgres://postgres@127.0.0.1:5432/postgres`, which `tests/ensure-postgres.sh`
/// provides). Call [`TestDatabase::drop_database`] at the end.
pub struct TestDatabase {
    pub url: String,
    admin_url: String,
    name: String,
}

impl TestDatabase {
    pub async fn create(prefix: &str) -> Result<TestDatabase> {
        let admin_url = std::env::var("HEALSYNC_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        Self::create_on(&admin_url, prefix).await
    }

    /// The same on the server whose maintenance database is `admin_url`.
    pub async fn create_on(admin_url: &str, prefix: &str) -> Result<TestDatabase> {
        let admin_url = admin_url.to_string();
        let name = format!("healsync_{prefix}_{}", uuid::Uuid::now_v7().simple());
        let pool = sqlx::PgPool::connect(&admin_url)
            .await
            .context("connect to PostgreSQL (tests/ensure-postgres.sh starts it)")?;
        // The name is ours (a prefix and a UUID), never outside input.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&pool)
            .await?;
        pool.close().await;
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url.as_str(), |(b, _)| b);
        Ok(TestDatabase {
            url: format!("{base}/{name}"),
            admin_url,
            name,
        })
    }

    /// Takes the database away from its clients (`false`: its connections are cut and
    /// new ones refused, as when the server is gone) or gives it back (`true`).
    pub async fn accept_connections(&self, accept: bool) -> Result<()> {
        let pool = sqlx::PgPool::connect(&self.admin_url).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS {accept}",
            self.name
        )))
        .execute(&pool)
        .await?;
        if !accept {
            sqlx::query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
            )
            .bind(&self.name)
            .execute(&pool)
            .await?;
        }
        pool.close().await;
        Ok(())
    }

    /// Drops the database (closing its other connections).
    pub async fn drop_database(self) -> Result<()> {
        let pool = sqlx::PgPool::connect(&self.admin_url).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&pool)
        .await?;
        Ok(())
    }
}
