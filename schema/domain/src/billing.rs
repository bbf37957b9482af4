//! Billing: invoices, payments and voids, each a record written once, and money that
//! is exact.
//!
//! - Money is an integer count of the currency's minor units (cents, fils; none for
//!   yen) with an ISO 4217 currency; never floating point. [`parse_amount`] reads a
//!   decimal string exactly and refuses more decimals than the currency has.
//! - An invoice's lines carry quantity, unit price, discount and tax rate; each line's
//!   tax is rounded half-up to the minor unit on its own ([`InvoiceLine::tax`]), and an
//!   invoice's totals are the sums of its lines' parts, so they always add up.
//! - Nothing billing-related is edited: an invoice is voided by an [`InvoiceVoid`]
//!   record, a refund is a negative [`Payment`]. What is owed is derived from the
//!   invoice, its payments and its void ([`invoice_status`], [`check_payment`]), never
//!   a stored balance that two clinics could overwrite.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::patient::{parse_opt_text, parse_text};
use crate::{
    AppointmentId, DomainError, InvoiceId, InvoiceVoidId, PatientId, PaymentId, PriceItemId,
};

/// The most lines of one invoice.
pub const MAX_LINES: usize = 200;
/// The largest quantity of one line.
pub const MAX_QUANTITY: u32 = 10_000;
/// The largest amount, in minor units, of a price, a line or an invoice (10^13: a
/// hundred billion in a currency with cents). Sums of lines stay far inside `i64`.
pub const MAX_MINOR: i64 = 10_000_000_000_000;
/// The longest description, service name or reference.
pub const MAX_TEXT: usize = 200;
/// A tax rate of 100%, in hundredths of a percent.
pub const FULL_RATE: u32 = 10_000;

/// ISO 4217 currencies without minor units.
const NO_MINOR: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
    "VUV", "XAF", "XOF", "XPF",
];
/// ISO 4217 currencies with three decimals.
const THREE_MINOR: &[&str] = &["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];

/// An ISO 4217 currency code (three upper-case letters).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Currency(String);

impl Currency {
    pub fn parse(s: &str) -> Result<Currency, DomainError> {
        let s = s.trim().to_ascii_uppercase();
        if s.len() != 3 || !s.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(DomainError::invalid(
                "currency",
                "an ISO 4217 code of three letters, like KES or USD",
            ));
        }
        Ok(Currency(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// How many decimals the currency's minor unit has.
    pub fn exponent(&self) -> u32 {
        if NO_MINOR.contains(&self.0.as_str()) {
            0
        } else if THREE_MINOR.contains(&self.0.as_str()) {
            3
        } else {
            2
        }
    }
}

impl std::fmt::Display for Currency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reads a decimal amount (`"1500"`, `"350.50"`, `"-20.5"`) as minor units of
/// `currency`, exactly: more decimals than the currency has, exponents, separators or
/// magnitudes over [`MAX_MINOR`] are refused.
pub fn parse_amount(field: &'static str, s: &str, currency: &Currency) -> Result<i64, DomainError> {
    let bad = |why: &str| DomainError::invalid(field, why.to_string());
    let t = s.trim();
    let (negative, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let (whole, frac) = match digits.split_once('.') {
        Some((w, f)) => (w, f),
        None => (digits, ""),
    };
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(frac) || digits.ends_with('.') {
        return Err(bad("a decimal number like 1500 or 350.50"));
    }
    let exp = currency.exponent();
    if frac.len() > exp as usize {
        return Err(DomainError::invalid(
            field,
            format!("{currency} has {exp} decimals"),
        ));
    }
    // At most 14 significant digits fit under MAX_MINOR: refuse longer before parsing.
    let whole = whole.trim_start_matches('0');
    if whole.len() > 14 {
        return Err(bad("too large"));
    }
    let mut minor: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad("too large"))?
    };
    let scale = 10_i64.pow(exp);
    let mut frac_minor: i64 = 0;
    for (i, b) in frac.bytes().enumerate() {
        frac_minor += i64::from(b - b'0') * 10_i64.pow(exp - 1 - i as u32);
    }
    minor = minor
        .checked_mul(scale)
        .and_then(|m| m.checked_add(frac_minor))
        .filter(|m| *m <= MAX_MINOR)
        .ok_or_else(|| bad("too large"))?;
    Ok(if negative { -minor } else { minor })
}

/// Writes minor units as a decimal string with the currency's decimals (`"2255.16"`,
/// `"-0.05"`, `"1500"` for yen).
pub fn format_amount(minor: i64, currency: &Currency) -> String {
    let exp = currency.exponent();
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    if exp == 0 {
        return format!("{sign}{abs}");
    }
    let scale = 10_u64.pow(exp);
    format!(
        "{sign}{}.{:0width$}",
        abs / scale,
        abs % scale,
        width = exp as usize
    )
}

/// Reads a tax rate given in percent (`"16"`, `"7.5"`, `"0"`) as hundredths of a
/// percent (1600, 750, 0), from 0 to 100% with at most two decimals.
pub fn parse_rate_percent(s: &str) -> Result<u32, DomainError> {
    let field = "taxRate";
    let t = s.trim();
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    let ok = !whole.is_empty()
        && whole.len() <= 3
        && frac.len() <= 2
        && !t.ends_with('.')
        && whole
            .bytes()
            .chain(frac.bytes())
            .all(|b| b.is_ascii_digit());
    if !ok {
        return Err(DomainError::invalid(
            field,
            "a percentage like 16 or 7.5, at most two decimals",
        ));
    }
    let frac_hundredths: u32 = format!("{frac:0<2}")
        .parse()
        .map_err(|_| DomainError::invalid(field, "not a number"))?;
    let whole: u32 = whole
        .parse()
        .map_err(|_| DomainError::invalid(field, "not a number"))?;
    let rate = whole * 100 + frac_hundredths;
    if rate > FULL_RATE {
        return Err(DomainError::invalid(field, "at most 100%"));
    }
    Ok(rate)
}

/// Writes a rate in hundredths of a percent as percent (`"16"`, `"7.5"`, `"0.25"`).
pub fn format_rate_percent(rate: u32) -> String {
    let whole = rate / 100;
    match rate % 100 {
        0 => whole.to_string(),
        f if f % 10 == 0 => format!("{whole}.{}", f / 10),
        f => format!("{whole}.{f:02}"),
    }
}

/// A service code of the price list: 1 to 32 upper-case letters, digits, `-` or `.`.
pub fn parse_service_code(s: &str) -> Result<String, DomainError> {
    let t = s.trim().to_ascii_uppercase();
    let ok = (1..=32).contains(&t.len())
        && t.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if !ok {
        return Err(DomainError::invalid(
            "serviceCode",
            "1 to 32 letters, digits, '-' or '.'",
        ));
    }
    Ok(t)
}

/// A service of a site's price list: what a line of an invoice copies when it names
/// the service by its code (the invoice keeps the price of the day it was issued).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceItem {
    pub id: PriceItemId,
    pub site: String,
    /// Unique among the site's services.
    pub code: String,
    pub name: String,
    pub unit_price: i64,
    pub currency: Currency,
    /// Hundredths of a percent.
    pub tax_rate: u32,
    pub active: bool,
    pub updated_at: DateTime<Utc>,
}

impl PriceItem {
    /// A line of `quantity` of this service.
    pub fn line(&self, quantity: u32, discount: i64) -> InvoiceLine {
        InvoiceLine {
            service_code: Some(self.code.clone()),
            description: self.name.clone(),
            quantity,
            unit_price: self.unit_price,
            discount,
            tax_rate: self.tax_rate,
        }
    }
}

/// One line of an invoice. Amounts are minor units of the invoice's currency; the
/// discount is an amount taken off the line before tax.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvoiceLine {
    pub service_code: Option<String>,
    pub description: String,
    pub quantity: u32,
    pub unit_price: i64,
    pub discount: i64,
    /// Hundredths of a percent (1600 = 16%).
    pub tax_rate: u32,
}

/// Rounds `n / d` half-up (away from zero at exactly half) for `n >= 0`, `d > 0`.
fn div_half_up(n: i128, d: i128) -> i128 {
    (2 * n + d) / (2 * d)
}

impl InvoiceLine {
    /// Quantity × unit price.
    pub fn gross(&self) -> i64 {
        // Bounded by validate: quantity ≤ 10^4, unit price ≤ 10^13, gross ≤ MAX_MINOR.
        (i128::from(self.quantity) * i128::from(self.unit_price)) as i64
    }

    /// Gross less the discount: what is taxed.
    pub fn net(&self) -> i64 {
        self.gross() - self.discount
    }

    /// The line's tax, rounded half-up to the minor unit.
    pub fn tax(&self) -> i64 {
        div_half_up(
            i128::from(self.net()) * i128::from(self.tax_rate),
            i128::from(FULL_RATE),
        ) as i64
    }

    /// Net plus tax.
    pub fn total(&self) -> i64 {
        self.net() + self.tax()
    }

    /// Checks the line's values and trims its texts.
    pub fn validate(self) -> Result<InvoiceLine, DomainError> {
        let description = parse_text("description", &self.description, MAX_TEXT)?;
        let service_code = self
            .service_code
            .as_deref()
            .map(parse_service_code)
            .transpose()?;
        if !(1..=MAX_QUANTITY).contains(&self.quantity) {
            return Err(DomainError::invalid(
                "quantity",
                format!("1 to {MAX_QUANTITY}"),
            ));
        }
        if !(0..=MAX_MINOR).contains(&self.unit_price) {
            return Err(DomainError::invalid(
                "unitPrice",
                "must not be negative or too large",
            ));
        }
        let gross = i128::from(self.quantity) * i128::from(self.unit_price);
        if gross > i128::from(MAX_MINOR) {
            return Err(DomainError::invalid("quantity", "the line is too large"));
        }
        if self.discount < 0 || i128::from(self.discount) > gross {
            return Err(DomainError::invalid(
                "discount",
                "from zero to the line's quantity × unit price",
            ));
        }
        if self.tax_rate > FULL_RATE {
            return Err(DomainError::invalid("taxRate", "at most 100%"));
        }
        Ok(InvoiceLine {
            service_code,
            description,
            ..self
        })
    }
}

/// The sums of an invoice's lines' parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    pub gross: i64,
    pub discount: i64,
    pub tax: i64,
    pub total: i64,
}

/// Totals of `lines` (each validated, so every sum fits: 200 lines × 2×10^13).
pub fn totals(lines: &[InvoiceLine]) -> Totals {
    lines.iter().fold(Totals::default(), |t, l| Totals {
        gross: t.gross + l.gross(),
        discount: t.discount + l.discount,
        tax: t.tax + l.tax(),
        total: t.total + l.total(),
    })
}

/// Validates an invoice's lines: 1 to [`MAX_LINES`], each valid.
pub fn parse_lines(lines: Vec<InvoiceLine>) -> Result<Vec<InvoiceLine>, DomainError> {
    if lines.is_empty() || lines.len() > MAX_LINES {
        return Err(DomainError::invalid(
            "lines",
            format!("1 to {MAX_LINES} lines"),
        ));
    }
    lines.into_iter().map(InvoiceLine::validate).collect()
}

/// An invoice as issued: never edited afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoice {
    pub id: InvoiceId,
    /// `SITE-INV-000123`: minted by the issuing site ([`invoice_number`]).
    pub number: String,
    pub patient_id: PatientId,
    pub site: String,
    pub currency: Currency,
    pub lines: Vec<InvoiceLine>,
    /// The completed appointment the invoice bills, if any.
    pub appointment_id: Option<AppointmentId>,
    pub notes: Option<String>,
    /// The account that issued it.
    pub issued_by: String,
    pub issued_at: DateTime<Utc>,
}

impl Invoice {
    pub fn totals(&self) -> Totals {
        totals(&self.lines)
    }
}

/// The invoice number of the `seq`-th invoice of `site`.
pub fn invoice_number(site: &str, seq: u64) -> String {
    format!("{site}-INV-{seq:06}")
}

/// The notes of an invoice: optional text.
pub fn parse_notes(notes: Option<&str>) -> Result<Option<String>, DomainError> {
    parse_opt_text("notes", notes, 2_000)
}

/// The record that voids an invoice: the invoice stays, and owes nothing any more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceVoid {
    pub id: InvoiceVoidId,
    pub invoice_id: InvoiceId,
    pub patient_id: PatientId,
    pub site: String,
    pub reason: String,
    pub voided_by: String,
    pub voided_at: DateTime<Utc>,
}

macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident, $field:literal { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> Result<$name, $crate::DomainError> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::DomainError::invalid($field, format!("unknown value {s:?}"))),
                }
            }
        }
    };
}

pub(crate) use text_enum;

text_enum!(
/// How a payment was made.
PaymentMethod, "method" {
    Cash => "CASH", Card => "CARD", MobileMoney => "MOBILE_MONEY", Insurance => "INSURANCE"
});

text_enum!(
/// Where an invoice stands, derived from its payments and void.
InvoiceStatus, "status" {
    Issued => "ISSUED", PartiallyPaid => "PARTIALLY_PAID", Paid => "PAID", Void => "VOID"
});

/// A payment against an invoice; a refund is a payment with a negative amount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub id: PaymentId,
    pub invoice_id: InvoiceId,
    pub patient_id: PatientId,
    pub site: String,
    /// Minor units of `currency` (the invoice's); negative for a refund.
    pub amount: i64,
    pub currency: Currency,
    pub method: PaymentMethod,
    /// A card slip, a mobile-money transaction id, a claim number.
    pub reference: Option<String>,
    /// The account that took (or gave back) the money.
    pub received_by: String,
    pub received_at: DateTime<Utc>,
}

/// Where an invoice of `total` stands with `paid` (payments less refunds) received.
pub fn invoice_status(total: i64, paid: i64, voided: bool) -> InvoiceStatus {
    if voided {
        InvoiceStatus::Void
    } else if paid >= total {
        InvoiceStatus::Paid
    } else if paid > 0 {
        InvoiceStatus::PartiallyPaid
    } else {
        InvoiceStatus::Issued
    }
}

/// What is still owed on an invoice (negative: a credit the clinic owes back). A void
/// invoice owes nothing, and what was paid on it is owed back.
pub fn outstanding(total: i64, paid: i64, voided: bool) -> i64 {
    if voided { -paid } else { total - paid }
}

/// Whether a payment of `amount` may be taken on an invoice of `total` with `paid`
/// received: no zero payments, nothing paid into a void invoice, no payment beyond what
/// is owed, no refund beyond what was paid. [`DomainError::Refused`] when the records as
/// they stand do not allow it.
pub fn check_payment(total: i64, paid: i64, voided: bool, amount: i64) -> Result<(), DomainError> {
    if amount == 0 || amount.unsigned_abs() > MAX_MINOR as u64 {
        return Err(DomainError::invalid(
            "amount",
            "must not be zero or too large",
        ));
    }
    if amount > 0 {
        if voided {
            return Err(DomainError::Refused(
                "the invoice is void: it takes no payment".into(),
            ));
        }
        if paid + amount > total {
            return Err(DomainError::Refused(
                "the payment is more than what is still owed".into(),
            ));
        }
    } else if paid + amount < 0 {
        return Err(DomainError::Refused(
            "the refund is more than what was paid".into(),
        ));
    }
    Ok(())
}

/// Whether an invoice with `paid` received may be voided: only once nothing is paid on
/// it (refund first, so the cash drawer and the records agree).
pub fn check_void(paid: i64, voided: bool) -> Result<(), DomainError> {
    if voided {
        return Err(DomainError::Refused("the invoice is already void".into()));
    }
    if paid != 0 {
        return Err(DomainError::Refused(
            "refund what was paid before voiding the invoice".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
