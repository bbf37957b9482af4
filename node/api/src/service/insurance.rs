//! Insurance at the front desk: a patient's coverages, and claims on invoices that
//! walk their lifecycle as the payer answers.
//!
//! The cashiers (`billing::CASHIERS`) record coverages and make and update claims; a
//! PATIENT reads their own. A claim belongs to the site that issued its invoice, and
//! a coverage to the site that recorded it: only that site changes them. When a payer
//! pays, the money is a payment of method `INSURANCE` on the invoice, written in the
//! same transaction as the claim's new status.

use chrono::NaiveDate;
use healsync_domain::billing::{PaymentMethod, format_amount, parse_amount};
use healsync_domain::insurance::{self, ClaimStatus, MAX_FIELD, MAX_RESPONSE};
use healsync_domain::patient::parse_opt_text;
use healsync_domain::{Claim, ClaimId, Coverage, CoverageId, DomainError, InvoiceId, PatientId};
use healsync_store::queries::billing as q;

use super::billing::{CASHIERS, load_invoice, take_payment};
use super::{load_patient, new_id};
use crate::{ApiError, Node, Session};

/// A coverage as the desk enters it; `id` changes an existing one.
#[derive(Debug, Clone)]
pub struct CoverageInput {
    pub id: Option<CoverageId>,
    pub patient_id: PatientId,
    pub payer: String,
    pub member_id: String,
    pub plan: Option<String>,
    pub valid_from: String,
    pub valid_to: Option<String>,
    pub active: bool,
}

fn date(field: &'static str, s: &str) -> Result<NaiveDate, DomainError> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| DomainError::invalid(field, "a date like 2026-01-31"))
}

/// Records a patient's coverage, or changes one this site recorded.
pub async fn set_coverage(
    node: &Node,
    session: &Session,
    input: CoverageInput,
) -> Result<Coverage, ApiError> {
    session.require(CASHIERS)?;
    let valid_from = date("validFrom", &input.valid_from)?;
    let valid_to = input
        .valid_to
        .as_deref()
        .map(|d| date("validTo", d))
        .transpose()?;
    let (payer, member_id) =
        insurance::parse_coverage_fields(&input.payer, &input.member_id, valid_from, valid_to)?;
    let plan = parse_opt_text("plan", input.plan.as_deref(), MAX_FIELD)?;
    node.write(session.acting("set_coverage"), move |tx| {
        load_patient(tx, input.patient_id)?;
        let id = match input.id {
            None => new_id(),
            Some(id) => {
                let old = q::coverage(tx.conn(), id)?
                    .filter(|c| c.patient_id == input.patient_id)
                    .ok_or_else(|| ApiError::not_found("coverage"))?;
                if old.site != tx.site().to_string() {
                    return Err(ApiError::Conflict(format!(
                        "the coverage was recorded at {}: that site changes it",
                        old.site
                    )));
                }
                id
            }
        };
        let coverage = Coverage {
            id,
            patient_id: input.patient_id,
            site: tx.site().to_string(),
            payer,
            member_id,
            plan,
            valid_from,
            valid_to,
            active: input.active,
            updated_at: tx.now(),
        };
        tx.put(&coverage)?;
        Ok(coverage)
    })
    .await
}

/// Makes a DRAFT claim on an invoice of this site under one of the patient's
/// coverages in force on the invoice's day, for `amount` (what the invoice still owes
/// when left out). One open claim per invoice.
pub async fn create_claim(
    node: &Node,
    session: &Session,
    invoice: InvoiceId,
    coverage: CoverageId,
    amount: Option<String>,
) -> Result<Claim, ApiError> {
    session.require(CASHIERS)?;
    let created_by = session.username.clone();
    node.write(session.acting("create_claim"), move |tx| {
        let row = load_invoice(tx, invoice)?;
        let inv = &row.invoice;
        if inv.site != tx.site().to_string() {
            return Err(ApiError::BadInput(format!(
                "the invoice is {}'s: that site claims it",
                inv.site
            )));
        }
        let cover = q::coverage(tx.conn(), coverage)?
            .filter(|c| c.patient_id == inv.patient_id)
            .ok_or_else(|| ApiError::not_found("coverage"))?;
        if !cover.covers(inv.issued_at.date_naive()) {
            return Err(ApiError::Conflict(format!(
                "the {} coverage is not in force on {}",
                cover.payer,
                inv.issued_at.date_naive()
            )));
        }
        let amount = match amount.as_deref() {
            Some(a) => parse_amount("amount", a, &inv.currency)?,
            None => row.outstanding(),
        };
        insurance::check_claim_amount(amount, row.outstanding(), row.void.is_some())?;
        if let Some(open) = q::open_claim_of_invoice(tx.conn(), inv.id)? {
            return Err(ApiError::Conflict(format!(
                "the invoice is already claimed by {open}"
            )));
        }
        let seq = tx.next_counter("claim")?;
        let now = tx.now();
        let claim = Claim {
            id: new_id(),
            number: insurance::claim_number(&tx.site().to_string(), seq),
            invoice_id: inv.id,
            invoice_number: inv.number.clone(),
            patient_id: inv.patient_id,
            coverage_id: cover.id,
            payer: cover.payer,
            member_id: cover.member_id,
            site: tx.site().to_string(),
            amount,
            currency: inv.currency.clone(),
            status: ClaimStatus::Draft,
            payer_reference: None,
            response: None,
            paid_amount: None,
            created_by,
            created_at: now,
            updated_at: now,
        };
        tx.put(&claim)?;
        Ok(claim)
    })
    .await
}

/// A payer's answer, or the desk submitting the claim.
#[derive(Debug, Clone)]
pub struct ClaimUpdate {
    pub status: ClaimStatus,
    pub payer_reference: Option<String>,
    pub response: Option<String>,
    /// What the payer paid (PAID only; the claim's amount when left out).
    pub paid_amount: Option<String>,
}

/// Moves a claim of this site along its lifecycle; on PAID, takes the payer's money
/// as an `INSURANCE` payment on the invoice in the same transaction.
pub async fn update_claim(
    node: &Node,
    session: &Session,
    id: ClaimId,
    update: ClaimUpdate,
) -> Result<Claim, ApiError> {
    session.require(CASHIERS)?;
    let payer_reference = parse_opt_text(
        "payerReference",
        update.payer_reference.as_deref(),
        MAX_FIELD,
    )?;
    let response = parse_opt_text("response", update.response.as_deref(), MAX_RESPONSE)?;
    if update.paid_amount.is_some() && update.status != ClaimStatus::Paid {
        return Err(ApiError::BadInput("paidAmount goes with PAID".into()));
    }
    let received_by = session.username.clone();
    node.write(session.acting("update_claim"), move |tx| {
        let mut claim = q::claim(tx.conn(), id)?.ok_or_else(|| ApiError::not_found("claim"))?;
        if claim.site != tx.site().to_string() {
            return Err(ApiError::Conflict(format!(
                "the claim is {}'s: that site updates it",
                claim.site
            )));
        }
        claim.status.check_transition(update.status)?;
        if update.status == ClaimStatus::Draft && load_invoice(tx, claim.invoice_id)?.void.is_some()
        {
            return Err(healsync_domain::DomainError::Refused(
                "the invoice is void: it cannot be claimed again".into(),
            )
            .into());
        }
        if update.status == ClaimStatus::Draft
            && let Some(open) = q::open_claim_of_invoice(tx.conn(), claim.invoice_id)?
        {
            return Err(ApiError::Conflict(format!(
                "the invoice is already claimed by {open}"
            )));
        }
        if update.status == ClaimStatus::Paid {
            let paid = match update.paid_amount.as_deref() {
                Some(a) => parse_amount("paidAmount", a, &claim.currency)?,
                None => claim.amount,
            };
            insurance::check_paid_amount(paid, claim.amount)?;
            let row = load_invoice(tx, claim.invoice_id)?;
            take_payment(
                tx,
                row,
                paid,
                PaymentMethod::Insurance,
                Some(format!("{} {}", claim.payer, claim.number)),
                received_by,
            )?;
            claim.paid_amount = Some(paid);
            if claim.response.is_none() && response.is_none() && paid < claim.amount {
                claim.response = Some(format!(
                    "paid {} {} of {}",
                    claim.currency,
                    format_amount(paid, &claim.currency),
                    format_amount(claim.amount, &claim.currency)
                ));
            }
        }
        claim.status = update.status;
        if payer_reference.is_some() {
            claim.payer_reference = payer_reference;
        }
        if response.is_some() {
            claim.response = response;
        }
        claim.updated_at = tx.now();
        tx.put(&claim)?;
        Ok(claim)
    })
    .await
}
