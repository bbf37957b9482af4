//! How HealSync records live in automerge documents, with no I/O.
//!
//! One record is one automerge document whose root map holds the record's fields as
//! scalars (`kind` and `id` included, so a document describes itself). Writing a record
//! puts only the fields whose value changed: two sites that edit different fields of one
//! patient produce changes that merge cleanly, and two sites that edit the same field
//! leave both values in the document (`get_all`), which is how a conflict is found later.
//! Lists and small structures (a schedule's weekly rules, a patient's allergies) are one
//! JSON scalar each: replacing them concurrently is a conflict a person settles.

pub mod conflicts;
mod fields;
mod kinds;
#[cfg(any(test, feature = "samples"))]
pub mod samples;

pub use automerge::ScalarValue;
pub use conflicts::{FieldConflict, conflicts};
pub use fields::{Lookup, Reader, Writer};
pub use kinds::{AnyRecord, Record, RecordKind};

use automerge::{ActorId, AutoCommit, ChangeHash};

/// What went wrong mapping a document to a record or back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    #[error("document has no field {0:?}")]
    Missing(&'static str),
    #[error("document field {0:?} has the wrong type")]
    WrongType(&'static str),
    #[error("document field {field:?} holds an invalid value: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("document is a {found}, not a {expected}")]
    WrongKind {
        expected: &'static str,
        found: String,
    },
    #[error("automerge: {0}")]
    Automerge(#[from] automerge::AutomergeError),
}

/// A fresh document for a new record, written by `actor`.
pub fn new_document(actor: &ActorId) -> AutoCommit {
    AutoCommit::new().with_actor(actor.clone())
}

/// Loads saved document bytes to be edited by `actor`.
pub fn load_document(bytes: &[u8], actor: &ActorId) -> Result<AutoCommit, RecordError> {
    Ok(AutoCommit::load(bytes)?.with_actor(actor.clone()))
}

/// The result of writing a record into its document: the new automerge changes (raw
/// bytes and hash), ready for the change log, or none when nothing differed.
pub struct Written {
    pub changes: Vec<(ChangeHash, Vec<u8>)>,
}

/// Writes `record` into `doc` and commits. Only changed fields become operations.
pub fn write_record<R: Record>(doc: &mut AutoCommit, record: &R) -> Result<Written, RecordError> {
    let before = doc.get_heads();
    {
        let mut w = Writer::new(doc);
        w.str("kind", R::KIND.as_str())?;
        w.str("id", &record.id().to_string())?;
        record.write(&mut w)?;
    }
    if doc.commit().is_none() {
        return Ok(Written { changes: vec![] });
    }
    let changes = doc
        .get_changes(&before)
        .into_iter()
        .map(|c| (c.hash(), c.raw_bytes().to_vec()))
        .collect();
    Ok(Written { changes })
}

/// Reads a record of a known kind from its document.
pub fn read_record<R: Record>(doc: &AutoCommit) -> Result<R, RecordError> {
    let r = Reader::new(doc);
    let kind = r.str("kind")?;
    if kind != R::KIND.as_str() {
        return Err(RecordError::WrongKind {
            expected: R::KIND.as_str(),
            found: kind,
        });
    }
    R::read(&r)
}

/// A record's fields as (document key, value), `id` first, then in the order its kind's
/// `write` puts them, every field present (an absent optional one as null). A
/// projection row stores exactly these, so a kind's fields are named once, in its
/// `write` and `read`, for the document and the projection alike.
pub fn fields<R: Record>(record: &R) -> Result<Vec<(&'static str, ScalarValue)>, RecordError> {
    let mut out = vec![("id", ScalarValue::Str(record.id().to_string().into()))];
    record.write(&mut Writer::flat(&mut out))?;
    Ok(out)
}

/// Reads a record of a known kind from the fields [`fields`] gave (a projection row),
/// each looked up by its document key.
pub fn read_fields<R: Record>(lookup: Lookup<'_>) -> Result<R, RecordError> {
    R::read(&Reader::flat(lookup))
}

/// Settles a conflicting field and commits: `value` is either one of its current values
/// (as shown in [`FieldConflict::values`]) or, for a field whose values are all text, a
/// new text a person wrote (an edit). The other values stay in the document's history.
/// Returns the new changes, or `None` when the field is not in conflict or `value` is
/// neither one of its values nor an allowed edit. The document must still read as its record kind.
pub fn resolve_field(
    doc: &mut AutoCommit,
    field: &str,
    value: &str,
) -> Result<Option<Written>, RecordError> {
    use automerge::transaction::Transactable;
    let values = conflicts::field_values(doc, field)?;
    if values.len() < 2 {
        return Ok(None);
    }
    let all_text = values
        .iter()
        .all(|v| matches!(v, automerge::ScalarValue::Str(_)));
    let chosen = match values.iter().find(|v| conflicts::scalar_text(v) == value) {
        Some(v) => v.clone(),
        None if all_text && !value.trim().is_empty() => {
            automerge::ScalarValue::Str(value.trim().into())
        }
        None => return Ok(None),
    };
    let before = doc.get_heads();
    doc.put(automerge::ROOT, field, chosen)?;
    if let Err(e) = AnyRecord::read(doc) {
        doc.rollback();
        return Err(e);
    }
    doc.commit();
    let changes = doc
        .get_changes(&before)
        .into_iter()
        .map(|c| (c.hash(), c.raw_bytes().to_vec()))
        .collect();
    Ok(Some(Written { changes }))
}

/// Checks and normalises a value a person typed to settle a conflict in `field`, with
/// the same parser a normal edit of that field uses (callers run this before
/// [`resolve_field`], so a bad value is the person's error, not a store failure).
pub fn normalize_edit(field: &str, value: &str) -> Result<String, healsync_domain::DomainError> {
    use healsync_domain::patient::{parse_email, parse_name, parse_phone, parse_text};
    match field {
        "name" => parse_name(value),
        "email" => parse_email(value),
        "phone" => parse_phone("value", value),
        _ => parse_text("value", value, 2000),
    }
}

/// Hex form of a document's heads, sorted: equal strings mean equal documents.
pub fn heads_hex(doc: &mut AutoCommit) -> String {
    let mut heads: Vec<String> = doc.get_heads().iter().map(|h| h.to_string()).collect();
    heads.sort();
    heads.join(",")
}

#[cfg(test)]
mod tests;
