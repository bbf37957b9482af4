//! Messages to patients over GraphQL: a patient's channels (the patient or the front
//! desk), and the node's outbox (ADMIN), where failed messages show their reason.

use super::read_audit::audited;
use async_graphql::{Context, ID, Object, Result, SimpleObject};
use healsync_domain::messaging::{Channel, MessageStatus};
use healsync_domain::{PatientId, Role};
use healsync_store::outbox::{self, OutboxRow};

use super::inputs::parse_id;
use super::types::ts;
use super::{node, page, session};
use crate::ApiError;
use crate::service::messages;

gql_enum!(
    /// How a message reaches a patient.
    GqlChannel = "MessageChannel", Channel { Email, Sms });
gql_enum!(
    /// Where an outbox message stands: PENDING until a relay accepts it (SENT) or it
    /// fails for good (FAILED, with the reason).
    GqlMessageStatus = "MessageStatus", MessageStatus { Pending, Sent, Failed });

/// The channels a patient is messaged on.
#[derive(SimpleObject)]
#[graphql(name = "MessagePreferences")]
pub struct PreferencesObj {
    pub patient_id: ID,
    pub email: bool,
    pub sms: bool,
}

/// A message of this node's outbox.
pub struct OutboxObj(OutboxRow);

/// How a `OutboundMessage` resolves its fields; each output of [`OutboxObj`] is noted as a read
/// first (`read_audit`).
pub struct OutboxView(pub OutboxRow);

audited!(OutboxObj => OutboxView, |r| ("outbound_message", r.id.0, r.patient_id));

#[Object(name = "OutboundMessage")]
impl OutboxView {
    /// Also the message's idempotency key (`Message-ID`, `Idempotency-Key`).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn channel(&self) -> GqlChannel {
        self.0.channel.into()
    }
    /// The e-mail address or phone number.
    async fn recipient(&self) -> &str {
        &self.0.recipient
    }
    async fn subject(&self) -> &str {
        &self.0.subject
    }
    async fn patient_id(&self) -> Option<ID> {
        self.0.patient_id.map(|p| ID(p.to_string()))
    }
    async fn status(&self) -> GqlMessageStatus {
        self.0.status.into()
    }
    async fn attempts(&self) -> u32 {
        self.0.attempts
    }
    /// Why the last attempt failed.
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }
    /// When a pending message is tried next.
    async fn next_attempt_at(&self) -> Option<String> {
        (self.0.status == MessageStatus::Pending).then(|| ts(self.0.next_attempt_at))
    }
    async fn created_at(&self) -> String {
        ts(self.0.created_at)
    }
    async fn sent_at(&self) -> Option<String> {
        self.0.sent_at.map(ts)
    }
}

#[derive(Default)]
pub struct MessagesQuery;

#[Object]
impl MessagesQuery {
    /// The channels a patient is messaged on (the patient, or the front desk).
    async fn message_preferences(
        &self,
        ctx: &Context<'_>,
        patient_id: ID,
    ) -> Result<PreferencesObj> {
        let s = session(ctx)?;
        let patient: PatientId = parse_id(&patient_id).map_err(ApiError::from)?;
        let (email, sms) = messages::preferences(node(ctx)?, s, patient).await?;
        Ok(PreferencesObj {
            patient_id,
            email,
            sms,
        })
    }

    /// This node's outbox of e-mail and SMS, newest first (ADMIN).
    async fn outbox(
        &self,
        ctx: &Context<'_>,
        status: Option<GqlMessageStatus>,
        #[graphql(default = 50)] limit: i32,
        #[graphql(default = 0)] offset: i32,
    ) -> Result<Vec<OutboxObj>> {
        session(ctx)?.require(&[Role::Admin])?;
        let (limit, offset) = page(limit, offset)?;
        let status = status.map(MessageStatus::from);
        let rows = node(ctx)?
            .read(move |c| outbox::list(c, status, limit, offset))
            .await?;
        Ok(rows.into_iter().map(OutboxObj).collect())
    }
}

#[derive(Default)]
pub struct MessagesMutation;

#[Object]
impl MessagesMutation {
    /// Chooses the channels a patient is messaged on; `false` opts out of one (the
    /// patient, or the front desk). Notices stay in the app either way.
    async fn set_message_preferences(
        &self,
        ctx: &Context<'_>,
        patient_id: ID,
        email: bool,
        sms: bool,
    ) -> Result<PreferencesObj> {
        let s = session(ctx)?;
        let patient: PatientId = parse_id(&patient_id).map_err(ApiError::from)?;
        let p = messages::set_preferences(node(ctx)?, s, patient, email, sms).await?;
        Ok(PreferencesObj {
            patient_id,
            email: p.email,
            sms: p.sms,
        })
    }
}
