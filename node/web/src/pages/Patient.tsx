//! One patient: demographics and visits for everyone who may see the patient; the
//! chart (summary, history in time order, new entries) for the doctors treating them
//! and, read-only, the patient; invoices, balance and payments for the cashier and the
//! patient. What the node refuses is not shown: a refused patient looks missing.

import { useEffect, useState } from 'preact/hooks';
import { graphql, request, subscribe, ApiError } from '../graphql';
import { dateTime, label, Problem, useQuery } from '../lib';
import { isCashier, isClinician, type Session } from '../session';
import { Invoices } from './Invoices';

const Patient = graphql(`
  query PatientPage($id: ID!) {
    patient(id: $id) {
      id mrn name email phone dateOfBirth sex active site
      address { line1 city }
      appointments(limit: 20) { id scheduledAt status reason doctor { name } }
    }
  }
`);

export function PatientPage({ id, session }: { id: string; session: Session }) {
  const page = useQuery(Patient, { id }, id);
  useEffect(() => {
    const stop = subscribe(PatientChanged, { id }, () => page.reload());
    return stop;
  }, [id, page.reload]);
  if (page.error) {
    return (
      <section>
        <h1>Patient</h1>
        <p class="problem" role="alert">
          {page.error.code === 'NOT_FOUND' ? 'No such patient.' : page.error.message}
        </p>
      </section>
    );
  }
  const p = page.data?.patient;
  if (!p) return <p class="quiet">Loading…</p>;
  const role = session.user.role;
  const own = role === 'PATIENT';
  return (
    <section>
      <h1>
        {p.name} <span class="quiet">{p.mrn}</span>
        {!p.active && <span class="badge">Inactive</span>}
      </h1>
      <dl class="facts">
        <dt>Date of birth</dt>
        <dd>{p.dateOfBirth ?? '—'}</dd>
        <dt>Sex</dt>
        <dd>{p.sex ? label(p.sex) : '—'}</dd>
        <dt>Phone</dt>
        <dd>{p.phone ?? '—'}</dd>
        <dt>E-mail</dt>
        <dd>{p.email}</dd>
        <dt>Address</dt>
        <dd>{[p.address.line1, p.address.city].filter(Boolean).join(', ') || '—'}</dd>
        <dt>Registered at</dt>
        <dd>{p.site}</dd>
      </dl>
      {(isClinician(role) || own) && <Chart patientId={p.id} canWrite={isClinician(role)} />}
      <h2>Visits</h2>
      {p.appointments.length === 0 ? (
        <p class="quiet">No visits.</p>
      ) : (
        <table class="list" aria-label="Visits">
          <tbody>
            {[...p.appointments].reverse().map((a) => (
              <tr>
                <td>{dateTime(a.scheduledAt)}</td>
                <td>{a.doctor.name}</td>
                <td>{a.reason ?? ''}</td>
                <td>
                  <span class="badge">{label(a.status)}</span>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {(isCashier(role) || own) && (
        <Invoices
          patientId={p.id}
          cashier={isCashier(role)}
          completed={p.appointments.filter((a) => a.status === 'COMPLETED').map((a) => ({ id: a.id, at: a.scheduledAt }))}
        />
      )}
    </section>
  );
}

const PatientChanged = graphql(`
  subscription PatientChanged($id: ID) { patientUpdated(id: $id) { id } }
`);

const ChartQuery = graphql(`
  query Chart($id: ID!) {
    patient(id: $id) {
      id
      clinicalSummary {
        activeProblems { id description }
        currentMedications { id description }
        allergies { id description }
        lastVitals { id description recordedAt }
      }
      medicalHistory(limit: 100) {
        id type recordedAt author description current site
        correction { kind reason }
      }
    }
  }
`);

const Added = graphql(`
  subscription RecordAdded($patientId: ID!) { medicalRecordAdded(patientId: $patientId) { id } }
`);

function Chart({ patientId, canWrite }: { patientId: string; canWrite: boolean }) {
  const chart = useQuery(ChartQuery, { id: patientId }, patientId);
  useEffect(() => subscribe(Added, { patientId }, () => chart.reload()), [patientId, chart.reload]);
  if (chart.error) return <Problem error={chart.error} />;
  const c = chart.data?.patient;
  if (!c) return null;
  const s = c.clinicalSummary;
  const list = (items: { id: string; description: string }[]) =>
    items.length ? items.map((i) => <li>{i.description}</li>) : <li class="quiet">None recorded</li>;
  return (
    <div class="chart">
      <div class="summary">
        <div>
          <h3>Allergies</h3>
          <ul>{list(s.allergies)}</ul>
        </div>
        <div>
          <h3>Active problems</h3>
          <ul>{list(s.activeProblems)}</ul>
        </div>
        <div>
          <h3>Current medications</h3>
          <ul aria-label="Current medications">{list(s.currentMedications)}</ul>
        </div>
        <div>
          <h3>Last vitals</h3>
          <p>{s.lastVitals ? `${s.lastVitals.description} (${dateTime(s.lastVitals.recordedAt)})` : 'None recorded'}</p>
        </div>
      </div>
      {canWrite && <NewEntry patientId={patientId} onAdded={chart.reload} />}
      <h2>History</h2>
      <ol class="history" aria-label="Medical history">
        {[...c.medicalHistory].reverse().map((r) => (
          <li class={r.current ? '' : 'superseded'}>
            <span class="when">{dateTime(r.recordedAt)}</span> <span class="badge">{label(r.type)}</span>{' '}
            {r.correction && <span class="badge warn">{r.correction.kind === 'AMENDS' ? 'Amendment' : 'Retraction'}</span>}{' '}
            {r.description}
            {!r.current && <span class="quiet"> (corrected)</span>}
            <span class="quiet">
              {' '}
              — {r.author} at {r.site}
              {r.correction ? `: ${r.correction.reason}` : ''}
            </span>
          </li>
        ))}
      </ol>
    </div>
  );
}

const Add = graphql(`
  mutation AddEntry($input: MedicalRecordInput!) { addMedicalRecord(input: $input) { id } }
`);

function NewEntry({ patientId, onAdded }: { patientId: string; onAdded: () => void }) {
  const [kind, setKind] = useState<'note' | 'prescription'>('note');
  const [error, setError] = useState<ApiError | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const f = new FormData(form);
    const v = (k: string) => String(f.get(k) ?? '').trim();
    const days = Number(v('durationDays'));
    setError(null);
    try {
      await request(Add, {
        input:
          kind === 'note'
            ? { patientId, note: { text: v('text') } }
            : {
                patientId,
                prescription: {
                  drug: v('drug'),
                  dose: v('dose'),
                  route: v('route'),
                  frequency: v('frequency'),
                  durationDays: Number.isInteger(days) && days > 0 ? days : null,
                },
              },
      });
      form.reset();
      onAdded();
    } catch (err) {
      setError(err as ApiError);
    }
  };
  return (
    <form class="panel" onSubmit={submit} aria-label="New chart entry">
      <div class="row" role="radiogroup" aria-label="Entry type">
        <label class="inline">
          <input type="radio" name="kind" checked={kind === 'note'} onChange={() => setKind('note')} /> Visit note
        </label>
        <label class="inline">
          <input type="radio" name="kind" checked={kind === 'prescription'} onChange={() => setKind('prescription')} /> Prescription
        </label>
      </div>
      {kind === 'note' ? (
        <label>
          Note
          <textarea name="text" required rows={3} maxLength={20000} />
        </label>
      ) : (
        <div class="grid">
          <label>
            Drug
            <input name="drug" required />
          </label>
          <label>
            Dose
            <input name="dose" required placeholder="500 mg" />
          </label>
          <label>
            Route
            <input name="route" required placeholder="oral" />
          </label>
          <label>
            Frequency
            <input name="frequency" required placeholder="three times a day" />
          </label>
          <label>
            Days
            <input name="durationDays" type="number" min={1} max={3650} />
          </label>
        </div>
      )}
      <Problem error={error} />
      <button type="submit">Add to chart</button>
    </form>
  );
}
