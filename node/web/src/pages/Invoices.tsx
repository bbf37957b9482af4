//! A patient's invoices and balance: issue one for a completed visit from the price
//! list, take a payment, print an invoice or receipt. Follows `invoiceUpdated` live.

import { useEffect, useState } from 'preact/hooks';
import { graphql, request, subscribe, ApiError, type ResultOf } from '../graphql';
import { dateTime, label, money, Problem, useQuery } from '../lib';

const Billing = graphql(`
  query PatientBilling($id: ID!) {
    patientBalance(patientId: $id) { amount currency }
    invoices(patientId: $id, limit: 50) {
      id number status issuedAt currency appointmentId
      total { amount currency }
      paid { amount currency }
      outstanding { amount currency }
      lines { description quantity total { amount currency } }
      payments { id method refund receivedAt amount { amount currency } reference }
    }
  }
`);

const Prices = graphql(`
  query Prices { priceList { code name unitPrice { amount currency } } }
`);

const Updated = graphql(`
  subscription InvoiceChanged($patientId: ID) { invoiceUpdated(patientId: $patientId) { id } }
`);

type Invoice = ResultOf<typeof Billing>['invoices'][number];

export function Invoices({
  patientId,
  cashier,
  completed,
}: {
  patientId: string;
  cashier: boolean;
  completed: { id: string; at: string }[];
}) {
  const billing = useQuery(Billing, { id: patientId }, patientId);
  useEffect(() => subscribe(Updated, { patientId }, () => billing.reload()), [patientId, billing.reload]);
  const [printing, setPrinting] = useState<Invoice | null>(null);
  useEffect(() => {
    if (!printing) return;
    const done = () => setPrinting(null);
    addEventListener('afterprint', done);
    print();
    return () => removeEventListener('afterprint', done);
  }, [printing]);
  if (billing.error) return <Problem error={billing.error} />;
  const b = billing.data;
  if (!b) return null;
  const billed = new Set(b.invoices.filter((i) => i.status !== 'VOID').map((i) => i.appointmentId));
  const unbilled = completed.filter((a) => !billed.has(a.id));
  return (
    <div class="billing">
      <h2>Billing</h2>
      <p>
        Balance:{' '}
        <strong data-testid="balance">{b.patientBalance.length ? b.patientBalance.map(money).join(', ') : 'nothing owed'}</strong>
      </p>
      {cashier && unbilled.length > 0 && <Issue patientId={patientId} visits={unbilled} onIssued={billing.reload} />}
      {b.invoices.length === 0 ? (
        <p class="quiet">No invoices.</p>
      ) : (
        <table class="list" aria-label="Invoices">
          <thead>
            <tr>
              <th>Invoice</th>
              <th>Issued</th>
              <th>Total</th>
              <th>Paid</th>
              <th>Owed</th>
              <th>Status</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {b.invoices.map((i) => (
              <tr>
                <td>{i.number}</td>
                <td>{dateTime(i.issuedAt)}</td>
                <td>{money(i.total)}</td>
                <td>{money(i.paid)}</td>
                <td>{money(i.outstanding)}</td>
                <td>
                  <span class="badge">{label(i.status)}</span>
                </td>
                <td class="actions">
                  {cashier && (i.status === 'ISSUED' || i.status === 'PARTIALLY_PAID') && (
                    <Pay invoice={i} onPaid={billing.reload} />
                  )}
                  <button type="button" class="secondary" onClick={() => setPrinting(i)}>
                    Print
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {printing && <Printable invoice={printing} />}
    </div>
  );
}

const Issue_ = graphql(`
  mutation IssueInvoice($input: InvoiceInput!) { issueInvoice(input: $input) { id number } }
`);

function Issue({ patientId, visits, onIssued }: { patientId: string; visits: { id: string; at: string }[]; onIssued: () => void }) {
  const prices = useQuery(Prices, {}, 'prices');
  const [error, setError] = useState<ApiError | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    const code = String(f.get('service'));
    const item = prices.data?.priceList.find((p) => p.code === code);
    if (!item) {
      setError(new ApiError('Choose a service from the price list.', 'BAD_USER_INPUT'));
      return;
    }
    setError(null);
    try {
      await request(Issue_, {
        input: {
          appointmentId: String(f.get('visit')),
          patientId,
          currency: item.unitPrice.currency,
          lines: [{ serviceCode: code, quantity: 1 }],
        },
      });
      onIssued();
    } catch (err) {
      setError(err as ApiError);
    }
  };
  return (
    <form class="panel row" onSubmit={submit} aria-label="Issue an invoice">
      <label>
        Visit
        <select name="visit">
          {visits.map((v) => (
            <option value={v.id}>{dateTime(v.at)}</option>
          ))}
        </select>
      </label>
      <label>
        Service
        <select name="service">
          {prices.data?.priceList.map((p) => (
            <option value={p.code}>
              {p.name} — {money(p.unitPrice)}
            </option>
          ))}
        </select>
      </label>
      {/* Disabled until the price list is in: a click before then would have nothing to bill. */}
      <button type="submit" disabled={!prices.data?.priceList.length}>
        Issue invoice
      </button>
      <Problem error={error ?? prices.error} />
    </form>
  );
}

const Pay_ = graphql(`
  mutation Pay($input: PaymentInput!) {
    recordPayment(input: $input) { invoice { id status outstanding { amount currency } } }
  }
`);

function Pay({ invoice, onPaid }: { invoice: Invoice; onPaid: () => void }) {
  const [open, setOpen] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  if (!open) {
    return (
      <button type="button" onClick={() => setOpen(true)}>
        Take payment
      </button>
    );
  }
  const submit = async (e: Event) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    setError(null);
    try {
      await request(Pay_, {
        input: {
          invoiceId: invoice.id,
          amount: String(f.get('amount')).trim(),
          method: f.get('method') as 'CASH' | 'CARD' | 'MOBILE_MONEY',
          reference: String(f.get('reference') ?? '').trim() || null,
        },
      });
      setOpen(false);
      onPaid();
    } catch (err) {
      setError(err as ApiError);
    }
  };
  return (
    <form class="pay" onSubmit={submit} aria-label={`Payment on ${invoice.number}`}>
      <label>
        Amount ({invoice.currency})
        <input name="amount" required inputMode="decimal" pattern="[0-9]+(\.[0-9]{1,2})?" value={invoice.outstanding.amount} autoFocus />
      </label>
      <label>
        Method
        <select name="method">
          <option value="CASH">Cash</option>
          <option value="CARD">Card</option>
          <option value="MOBILE_MONEY">Mobile money</option>
        </select>
      </label>
      <label>
        Reference
        <input name="reference" maxLength={100} />
      </label>
      <button type="submit">Record payment</button>
      <button type="button" class="secondary" onClick={() => setOpen(false)}>
        Cancel
      </button>
      <Problem error={error} />
    </form>
  );
}

/** The invoice and its payments as printed (only this shows on paper). */
function Printable({ invoice }: { invoice: Invoice }) {
  return (
    <article class="printable" aria-hidden="true">
      <h1>Invoice {invoice.number}</h1>
      <p>Issued {dateTime(invoice.issuedAt)}</p>
      <table>
        <tbody>
          {invoice.lines.map((l) => (
            <tr>
              <td>{l.description}</td>
              <td>× {l.quantity}</td>
              <td>{money(l.total)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <p>Total {money(invoice.total)}</p>
      <h2>Payments received</h2>
      <ul>
        {invoice.payments.map((p) => (
          <li>
            {dateTime(p.receivedAt)} {label(p.method)} {money(p.amount)} {p.reference ?? ''}
          </li>
        ))}
      </ul>
      <p>Still owed {money(invoice.outstanding)}</p>
    </article>
  );
}
