//! Logging in, one procedure for node and hub: who may try, how often, and a password
//! check whose cost does not depend on whether the account exists.
//!
//! - **Counted before checked**: every attempt takes its place in the rate limits
//!   before the password is hashed, so forty guesses sent at once are forty attempts,
//!   not forty free checks.
//! - **Throttled per (address, user name)**, with delays that grow: five attempts at
//!   once, then one every [`PAIR_SHORT_SECS`]; after twenty within the hour, one every
//!   [`PAIR_LONG_SECS`]. Someone guessing from one machine slows only their own
//!   guesses: staff at other machines still log in.
//! - **Throttled per address** across user names (no spraying one password over many
//!   accounts) and **per user name** from everywhere, with a burst large enough that
//!   one address cannot use it up alone.
//! - **Bounded work**: at most [`CONCURRENT_CHECKS`] password checks run at once
//!   (argon2id uses 19 MiB and tens of milliseconds each); an attempt that cannot get a
//!   turn within [`CHECK_WAIT`] is refused as busy.
//! - **Constant work**: one hash is checked for every account of that name the caller
//!   may use (accounts made at two clinics may share a name), and the decoy's when there
//!   is none (unknown, inactive, or of a role this server does not admit), so an
//!   unknown name and a wrong password take the same time.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use healsync_domain::User;

/// The address a request came from, as the transport saw it (request data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer(pub IpAddr);

/// Password checks running at once.
pub const CONCURRENT_CHECKS: usize = 2;
/// How long an attempt waits for a password check.
pub const CHECK_WAIT: Duration = Duration::from_secs(3);
/// Attempts per (address, user name) at once, then one every `PAIR_SHORT_SECS`.
pub const PAIR_BURST: u32 = 5;
pub const PAIR_SHORT_SECS: u64 = 12;
/// Attempts per (address, user name) within an hour, then one every `PAIR_LONG_SECS`.
pub const PAIR_HOURLY: u32 = 20;
pub const PAIR_LONG_SECS: u64 = 180;
/// Attempts per address over all user names, then one every 3 seconds.
pub const ADDRESS_BURST: u32 = 30;
/// Attempts per user name from every address, then one every 2 seconds.
pub const USER_BURST: u32 = 60;

/// Why a login was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginRefusal {
    #[error("too many login attempts; try again in {0} seconds")]
    RateLimited(u64),
    #[error("the server is busy checking passwords; try again in a moment")]
    Busy,
    #[error("invalid user name or password")]
    Invalid,
}

/// What the caller of a login was allowed: the place it took in the limits.
pub struct Admitted {
    username: String,
}

impl Admitted {
    /// The user name as looked up (trimmed, lower case).
    pub fn username(&self) -> &str {
        &self.username
    }
}

type Keyed<K> = DefaultKeyedRateLimiter<K>;

/// The login procedure's state: rate limits, the decoy hash, the check bound.
pub struct Login {
    decoy: String,
    pair_short: Keyed<(Option<IpAddr>, String)>,
    pair_long: Keyed<(Option<IpAddr>, String)>,
    address: Keyed<Option<IpAddr>>,
    user: Keyed<String>,
    checks: tokio::sync::Semaphore,
}

fn quota(burst: u32, every: Duration) -> Quota {
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(every)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

impl Login {
    pub fn new() -> Result<Login, crate::AuthError> {
        Ok(Login {
            decoy: crate::decoy_hash()?,
            pair_short: RateLimiter::keyed(quota(PAIR_BURST, Duration::from_secs(PAIR_SHORT_SECS))),
            pair_long: RateLimiter::keyed(quota(PAIR_HOURLY, Duration::from_secs(PAIR_LONG_SECS))),
            address: RateLimiter::keyed(quota(ADDRESS_BURST, Duration::from_secs(3))),
            user: RateLimiter::keyed(quota(USER_BURST, Duration::from_secs(2))),
            checks: tokio::sync::Semaphore::new(CONCURRENT_CHECKS),
        })
    }

    /// Takes an attempt's place in every limit, before anything is looked up or
    /// hashed. Refused when any limit is spent.
    pub fn admit(&self, username: &str, peer: Option<Peer>) -> Result<Admitted, LoginRefusal> {
        let username: String = username.trim().to_lowercase().chars().take(200).collect();
        let ip = peer.map(|p| p.0);
        let pair = (ip, username.clone());
        let clock = governor::clock::DefaultClock::default();
        let wait = |r: Result<(), governor::NotUntil<_>>| {
            r.map_err(|n| {
                use governor::clock::Clock;
                LoginRefusal::RateLimited(n.wait_time_from(clock.now()).as_secs().max(1))
            })
        };
        self.forget_old();
        wait(self.address.check_key(&ip))?;
        wait(self.user.check_key(&username))?;
        wait(self.pair_long.check_key(&pair))?;
        wait(self.pair_short.check_key(&pair))?;
        Ok(Admitted { username })
    }

    /// Checks `password` against the accounts among `candidates` (accounts of that
    /// name) that are active and that `usable` admits, or against the decoy when there
    /// is none; the first that matches logs in.
    pub async fn verify(
        &self,
        _admitted: Admitted,
        password: &str,
        candidates: Vec<User>,
        usable: impl Fn(&User) -> bool,
    ) -> Result<User, LoginRefusal> {
        if password.len() > 1024 {
            return Err(LoginRefusal::Invalid);
        }
        let accounts: Vec<User> = candidates
            .into_iter()
            .filter(|u| u.active && usable(u))
            .collect();
        let permit = tokio::time::timeout(CHECK_WAIT, self.checks.acquire())
            .await
            .map_err(|_| LoginRefusal::Busy)?
            .map_err(|_| LoginRefusal::Busy)?;
        let password = password.to_string();
        let decoy = self.decoy.clone();
        let found = tokio::task::spawn_blocking(move || {
            if accounts.is_empty() {
                crate::verify_password(&password, &decoy);
                return None;
            }
            accounts
                .into_iter()
                .find(|u| crate::verify_password(&password, &u.password_hash))
        })
        .await
        .ok()
        .flatten();
        drop(permit);
        found.ok_or(LoginRefusal::Invalid)
    }

    /// Keeps the limiters' memory bounded when many keys were tried.
    fn forget_old(&self) {
        fn trim<K: Hash + Eq + Clone>(l: &Keyed<K>) {
            if l.len() > 10_000 {
                l.retain_recent();
            }
        }
        trim(&self.pair_short);
        trim(&self.pair_long);
        trim(&self.address);
        trim(&self.user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use healsync_domain::{Role, UserId};

    fn account(role: Role, password: &str) -> User {
        User {
            id: UserId(uuid::Uuid::now_v7()),
            username: "amina".into(),
            role,
            password_hash: crate::hash_password(password).expect("hash"),
            patient_id: None,
            doctor_id: None,
            active: true,
            sites: Vec::new(),
            credentials_changed_at: None,
        }
    }

    fn peer(n: u8) -> Option<Peer> {
        Some(Peer(IpAddr::from([10, 0, 0, n])))
    }

    #[tokio::test]
    async fn attempts_are_counted_before_they_are_checked_and_per_address() {
        let login = Login::new().expect("login");
        // Five at once from one address are admitted; the sixth is refused before
        // anything is hashed.
        for _ in 0..PAIR_BURST {
            login.admit("amina", peer(1)).expect("admitted");
        }
        assert!(matches!(
            login.admit("Amina ", peer(1)),
            Err(LoginRefusal::RateLimited(_))
        ));
        // The same user from another machine is not locked out.
        let a = login.admit("amina", peer(2)).expect("another address");
        let u = login
            .verify(
                a,
                "right password",
                vec![account(Role::Admin, "right password")],
                |_| true,
            )
            .await;
        assert!(u.is_ok());
    }

    #[tokio::test]
    async fn accounts_of_two_clinics_may_share_a_name() {
        let login = Login::new().expect("login");
        let (a, b) = (
            account(Role::Receptionist, "nairobi"),
            account(Role::Receptionist, "mombasa"),
        );
        for (password, expected) in [("nairobi", a.id), ("mombasa", b.id)] {
            let admitted = login.admit("amina", peer(7)).expect("admitted");
            let u = login
                .verify(admitted, password, vec![a.clone(), b.clone()], |_| true)
                .await
                .expect("logs in");
            assert_eq!(u.id, expected);
        }
    }

    #[tokio::test]
    async fn refusals_look_alike() {
        let login = Login::new().expect("login");
        let cases: Vec<(&str, Vec<User>, bool)> = vec![
            ("unknown user", vec![], false),
            (
                "wrong password",
                vec![account(Role::Admin, "right password")],
                false,
            ),
            (
                "role not admitted",
                vec![account(Role::Doctor, "wrong")],
                false,
            ),
            ("right password", vec![account(Role::Admin, "wrong")], true),
        ];
        for (what, candidates, ok) in cases {
            let a = login.admit("amina", peer(9)).expect("admitted");
            let got = login
                .verify(a, "wrong", candidates, |u| u.role == Role::Admin)
                .await;
            assert_eq!(got.is_ok(), ok, "{what}");
            if !ok {
                assert_eq!(got.err(), Some(LoginRefusal::Invalid), "{what}");
            }
        }
    }
}
