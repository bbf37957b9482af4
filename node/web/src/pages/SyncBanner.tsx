//! The node's sync with the hub, always in view for staff: reachable or not, the last
//! completed sync, changes waiting, held back or refused, open conflicts. Asked again
//! every few seconds (the node learns about the hub only when a round runs).

import { useEffect } from 'preact/hooks';
import { graphql } from '../graphql';
import { dateTime, useQuery } from '../lib';

const Status = graphql(`
  query SyncStatus {
    syncStatus {
      hub hubReachable lastSyncAt lastError
      changesWaiting changesHeld changesRefused openConflicts
    }
  }
`);

export const POLL_MS = 3000;

export function SyncBanner() {
  const status = useQuery(Status, {}, 'sync');
  useEffect(() => {
    const t = setInterval(status.reload, POLL_MS);
    return () => clearInterval(t);
  }, [status.reload]);
  if (status.error) {
    return (
      <div class="banner offline" role="status" data-state="server-unreachable">
        The clinic server is not answering: {status.error.message}
      </div>
    );
  }
  const s = status.data?.syncStatus;
  if (!s) return null;
  const last = s.lastSyncAt ? `last synced ${dateTime(s.lastSyncAt)}` : 'never synced';
  const waiting = `${s.changesWaiting} change${s.changesWaiting === 1 ? '' : 's'} waiting`;
  const extra = [
    s.changesHeld ? `${s.changesHeld} held back` : '',
    s.changesRefused ? `${s.changesRefused} refused by the hub` : '',
    s.openConflicts ? `${s.openConflicts} conflict${s.openConflicts === 1 ? '' : 's'} to resolve` : '',
  ].filter(Boolean);
  let state: string;
  let text: string;
  if (!s.hub) {
    state = 'standalone';
    text = 'This clinic works on its own (not connected to a central hub).';
  } else if (s.hubReachable === false) {
    state = 'hub-unreachable';
    text = `Hub unreachable — working offline; nothing is lost. ${waiting}, ${last}.`;
  } else if (s.hubReachable === true) {
    state = 'hub-reachable';
    text = `Hub connected — ${last}; ${waiting}.`;
  } else {
    state = 'hub-unknown';
    text = `Connecting to the hub… ${waiting}, ${last}.`;
  }
  return (
    <div class={`banner ${state}`} role="status" data-state={state} title={s.lastError ?? undefined}>
      {text}
      {extra.length > 0 && <strong> {extra.join(' · ')}</strong>}
      {s.openConflicts > 0 && <a href="#/conflicts"> Review</a>}
    </div>
  );
}
