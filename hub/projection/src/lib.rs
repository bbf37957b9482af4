//! What the hub derives from the documents nodes upload, with no I/O.
//!
//! The hub keeps the same automerge documents as the nodes. [`merge`] folds changes
//! from the hub's log into a document's saved bytes and derives everything the hub's
//! projections need from the result: the record as JSON (one generic shape for every
//! kind, so a new record kind needs no new table to be queried across sites), its field
//! conflicts (the same rule as on the nodes, from `healsync-records`), and, for
//! appointments, the typed booking used by cross-site scheduling. [`collision`] is the
//! rule that finds one doctor or one patient booked twice at overlapping times.

use automerge::{ActorId, AutoCommit, Change, ROOT, ReadDoc, ScalarValue, Value};
use chrono::{DateTime, Utc};
use healsync_domain::Appointment;
use healsync_records::{AnyRecord, FieldConflict, RecordError, conflicts::scalar_text};
use serde_json::{Map, Value as Json};
use uuid::Uuid;

/// The kinds whose typed record [`derive`] keeps for the hub's billing projections.
pub const BILLING_KINDS: &[&str] = &["invoice", "invoice_void", "payment", "claim"];

/// Fields never copied into the hub's JSON projection (they stay in the document).
pub const SECRET_FIELDS: &[&str] = &["passwordHash"];

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProjectionError {
    #[error("a stored change does not parse")]
    BadChange(#[source] automerge::LoadChangeError),
    #[error("a stored document does not load")]
    BadDocument(#[source] automerge::AutomergeError),
    #[error("the document does not hold a valid record")]
    Record(#[from] RecordError),
}

/// A document after merging, with what the hub derives from it.
#[derive(Debug, Clone)]
pub struct Merged {
    /// The compacted document (`save()`).
    pub bytes: Vec<u8>,
    /// The document's heads, sorted hex, comma-separated: equal strings, equal documents.
    pub heads: String,
    /// The record kind the document says it holds (`""` if it holds none yet).
    pub kind: String,
    /// Every root field's current value as JSON (secrets left out; appointment status
    /// settled by the lifecycle rule).
    pub record: Json,
    /// Fields with concurrent different values, for people to settle.
    pub conflicts: Vec<FieldConflict>,
    /// The booking, when the document is an appointment that reads as one.
    pub appointment: Option<Appointment>,
    /// The record, when the document is of a [`BILLING_KINDS`] kind and reads as one
    /// (for the hub's billing roll-ups).
    pub billing: Option<AnyRecord>,
    /// The words a patient is found by ([`healsync_domain::patient::search_terms`]),
    /// when the document is a patient that reads as one.
    pub patient_terms: Option<Vec<String>>,
    /// False when some given change waits for a dependency the document lacks.
    pub complete: bool,
}

/// Why an uploaded change is not accepted into the hub's log: it must load as an
/// automerge change and carry the hash it is stored and deduplicated under, and when
/// it `creates` a document (the first change the hub sees of it) it must set the
/// document's root `kind` to the kind it is labelled with. Every change must have the
/// shape of a record's changes, and none may give an existing document another `kind`
/// (`existing`: the kind the hub knows it as) or any document another `id` than
/// `doc_id`. (What it depends on is not checked here: a change that waits for a
/// dependency is held by whoever merges it, at the hub and on the nodes, until the
/// dependency arrives.)
pub fn check_change(
    bytes: &[u8],
    hash: &[u8; 32],
    doc_id: Uuid,
    existing: Option<&str>,
    creates: Option<&str>,
) -> Result<(), String> {
    let change = match Change::from_bytes(bytes.to_vec()) {
        Err(e) => return Err(format!("the change does not load: {e}")),
        Ok(c) if &c.hash().0 != hash => return Err("the change does not match its hash".into()),
        Ok(c) => c,
    };
    check_shape(&change, doc_id, existing)?;
    let Some(label) = creates else {
        return Ok(());
    };
    match kind_set_by(&change) {
        Some(k) if k == label => Ok(()),
        Some(k) => Err(format!("the change is labelled {label} but makes a {k}")),
        None => Err(format!(
            "the change is labelled {label} but does not set the new document's kind"
        )),
    }
}

/// What every record's changes look like (`healsync-records`): puts and deletes of
/// plain scalars in the root map, and nothing else. What a document is (`kind`) and
/// which record it is (`id`) are fixed at creation: a change may set them only to the
/// values they have (an author's first write sets both), never delete them, so a
/// correctly labelled change to a shared doctor cannot turn it into an account.
fn check_shape(change: &Change, doc_id: Uuid, existing: Option<&str>) -> Result<(), String> {
    use automerge::ScalarValue;
    use automerge::legacy::{Key, ObjectId, OpType};
    let id = doc_id.to_string();
    for op in change.decode().operations {
        let Key::Map(key) = &op.key else {
            return Err("the change edits a list: records hold scalars at their root".into());
        };
        if !matches!(op.obj, ObjectId::Root) {
            return Err(
                "the change edits a nested object: records hold scalars at their root".into(),
            );
        }
        let value = match &op.action {
            OpType::Put(ScalarValue::Counter(_)) => {
                return Err(format!(
                    "the change makes a counter in {key:?}: records hold plain scalars"
                ));
            }
            OpType::Put(v) => Some(v),
            OpType::Delete => None,
            _ => {
                return Err(format!(
                    "the change makes an object in {key:?}: records hold scalars"
                ));
            }
        };
        let fixed = match key.as_str() {
            "kind" => existing,
            "id" => Some(id.as_str()),
            _ => continue,
        };
        let same = match (value, fixed) {
            (Some(ScalarValue::Str(v)), Some(f)) => v.as_str() == f,
            (Some(ScalarValue::Str(_)), None) => true,
            _ => false,
        };
        if !same {
            return Err(format!(
                "the change rewrites {key:?}, which a document's creation fixes"
            ));
        }
    }
    Ok(())
}

/// The record kind a change sets at its document's root, if it sets one.
fn kind_set_by(change: &Change) -> Option<String> {
    use automerge::legacy::{Key, ObjectId, OpType};
    change
        .decode()
        .operations
        .into_iter()
        .find_map(|op| match (&op.obj, &op.key, &op.action) {
            (ObjectId::Root, Key::Map(k), OpType::Put(automerge::ScalarValue::Str(v)))
                if k.as_str() == "kind" =>
            {
                Some(v.to_string())
            }
            _ => None,
        })
}

/// Loads saved bytes for editing by `actor` (a fresh document when there are none).
pub fn load(saved: Option<&[u8]>, actor: &ActorId) -> Result<AutoCommit, ProjectionError> {
    let doc = match saved {
        Some(b) => AutoCommit::load(b).map_err(ProjectionError::BadDocument)?,
        None => AutoCommit::new(),
    };
    Ok(doc.with_actor(actor.clone()))
}

/// Folds raw `changes` into the document saved as `saved` (none: a new document).
/// Changes already present are ignored, so merging twice is harmless.
pub fn merge(saved: Option<&[u8]>, changes: &[&[u8]]) -> Result<Merged, ProjectionError> {
    let mut doc = match saved {
        Some(b) => AutoCommit::load(b).map_err(ProjectionError::BadDocument)?,
        None => AutoCommit::new(),
    };
    let parsed = changes
        .iter()
        .map(|b| Change::from_bytes(b.to_vec()).map_err(ProjectionError::BadChange))
        .collect::<Result<Vec<_>, _>>()?;
    let hashes: Vec<_> = parsed.iter().map(|c| c.hash()).collect();
    doc.apply_changes(parsed)
        .map_err(ProjectionError::BadDocument)?;
    let complete = hashes.iter().all(|h| doc.get_change_by_hash(h).is_some());
    derive(&mut doc, complete)
}

/// Derives the projections of a document as it is now.
pub fn derive(doc: &mut AutoCommit, complete: bool) -> Result<Merged, ProjectionError> {
    let heads = healsync_records::heads_hex(doc);
    let mut record = Map::new();
    for key in doc.keys(ROOT) {
        if SECRET_FIELDS.contains(&key.as_str()) {
            continue;
        }
        if let Some((Value::Scalar(s), _)) = doc.get(ROOT, &key).map_err(RecordError::from)? {
            record.insert(key, scalar_json(&s));
        }
    }
    let kind = record
        .get("kind")
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_string();
    let conflicts = healsync_records::conflicts(doc)?;
    let appointment = if kind == "appointment" {
        match AnyRecord::read(doc)? {
            AnyRecord::Appointment(a) => {
                record.insert("status".into(), Json::String(a.status.as_str().into()));
                Some(a)
            }
            _ => None,
        }
    } else {
        None
    };
    // A billing document that does not (yet) read as its kind projects nothing until a
    // later merge completes it.
    let billing = if BILLING_KINDS.contains(&kind.as_str()) {
        AnyRecord::read(doc).ok()
    } else {
        None
    };
    let patient_terms = if kind == "patient" {
        match AnyRecord::read(doc) {
            Ok(AnyRecord::Patient(p)) => Some(healsync_domain::patient::search_terms(&p)),
            _ => None,
        }
    } else {
        None
    };
    Ok(Merged {
        bytes: doc.save(),
        heads,
        kind,
        record: Json::Object(record),
        conflicts,
        appointment,
        billing,
        patient_terms,
        complete,
    })
}

fn scalar_json(s: &ScalarValue) -> Json {
    match s {
        ScalarValue::Str(v) => Json::String(v.to_string()),
        ScalarValue::Int(i) => Json::from(*i),
        ScalarValue::Uint(u) => Json::from(*u),
        ScalarValue::F64(f) => Json::from(*f),
        ScalarValue::Boolean(b) => Json::Bool(*b),
        ScalarValue::Null => Json::Null,
        other => Json::String(scalar_text(other)),
    }
}

/// One appointment as cross-site scheduling sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Booking {
    pub id: Uuid,
    pub site: String,
    pub doctor_id: Uuid,
    pub patient_id: Uuid,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl From<&Appointment> for Booking {
    fn from(a: &Appointment) -> Self {
        Booking {
            id: a.id.0,
            site: a.site.clone(),
            doctor_id: a.doctor_id.0,
            patient_id: a.patient_id.0,
            start: a.start,
            end: a.end,
        }
    }
}

/// What two bookings share that cannot be shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollisionKind {
    /// One doctor at two sites at once.
    Doctor,
    /// One patient at two sites at once.
    Patient,
}

impl CollisionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CollisionKind::Doctor => "DOCTOR",
            CollisionKind::Patient => "PATIENT",
        }
    }
}

/// The collision between two time-holding bookings, if any: times that overlap
/// (half-open intervals) and the same doctor (checked first) or patient. Usually the two
/// are at different sites (each site checks its own bookings in its write
/// transaction), but not always: a booking made at the hub into a site's schedule can
/// meet one that site made offline.
pub fn collision(a: &Booking, b: &Booking) -> Option<CollisionKind> {
    if a.id == b.id || a.start >= b.end || b.start >= a.end {
        return None;
    }
    if a.doctor_id == b.doctor_id {
        Some(CollisionKind::Doctor)
    } else if a.patient_id == b.patient_id {
        Some(CollisionKind::Patient)
    } else {
        None
    }
}

#[cfg(test)]
mod tests;
