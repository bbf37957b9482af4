//! What reading records from their projection rows costs, now that a row is read
//! through its kind's own `read` (`queries::record_row`, the one declaration of its
//! fields) instead of a mapper written per table. One run, interleaved: the same
//! statement's rows taken as raw SQLite values (the floor), through a mapper written
//! by hand for the patient row (what the store did before), and through `record_row`;
//! and invoices (the sample invoice's two lines), whose `read` also checks every
//! line's arithmetic.

use std::time::{Duration, Instant};

use anyhow::Result;
use chrono::{DateTime, NaiveDate, Utc};
use healsync_domain::*;
use healsync_records::{AnyRecord, samples};
use healsync_store::queries::record_row;
use healsync_store::{Connection, Store, StoreError};
use healsync_test_support::seed::{self, Rng};
use rusqlite::Row;
use rusqlite::types::Value;
use uuid::Uuid;

const PAGE: usize = 500;

fn millis(row: &Row<'_>, col: &str) -> rusqlite::Result<DateTime<Utc>> {
    let ms: i64 = row.get(col)?;
    DateTime::from_timestamp_millis(ms).ok_or(rusqlite::Error::InvalidQuery)
}

fn id<T: From<Uuid>>(row: &Row<'_>, col: &str) -> rusqlite::Result<T> {
    let s: String = row.get(col)?;
    Uuid::parse_str(&s)
        .map(T::from)
        .map_err(|_| rusqlite::Error::InvalidQuery)
}

/// The patient row read column by column, as the store's hand-written mapper did.
fn patient_by_hand(row: &Row<'_>) -> rusqlite::Result<Patient> {
    let bad = |_| rusqlite::Error::InvalidQuery;
    let dob: Option<String> = row.get("date_of_birth")?;
    let sex: Option<String> = row.get("sex")?;
    let ec_name: Option<String> = row.get("ec_name")?;
    let ec_phone: Option<String> = row.get("ec_phone")?;
    let allergies: String = row.get("allergies")?;
    Ok(Patient {
        id: id(row, "id")?,
        mrn: row.get("mrn")?,
        site: row.get("site")?,
        name: row.get("name")?,
        email: row.get("email")?,
        phone: row.get("phone")?,
        date_of_birth: dob
            .map(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").map_err(bad))
            .transpose()?,
        sex: sex
            .map(|s| Sex::parse(&s).map_err(|_| rusqlite::Error::InvalidQuery))
            .transpose()?,
        address: Address {
            line1: row.get("address_line1")?,
            line2: row.get("address_line2")?,
            city: row.get("address_city")?,
            region: row.get("address_region")?,
            postal_code: row.get("address_postal_code")?,
            country: row.get("address_country")?,
        },
        emergency_contact: match (ec_name, ec_phone) {
            (Some(name), Some(phone)) => Some(EmergencyContact {
                name,
                phone,
                relationship: row.get("ec_relationship")?,
            }),
            _ => None,
        },
        allergies: serde_json::from_str(&allergies).map_err(|_| rusqlite::Error::InvalidQuery)?,
        active: row.get("active")?,
        created_at: millis(row, "created_at")?,
        updated_at: millis(row, "updated_at")?,
    })
}

fn raw(row: &Row<'_>) -> rusqlite::Result<Vec<Value>> {
    (0..row.as_ref().column_count())
        .map(|i| row.get::<_, Value>(i))
        .collect()
}

/// Runs `sql` mapping each row with `f`; the time taken, and how many rows.
fn timed<T>(
    c: &Connection,
    sql: &str,
    f: fn(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<(Duration, usize), StoreError> {
    let t = Instant::now();
    let mut stmt = c
        .prepare_cached(sql)
        .map_err(StoreError::sqlite("prepare"))?;
    let rows = stmt
        .query_map([], f)
        .map_err(StoreError::sqlite("query"))?
        .collect::<Result<Vec<T>, _>>()
        .map_err(StoreError::sqlite("read"))?;
    Ok((t.elapsed(), rows.len()))
}

fn p50(v: &mut [Duration]) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1000.0
}

pub fn run(patients: usize, invoices: usize, repeat: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path(), None)?;
    let mut rng = Rng(0x0005_EED0_FA11_0F1D);
    let ids = seed::patients(&store, "DEV", 0, patients, &mut rng)?;
    let Some(AnyRecord::Invoice(template)) = samples::billing().into_iter().next() else {
        anyhow::bail!("the billing samples start with an invoice");
    };
    let now = Utc::now();
    for chunk in (0..invoices).collect::<Vec<_>>().chunks(1000) {
        store.write(now, |tx| {
            for &k in chunk {
                tx.put(&Invoice {
                    id: InvoiceId(Uuid::now_v7()),
                    number: format!("DEV-INV-{k:07}"),
                    patient_id: ids[k % ids.len()],
                    issued_at: now,
                    ..template.clone()
                })?;
            }
            Ok::<_, StoreError>(())
        })?;
    }
    let patient_sql =
        format!("SELECT * FROM patients ORDER BY name COLLATE NOCASE, id LIMIT {PAGE}");
    let invoice_sql = format!("SELECT * FROM invoices ORDER BY id LIMIT {PAGE}");
    let (mut p_raw, mut p_hand, mut p_read, mut i_raw, mut i_read) =
        (vec![], vec![], vec![], vec![], vec![]);
    store.read(|c| {
        for _ in 0..repeat {
            p_raw.push(timed(c, &patient_sql, raw)?.0);
            p_hand.push(timed(c, &patient_sql, patient_by_hand)?.0);
            p_read.push(timed(c, &patient_sql, record_row::<Patient>)?.0);
            i_raw.push(timed(c, &invoice_sql, raw)?.0);
            i_read.push(timed(c, &invoice_sql, record_row::<Invoice>)?.0);
        }
        Ok(())
    })?;
    let (pr, ph, pd, ir, id) = (
        p50(&mut p_raw),
        p50(&mut p_hand),
        p50(&mut p_read),
        p50(&mut i_raw),
        p50(&mut i_read),
    );
    println!("{PAGE} rows per read, p50 of {repeat}, one run, interleaved:");
    println!(
        "| rows | raw values ms | by hand ms | record_row ms | record_row vs by hand | vs raw |"
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "| patients | {pr:.3} | {ph:.3} | {pd:.3} | {:.2}x | {:.2}x |",
        pd / ph,
        pd / pr
    );
    println!(
        "| invoices (2 lines) | {ir:.3} | | {id:.3} | | {:.2}x |",
        id / ir
    );
    Ok(())
}
