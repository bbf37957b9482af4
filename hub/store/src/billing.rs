//! Billing at the hub: the fact tables the fold keeps from the billing records nodes
//! upload (invoices with their lines and totals, voids, payments, insurance claims), and
//! the roll-ups central admins read from them: revenue invoiced, money received and
//! balances outstanding by site × period × payer; claims by status and age; the
//! services that bring the most revenue.
//!
//! Who pays what: an invoice's claims that the payer has not rejected are the
//! insurer's share of it (at most its total); the rest is the patient's (`SELF_PAY`).
//! A payment of method `INSURANCE` is the insurer's of the invoice's claim; any other
//! is the patient's. A voided invoice is neither revenue nor owed.

use chrono::{DateTime, Utc};
use healsync_records::AnyRecord;
use sqlx::{Postgres, Row, Transaction};
use uuid::Uuid;

use crate::error::db;
use crate::{HubStore, HubStoreError};

/// The payer of what no insurer covers.
pub const SELF_PAY: &str = "SELF_PAY";

/// The length of one roll-up period (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    Week,
    Month,
}

impl Period {
    fn as_sql(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
        }
    }
}

/// Which billing a roll-up covers.
#[derive(Debug, Clone, Copy)]
pub struct BillingScope<'a> {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// One site, as asked for.
    pub site: Option<&'a str>,
    /// The sites the asker may see; `None`: every site.
    pub sites: Option<&'a [String]>,
}

/// One cell of the revenue roll-up: site × period × payer × currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevenueRow {
    pub site: String,
    /// The period's first day, `YYYY-MM-DD`.
    pub period: String,
    pub payer: String,
    pub currency: String,
    /// Of invoices issued in the period (void ones left out).
    pub invoiced: i64,
    /// Payments received in the period (refunds negative), on any invoice.
    pub received: i64,
    /// What invoices issued in the period still owe today.
    pub outstanding: i64,
}

/// Claims of one status and age band.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimAgeRow {
    pub site: String,
    pub status: String,
    /// `0-30`, `31-60`, `61-90` or `90+` days since the claim was made.
    pub age: String,
    pub currency: String,
    pub count: i64,
    pub amount: i64,
}

/// What one service brought in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRow {
    /// The price list's code, or the line's description.
    pub service: String,
    pub currency: String,
    pub quantity: i64,
    pub revenue: i64,
}

/// Projects billing records into the fact tables (in the fold's or a hub write's
/// transaction), one bulk statement per table. Invoices, voids and payments are written
/// once; a claim changes status.
pub(crate) async fn store_billing(
    tx: &mut Transaction<'_, Postgres>,
    records: &[&AnyRecord],
) -> Result<(), HubStoreError> {
    let (mut inv, mut lines, mut voids, mut pays, mut claims) = (
        Invoices::default(),
        Lines::default(),
        Voids::default(),
        Payments::default(),
        Claims::default(),
    );
    for r in records {
        match r {
            AnyRecord::Invoice(i) => {
                inv.id.push(i.id.0);
                inv.site.push(i.site.clone());
                inv.patient.push(i.patient_id.0);
                inv.number.push(i.number.clone());
                inv.currency.push(i.currency.as_str().to_string());
                inv.issued.push(i.issued_at);
                inv.total.push(i.totals().total);
                for (n, l) in i.lines.iter().enumerate() {
                    lines.invoice.push(i.id.0);
                    lines.line.push(i32::try_from(n).unwrap_or(i32::MAX));
                    lines.service.push(
                        l.service_code
                            .clone()
                            .unwrap_or_else(|| l.description.clone()),
                    );
                    lines.quantity.push(i64::from(l.quantity));
                    lines.total.push(l.total());
                }
            }
            AnyRecord::InvoiceVoid(v) => {
                voids.id.push(v.id.0);
                voids.invoice.push(v.invoice_id.0);
                voids.at.push(v.voided_at);
            }
            AnyRecord::Payment(p) => {
                pays.id.push(p.id.0);
                pays.invoice.push(p.invoice_id.0);
                pays.site.push(p.site.clone());
                pays.currency.push(p.currency.as_str().to_string());
                pays.amount.push(p.amount);
                pays.method.push(p.method.as_str().to_string());
                pays.at.push(p.received_at);
            }
            AnyRecord::Claim(c) => {
                claims.id.push(c.id.0);
                claims.invoice.push(c.invoice_id.0);
                claims.site.push(c.site.clone());
                claims.payer.push(c.payer.clone());
                claims.currency.push(c.currency.as_str().to_string());
                claims.amount.push(c.amount);
                claims.status.push(c.status.as_str().to_string());
                claims.created.push(c.created_at);
                claims.updated.push(c.updated_at);
            }
            _ => {}
        }
    }
    if !inv.id.is_empty() {
        sqlx::query(
            "INSERT INTO billing_invoices (invoice_id, site, patient_id, number, currency, issued_at, total)
             SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::text[], $6::timestamptz[], $7::bigint[])
             ON CONFLICT (invoice_id) DO NOTHING",
        )
        .bind(&inv.id)
        .bind(&inv.site)
        .bind(&inv.patient)
        .bind(&inv.number)
        .bind(&inv.currency)
        .bind(&inv.issued)
        .bind(&inv.total)
        .execute(&mut **tx)
        .await
        .map_err(db("project invoices"))?;
    }
    if !lines.invoice.is_empty() {
        sqlx::query(
            "INSERT INTO billing_lines (invoice_id, line, service, quantity, total)
             SELECT * FROM UNNEST($1::uuid[], $2::int[], $3::text[], $4::bigint[], $5::bigint[])
             ON CONFLICT (invoice_id, line) DO NOTHING",
        )
        .bind(&lines.invoice)
        .bind(&lines.line)
        .bind(&lines.service)
        .bind(&lines.quantity)
        .bind(&lines.total)
        .execute(&mut **tx)
        .await
        .map_err(db("project invoice lines"))?;
    }
    if !voids.id.is_empty() {
        sqlx::query(
            "INSERT INTO billing_voids (void_id, invoice_id, voided_at)
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::timestamptz[])
             ON CONFLICT (void_id) DO NOTHING",
        )
        .bind(&voids.id)
        .bind(&voids.invoice)
        .bind(&voids.at)
        .execute(&mut **tx)
        .await
        .map_err(db("project voids"))?;
    }
    if !pays.id.is_empty() {
        sqlx::query(
            "INSERT INTO billing_payments (payment_id, invoice_id, site, currency, amount, method, received_at)
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::timestamptz[])
             ON CONFLICT (payment_id) DO NOTHING",
        )
        .bind(&pays.id)
        .bind(&pays.invoice)
        .bind(&pays.site)
        .bind(&pays.currency)
        .bind(&pays.amount)
        .bind(&pays.method)
        .bind(&pays.at)
        .execute(&mut **tx)
        .await
        .map_err(db("project payments"))?;
    }
    if !claims.id.is_empty() {
        sqlx::query(
            "INSERT INTO billing_claims (claim_id, invoice_id, site, payer, currency, amount, status, created_at, updated_at)
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::timestamptz[], $9::timestamptz[])
             ON CONFLICT (claim_id) DO UPDATE SET payer = EXCLUDED.payer, amount = EXCLUDED.amount,
                 status = EXCLUDED.status, updated_at = EXCLUDED.updated_at
             WHERE billing_claims.updated_at <= EXCLUDED.updated_at",
        )
        .bind(&claims.id)
        .bind(&claims.invoice)
        .bind(&claims.site)
        .bind(&claims.payer)
        .bind(&claims.currency)
        .bind(&claims.amount)
        .bind(&claims.status)
        .bind(&claims.created)
        .bind(&claims.updated)
        .execute(&mut **tx)
        .await
        .map_err(db("project claims"))?;
    }
    let mut touched: Vec<Uuid> = inv.id.clone();
    touched.extend(&voids.invoice);
    touched.extend(&pays.invoice);
    touched.extend(&claims.invoice);
    touched.sort();
    touched.dedup();
    refresh_days(tx, &touched, &pays.id).await
}

/// Recomputes, whole from the facts, the day cells these invoices (issued on them)
/// and these payments, and the payments on these invoices (whose payer a claim
/// decides), count in.
async fn refresh_days(
    tx: &mut Transaction<'_, Postgres>,
    invoices: &[Uuid],
    payments: &[Uuid],
) -> Result<(), HubStoreError> {
    if invoices.is_empty() && payments.is_empty() {
        return Ok(());
    }
    let issued_cells = "SELECT DISTINCT site, (issued_at AT TIME ZONE 'UTC')::date AS day
                        FROM billing_invoices WHERE invoice_id = ANY($1)";
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH cells AS ({issued_cells})
         DELETE FROM billing_days_issued b USING cells c WHERE b.site = c.site AND b.day = c.day"
    )))
    .bind(invoices)
    .execute(&mut **tx)
    .await
    .map_err(db("clear billing days"))?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH cells AS ({issued_cells}),
         inv AS (
             SELECT i.invoice_id, i.site, i.currency, i.total, c.day
             FROM cells c JOIN billing_invoices i ON i.site = c.site
                  AND i.issued_at >= c.day::timestamp AT TIME ZONE 'UTC'
                  AND i.issued_at < (c.day + 1)::timestamp AT TIME ZONE 'UTC'
             WHERE NOT EXISTS (SELECT 1 FROM billing_voids v WHERE v.invoice_id = i.invoice_id)
         ),
         insured AS (
             SELECT c.invoice_id, c.payer, sum(c.amount) AS amount
             FROM billing_claims c JOIN inv USING (invoice_id)
             WHERE c.status NOT IN ('REJECTED', 'WITHDRAWN') GROUP BY c.invoice_id, c.payer
         ),
         shares AS (
             SELECT inv.invoice_id, inv.site, inv.currency, inv.day, s.payer, s.amount
             FROM inv CROSS JOIN LATERAL (
                 SELECT payer, LEAST(amount, inv.total) AS amount FROM insured
                 WHERE insured.invoice_id = inv.invoice_id
                 UNION ALL
                 SELECT '{SELF_PAY}', inv.total - LEAST(inv.total, COALESCE(
                     (SELECT sum(amount) FROM insured WHERE insured.invoice_id = inv.invoice_id), 0))
             ) s
         ),
         toward AS (
             SELECT p.invoice_id, {PAYMENT_PAYER} AS payer, sum(p.amount) AS amount
             FROM billing_payments p JOIN inv USING (invoice_id) GROUP BY 1, 2
         )
         INSERT INTO billing_days_issued (day, site, payer, currency, invoiced, outstanding)
         SELECT s.day, s.site, s.payer, s.currency, sum(s.amount),
                sum(s.amount - COALESCE(t.amount, 0))
         FROM shares s LEFT JOIN toward t ON t.invoice_id = s.invoice_id AND t.payer = s.payer
         GROUP BY s.day, s.site, s.payer, s.currency"
    )))
    .bind(invoices)
    .execute(&mut **tx)
    .await
    .map_err(db("recompute billing days"))?;

    let received_cells = "SELECT DISTINCT site, (received_at AT TIME ZONE 'UTC')::date AS day
                          FROM billing_payments WHERE payment_id = ANY($2) OR invoice_id = ANY($1)";
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH cells AS ({received_cells})
         DELETE FROM billing_days_received b USING cells c WHERE b.site = c.site AND b.day = c.day"
    )))
    .bind(invoices)
    .bind(payments)
    .execute(&mut **tx)
    .await
    .map_err(db("clear receipt days"))?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH cells AS ({received_cells})
         INSERT INTO billing_days_received (day, site, payer, currency, received)
         SELECT c.day, p.site, {PAYMENT_PAYER}, p.currency, sum(p.amount)
         FROM cells c JOIN billing_payments p ON p.site = c.site
              AND p.received_at >= c.day::timestamp AT TIME ZONE 'UTC'
              AND p.received_at < (c.day + 1)::timestamp AT TIME ZONE 'UTC'
         GROUP BY 1, 2, 3, 4"
    )))
    .bind(invoices)
    .bind(payments)
    .execute(&mut **tx)
    .await
    .map_err(db("recompute receipt days"))?;
    Ok(())
}

/// Columns of the rows [`store_billing`] inserts, one vector per column.
#[derive(Default)]
struct Invoices {
    id: Vec<Uuid>,
    site: Vec<String>,
    patient: Vec<Uuid>,
    number: Vec<String>,
    currency: Vec<String>,
    issued: Vec<DateTime<Utc>>,
    total: Vec<i64>,
}

#[derive(Default)]
struct Lines {
    invoice: Vec<Uuid>,
    line: Vec<i32>,
    service: Vec<String>,
    quantity: Vec<i64>,
    total: Vec<i64>,
}

#[derive(Default)]
struct Voids {
    id: Vec<Uuid>,
    invoice: Vec<Uuid>,
    at: Vec<DateTime<Utc>>,
}

#[derive(Default)]
struct Payments {
    id: Vec<Uuid>,
    invoice: Vec<Uuid>,
    site: Vec<String>,
    currency: Vec<String>,
    amount: Vec<i64>,
    method: Vec<String>,
    at: Vec<DateTime<Utc>>,
}

#[derive(Default)]
struct Claims {
    id: Vec<Uuid>,
    invoice: Vec<Uuid>,
    site: Vec<String>,
    payer: Vec<String>,
    currency: Vec<String>,
    amount: Vec<i64>,
    status: Vec<String>,
    created: Vec<DateTime<Utc>>,
    updated: Vec<DateTime<Utc>>,
}

/// The SQL expression of who made payment `p`: the insurer of the invoice's claim for
/// an `INSURANCE` payment, the patient otherwise.
const PAYMENT_PAYER: &str = "CASE WHEN p.method = 'INSURANCE' THEN COALESCE(
    (SELECT min(c.payer) FROM billing_claims c
     WHERE c.invoice_id = p.invoice_id AND c.status NOT IN ('REJECTED', 'WITHDRAWN')), 'INSURANCE')
    ELSE 'SELF_PAY' END";

/// The SQL condition "row `t` is at a site the asker sees and asked for", over `$n`
/// (one site) and `$n+1` (the asker's sites).
fn at_sites(t: &str, n: u8) -> String {
    let m = n + 1;
    format!(
        "(${n}::text IS NULL OR {t}.site = ${n}) AND (${m}::text[] IS NULL OR {t}.site = ANY(${m}))"
    )
}

impl HubStore {
    /// Revenue invoiced, money received and balances outstanding by site × period ×
    /// payer × currency, from the day tables: the UTC days from `from`'s to `to`'s
    /// (that one included when `to` is past its midnight), invoices by their day of
    /// issue, payments by the day they were received.
    pub async fn revenue(
        &self,
        scope: &BillingScope<'_>,
        period: Period,
    ) -> Result<Vec<RevenueRow>, HubStoreError> {
        let first = scope.from.date_naive();
        let midnight = scope
            .to
            .date_naive()
            .and_time(chrono::NaiveTime::MIN)
            .and_utc();
        let past = if scope.to > midnight {
            scope.to.date_naive() + chrono::Duration::days(1)
        } else {
            scope.to.date_naive()
        };
        let sql = format!(
            "SELECT site, to_char(date_trunc($1, day::timestamp), 'YYYY-MM-DD') AS period, payer,
                    currency, sum(invoiced)::bigint AS invoiced, sum(received)::bigint AS received,
                    sum(outstanding)::bigint AS outstanding
             FROM (
                 SELECT site, day, payer, currency, invoiced, 0::bigint AS received, outstanding
                 FROM billing_days_issued d WHERE day >= $2 AND day < $3 AND {sites}
                 UNION ALL
                 SELECT site, day, payer, currency, 0, received, 0
                 FROM billing_days_received d WHERE day >= $2 AND day < $3 AND {sites}
             ) cells
             GROUP BY site, date_trunc($1, day::timestamp), payer, currency
             ORDER BY site, date_trunc($1, day::timestamp), payer = '{SELF_PAY}' DESC, payer, currency",
            sites = at_sites("d", 4),
        );
        // Built from this function's constants only.
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(period.as_sql())
            .bind(first)
            .bind(past)
            .bind(scope.site)
            .bind(scope.sites)
            .fetch_all(&self.pool)
            .await
            .map_err(db("roll up revenue"))?
            .into_iter()
            .map(|r| {
                Ok(RevenueRow {
                    site: r.try_get("site")?,
                    period: r.try_get("period")?,
                    payer: r.try_get("payer")?,
                    currency: r.try_get("currency")?,
                    invoiced: r.try_get("invoiced")?,
                    received: r.try_get("received")?,
                    outstanding: r.try_get("outstanding")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(db("read a revenue row"))
    }

    /// Claims by site, status and age (days since made, at `now`), with their amounts.
    pub async fn claims_by_age(
        &self,
        site: Option<&str>,
        sites: Option<&[String]>,
        now: DateTime<Utc>,
    ) -> Result<Vec<ClaimAgeRow>, HubStoreError> {
        let sql = format!(
            "SELECT site, status, currency,
                    CASE WHEN $1 - created_at <= interval '30 days' THEN '0-30'
                         WHEN $1 - created_at <= interval '60 days' THEN '31-60'
                         WHEN $1 - created_at <= interval '90 days' THEN '61-90'
                         ELSE '90+' END AS age,
                    count(*) AS n, sum(amount)::bigint AS amount
             FROM billing_claims c WHERE {}
             GROUP BY site, status, currency, age ORDER BY site, status, age, currency",
            at_sites("c", 2)
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(site)
            .bind(sites)
            .fetch_all(&self.pool)
            .await
            .map_err(db("roll up claims"))?
            .into_iter()
            .map(|r| {
                Ok(ClaimAgeRow {
                    site: r.try_get("site")?,
                    status: r.try_get("status")?,
                    age: r.try_get("age")?,
                    currency: r.try_get("currency")?,
                    count: r.try_get("n")?,
                    amount: r.try_get("amount")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(db("read a claims row"))
    }

    /// The services of invoices issued in the scope's range (void ones left out) by
    /// revenue, most first.
    pub async fn top_services(
        &self,
        scope: &BillingScope<'_>,
        limit: i64,
    ) -> Result<Vec<ServiceRow>, HubStoreError> {
        let sql = format!(
            "SELECT l.service, i.currency, sum(l.quantity)::bigint AS quantity,
                    sum(l.total)::bigint AS revenue
             FROM billing_invoices i JOIN billing_lines l USING (invoice_id)
             WHERE i.issued_at >= $1 AND i.issued_at < $2 AND {}
               AND NOT EXISTS (SELECT 1 FROM billing_voids v WHERE v.invoice_id = i.invoice_id)
             GROUP BY l.service, i.currency ORDER BY revenue DESC, l.service LIMIT $5",
            at_sites("i", 3)
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(scope.from)
            .bind(scope.to)
            .bind(scope.site)
            .bind(scope.sites)
            .bind(limit.clamp(1, 500))
            .fetch_all(&self.pool)
            .await
            .map_err(db("rank services"))?
            .into_iter()
            .map(|r| {
                Ok(ServiceRow {
                    service: r.try_get("service")?,
                    currency: r.try_get("currency")?,
                    quantity: r.try_get("quantity")?,
                    revenue: r.try_get("revenue")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(db("read a service row"))
    }
}
