//! Keeps one GraphQL request from exhausting a small machine, on the node and the hub
//! alike: [`Guard`] is an async-graphql extension that checks every document with the
//! cost model of [`cost`] as the request is prepared, on the one parse of its document
//! and before validation or execution (so neither runs on a document that would fan
//! out), and stops execution once the response passes [`Limits::max_response_bytes`].
//!
//! The transport tells the guard who is calling by putting a [`Caller`] in the
//! request's data (or the WebSocket connection's); a request without one is anonymous.

pub mod cost;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextPrepareRequest, NextResolve,
    ResolveInfo,
};
use async_graphql::{ErrorExtensionValues, Request, Response, ServerError, ServerResult, Value};

pub use cost::{Cost, Limits, Refusal};

/// Who is calling, as the transport established it.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// The request carried a valid session.
    pub signed_in: bool,
    /// Why the credentials it carried were refused (an expired or forged token), for
    /// the refusal's message.
    pub refused: Option<String>,
}

/// The extension factory: add it to a schema with `SchemaBuilder::extension`.
#[derive(Clone)]
pub struct Guard {
    limits: Arc<Limits>,
}

impl Guard {
    pub fn new(limits: Limits) -> Guard {
        Guard {
            limits: Arc::new(limits),
        }
    }
}

impl ExtensionFactory for Guard {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(GuardExtension {
            limits: self.limits.clone(),
            bytes: AtomicU64::new(0),
            over: AtomicBool::new(false),
        })
    }
}

/// One request's guard: the cost check and the response-size meter.
struct GuardExtension {
    limits: Arc<Limits>,
    bytes: AtomicU64,
    over: AtomicBool,
}

fn error(message: &str, code: &str) -> ServerError {
    let mut e = ServerError::new(message, None);
    let mut ext = ErrorExtensionValues::default();
    ext.set("code", code);
    e.extensions = Some(ext);
    e
}

/// Approximate bytes a resolved value adds to the response: its scalars (objects are
/// counted by their own fields' resolution).
fn scalar_bytes(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.len() as u64 + 3,
        Value::List(items) => items
            .iter()
            .map(|i| match i {
                Value::Object(_) | Value::List(_) => 1,
                other => scalar_bytes(other),
            })
            .sum::<u64>()
            .saturating_add(2),
        Value::Object(_) => 2,
        _ => 8,
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for GuardExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        // The document is parsed once, here (or already by the transport), and kept in
        // the request for async-graphql: its own checks that run while parsing
        // (recursion depth, directives) walk fragments without memoising, so they must
        // only ever see a document this check let through.
        let caller = request
            .data
            .get(&std::any::TypeId::of::<Caller>())
            .and_then(|c| c.downcast_ref::<Caller>())
            .or_else(|| ctx.data_opt::<Caller>())
            .cloned()
            .unwrap_or_default();
        let variables = request.variables.clone();
        let doc = request.parsed_query()?;
        match cost::check(
            doc,
            &variables,
            &ctx.schema_env.registry,
            &self.limits,
            caller.signed_in,
        ) {
            Ok(_) => next.run(ctx, request).await,
            Err(Refusal::SignInFirst(m)) => Err(error(
                caller.refused.as_deref().unwrap_or(&m),
                "UNAUTHENTICATED",
            )),
            Err(Refusal::TooCostly(m)) => Err(error(&m, "BAD_USER_INPUT")),
        }
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        if self.over.load(Ordering::Relaxed) {
            return Err(error("response too large", "BAD_USER_INPUT"));
        }
        let value = next.run(ctx, info).await?;
        if let Some(v) = &value {
            let total = self.bytes.fetch_add(scalar_bytes(v), Ordering::Relaxed);
            if total > self.limits.max_response_bytes {
                self.over.store(true, Ordering::Relaxed);
                return Err(error("response too large", "BAD_USER_INPUT"));
            }
        }
        Ok(value)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let resp = next.run(ctx, operation_name).await;
        if self.over.load(Ordering::Relaxed) {
            let mb = self.limits.max_response_bytes / (1024 * 1024);
            return Response::from_errors(vec![error(
                &format!(
                    "the response would be larger than {mb} MiB: ask for fewer items or fields"
                ),
                "BAD_USER_INPUT",
            )]);
        }
        resp
    }
}
