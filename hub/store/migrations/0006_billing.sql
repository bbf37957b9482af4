-- Billing as central roll-ups need it, kept by the fold from the billing records
-- nodes upload (invoices, voids, payments, insurance claims), like `appointments`:
-- derived, rebuildable from the documents. Amounts are minor units of `currency`;
-- invoice totals are the domain's (per-line half-up tax), computed once by the fold.
CREATE TABLE billing_invoices (
    invoice_id UUID PRIMARY KEY,
    site TEXT NOT NULL,
    patient_id UUID NOT NULL,
    number TEXT NOT NULL,
    currency TEXT NOT NULL,
    issued_at TIMESTAMPTZ NOT NULL,
    total BIGINT NOT NULL
);
CREATE INDEX billing_invoices_issued ON billing_invoices(issued_at, site);

CREATE TABLE billing_lines (
    invoice_id UUID NOT NULL,
    line INT NOT NULL,
    -- The price list's code, or the description when the line has none.
    service TEXT NOT NULL,
    quantity BIGINT NOT NULL,
    total BIGINT NOT NULL,
    PRIMARY KEY (invoice_id, line)
);

CREATE TABLE billing_voids (
    void_id UUID PRIMARY KEY,
    invoice_id UUID NOT NULL,
    voided_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX billing_voids_invoice ON billing_voids(invoice_id);

CREATE TABLE billing_payments (
    payment_id UUID PRIMARY KEY,
    invoice_id UUID NOT NULL,
    site TEXT NOT NULL,
    currency TEXT NOT NULL,
    amount BIGINT NOT NULL,
    method TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX billing_payments_invoice ON billing_payments(invoice_id);
CREATE INDEX billing_payments_received ON billing_payments(received_at, site);

CREATE TABLE billing_claims (
    claim_id UUID PRIMARY KEY,
    invoice_id UUID NOT NULL,
    site TEXT NOT NULL,
    payer TEXT NOT NULL,
    currency TEXT NOT NULL,
    amount BIGINT NOT NULL,
    status TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX billing_claims_invoice ON billing_claims(invoice_id);
CREATE INDEX billing_claims_status ON billing_claims(status, site);

-- Billing documents folded before these tables existed are projected by the hub at
-- its next start (`HubStore::backfill_billing`), which finds them by this flag.
ALTER TABLE hub_meta ADD COLUMN billing_backfilled BOOLEAN NOT NULL DEFAULT FALSE;
