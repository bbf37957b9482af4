//! Finding conflicts in a merged document: fields that hold more than one distinct
//! value after concurrent edits at two places. Appointment status is first settled by
//! the lifecycle's merge rule; only what the rule cannot settle is a conflict.

use automerge::{AutoCommit, ROOT, ReadDoc, ScalarValue, Value};
use healsync_domain::AppointmentStatus;

use crate::RecordError;

/// One field with concurrent, different values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldConflict {
    pub field: String,
    /// Every distinct value, as text (timestamps as RFC 3339), in a stable order.
    pub values: Vec<String>,
}

/// A scalar as the text people see and `resolve` accepts.
pub fn scalar_text(v: &ScalarValue) -> String {
    match v {
        ScalarValue::Str(s) => s.to_string(),
        ScalarValue::Int(i) => i.to_string(),
        ScalarValue::Uint(u) => u.to_string(),
        ScalarValue::F64(f) => f.to_string(),
        ScalarValue::Boolean(b) => b.to_string(),
        ScalarValue::Timestamp(ms) => chrono::DateTime::from_timestamp_millis(*ms)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_else(|| ms.to_string()),
        ScalarValue::Null => "null".into(),
        other => format!("{other:?}"),
    }
}

/// The distinct values of a root field, in a stable order.
pub fn field_values(doc: &AutoCommit, field: &str) -> Result<Vec<ScalarValue>, RecordError> {
    let mut out: Vec<ScalarValue> = Vec::new();
    for (value, _) in doc.get_all(ROOT, field)? {
        if let Value::Scalar(s) = value {
            let s = s.into_owned();
            if !out.contains(&s) {
                out.push(s);
            }
        }
    }
    out.sort_by_key(scalar_text);
    Ok(out)
}

/// The appointment status the lifecycle's merge rule settles on, if it can.
pub fn settled_status(values: &[ScalarValue]) -> Option<AppointmentStatus> {
    let mut statuses = values.iter().map(|v| match v {
        ScalarValue::Str(s) => AppointmentStatus::parse(s).ok(),
        _ => None,
    });
    let first = statuses.next()??;
    statuses.try_fold(first, |acc, s| AppointmentStatus::merge_concurrent(acc, s?))
}

/// Bookkeeping fields that merge to their latest value and are never a conflict.
pub const LATEST_WINS: &[&str] = &["updatedAt"];

/// Every conflicting field of a document.
pub fn conflicts(doc: &AutoCommit) -> Result<Vec<FieldConflict>, RecordError> {
    let kind = doc
        .get(ROOT, "kind")?
        .and_then(|(v, _)| v.into_scalar().ok())
        .map(|s| scalar_text(&s))
        .unwrap_or_default();
    let mut out = Vec::new();
    for field in doc.keys(ROOT) {
        let values = field_values(doc, &field)?;
        if values.len() < 2 || LATEST_WINS.contains(&field.as_str()) {
            continue;
        }
        if kind == "appointment" && field == "status" && settled_status(&values).is_some() {
            continue;
        }
        out.push(FieldConflict {
            field,
            values: values.iter().map(scalar_text).collect(),
        });
    }
    Ok(out)
}
