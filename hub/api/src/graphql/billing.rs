//! Billing roll-ups and scheduling utilisation for central admins, from the
//! projections the fold keeps (`healsync_hub_store::billing`): revenue invoiced, money
//! received and balances outstanding by site × period × payer; claims by status and
//! age; the services that bring the most revenue; a doctor's booked against available
//! slot-hours at each site. An admin limited to sites sees only theirs.

use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Duration, Utc};
use healsync_domain::billing::{Currency, format_amount};
use healsync_hub_store::billing::{BillingScope, Period};

use super::{hub, instant, limit, reporter, uuid};
use crate::HubApiError;

/// The longest range of a billing roll-up: a year and a little.
pub const MAX_BILLING_DAYS: i64 = 370;

/// How long one period of a roll-up is (UTC; weeks start on Monday).
#[derive(Enum, Copy, Clone, PartialEq, Eq)]
#[graphql(name = "Period")]
pub enum GqlPeriod {
    Day,
    Week,
    Month,
}

impl From<GqlPeriod> for Period {
    fn from(p: GqlPeriod) -> Self {
        match p {
            GqlPeriod::Day => Period::Day,
            GqlPeriod::Week => Period::Week,
            GqlPeriod::Month => Period::Month,
        }
    }
}

/// An amount of money: a decimal string with the currency's decimals (as on the node).
#[derive(SimpleObject)]
#[graphql(name = "Money")]
pub struct Money {
    /// `"2495.16"`; negative for a refund or a credit.
    pub amount: String,
    /// ISO 4217, like `KES`.
    pub currency: String,
}

fn money(minor: i64, currency: &str) -> Result<Money, HubApiError> {
    let c = Currency::parse(currency)
        .map_err(|e| HubApiError::internal(format!("a stored currency: {e}")))?;
    Ok(Money {
        amount: format_amount(minor, &c),
        currency: c.to_string(),
    })
}

/// One cell of the revenue roll-up.
#[derive(SimpleObject)]
pub struct RevenueRow {
    pub site: String,
    /// The period's first day, `YYYY-MM-DD`.
    pub period: String,
    /// `SELF_PAY`, or the insurer.
    pub payer: String,
    /// Invoices issued in the period (void ones left out), the payer's share.
    pub invoiced: Money,
    /// Payments received in the period, on any invoice (refunds negative).
    pub received: Money,
    /// What the period's invoices still owe today, the payer's share.
    pub outstanding: Money,
}

/// Claims of one status and age band at a site.
#[derive(SimpleObject)]
pub struct ClaimsByAge {
    pub site: String,
    /// `DRAFT`, `SUBMITTED`, `ACCEPTED`, `REJECTED` or `PAID`.
    pub status: String,
    /// `0-30`, `31-60`, `61-90` or `90+` days since the claim was made.
    pub age: String,
    pub count: i64,
    pub amount: Money,
}

/// What one service brought in.
#[derive(SimpleObject)]
pub struct ServiceRevenue {
    /// The price list's code, or the line's description.
    pub service: String,
    pub quantity: i64,
    pub revenue: Money,
}

/// A doctor's booked against available slot-hours at one site.
#[derive(SimpleObject)]
pub struct SiteUtilisation {
    pub site: String,
    /// Hours of the doctor's schedule at the site in the range (leave left out).
    pub available_hours: f64,
    /// Hours of appointments that hold time (booked, checked in, completed).
    pub booked_hours: f64,
    /// `bookedHours / availableHours`; null with no available hours.
    pub utilisation: Option<f64>,
}

fn scope_range(from: &str, to: &str) -> Result<(DateTime<Utc>, DateTime<Utc>), HubApiError> {
    let (from, to) = (instant("from", from)?, instant("to", to)?);
    if to <= from || to - from > Duration::days(MAX_BILLING_DAYS) {
        return Err(HubApiError::BadInput(format!(
            "`to` must be after `from`, at most {MAX_BILLING_DAYS} days later"
        )));
    }
    Ok((from, to))
}

#[derive(Default)]
pub struct BillingQuery;

#[Object]
impl BillingQuery {
    /// Revenue invoiced, money received and balances outstanding by site × period ×
    /// payer (self-pay and each insurer) × currency, over the UTC days from `from`'s to
    /// `to`'s (that one included when `to` is past its midnight; at most 370 days):
    /// invoices by their day of issue, payments by the day they were received.
    async fn revenue(
        &self,
        ctx: &Context<'_>,
        from: String,
        to: String,
        #[graphql(default_with = "GqlPeriod::Month")] period: GqlPeriod,
        site: Option<String>,
    ) -> Result<Vec<RevenueRow>> {
        let a = reporter(ctx)?;
        let site = a.site_filter(site)?;
        let (from, to) = scope_range(&from, &to)?;
        let rows = hub(ctx)?
            .store()
            .revenue(
                &BillingScope {
                    from,
                    to,
                    site: site.as_deref(),
                    sites: a.sites(),
                },
                period.into(),
            )
            .await
            .map_err(HubApiError::from)?;
        rows.into_iter()
            .map(|r| {
                Ok(RevenueRow {
                    invoiced: money(r.invoiced, &r.currency)?,
                    received: money(r.received, &r.currency)?,
                    outstanding: money(r.outstanding, &r.currency)?,
                    site: r.site,
                    period: r.period,
                    payer: r.payer,
                })
            })
            .collect()
    }

    /// Insurance claims by site, status and age, with their amounts.
    async fn claims_by_age(
        &self,
        ctx: &Context<'_>,
        site: Option<String>,
    ) -> Result<Vec<ClaimsByAge>> {
        let a = reporter(ctx)?;
        let site = a.site_filter(site)?;
        let rows = hub(ctx)?
            .store()
            .claims_by_age(site.as_deref(), a.sites(), Utc::now())
            .await
            .map_err(HubApiError::from)?;
        rows.into_iter()
            .map(|r| {
                Ok(ClaimsByAge {
                    amount: money(r.amount, &r.currency)?,
                    site: r.site,
                    status: r.status,
                    age: r.age,
                    count: r.count,
                })
            })
            .collect()
    }

    /// The services of invoices issued in `[from, to)` by revenue, most first.
    async fn top_services(
        &self,
        ctx: &Context<'_>,
        from: String,
        to: String,
        site: Option<String>,
        #[graphql(default = 20)] limit: i32,
    ) -> Result<Vec<ServiceRevenue>> {
        let a = reporter(ctx)?;
        let site = a.site_filter(site)?;
        let limit = self::limit(limit, 500)?;
        let (from, to) = scope_range(&from, &to)?;
        let rows = hub(ctx)?
            .store()
            .top_services(
                &BillingScope {
                    from,
                    to,
                    site: site.as_deref(),
                    sites: a.sites(),
                },
                limit,
            )
            .await
            .map_err(HubApiError::from)?;
        rows.into_iter()
            .map(|r| {
                Ok(ServiceRevenue {
                    revenue: money(r.revenue, &r.currency)?,
                    service: r.service,
                    quantity: r.quantity,
                })
            })
            .collect()
    }

    /// A doctor's utilisation at each site (this admin sees) in `[from, to)` (at most
    /// 92 days): booked against available slot-hours.
    async fn doctor_utilisation(
        &self,
        ctx: &Context<'_>,
        doctor_id: ID,
        from: String,
        to: String,
    ) -> Result<Vec<SiteUtilisation>> {
        let a = reporter(ctx)?;
        let doctor = uuid("doctorId", &doctor_id)?;
        let (from, to) = super::range(instant("from", &from)?, instant("to", &to)?)?;
        let store = hub(ctx)?.store();
        let (schedules, leaves) = store
            .doctor_calendar(doctor)
            .await
            .map_err(HubApiError::from)?;
        let booked = store
            .doctor_appointments(doctor, from, to, a.sites(), 2000)
            .await
            .map_err(HubApiError::from)?;
        let mut sites: Vec<String> = schedules
            .iter()
            .map(|s| s.site.clone())
            .chain(booked.iter().map(|b| b.site.clone()))
            .filter(|s| a.sees_site(s))
            .collect();
        sites.sort();
        sites.dedup();
        let hours = |d: Duration| d.num_seconds() as f64 / 3600.0;
        Ok(sites
            .into_iter()
            .map(|site| {
                let site_leaves: Vec<_> =
                    leaves.iter().filter(|l| l.site == site).cloned().collect();
                let available = schedules
                    .iter()
                    .filter(|s| s.site == site)
                    .flat_map(|s| s.slots(&site_leaves, from, to))
                    .map(|s| hours(s.end - s.start))
                    .sum::<f64>();
                let booked_hours = booked
                    .iter()
                    .filter(|b| b.site == site && b.status.holds_time())
                    .map(|b| hours(b.end.min(to) - b.start.max(from)))
                    .sum::<f64>();
                SiteUtilisation {
                    utilisation: (available > 0.0).then(|| booked_hours / available),
                    available_hours: available,
                    booked_hours,
                    site,
                }
            })
            .collect())
    }
}
