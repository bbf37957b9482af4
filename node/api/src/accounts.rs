//! The node's session gate (`healsync_auth::gate`): a session holds while its account
//! is admitted at this clinic and unchanged since the session opened
//! (`User::session_holds`). Disabled, moved off this site, given another role, or its
//! password changed (at the clinic, or at the hub and synced down): each ends the
//! sessions opened before, at their next request and on open WebSockets. The node
//! reloads it from the store whenever a write or a merge changes an account, at every
//! login, and every few seconds (the `sync` command merges from another process).

use healsync_auth::Claims;
use healsync_auth::gate::{Gate, Standing};
use healsync_domain::user::SessionEnd;
use healsync_domain::{SiteCode, User};

/// An account as the node's gate keeps it: the record, less its password hash, and
/// whether this node created it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtClinic {
    user: User,
    created_here: bool,
    site: SiteCode,
}

impl Standing for AtClinic {
    fn holds(&self, claims: &Claims) -> Result<(), SessionEnd> {
        self.user
            .session_holds(&self.site, self.created_here, claims.facts())
    }
}

pub struct Accounts {
    site: SiteCode,
    gate: Gate<AtClinic>,
}

impl Accounts {
    pub fn new(site: SiteCode) -> Accounts {
        Accounts {
            site,
            gate: Gate::default(),
        }
    }

    /// Replaces what the gate knows with `accounts` (from `queries::accounts`).
    pub fn load(&self, accounts: Vec<(User, bool)>) {
        self.gate
            .load(accounts.into_iter().map(|(user, created_here)| {
                let user = User {
                    password_hash: String::new(),
                    ..user
                };
                (
                    user.id,
                    AtClinic {
                        user,
                        created_here,
                        site: self.site.clone(),
                    },
                )
            }));
    }

    /// Whether a login of `user` is admitted here (the account as just read for the
    /// password check; the gate only adds whether this node created it).
    pub fn admits(&self, user: &User) -> Result<(), SessionEnd> {
        let created_here = self
            .gate
            .with(user.id, |s| s.is_some_and(|s| s.created_here));
        user.admitted_at(&self.site, created_here)
    }

    /// The accounts that work at this clinic (active or not), by user name: what its
    /// administrator administers; other clinics' accounts held here are not theirs.
    pub fn working_here(&self, limit: usize, offset: usize) -> Vec<User> {
        let mut here = self.gate.all(|s: &AtClinic| {
            s.user
                .works_at(&self.site, s.created_here)
                .then(|| s.user.clone())
        });
        here.sort_by(|a, b| (&a.username, a.id.0).cmp(&(&b.username, b.id.0)));
        here.into_iter().skip(offset).take(limit).collect()
    }

    /// Whether the session these verified claims open still holds.
    pub fn check(&self, claims: &Claims) -> Result<(), SessionEnd> {
        self.gate.check(claims)
    }

    /// The gate itself: ended sessions, the idle limit, the list of sessions.
    pub fn gate(&self) -> &Gate<AtClinic> {
        &self.gate
    }

    /// Resolves with the reason once the session of `claims` no longer holds.
    pub fn ended(&self, claims: Claims) -> impl std::future::Future<Output = SessionEnd> + use<'_> {
        self.gate.ended(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use healsync_domain::{Role, UserId, user::SessionEnd};
    use uuid::Uuid;

    fn site(code: &str) -> SiteCode {
        SiteCode::parse(code).expect("site")
    }

    fn account(sites: &[&str]) -> User {
        User {
            id: UserId(Uuid::now_v7()),
            username: "wanjiru".into(),
            role: Role::Receptionist,
            password_hash: "$argon2id$...".into(),
            patient_id: None,
            doctor_id: None,
            active: true,
            sites: sites.iter().map(|s| site(s)).collect(),
            credentials_changed_at: None,
        }
    }

    fn claims(u: &User, iat: i64) -> Claims {
        Claims {
            sub: u.id,
            username: u.username.clone(),
            role: u.role,
            patient_id: u.patient_id,
            doctor_id: u.doctor_id,
            sites: None,
            iss: "node".into(),
            aud: None,
            sid: Some(format!("s-{iat}")),
            iat,
            iat_ms: None,
            exp: iat + 3600,
        }
    }

    #[test]
    fn a_session_holds_while_its_account_does() {
        let gate = Accounts::new(site("NBO"));
        let u = account(&["NBO"]);
        let c = claims(&u, 1_000);
        assert_eq!(gate.check(&c), Err(SessionEnd::Unknown));
        gate.load(vec![(u.clone(), false)]);
        assert_eq!(gate.check(&c), Ok(()));
        assert_eq!(gate.admits(&u), Ok(()));

        // The session opened at 1 000 s exactly; a change a millisecond later ends it.
        let at = |secs, ms: u32| chrono::DateTime::from_timestamp(secs, ms * 1_000_000);
        let cases: Vec<(User, bool, Result<(), SessionEnd>)> = vec![
            (
                User {
                    active: false,
                    ..u.clone()
                },
                false,
                Err(SessionEnd::Disabled),
            ),
            (account(&["MSA"]), false, Err(SessionEnd::NotAtThisSite)),
            (
                User {
                    sites: vec![site("MSA")],
                    ..u.clone()
                },
                false,
                Err(SessionEnd::NotAtThisSite),
            ),
            (
                User {
                    sites: vec![site("MSA"), site("NBO")],
                    ..u.clone()
                },
                false,
                Ok(()),
            ),
            (
                User {
                    role: Role::Admin,
                    ..u.clone()
                },
                false,
                Err(SessionEnd::Changed),
            ),
            (
                User {
                    credentials_changed_at: at(1_000, 1),
                    ..u.clone()
                },
                false,
                Err(SessionEnd::CredentialsChanged),
            ),
            (
                User {
                    credentials_changed_at: at(1_000, 0),
                    ..u.clone()
                },
                false,
                Ok(()),
            ),
            // Older than site-scoped roles: only where it was created.
            (
                User {
                    sites: vec![],
                    ..u.clone()
                },
                false,
                Err(SessionEnd::NotAtThisSite),
            ),
            (
                User {
                    sites: vec![],
                    ..u.clone()
                },
                true,
                Ok(()),
            ),
            (
                User {
                    role: Role::Finance,
                    ..u.clone()
                },
                true,
                Err(SessionEnd::NotAtThisSite),
            ),
        ];
        for (i, (account, created_here, expected)) in cases.into_iter().enumerate() {
            let same_id = User {
                id: u.id,
                ..account
            };
            gate.load(vec![(same_id, created_here)]);
            assert_eq!(gate.check(&c), expected, "case {i}");
        }
    }

    #[tokio::test]
    async fn an_open_session_ends_when_its_account_is_disabled() {
        let gate = Accounts::new(site("NBO"));
        let u = account(&["NBO"]);
        gate.load(vec![(u.clone(), false)]);
        let ended = gate.ended(claims(&u, 1_000));
        tokio::pin!(ended);
        // Another account changing wakes the watcher, which finds this one holds.
        gate.load(vec![(u.clone(), false), (account(&["NBO"]), false)]);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), &mut ended)
                .await
                .is_err()
        );
        gate.load(vec![(User { active: false, ..u }, false)]);
        assert_eq!(ended.await, SessionEnd::Disabled);
    }
}
