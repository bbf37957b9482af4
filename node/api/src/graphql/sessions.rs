//! Sessions over GraphQL: anyone signed in ends their own (`logout`); an ADMIN lists
//! the sessions this node has served since it started and ends any of them
//! (`endSession`). An ended session is refused at its next request and its
//! WebSockets close; the end is kept in the node's store until the token would have
//! expired, so a restart does not revive it.

use async_graphql::{Context, ID, Object, Result, SimpleObject};
use healsync_domain::Role;

use super::types::ts;
use super::{node, page, session};
use crate::ApiError;

/// A session this node has served.
#[derive(SimpleObject)]
pub struct ActiveSession {
    /// What `endSession` takes.
    pub id: ID,
    pub username: String,
    pub role: String,
    pub opened_at: String,
    pub last_seen_at: String,
    pub expires_at: String,
    /// The address of its last request.
    pub address: Option<String>,
    /// Whether it is the session asking.
    pub current: bool,
}

fn millis(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(ts)
        .unwrap_or_default()
}

#[derive(Default)]
pub struct SessionsQuery;

#[Object]
impl SessionsQuery {
    /// The sessions this node has served since it started that have neither expired
    /// nor been ended, most recently active first (ADMIN only).
    async fn sessions(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 100)] limit: i32,
    ) -> Result<Vec<ActiveSession>> {
        let s = session(ctx)?;
        s.require(&[Role::Admin])?;
        let (limit, _) = page(limit, 0)?;
        let node = node(ctx)?;
        let mine = s.opened.as_ref().map(|o| o.key.clone());
        let list = node
            .accounts()
            .gate()
            .sessions(node.now().timestamp_millis());
        Ok(list
            .into_iter()
            .take(limit as usize)
            .map(|(id, seen)| ActiveSession {
                current: mine.as_deref() == Some(id.as_str()),
                id: ID(id),
                username: seen.username,
                role: seen.role.as_str().into(),
                opened_at: millis(seen.opened_ms),
                last_seen_at: millis(seen.last_ms),
                expires_at: chrono::DateTime::from_timestamp(seen.expires, 0)
                    .map(ts)
                    .unwrap_or_default(),
                address: seen.peer.map(|p| p.to_string()),
            })
            .collect())
    }
}

#[derive(Default)]
pub struct SessionsMutation;

#[Object]
impl SessionsMutation {
    /// Ends the session asking: its token is refused from now on, here.
    async fn logout(&self, ctx: &Context<'_>) -> Result<bool> {
        let s = session(ctx)?;
        let opened = s
            .opened
            .clone()
            .ok_or_else(|| ApiError::BadInput("this session has no token to end".into()))?;
        node(ctx)?
            .end_session(opened.key, s.user_id, opened.expires)
            .await?;
        Ok(true)
    }

    /// Ends a session this node has served (ADMIN only; `sessions` lists them).
    /// Returns false when there is no such live session.
    async fn end_session(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let s = session(ctx)?;
        s.require(&[Role::Admin])?;
        if id.len() > 200 {
            return Err(ApiError::BadInput("not a session id".into()).into());
        }
        let node = node(ctx)?;
        let found = node
            .accounts()
            .gate()
            .sessions(node.now().timestamp_millis())
            .into_iter()
            .find(|(key, _)| *key == id.0);
        let Some((key, seen)) = found else {
            return Ok(false);
        };
        node.end_session(key, seen.user, seen.expires).await?;
        Ok(true)
    }
}
