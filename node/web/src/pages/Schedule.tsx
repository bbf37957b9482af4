//! A doctor's day: appointments and free slots in time order. Book a free slot for a
//! patient, move a booking, check in, mark a no-show, cancel, complete. The day
//! follows every other desk live (`appointmentUpdated`).

import { useEffect, useState } from 'preact/hooks';
import { graphql, request, subscribe, ApiError, type ResultOf } from '../graphql';
import { dayBounds, go, label, localDay, Problem, time, useQuery } from '../lib';
import type { Session } from '../session';

const Doctors = graphql(`
  query Doctors { doctors(limit: 100) { id name specialization } }
`);

const Day = graphql(`
  query DoctorDay($id: ID!, $from: String!, $to: String!) {
    doctor(id: $id) {
      id
      name
      appointments(from: $from, to: $to, limit: 200) {
        id scheduledAt endsAt status reason
        patient { id name mrn }
      }
      availableSlots(from: $from, to: $to, limit: 200) { start end }
    }
  }
`);

const Changed = graphql(`
  subscription AppointmentChanged { appointmentUpdated { id doctorId scheduledAt status } }
`);

/** The doctor and day shown are in the address (`#/schedule?doctor=ID&day=YYYY-MM-DD`),
 * so a reload or a shared link keeps them. */
export function SchedulePage({ session, route }: { session: Session; route: string }) {
  const own = session.user.doctorId;
  const params = new URLSearchParams(route.split('?')[1] ?? '');
  const doctors = useQuery(Doctors, {}, 'doctors');
  const doctorId = own ?? params.get('doctor');
  const day = /^\d{4}-\d{2}-\d{2}$/.test(params.get('day') ?? '') ? params.get('day')! : localDay(new Date());
  const chosen = doctorId ?? doctors.data?.doctors[0]?.id ?? null;
  const show = (doctor: string | null, d: string) =>
    go(`/schedule?${new URLSearchParams({ ...(doctor && !own ? { doctor } : {}), day: d })}`);

  return (
    <section>
      <h1>Schedule</h1>
      <div class="row">
        {!own && (
          <label>
            Doctor
            <select value={chosen ?? ''} onChange={(e) => show(e.currentTarget.value, day)}>
              {doctors.data?.doctors.map((d) => (
                <option value={d.id}>
                  {d.name} ({d.specialization})
                </option>
              ))}
            </select>
          </label>
        )}
        <label>
          Day
          <input type="date" value={day} required onChange={(e) => e.currentTarget.value && show(chosen, e.currentTarget.value)} />
        </label>
      </div>
      <Problem error={doctors.error} />
      {chosen && <DayView doctorId={chosen} day={day} canBook={session.user.role !== 'DOCTOR'} />}
    </section>
  );
}

type Doctor = NonNullable<ResultOf<typeof Day>['doctor']>;
type Appt = Doctor['appointments'][number];

const Book = graphql(`
  mutation Book($input: AppointmentInput!) { bookAppointment(input: $input) { id } }
`);
const SetStatus = graphql(`
  mutation SetStatus($id: ID!, $status: AppointmentStatus!) {
    updateAppointmentStatus(id: $id, status: $status) { id status }
  }
`);
const Move = graphql(`
  mutation Move($id: ID!, $at: String!) { rescheduleAppointment(id: $id, scheduledAt: $at) { id } }
`);

function DayView({ doctorId, day, canBook }: { doctorId: string; day: string; canBook: boolean }) {
  const bounds = dayBounds(day);
  const vars = { id: doctorId, ...bounds };
  const view = useQuery(Day, vars, JSON.stringify(vars));
  const [booking, setBooking] = useState<string | null>(null);
  const [moving, setMoving] = useState<Appt | null>(null);
  const [error, setError] = useState<ApiError | null>(null);

  useEffect(() => subscribe(Changed, {}, (d) => d.appointmentUpdated.doctorId === doctorId && view.reload()), [doctorId, view.reload]);

  const act = async (f: () => Promise<unknown>) => {
    setError(null);
    try {
      await f();
    } catch (err) {
      const e = err as ApiError;
      setError(
        e.code === 'CONFLICT'
          ? new ApiError(`Not booked: ${e.message}. Another desk may have just taken it; the day is up to date again, pick another free slot.`, e.code)
          : e,
      );
    }
    view.reload();
  };

  const doctor = view.data?.doctor;
  if (view.error) return <Problem error={view.error} />;
  if (!doctor) return <p class="quiet">Loading…</p>;
  const gone = booking !== null && !doctor.availableSlots.some((s) => s.start === booking);
  const rows = [
    ...doctor.appointments.filter((a) => a.status !== 'CANCELLED').map((a) => ({ at: a.scheduledAt, appt: a, slot: null })),
    ...doctor.availableSlots.map((s) => ({ at: s.start, appt: null, slot: s })),
  ].sort((a, b) => a.at.localeCompare(b.at));

  return (
    <div>
      <Problem error={error} />
      {gone && (
        <p class="problem" role="alert">
          The {time(booking!)} slot was just taken at another desk. Pick another free slot.{' '}
          <button type="button" class="secondary" onClick={() => setBooking(null)}>
            OK
          </button>
        </p>
      )}
      {moving && (
        <p class="notice">
          Moving {moving.patient.name}'s {time(moving.scheduledAt)} visit: choose a free slot.{' '}
          <button type="button" class="secondary" onClick={() => setMoving(null)}>
            Keep it
          </button>
        </p>
      )}
      {rows.length === 0 && <p class="quiet">No slots on this day.</p>}
      <table class="list day" aria-label={`${doctor.name}'s day`}>
        <tbody>
          {rows.map(({ at, appt, slot }) =>
            appt ? (
              <tr class={`appt ${appt.status.toLowerCase()}`} data-status={appt.status}>
                <td class="time">{time(at)}</td>
                <td>
                  <a href={`#/patients/${appt.patient.id}`}>{appt.patient.name}</a>
                  {appt.reason && <span class="quiet"> · {appt.reason}</span>}
                </td>
                <td>
                  <span class="badge">{label(appt.status)}</span>
                </td>
                <td class="actions">
                  {appt.status === 'BOOKED' && (
                    <>
                      <button type="button" onClick={() => act(() => request(SetStatus, { id: appt.id, status: 'CHECKED_IN' }))}>
                        Check in
                      </button>
                      {canBook && (
                        <button type="button" class="secondary" onClick={() => setMoving(appt)}>
                          Move
                        </button>
                      )}
                      <button type="button" class="secondary" onClick={() => act(() => request(SetStatus, { id: appt.id, status: 'NO_SHOW' }))}>
                        No-show
                      </button>
                    </>
                  )}
                  {appt.status === 'CHECKED_IN' && (
                    <button type="button" onClick={() => act(() => request(SetStatus, { id: appt.id, status: 'COMPLETED' }))}>
                      Complete
                    </button>
                  )}
                  {(appt.status === 'BOOKED' || appt.status === 'CHECKED_IN') && (
                    <button type="button" class="danger" onClick={() => act(() => request(SetStatus, { id: appt.id, status: 'CANCELLED' }))}>
                      Cancel
                    </button>
                  )}
                </td>
              </tr>
            ) : (
              <tr class="free">
                <td class="time">{time(at)}</td>
                <td colSpan={2}>
                  {booking === slot!.start ? (
                    <BookForm
                      onBook={(patientId, reason) =>
                        act(async () => {
                          try {
                            await request(Book, { input: { doctorId, patientId, scheduledAt: slot!.start, reason } });
                          } finally {
                            setBooking(null);
                          }
                        })
                      }
                      onCancel={() => setBooking(null)}
                    />
                  ) : (
                    <span class="quiet">Free</span>
                  )}
                </td>
                <td class="actions">
                  {canBook && booking !== slot!.start && !moving && (
                    <button type="button" onClick={() => setBooking(slot!.start)} aria-label={`Book ${time(at)}`}>
                      Book
                    </button>
                  )}
                  {moving && (
                    <button
                      type="button"
                      onClick={() => {
                        const m = moving;
                        setMoving(null);
                        void act(() => request(Move, { id: m.id, at: slot!.start }));
                      }}
                    >
                      Move here
                    </button>
                  )}
                </td>
              </tr>
            ),
          )}
        </tbody>
      </table>
    </div>
  );
}

const Find = graphql(`
  query FindForBooking($search: String!) { patients(search: $search, limit: 8) { id name mrn dateOfBirth } }
`);

function BookForm({ onBook, onCancel }: { onBook: (patientId: string, reason: string | null) => void; onCancel: () => void }) {
  const [search, setSearch] = useState('');
  const [picked, setPicked] = useState<{ id: string; name: string } | null>(null);
  const [reason, setReason] = useState('');
  const found = useQuery(Find, { search }, search);
  return (
    <form
      class="book"
      aria-label="Book this slot"
      onSubmit={(e) => {
        e.preventDefault();
        if (picked) onBook(picked.id, reason.trim() || null);
      }}
    >
      {picked ? (
        <p>
          Patient: <strong>{picked.name}</strong>{' '}
          <button type="button" class="secondary" onClick={() => setPicked(null)}>
            Change
          </button>
        </p>
      ) : (
        <>
          <label>
            Patient
            <input type="search" autoFocus value={search} placeholder="Name, MRN or phone" onInput={(e) => setSearch(e.currentTarget.value)} />
          </label>
          {search.trim() && (
            <ul class="choices">
              {found.data?.patients.map((p) => (
                <li>
                  <button type="button" class="link" onClick={() => setPicked(p)}>
                    {p.name} · {p.mrn} {p.dateOfBirth ? `· ${p.dateOfBirth}` : ''}
                  </button>
                </li>
              ))}
            </ul>
          )}
        </>
      )}
      <label>
        Reason
        <input value={reason} maxLength={500} onInput={(e) => setReason(e.currentTarget.value)} />
      </label>
      <div class="row">
        <button type="submit" disabled={!picked}>
          Confirm booking
        </button>
        <button type="button" class="secondary" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}
