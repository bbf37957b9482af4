//! Projections added after a hub already held documents: at start, the documents
//! folded before a projection's table existed are projected once (flagged in
//! `hub_meta`); from then on the fold keeps the table. Idempotent, and safe beside a
//! running fold: every projection here is written as the fold writes it.

use healsync_hub_projection::BILLING_KINDS;
use healsync_records::AnyRecord;
use sqlx::Row;
use uuid::Uuid;

use crate::error::db;
use crate::queries::read_typed;
use crate::{HubStore, HubStoreError};

/// Documents projected per step.
const STEP: i64 = 2_000;

/// A projection that may need a backfill.
#[derive(Debug, Clone, Copy)]
enum Projection {
    Billing,
    PatientTerms,
}

impl Projection {
    const ALL: [Projection; 2] = [Projection::Billing, Projection::PatientTerms];

    /// Its `hub_meta` flag.
    fn flag(self) -> &'static str {
        match self {
            Projection::Billing => "billing_backfilled",
            Projection::PatientTerms => "patient_terms_backfilled",
        }
    }

    fn kinds(self) -> Vec<String> {
        match self {
            Projection::Billing => BILLING_KINDS.iter().map(|k| k.to_string()).collect(),
            Projection::PatientTerms => vec!["patient".into()],
        }
    }

    async fn store(
        self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        records: &[AnyRecord],
    ) -> Result<(), HubStoreError> {
        match self {
            Projection::Billing => {
                crate::billing::store_billing(tx, &records.iter().collect::<Vec<_>>()).await
            }
            Projection::PatientTerms => {
                let terms: Vec<(Uuid, Vec<String>)> = records
                    .iter()
                    .filter_map(|r| match r {
                        AnyRecord::Patient(p) => {
                            Some((p.id.0, healsync_domain::patient::search_terms(p)))
                        }
                        _ => None,
                    })
                    .collect();
                crate::writes::store_patient_terms(tx, &terms).await
            }
        }
    }
}

impl HubStore {
    /// Projects what each projection's table lacks from before it existed (once per
    /// database). Returns how many records it projected.
    pub async fn backfill_projections(&self) -> Result<usize, HubStoreError> {
        let mut projected = 0;
        for p in Projection::ALL {
            // The flag's name is one of two constants.
            let done: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT {} FROM hub_meta",
                p.flag()
            )))
            .fetch_one(&self.pool)
            .await
            .map_err(db("read hub_meta"))?;
            if done {
                continue;
            }
            let kinds = p.kinds();
            let mut after = Uuid::nil();
            loop {
                let rows = sqlx::query(
                    "SELECT doc_id, bytes FROM documents WHERE kind = ANY($1) AND doc_id > $2
                     ORDER BY doc_id LIMIT $3",
                )
                .bind(&kinds)
                .bind(after)
                .bind(STEP)
                .fetch_all(&self.pool)
                .await
                .map_err(db("read documents to project"))?;
                let Some(last) = rows.last() else { break };
                after = last.try_get("doc_id").map_err(db("read a document"))?;
                let mut records = Vec::with_capacity(rows.len());
                for r in &rows {
                    let bytes: Vec<u8> = r.try_get("bytes").map_err(db("read a document"))?;
                    if let Some(record) = read_typed(&bytes, Some)? {
                        records.push(record);
                    }
                }
                let mut tx = self
                    .pool
                    .begin()
                    .await
                    .map_err(db("begin a backfill step"))?;
                // Serialised with the fold (which holds this lock for each step), so
                // that no projection is computed from facts another step is changing.
                crate::rows::lock_meta(&mut tx).await?;
                p.store(&mut tx, &records).await?;
                tx.commit().await.map_err(db("commit a backfill step"))?;
                projected += records.len();
            }
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE hub_meta SET {} = TRUE",
                p.flag()
            )))
            .execute(&self.pool)
            .await
            .map_err(db("record a backfill"))?;
        }
        Ok(projected)
    }
}
