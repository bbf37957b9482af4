//! The cashier's day: today's takings by method and cashier (the day-end cash report)
//! and the latest invoices of every patient.

import { graphql } from '../graphql';
import { dateTime, dayBounds, label, localDay, money, Problem, useQuery } from '../lib';

const Day = graphql(`
  query CashierDay($from: String!, $to: String!) {
    dayEndReport(from: $from, to: $to) {
      byMethod { key count amount { amount currency } }
      byCashier { key count amount { amount currency } }
      invoiced { key count amount { amount currency } }
    }
    invoices(limit: 30) {
      id number status issuedAt
      patient { id name }
      total { amount currency }
      outstanding { amount currency }
    }
  }
`);

export function BillingPage() {
  const day = localDay(new Date());
  const bounds = dayBounds(day);
  const view = useQuery(Day, bounds, day);
  const r = view.data?.dayEndReport;
  return (
    <section>
      <h1>Billing</h1>
      <Problem error={view.error} />
      {r && (
        <div class="summary">
          {(
            [
              ['Invoiced today', r.invoiced],
              ['Taken today, by method', r.byMethod],
              ['Taken today, by cashier', r.byCashier],
            ] as const
          ).map(([title, lines]) => (
            <div>
              <h3>{title}</h3>
              <ul>
                {lines.length === 0 && <li class="quiet">Nothing yet</li>}
                {lines.map((l) => (
                  <li>
                    {l.key ? `${title.endsWith('method') ? label(l.key) : l.key}: ` : ''}
                    {money(l.amount)} ({l.count})
                  </li>
                ))}
              </ul>
            </div>
          ))}
        </div>
      )}
      <h2>Latest invoices</h2>
      <table class="list" aria-label="Latest invoices">
        <tbody>
          {view.data?.invoices.map((i) => (
            <tr>
              <td>{i.number}</td>
              <td>{i.patient ? <a href={`#/patients/${i.patient.id}`}>{i.patient.name}</a> : ''}</td>
              <td>{dateTime(i.issuedAt)}</td>
              <td>{money(i.total)}</td>
              <td>{money(i.outstanding)} owed</td>
              <td>
                <span class="badge">{label(i.status)}</span>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
