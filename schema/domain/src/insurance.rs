//! Insurance: a patient's coverage with a payer, and claims that ask a payer to pay
//! (part of) an invoice.
//!
//! A claim is prepared at the clinic, offline if need be, and walks a short lifecycle
//! as the payer answers ([`ClaimStatus::check_transition`]). When the payer pays, the
//! money is a [`crate::Payment`] of method `INSURANCE` on the invoice, so the invoice's
//! balance stays derived from payments alone.

use chrono::{DateTime, NaiveDate, Utc};

use crate::billing::{Currency, text_enum};
use crate::patient::parse_text;
use crate::{ClaimId, CoverageId, DomainError, InvoiceId, PatientId};

/// The longest payer name, member id, plan or payer reference.
pub const MAX_FIELD: usize = 100;
/// The longest payer response kept with a claim.
pub const MAX_RESPONSE: usize = 2_000;

/// A patient's cover with one payer (an insurer, an employer scheme).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    pub id: CoverageId,
    pub patient_id: PatientId,
    /// The site that recorded it (and alone edits it).
    pub site: String,
    pub payer: String,
    pub member_id: String,
    pub plan: Option<String>,
    pub valid_from: NaiveDate,
    /// The last day covered; open-ended when `None`.
    pub valid_to: Option<NaiveDate>,
    pub active: bool,
    pub updated_at: DateTime<Utc>,
}

impl Coverage {
    /// Whether the cover is in force on `day`.
    pub fn covers(&self, day: NaiveDate) -> bool {
        self.active && self.valid_from <= day && self.valid_to.is_none_or(|to| day <= to)
    }
}

/// Checks a coverage's texts and dates, trimmed.
pub fn parse_coverage_fields(
    payer: &str,
    member_id: &str,
    valid_from: NaiveDate,
    valid_to: Option<NaiveDate>,
) -> Result<(String, String), DomainError> {
    let payer = parse_text("payer", payer, MAX_FIELD)?;
    let member_id = parse_text("memberId", member_id, MAX_FIELD)?;
    if valid_to.is_some_and(|to| to < valid_from) {
        return Err(DomainError::invalid(
            "validTo",
            "must not be before validFrom",
        ));
    }
    Ok((payer, member_id))
}

text_enum!(
/// Where a claim stands with its payer.
ClaimStatus, "status" {
    Draft => "DRAFT", Submitted => "SUBMITTED", Accepted => "ACCEPTED",
    Rejected => "REJECTED", Paid => "PAID", Withdrawn => "WITHDRAWN"
});

impl ClaimStatus {
    /// Whether the claim still asks for money (at most one per invoice may).
    pub fn is_open(self) -> bool {
        matches!(
            self,
            ClaimStatus::Draft | ClaimStatus::Submitted | ClaimStatus::Accepted
        )
    }

    /// What voiding its invoice makes of the claim: an open claim is WITHDRAWN (it asks
    /// for money the patient no longer owes, so the payer must not be pressed for it);
    /// any other stays as it is.
    pub fn on_invoice_void(self) -> Option<ClaimStatus> {
        self.is_open().then_some(ClaimStatus::Withdrawn)
    }

    /// The lifecycle: DRAFT → SUBMITTED → ACCEPTED → PAID; a submitted claim may also be
    /// REJECTED or paid at once; a rejected one goes back to DRAFT to be corrected and
    /// resubmitted. PAID is final; so is WITHDRAWN, which only voiding the invoice
    /// reaches ([`ClaimStatus::on_invoice_void`]). [`DomainError::Refused`] otherwise.
    pub fn check_transition(self, to: ClaimStatus) -> Result<(), DomainError> {
        use ClaimStatus::*;
        let ok = matches!(
            (self, to),
            (Draft, Submitted)
                | (Submitted, Accepted)
                | (Submitted, Rejected)
                | (Submitted, Paid)
                | (Accepted, Paid)
                | (Accepted, Rejected)
                | (Rejected, Draft)
        );
        if ok {
            Ok(())
        } else {
            Err(DomainError::Refused(format!(
                "a claim cannot go from {} to {}",
                self.as_str(),
                to.as_str()
            )))
        }
    }
}

/// A claim on a payer for an invoice (or part of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub id: ClaimId,
    /// `SITE-CLM-000123`, minted by the site that prepared it.
    pub number: String,
    pub invoice_id: InvoiceId,
    /// The invoice's number, kept so a list of claims needs no invoice look-up.
    pub invoice_number: String,
    pub patient_id: PatientId,
    pub coverage_id: CoverageId,
    /// Copied from the coverage when the claim was made.
    pub payer: String,
    pub member_id: String,
    pub site: String,
    /// Minor units of `currency` (the invoice's).
    pub amount: i64,
    pub currency: Currency,
    pub status: ClaimStatus,
    /// The payer's own reference for the claim.
    pub payer_reference: Option<String>,
    /// What the payer said (a rejection's reason, say).
    pub response: Option<String>,
    /// What the payer paid, once PAID.
    pub paid_amount: Option<i64>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The claim number of the `seq`-th claim of `site`.
pub fn claim_number(site: &str, seq: u64) -> String {
    format!("{site}-CLM-{seq:06}")
}

/// Whether a claim of `amount` may be made on an invoice that still owes `outstanding`
/// (and is not void).
pub fn check_claim_amount(amount: i64, outstanding: i64, voided: bool) -> Result<(), DomainError> {
    if amount <= 0 {
        return Err(DomainError::invalid("amount", "must be more than zero"));
    }
    if voided {
        return Err(DomainError::Refused("the invoice is void".into()));
    }
    if amount > outstanding {
        return Err(DomainError::Refused(
            "the claim is for more than the invoice still owes".into(),
        ));
    }
    Ok(())
}

/// What a payer paid on a claim: more than zero, no more than claimed.
pub fn check_paid_amount(paid: i64, claimed: i64) -> Result<(), DomainError> {
    if paid <= 0 || paid > claimed {
        return Err(DomainError::invalid(
            "paidAmount",
            "more than zero and no more than the claim's amount",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::ClaimStatus::{self, *};
    use super::*;

    #[test]
    fn the_claim_lifecycle_allows_exactly_its_steps() {
        let allowed = [
            (Draft, Submitted),
            (Submitted, Accepted),
            (Submitted, Rejected),
            (Submitted, Paid),
            (Accepted, Paid),
            (Accepted, Rejected),
            (Rejected, Draft),
        ];
        for from in ClaimStatus::ALL {
            for to in ClaimStatus::ALL {
                let want = allowed.contains(&(*from, *to));
                assert_eq!(
                    from.check_transition(*to).is_ok(),
                    want,
                    "{from:?} -> {to:?}"
                );
            }
        }
        assert!(Paid.check_transition(Draft).is_err());
        assert!(!Paid.is_open() && !Rejected.is_open() && Draft.is_open());
    }

    #[test]
    fn voiding_the_invoice_withdraws_exactly_the_open_claims() {
        for status in ClaimStatus::ALL {
            let want = match status {
                Draft | Submitted | Accepted => Some(Withdrawn),
                Rejected | Paid | Withdrawn => None,
            };
            assert_eq!(status.on_invoice_void(), want, "{status:?}");
        }
        assert!(!Withdrawn.is_open());
    }

    #[test]
    fn amounts_and_dates_are_checked() {
        let check = |r: Result<(), DomainError>, ok: bool| assert_eq!(r.is_ok(), ok, "{r:?}");
        check(check_claim_amount(100, 100, false), true);
        check(check_claim_amount(101, 100, false), false);
        check(check_claim_amount(0, 100, false), false);
        check(check_claim_amount(50, 100, true), false);
        check(check_paid_amount(100, 100), true);
        check(check_paid_amount(101, 100), false);
        check(check_paid_amount(0, 100), false);
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
        assert!(
            parse_coverage_fields("AAR", "M-1", d("2026-01-01"), Some(d("2025-12-31"))).is_err()
        );
        assert!(parse_coverage_fields(" ", "M-1", d("2026-01-01"), None).is_err());
        let cover = Coverage {
            id: CoverageId(uuid::Uuid::nil()),
            patient_id: PatientId(uuid::Uuid::nil()),
            site: "NBO".into(),
            payer: "AAR".into(),
            member_id: "M-1".into(),
            plan: None,
            valid_from: d("2026-01-01"),
            valid_to: Some(d("2026-12-31")),
            active: true,
            updated_at: Utc::now(),
        };
        assert!(cover.covers(d("2026-06-01")));
        assert!(cover.covers(d("2026-12-31")));
        assert!(!cover.covers(d("2027-01-01")));
        assert!(!cover.covers(d("2025-12-31")));
        assert!(
            !Coverage {
                active: false,
                ..cover
            }
            .covers(d("2026-06-01"))
        );
        assert_eq!(claim_number("NBO", 42), "NBO-CLM-000042");
    }
}
