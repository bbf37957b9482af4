//! Money arithmetic and the billing rules, table-driven, and the sums of random
//! invoices checked against an independent computation.

use proptest::prelude::*;

use super::*;

fn kes() -> Currency {
    Currency::parse("KES").expect("KES")
}

fn check<T: std::fmt::Debug + PartialEq>(got: Result<T, DomainError>, want: Result<T, &str>) {
    match (got, want) {
        (Ok(g), Ok(w)) => assert_eq!(g, w),
        (Err(DomainError::Invalid { field, .. }), Err(w)) => assert_eq!(field, w),
        (Err(DomainError::Refused(_)), Err("refused")) => {}
        (g, w) => panic!("got {g:?}, wanted {w:?}"),
    }
}

#[test]
fn currencies_and_their_decimals() {
    for (code, exp) in [("kes", 2), ("JPY", 0), ("KWD", 3), ("USD", 2), ("UGX", 0)] {
        assert_eq!(
            Currency::parse(code).map(|c| c.exponent()),
            Ok(exp),
            "{code}"
        );
    }
    for bad in ["", "KE", "KESS", "K3S", "€€€"] {
        check(Currency::parse(bad).map(|_| ()), Err("currency"));
    }
}

#[test]
fn amounts_are_read_exactly() {
    let jpy = Currency::parse("JPY").expect("JPY");
    let kwd = Currency::parse("KWD").expect("KWD");
    for (s, c, want) in [
        ("1500", kes(), Ok(150_000)),
        ("350.50", kes(), Ok(35_050)),
        ("350.5", kes(), Ok(35_050)),
        ("0.01", kes(), Ok(1)),
        ("-20.5", kes(), Ok(-2_050)),
        (" 007 ", kes(), Ok(700)),
        ("100000000000", kes(), Ok(MAX_MINOR)),
        ("1500", jpy.clone(), Ok(1_500)),
        ("1.234", kwd.clone(), Ok(1_234)),
        ("0.001", kwd, Ok(1)),
        ("1.5", jpy, Err("amount")),
        ("0.001", kes(), Err("amount")),
        ("100000000000.01", kes(), Err("amount")),
        ("99999999999999999999999", kes(), Err("amount")),
        ("1e3", kes(), Err("amount")),
        ("1,500", kes(), Err("amount")),
        (".5", kes(), Err("amount")),
        ("5.", kes(), Err("amount")),
        ("", kes(), Err("amount")),
        ("--1", kes(), Err("amount")),
        ("+1", kes(), Err("amount")),
    ] {
        check(parse_amount("amount", s, &c), want);
    }
}

#[test]
fn amounts_are_written_with_the_currency_decimals() {
    let jpy = Currency::parse("JPY").expect("JPY");
    let kwd = Currency::parse("KWD").expect("KWD");
    for (minor, c, want) in [
        (225_516, kes(), "2255.16"),
        (-5, kes(), "-0.05"),
        (0, kes(), "0.00"),
        (1_500, jpy, "1500"),
        (1_234, kwd, "1.234"),
    ] {
        assert_eq!(format_amount(minor, &c), want);
        assert_eq!(parse_amount("amount", want, &c), Ok(minor));
    }
}

#[test]
fn tax_rates() {
    for (s, want) in [
        ("16", Ok(1600)),
        ("7.5", Ok(750)),
        ("0.25", Ok(25)),
        ("0", Ok(0)),
        ("100", Ok(10_000)),
        ("100.01", Err("taxRate")),
        ("7.125", Err("taxRate")),
        ("-1", Err("taxRate")),
        ("", Err("taxRate")),
        ("16%", Err("taxRate")),
    ] {
        check(parse_rate_percent(s), want);
    }
    for rate in [0, 25, 750, 1600, 10_000] {
        assert_eq!(parse_rate_percent(&format_rate_percent(rate)), Ok(rate));
    }
}

fn line(quantity: u32, unit_price: i64, discount: i64, tax_rate: u32) -> InvoiceLine {
    InvoiceLine {
        service_code: None,
        description: "Consultation".into(),
        quantity,
        unit_price,
        discount,
        tax_rate,
    }
}

#[test]
fn the_worked_example_adds_up() {
    // 1500 + 2 × 350.50 − 50 discount, at 16% VAT per line.
    let lines = parse_lines(vec![
        line(1, 150_000, 0, 1600),
        line(2, 35_050, 5_000, 1600),
    ])
    .expect("valid");
    assert_eq!(lines[0].tax(), 24_000);
    // (70100 − 5000) × 16% = 10416.
    assert_eq!(lines[1].tax(), 10_416);
    let t = totals(&lines);
    assert_eq!(
        t,
        Totals {
            gross: 220_100,
            discount: 5_000,
            tax: 34_416,
            total: 249_516
        }
    );
}

#[test]
fn tax_rounds_half_up_per_line() {
    for (net, rate, tax) in [
        (1, 5000, 1),
        (1, 4999, 0),
        (3, 5000, 2),
        (125, 1600, 20),
        (0, 1600, 0),
    ] {
        assert_eq!(line(1, net, 0, rate).tax(), tax, "{net} at {rate}");
    }
}

#[test]
fn bad_lines_are_refused() {
    for (l, field) in [
        (line(0, 100, 0, 0), "quantity"),
        (line(MAX_QUANTITY + 1, 100, 0, 0), "quantity"),
        (line(1, -1, 0, 0), "unitPrice"),
        (line(1, MAX_MINOR + 1, 0, 0), "unitPrice"),
        (line(2, MAX_MINOR, 0, 0), "quantity"),
        (line(1, 100, 101, 0), "discount"),
        (line(1, 100, -1, 0), "discount"),
        (line(1, 100, 0, FULL_RATE + 1), "taxRate"),
        (
            InvoiceLine {
                description: "  ".into(),
                ..line(1, 1, 0, 0)
            },
            "description",
        ),
        (
            InvoiceLine {
                service_code: Some("no spaces".into()),
                ..line(1, 1, 0, 0)
            },
            "serviceCode",
        ),
    ] {
        check(l.validate().map(|_| ()), Err(field));
    }
    check(parse_lines(vec![]).map(|_| ()), Err("lines"));
    check(
        parse_lines(vec![line(1, 1, 0, 0); MAX_LINES + 1]).map(|_| ()),
        Err("lines"),
    );
}

#[test]
fn payments_refunds_and_voids() {
    // (total, paid, voided, amount) → allowed?
    for (total, paid, voided, amount, want) in [
        (1000, 0, false, 400, Ok(())),
        (1000, 400, false, 600, Ok(())),
        (1000, 400, false, 601, Err("refused")),
        (1000, 1000, false, -1000, Ok(())),
        (1000, 400, false, -401, Err("refused")),
        (1000, 0, true, 1, Err("refused")),
        (1000, 400, true, -400, Ok(())),
        (1000, 0, false, 0, Err("amount")),
        (1000, 0, false, MAX_MINOR + 1, Err("amount")),
    ] {
        check(check_payment(total, paid, voided, amount), want);
    }
    check(check_void(0, false), Ok(()));
    check(check_void(1, false), Err("refused"));
    check(check_void(0, true), Err("refused"));
    for (total, paid, voided, status, owed) in [
        (1000, 0, false, InvoiceStatus::Issued, 1000),
        (1000, 1, false, InvoiceStatus::PartiallyPaid, 999),
        (1000, 1000, false, InvoiceStatus::Paid, 0),
        (0, 0, false, InvoiceStatus::Paid, 0),
        (1000, 0, true, InvoiceStatus::Void, 0),
        (1000, 300, true, InvoiceStatus::Void, -300),
    ] {
        assert_eq!(invoice_status(total, paid, voided), status);
        assert_eq!(outstanding(total, paid, voided), owed);
    }
}

#[test]
fn invoice_numbers_carry_the_site() {
    assert_eq!(invoice_number("NAIROBI1", 123), "NAIROBI1-INV-000123");
    assert_eq!(invoice_number("KSM", 1_234_567), "KSM-INV-1234567");
}

fn any_line() -> impl Strategy<Value = InvoiceLine> {
    (
        1u32..=1_000,
        0i64..=10_000_000,
        0u32..=FULL_RATE,
        0u32..=100,
    )
        .prop_map(|(quantity, unit_price, tax_rate, discount_percent)| {
            let gross = i64::from(quantity) * unit_price;
            line(
                quantity,
                unit_price,
                gross * i64::from(discount_percent) / 100,
                tax_rate,
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(50))]

    /// Over 10,000 random lines in every run (50 invoices of 200), the totals equal
    /// the sum of the parts, and each line's tax is the exact rational tax rounded
    /// half-up, computed independently in decimal strings' terms.
    #[test]
    fn totals_are_the_sum_of_their_parts(lines in prop::collection::vec(any_line(), MAX_LINES)) {
        let lines = parse_lines(lines).expect("generated lines are valid");
        let t = totals(&lines);
        let mut gross = 0i128;
        let mut discount = 0i128;
        let mut tax = 0i128;
        for l in &lines {
            let g = i128::from(l.quantity) * i128::from(l.unit_price);
            let net = g - i128::from(l.discount);
            // Exact tax in units of 1/10000 of a minor unit; half-up by comparing the
            // remainder with half the divisor.
            let exact = net * i128::from(l.tax_rate);
            let (q, r) = (exact / 10_000, exact % 10_000);
            let rounded = if r * 2 >= 10_000 { q + 1 } else { q };
            prop_assert_eq!(i128::from(l.tax()), rounded);
            prop_assert_eq!(i128::from(l.total()), net + rounded);
            gross += g;
            discount += i128::from(l.discount);
            tax += rounded;
        }
        prop_assert_eq!(i128::from(t.gross), gross);
        prop_assert_eq!(i128::from(t.discount), discount);
        prop_assert_eq!(i128::from(t.tax), tax);
        prop_assert_eq!(i128::from(t.total), gross - discount + tax);
        // Formatting and reading back the total loses nothing.
        let kes = kes();
        prop_assert_eq!(parse_amount("total", &format_amount(t.total, &kes), &kes), Ok(t.total));
    }
}
