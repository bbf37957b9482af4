//! `healsync-hub`: the central hub's command line. Thin: each subcommand parses its
//! arguments and calls the hub's library crates.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

mod http;
mod metrics;

use anyhow::{Context, Result, anyhow};
use clap::{Parser, Subcommand};
use healsync_auth::SessionKeys;
use healsync_domain::{Role, SiteCode, User};
use healsync_hub_api::Hub;
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
    /// PostgreSQL connection URL. It usually holds a password: prefer the environment
    /// (or serve's config file) to the command line, which other local users can read.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
}

#[derive(Subcommand)]
enum Command {
    /// Run the hub: migrate the database, serve sync (QUIC) and HTTP.
    Serve {
        #[command(flatten)]
        db: Db,
        /// HTTP address: GraphQL for central admins (and its WebSocket), the console,
        /// /healthz, /readyz and /metrics.
        #[arg(long, env = "HEALSYNC_HUB_LISTEN", default_value = "127.0.0.1:9090")]
        listen: SocketAddr,
        /// QUIC (UDP) address nodes sync with.
        #[arg(long, env = "HEALSYNC_HUB_SYNC_LISTEN", default_value = "0.0.0.0:4433")]
        sync_listen: SocketAddr,
        /// Where the hub keeps its certificate authority and session keys.
        #[arg(
            long,
            env = "HEALSYNC_HUB_DATA_DIR",
            default_value = "./healsync-hub-data"
        )]
        data_dir: PathBuf,
        /// Sync sessions served at once; more wait their turn.
        #[arg(long, env = "HEALSYNC_HUB_MAX_SESSIONS", default_value_t = 16)]
        max_sessions: usize,
        #[command(flatten)]
        tls: healsync_graphql_http::tls::TlsOptions,
        #[command(flatten)]
        config: healsync_config::ConfigArgs,
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
    /// Manage user accounts.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// The nodes' audit trails as the hub holds them.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Print the GraphQL SDL this build serves (committed as schema/hub.graphql).
    Schema,
    /// The key that signs central admins' session tokens.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Replace the session signing key; the hub uses the new one from its next start.
    /// The old key still verifies the sessions it signed until they expire (12 hours),
    /// unless --end-sessions (a key that may have been copied): then every session
    /// ends.
    Rotate {
        /// Where the hub keeps its keys (as for `serve`).
        #[arg(
            long,
            env = "HEALSYNC_HUB_DATA_DIR",
            default_value = "./healsync-hub-data"
        )]
        data_dir: PathBuf,
        /// End every session now (the old key may have been copied).
        #[arg(long)]
        end_sessions: bool,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk every node's audit trail as stored at the hub. Exit 0 if each is intact,
    /// 1 naming, per node, the first event that was edited, deleted, inserted or moved
    /// (in PostgreSQL, or in the node's file before it was shipped).
    Verify {
        #[command(flatten)]
        db: Db,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Add an account; the password is read from standard input. With --site the
    /// account belongs to that site and replicates to its nodes (staff log in there
    /// offline); without, it is a central account at the hub.
    Add {
        username: String,
        /// PATIENT, DOCTOR, RECEPTIONIST or ADMIN; or FINANCE, a central account (no
        /// --site) that reads the billing roll-ups and nothing about patients.
        #[arg(long)]
        role: String,
        #[arg(long)]
        site: Option<String>,
        /// For a central ADMIN or FINANCE account (no --site): the only sites it sees
        /// (and an ADMIN writes to), comma-separated (e.g. NBO,MSA). Without it a
        /// central account sees every site.
        #[arg(long, value_delimiter = ',', conflicts_with = "site")]
        sites: Vec<String>,
        /// The patient record a PATIENT account belongs to.
        #[arg(long)]
        patient_id: Option<String>,
        /// The doctor record a DOCTOR account belongs to.
        #[arg(long)]
        doctor_id: Option<String>,
        #[command(flatten)]
        db: Db,
    },
    /// Disable an account (user name, or id): refused at the hub at once, and at its
    /// clinics' nodes from their next sync, which also ends its open sessions there.
    Disable {
        account: String,
        #[command(flatten)]
        db: Db,
    },
    /// Enable a disabled account again (its old sessions stay ended).
    Enable {
        account: String,
        #[command(flatten)]
        db: Db,
    },
    /// Change an account's role and/or sites. For a clinic account, --sites lists the
    /// clinics where it works, its own clinic first (NBO,MSA); for a central account,
    /// the sites it is limited to (--sites "" lifts the limit). Its sessions end.
    Update {
        account: String,
        #[arg(long)]
        role: Option<String>,
        #[arg(long, value_delimiter = ',')]
        sites: Option<Vec<String>>,
        #[command(flatten)]
        db: Db,
    },
    /// Set a new password, read from standard input; the account's sessions end, at
    /// its clinics from their next sync.
    ResetPassword {
        account: String,
        #[command(flatten)]
        db: Db,
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
        #[arg(
            long,
            env = "HEALSYNC_HUB_DATA_DIR",
            default_value = "./healsync-hub-data"
        )]
        data_dir: PathBuf,
        #[command(flatten)]
        db: Db,
    },
    /// List nodes with their last sync.
    List {
        /// Print JSON for scripts.
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

/// Logs go to standard error: for a person on a terminal, in colour; without colour
/// codes when not a terminal; one JSON object a line with `HEALSYNC_LOG_FORMAT=json`.
fn log_format<S>() -> Box<dyn tracing_subscriber::Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use std::io::IsTerminal;
    use tracing_subscriber::Layer;
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    if std::env::var("HEALSYNC_LOG_FORMAT").is_ok_and(|f| f == "json") {
        layer.json().boxed()
    } else {
        layer.with_ansi(std::io::stderr().is_terminal()).boxed()
    }
}

fn main() -> ExitCode {
    // `serve` reads its settings from the command line, the environment, then a config
    // file (healsync-config: one precedence for node and hub).
    let cli = match healsync_config::parse_or_exit::<Cli>(
        "serve",
        |cli| matches!(&cli.command, Command::Serve { config, .. } if config.print_config),
    ) {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let level = std::env::var("HEALSYNC_LOG")
        .ok()
        .and_then(|l| l.parse().ok())
        .unwrap_or(tracing::Level::INFO);
    // PostgreSQL's notices (such as "relation _sqlx_migrations already exists, skipping"
    // on every start) are not news for an operator.
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    tracing_subscriber::registry()
        .with(log_format())
        .with(
            tracing_subscriber::filter::Targets::new()
                .with_default(level)
                .with_target("sqlx::postgres::notice", tracing::Level::WARN),
        )
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
    // Sessions, the projector and the API share the pool; `serve`'s event feed holds
    // one more connection for as long as it runs.
    HubStore::connect(&db.database_url, 9)
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
            // Only `serve` makes the certificate authority: a token signed by any other
            // would fail at enrollment.
            let ca = HubCa::load(&data_dir).with_context(|| {
                format!(
                    "no hub certificate authority in {}: pass the --data-dir the hub serves with",
                    data_dir.display()
                )
            })?;
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
                        .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
                        .map_or("never".to_string(), |t| {
                            t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
                        });
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
        Command::Users {
            command:
                UsersCommand::Add {
                    username,
                    role,
                    site,
                    sites,
                    patient_id,
                    doctor_id,
                    db,
                },
        } => {
            let site = site.as_deref().map(site_code).transpose()?;
            let sites = sites
                .iter()
                .map(|s| site_code(s))
                .collect::<Result<Vec<_>>>()?;
            let user = new_user(&username, &role, patient_id, doctor_id, &read_password()?)?;
            if !sites.is_empty() && !user.role.is_central() {
                return Err(anyhow!(
                    "--sites limits a central ADMIN or FINANCE account; this account is {}",
                    user.role
                ));
            }
            let limited = (!sites.is_empty()).then_some(sites.as_slice());
            store(&db)
                .await?
                .add_user(&user, site.as_deref(), limited)
                .await?;
            match (site, limited) {
                (Some(code), _) => println!(
                    "Added {} ({}) at site {code}; its nodes receive the account at their next sync.",
                    user.username, user.role
                ),
                (None, Some(sites)) => println!(
                    "Added {} ({}) at the hub, limited to sites {}.",
                    user.username,
                    user.role,
                    sites.join(", ")
                ),
                (None, None) => println!("Added {} ({}) at the hub.", user.username, user.role),
            }
        }
        Command::Users { command } => change_account(command).await?,
        Command::Schema => print!("{}", healsync_hub_api::schema_sdl()),
        Command::Audit {
            command: AuditCommand::Verify { db },
        } => {
            let trails = store(&db).await?.verify_audit().await?;
            let mut intact = true;
            for t in &trails {
                match &t.result {
                    Ok(v) => println!(
                        "{} node {}: intact, {} events, head {}.",
                        t.site,
                        t.node_id,
                        v.events,
                        v.head_hex()
                    ),
                    Err(bad) => {
                        intact = false;
                        println!(
                            "{} node {}: tampered with: {bad}. First bad event: {}.",
                            t.site,
                            t.node_id,
                            bad.first_bad()
                        );
                    }
                }
            }
            if trails.is_empty() {
                println!("No nodes enrolled.");
            }
            if !intact {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Keys {
            command:
                KeysCommand::Rotate {
                    data_dir,
                    end_sessions,
                },
        } => {
            let kid = healsync_auth::rotate(&data_dir, !end_sessions)
                .context("rotate the session key")?;
            println!(
                "New session key {kid}; restart the hub to sign with it. {}",
                if end_sessions {
                    "The old key is gone: every session ends."
                } else {
                    "Sessions signed by the old key stay valid until they expire."
                }
            );
        }
        Command::Serve {
            db,
            listen,
            sync_listen,
            data_dir,
            max_sessions,
            tls,
            config: _,
        } => {
            tls.check(listen).map_err(|why| anyhow!(why))?;
            serve(db, (listen, tls), sync_listen, data_dir, max_sessions).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn new_user(
    username: &str,
    role: &str,
    patient_id: Option<String>,
    doctor_id: Option<String>,
    password: &str,
) -> Result<User> {
    let role = Role::parse(role).map_err(|e| anyhow!("{e}"))?;
    let username = healsync_domain::user::parse_username(username).map_err(|e| anyhow!("{e}"))?;
    healsync_domain::user::check_password(password).map_err(|e| anyhow!("{e}"))?;
    let patient_id = patient_id
        .map(|p| p.parse())
        .transpose()
        .map_err(|e| anyhow!("{e}"))?;
    let doctor_id = doctor_id
        .map(|d| d.parse())
        .transpose()
        .map_err(|e| anyhow!("{e}"))?;
    healsync_domain::user::check_links(role, patient_id, doctor_id).map_err(|e| anyhow!("{e}"))?;
    Ok(User {
        id: uuid::Uuid::now_v7().into(),
        username,
        role,
        password_hash: healsync_auth::hash_password(password).context("hash the password")?,
        patient_id,
        doctor_id,
        active: true,
        sites: Vec::new(),
        credentials_changed_at: None,
    })
}

/// `users disable|enable|update|reset-password`.
async fn change_account(command: UsersCommand) -> Result<()> {
    use healsync_hub_store::accounts::AccountChange;
    let (account, db, change, done) = match command {
        UsersCommand::Disable { account, db } => (
            account,
            db,
            AccountChange {
                active: Some(false),
                ..AccountChange::default()
            },
            "disabled",
        ),
        UsersCommand::Enable { account, db } => (
            account,
            db,
            AccountChange {
                active: Some(true),
                ..AccountChange::default()
            },
            "enabled",
        ),
        UsersCommand::Update {
            account,
            role,
            sites,
            db,
        } => {
            let role = role
                .map(|r| Role::parse(&r).map_err(|e| anyhow!("{e}")))
                .transpose()?;
            let sites = sites
                .map(|list| {
                    list.iter()
                        .filter(|s| !s.trim().is_empty())
                        .map(|s| SiteCode::parse(s).map_err(|e| anyhow!("{e}")))
                        .collect::<Result<Vec<_>>>()
                })
                .transpose()?;
            if role.is_none() && sites.is_none() {
                return Err(anyhow!("say what to change: --role, --sites or both"));
            }
            let change = AccountChange {
                role,
                sites,
                ..AccountChange::default()
            };
            (account, db, change, "updated")
        }
        UsersCommand::ResetPassword { account, db } => {
            let password = read_password()?;
            healsync_domain::user::check_password(&password).map_err(|e| anyhow!("{e}"))?;
            let change = AccountChange {
                password_hash: Some(
                    healsync_auth::hash_password(&password).context("hash the password")?,
                ),
                ..AccountChange::default()
            };
            (account, db, change, "given a new password")
        }
        UsersCommand::Add { .. } => return Err(anyhow!("not an account change")),
    };
    let changed = store(&db)
        .await?
        .update_account(&account, change, chrono::Utc::now())
        .await?;
    let u = &changed.user;
    let sites: Vec<String> = u.sites.iter().map(|s| s.to_string()).collect();
    match changed.site {
        Some(site) => println!(
            "Account {} ({}, {}, site {site}, works at {}) {done}; its clinics' nodes apply it at their next sync, ending its sessions there.",
            u.username,
            u.role,
            if u.active { "active" } else { "disabled" },
            sites.join(", ")
        ),
        None => println!(
            "Central account {} ({}, {}{}) {done}; its sessions end.",
            u.username,
            u.role,
            if u.active { "active" } else { "disabled" },
            changed
                .limited_to
                .map(|s| format!(", limited to {}", s.join(", ")))
                .unwrap_or_default()
        ),
    }
    Ok(())
}

/// How often the hub reloads its session gate: `users` commands run in another
/// process, and reach open sessions within this.
const ACCOUNT_RELOAD: std::time::Duration = std::time::Duration::from_secs(5);

fn spawn_account_reload(hub: &Hub) {
    let hub = hub.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(ACCOUNT_RELOAD);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if let Err(e) = hub.refresh_accounts().await {
                tracing::warn!("could not reload the accounts: {}", e.code());
            }
        }
    });
}

/// One line from standard input (a terminal shows a prompt).
fn read_password() -> Result<String> {
    use std::io::{BufRead, IsTerminal, Write};
    if std::io::stdin().is_terminal() {
        eprint!("Password (input is visible): ");
        std::io::stderr().flush().ok();
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("read the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        return Err(anyhow!("no password given on standard input"));
    }
    Ok(password)
}

/// The first-admin rule of the node, at the hub: with no account at all, a central
/// ADMIN `admin` is created with HEALSYNC_ADMIN_PASSWORD or a generated password shown
/// once.
async fn ensure_first_admin(store: &HubStore) -> Result<()> {
    if store.count_users().await? > 0 {
        return Ok(());
    }
    let (password, generated) = match std::env::var("HEALSYNC_ADMIN_PASSWORD") {
        Ok(p) if !p.is_empty() => (p, false),
        _ => (
            healsync_auth::generate_password().context("generate a password")?,
            true,
        ),
    };
    let admin = new_user("admin", "ADMIN", None, None, &password)?;
    if let Err(e) = store.add_user(&admin, None, None).await {
        // Replicas starting together race to make the first administrator: one wins.
        if store.count_users().await? > 0 {
            return Ok(());
        }
        return Err(e.into());
    }
    if generated {
        println!("Created the first administrator: user \"admin\", password \"{password}\"");
        println!(
            "(shown once: note it now, and set HEALSYNC_ADMIN_PASSWORD to choose it yourself)"
        );
    } else {
        println!(
            "Created the first administrator: user \"admin\" with the password from HEALSYNC_ADMIN_PASSWORD"
        );
    }
    Ok(())
}

async fn serve(
    db: Db,
    (listen, tls): (SocketAddr, healsync_graphql_http::tls::TlsOptions),
    sync_listen: SocketAddr,
    data_dir: PathBuf,
    max_sessions: usize,
) -> Result<()> {
    let store = store(&db).await?;
    let ca =
        Arc::new(HubCa::load_or_create(&data_dir).context("load the hub's certificate authority")?);
    ensure_first_admin(&store).await?;
    let backfilled = store
        .backfill_projections()
        .await
        .context("project records folded before their projections existed")?;
    if backfilled > 0 {
        tracing::info!(records = backfilled, "projected earlier records");
    }
    let scoped = store
        .adopt_unscoped_accounts()
        .await
        .context("give earlier clinic accounts their site")?;
    if scoped > 0 {
        tracing::info!(accounts = scoped, "clinic accounts scoped to their site");
    }
    let keys = SessionKeys::load_or_create(&data_dir, "healsync-hub")
        .context("load the session key")?
        .for_audience("healsync:hub");
    let wake = Arc::new(tokio::sync::Notify::new());
    let hub = Hub::new(store.clone(), keys, wake.clone())
        .map_err(|e| anyhow!("start the API: {}", e.code()))?;
    tokio::spawn(healsync_hub_api::projector::run(hub.clone()));
    tokio::spawn(healsync_hub_api::fanout::run(hub.clone()));
    hub.refresh_accounts()
        .await
        .map_err(|e| anyhow!("load the accounts: {}", e.code()))?;
    spawn_account_reload(&hub);

    let server = config::server(ca.cert_pem(), &ca.issue_hub()?)?;
    let endpoint = quinn::Endpoint::server(server, sync_listen)
        .with_context(|| format!("listen on UDP {sync_listen}"))?;
    let sync_addr = endpoint.local_addr().context("read the sync address")?;
    tokio::spawn(driver::run_hub(
        endpoint.clone(),
        Arc::new(HubSyncStorage {
            store: store.clone(),
            ca: ca.clone(),
            committed: wake,
        }),
        max_sessions,
    ));

    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listen on {listen}"))?;
    let http_addr = listener.local_addr().context("read the HTTP address")?;
    let shutdown = shutdown_signal()?;
    std::fs::create_dir_all(&data_dir).context("create the data directory")?;
    let certificate = tls.certificate(&data_dir, listen).context("set up TLS")?;
    if let Some(c) = &certificate {
        println!(
            "TLS certificate SHA-256 fingerprint: {}",
            c.fingerprint().context("read the TLS certificate")?
        );
    }
    let scheme = if certificate.is_some() {
        "https"
    } else {
        "http"
    };
    println!(
        "HealSync hub serving sync on {sync_addr} (QUIC) and HTTP on {scheme}://{http_addr}/ (GraphQL console: {scheme}://{http_addr}/graphiql)"
    );
    std::io::Write::flush(&mut std::io::stdout()).ok();
    match certificate {
        Some(c) => {
            let config = c.server_config().context("configure TLS")?;
            healsync_graphql_http::tls::serve_tls(listener, http::router(hub), config, shutdown)
                .await
                .context("serve HTTPS")?;
        }
        None => axum::serve(
            listener,
            http::router(hub).into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
        .context("serve HTTP")?,
    }
    endpoint.close(0u32.into(), b"hub stopping");
    Ok(())
}

/// Registers the SIGTERM and SIGINT handlers now (so a signal that arrives right after
/// start-up already stops the server cleanly) and returns the future that resolves on
/// either.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("listen for SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::info!("shutting down");
    })
}
