//! Billing over GraphQL: invoices with their lines, totals, payments and status; the
//! price list; a patient's balance; the day-end cash report; insurance coverages and
//! claims; and the cashier's mutations.
//!
//! Access (`service::billing`): cashiers (RECEPTIONIST, ADMIN) read and write all;
//! a PATIENT reads their own invoices and balance; a DOCTOR reads none. A refused
//! invoice looks like a missing one; a refused list is `FORBIDDEN`. Money is a decimal
//! string in its currency (`"2495.16"`), never a float.

use super::read_audit::{self, audited};
use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::Duration;
use healsync_domain::billing::{
    Currency, InvoiceLine, InvoiceStatus, MAX_LINES, PaymentMethod, format_amount,
    format_rate_percent,
};
use healsync_domain::insurance::ClaimStatus;
use healsync_domain::{
    Claim, ClaimId, Coverage, CoverageId, Invoice, InvoiceId, PatientId, Payment, PriceItem,
};
use healsync_store::queries::billing::{self as q, InvoiceFilter, InvoiceRow, Tally};

use super::inputs::parse_id;
use super::loaders::{InvoicePayments, loader};
use super::types::{PatientObj, ts};
use super::{node, page, parse_instant, session};
use crate::service::billing::{
    self as service, Direction, LineInput, NewInvoice, PaymentInput, PriceInput, may_read,
    reads_billing,
};
use crate::service::insurance::{self, ClaimUpdate, CoverageInput};
use crate::{ApiError, Session};

/// The most payments (and refunds) an invoice lists; the day-end report's groups.
pub const MAX_PAYMENTS: usize = 100;
pub const MAX_TALLIES: usize = 100;
/// The longest period of one day-end report.
const MAX_REPORT_DAYS: i64 = 31;

gql_enum!(
    /// How a payment was made.
    GqlPaymentMethod = "PaymentMethod", PaymentMethod { Cash, Card, MobileMoney, Insurance });
gql_enum!(
    /// Where a claim stands with its payer.
    GqlClaimStatus = "ClaimStatus", ClaimStatus { Draft, Submitted, Accepted, Rejected, Paid, Withdrawn });
gql_enum!(
    /// Where an invoice stands: derived from its payments and void, never stored.
    GqlInvoiceStatus = "InvoiceStatus", InvoiceStatus { Issued, PartiallyPaid, Paid, Void });

/// An amount of money: a decimal string with the currency's decimals.
#[derive(SimpleObject)]
#[graphql(name = "Money")]
pub struct MoneyObj {
    /// `"2495.16"`; negative for a refund or a credit.
    pub amount: String,
    /// ISO 4217, like `KES`.
    pub currency: String,
}

fn money(minor: i64, currency: &Currency) -> MoneyObj {
    MoneyObj {
        amount: format_amount(minor, currency),
        currency: currency.to_string(),
    }
}

/// One line of an invoice, with what it adds up to.
pub struct InvoiceLineObj(InvoiceLine, Currency);

#[Object(name = "InvoiceLine")]
impl InvoiceLineObj {
    /// The price list's code, when the line names a service.
    async fn service_code(&self) -> Option<&str> {
        self.0.service_code.as_deref()
    }
    async fn description(&self) -> &str {
        &self.0.description
    }
    async fn quantity(&self) -> u32 {
        self.0.quantity
    }
    async fn unit_price(&self) -> MoneyObj {
        money(self.0.unit_price, &self.1)
    }
    /// Taken off the line before tax.
    async fn discount(&self) -> MoneyObj {
        money(self.0.discount, &self.1)
    }
    /// Percent, like `"16"`.
    async fn tax_rate(&self) -> String {
        format_rate_percent(self.0.tax_rate)
    }
    /// Quantity × unit price, less the discount.
    async fn net(&self) -> MoneyObj {
        money(self.0.net(), &self.1)
    }
    /// Rounded half-up to the currency's minor unit.
    async fn tax(&self) -> MoneyObj {
        money(self.0.tax(), &self.1)
    }
    async fn total(&self) -> MoneyObj {
        money(self.0.total(), &self.1)
    }
}

/// A payment taken on an invoice, or a refund (a negative amount).
pub struct PaymentObj(pub Payment);

/// How a `Payment` resolves its fields; each output of [`PaymentObj`] is noted as a read
/// first (`read_audit`).
pub struct PaymentView(pub Payment);

audited!(PaymentObj => PaymentView, |r| ("payment", r.id.0, Some(r.patient_id)));

#[Object(name = "Payment")]
impl PaymentView {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn invoice_id(&self) -> ID {
        ID(self.0.invoice_id.to_string())
    }
    async fn amount(&self) -> MoneyObj {
        money(self.0.amount, &self.0.currency)
    }
    /// Whether money went back to the patient.
    async fn refund(&self) -> bool {
        self.0.amount < 0
    }
    async fn method(&self) -> GqlPaymentMethod {
        self.0.method.into()
    }
    /// A card slip, a mobile-money transaction id, a claim number.
    async fn reference(&self) -> Option<&str> {
        self.0.reference.as_deref()
    }
    /// The cashier's account.
    async fn received_by(&self) -> &str {
        &self.0.received_by
    }
    async fn received_at(&self) -> String {
        ts(self.0.received_at)
    }
    /// The site that took it.
    async fn site(&self) -> &str {
        &self.0.site
    }
}

/// Why and by whom an invoice was voided.
#[derive(SimpleObject)]
#[graphql(name = "InvoiceVoid")]
pub struct InvoiceVoidObj {
    pub reason: String,
    pub voided_by: String,
    pub voided_at: String,
}

/// An invoice the session may read.
pub struct InvoiceObj(pub InvoiceRow);

/// How a `Invoice` resolves its fields; each output of [`InvoiceObj`] is noted as a read
/// first (`read_audit`).
pub struct InvoiceView(pub InvoiceRow);

audited!(InvoiceObj => InvoiceView, |r| ("invoice", r.invoice.id.0, Some(r.invoice.patient_id)));

impl InvoiceView {
    fn inv(&self) -> &Invoice {
        &self.0.invoice
    }
    fn money(&self, minor: i64) -> MoneyObj {
        money(minor, &self.inv().currency)
    }
}

#[Object(name = "Invoice")]
impl InvoiceView {
    async fn id(&self) -> ID {
        ID(self.inv().id.to_string())
    }
    /// `NBO-INV-000123`: unique, minted by the issuing site.
    async fn number(&self) -> &str {
        &self.inv().number
    }
    async fn patient_id(&self) -> ID {
        ID(self.inv().patient_id.to_string())
    }
    /// The patient billed (their fields follow the patient's own access rules).
    async fn patient(&self, ctx: &Context<'_>) -> Result<Option<PatientObj>> {
        Ok(loader(ctx)?
            .load_one(self.inv().patient_id)
            .await?
            .map(PatientObj))
    }
    /// The site that issued it.
    async fn site(&self) -> &str {
        &self.inv().site
    }
    async fn currency(&self) -> &str {
        self.inv().currency.as_str()
    }
    async fn status(&self) -> GqlInvoiceStatus {
        self.0.status().into()
    }
    async fn lines(&self) -> Vec<InvoiceLineObj> {
        let c = &self.inv().currency;
        self.inv()
            .lines
            .iter()
            .take(MAX_LINES)
            .map(|l| InvoiceLineObj(l.clone(), c.clone()))
            .collect()
    }
    /// Quantity × unit price over all lines.
    async fn gross(&self) -> MoneyObj {
        self.money(self.inv().totals().gross)
    }
    async fn discount(&self) -> MoneyObj {
        self.money(self.inv().totals().discount)
    }
    async fn tax(&self) -> MoneyObj {
        self.money(self.inv().totals().tax)
    }
    /// What the invoice bills: the sum of its lines' totals.
    async fn total(&self) -> MoneyObj {
        self.money(self.inv().totals().total)
    }
    /// Payments less refunds.
    async fn paid(&self) -> MoneyObj {
        self.money(self.0.paid)
    }
    /// What is still owed (negative: a credit owed back to the patient).
    async fn outstanding(&self) -> MoneyObj {
        self.money(self.0.outstanding())
    }
    /// The completed appointment it bills, if any.
    async fn appointment_id(&self) -> Option<ID> {
        self.inv().appointment_id.map(|a| ID(a.to_string()))
    }
    async fn notes(&self) -> Option<&str> {
        self.inv().notes.as_deref()
    }
    /// The cashier's account.
    async fn issued_by(&self) -> &str {
        &self.inv().issued_by
    }
    async fn issued_at(&self) -> String {
        ts(self.inv().issued_at)
    }
    /// Payments and refunds, oldest first.
    async fn payments(&self, ctx: &Context<'_>) -> Result<Vec<PaymentObj>> {
        let list = loader(ctx)?
            .load_one(InvoicePayments(self.inv().id))
            .await?
            .unwrap_or_default();
        Ok(list
            .into_iter()
            .take(MAX_PAYMENTS)
            .map(PaymentObj)
            .collect())
    }
    /// Set when the invoice was voided.
    async fn void(&self) -> Option<InvoiceVoidObj> {
        self.0.void.as_ref().map(|v| InvoiceVoidObj {
            reason: v.reason.clone(),
            voided_by: v.voided_by.clone(),
            voided_at: ts(v.voided_at),
        })
    }
}

/// A service of the site's price list.
pub struct PriceItemObj(pub PriceItem);

#[Object(name = "PriceItem")]
impl PriceItemObj {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn code(&self) -> &str {
        &self.0.code
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn unit_price(&self) -> MoneyObj {
        money(self.0.unit_price, &self.0.currency)
    }
    /// Percent, like `"16"`.
    async fn tax_rate(&self) -> String {
        format_rate_percent(self.0.tax_rate)
    }
    /// Whether new invoices may name it.
    async fn active(&self) -> bool {
        self.0.active
    }
    async fn site(&self) -> &str {
        &self.0.site
    }
    async fn updated_at(&self) -> String {
        ts(self.0.updated_at)
    }
}

/// A patient's cover with a payer.
pub struct CoverageObj(pub Coverage);

/// How a `Coverage` resolves its fields; each output of [`CoverageObj`] is noted as a read
/// first (`read_audit`).
pub struct CoverageView(pub Coverage);

audited!(CoverageObj => CoverageView, |r| ("coverage", r.id.0, Some(r.patient_id)));

#[Object(name = "Coverage")]
impl CoverageView {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn patient_id(&self) -> ID {
        ID(self.0.patient_id.to_string())
    }
    /// The insurer or scheme.
    async fn payer(&self) -> &str {
        &self.0.payer
    }
    async fn member_id(&self) -> &str {
        &self.0.member_id
    }
    async fn plan(&self) -> Option<&str> {
        self.0.plan.as_deref()
    }
    /// `YYYY-MM-DD`.
    async fn valid_from(&self) -> String {
        self.0.valid_from.to_string()
    }
    /// The last day covered; none when open-ended.
    async fn valid_to(&self) -> Option<String> {
        self.0.valid_to.map(|d| d.to_string())
    }
    async fn active(&self) -> bool {
        self.0.active
    }
    /// Whether it is in force today.
    async fn in_force(&self) -> bool {
        self.0.covers(chrono::Utc::now().date_naive())
    }
    /// The site that recorded it (and alone changes it).
    async fn site(&self) -> &str {
        &self.0.site
    }
}

/// A claim on a payer for an invoice.
pub struct ClaimObj(pub Claim);

/// How a `Claim` resolves its fields; each output of [`ClaimObj`] is noted as a read
/// first (`read_audit`).
pub struct ClaimView(pub Claim);

audited!(ClaimObj => ClaimView, |r| ("claim", r.id.0, Some(r.patient_id)));

#[Object(name = "Claim")]
impl ClaimView {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// `NBO-CLM-000123`.
    async fn number(&self) -> &str {
        &self.0.number
    }
    async fn invoice_id(&self) -> ID {
        ID(self.0.invoice_id.to_string())
    }
    async fn invoice_number(&self) -> &str {
        &self.0.invoice_number
    }
    async fn patient_id(&self) -> ID {
        ID(self.0.patient_id.to_string())
    }
    async fn coverage_id(&self) -> ID {
        ID(self.0.coverage_id.to_string())
    }
    async fn payer(&self) -> &str {
        &self.0.payer
    }
    async fn member_id(&self) -> &str {
        &self.0.member_id
    }
    async fn amount(&self) -> MoneyObj {
        money(self.0.amount, &self.0.currency)
    }
    async fn status(&self) -> GqlClaimStatus {
        self.0.status.into()
    }
    async fn payer_reference(&self) -> Option<&str> {
        self.0.payer_reference.as_deref()
    }
    /// What the payer said.
    async fn response(&self) -> Option<&str> {
        self.0.response.as_deref()
    }
    /// What the payer paid, once PAID.
    async fn paid(&self) -> Option<MoneyObj> {
        self.0.paid_amount.map(|p| money(p, &self.0.currency))
    }
    /// Days since the claim was made.
    async fn age_days(&self) -> i64 {
        (chrono::Utc::now() - self.0.created_at).num_days()
    }
    async fn site(&self) -> &str {
        &self.0.site
    }
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }
    async fn created_at(&self) -> String {
        ts(self.0.created_at)
    }
    async fn updated_at(&self) -> String {
        ts(self.0.updated_at)
    }
}

/// One group of the day-end report.
#[derive(SimpleObject)]
#[graphql(name = "ReportLine")]
pub struct ReportLineObj {
    /// The payment method or the cashier's account; empty for a whole.
    pub key: String,
    pub count: i64,
    pub amount: MoneyObj,
}

/// A site's takings over a period.
#[derive(SimpleObject)]
#[graphql(name = "DayEndReport")]
pub struct DayEndObj {
    pub site: String,
    pub from: String,
    pub to: String,
    /// Payments less refunds, by method and currency.
    pub by_method: Vec<ReportLineObj>,
    /// Payments less refunds, by cashier and currency.
    pub by_cashier: Vec<ReportLineObj>,
    /// Refunds alone (negative amounts).
    pub refunds: Vec<ReportLineObj>,
    /// Invoices issued, by currency.
    pub invoiced: Vec<ReportLineObj>,
    /// Invoices voided, by currency.
    pub voided: Vec<ReportLineObj>,
}

fn report_lines(tallies: Vec<Tally>) -> Vec<ReportLineObj> {
    tallies
        .into_iter()
        .take(MAX_TALLIES)
        .map(|t| ReportLineObj {
            key: t.key,
            count: t.count,
            amount: money(t.amount, &t.currency),
        })
        .collect()
}

/// Whose billing a list may hold: `Some(None)` everyone's (a cashier without a
/// patient filter), `Some(Some(p))` one patient's, `None` nothing (a patient asking
/// for another's). `FORBIDDEN` for the roles that read no billing.
fn list_scope(s: &Session, patient: Option<&ID>) -> Result<Option<Option<PatientId>>, ApiError> {
    if !reads_billing(s) {
        return Err(ApiError::forbidden());
    }
    let patient: Option<PatientId> = patient.map(parse_id).transpose()?;
    if s.role != healsync_domain::Role::Patient {
        return Ok(Some(patient));
    }
    Ok(match (s.patient_id, patient) {
        (Some(own), None) => Some(Some(own)),
        (Some(own), Some(p)) if own == p => Some(Some(p)),
        _ => None,
    })
}

/// A status filter as the store takes it, without repeats.
fn statuses<G: Into<D>, D: PartialEq>(given: Option<Vec<G>>) -> Vec<D> {
    let mut out: Vec<D> = Vec::new();
    for s in given.unwrap_or_default() {
        let d = s.into();
        if !out.contains(&d) {
            out.push(d);
        }
    }
    out
}

#[derive(Default)]
pub struct BillingQuery;

#[Object]
impl BillingQuery {
    /// Invoices, newest first: a cashier's of every patient, a patient's own. Filter by
    /// patient, status and the period issued (`from` inclusive, `to` exclusive).
    #[allow(clippy::too_many_arguments)]
    async fn invoices(
        &self,
        ctx: &Context<'_>,
        patient_id: Option<ID>,
        status: Option<Vec<GqlInvoiceStatus>>,
        from: Option<String>,
        to: Option<String>,
        #[graphql(default = 50)] limit: i32,
        #[graphql(default = 0)] offset: i32,
    ) -> Result<Vec<InvoiceObj>> {
        let (limit, offset) = page(limit, offset)?;
        let Some(patient) = list_scope(session(ctx)?, patient_id.as_ref())? else {
            return Ok(vec![]);
        };
        let statuses: Vec<InvoiceStatus> = statuses(status);
        let filter = InvoiceFilter {
            patient,
            site: None,
            statuses,
            from: from
                .as_deref()
                .map(|t| parse_instant("from", t))
                .transpose()?,
            to: to.as_deref().map(|t| parse_instant("to", t)).transpose()?,
            limit,
            offset,
        };
        let rows = node(ctx)?.read(move |c| q::invoices(c, &filter)).await?;
        Ok(rows.into_iter().map(InvoiceObj).collect())
    }

    /// One invoice: a cashier's, or the patient's own. A refused one looks missing.
    async fn invoice(&self, ctx: &Context<'_>, id: ID) -> Result<InvoiceObj> {
        let s = session(ctx)?;
        let id: InvoiceId = parse_id(&id).map_err(ApiError::from)?;
        let row = node(ctx)?
            .read(move |c| q::invoice(c, id))
            .await?
            .filter(|r| may_read(s, r.invoice.patient_id))
            .ok_or_else(|| ApiError::not_found("invoice"))?;
        Ok(InvoiceObj(row))
    }

    /// What a patient owes, per currency (negative: a credit). A cashier's question, or
    /// the patient's own.
    async fn patient_balance(&self, ctx: &Context<'_>, patient_id: ID) -> Result<Vec<MoneyObj>> {
        let s = session(ctx)?;
        let patient: PatientId = parse_id(&patient_id).map_err(ApiError::from)?;
        if !may_read(s, patient) {
            read_audit::refused(ctx, "patientBalance", "invoice", patient);
            return Err(ApiError::not_found("patient").into());
        }
        let rows = node(ctx)?
            .read(move |c| q::patient_balance(c, patient))
            .await?;
        read_audit::shown(
            ctx,
            "patientBalance",
            "patient_balance",
            patient.0,
            Some(patient),
        );
        Ok(rows.iter().map(|(c, owed)| money(*owed, c)).collect())
    }

    /// This site's takings between two instants (at most 31 days): a cashier's.
    async fn day_end_report(
        &self,
        ctx: &Context<'_>,
        from: String,
        to: String,
    ) -> Result<DayEndObj> {
        session(ctx)?.require(service::CASHIERS)?;
        let from = parse_instant("from", &from)?;
        let to = parse_instant("to", &to)?;
        if to <= from || to - from > Duration::days(MAX_REPORT_DAYS) {
            return Err(ApiError::BadInput(format!(
                "to must be after from, at most {MAX_REPORT_DAYS} days"
            ))
            .into());
        }
        let node = node(ctx)?;
        let site = node.store().identity().site.to_string();
        let s2 = site.clone();
        let r = node.read(move |c| q::day_end(c, &s2, from, to)).await?;
        Ok(DayEndObj {
            site,
            from: ts(from),
            to: ts(to),
            by_method: report_lines(r.by_method),
            by_cashier: report_lines(r.by_cashier),
            refunds: report_lines(r.refunds),
            invoiced: report_lines(r.invoiced),
            voided: report_lines(r.voided),
        })
    }

    /// A patient's coverages: a cashier's question, or the patient's own.
    async fn coverages(&self, ctx: &Context<'_>, patient_id: ID) -> Result<Vec<CoverageObj>> {
        let s = session(ctx)?;
        let patient: PatientId = parse_id(&patient_id).map_err(ApiError::from)?;
        if !may_read(s, patient) {
            read_audit::refused(ctx, "coverages", "coverage", patient);
            return Err(ApiError::not_found("patient").into());
        }
        let list = node(ctx)?
            .read(move |c| q::coverages_of(c, patient))
            .await?;
        Ok(list.into_iter().map(CoverageObj).collect())
    }

    /// Claims, newest first: a cashier's of every patient, a patient's own.
    async fn claims(
        &self,
        ctx: &Context<'_>,
        status: Option<Vec<GqlClaimStatus>>,
        patient_id: Option<ID>,
        invoice_id: Option<ID>,
        #[graphql(default = 50)] limit: i32,
        #[graphql(default = 0)] offset: i32,
    ) -> Result<Vec<ClaimObj>> {
        let (limit, offset) = page(limit, offset)?;
        let Some(patient) = list_scope(session(ctx)?, patient_id.as_ref())? else {
            return Ok(vec![]);
        };
        let statuses: Vec<ClaimStatus> = statuses(status);
        let filter = q::ClaimFilter {
            patient,
            invoice: invoice_id
                .as_ref()
                .map(parse_id)
                .transpose()
                .map_err(ApiError::from)?,
            statuses,
            limit,
            offset,
        };
        let rows = node(ctx)?.read(move |c| q::claims(c, &filter)).await?;
        Ok(rows.into_iter().map(ClaimObj).collect())
    }

    /// One claim: a cashier's, or the patient's own. A refused one looks missing.
    async fn claim(&self, ctx: &Context<'_>, id: ID) -> Result<ClaimObj> {
        let s = session(ctx)?;
        let id: ClaimId = parse_id(&id).map_err(ApiError::from)?;
        let claim = node(ctx)?
            .read(move |c| q::claim(c, id))
            .await?
            .filter(|c| may_read(s, c.patient_id))
            .ok_or_else(|| ApiError::not_found("claim"))?;
        Ok(ClaimObj(claim))
    }

    /// This site's price list, by code (the services no longer offered with
    /// `includeInactive`).
    async fn price_list(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = false)] include_inactive: bool,
    ) -> Result<Vec<PriceItemObj>> {
        session(ctx)?;
        let node = node(ctx)?;
        let site = node.store().identity().site.to_string();
        let list = node
            .read(move |c| q::price_items(c, &site, !include_inactive))
            .await?;
        Ok(list.into_iter().map(PriceItemObj).collect())
    }
}

/// A service of the price list, as an ADMIN sets it.
#[derive(InputObject)]
pub struct PriceItemInput {
    /// `CONSULT`, `LAB-FBC`: a new code adds a service, a known one changes it.
    pub code: String,
    pub name: String,
    /// A decimal amount in `currency`, like `"1500"` or `"350.50"`.
    pub unit_price: String,
    pub currency: String,
    /// Percent, like `"16"` or `"0"`.
    #[graphql(default_with = "\"0\".to_string()")]
    pub tax_rate: String,
    #[graphql(default = true)]
    pub active: bool,
}

/// One line of a new invoice: a `serviceCode` of the price list, or a `description`
/// with a `unitPrice` (and a `taxRate`, 0 when left out).
#[derive(InputObject)]
pub struct InvoiceLineInput {
    pub service_code: Option<String>,
    pub description: Option<String>,
    #[graphql(default = 1)]
    pub quantity: i32,
    pub unit_price: Option<String>,
    /// An amount taken off the line before tax.
    pub discount: Option<String>,
    pub tax_rate: Option<String>,
}

/// A new invoice: the completed appointment it bills, or the patient.
#[derive(InputObject)]
pub struct InvoiceInput {
    pub appointment_id: Option<ID>,
    pub patient_id: Option<ID>,
    /// ISO 4217, like `KES`.
    pub currency: String,
    pub lines: Vec<InvoiceLineInput>,
    pub notes: Option<String>,
}

/// Money taken (or given back) for an invoice.
#[derive(InputObject)]
#[graphql(name = "PaymentInput")]
pub struct PaymentInputObj {
    pub invoice_id: ID,
    /// A positive decimal amount in the invoice's currency.
    pub amount: String,
    pub method: GqlPaymentMethod,
    /// A card slip, a mobile-money transaction id, a claim number.
    pub reference: Option<String>,
}

impl PaymentInputObj {
    fn parse(self) -> Result<PaymentInput, ApiError> {
        Ok(PaymentInput {
            invoice_id: parse_id(&self.invoice_id)?,
            amount: self.amount,
            method: self.method.into(),
            reference: self.reference,
        })
    }
}

/// What a payment did, and the invoice as it now stands.
#[derive(SimpleObject)]
#[graphql(name = "PaymentReceipt")]
pub struct PaymentReceiptObj {
    pub payment: PaymentObj,
    pub invoice: InvoiceObj,
}

/// A patient's coverage; `id` changes one this site recorded.
#[derive(InputObject)]
#[graphql(name = "CoverageInput")]
pub struct CoverageInputObj {
    pub id: Option<ID>,
    pub patient_id: ID,
    pub payer: String,
    pub member_id: String,
    pub plan: Option<String>,
    /// `YYYY-MM-DD`.
    pub valid_from: String,
    /// The last day covered; open-ended when left out.
    pub valid_to: Option<String>,
    #[graphql(default = true)]
    pub active: bool,
}

/// A payer's answer to a claim, or the desk submitting it.
#[derive(InputObject)]
#[graphql(name = "ClaimUpdateInput")]
pub struct ClaimUpdateObj {
    pub status: GqlClaimStatus,
    pub payer_reference: Option<String>,
    pub response: Option<String>,
    /// What the payer paid (with PAID; the claim's amount when left out).
    pub paid_amount: Option<String>,
}

#[derive(Default)]
pub struct BillingMutation;

#[Object]
impl BillingMutation {
    /// Adds or changes a service of this site's price list (ADMIN).
    async fn set_price_item(
        &self,
        ctx: &Context<'_>,
        input: PriceItemInput,
    ) -> Result<PriceItemObj> {
        let s = session(ctx)?;
        let item = service::set_price_item(
            node(ctx)?,
            s,
            PriceInput {
                code: input.code,
                name: input.name,
                unit_price: input.unit_price,
                currency: input.currency,
                tax_rate: input.tax_rate,
                active: input.active,
            },
        )
        .await?;
        Ok(PriceItemObj(item))
    }

    /// Issues an invoice (RECEPTIONIST, ADMIN): for a completed appointment of this
    /// site (one live invoice each), or for a patient. The patient is notified.
    async fn issue_invoice(&self, ctx: &Context<'_>, input: InvoiceInput) -> Result<InvoiceObj> {
        let s = session(ctx)?;
        if input.lines.len() > MAX_LINES {
            return Err(ApiError::BadInput(format!("1 to {MAX_LINES} lines")).into());
        }
        let parsed = NewInvoice {
            patient_id: input
                .patient_id
                .as_ref()
                .map(parse_id)
                .transpose()
                .map_err(ApiError::from)?,
            appointment_id: input
                .appointment_id
                .as_ref()
                .map(parse_id)
                .transpose()
                .map_err(ApiError::from)?,
            currency: input.currency,
            lines: input
                .lines
                .into_iter()
                .map(|l| LineInput {
                    service_code: l.service_code,
                    description: l.description,
                    quantity: l.quantity,
                    unit_price: l.unit_price,
                    discount: l.discount,
                    tax_rate: l.tax_rate,
                })
                .collect(),
            notes: input.notes,
        };
        Ok(InvoiceObj(
            service::issue_invoice(node(ctx)?, s, parsed).await?,
        ))
    }

    /// Takes a payment on an invoice (RECEPTIONIST, ADMIN). `CONFLICT` beyond what is
    /// owed or on a void invoice.
    async fn record_payment(
        &self,
        ctx: &Context<'_>,
        input: PaymentInputObj,
    ) -> Result<PaymentReceiptObj> {
        pay(ctx, input, Direction::Payment).await
    }

    /// Gives money back on an invoice (RECEPTIONIST, ADMIN): a payment with a negative
    /// amount. `CONFLICT` beyond what was paid.
    async fn refund_payment(
        &self,
        ctx: &Context<'_>,
        input: PaymentInputObj,
    ) -> Result<PaymentReceiptObj> {
        pay(ctx, input, Direction::Refund).await
    }

    /// Records a patient's insurance coverage, or changes one this site recorded
    /// (RECEPTIONIST, ADMIN).
    async fn set_coverage(
        &self,
        ctx: &Context<'_>,
        input: CoverageInputObj,
    ) -> Result<CoverageObj> {
        let s = session(ctx)?;
        let parsed = CoverageInput {
            id: input
                .id
                .as_ref()
                .map(parse_id::<CoverageId>)
                .transpose()
                .map_err(ApiError::from)?,
            patient_id: parse_id(&input.patient_id).map_err(ApiError::from)?,
            payer: input.payer,
            member_id: input.member_id,
            plan: input.plan,
            valid_from: input.valid_from,
            valid_to: input.valid_to,
            active: input.active,
        };
        Ok(CoverageObj(
            insurance::set_coverage(node(ctx)?, s, parsed).await?,
        ))
    }

    /// Prepares a DRAFT claim on an invoice of this site under a coverage in force on
    /// the invoice's day, for `amount` or all the invoice still owes (RECEPTIONIST,
    /// ADMIN). One open claim per invoice.
    async fn create_claim(
        &self,
        ctx: &Context<'_>,
        invoice_id: ID,
        coverage_id: ID,
        amount: Option<String>,
    ) -> Result<ClaimObj> {
        let s = session(ctx)?;
        let invoice: InvoiceId = parse_id(&invoice_id).map_err(ApiError::from)?;
        let coverage: CoverageId = parse_id(&coverage_id).map_err(ApiError::from)?;
        Ok(ClaimObj(
            insurance::create_claim(node(ctx)?, s, invoice, coverage, amount).await?,
        ))
    }

    /// Moves a claim along DRAFT → SUBMITTED → ACCEPTED/REJECTED → PAID (a rejected
    /// claim goes back to DRAFT); PAID takes the payer's money as an INSURANCE payment
    /// on the invoice (RECEPTIONIST, ADMIN). `CONFLICT` for a step the lifecycle does
    /// not allow.
    async fn update_claim(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: ClaimUpdateObj,
    ) -> Result<ClaimObj> {
        let s = session(ctx)?;
        let id: ClaimId = parse_id(&id).map_err(ApiError::from)?;
        let update = ClaimUpdate {
            status: input.status.into(),
            payer_reference: input.payer_reference,
            response: input.response,
            paid_amount: input.paid_amount,
        };
        Ok(ClaimObj(
            insurance::update_claim(node(ctx)?, s, id, update).await?,
        ))
    }

    /// Voids an invoice with the reason (RECEPTIONIST, ADMIN): it stays on record and
    /// owes nothing. `CONFLICT` while anything is paid on it (refund first).
    async fn void_invoice(&self, ctx: &Context<'_>, id: ID, reason: String) -> Result<InvoiceObj> {
        let s = session(ctx)?;
        let id: InvoiceId = parse_id(&id).map_err(ApiError::from)?;
        Ok(InvoiceObj(
            service::void_invoice(node(ctx)?, s, id, reason).await?,
        ))
    }
}

async fn pay(
    ctx: &Context<'_>,
    input: PaymentInputObj,
    direction: Direction,
) -> Result<PaymentReceiptObj> {
    let s = session(ctx)?;
    let (payment, invoice) =
        service::record_payment(node(ctx)?, s, input.parse()?, direction).await?;
    Ok(PaymentReceiptObj {
        payment: PaymentObj(payment),
        invoice: InvoiceObj(invoice),
    })
}
