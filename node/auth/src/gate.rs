//! The session gate: whether a signed session token still speaks for its account. A
//! signature proves who logged in and when; the account decides whether that still
//! holds (disabled, moved, given another role or site limits, its password changed).
//! Node and hub each keep one, with their own rule of what an account's standing is
//! ([`Standing`]).
//!
//! The gate holds every account's standing in memory (hundreds of accounts, not
//! millions), so a request's check is a map look-up. Its owner reloads it whenever an
//! account changes in its process, at every login, and every few seconds (another
//! process may change accounts); each reload that changes anything bumps a generation
//! that open WebSockets watch ([`Gate::ended`]).

use std::collections::HashMap;
use std::sync::RwLock;

use healsync_domain::UserId;
use healsync_domain::user::SessionEnd;
use tokio::sync::watch;

use crate::Claims;

/// An account as a gate keeps it, and its rule for the sessions it opened.
pub trait Standing: PartialEq + Send + Sync {
    fn holds(&self, claims: &Claims) -> Result<(), SessionEnd>;
}

pub struct Gate<S> {
    known: RwLock<HashMap<UserId, S>>,
    generation: watch::Sender<u64>,
}

impl<S: Standing> Default for Gate<S> {
    fn default() -> Self {
        Gate {
            known: RwLock::new(HashMap::new()),
            generation: watch::channel(0).0,
        }
    }
}

impl<S: Standing> Gate<S> {
    /// Replaces what the gate knows; wakes the watchers when anything changed.
    pub fn load(&self, accounts: impl IntoIterator<Item = (UserId, S)>) {
        let fresh: HashMap<UserId, S> = accounts.into_iter().collect();
        let changed = match self.known.write() {
            Ok(mut known) if *known != fresh => {
                *known = fresh;
                true
            }
            Ok(_) => false,
            Err(poisoned) => {
                *poisoned.into_inner() = fresh;
                true
            }
        };
        if changed {
            self.generation.send_modify(|g| *g += 1);
        }
    }

    /// Asks `f` about the standing of an account (`None`: the gate does not hold it).
    pub fn with<T>(&self, id: UserId, f: impl FnOnce(Option<&S>) -> T) -> T {
        match self.known.read() {
            Ok(known) => f(known.get(&id)),
            Err(_) => f(None),
        }
    }

    /// Whether the session these verified claims open still holds. An account the
    /// gate does not hold holds no session.
    pub fn check(&self, claims: &Claims) -> Result<(), SessionEnd> {
        self.with(claims.sub, |s| match s {
            Some(standing) => standing.holds(claims),
            None => Err(SessionEnd::Unknown),
        })
    }

    /// Resolves with the reason once the session of `claims` no longer holds (checked
    /// whenever an account changes).
    pub fn ended(
        &self,
        claims: Claims,
    ) -> impl std::future::Future<Output = SessionEnd> + use<'_, S> {
        let mut changes = self.generation.subscribe();
        async move {
            loop {
                if let Err(end) = self.check(&claims) {
                    return end;
                }
                if changes.changed().await.is_err() {
                    return std::future::pending().await;
                }
            }
        }
    }
}
