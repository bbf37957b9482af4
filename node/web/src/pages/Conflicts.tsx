//! Fields edited differently at two places: a person compares the values and keeps
//! one. New conflicts appear live (`conflictRaised`).

import { useEffect, useState } from 'preact/hooks';
import { graphql, request, subscribe, ApiError } from '../graphql';
import { Problem, useQuery } from '../lib';

const List = graphql(`
  query Conflicts { conflicts(limit: 100) { recordId kind field values } }
`);
const Raised = graphql(`
  subscription ConflictRaised { conflictRaised { recordId } }
`);
const Resolve = graphql(`
  mutation Resolve($recordId: ID!, $field: String!, $value: String!) {
    resolveConflict(recordId: $recordId, field: $field, value: $value)
  }
`);

export function ConflictsPage() {
  const list = useQuery(List, {}, 'conflicts');
  const [error, setError] = useState<ApiError | null>(null);
  useEffect(() => subscribe(Raised, {}, () => list.reload()), [list.reload]);
  const keep = async (recordId: string, field: string, value: string) => {
    setError(null);
    try {
      await request(Resolve, { recordId, field, value });
    } catch (err) {
      setError(err as ApiError);
    }
    list.reload();
  };
  const conflicts = list.data?.conflicts ?? [];
  return (
    <section>
      <h1>Conflicts</h1>
      <p class="quiet">The same field was changed differently at two places while they could not reach each other. Keep the right value.</p>
      <Problem error={error ?? list.error} />
      {conflicts.length === 0 && <p>No open conflicts.</p>}
      {conflicts.map((c) => (
        <div class="panel">
          <h3>
            {c.kind} · {c.field} <span class="quiet">{c.recordId}</span>
          </h3>
          <ul class="values">
            {c.values.map((v) => (
              <li>
                <code>{v}</code>{' '}
                <button type="button" onClick={() => void keep(c.recordId, c.field, v)}>
                  Keep this
                </button>
              </li>
            ))}
          </ul>
        </div>
      ))}
    </section>
  );
}
