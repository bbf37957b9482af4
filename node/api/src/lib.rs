//! The clinic node's API: services that apply the domain rules through the store, the
//! access policy, the live event stream, and the GraphQL schema on top of them.
//!
//! The data path of every write: resolver parses input → service checks access and
//! runs `store.write` (domain rule + document + projection + change log in one SQLite
//! transaction) on a blocking thread → after the commit, the changed records go to the
//! [`events::EventBus`], which feeds every GraphQL subscription. Changes merged from the
//! hub ([`Node::apply_remote`]) go to the same bus. This crate knows nothing of HTTP.

pub mod demo;
pub mod error;
pub mod events;
pub mod graphql;
pub mod service;
pub mod session;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use healsync_auth::SessionKeys;
use healsync_store::audit::AuditContext;
use healsync_store::{Connection, Incoming, Store, StoreError, WriteTx};

pub use error::ApiError;
pub use events::EventBus;
pub use graphql::{NodeSchema, build_schema, schema_sdl};
pub use healsync_auth::Peer;
pub use session::Session;

/// Everything a request needs: the store, the session keys, the event bus.
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<Store>,
    keys: SessionKeys,
    events: EventBus,
    login: healsync_auth::Login,
    /// Whether this process has tried the held changes again (see `retry_held`).
    held_retried: std::sync::atomic::AtomicBool,
}

impl Node {
    pub fn new(store: Arc<Store>, keys: SessionKeys) -> Result<Node, ApiError> {
        let login = healsync_auth::Login::new().map_err(ApiError::internal)?;
        Ok(Node {
            inner: Arc::new(Inner {
                store,
                keys,
                events: EventBus::new(),
                login,
                held_retried: std::sync::atomic::AtomicBool::new(false),
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
        self.inner.events.publish(changed);
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
        let changed =
            tokio::task::spawn_blocking(move || store.apply_remote(now, changes, through))
                .await
                .map_err(ApiError::internal)??;
        let n = changed.len();
        self.inner.events.publish(changed);
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
        let changed = tokio::task::spawn_blocking(move || store.retry_held(now))
            .await
            .map_err(ApiError::internal)??;
        let n = changed.len();
        self.inner.events.publish(changed);
        Ok(n)
    }
}
