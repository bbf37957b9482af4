//! Every read of health data leaves an audit event, and so does every read the access
//! policy refused.
//!
//! One place decides what counts as a read: the GraphQL output of a record about a
//! patient. Each such type (`Patient`, `Appointment`, `MedicalRecord`, `Invoice`, ...)
//! is resolved through [`audited!`], which notes the record in the request's
//! [`ReadLog`] before any of its fields is resolved, whichever query, nested field,
//! alias, fragment, mutation result or subscription event led there. A refusal notes
//! itself ([`refused`]); a read by break-glass carries its reason
//! ([`under_break_glass`]).
//!
//! The [`ReadAudit`] extension gives each request (and each subscription) its log and,
//! before the response leaves (each event of a subscription included), has the node
//! append what it noted to the hash-chained trail ([`crate::Node::record_reads`], one
//! transaction shared by the requests that finish together). If that fails, the
//! response is replaced by an error: nothing is shown that was not recorded.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextPrepareRequest, NextSubscribe,
};
use async_graphql::{ContextBase, Request, Response, ServerError, ServerResult};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use healsync_domain::PatientId;
use healsync_domain::audit::Access;
use healsync_store::audit::{Reads, Touched};
use uuid::Uuid;

use crate::Node;
use crate::session::Auth;

/// What one request (or one subscription) has shown or refused, not yet recorded.
#[derive(Default)]
pub struct ReadLog {
    noted: Mutex<Noted>,
    /// Patients this request reads by break-glass, with the reason given: their
    /// events carry it.
    glass: Mutex<HashMap<PatientId, String>>,
}

#[derive(Default)]
struct Noted {
    /// In the order first seen; each (access, field, record) once per flush.
    order: Vec<(Access, String, Touched)>,
    seen: HashSet<(Access, String, Uuid)>,
}

impl ReadLog {
    fn note(&self, access: Access, field: &str, touched: Touched) {
        let Ok(mut n) = self.noted.lock() else { return };
        if n.seen.insert((access, field.to_string(), touched.id)) {
            n.order.push((access, field.to_string(), touched));
        }
    }

    fn glass(&self, patient: Option<PatientId>) -> Option<String> {
        let p = patient?;
        self.glass.lock().ok()?.get(&p).cloned()
    }

    fn take(&self) -> Vec<(Access, String, Touched)> {
        match self.noted.lock() {
            Ok(mut n) => {
                n.seen.clear();
                std::mem::take(&mut n.order)
            }
            Err(_) => Vec::new(),
        }
    }
}

/// Notes that the current request is being shown `kind` record `id` (about
/// `patient`) through `field`.
pub fn shown<T>(
    ctx: &ContextBase<'_, T>,
    field: &str,
    kind: &str,
    id: Uuid,
    patient: Option<PatientId>,
) {
    if let Some(log) = ctx.data_opt::<Arc<ReadLog>>() {
        let touched = Touched {
            kind: kind.to_string(),
            id,
            patient,
        };
        log.note(Access::Read, field, touched);
    }
}

/// Notes that the current request reads `patient`'s record by break-glass, for
/// `reason`: every event of this request about them carries it.
pub fn under_break_glass<T>(ctx: &ContextBase<'_, T>, patient: PatientId, reason: &str) {
    if let Some(log) = ctx.data_opt::<Arc<ReadLog>>()
        && let Ok(mut g) = log.glass.lock()
    {
        g.insert(patient, reason.to_string());
    }
}

/// Notes that the access policy refused the current request `kind` of `patient`'s
/// record through `field`.
pub fn refused<T>(ctx: &ContextBase<'_, T>, field: &str, kind: &str, patient: PatientId) {
    if let Some(log) = ctx.data_opt::<Arc<ReadLog>>() {
        let touched = Touched {
            kind: kind.to_string(),
            id: patient.0,
            patient: Some(patient),
        };
        log.note(Access::Refused, field, touched);
    }
}

/// Makes `$outer` the GraphQL type `$view` declares, noting each output of it as a read
/// of the record `$touched` names (kind, id, patient) before resolving its fields from
/// a `$view` of the same data.
macro_rules! audited {
    ($outer:ident => $view:ident, |$r:ident| $touched:expr) => {
        impl async_graphql::OutputType for $outer {
            fn type_name() -> std::borrow::Cow<'static, str> {
                <$view as async_graphql::OutputType>::type_name()
            }

            fn create_type_info(registry: &mut async_graphql::registry::Registry) -> String {
                <$view as async_graphql::OutputType>::create_type_info(registry)
            }

            async fn resolve(
                &self,
                ctx: &async_graphql::ContextSelectionSet<'_>,
                field: &async_graphql::Positioned<async_graphql::parser::types::Field>,
            ) -> async_graphql::ServerResult<async_graphql::Value> {
                let $r = &self.0;
                let (kind, id, patient): (&str, uuid::Uuid, Option<healsync_domain::PatientId>) =
                    $touched;
                if patient.is_some() {
                    $crate::graphql::read_audit::shown(
                        ctx,
                        field.node.name.node.as_str(),
                        kind,
                        id,
                        patient,
                    );
                }
                let view = $view(self.0.clone());
                async_graphql::OutputType::resolve(&view, ctx, field).await
            }
        }
    };
}
pub(crate) use audited;

/// The extension that gives each request its [`ReadLog`] and records it before the
/// response leaves.
pub struct ReadAudit;

impl ExtensionFactory for ReadAudit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ReadAuditExtension {
            log: Arc::new(ReadLog::default()),
        })
    }
}

struct ReadAuditExtension {
    log: Arc<ReadLog>,
}

/// The reads noted so far, grouped by access, field and break-glass reason, as the
/// session's.
fn batches(auth: Option<&Auth>, log: &ReadLog) -> Vec<Reads> {
    let mut out: Vec<Reads> = Vec::new();
    for (access, field, touched) in log.take() {
        let reason = log.glass(touched.patient);
        match out
            .iter_mut()
            .find(|r| r.access == access && r.who.operation == field && r.who.reason == reason)
        {
            Some(r) => r.records.push(touched),
            None => {
                let mut who = match auth {
                    Some(Auth::Session(s)) => s.acting(&field),
                    // Only a session is ever shown a record; should that change, the
                    // trail still says something was shown to someone unnamed.
                    _ => healsync_store::audit::AuditContext::system("anonymous"),
                };
                who.reason = reason;
                out.push(Reads {
                    who,
                    access,
                    records: vec![touched],
                });
            }
        }
    }
    out
}

async fn flush(node: Option<&Node>, auth: Option<&Auth>, log: &ReadLog) -> Result<(), ServerError> {
    let reads = batches(auth, log);
    if reads.is_empty() {
        return Ok(());
    }
    let node = node.ok_or_else(|| ServerError::new("the schema has no node", None))?;
    node.record_reads(reads).await.map_err(|e| {
        tracing::error!(error = ?e, "could not record reads in the audit trail");
        let mut err = ServerError::new(
            "the audit trail could not record this read, so nothing is shown; try again",
            None,
        );
        let mut ext = async_graphql::ErrorExtensionValues::default();
        ext.set("code", "INTERNAL");
        err.extensions = Some(ext);
        err
    })
}

#[async_graphql::async_trait::async_trait]
impl Extension for ReadAuditExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        next.run(ctx, request.data(self.log.clone())).await
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let response = next.run(ctx, operation_name).await;
        match flush(ctx.data_opt::<Node>(), ctx.data_opt::<Auth>(), &self.log).await {
            Ok(()) => response,
            Err(e) => Response::from_errors(vec![e]),
        }
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        let node = ctx.data_opt::<Node>().cloned();
        let auth = ctx.data_opt::<Auth>().cloned();
        let log = self.log.clone();
        next.run(ctx, stream)
            .then(move |response| {
                let (node, auth, log) = (node.clone(), auth.clone(), log.clone());
                async move {
                    match flush(node.as_ref(), auth.as_ref(), &log).await {
                        Ok(()) => response,
                        Err(e) => Response::from_errors(vec![e]),
                    }
                }
            })
            .boxed()
    }
}
