//! The clinic node's API: services that apply the domain rules through the store, the
//! access policy, the live event stream, and the GraphQL schema on top of them.
//!
//! The data path of every write: resolver parses input → service checks access and
//! runs `store.write` (domain rule + document + projection + change log in one SQLite
//! transaction) on a blocking thread → after the commit, the changed records go to the
//! [`events::EventBus`], which feeds every GraphQL subscription. Changes merged from the
//! hub ([`Node::apply_remote`]) go to the same bus. This crate knows nothing of HTTP.

pub mod accounts;
pub mod demo;
pub mod error;
pub mod events;
pub mod graphql;
pub mod service;
pub mod session;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use healsync_auth::SessionKeys;
use healsync_store::audit::{AuditContext, Reads};
use healsync_store::{Connection, Incoming, Store, StoreError, WriteTx};

pub use error::ApiError;
pub use events::EventBus;
pub use graphql::{NodeSchema, build_schema, schema_sdl};
pub use healsync_auth::{Claims, Peer};
pub use session::Session;

/// Everything a request needs: the store, the session keys, the event bus.
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<Store>,
    keys: SessionKeys,
    accounts: accounts::Accounts,
    /// How long the hub's last confirmation of the accounts lasts, in seconds (0: for
    /// ever).
    max_offline_secs: std::sync::atomic::AtomicI64,
    events: EventBus,
    login: healsync_auth::Login,
    /// Whether this process has tried the held changes again (see `retry_held`).
    held_retried: std::sync::atomic::AtomicBool,
    /// Reads waiting to be recorded, and the turn to record them (see `record_reads`).
    reads: std::sync::Mutex<Vec<(Vec<Reads>, ReadsDone)>>,
    reads_turn: tokio::sync::Mutex<()>,
    /// How the last sync round with the hub ended, in this process (see
    /// [`Node::record_sync_round`]).
    last_round: std::sync::Mutex<Option<SyncRound>>,
}

/// How a sync round with the hub ended: when, and the error if it failed. The staff
/// app's banner says from this whether the hub is reachable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRound {
    /// When the round ended (RFC 3339).
    pub at: String,
    /// Why it failed; `None` when the hub answered and the round completed.
    pub error: Option<String>,
}

/// What records merged from the hub make this node send (`service::messages::for_merged`).
fn sends_for_merged(
    store: &Store,
    now: DateTime<Utc>,
) -> impl Fn(
    &healsync_store::Connection,
    &healsync_records::AnyRecord,
    bool,
) -> Result<Vec<healsync_store::outbox::NewMessage>, healsync_store::StoreError> {
    let (site, channels) = (store.identity().site.to_string(), store.channels().list());
    move |c, r, created| service::messages::for_merged(c, &site, &channels, now, r, created)
}

type ReadsDone = tokio::sync::oneshot::Sender<Result<(), String>>;

impl Node {
    pub fn new(store: Arc<Store>, keys: SessionKeys) -> Result<Node, ApiError> {
        let login = healsync_auth::Login::new().map_err(ApiError::internal)?;
        let accounts = accounts::Accounts::new(store.identity().site.clone());
        accounts.load(store.read(healsync_store::queries::accounts)?);
        Ok(Node {
            inner: Arc::new(Inner {
                store,
                keys,
                accounts,
                max_offline_secs: std::sync::atomic::AtomicI64::new(0),
                events: EventBus::new(),
                login,
                held_retried: std::sync::atomic::AtomicBool::new(false),
                reads: std::sync::Mutex::new(Vec::new()),
                reads_turn: tokio::sync::Mutex::new(()),
                last_round: std::sync::Mutex::new(None),
            }),
        })
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.inner.store
    }

    pub fn keys(&self) -> &SessionKeys {
        &self.inner.keys
    }

    pub fn events(&self) -> &EventBus {
        &self.inner.events
    }

    /// Notes how a sync round with the hub ended (the serving process's sync loop calls
    /// this after every round).
    pub fn record_sync_round(&self, error: Option<String>) {
        let round = SyncRound {
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            error,
        };
        if let Ok(mut last) = self.inner.last_round.lock() {
            *last = Some(round);
        }
    }

    /// The last sync round this process made, if any.
    pub fn last_sync_round(&self) -> Option<SyncRound> {
        self.inner.last_round.lock().ok().and_then(|l| l.clone())
    }

    /// The session gate (see [`accounts`]).
    pub fn accounts(&self) -> &accounts::Accounts {
        &self.inner.accounts
    }

    /// Reloads the session gate from the store. Called after every write or merge that
    /// changes an account, and periodically by the server for merges made by another
    /// process.
    pub async fn refresh_accounts(&self) -> Result<(), ApiError> {
        let now = self.now();
        let (all, ended) = self
            .read(move |c| {
                Ok((
                    healsync_store::queries::accounts(c)?,
                    healsync_store::queries::ended_sessions(c, now)?,
                ))
            })
            .await?;
        self.inner.accounts.load(all);
        self.inner.accounts.gate().load_ended(ended);
        Ok(())
    }

    /// Sets how long the accounts count as confirmed after the last sync round with
    /// the hub (`None`: for ever). Past it, nobody signs in until a sync succeeds.
    pub fn set_max_offline(&self, max: Option<std::time::Duration>) {
        let secs = max.map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        self.inner
            .max_offline_secs
            .store(secs, std::sync::atomic::Ordering::Relaxed);
    }

    /// The maximum offline credential age, if any.
    pub fn max_offline(&self) -> Option<chrono::Duration> {
        let secs = self
            .inner
            .max_offline_secs
            .load(std::sync::atomic::Ordering::Relaxed);
        (secs > 0).then(|| chrono::Duration::seconds(secs))
    }

    /// Ends one session for good (persisted first, then at once in the gate: its next
    /// request is refused and its WebSockets close).
    pub async fn end_session(
        &self,
        id: String,
        user: healsync_domain::UserId,
        expires_at: i64,
    ) -> Result<(), ApiError> {
        let store = self.inner.store.clone();
        let now = self.now();
        let key = id.clone();
        tokio::task::spawn_blocking(move || store.end_session(&key, user, expires_at, now))
            .await
            .map_err(ApiError::internal)??;
        self.inner.accounts.gate().end_sessions([id]);
        Ok(())
    }

    /// Publishes committed changes; an account among them reloads the gate first, so
    /// the next request already meets the account as it now is. (The write is
    /// committed whatever happens here: a failed reload is retried by the periodic
    /// one.)
    async fn committed(&self, changed: Vec<healsync_records::AnyRecord>) {
        let accounts_changed = changed
            .iter()
            .any(|r| matches!(r, healsync_records::AnyRecord::User(_)));
        if accounts_changed && let Err(e) = self.refresh_accounts().await {
            tracing::warn!("could not reload the accounts after a change: {e:?}");
        }
        self.inner.events.publish(changed);
    }

    pub fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    /// Runs a write transaction on a blocking thread and, once it is committed, publishes
    /// the records it changed.
    pub async fn write<T, F>(&self, who: AuditContext, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteTx<'_>) -> Result<T, ApiError> + Send + 'static,
    {
        let store = self.inner.store.clone();
        let now = self.now();
        let (value, changed) = tokio::task::spawn_blocking(move || store.write_as(now, &who, f))
            .await
            .map_err(ApiError::internal)??;
        self.committed(changed).await;
        Ok(value)
    }

    /// Runs a read on a blocking thread with one of the store's reader connections.
    pub async fn read<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.inner.store.clone();
        tokio::task::spawn_blocking(move || store.read(f))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::from)
    }

    /// Records reads in the audit trail and returns once they are committed. Requests
    /// that finish together share one transaction: whoever takes the turn records
    /// everything queued by then, the others find theirs done.
    pub async fn record_reads(&self, reads: Vec<Reads>) -> Result<(), ApiError> {
        if reads.iter().all(|r| r.records.is_empty()) {
            return Ok(());
        }
        let (done, recorded) = tokio::sync::oneshot::channel();
        self.inner
            .reads
            .lock()
            .map_err(|_| ApiError::internal("the read queue is poisoned"))?
            .push((reads, done));
        {
            let _turn = self.inner.reads_turn.lock().await;
            let queued = std::mem::take(
                &mut *self
                    .inner
                    .reads
                    .lock()
                    .map_err(|_| ApiError::internal("the read queue is poisoned"))?,
            );
            if !queued.is_empty() {
                let store = self.inner.store.clone();
                let now = self.now();
                // The waiters travel with the work: if this request goes away, the
                // others still hear how it went.
                let work = tokio::task::spawn_blocking(move || {
                    let (batches, waiters): (Vec<Vec<Reads>>, Vec<ReadsDone>) =
                        queued.into_iter().unzip();
                    let all: Vec<Reads> = batches.into_iter().flatten().collect();
                    let outcome = store.record_reads(now, &all).map_err(|e| e.to_string());
                    for w in waiters {
                        let _ = w.send(outcome.clone());
                    }
                });
                work.await.map_err(ApiError::internal)?;
            }
        }
        recorded
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)
    }

    /// Merges changes received from the hub (one transaction, cursor included) and
    /// publishes the records they changed, exactly as local writes are published: open
    /// subscriptions see a booking made elsewhere. Returns how many records changed.
    pub async fn apply_remote(
        &self,
        changes: Vec<Incoming>,
        through: u64,
    ) -> Result<usize, ApiError> {
        let store = self.inner.store.clone();
        let now = self.now();
        let changed = tokio::task::spawn_blocking(move || {
            store.apply_remote_with(now, changes, through, &sends_for_merged(&store, now))
        })
        .await
        .map_err(ApiError::internal)??;
        let n = changed.len();
        self.committed(changed).await;
        Ok(n)
    }

    /// Tries the changes held back from earlier downloads again, once per process (see
    /// `Store::apply_remote`): a change held for its document is tried again whenever
    /// the document receives changes anyway, so what else can make one merge is a new
    /// version of this program, which starts a new process. What now merges is
    /// published like any remote change.
    pub async fn retry_held(&self) -> Result<usize, ApiError> {
        use std::sync::atomic::Ordering;
        if self.inner.held_retried.swap(true, Ordering::AcqRel) {
            return Ok(0);
        }
        let store = self.inner.store.clone();
        let now = self.now();
        let changed = tokio::task::spawn_blocking(move || {
            store.retry_held_with(now, &sends_for_merged(&store, now))
        })
        .await
        .map_err(ApiError::internal)??;
        let n = changed.len();
        self.committed(changed).await;
        Ok(n)
    }
}
