//! The hub's API for central admins, over the hub store: sessions (the same login and
//! tokens as on the nodes), the GraphQL schema (sites and nodes with their sync state,
//! records and appointments across sites, cross-site scheduling and booking, conflicts),
//! the projector loop that folds uploaded changes into the hub's documents, and the
//! fan-out that feeds this replica's subscriptions from every replica's announcements.
//! Knows nothing of HTTP.

pub mod accounts;
pub mod error;
pub mod fanout;
pub mod graphql;
pub mod projector;

use std::sync::Arc;

use healsync_auth::{Login, SessionKeys};
use healsync_hub_store::{CrossSiteConflict, DocumentChanged, HubStore};
use tokio::sync::{Notify, broadcast};

pub use error::HubApiError;
pub use graphql::{HubSchema, build_schema, schema_sdl};

/// Something that changed at the hub, for subscriptions.
#[derive(Debug, Clone)]
pub enum HubEvent {
    Document(DocumentChanged),
    CrossSite(CrossSiteConflict),
}

/// Everything a request needs.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    store: HubStore,
    keys: SessionKeys,
    accounts: healsync_auth::gate::Gate<accounts::Central>,
    events: broadcast::Sender<HubEvent>,
    wake: Arc<Notify>,
    login: Login,
}

impl Hub {
    /// `wake` is notified when the log grows (an upload committed) so the projector
    /// runs at once instead of at its next tick.
    pub fn new(store: HubStore, keys: SessionKeys, wake: Arc<Notify>) -> Result<Hub, HubApiError> {
        let login = Login::new().map_err(HubApiError::internal)?;
        Ok(Hub {
            inner: Arc::new(Inner {
                store,
                keys,
                accounts: healsync_auth::gate::Gate::default(),
                events: broadcast::channel(1024).0,
                wake,
                login,
            }),
        })
    }

    pub fn store(&self) -> &HubStore {
        &self.inner.store
    }

    pub fn keys(&self) -> &SessionKeys {
        &self.inner.keys
    }

    /// The hub's session gate (see [`accounts`]).
    pub fn accounts(&self) -> &healsync_auth::gate::Gate<accounts::Central> {
        &self.inner.accounts
    }

    /// Reloads the session gate from the store: at start, at every login, after an
    /// account change made here, and periodically (the `users` commands run in
    /// another process).
    pub async fn refresh_accounts(&self) -> Result<(), HubApiError> {
        let all = self.inner.store.central_accounts().await?;
        let ended = self.inner.store.ended_sessions(chrono::Utc::now()).await?;
        self.inner
            .accounts
            .load(all.into_iter().map(accounts::Central::entry));
        self.inner.accounts.load_ended(ended);
        Ok(())
    }

    pub fn subscribe(&self) -> broadcast::Receiver<HubEvent> {
        self.inner.events.subscribe()
    }

    /// Hands an event to this replica's subscriptions (see `fanout`, the one caller).
    pub fn publish(&self, event: HubEvent) {
        // No subscriber is not an error.
        let _ = self.inner.events.send(event);
    }

    /// Whether any subscription is open on this replica.
    pub fn has_subscribers(&self) -> bool {
        self.inner.events.receiver_count() > 0
    }

    pub fn wake(&self) -> &Arc<Notify> {
        &self.inner.wake
    }
}
