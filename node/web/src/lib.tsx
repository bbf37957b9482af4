//! Small helpers every screen shares: loading a query into state, the hash route,
//! and how times and money are shown.

import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import type { TadaDocumentNode } from 'gql.tada';
import { ApiError, request } from './graphql';

export interface Loaded<R> {
  data: R | null;
  error: ApiError | null;
  loading: boolean;
  reload: () => void;
}

/** Runs `doc` now and whenever `key` changes; the latest answer wins. */
export function useQuery<R, V>(doc: TadaDocumentNode<R, V>, variables: V, key: string): Loaded<R> {
  const [state, setState] = useState<{ data: R | null; error: ApiError | null; loading: boolean }>({
    data: null,
    error: null,
    loading: true,
  });
  const turn = useRef(0);
  const vars = useRef(variables);
  vars.current = variables;
  const run = useCallback(() => {
    const mine = ++turn.current;
    setState((s) => ({ ...s, loading: true }));
    request(doc, vars.current).then(
      (data) => mine === turn.current && setState({ data, error: null, loading: false }),
      (error: ApiError) => mine === turn.current && setState({ data: null, error, loading: false }),
    );
  }, [doc, key]);
  useEffect(run, [run]);
  return { ...state, reload: run };
}

/** The current `#/path`, updated on navigation. */
export function useRoute(): string {
  const [route, setRoute] = useState(location.hash.slice(1) || '/');
  useEffect(() => {
    const on = () => setRoute(location.hash.slice(1) || '/');
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

export function go(path: string): void {
  location.hash = path;
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dateTimeFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

export const time = (iso: string) => timeFmt.format(new Date(iso));
export const dateTime = (iso: string) => dateTimeFmt.format(new Date(iso));

/** `YYYY-MM-DD` of a local day. */
export function localDay(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

/** The instants a local day starts and ends, as RFC 3339. */
export function dayBounds(day: string): { from: string; to: string } {
  const start = new Date(`${day}T00:00:00`);
  const end = new Date(start);
  end.setDate(end.getDate() + 1);
  return { from: start.toISOString(), to: end.toISOString() };
}

export const money = (m: { amount: string; currency: string }) => `${m.currency} ${m.amount}`;

/** A refusal or failure, said plainly. */
export function Problem({ error }: { error: ApiError | null }) {
  if (!error) return null;
  return (
    <p class="problem" role="alert">
      {error.message}
    </p>
  );
}

export const label = (s: string) => s.charAt(0) + s.slice(1).toLowerCase().replace(/_/g, ' ');
