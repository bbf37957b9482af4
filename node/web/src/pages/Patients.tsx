//! The front desk's patient search (as you type: name, MRN, phone, e-mail; date of
//! birth) and registration, with a warning for a likely duplicate.

import { useEffect, useState } from 'preact/hooks';
import { graphql, request, ApiError, type ResultOf } from '../graphql';
import { go, Problem, useQuery } from '../lib';
import { isCashier, type Session } from '../session';

const Search = graphql(`
  query SearchPatients($search: String, $dateOfBirth: String) {
    patients(search: $search, dateOfBirth: $dateOfBirth, limit: 25) {
      id mrn name dateOfBirth phone
    }
  }
`);

type Found = ResultOf<typeof Search>['patients'];

export function PatientsPage({ session }: { session: Session }) {
  const [search, setSearch] = useState('');
  const [dob, setDob] = useState('');
  const [debounced, setDebounced] = useState({ search: '', dob: '' });
  const [registering, setRegistering] = useState(false);
  useEffect(() => {
    const t = setTimeout(() => setDebounced({ search: search.trim(), dob }), 120);
    return () => clearTimeout(t);
  }, [search, dob]);
  const vars = { search: debounced.search || null, dateOfBirth: debounced.dob || null };
  const found = useQuery(Search, vars, JSON.stringify(vars));

  return (
    <section>
      <h1>Patients</h1>
      <div class="row">
        <label class="grow">
          Find a patient
          <input
            type="search"
            value={search}
            autoFocus
            placeholder="Name, MRN, phone or e-mail"
            onInput={(e) => setSearch(e.currentTarget.value)}
            onKeyDown={(e) => {
              const first = found.data?.patients[0];
              if (e.key === 'Enter' && first) go(`/patients/${first.id}`);
            }}
          />
        </label>
        <label>
          Date of birth
          <input type="date" value={dob} onInput={(e) => setDob(e.currentTarget.value)} />
        </label>
        {isCashier(session.user.role) && (
          <button type="button" onClick={() => setRegistering(true)}>
            Register a patient
          </button>
        )}
      </div>
      {registering && <Register onDone={() => setRegistering(false)} />}
      <Problem error={found.error} />
      <PatientTable patients={found.data?.patients ?? []} />
    </section>
  );
}

function PatientTable({ patients }: { patients: Found }) {
  if (patients.length === 0) return <p class="quiet">No patients match.</p>;
  return (
    <table class="list" aria-label="Patients found">
      <thead>
        <tr>
          <th>Name</th>
          <th>MRN</th>
          <th>Date of birth</th>
          <th>Phone</th>
        </tr>
      </thead>
      <tbody>
        {patients.map((p) => (
          <tr>
            <td>
              <a href={`#/patients/${p.id}`}>{p.name}</a>
            </td>
            <td>{p.mrn}</td>
            <td>{p.dateOfBirth ?? ''}</td>
            <td>{p.phone ?? ''}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

const Create = graphql(`
  mutation CreatePatient($input: PatientInput!) {
    createPatient(input: $input) { id }
  }
`);

function Register({ onDone }: { onDone: () => void }) {
  const [error, setError] = useState<ApiError | null>(null);
  const [duplicates, setDuplicates] = useState<Found | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    const v = (k: string) => String(f.get(k) ?? '').trim();
    const input = {
      name: v('name'),
      email: v('email'),
      phone: v('phone') || null,
      dateOfBirth: v('dateOfBirth') || null,
    };
    setError(null);
    try {
      if (!duplicates) {
        // Same name and date of birth, or same phone: ask before making a second record.
        const byName = await request(Search, { search: input.name, dateOfBirth: input.dateOfBirth });
        const byPhone = input.phone ? await request(Search, { search: input.phone, dateOfBirth: null }) : null;
        const same = [
          ...byName.patients.filter((p) => p.name.toLowerCase() === input.name.toLowerCase()),
          ...(byPhone?.patients ?? []),
        ];
        const unique = same.filter((p, i) => same.findIndex((q) => q.id === p.id) === i);
        if (unique.length > 0) {
          setDuplicates(unique);
          return;
        }
      }
      const { createPatient } = await request(Create, { input });
      onDone();
      go(`/patients/${createPatient.id}`);
    } catch (err) {
      setError(err as ApiError);
    }
  };
  return (
    <form class="panel" onSubmit={submit} aria-label="Register a patient">
      <h2>Register a patient</h2>
      <div class="grid">
        <label>
          Full name
          <input name="name" required maxLength={200} autoFocus onInput={() => setDuplicates(null)} />
        </label>
        <label>
          E-mail
          <input name="email" type="email" required />
        </label>
        <label>
          Phone
          <input name="phone" type="tel" onInput={() => setDuplicates(null)} />
        </label>
        <label>
          Date of birth
          <input name="dateOfBirth" type="date" onInput={() => setDuplicates(null)} />
        </label>
      </div>
      {duplicates && (
        <div class="warning" role="alert">
          <p>This may be a patient already registered:</p>
          <PatientTable patients={duplicates} />
          <p>Open the record above, or register a new patient anyway.</p>
        </div>
      )}
      <Problem error={error} />
      <div class="row">
        <button type="submit">{duplicates ? 'Register anyway' : 'Register'}</button>
        <button type="button" class="secondary" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}
