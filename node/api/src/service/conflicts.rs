//! Conflicts: fields edited differently at two places, shown to staff until one of them
//! picks the value. The other value stays in the document's history.

use healsync_domain::Role;
use healsync_store::queries::{self, Conflict};
use uuid::Uuid;

use crate::{ApiError, Node, Session};

/// Fields whose values only clinical staff may read.
const CLINICAL_FIELDS: &[&str] = &["allergies"];

const STAFF: &[Role] = &[Role::Admin, Role::Receptionist];

fn visible(session: &Session, c: &Conflict) -> bool {
    session.reads_clinical() || !CLINICAL_FIELDS.contains(&c.field.as_str())
}

pub async fn list(
    node: &Node,
    session: &Session,
    limit: u32,
    offset: u32,
) -> Result<Vec<Conflict>, ApiError> {
    session.require(STAFF)?;
    let all = node
        .read(move |c| queries::conflicts(c, limit, offset))
        .await?;
    Ok(all.into_iter().filter(|c| visible(session, c)).collect())
}

/// Who may watch and settle conflicts, and which of a record's conflicts they see.
pub fn require_staff(session: &Session) -> Result<(), ApiError> {
    session.require(STAFF)
}

/// The open conflicts of `record` this session may see.
pub async fn of_record(
    node: &Node,
    session: &Session,
    record: Uuid,
) -> Result<Vec<Conflict>, ApiError> {
    let all = node.read(move |c| queries::conflicts_of(c, record)).await?;
    Ok(all.into_iter().filter(|c| visible(session, c)).collect())
}

/// Settles one conflicting field with one of its current values, or with a new value a
/// person typed (checked like a normal edit of that field).
pub async fn resolve(
    node: &Node,
    session: &Session,
    record: Uuid,
    field: String,
    value: String,
) -> Result<(), ApiError> {
    session.require(STAFF)?;
    if !session.reads_clinical() && CLINICAL_FIELDS.contains(&field.as_str()) {
        return Err(ApiError::Forbidden(
            "this conflict is in clinical data".into(),
        ));
    }
    let value = healsync_records::normalize_edit(&field, &value)?;
    let settled = node
        .write(session.acting("resolve_conflict"), move |tx| {
            Ok(tx.resolve_conflict(record, &field, &value)?)
        })
        .await?;
    if settled {
        Ok(())
    } else {
        Err(ApiError::NotFound(
            "no such conflict, or that value is not one of its values".into(),
        ))
    }
}
