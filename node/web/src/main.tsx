//! The clinic web app: the session, the shell (navigation, sync banner, notification
//! bell) and the screens, routed by the URL's hash.

import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import './app.css';
import { setToken } from './graphql';
import { IDLE_MINUTES, isCashier, isStaff, load, logout, save, type Session } from './session';
import { go, useRoute } from './lib';
import { LoginPage } from './pages/Login';
import { PatientsPage } from './pages/Patients';
import { PatientPage } from './pages/Patient';
import { SchedulePage } from './pages/Schedule';
import { BillingPage } from './pages/Billing';
import { ConflictsPage } from './pages/Conflicts';
import { SyncBanner } from './pages/SyncBanner';
import { Bell } from './pages/Bell';

function App() {
  const [session, setSession] = useState<Session | null>(() => {
    const s = load();
    setToken(s?.token ?? null);
    return s;
  });
  const [notice, setNotice] = useState<string | null>(null);
  const route = useRoute();

  const end = (why: string | null) => {
    setToken(null);
    save(null);
    setSession(null);
    setNotice(why);
  };

  useEffect(() => {
    if (!session) return;
    setToken(session.token, () => end('Your session ended. Please sign in again.'));
    let timer = 0;
    const idle = () => {
      clearTimeout(timer);
      timer = window.setTimeout(() => {
        void logout().then(() => end(`Signed out after ${IDLE_MINUTES} minutes without activity.`));
      }, IDLE_MINUTES * 60_000);
    };
    idle();
    const events = ['keydown', 'pointerdown'] as const;
    events.forEach((e) => addEventListener(e, idle));
    return () => {
      clearTimeout(timer);
      events.forEach((e) => removeEventListener(e, idle));
    };
  }, [session]);

  if (!session) {
    return (
      <LoginPage
        notice={notice}
        onLogin={(s) => {
          save(s);
          setToken(s.token);
          setNotice(null);
          setSession(s);
          go(home(s));
        }}
      />
    );
  }

  const role = session.user.role;
  const links: [string, string][] = isStaff(role)
    ? [
        ['/patients', 'Patients'],
        ['/schedule', 'Schedule'],
        ...(isCashier(role) ? ([['/billing', 'Billing'], ['/conflicts', 'Conflicts']] as [string, string][]) : []),
      ]
    : [[home(session), 'My record']];

  return (
    <>
      <header class="top">
        <strong class="brand">HealSync</strong>
        <nav aria-label="Main">
          {links.map(([href, text]) => (
            <a href={`#${href}`} aria-current={route.startsWith(href) ? 'page' : undefined}>
              {text}
            </a>
          ))}
        </nav>
        <span class="spacer" />
        <Bell session={session} />
        <span class="who">
          {session.user.username} · {role.toLowerCase()}
        </span>
        <button type="button" onClick={() => void logout().then(() => end(null))}>
          Sign out
        </button>
      </header>
      {isStaff(role) && <SyncBanner />}
      <main>{screen(route, session)}</main>
    </>
  );
}

function home(s: Session): string {
  if (s.user.role === 'PATIENT') return `/patients/${s.user.patientId ?? ''}`;
  return s.user.role === 'DOCTOR' ? '/schedule' : '/patients';
}

function screen(route: string, session: Session) {
  const role = session.user.role;
  const patient = /^\/patients\/([^/]+)$/.exec(route);
  if (patient) return <PatientPage id={decodeURIComponent(patient[1])} session={session} />;
  if (isStaff(role)) {
    if (route.startsWith('/patients')) return <PatientsPage session={session} />;
    if (route.startsWith('/schedule')) return <SchedulePage session={session} route={route} />;
    if (isCashier(role) && route.startsWith('/billing')) return <BillingPage />;
    if (isCashier(role) && route.startsWith('/conflicts')) return <ConflictsPage />;
  }
  go(home(session));
  return null;
}

render(<App />, document.getElementById('app')!);
