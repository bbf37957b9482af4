//! `healsync-node`: the clinic node's command line. Thin: each subcommand parses its
//! arguments and calls the library crates.

mod doctor;

use std::io::{BufRead, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use clap::{Parser, Subcommand};
use healsync_auth::SessionKeys;
use healsync_domain::{DoctorId, PatientId, Role, SiteCode};
use healsync_node_api::service::users;
use healsync_node_api::{ApiError, Node};
use healsync_store::Store;

#[derive(Parser)]
#[command(
    name = "healsync-node",
    version,
    about = "HealSync clinic node: patient management that keeps working offline"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct DataDir {
    /// Where the node keeps its database and keys.
    #[arg(long, default_value = "./healsync-data", env = "HEALSYNC_DATA_DIR")]
    data_dir: PathBuf,
}

/// E-mail and SMS to patients. Give secrets through the environment, not the command
/// line (other local users can read a process's arguments).
#[derive(clap::Args, Clone)]
struct MessagingArgs {
    /// The SMTP relay for e-mail to patients: smtp://host:25 (plain, LAN relay),
    /// smtp://user:pass@host:587?tls=required (STARTTLS) or smtps://user:pass@host:465.
    /// E-mail is off without it.
    #[arg(long, env = "HEALSYNC_SMTP_URL", hide_env_values = true)]
    smtp_url: Option<String>,
    /// The sender of e-mail to patients.
    #[arg(
        long,
        env = "HEALSYNC_MAIL_FROM",
        default_value = "HealSync <healsync@localhost>"
    )]
    mail_from: String,
    /// The SMS gateway's endpoint (POST, JSON). SMS is off without it.
    #[arg(long, env = "HEALSYNC_SMS_URL")]
    sms_url: Option<String>,
    /// The `Authorization` header the SMS gateway expects (a secret).
    #[arg(long, env = "HEALSYNC_SMS_AUTHORIZATION", hide_env_values = true)]
    sms_authorization: Option<String>,
    /// The SMS gateway's JSON body, with {to}, {text} and {id} inside strings.
    #[arg(long, env = "HEALSYNC_SMS_TEMPLATE", default_value = healsync_messaging::DEFAULT_SMS_TEMPLATE)]
    sms_template: String,
    /// Hours before a booked appointment that its reminder goes out.
    #[arg(long, env = "HEALSYNC_REMINDER_LEAD_HOURS", default_value_t = 24)]
    reminder_lead_hours: u32,
    /// Milliseconds the outbox worker waits when there is nothing to send.
    #[arg(long, default_value_t = 5_000, hide = true)]
    outbox_poll_ms: u64,
}

impl MessagingArgs {
    fn config(&self) -> Result<healsync_messaging::Config> {
        if self.reminder_lead_hours == 0 || self.reminder_lead_hours > 24 * 14 {
            return Err(anyhow!("--reminder-lead-hours must be 1 to 336"));
        }
        Ok(healsync_messaging::Config {
            email: self
                .smtp_url
                .clone()
                .map(|relay| healsync_messaging::EmailConfig {
                    relay,
                    from: self.mail_from.clone(),
                }),
            sms: self
                .sms_url
                .clone()
                .map(|url| healsync_messaging::SmsConfig {
                    url,
                    authorization: self.sms_authorization.clone(),
                    template: self.sms_template.clone(),
                }),
            reminder_lead: chrono::Duration::hours(i64::from(self.reminder_lead_hours)),
            poll: std::time::Duration::from_millis(self.outbox_poll_ms.clamp(50, 60_000)),
        })
    }
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Replace the session signing key; the server uses the new one from its next
    /// start. The old key still verifies the sessions it signed until they expire (12
    /// hours), so nobody is logged out, unless --end-sessions (a key that may have
    /// been copied): then every session ends.
    Rotate {
        #[command(flatten)]
        dir: DataDir,
        #[arg(long)]
        end_sessions: bool,
    },
}

// Parsed once at start: the size of `serve`'s options costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run the clinic node: GraphQL API, subscriptions and the console on one port.
    Serve {
        #[command(flatten)]
        dir: DataDir,
        /// Address to listen on.
        #[arg(long, env = "HEALSYNC_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Site code of this clinic (2-12 letters or digits); fixed when the data
        /// directory is first initialised. Defaults to DEV for a new data directory.
        #[arg(long, env = "HEALSYNC_SITE")]
        site: Option<String>,
        /// Add realistic demo data (doctors, schedules, patients, appointments) on first start.
        #[arg(long, env = "HEALSYNC_DEMO")]
        demo: bool,
        /// Seconds between sync rounds when enrolled with a hub (failures back off up to
        /// five minutes).
        #[arg(long, env = "HEALSYNC_SYNC_INTERVAL", default_value_t = 30)]
        sync_interval: u64,
        /// Minutes a session may go without a request before it must log in again
        /// (0: no limit; a WebSocket's live updates do not count as requests).
        #[arg(long, env = "HEALSYNC_IDLE_MINUTES", default_value_t = 30)]
        idle_minutes: u64,
        /// Days the hub's last confirmation of the accounts lasts (an enrolled node's
        /// last completed sync): past it, nobody signs in until a sync succeeds. 0 (the
        /// default): a clinic cut off for any time goes on signing its staff in.
        #[arg(long, env = "HEALSYNC_MAX_OFFLINE_DAYS", default_value_t = 0.0)]
        max_offline_days: f64,
        #[command(flatten)]
        tls: healsync_graphql_http::tls::TlsOptions,
        #[command(flatten)]
        messaging: MessagingArgs,
        #[command(flatten)]
        config: healsync_config::ConfigArgs,
    },
    /// The key that signs session tokens.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Manage login accounts.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// The audit trail of health data.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Check or rebuild the relational projections from the record documents.
    Projections {
        #[command(subcommand)]
        command: ProjectionsCommand,
    },
    /// Join a hub: exchange a one-time token for this node's certificate. A new data
    /// directory takes the token's site.
    Enroll {
        /// The hub's sync address, HOST:PORT (QUIC, UDP).
        #[arg(long)]
        hub: String,
        /// The token printed by `healsync-hub nodes token`.
        #[arg(long)]
        token: String,
        #[command(flatten)]
        dir: DataDir,
    },
    /// Run one full sync round with the hub, up and down.
    Sync {
        #[command(flatten)]
        dir: DataDir,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show this node's site, identity, sync state, open conflicts and database size.
    Status {
        #[command(flatten)]
        dir: DataDir,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Check the data directory and say what to do: the database file's integrity, the
    /// schema version, the projections against the documents, the change log, the
    /// audit chain, sync, the node's certificate, open conflicts and free disk space.
    /// Safe beside `serve` (the projection check holds the write lock while it runs:
    /// minutes on a very large clinic). Exit 0 when nothing failed, 1 when something
    /// did.
    Doctor {
        #[command(flatten)]
        dir: DataDir,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Print the GraphQL schema (SDL) this build serves.
    Schema,
    /// Write a consistent copy of the node's database to FILE, while it serves.
    Backup {
        #[command(flatten)]
        dir: DataDir,
        /// The backup file to create (it must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// Make a backup the database of this (empty) data directory, as a new node of the
    /// same site: a new node id and CRDT actor id, not enrolled yet.
    Restore {
        #[command(flatten)]
        dir: DataDir,
        /// The backup file written by `healsync-node backup`.
        #[arg(long)]
        from: PathBuf,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Add an account; the password is read from standard input.
    Add {
        username: String,
        /// PATIENT, DOCTOR, RECEPTIONIST or ADMIN.
        #[arg(long)]
        role: String,
        /// For a PATIENT account: the patient record it belongs to.
        #[arg(long)]
        patient_id: Option<String>,
        /// For a DOCTOR account: the doctor record it belongs to.
        #[arg(long)]
        doctor_id: Option<String>,
        #[command(flatten)]
        dir: DataDir,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk the hash chain of every audit event. Exit 0 if it is intact, 1 naming the
    /// first event that was edited, deleted, inserted or moved.
    Verify {
        #[command(flatten)]
        dir: DataDir,
    },
}

#[derive(Subcommand)]
enum ProjectionsCommand {
    /// Rebuild every projection in a transaction, compare with the live tables, roll back.
    /// Exit 0 if they match, 1 if not.
    Check {
        #[command(flatten)]
        dir: DataDir,
    },
    /// Rebuild every projection from the documents.
    Rebuild {
        #[command(flatten)]
        dir: DataDir,
    },
}

fn api(e: ApiError) -> anyhow::Error {
    anyhow!("{} ({})", e.message(), e.code())
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
    let log_filter = std::env::var("HEALSYNC_LOG").unwrap_or_else(|_| "info".into());
    let level = log_filter.parse().unwrap_or(tracing::Level::INFO);
    {
        use std::io::IsTerminal;
        let builder = tracing_subscriber::fmt()
            .with_max_level(level)
            .with_writer(std::io::stderr);
        // For a person on a terminal, in colour; without colour codes when not a
        // terminal; one JSON object a line with HEALSYNC_LOG_FORMAT=json.
        if std::env::var("HEALSYNC_LOG_FORMAT").is_ok_and(|f| f == "json") {
            builder.json().init();
        } else {
            builder.with_ansi(std::io::stderr().is_terminal()).init();
        }
    }
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Serve {
            dir,
            listen,
            site,
            demo,
            sync_interval,
            idle_minutes,
            max_offline_days,
            tls,
            messaging,
            config: _,
        } => {
            // Refused before anything is created: plain HTTP off loopback.
            tls.check(listen).map_err(|why| anyhow!(why))?;
            serve(
                dir.data_dir,
                (listen, tls),
                site,
                demo,
                (sync_interval, idle_minutes, max_offline_days),
                messaging.config()?,
            )
        }
        Command::Keys {
            command: KeysCommand::Rotate { dir, end_sessions },
        } => {
            if !dir.data_dir.join(healsync_store::DB_FILE).exists() {
                return Err(anyhow!("{} holds no HealSync node", dir.data_dir.display()));
            }
            let kid = healsync_auth::rotate(&dir.data_dir, !end_sessions)
                .context("rotate the session key")?;
            println!(
                "New session key {kid}; restart the server to sign with it. {}",
                if end_sessions {
                    "The old key is gone: every session ends."
                } else {
                    "Sessions signed by the old key stay valid until they expire."
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Users {
            command:
                UsersCommand::Add {
                    username,
                    role,
                    patient_id,
                    doctor_id,
                    dir,
                },
        } => users_add(dir.data_dir, username, role, patient_id, doctor_id),
        Command::Projections { command } => projections(command),
        Command::Audit {
            command: AuditCommand::Verify { dir },
        } => audit_verify(dir.data_dir),
        Command::Status { dir, json } => status(dir.data_dir, json),
        Command::Enroll { hub, token, dir } => enroll(dir.data_dir, hub, token),
        Command::Sync { dir, json } => sync(dir.data_dir, json),
        Command::Doctor { dir, json } => doctor::run(&dir.data_dir, json),
        Command::Schema => {
            print!("{}", healsync_node_api::schema_sdl());
            Ok(ExitCode::SUCCESS)
        }
        Command::Backup { dir, out } => backup(dir.data_dir, out),
        Command::Restore { dir, from } => restore(dir.data_dir, from),
    }
}

/// The node's session keys: issued by this node, for its clinic's API.
fn session_keys(
    data_dir: &std::path::Path,
    identity: &healsync_store::Identity,
) -> Result<SessionKeys> {
    Ok(
        SessionKeys::load_or_create(data_dir, &format!("healsync-node:{}", identity.node_id))
            .context("load the session key")?
            .for_audience(&format!("healsync:{}", identity.site)),
    )
}

fn open_store(data_dir: &std::path::Path, site: Option<&str>) -> Result<Store> {
    let site = site
        .map(SiteCode::parse)
        .transpose()
        .map_err(|e| anyhow!("{e}"))?;
    Store::open(data_dir, site.as_ref())
        .with_context(|| format!("open the data directory {}", data_dir.display()))
}

fn serve(
    data_dir: PathBuf,
    (listen, tls): (SocketAddr, healsync_graphql_http::tls::TlsOptions),
    site: Option<String>,
    demo: bool,
    (sync_interval, idle_minutes, max_offline_days): (u64, u64, f64),
    messaging: healsync_messaging::Config,
) -> Result<ExitCode> {
    let store = Arc::new(open_store(&data_dir, site.as_deref())?);
    let identity = store.identity().clone();
    let keys = session_keys(&data_dir, &identity)?;
    let certificate = tls.certificate(&data_dir, listen).context("set up TLS")?;
    let tls_config = certificate
        .as_ref()
        .map(|c| c.server_config())
        .transpose()
        .context("configure TLS")?;

    let (password, generated) = match std::env::var("HEALSYNC_ADMIN_PASSWORD") {
        Ok(p) if !p.is_empty() => (p, false),
        _ => (
            healsync_auth::generate_password().context("generate a password")?,
            true,
        ),
    };
    if users::ensure_first_admin(&store, &password).map_err(api)? {
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
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    runtime.block_on(async move {
        let node = Node::new(store, keys).map_err(api)?;
        node.accounts().gate().set_idle_limit(
            (idle_minutes > 0).then(|| std::time::Duration::from_secs(idle_minutes * 60)),
        );
        node.set_max_offline(
            (max_offline_days.is_finite() && max_offline_days > 0.0)
                .then(|| std::time::Duration::from_secs_f64(max_offline_days * 86_400.0)),
        );
        // The demo data goes in before the first sync round: a second clinic of a demo
        // hub would otherwise receive the first one's doctors mid-seed and stay half
        // seeded.
        let fresh = node
            .read(healsync_store::queries::count_doctors)
            .await
            .map_err(api)?
            == 0;
        if demo && fresh {
            println!("Adding demo data...");
            if healsync_node_api::demo::seed(&node, &password, 300).await.map_err(api)? {
                let who: Vec<String> = healsync_node_api::demo::DEMO_USERS
                    .iter()
                    .map(|(u, r)| format!("{u} ({r})"))
                    .collect();
                println!("Demo accounts {} use the administrator's password.", who.join(", "));
            }
        }
        let migrated = healsync_node_api::service::medical_records::migrate_intake_allergies(&node)
            .await
            .map_err(api)?;
        if migrated > 0 {
            println!("Recorded {migrated} intake allergies as allergy entries of the charts.");
        }
        spawn_sync_loop(&node, &data_dir, std::time::Duration::from_secs(sync_interval.max(1)));
        spawn_account_reload(&node);
        tracing::info!("messages to patients: {}", messaging.describe());
        healsync_messaging::start(node.clone(), messaging).context("start the outbox")?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listen on {listen}"))?;
        let addr = listener.local_addr().context("read the listening address")?;
        let shutdown = shutdown_signal()?;
        let scheme = if tls_config.is_some() { "https" } else { "http" };
        if let Some(c) = &certificate {
            println!(
                "TLS certificate SHA-256 fingerprint: {}",
                c.fingerprint().context("read the TLS certificate")?
            );
        }
        println!(
            "HealSync node, site {}, serving on {scheme}://{addr}/ (GraphQL console: {scheme}://{addr}/graphiql)",
            identity.site
        );
        std::io::stdout().flush().ok();
        match tls_config {
            Some(config) => healsync_node_server::serve_tls(listener, node, config, shutdown)
                .await
                .context("serve HTTPS")?,
            None => healsync_node_server::serve(listener, node, shutdown)
                .await
                .context("serve HTTP")?,
        }
        println!("HealSync node stopped.");
        Ok(ExitCode::SUCCESS)
    })
}

/// How often the server reloads its session gate: account changes merged by another
/// process (`healsync-node sync`, `users add`) reach open sessions within this.
const ACCOUNT_RELOAD: std::time::Duration = std::time::Duration::from_secs(5);

fn spawn_account_reload(node: &Node) {
    let node = node.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(ACCOUNT_RELOAD);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if let Err(e) = node.refresh_accounts().await {
                tracing::warn!("could not reload the accounts: {e:?}");
            }
        }
    });
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

fn read_password() -> Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Password (input is visible): ");
        std::io::stderr().flush().ok();
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("read the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        return Err(anyhow!("no password given on standard input"));
    }
    Ok(password)
}

fn users_add(
    data_dir: PathBuf,
    username: String,
    role: String,
    patient_id: Option<String>,
    doctor_id: Option<String>,
) -> Result<ExitCode> {
    let role = Role::parse(&role).map_err(|e| anyhow!("{e}"))?;
    let patient_id = patient_id
        .map(|p| p.parse::<PatientId>())
        .transpose()
        .map_err(|e| anyhow!("{e}"))?;
    let doctor_id = doctor_id
        .map(|d| d.parse::<DoctorId>())
        .transpose()
        .map_err(|e| anyhow!("{e}"))?;
    let password = read_password()?;
    let store = open_store(&data_dir, None)?;
    let user = users::create_in_store(
        &store,
        users::NewUser {
            username,
            password,
            role,
            patient_id,
            doctor_id,
        },
    )
    .map_err(api)?;
    println!("Added {} ({}), id {}", user.username, user.role, user.id);
    Ok(ExitCode::SUCCESS)
}

fn projections(command: ProjectionsCommand) -> Result<ExitCode> {
    match command {
        ProjectionsCommand::Check { dir } => {
            let store = open_store(&dir.data_dir, None)?;
            let report = store.check_projections().context("check the projections")?;
            if report.is_consistent() {
                println!("Projections match the {} documents.", report.documents);
                Ok(ExitCode::SUCCESS)
            } else {
                for (table, live, rebuilt) in &report.mismatched {
                    println!("{table}: {live} live rows differ from {rebuilt} rebuilt rows");
                }
                println!("Run `healsync-node projections rebuild` to repair.");
                Ok(ExitCode::FAILURE)
            }
        }
        ProjectionsCommand::Rebuild { dir } => {
            let store = open_store(&dir.data_dir, None)?;
            let n = store
                .rebuild_projections()
                .context("rebuild the projections")?;
            println!("Rebuilt the projections from {n} documents.");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn audit_verify(data_dir: PathBuf) -> Result<ExitCode> {
    let store = open_store(&data_dir, None)?;
    let verdict = store
        .read(healsync_store::audit::verify)
        .context("read the audit trail")?;
    match verdict {
        Ok(v) => {
            println!(
                "The audit trail is intact: {} events, head {}.",
                v.events,
                v.head_hex()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(bad) => {
            println!("The audit trail was tampered with: {bad}.");
            println!("First bad event: {}.", bad.first_bad());
            Ok(ExitCode::FAILURE)
        }
    }
}

fn backup(data_dir: PathBuf, out: PathBuf) -> Result<ExitCode> {
    if !data_dir.join(healsync_store::DB_FILE).exists() {
        return Err(anyhow!("{} holds no HealSync node", data_dir.display()));
    }
    let store = open_store(&data_dir, None)?;
    let bytes = store
        .backup(&out)
        .with_context(|| format!("back up to {}", out.display()))?;
    println!(
        "Backed up site {} ({} bytes) to {}.",
        store.identity().site,
        bytes,
        out.display()
    );
    println!("Restore it with `healsync-node restore --from FILE --data-dir EMPTY_DIR`.");
    Ok(ExitCode::SUCCESS)
}

fn restore(data_dir: PathBuf, from: PathBuf) -> Result<ExitCode> {
    let r = Store::restore(&from, &data_dir)?;
    // Check that what was restored opens, migrates and projects like a node's own.
    let store = open_store(&data_dir, None)?;
    let report = store
        .check_projections()
        .context("check the restored projections")?;
    if !report.mismatched.is_empty() {
        return Err(anyhow!(
            "the restored database's projections differ from its documents: run `healsync-node projections rebuild --data-dir {}`",
            data_dir.display()
        ));
    }
    println!(
        "Restored site {} into {} as node {} (it was node {}), with a new CRDT actor id.",
        r.site,
        data_dir.display(),
        r.node_id,
        r.previous_node_id
    );
    println!(
        "It is not enrolled: ask the hub for a token (healsync-hub nodes token --site {}) and run `healsync-node enroll`; its changes then sync again, each stored once.",
        r.site
    );
    Ok(ExitCode::SUCCESS)
}

fn status(data_dir: PathBuf, json: bool) -> Result<ExitCode> {
    if !data_dir.join(healsync_store::DB_FILE).exists() {
        return Err(anyhow!(
            "{} holds no HealSync node (run `healsync-node serve` first)",
            data_dir.display()
        ));
    }
    let store = open_store(&data_dir, None)?;
    let s = store.status().context("read the node's status")?;
    let id = store.identity();
    if json {
        let value = serde_json::json!({
            "site": id.site.to_string(),
            "nodeId": id.node_id.to_string(),
            "actorId": id.actor.to_hex_string(),
            "hub": s.hub,
            "lastSuccessfulSync": s.last_sync,
            "changesWaitingToUpload": s.waiting_to_upload,
            "changesHeldBack": s.held_changes,
            "changesRefusedByHub": s.refused_changes,
            "openConflicts": s.open_conflicts,
            "databaseBytes": s.database_bytes,
        });
        println!("{value}");
    } else {
        println!("site:                      {}", id.site);
        println!("node id:                   {}", id.node_id);
        println!(
            "hub:                       {}",
            s.hub.as_deref().unwrap_or("not enrolled")
        );
        println!(
            "last successful sync:      {}",
            s.last_sync.as_deref().unwrap_or("never")
        );
        println!("changes waiting to upload: {}", s.waiting_to_upload);
        if s.held_changes > 0 {
            println!(
                "changes held back:         {} (received from the hub, not merged yet)",
                s.held_changes
            );
            let held = store.held().context("list held changes")?;
            print_some(
                held.iter()
                    .map(|h| format!("{} {}: {}", h.kind, h.doc_id, h.reason)),
            );
        }
        if s.refused_changes > 0 {
            println!(
                "changes refused by hub:    {} (this node's changes the hub would not store)",
                s.refused_changes
            );
            let refused = store.refusals().context("list refused changes")?;
            print_some(
                refused
                    .iter()
                    .map(|r| format!("#{} {}: {}", r.seq, r.doc_id, r.reason)),
            );
        }
        println!("open conflicts:            {}", s.open_conflicts);
        println!(
            "database size:             {:.1} MiB",
            s.database_bytes as f64 / 1_048_576.0
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The first five lines, indented, and how many more there are.
fn print_some(lines: impl ExactSizeIterator<Item = String>) {
    let total = lines.len();
    for line in lines.take(5) {
        println!("  {line}");
    }
    if total > 5 {
        println!("  ... and {} more", total - 5);
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")
}

fn enroll(data_dir: PathBuf, hub: String, token: String) -> Result<ExitCode> {
    let token =
        healsync_sync_transport::enroll::Token::parse(&token).map_err(|e| anyhow!("{e}"))?;
    let store = open_store(&data_dir, Some(&token.site))?;
    let site = runtime()?.block_on(healsync_node_sync::enroll(&store, &data_dir, &hub, &token))?;
    println!(
        "Enrolled node {} of site {site} with the hub at {hub}.",
        store.identity().node_id
    );
    Ok(ExitCode::SUCCESS)
}

fn sync(data_dir: PathBuf, json: bool) -> Result<ExitCode> {
    if !data_dir.join(healsync_store::DB_FILE).exists() {
        return Err(anyhow!("{} holds no HealSync node", data_dir.display()));
    }
    let store = Arc::new(open_store(&data_dir, None)?);
    let keys = session_keys(&data_dir, store.identity())?;
    let node = Node::new(store, keys).map_err(api)?;
    let bar = (!json && std::io::stderr().is_terminal()).then(|| {
        eprintln!("Syncing with the hub...");
        progress_bar()
    });
    let progress = bar.clone().map(|bar| {
        std::sync::Arc::new(move |p: healsync_node_sync::Progress| {
            bar.set_length(p.to_upload);
            bar.set_position(p.uploaded.min(p.to_upload));
            bar.set_message(changes(p.downloaded));
        }) as healsync_node_sync::OnProgress
    });
    let summary = runtime()?.block_on(healsync_node_sync::sync_enrolled(
        &node, &data_dir, progress,
    ));
    if let Some(bar) = bar {
        // A failed round leaves no finished-looking bar behind.
        if summary.is_ok() {
            bar.finish();
        } else {
            bar.finish_and_clear();
        }
    }
    let summary = match summary {
        Ok(s) => s,
        Err(e) => {
            // Say where, say why once, and say that nothing is lost.
            let status = node.store().status().ok();
            let hub = status
                .as_ref()
                .and_then(|s| s.hub.clone())
                .unwrap_or_else(|| "(not enrolled)".into());
            let waiting = status.as_ref().map_or(0, |s| s.waiting_to_upload);
            let why = format!("{e:#}");
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "error": why, "hub": hub, "changesWaitingToUpload": waiting })
                );
            } else {
                eprintln!("error: sync with the hub at {hub} failed: {why}");
                eprintln!(
                    "Nothing is lost: {} {} here and go with the next sync that reaches the hub.",
                    changes(waiting),
                    if waiting == 1 { "waits" } else { "wait" }
                );
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    if json {
        println!(
            "{}",
            serde_json::json!({
                "uploaded": summary.uploaded,
                "auditEventsShipped": summary.audit_uploaded,
                "refused": summary.rejected,
                "downloaded": summary.downloaded,
                "uploadAcknowledgedThrough": summary.upload_acked,
                "downloadCursor": summary.download_cursor,
            })
        );
    } else {
        println!(
            "Sync complete: {} uploaded ({} refused by the hub), {} received; {} audit events shipped.",
            changes(summary.uploaded),
            summary.rejected,
            changes(summary.downloaded),
            summary.audit_uploaded
        );
        if summary.rejected > 0 {
            println!("`healsync-node status` shows why the hub refused them.");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// "1 change", "2 changes".
fn changes(n: impl Into<i128>) -> String {
    let n = n.into();
    if n == 1 {
        "1 change".into()
    } else {
        format!("{n} changes")
    }
}

/// The sync's progress on a terminal: a bar for the upload, a count of what arrived.
fn progress_bar() -> indicatif::ProgressBar {
    let style =
        indicatif::ProgressStyle::with_template("  up [{bar:30}] {pos}/{len} changes   down {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("#>.");
    indicatif::ProgressBar::new(0).with_style(style)
}

/// Syncs with the hub in the background while `serve` runs, if the node is enrolled:
/// a round every `interval`, backing off (doubling, up to five minutes) while the hub
/// is unreachable or refuses. Merged changes reach open subscriptions.
fn spawn_sync_loop(node: &Node, data_dir: &std::path::Path, interval: std::time::Duration) {
    let enrolled = node
        .store()
        .status()
        .map(|s| s.hub.is_some())
        .unwrap_or(false);
    if !enrolled {
        return;
    }
    let (node, data_dir) = (node.clone(), data_dir.to_path_buf());
    tokio::spawn(async move {
        let max = std::time::Duration::from_secs(300).max(interval);
        let mut wait = interval;
        loop {
            match healsync_node_sync::sync_enrolled(&node, &data_dir, None).await {
                Ok(s) => {
                    if s.uploaded + s.downloaded > 0 {
                        tracing::info!(
                            uploaded = s.uploaded,
                            received = s.downloaded,
                            "synced with the hub"
                        );
                    }
                    wait = interval;
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_secs = wait.as_secs(), "sync with the hub failed");
                    wait = (wait * 2).min(max);
                }
            }
            tokio::time::sleep(wait).await;
        }
    });
}
