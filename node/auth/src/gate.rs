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

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Mutex, RwLock};

use healsync_domain::user::SessionEnd;
use healsync_domain::{Role, UserId};
use tokio::sync::watch;

use crate::Claims;

/// An account as a gate keeps it, and its rule for the sessions it opened.
pub trait Standing: PartialEq + Send + Sync {
    fn holds(&self, claims: &Claims) -> Result<(), SessionEnd>;
}

pub struct Gate<S> {
    known: RwLock<HashMap<UserId, S>>,
    /// Sessions ended one by one (logged out, ended by an administrator), by id; the
    /// owner persists them and loads them back ([`Gate::load_ended`]).
    ended: RwLock<HashSet<String>>,
    /// The sessions that made requests since this process started, by id.
    seen: Mutex<HashMap<String, Seen>>,
    /// How long a session may go without a request, in milliseconds (0: no limit).
    idle_ms: std::sync::atomic::AtomicI64,
    generation: watch::Sender<u64>,
}

/// How long a session may go without a request unless its server says otherwise.
pub const DEFAULT_IDLE: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// A session as the gate saw it: who, since when, last request, from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub user: UserId,
    pub username: String,
    pub role: Role,
    /// Unix milliseconds.
    pub opened_ms: i64,
    pub last_ms: i64,
    /// Unix seconds.
    pub expires: i64,
    pub peer: Option<IpAddr>,
}

/// The key a session is known by: its id, or (for a token without one) its account
/// and opening time.
pub fn session_key(claims: &Claims) -> String {
    match &claims.sid {
        Some(sid) => sid.clone(),
        None => format!("{}:{}", claims.sub, claims.issued_ms()),
    }
}

/// How many sessions the gate tracks before it forgets the expired ones.
const SEEN_PRUNE_AT: usize = 4096;

impl<S: Standing> Default for Gate<S> {
    fn default() -> Self {
        Gate {
            known: RwLock::new(HashMap::new()),
            ended: RwLock::new(HashSet::new()),
            seen: Mutex::new(HashMap::new()),
            idle_ms: std::sync::atomic::AtomicI64::new(
                i64::try_from(DEFAULT_IDLE.as_millis()).unwrap_or(i64::MAX),
            ),
            generation: watch::channel(0).0,
        }
    }
}

impl<S: Standing> Gate<S> {
    /// Replaces what the gate knows; wakes the watchers when anything changed.
    pub fn load(&self, accounts: impl IntoIterator<Item = (UserId, S)>) {
        self.replace(&self.known, accounts.into_iter().collect());
    }

    /// Replaces the set of sessions ended one by one (as persisted); wakes the watchers
    /// when it changed.
    pub fn load_ended(&self, sessions: impl IntoIterator<Item = String>) {
        self.replace(&self.ended, sessions.into_iter().collect());
    }

    fn replace<T: PartialEq>(&self, slot: &RwLock<T>, fresh: T) {
        let changed = match slot.write() {
            Ok(mut held) if *held != fresh => {
                *held = fresh;
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

    /// Sets how long a session may go without a request (`None`: no limit).
    pub fn set_idle_limit(&self, idle: Option<std::time::Duration>) {
        let ms = idle.map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        self.idle_ms.store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// The idle limit in milliseconds, if any.
    pub fn idle_limit_ms(&self) -> Option<i64> {
        let ms = self.idle_ms.load(std::sync::atomic::Ordering::Relaxed);
        (ms > 0).then_some(ms)
    }

    /// Ends sessions by id at once (the owner persists them first).
    pub fn end_sessions(&self, sessions: impl IntoIterator<Item = String>) {
        match self.ended.write() {
            Ok(mut ended) => ended.extend(sessions),
            Err(poisoned) => poisoned.into_inner().extend(sessions),
        }
        self.generation.send_modify(|g| *g += 1);
    }

    /// Notes a request of the session `claims` at `now_ms` from `peer`; refused when
    /// the session was idle longer than the idle limit (since its last request, or
    /// since it opened when this process has seen none: a restart does not revive idle
    /// sessions).
    pub fn touch(
        &self,
        claims: &Claims,
        now_ms: i64,
        peer: Option<IpAddr>,
    ) -> Result<(), SessionEnd> {
        let idle_ms = self.idle_limit_ms();
        let Ok(mut seen) = self.seen.lock() else {
            return Err(SessionEnd::Idle);
        };
        if seen.len() >= SEEN_PRUNE_AT {
            let now = now_ms.div_euclid(1000);
            seen.retain(|_, s| s.expires > now);
        }
        let entry = seen.entry(session_key(claims)).or_insert_with(|| Seen {
            user: claims.sub,
            username: claims.username.clone(),
            role: claims.role,
            opened_ms: claims.issued_ms(),
            last_ms: claims.issued_ms(),
            expires: claims.exp,
            peer,
        });
        if idle_ms.is_some_and(|idle| now_ms.saturating_sub(entry.last_ms) > idle) {
            return Err(SessionEnd::Idle);
        }
        entry.last_ms = entry.last_ms.max(now_ms);
        if peer.is_some() {
            entry.peer = peer;
        }
        Ok(())
    }

    /// The sessions seen since this process started that have not expired or been
    /// ended, with their keys, most recently active first.
    pub fn sessions(&self, now_ms: i64) -> Vec<(String, Seen)> {
        let now = now_ms.div_euclid(1000);
        let ended = self.ended.read().map(|e| e.clone()).unwrap_or_default();
        let mut list: Vec<(String, Seen)> = self
            .seen
            .lock()
            .map(|seen| {
                seen.iter()
                    .filter(|(id, s)| s.expires > now && !ended.contains(*id))
                    .map(|(id, s)| (id.clone(), s.clone()))
                    .collect()
            })
            .unwrap_or_default();
        list.sort_by_key(|s| std::cmp::Reverse(s.1.last_ms));
        list
    }

    /// What `pick` takes from each account the gate holds.
    pub fn all<T>(&self, pick: impl Fn(&S) -> Option<T>) -> Vec<T> {
        match self.known.read() {
            Ok(known) => known.values().filter_map(pick).collect(),
            Err(_) => Vec::new(),
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
        let ended = self
            .ended
            .read()
            .map(|e| e.contains(&session_key(claims)))
            .unwrap_or(true);
        if ended {
            return Err(SessionEnd::SignedOut);
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use healsync_domain::Role;
    use uuid::Uuid;

    /// Every known account's sessions hold.
    #[derive(PartialEq)]
    struct Known;

    impl Standing for Known {
        fn holds(&self, _: &Claims) -> Result<(), SessionEnd> {
            Ok(())
        }
    }

    fn claims(sid: &str, iat_ms: i64) -> Claims {
        Claims {
            sub: UserId(Uuid::nil()),
            username: "wanjiru".into(),
            role: Role::Receptionist,
            patient_id: None,
            doctor_id: None,
            sites: None,
            iss: "node".into(),
            aud: None,
            sid: Some(sid.into()),
            iat: iat_ms / 1000,
            iat_ms: Some(iat_ms),
            exp: iat_ms / 1000 + 3600,
        }
    }

    #[test]
    fn an_ended_or_idle_session_no_longer_holds() {
        let gate = Gate::default();
        gate.load([(UserId(Uuid::nil()), Known)]);
        let (a, b) = (claims("a", 1_000_000), claims("b", 1_000_000));
        gate.set_idle_limit(Some(std::time::Duration::from_secs(60)));
        // (session, request at, expected)
        let steps: &[(&Claims, i64, Result<(), SessionEnd>)] = &[
            (&a, 1_030_000, Ok(())),
            (&a, 1_089_000, Ok(())),
            // 61 s after its last request.
            (&a, 1_150_001, Err(SessionEnd::Idle)),
            // Never seen by this process: idle since it opened.
            (&b, 1_061_000, Err(SessionEnd::Idle)),
        ];
        for (i, (c, at, expected)) in steps.iter().enumerate() {
            let outcome = gate.check(c).and_then(|()| gate.touch(c, *at, None));
            assert_eq!(outcome, *expected, "step {i}");
        }
        let c = claims("c", 2_000_000);
        assert_eq!(gate.touch(&c, 2_000_500, None), Ok(()));
        assert_eq!(gate.sessions(2_000_600).len(), 3);
        gate.end_sessions(["c".to_string()]);
        assert_eq!(gate.check(&c), Err(SessionEnd::SignedOut));
        assert!(gate.sessions(2_000_600).iter().all(|(id, _)| id != "c"));
        // Reloading what was persisted keeps it ended; a new list may lift it.
        gate.load_ended(["c".to_string()]);
        assert_eq!(gate.check(&c), Err(SessionEnd::SignedOut));
        gate.load_ended(Vec::<String>::new());
        assert_eq!(gate.check(&c), Ok(()));
    }

    #[tokio::test]
    async fn an_ended_session_wakes_its_watchers() {
        let gate = Gate::default();
        gate.load([(UserId(Uuid::nil()), Known)]);
        let c = claims("live", 1_000);
        let ended = gate.ended(c.clone());
        tokio::pin!(ended);
        gate.end_sessions(["live".to_string()]);
        assert_eq!(ended.await, SessionEnd::SignedOut);
    }
}
