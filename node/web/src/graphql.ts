//! The app's one way to the node: typed GraphQL documents (gql.tada, checked against
//! schema/healsync.graphql at build time), queries and mutations over HTTP, and
//! subscriptions over one graphql-ws WebSocket per session.

import { initGraphQLTada, type TadaDocumentNode } from 'gql.tada';
import { print } from '@0no-co/graphql.web';
import { createClient, type Client } from 'graphql-ws';
import type { introspection } from './graphql-env.d.ts';

export const graphql = initGraphQLTada<{ introspection: introspection }>();
export type { ResultOf, VariablesOf } from 'gql.tada';

/** A GraphQL error as the node sends it: a message and a contract code. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

let token: string | null = null;
let onSessionEnded: () => void = () => {};
let ws: Client | null = null;

export function setToken(t: string | null, ended?: () => void): void {
  token = t;
  if (ended) onSessionEnded = ended;
  // dispose() waits for a connection still being made, and rejects if that one fails:
  // the old socket is being thrown away, so its failure is nobody's concern.
  if (ws) Promise.resolve(ws.dispose()).catch(() => {});
  ws = null;
}

const texts = new WeakMap<object, string>();
function text(doc: object): string {
  let t = texts.get(doc);
  if (!t) {
    t = print(doc as Parameters<typeof print>[0]);
    texts.set(doc, t);
  }
  return t;
}

/** Runs a query or mutation; throws an [`ApiError`] for the first error. */
export async function request<R, V>(doc: TadaDocumentNode<R, V>, variables: V): Promise<R> {
  let resp: Response;
  try {
    resp = await fetch('/graphql', {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/graphql-response+json, application/json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: JSON.stringify({ query: text(doc), variables }),
    });
  } catch {
    throw new ApiError('The clinic server cannot be reached. Check the network cable or Wi-Fi.', 'NETWORK');
  }
  let body: { data?: R; errors?: { message: string; extensions?: { code?: string } }[] };
  try {
    body = await resp.json();
  } catch {
    throw new ApiError(`The clinic server answered ${resp.status}.`, 'INTERNAL');
  }
  const first = body.errors?.[0];
  if (first) {
    const code = first.extensions?.code ?? 'INTERNAL';
    if (code === 'UNAUTHENTICATED' && token) onSessionEnded();
    throw new ApiError(first.message, code);
  }
  if (!body.data) throw new ApiError('The clinic server sent no data.', 'INTERNAL');
  return body.data;
}

function socket(): Client {
  if (!ws) {
    const proto = location.protocol === 'https:' ? 'wss' : 'ws';
    ws = createClient({
      url: `${proto}://${location.host}/graphql`,
      connectionParams: () => ({ Authorization: `Bearer ${token ?? ''}` }),
      lazy: true,
      retryAttempts: Infinity,
      shouldRetry: () => true,
      retryWait: async (n) => new Promise((r) => setTimeout(r, Math.min(1000 * 2 ** n, 15000))),
      on: {
        closed: (e) => {
          if ((e as CloseEvent | undefined)?.code === 4401) onSessionEnded();
        },
      },
    });
  }
  return ws;
}

/** Subscribes; returns the function that stops it. */
export function subscribe<R, V>(
  doc: TadaDocumentNode<R, V>,
  variables: V,
  next: (data: R) => void,
): () => void {
  return socket().subscribe<R>(
    { query: text(doc), variables: variables as Record<string, unknown> },
    {
      next: (v) => {
        if (v.data) next(v.data as R);
      },
      error: () => {},
      complete: () => {},
    },
  );
}
