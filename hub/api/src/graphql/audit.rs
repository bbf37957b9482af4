//! The nodes' audit trails as the hub holds them, for central ADMINs: who read, wrote
//! or was refused which record about a patient, at which node, when by the node's
//! clock and when the hub received it. An admin limited to sites reads those sites'
//! events only (the filter is in the store's query). FINANCE reads none.

use async_graphql::{Context, Enum, ID, Object, Result};
use healsync_domain::audit::Access;
use healsync_hub_store::audit::{AuditQuery as Query, HeldEvent};

use super::{admin, hub, instant, limit, offset, ts, uuid};
use crate::HubApiError;

/// Whether an audit event records a read, a write or a refused access.
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

/// One access to one record of health data, at a node.
pub struct AuditEventObj(HeldEvent);

#[Object(name = "AuditEvent")]
impl AuditEventObj {
    /// The event's number in its node's chain.
    async fn seq(&self) -> i64 {
        i64::try_from(self.0.event.seq).unwrap_or(i64::MAX)
    }
    /// When, by the node's clock (RFC 3339).
    async fn at(&self) -> String {
        ts(self.0.event.at)
    }
    /// When the hub received the event (RFC 3339).
    async fn received_at(&self) -> String {
        ts(self.0.received_at)
    }
    /// The node that recorded it.
    async fn node_id(&self) -> ID {
        ID(self.0.node_id.to_string())
    }
    /// The account, or `system:<what>` for the node itself.
    async fn username(&self) -> &str {
        &self.0.event.actor.username
    }
    /// The account's role (`DOCTOR`, ...), when an account acted.
    async fn role(&self) -> Option<&str> {
        self.0.event.actor.role.map(|r| r.as_str())
    }
    async fn site(&self) -> &str {
        &self.0.event.site
    }
    async fn access(&self) -> GqlAccess {
        self.0.event.access.into()
    }
    /// The record's kind (`patient`, `appointment`, `medical_record`, ...).
    async fn kind(&self) -> &str {
        &self.0.event.kind
    }
    async fn record_id(&self) -> ID {
        ID(self.0.event.record_id.to_string())
    }
    async fn patient_id(&self) -> Option<ID> {
        self.0.event.patient_id.map(|p| ID(p.to_string()))
    }
    /// The operation or field (`bookAppointment`, `medicalHistory`, ...).
    async fn operation(&self) -> &str {
        &self.0.event.operation
    }
    /// The client's address at the clinic, when known.
    async fn peer(&self) -> Option<&str> {
        self.0.event.peer.as_deref()
    }
    /// The reason given for the access (break-glass).
    async fn reason(&self) -> Option<&str> {
        self.0.event.reason.as_deref()
    }
}

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// The audit trails the nodes shipped, newest first (by the node's clock): by site,
    /// patient, account, time (`from` inclusive, `to` exclusive, RFC 3339), or those
    /// with a reason given (break-glass). ADMIN, at its sites; others FORBIDDEN.
    #[allow(clippy::too_many_arguments)]
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        site: Option<String>,
        patient_id: Option<ID>,
        username: Option<String>,
        from: Option<String>,
        to: Option<String>,
        #[graphql(default = false)] break_glass: bool,
        #[graphql(default = 50)] limit: i32,
        #[graphql(default = 0)] offset: i32,
    ) -> Result<Vec<AuditEventObj>> {
        let a = admin(ctx)?;
        let q = Query {
            visible_to: a.sites().map(<[String]>::to_vec),
            site: a.site_filter(site)?,
            patient: patient_id.map(|p| uuid("patientId", &p)).transpose()?,
            username: username
                .map(|u| healsync_domain::user::parse_username(&u))
                .transpose()
                .map_err(HubApiError::from)?,
            from: from.map(|t| instant("from", &t)).transpose()?,
            to: to.map(|t| instant("to", &t)).transpose()?,
            with_reason: break_glass,
            limit: self::limit(limit, 500)?,
            offset: self::offset(offset)?,
        };
        let events = hub(ctx)?
            .store()
            .audit_events(&q)
            .await
            .map_err(HubApiError::from)?;
        Ok(events.into_iter().map(AuditEventObj).collect())
    }
}
