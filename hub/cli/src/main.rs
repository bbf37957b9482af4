//! `healsync-hub`: the central hub's command line. Thin: each subcommand parses its
//! arguments and calls the hub's library crates.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use axum::response::IntoResponse;
use clap::{Parser, Subcommand};
use healsync_hub_store::HubStore;
use healsync_hub_sync::HubSyncStorage;
use healsync_sync_transport::ca::HubCa;
use healsync_sync_transport::{config, driver};

#[derive(Parser)]
#[command(
    name = "healsync-hub",
    version,
    about = "HealSync hub: the central service clinic nodes sync with"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct Db {
    /// PostgreSQL connection URL.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
}

#[derive(Subcommand)]
enum Command {
    /// Run the hub: migrate the database, serve sync (QUIC) and HTTP.
    Serve {
        #[command(flatten)]
        db: Db,
        /// HTTP address (health and metrics).
        #[arg(long, default_value = "127.0.0.1:9090")]
        listen: SocketAddr,
        /// QUIC (UDP) address nodes sync with.
        #[arg(long, default_value = "0.0.0.0:4433")]
        sync_listen: SocketAddr,
        /// Where the hub keeps its certificate authority.
        #[arg(long, default_value = "./healsync-hub-data")]
        data_dir: PathBuf,
        /// Sync sessions served at once; more wait their turn.
        #[arg(long, default_value_t = 16)]
        max_sessions: usize,
    },
    /// Manage clinic sites.
    Sites {
        #[command(subcommand)]
        command: SitesCommand,
    },
    /// Manage clinic nodes.
    Nodes {
        #[command(subcommand)]
        command: NodesCommand,
    },
}

#[derive(Subcommand)]
enum SitesCommand {
    /// Register a clinic site.
    Add {
        code: String,
        #[arg(long)]
        name: String,
        #[command(flatten)]
        db: Db,
    },
}

#[derive(Subcommand)]
enum NodesCommand {
    /// Print a one-time enrollment token for a site (it names the site and pins this
    /// hub's CA, so the node can check it talks to this hub).
    Token {
        #[arg(long)]
        site: String,
        /// Where the hub keeps its certificate authority (as for `serve`).
        #[arg(long, default_value = "./healsync-hub-data")]
        data_dir: PathBuf,
        #[command(flatten)]
        db: Db,
    },
    /// List nodes with their last sync.
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: Db,
    },
    /// Revoke a node: it is refused from then on.
    Revoke {
        node_id: String,
        #[command(flatten)]
        db: Db,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = std::env::var("HEALSYNC_LOG")
        .ok()
        .and_then(|l| l.parse().ok())
        .unwrap_or(tracing::Level::INFO);
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn store(db: &Db) -> Result<HubStore> {
    HubStore::connect(&db.database_url, 8)
        .await
        .context("open the hub database")
}

fn site_code(code: &str) -> Result<String> {
    let c = code.trim().to_ascii_uppercase();
    if !(2..=12).contains(&c.len()) || !c.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(anyhow!(
            "a site code is 2 to 12 letters or digits, not {code:?}"
        ));
    }
    Ok(c)
}

async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Sites {
            command: SitesCommand::Add { code, name, db },
        } => {
            let code = site_code(&code)?;
            store(&db).await?.add_site(&code, name.trim()).await?;
            println!("Added site {code} ({})", name.trim());
        }
        Command::Nodes {
            command: NodesCommand::Token { site, data_dir, db },
        } => {
            let site = site_code(&site)?;
            let ca =
                HubCa::load_or_create(&data_dir).context("load the hub's certificate authority")?;
            let secret = store(&db).await?.create_enrollment_token(&site).await?;
            let token = healsync_sync_transport::enroll::Token::new(&secret, ca.cert_pem(), &site)?;
            println!("{token}");
        }
        Command::Nodes {
            command: NodesCommand::List { json, db },
        } => {
            let nodes = store(&db).await?.nodes().await?;
            if json {
                let list: Vec<serde_json::Value> = nodes
                    .iter()
                    .map(|n| {
                        serde_json::json!({
                            "id": n.id.to_string(),
                            "site": n.site,
                            "revoked": n.revoked,
                            "uploadAcked": n.upload_acked,
                            "lastSyncUnix": n.last_sync_unix,
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(list));
            } else if nodes.is_empty() {
                println!("No nodes enrolled.");
            } else {
                for n in nodes {
                    let last = n
                        .last_sync_unix
                        .map_or("never".to_string(), |t| format!("unix {t}"));
                    let state = if n.revoked { "revoked" } else { "active" };
                    println!("{}  {:<6}  {state:<7}  last sync: {last}", n.id, n.site);
                }
            }
        }
        Command::Nodes {
            command: NodesCommand::Revoke { node_id, db },
        } => {
            let id = uuid::Uuid::parse_str(node_id.trim())
                .map_err(|_| anyhow!("{node_id:?} is not a node id"))?;
            store(&db).await?.revoke(id).await?;
            println!("Revoked node {id}; it is refused from its next connection on.");
        }
        Command::Serve {
            db,
            listen,
            sync_listen,
            data_dir,
            max_sessions,
        } => {
            serve(db, listen, sync_listen, data_dir, max_sessions).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn serve(
    db: Db,
    listen: SocketAddr,
    sync_listen: SocketAddr,
    data_dir: PathBuf,
    max_sessions: usize,
) -> Result<()> {
    let store = store(&db).await?;
    let ca =
        Arc::new(HubCa::load_or_create(&data_dir).context("load the hub's certificate authority")?);
    let server = config::server(ca.cert_pem(), &ca.issue_hub()?)?;
    let endpoint = quinn::Endpoint::server(server, sync_listen)
        .with_context(|| format!("listen on UDP {sync_listen}"))?;
    let sync_addr = endpoint.local_addr().context("read the sync address")?;
    tokio::spawn(driver::run_hub(
        endpoint.clone(),
        Arc::new(HubSyncStorage {
            store: store.clone(),
            ca: ca.clone(),
        }),
        max_sessions,
    ));

    let health_store = store.clone();
    let app = axum::Router::new().route(
        "/healthz",
        axum::routing::get(move || {
            let s = health_store.clone();
            async move {
                match s.nodes().await {
                    Ok(n) => axum::Json(serde_json::json!({ "status": "ok", "nodes": n.len() }))
                        .into_response(),
                    Err(_) => (
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        "database unavailable",
                    )
                        .into_response(),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listen on {listen}"))?;
    let http_addr = listener.local_addr().context("read the HTTP address")?;
    println!("HealSync hub serving sync on {sync_addr} (QUIC) and HTTP on http://{http_addr}/");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serve HTTP")?;
    endpoint.close(0u32.into(), b"hub stopping");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}
