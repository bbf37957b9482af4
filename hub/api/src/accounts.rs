//! The hub's session gate (`healsync_auth::gate`): a central account's session holds
//! while the account is active, still central, unchanged since the session opened
//! (`User::still_as_opened`), and limited to the same sites as its token says. A
//! disabled account, a new role, new site limits or a password reset at the hub end
//! its sessions at their next request and close the WebSockets they opened.

use healsync_auth::Claims;
use healsync_auth::gate::Standing;
use healsync_domain::user::SessionEnd;
use healsync_domain::{User, UserId};
use healsync_hub_store::accounts::Account;

/// A central account as the gate keeps it (without its password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Central {
    user: User,
    limited_to: Option<Vec<String>>,
}

impl From<Account> for Central {
    fn from(a: Account) -> Self {
        Central {
            user: User {
                password_hash: String::new(),
                ..a.user
            },
            limited_to: a.limited_to,
        }
    }
}

impl Central {
    /// The gate's entry for an account.
    pub fn entry(a: Account) -> (UserId, Central) {
        let c = Central::from(a);
        (c.user.id, c)
    }
}

impl Standing for Central {
    fn holds(&self, claims: &Claims) -> Result<(), SessionEnd> {
        if !self.user.active {
            return Err(SessionEnd::Disabled);
        }
        if !self.user.role.is_central() {
            return Err(SessionEnd::NotAtThisSite);
        }
        self.user.still_as_opened(claims.facts())?;
        if claims.sites != self.limited_to {
            return Err(SessionEnd::Changed);
        }
        Ok(())
    }
}
