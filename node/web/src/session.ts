//! The signed-in session: kept in this tab's sessionStorage (it survives a reload, and
//! closing the tab on a shared clinic computer ends it), ended by logout, by the node,
//! or after IDLE_MINUTES without a key press or a click.

import { graphql, request, setToken } from './graphql';

export type Role = 'PATIENT' | 'DOCTOR' | 'RECEPTIONIST' | 'ADMIN' | 'FINANCE';

export interface Session {
  token: string;
  expiresAt: string;
  user: { id: string; username: string; role: Role; patientId: string | null; doctorId: string | null };
}

export const IDLE_MINUTES = 15;
const KEY = 'healsync.session';

export function load(): Session | null {
  try {
    const s = JSON.parse(sessionStorage.getItem(KEY) ?? 'null') as Session | null;
    if (s && new Date(s.expiresAt).getTime() > Date.now()) return s;
  } catch {
    /* a damaged entry is no session */
  }
  sessionStorage.removeItem(KEY);
  return null;
}

export function save(s: Session | null): void {
  if (s) sessionStorage.setItem(KEY, JSON.stringify(s));
  else sessionStorage.removeItem(KEY);
}

const Login = graphql(`
  mutation Login($username: String!, $password: String!) {
    login(username: $username, password: $password) {
      token
      expiresAt
      user { id username role patientId doctorId }
    }
  }
`);

export async function login(username: string, password: string): Promise<Session> {
  setToken(null);
  const { login } = await request(Login, { username, password });
  return login as Session;
}

const Logout = graphql(`mutation Logout { logout }`);

/** Ends the session at the node (best effort: the token is forgotten here either way). */
export async function logout(): Promise<void> {
  try {
    await request(Logout, {});
  } catch {
    /* the node may be gone or the session already over */
  }
  setToken(null);
  save(null);
}

export const isStaff = (r: Role) => r === 'ADMIN' || r === 'RECEPTIONIST' || r === 'DOCTOR';
export const isCashier = (r: Role) => r === 'ADMIN' || r === 'RECEPTIONIST';
export const isClinician = (r: Role) => r === 'DOCTOR';
