//! Field-level access to a record document's root map: typed getters, and setters that
//! write only when the value differs from what the document already says.

use automerge::{AutoCommit, ROOT, ReadDoc, ScalarValue, Value, transaction::Transactable};
use chrono::{DateTime, NaiveDate, Utc};

use crate::RecordError;

/// Where a [`Writer`] puts fields.
enum Target<'a> {
    /// A record's document: only fields whose value differs become operations.
    Doc(&'a mut AutoCommit),
    /// A flat list of (document key, value), every field, in the order written: what a
    /// projection row stores.
    Flat(&'a mut Vec<(&'static str, ScalarValue)>),
}

/// Puts a record's fields into its document (skipping those that already hold the
/// value) or into a flat list; each kind's `write` is the one place its fields are
/// named for both.
pub struct Writer<'a> {
    to: Target<'a>,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(doc: &'a mut AutoCommit) -> Self {
        Writer {
            to: Target::Doc(doc),
        }
    }

    pub(crate) fn flat(out: &'a mut Vec<(&'static str, ScalarValue)>) -> Self {
        Writer {
            to: Target::Flat(out),
        }
    }

    fn put(&mut self, key: &'static str, value: ScalarValue) -> Result<(), RecordError> {
        let doc = match &mut self.to {
            Target::Flat(out) => {
                out.push((key, value));
                return Ok(());
            }
            Target::Doc(doc) => doc,
        };
        // A field with concurrent values is rewritten even if the winner already equals
        // the new value: writing it is how a person's decision settles the conflict.
        let settled = doc.get_all(ROOT, key)?.len() <= 1;
        let current = match doc.get(ROOT, key)? {
            Some((Value::Scalar(s), _)) => Some(s.into_owned()),
            Some((Value::Object(_), _)) | None => None,
        };
        if settled && current.as_ref() == Some(&value) {
            return Ok(());
        }
        doc.put(ROOT, key, value)?;
        Ok(())
    }

    pub fn str(&mut self, key: &'static str, value: &str) -> Result<(), RecordError> {
        self.put(key, ScalarValue::Str(value.into()))
    }

    pub fn opt_str(&mut self, key: &'static str, value: Option<&str>) -> Result<(), RecordError> {
        match value {
            Some(v) => self.str(key, v),
            None => self.clear(key),
        }
    }

    pub fn int(&mut self, key: &'static str, value: i64) -> Result<(), RecordError> {
        self.put(key, ScalarValue::Int(value))
    }

    pub fn opt_int(&mut self, key: &'static str, value: Option<i64>) -> Result<(), RecordError> {
        match value {
            Some(v) => self.int(key, v),
            None => self.clear(key),
        }
    }

    pub fn bool(&mut self, key: &'static str, value: bool) -> Result<(), RecordError> {
        self.put(key, ScalarValue::Boolean(value))
    }

    pub fn time(&mut self, key: &'static str, value: DateTime<Utc>) -> Result<(), RecordError> {
        self.put(key, ScalarValue::Timestamp(value.timestamp_millis()))
    }

    pub fn date(&mut self, key: &'static str, value: Option<NaiveDate>) -> Result<(), RecordError> {
        self.opt_str(
            key,
            value.map(|d| d.format("%Y-%m-%d").to_string()).as_deref(),
        )
    }

    /// A JSON-encoded value as one scalar (lists, small structures).
    pub fn json(
        &mut self,
        key: &'static str,
        value: &serde_json::Value,
    ) -> Result<(), RecordError> {
        self.str(key, &value.to_string())
    }

    /// Removes a field (an optional value that is no longer recorded); a flat list
    /// holds it as null.
    pub fn clear(&mut self, key: &'static str) -> Result<(), RecordError> {
        match &mut self.to {
            Target::Flat(out) => out.push((key, ScalarValue::Null)),
            Target::Doc(doc) => {
                if doc.get(ROOT, key)?.is_some() {
                    doc.delete(ROOT, key)?;
                }
            }
        }
        Ok(())
    }
}

/// Looks a field up by its document key in a flat source (a projection row): its
/// value, `None` or null when it holds none.
pub type Lookup<'a> = &'a dyn Fn(&'static str) -> Result<Option<ScalarValue>, RecordError>;

enum Source<'a> {
    Doc(&'a AutoCommit),
    Flat(Lookup<'a>),
}

/// Reads typed fields from a document's root map (the winning value of each field), or
/// from a flat source written by [`Writer`] (a projection row, whose booleans are
/// stored as 0 and 1).
pub struct Reader<'a> {
    from: Source<'a>,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(doc: &'a AutoCommit) -> Self {
        Reader {
            from: Source::Doc(doc),
        }
    }

    pub(crate) fn flat(lookup: Lookup<'a>) -> Self {
        Reader {
            from: Source::Flat(lookup),
        }
    }

    fn scalar(&self, key: &'static str) -> Result<Option<ScalarValue>, RecordError> {
        match &self.from {
            Source::Flat(lookup) => lookup(key),
            Source::Doc(doc) => match doc.get(ROOT, key)? {
                Some((Value::Scalar(s), _)) => Ok(Some(s.into_owned())),
                Some((Value::Object(_), _)) => Err(RecordError::WrongType(key)),
                None => Ok(None),
            },
        }
    }

    /// Every distinct concurrent value of a field (a flat source holds one).
    pub fn values(&self, key: &'static str) -> Result<Vec<ScalarValue>, RecordError> {
        match &self.from {
            Source::Doc(doc) => crate::conflicts::field_values(doc, key),
            Source::Flat(_) => Ok(match self.scalar(key)? {
                None | Some(ScalarValue::Null) => vec![],
                Some(v) => vec![v],
            }),
        }
    }

    pub fn opt_str(&self, key: &'static str) -> Result<Option<String>, RecordError> {
        match self.scalar(key)? {
            Some(ScalarValue::Str(s)) => Ok(Some(s.to_string())),
            Some(ScalarValue::Null) | None => Ok(None),
            Some(_) => Err(RecordError::WrongType(key)),
        }
    }

    pub fn str(&self, key: &'static str) -> Result<String, RecordError> {
        self.opt_str(key)?.ok_or(RecordError::Missing(key))
    }

    pub fn int(&self, key: &'static str) -> Result<i64, RecordError> {
        match self.scalar(key)? {
            Some(ScalarValue::Int(i)) => Ok(i),
            Some(ScalarValue::Uint(u)) => i64::try_from(u).map_err(|_| RecordError::WrongType(key)),
            None => Err(RecordError::Missing(key)),
            Some(_) => Err(RecordError::WrongType(key)),
        }
    }

    pub fn opt_int(&self, key: &'static str) -> Result<Option<i64>, RecordError> {
        match self.scalar(key)? {
            None | Some(ScalarValue::Null) => Ok(None),
            Some(_) => self.int(key).map(Some),
        }
    }

    pub fn bool(&self, key: &'static str) -> Result<bool, RecordError> {
        match self.scalar(key)? {
            Some(ScalarValue::Boolean(b)) => Ok(b),
            Some(ScalarValue::Int(i @ (0 | 1))) if matches!(self.from, Source::Flat(_)) => {
                Ok(i == 1)
            }
            None => Err(RecordError::Missing(key)),
            Some(_) => Err(RecordError::WrongType(key)),
        }
    }

    pub fn time(&self, key: &'static str) -> Result<DateTime<Utc>, RecordError> {
        match self.scalar(key)? {
            Some(ScalarValue::Timestamp(ms)) | Some(ScalarValue::Int(ms)) => {
                DateTime::from_timestamp_millis(ms).ok_or(RecordError::Invalid {
                    field: key,
                    reason: format!("{ms} is out of range"),
                })
            }
            None => Err(RecordError::Missing(key)),
            Some(_) => Err(RecordError::WrongType(key)),
        }
    }

    /// A timestamp field whose concurrent values merge to the latest one.
    pub fn latest_time(&self, key: &'static str) -> Result<DateTime<Utc>, RecordError> {
        let latest = self
            .values(key)?
            .into_iter()
            .filter_map(|v| match v {
                ScalarValue::Timestamp(ms) | ScalarValue::Int(ms) => Some(ms),
                _ => None,
            })
            .max()
            .ok_or(RecordError::Missing(key))?;
        DateTime::from_timestamp_millis(latest).ok_or(RecordError::Invalid {
            field: key,
            reason: format!("{latest} is out of range"),
        })
    }

    /// [`Reader::latest_time`] of a field that may be absent.
    pub fn opt_latest_time(&self, key: &'static str) -> Result<Option<DateTime<Utc>>, RecordError> {
        match self.scalar(key)? {
            None | Some(ScalarValue::Null) => Ok(None),
            Some(_) => self.latest_time(key).map(Some),
        }
    }

    pub fn date(&self, key: &'static str) -> Result<Option<NaiveDate>, RecordError> {
        self.opt_str(key)?
            .map(|s| {
                NaiveDate::parse_from_str(&s, "%Y-%m-%d").map_err(|e| RecordError::Invalid {
                    field: key,
                    reason: e.to_string(),
                })
            })
            .transpose()
    }

    pub fn json<T: serde::de::DeserializeOwned>(
        &self,
        key: &'static str,
    ) -> Result<T, RecordError> {
        let s = self.str(key)?;
        serde_json::from_str(&s).map_err(|e| RecordError::Invalid {
            field: key,
            reason: e.to_string(),
        })
    }

    pub fn parsed<T>(
        &self,
        key: &'static str,
        parse: impl FnOnce(&str) -> Result<T, healsync_domain::DomainError>,
    ) -> Result<T, RecordError> {
        let s = self.str(key)?;
        parse(&s).map_err(|e| RecordError::Invalid {
            field: key,
            reason: e.to_string(),
        })
    }

    pub fn uuid<T: From<uuid::Uuid>>(&self, key: &'static str) -> Result<T, RecordError> {
        self.parsed(key, |s| {
            uuid::Uuid::parse_str(s)
                .map_err(|_| healsync_domain::DomainError::invalid(key, "not a uuid"))
        })
        .map(T::from)
    }

    pub fn opt_uuid<T: From<uuid::Uuid>>(
        &self,
        key: &'static str,
    ) -> Result<Option<T>, RecordError> {
        match self.opt_str(key)? {
            None => Ok(None),
            Some(_) => self.uuid(key).map(Some),
        }
    }
}
