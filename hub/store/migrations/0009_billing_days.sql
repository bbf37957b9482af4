-- Billing by day, kept by the fold from the fact tables, so that a roll-up over a year
-- reads at most sites x 365 x payers rows. A day's cell is recomputed whole from the
-- facts whenever a record touching it is folded (an invoice, its void, its claims, a
-- payment), so cells never drift, whatever order records arrive in.
-- Invoiced and still outstanding, by the invoices' day of issue (UTC).
CREATE TABLE billing_days_issued (
    day DATE NOT NULL,
    site TEXT NOT NULL,
    payer TEXT NOT NULL,
    currency TEXT NOT NULL,
    invoiced BIGINT NOT NULL,
    outstanding BIGINT NOT NULL,
    PRIMARY KEY (day, site, payer, currency)
);
-- Received, by the payments' day (UTC).
CREATE TABLE billing_days_received (
    day DATE NOT NULL,
    site TEXT NOT NULL,
    payer TEXT NOT NULL,
    currency TEXT NOT NULL,
    received BIGINT NOT NULL,
    PRIMARY KEY (day, site, payer, currency)
);
-- The billing projected so far fills the day tables at the next start.
UPDATE hub_meta SET billing_backfilled = FALSE;
