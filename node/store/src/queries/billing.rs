//! Billing read-side: invoices with what was paid on them and whether they are void,
//! payments, a patient's balance, a site's day-end report, the price list, insurance
//! coverages and claims. What an
//! invoice owes is computed here from its payments and void, never stored.

use chrono::{DateTime, Utc};
use healsync_domain::billing::{Currency, InvoiceStatus};
use healsync_domain::*;
use rusqlite::{Connection, Row, ToSql, params_from_iter};

use super::{all, boxed, conv_err, ms, one, opt_id, record_row, time};
use crate::StoreError;

type Result<T> = std::result::Result<T, StoreError>;

/// Who voided an invoice, when and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoidRow {
    pub id: InvoiceVoidId,
    pub reason: String,
    pub voided_by: String,
    pub voided_at: DateTime<Utc>,
}

/// An invoice with the sum of its payments (refunds subtracted) and its void.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceRow {
    pub invoice: Invoice,
    pub paid: i64,
    pub void: Option<VoidRow>,
}

impl InvoiceRow {
    pub fn status(&self) -> InvoiceStatus {
        billing::invoice_status(self.invoice.totals().total, self.paid, self.void.is_some())
    }

    pub fn outstanding(&self) -> i64 {
        billing::outstanding(self.invoice.totals().total, self.paid, self.void.is_some())
    }
}

/// Invoices (aliased `i`) with `paid` and the first void's columns.
const INVOICE_SELECT: &str = "SELECT i.*,
        (SELECT COALESCE(SUM(p.amount), 0) FROM payments p WHERE p.invoice_id = i.id) AS paid,
        v.id AS void_id, v.reason AS void_reason, v.voided_by, v.voided_at
     FROM invoices i
     LEFT JOIN invoice_voids v ON v.id = (SELECT w.id FROM invoice_voids w
         WHERE w.invoice_id = i.id ORDER BY w.voided_at, w.id LIMIT 1)";

/// The invoices matching `cond` (on `i`) with `status`: the SQL form of
/// `billing::invoice_status`, so lists filter by status in the database (the store's
/// tests check that the two agree).
fn with_status(cond: &str) -> String {
    format!(
        "SELECT y.*, CASE WHEN y.void_id IS NOT NULL THEN 'VOID'
                WHEN y.paid >= y.total THEN 'PAID'
                WHEN y.paid > 0 THEN 'PARTIALLY_PAID'
                ELSE 'ISSUED' END AS status
         FROM ({INVOICE_SELECT} WHERE {cond}) y"
    )
}

fn currency(row: &Row<'_>, idx: &str) -> rusqlite::Result<Currency> {
    Currency::parse(&row.get::<_, String>(idx)?).map_err(conv_err)
}

fn invoice_row(row: &Row<'_>) -> rusqlite::Result<InvoiceRow> {
    let void = match opt_id::<InvoiceVoidId>(row, "void_id")? {
        None => None,
        Some(id) => Some(VoidRow {
            id,
            reason: row.get("void_reason")?,
            voided_by: row.get("voided_by")?,
            voided_at: time(row, "voided_at")?,
        }),
    };
    Ok(InvoiceRow {
        invoice: record_row(row)?,
        paid: row.get("paid")?,
        void,
    })
}

/// What an invoice list asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InvoiceFilter {
    pub patient: Option<PatientId>,
    pub site: Option<String>,
    /// Any of these statuses (all when empty).
    pub statuses: Vec<InvoiceStatus>,
    /// Issued at or after `from`, before `to`.
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub limit: u32,
    pub offset: u32,
}

/// Invoices under `f`, newest first.
pub fn invoices(conn: &Connection, f: &InvoiceFilter) -> Result<Vec<InvoiceRow>> {
    let action = "list invoices";
    let mut cond = vec!["1 = 1".to_string()];
    let mut args: Vec<Box<dyn ToSql>> = vec![];
    if let Some(p) = f.patient {
        cond.push("i.patient_id = ?".into());
        args.push(Box::new(p.to_string()));
    }
    if let Some(s) = &f.site {
        cond.push("i.site = ?".into());
        args.push(Box::new(s.clone()));
    }
    if let Some(from) = f.from {
        cond.push("i.issued_at >= ?".into());
        args.push(Box::new(ms(from)));
    }
    if let Some(to) = f.to {
        cond.push("i.issued_at < ?".into());
        args.push(Box::new(ms(to)));
    }
    let mut outer = "1 = 1".to_string();
    if !f.statuses.is_empty() {
        outer = format!("status IN ({})", vec!["?"; f.statuses.len()].join(","));
        args.extend(
            f.statuses
                .iter()
                .map(|s| Box::new(s.as_str()) as Box<dyn ToSql>),
        );
    }
    args.push(Box::new(i64::from(f.limit)));
    args.push(Box::new(i64::from(f.offset)));
    let sql = format!(
        "SELECT * FROM ({}) WHERE {outer} ORDER BY issued_at DESC, id DESC LIMIT ? OFFSET ?",
        with_status(&cond.join(" AND "))
    );
    boxed(conn, action, &sql, &args, invoice_row)
}

/// One invoice.
pub fn invoice(conn: &Connection, id: InvoiceId) -> Result<Option<InvoiceRow>> {
    one(
        conn,
        "read an invoice",
        &with_status("i.id = ?1"),
        &[&id.to_string()],
        invoice_row,
    )
}

/// The invoice of an appointment that is not void, if there is one.
pub fn live_invoice_of_appointment(
    conn: &Connection,
    appointment: AppointmentId,
) -> Result<Option<String>> {
    one(
        conn,
        "find an appointment's invoice",
        "SELECT i.number FROM invoices i WHERE i.appointment_id = ?1
           AND NOT EXISTS (SELECT 1 FROM invoice_voids v WHERE v.invoice_id = i.id)
         ORDER BY i.issued_at LIMIT 1",
        &[&appointment.to_string()],
        |r| r.get(0),
    )
}

/// The payments of several invoices (a loader's batch), oldest first.
pub fn payments_of(conn: &Connection, invoices: &[InvoiceId]) -> Result<Vec<Payment>> {
    let action = "read payments";
    let mut out = vec![];
    for chunk in invoices.chunks(200) {
        let sql = format!(
            "SELECT * FROM payments WHERE invoice_id IN ({}) ORDER BY received_at, id",
            vec!["?"; chunk.len()].join(",")
        );
        let ids: Vec<String> = chunk.iter().map(|i| i.to_string()).collect();
        let mut stmt = conn
            .prepare_cached(&sql)
            .map_err(StoreError::sqlite(action))?;
        let rows = stmt
            .query_map(params_from_iter(ids.iter()), record_row::<Payment>)
            .map_err(StoreError::sqlite(action))?;
        for r in rows {
            out.push(r.map_err(StoreError::sqlite(action))?);
        }
    }
    Ok(out)
}

/// One payment.
pub fn payment(conn: &Connection, id: PaymentId) -> Result<Option<Payment>> {
    one(
        conn,
        "read a payment",
        "SELECT * FROM payments WHERE id = ?1",
        &[&id.to_string()],
        record_row::<Payment>,
    )
}

/// What a patient owes, per currency: invoices not void, less everything paid (on a
/// void invoice, what was paid is owed back). Negative is a credit.
pub fn patient_balance(conn: &Connection, patient: PatientId) -> Result<Vec<(Currency, i64)>> {
    all(
        conn,
        "read a patient's balance",
        "SELECT currency, SUM(owed) AS owed FROM (
             SELECT i.currency, i.total AS owed FROM invoices i WHERE i.patient_id = ?1
               AND NOT EXISTS (SELECT 1 FROM invoice_voids v WHERE v.invoice_id = i.id)
             UNION ALL
             SELECT p.currency, -p.amount FROM payments p WHERE p.patient_id = ?1
         ) GROUP BY currency ORDER BY currency",
        &[&patient.to_string()],
        |r| Ok((currency(r, "currency")?, r.get("owed")?)),
    )
}

/// One group of a day-end report: how many, and how much.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    /// The payment method, the cashier's account, or empty for a whole.
    pub key: String,
    pub currency: Currency,
    pub count: i64,
    pub amount: i64,
}

/// A site's takings over a period: payments (refunds counted negative) by method and
/// by cashier, what was invoiced, and what was voided.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DayEnd {
    pub by_method: Vec<Tally>,
    pub by_cashier: Vec<Tally>,
    pub refunds: Vec<Tally>,
    pub invoiced: Vec<Tally>,
    pub voided: Vec<Tally>,
}

fn tally(row: &Row<'_>) -> rusqlite::Result<Tally> {
    Ok(Tally {
        key: row.get("k")?,
        currency: currency(row, "currency")?,
        count: row.get("n")?,
        amount: row.get("amount")?,
    })
}

/// The day-end cash report of `site` for `[from, to)`. Every part reads an index on
/// (site, time): the cost is the day's rows, not the site's history.
pub fn day_end(
    conn: &Connection,
    site: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<DayEnd> {
    let action = "build the day-end report";
    let args: [&dyn ToSql; 3] = [&site, &ms(from), &ms(to)];
    let payments = |key: &str, filter: &str| {
        format!(
            "SELECT {key} AS k, currency, count(*) AS n, SUM(amount) AS amount FROM payments
             WHERE site = ?1 AND received_at >= ?2 AND received_at < ?3 {filter}
             GROUP BY k, currency ORDER BY k, currency"
        )
    };
    Ok(DayEnd {
        by_method: all(conn, action, &payments("method", ""), &args, tally)?,
        by_cashier: all(conn, action, &payments("received_by", ""), &args, tally)?,
        refunds: all(
            conn,
            action,
            &payments("''", "AND amount < 0"),
            &args,
            tally,
        )?,
        invoiced: all(
            conn,
            action,
            "SELECT '' AS k, currency, count(*) AS n, SUM(total) AS amount FROM invoices
             WHERE site = ?1 AND issued_at >= ?2 AND issued_at < ?3
             GROUP BY currency ORDER BY currency",
            &args,
            tally,
        )?,
        voided: all(
            conn,
            action,
            "SELECT '' AS k, i.currency, count(*) AS n, SUM(i.total) AS amount
             FROM invoice_voids v JOIN invoices i ON i.id = v.invoice_id
             WHERE v.site = ?1 AND v.voided_at >= ?2 AND v.voided_at < ?3
             GROUP BY i.currency ORDER BY i.currency",
            &args,
            tally,
        )?,
    })
}

/// The most services of one site's price list that a list returns.
pub const MAX_PRICE_ITEMS: usize = 1000;

/// A site's price list, by code (at most [`MAX_PRICE_ITEMS`]).
pub fn price_items(conn: &Connection, site: &str, active_only: bool) -> Result<Vec<PriceItem>> {
    all(
        conn,
        "read the price list",
        "SELECT * FROM price_items WHERE site = ?1 AND (?2 = 0 OR active = 1)
         ORDER BY code, id LIMIT ?3",
        &[&site, &active_only, &(MAX_PRICE_ITEMS as i64)],
        record_row::<PriceItem>,
    )
}

/// A site's service by its code.
pub fn price_item_by_code(conn: &Connection, site: &str, code: &str) -> Result<Option<PriceItem>> {
    one(
        conn,
        "read a price list item",
        "SELECT * FROM price_items WHERE site = ?1 AND code = ?2 ORDER BY id LIMIT 1",
        &[&site, &code],
        record_row::<PriceItem>,
    )
}

/// A service of the price list by id.
pub fn price_item(conn: &Connection, id: PriceItemId) -> Result<Option<PriceItem>> {
    one(
        conn,
        "read a price list item",
        "SELECT * FROM price_items WHERE id = ?1",
        &[&id.to_string()],
        record_row::<PriceItem>,
    )
}

/// The most coverages one patient lists.
pub const MAX_COVERAGES: usize = 20;

/// A patient's coverages, newest cover first.
pub fn coverages_of(conn: &Connection, patient: PatientId) -> Result<Vec<Coverage>> {
    all(
        conn,
        "read a patient's coverages",
        "SELECT * FROM coverages WHERE patient_id = ?1
         ORDER BY active DESC, valid_from DESC, id LIMIT ?2",
        &[&patient.to_string(), &(MAX_COVERAGES as i64)],
        record_row::<Coverage>,
    )
}

/// One coverage.
pub fn coverage(conn: &Connection, id: CoverageId) -> Result<Option<Coverage>> {
    one(
        conn,
        "read a coverage",
        "SELECT * FROM coverages WHERE id = ?1",
        &[&id.to_string()],
        record_row::<Coverage>,
    )
}

/// What a claim list asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClaimFilter {
    pub patient: Option<PatientId>,
    pub invoice: Option<InvoiceId>,
    /// Any of these statuses (all when empty).
    pub statuses: Vec<insurance::ClaimStatus>,
    pub limit: u32,
    pub offset: u32,
}

/// Claims under `f`, newest first.
pub fn claims(conn: &Connection, f: &ClaimFilter) -> Result<Vec<Claim>> {
    let action = "list claims";
    let mut cond = vec!["1 = 1".to_string()];
    let mut args: Vec<Box<dyn ToSql>> = vec![];
    if let Some(p) = f.patient {
        cond.push("patient_id = ?".into());
        args.push(Box::new(p.to_string()));
    }
    if let Some(i) = f.invoice {
        cond.push("invoice_id = ?".into());
        args.push(Box::new(i.to_string()));
    }
    if !f.statuses.is_empty() {
        cond.push(format!(
            "status IN ({})",
            vec!["?"; f.statuses.len()].join(",")
        ));
        args.extend(
            f.statuses
                .iter()
                .map(|s| Box::new(s.as_str()) as Box<dyn ToSql>),
        );
    }
    args.push(Box::new(i64::from(f.limit)));
    args.push(Box::new(i64::from(f.offset)));
    let sql = format!(
        "SELECT * FROM claims WHERE {} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
        cond.join(" AND ")
    );
    boxed(conn, action, &sql, &args, record_row::<Claim>)
}

/// One claim.
pub fn claim(conn: &Connection, id: ClaimId) -> Result<Option<Claim>> {
    one(
        conn,
        "read a claim",
        "SELECT * FROM claims WHERE id = ?1",
        &[&id.to_string()],
        record_row::<Claim>,
    )
}

/// The number of an invoice's claim that still asks for money, if there is one.
pub fn open_claim_of_invoice(conn: &Connection, invoice: InvoiceId) -> Result<Option<String>> {
    one(
        conn,
        "find an invoice's open claim",
        "SELECT number FROM claims WHERE invoice_id = ?1
           AND status IN ('DRAFT', 'SUBMITTED', 'ACCEPTED')
         ORDER BY created_at LIMIT 1",
        &[&invoice.to_string()],
        |r| r.get(0),
    )
}
