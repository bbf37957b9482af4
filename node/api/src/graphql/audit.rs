//! The audit trail over GraphQL: an ADMIN reads the clinic's (by patient, by user, by
//! time, break-glass only); a PATIENT reads who accessed their own records, and when.

use async_graphql::{Context, Enum, ID, Object, Result};
use healsync_domain::Role;
use healsync_domain::audit::{Access, AuditEvent};
use healsync_store::audit::{self, AuditFilter};

use super::inputs::parse_id;
use super::types::ts;
use super::{node, page, parse_instant, session};
use crate::ApiError;

/// Whether an audit event records a read or a write.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "AuditAccess")]
pub enum GqlAccess {
    Read,
    Write,
    /// An access the policy refused: nothing of the record was shown.
    Refused,
}

impl From<Access> for GqlAccess {
    fn from(a: Access) -> Self {
        match a {
            Access::Read => GqlAccess::Read,
            Access::Write => GqlAccess::Write,
            Access::Refused => GqlAccess::Refused,
        }
    }
}

/// One access to one record of health data.
pub struct AuditEventObj(AuditEvent);

#[Object(name = "AuditEvent")]
impl AuditEventObj {
    /// The event's number in this node's chain (1, 2, 3, ...).
    async fn seq(&self) -> i64 {
        i64::try_from(self.0.seq).unwrap_or(i64::MAX)
    }
    /// When, by the node's clock (RFC 3339).
    async fn at(&self) -> String {
        ts(self.0.at)
    }
    /// The account, or `system:<what>` for the node itself.
    async fn username(&self) -> &str {
        &self.0.actor.username
    }
    async fn role(&self) -> Option<super::types::GqlRole> {
        self.0.actor.role.map(Into::into)
    }
    async fn site(&self) -> &str {
        &self.0.site
    }
    async fn access(&self) -> GqlAccess {
        self.0.access.into()
    }
    /// The record's kind (`patient`, `appointment`, `medical_record`, `invoice`, ...).
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    async fn record_id(&self) -> ID {
        ID(self.0.record_id.to_string())
    }
    async fn patient_id(&self) -> Option<ID> {
        self.0.patient_id.map(|p| ID(p.to_string()))
    }
    /// The operation (`book`, `append_entry`, ...).
    async fn operation(&self) -> &str {
        &self.0.operation
    }
    /// The client's address, when known.
    async fn peer(&self) -> Option<&str> {
        self.0.peer.as_deref()
    }
    /// The reason given for the access (break-glass).
    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }
}

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// The audit trail of health data at this node, newest first. ADMIN: every event,
    /// filtered by patient, account, time (`from` inclusive, `to` exclusive, RFC 3339)
    /// or to those with a reason given (break-glass). PATIENT: the events about their
    /// own records only (who, when, what), whatever `patientId` says. Others:
    /// FORBIDDEN.
    #[allow(clippy::too_many_arguments)]
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        patient_id: Option<ID>,
        username: Option<String>,
        from: Option<String>,
        to: Option<String>,
        #[graphql(default = false)] break_glass: bool,
        #[graphql(default = 50)] limit: i32,
        #[graphql(default = 0)] offset: i32,
    ) -> Result<Vec<AuditEventObj>> {
        let s = session(ctx)?;
        let (limit, offset) = page(limit, offset)?;
        let patient = patient_id.map(|p| parse_id(&p)).transpose()?;
        let patient = match s.role {
            Role::Admin => patient,
            Role::Patient => {
                let own = s.patient_id.ok_or_else(ApiError::forbidden)?;
                if patient.is_some_and(|p| p != own) {
                    return Err(ApiError::Forbidden(
                        "a patient reads the accesses to their own records".into(),
                    )
                    .into());
                }
                Some(own)
            }
            _ => return Err(ApiError::forbidden().into()),
        };
        let username = username
            .map(|u| healsync_domain::user::parse_username(&u))
            .transpose()
            .map_err(ApiError::from)?;
        let from = from.map(|t| parse_instant("from", &t)).transpose()?;
        let to = to.map(|t| parse_instant("to", &t)).transpose()?;
        let filter = AuditFilter {
            patient,
            username,
            from,
            to,
            with_reason: break_glass,
            limit,
            offset,
        };
        let events = node(ctx)?.read(move |c| audit::events(c, &filter)).await?;
        Ok(events.into_iter().map(AuditEventObj).collect())
    }
}
