//! Billing at the front desk: the site's price list, invoices, payments, refunds and
//! voids.
//!
//! Who: the cashiers (RECEPTIONIST, ADMIN) issue invoices and take money; only an
//! ADMIN edits the price list; a PATIENT reads their own invoices; a DOCTOR has no
//! part in billing. Every write is one record written once (`healsync_domain::billing`)
//! and every check that depends on what was already paid runs inside the write's
//! transaction, so two desks taking the last payment at once cannot both succeed.

use healsync_domain::billing::{
    self, Currency, InvoiceLine, PaymentMethod, format_amount, parse_amount, parse_lines,
    parse_notes, parse_rate_percent, parse_service_code,
};
use healsync_domain::patient::{parse_opt_text, parse_text};
use healsync_domain::{
    AppointmentId, AppointmentStatus, Audience, DomainError, Invoice, InvoiceId, InvoiceVoid,
    Notification, PatientId, Payment, PriceItem, Role,
};
use healsync_store::WriteTx;
use healsync_store::queries::billing as q;

use super::{load_appointment, load_patient, new_id};
use crate::{ApiError, Node, Session};

/// The roles that issue invoices and take payments.
pub const CASHIERS: &[Role] = &[Role::Admin, Role::Receptionist];

/// Whether the session may read the billing of `patient`: a cashier, or the patient.
pub fn may_read(session: &Session, patient: PatientId) -> bool {
    CASHIERS.contains(&session.role)
        || (session.role == Role::Patient && session.patient_id == Some(patient))
}

/// Whether the session reads billing at all (lists refuse the others outright).
pub fn reads_billing(session: &Session) -> bool {
    CASHIERS.contains(&session.role) || session.role == Role::Patient
}

/// A service of the price list as an ADMIN sets it; amounts as decimal strings.
#[derive(Debug, Clone)]
pub struct PriceInput {
    pub code: String,
    pub name: String,
    pub unit_price: String,
    pub currency: String,
    /// Percent, like `16` or `7.5`.
    pub tax_rate: String,
    pub active: bool,
}

/// Adds a service to this site's price list, or changes the one with the same code.
/// Invoices already issued keep the price they were issued with.
pub async fn set_price_item(
    node: &Node,
    session: &Session,
    input: PriceInput,
) -> Result<PriceItem, ApiError> {
    session.require(&[Role::Admin])?;
    let code = parse_service_code(&input.code)?;
    let name = parse_text("name", &input.name, billing::MAX_TEXT)?;
    let currency = Currency::parse(&input.currency)?;
    let unit_price = parse_amount("unitPrice", &input.unit_price, &currency)?;
    if unit_price < 0 {
        return Err(DomainError::invalid("unitPrice", "must not be negative").into());
    }
    let tax_rate = parse_rate_percent(&input.tax_rate)?;
    node.write(session.acting("set_price_item"), move |tx| {
        let site = tx.site().to_string();
        let existing = q::price_item_by_code(tx.conn(), &site, &code)?;
        if existing.is_none()
            && q::price_items(tx.conn(), &site, false)?.len() >= q::MAX_PRICE_ITEMS
        {
            return Err(ApiError::Conflict(format!(
                "the price list is full: it holds {} services",
                q::MAX_PRICE_ITEMS
            )));
        }
        let item = PriceItem {
            id: existing.map(|e| e.id).unwrap_or_else(new_id),
            site,
            code,
            name,
            unit_price,
            currency,
            tax_rate,
            active: input.active,
            updated_at: tx.now(),
        };
        tx.put(&item)?;
        Ok(item)
    })
    .await
}

/// One line of a new invoice: a service of the price list by its code, or a line
/// described by hand with its price.
#[derive(Debug, Clone, Default)]
pub struct LineInput {
    pub service_code: Option<String>,
    pub description: Option<String>,
    pub quantity: i32,
    pub unit_price: Option<String>,
    pub discount: Option<String>,
    pub tax_rate: Option<String>,
}

/// A new invoice: for a completed appointment (its patient), or for a patient.
#[derive(Debug, Clone)]
pub struct NewInvoice {
    pub patient_id: Option<PatientId>,
    pub appointment_id: Option<AppointmentId>,
    pub currency: String,
    pub lines: Vec<LineInput>,
    pub notes: Option<String>,
}

/// A line before its service is looked up: the checks that need no database.
enum Pending {
    Priced {
        code: String,
        quantity: u32,
        discount: i64,
    },
    ByHand(InvoiceLine),
}

fn quantity(q: i32) -> Result<u32, DomainError> {
    u32::try_from(q)
        .ok()
        .filter(|q| (1..=billing::MAX_QUANTITY).contains(q))
        .ok_or_else(|| DomainError::invalid("quantity", format!("1 to {}", billing::MAX_QUANTITY)))
}

fn parse_line(l: LineInput, currency: &Currency) -> Result<Pending, DomainError> {
    let quantity = quantity(l.quantity)?;
    let discount = l
        .discount
        .as_deref()
        .map(|d| parse_amount("discount", d, currency))
        .transpose()?
        .unwrap_or(0);
    match l.service_code {
        Some(code) => {
            if l.unit_price.is_some() || l.tax_rate.is_some() || l.description.is_some() {
                return Err(DomainError::invalid(
                    "lines",
                    "a line with a serviceCode takes its description, price and tax from \
                     the price list (give a discount instead)",
                ));
            }
            Ok(Pending::Priced {
                code: parse_service_code(&code)?,
                quantity,
                discount,
            })
        }
        None => {
            let (Some(description), Some(price)) = (l.description, l.unit_price) else {
                return Err(DomainError::invalid(
                    "lines",
                    "give a serviceCode, or a description and a unitPrice",
                ));
            };
            Ok(Pending::ByHand(InvoiceLine {
                service_code: None,
                description,
                quantity,
                unit_price: parse_amount("unitPrice", &price, currency)?,
                discount,
                tax_rate: l
                    .tax_rate
                    .as_deref()
                    .map(parse_rate_percent)
                    .transpose()?
                    .unwrap_or(0),
            }))
        }
    }
}

/// Looks up priced lines in this site's price list (active services in the invoice's
/// currency only) and validates every line.
fn price_lines(
    tx: &WriteTx<'_>,
    pending: Vec<Pending>,
    currency: &Currency,
) -> Result<Vec<InvoiceLine>, ApiError> {
    let site = tx.site().to_string();
    let mut lines = Vec::with_capacity(pending.len());
    for p in pending {
        lines.push(match p {
            Pending::ByHand(line) => line,
            Pending::Priced {
                code,
                quantity,
                discount,
            } => {
                let item = q::price_item_by_code(tx.conn(), &site, &code)?
                    .filter(|i| i.active)
                    .ok_or_else(|| {
                        ApiError::BadInput(format!("{code} is not on this site's price list"))
                    })?;
                if &item.currency != currency {
                    return Err(ApiError::BadInput(format!(
                        "{code} is priced in {}, the invoice is in {currency}",
                        item.currency
                    )));
                }
                item.line(quantity, discount)
            }
        });
    }
    Ok(parse_lines(lines)?)
}

/// The patient an invoice bills, checked against its appointment inside the
/// transaction: the appointment must be this site's, completed, and not billed yet.
fn billed_patient(
    tx: &WriteTx<'_>,
    patient: Option<PatientId>,
    appointment: Option<AppointmentId>,
) -> Result<PatientId, ApiError> {
    let patient = match (patient, appointment) {
        (None, None) => {
            return Err(ApiError::BadInput(
                "give the appointment billed, or the patient".into(),
            ));
        }
        (p, None) => p,
        (p, Some(a)) => {
            let appt = load_appointment(tx, a)?;
            if appt.site != tx.site().to_string() {
                return Err(ApiError::BadInput(format!(
                    "the appointment is {}'s: that site bills it",
                    appt.site
                )));
            }
            if appt.status != AppointmentStatus::Completed {
                return Err(ApiError::Conflict(format!(
                    "the appointment is {}: only a completed one is billed",
                    appt.status.as_str()
                )));
            }
            if p.is_some_and(|p| p != appt.patient_id) {
                return Err(ApiError::BadInput(
                    "the appointment is another patient's".into(),
                ));
            }
            if let Some(number) = q::live_invoice_of_appointment(tx.conn(), a)? {
                return Err(ApiError::Conflict(format!(
                    "the appointment is already billed by {number} (void it first)"
                )));
            }
            Some(appt.patient_id)
        }
    };
    let patient = patient.ok_or_else(|| ApiError::internal("no patient"))?;
    load_patient(tx, patient)?;
    Ok(patient)
}

/// Issues an invoice (a cashier): numbered `SITE-INV-000001` by this node, priced from
/// the price list as it stands, the patient notified.
pub async fn issue_invoice(
    node: &Node,
    session: &Session,
    input: NewInvoice,
) -> Result<q::InvoiceRow, ApiError> {
    session.require(CASHIERS)?;
    let currency = Currency::parse(&input.currency)?;
    if input.lines.is_empty() || input.lines.len() > billing::MAX_LINES {
        return Err(
            DomainError::invalid("lines", format!("1 to {} lines", billing::MAX_LINES)).into(),
        );
    }
    let pending = input
        .lines
        .into_iter()
        .map(|l| parse_line(l, &currency))
        .collect::<Result<Vec<_>, _>>()?;
    let notes = parse_notes(input.notes.as_deref())?;
    let issued_by = session.username.clone();
    node.write(session.acting("issue_invoice"), move |tx| {
        let patient_id = billed_patient(tx, input.patient_id, input.appointment_id)?;
        let lines = price_lines(tx, pending, &currency)?;
        let seq = tx.next_counter("invoice")?;
        let now = tx.now();
        let invoice = Invoice {
            id: new_id(),
            number: billing::invoice_number(&tx.site().to_string(), seq),
            patient_id,
            site: tx.site().to_string(),
            currency,
            lines,
            appointment_id: input.appointment_id,
            notes,
            issued_by,
            issued_at: now,
        };
        tx.put(&invoice)?;
        let total = format_amount(invoice.totals().total, &invoice.currency);
        super::messages::notify(
            tx,
            Notification {
                id: new_id(),
                audience: Audience::Patient(patient_id),
                kind: "INVOICE_ISSUED".into(),
                title: "Invoice issued".into(),
                body: format!(
                    "Invoice {} for {} {total}.",
                    invoice.number, invoice.currency
                ),
                appointment_id: invoice.appointment_id,
                created_at: now,
                read: false,
            },
        )?;
        Ok(q::InvoiceRow {
            invoice,
            paid: 0,
            void: None,
        })
    })
    .await
}

/// Money taken for an invoice, or given back.
#[derive(Debug, Clone)]
pub struct PaymentInput {
    pub invoice_id: InvoiceId,
    /// A positive decimal amount in the invoice's currency.
    pub amount: String,
    pub method: PaymentMethod,
    pub reference: Option<String>,
}

/// Whether money comes in or goes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Payment,
    Refund,
}

/// The invoice a cashier acts on, as it stands inside the transaction.
pub(crate) fn load_invoice(tx: &WriteTx<'_>, id: InvoiceId) -> Result<q::InvoiceRow, ApiError> {
    q::invoice(tx.conn(), id)?.ok_or_else(|| ApiError::not_found("invoice"))
}

/// Takes a payment on an invoice, or refunds one (a cashier). Refused (`CONFLICT`)
/// beyond what is owed, beyond what was paid, or into a void invoice.
pub async fn record_payment(
    node: &Node,
    session: &Session,
    input: PaymentInput,
    direction: Direction,
) -> Result<(Payment, q::InvoiceRow), ApiError> {
    session.require(CASHIERS)?;
    let reference = parse_opt_text("reference", input.reference.as_deref(), billing::MAX_TEXT)?;
    let received_by = session.username.clone();
    node.write(session.acting("record_payment"), move |tx| {
        let row = load_invoice(tx, input.invoice_id)?;
        let amount = parse_amount("amount", &input.amount, &row.invoice.currency)?;
        if amount <= 0 {
            return Err(DomainError::invalid("amount", "must be more than zero").into());
        }
        let amount = match direction {
            Direction::Payment => amount,
            Direction::Refund => -amount,
        };
        take_payment(tx, row, amount, input.method, reference, received_by)
    })
    .await
}

/// Writes a payment (negative: a refund) of `amount` on the invoice `row` as it stands
/// in the transaction, after [`billing::check_payment`], and tells the patient.
pub(crate) fn take_payment(
    tx: &mut WriteTx<'_>,
    mut row: q::InvoiceRow,
    amount: i64,
    method: PaymentMethod,
    reference: Option<String>,
    received_by: String,
) -> Result<(Payment, q::InvoiceRow), ApiError> {
    let currency = row.invoice.currency.clone();
    let total = row.invoice.totals().total;
    billing::check_payment(total, row.paid, row.void.is_some(), amount).map_err(|e| match e {
        DomainError::Refused(why) => ApiError::Conflict(format!(
            "{why}: {currency} {} owed, {currency} {} paid",
            format_amount(row.outstanding().max(0), &currency),
            format_amount(row.paid, &currency)
        )),
        e => e.into(),
    })?;
    let now = tx.now();
    let payment = Payment {
        id: new_id(),
        invoice_id: row.invoice.id,
        patient_id: row.invoice.patient_id,
        site: tx.site().to_string(),
        amount,
        currency: currency.clone(),
        method,
        reference,
        received_by,
        received_at: now,
    };
    tx.put(&payment)?;
    let (kind, title, verb) = if amount > 0 {
        ("PAYMENT_RECEIVED", "Payment received", "received")
    } else {
        ("PAYMENT_REFUNDED", "Refund made", "refunded")
    };
    super::messages::notify(
        tx,
        Notification {
            id: new_id(),
            audience: Audience::Patient(row.invoice.patient_id),
            kind: kind.into(),
            title: title.into(),
            body: format!(
                "{currency} {} {verb} for invoice {}.",
                format_amount(amount.abs(), &currency),
                row.invoice.number
            ),
            appointment_id: row.invoice.appointment_id,
            created_at: now,
            read: false,
        },
    )?;
    row.paid += amount;
    Ok((payment, row))
}

/// Voids an invoice with the reason (a cashier): it stays on record and owes nothing.
/// Refused while anything is paid on it: refund first.
pub async fn void_invoice(
    node: &Node,
    session: &Session,
    id: InvoiceId,
    reason: String,
) -> Result<q::InvoiceRow, ApiError> {
    session.require(CASHIERS)?;
    let reason = parse_text("reason", &reason, billing::MAX_TEXT)?;
    let voided_by = session.username.clone();
    node.write(session.acting("void_invoice"), move |tx| {
        let mut row = load_invoice(tx, id)?;
        billing::check_void(row.paid, row.void.is_some())?;
        let void = InvoiceVoid {
            id: new_id(),
            invoice_id: id,
            patient_id: row.invoice.patient_id,
            site: tx.site().to_string(),
            reason,
            voided_by,
            voided_at: tx.now(),
        };
        tx.put(&void)?;
        // The payer is no longer asked for money the invoice no longer claims.
        let claims = q::claims(
            tx.conn(),
            &q::ClaimFilter {
                invoice: Some(id),
                limit: 100,
                ..Default::default()
            },
        )?;
        for mut claim in claims {
            // A claim is changed only at the site that made it (the invoice's).
            if claim.site != void.site {
                continue;
            }
            if let Some(status) = claim.status.on_invoice_void() {
                claim.status = status;
                claim.response = Some(format!("invoice void: {}", void.reason));
                claim.updated_at = tx.now();
                tx.put(&claim)?;
            }
        }
        row.void = Some(q::VoidRow {
            id: void.id,
            reason: void.reason,
            voided_by: void.voided_by,
            voided_at: void.voided_at,
        });
        Ok(row)
    })
    .await
}
