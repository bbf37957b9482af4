//! The notification bell: unread notices, new ones pushed by `newNotification`.

import { useEffect, useState } from 'preact/hooks';
import { graphql, request, subscribe } from '../graphql';
import { dateTime, useQuery } from '../lib';
import type { Session } from '../session';

const Unread = graphql(`
  query Unread { notifications(unreadOnly: true, limit: 20) { id title body timestamp } }
`);
const Pushed = graphql(`
  subscription Pushed($userId: ID!) { newNotification(userId: $userId) { id message type timestamp } }
`);
const Read = graphql(`
  mutation MarkRead($id: ID!) { markNotificationRead(id: $id) { id } }
`);

export function Bell({ session }: { session: Session }) {
  const unread = useQuery(Unread, {}, 'bell');
  const [open, setOpen] = useState(false);
  useEffect(() => subscribe(Pushed, { userId: session.user.id }, () => unread.reload()), [session.user.id, unread.reload]);
  const items = unread.data?.notifications ?? [];
  return (
    <div class="bell">
      <button type="button" aria-expanded={open} onClick={() => setOpen(!open)} aria-label={`Notifications: ${items.length} unread`}>
        Notices <span class="count">{items.length}</span>
      </button>
      {open && (
        <ul class="dropdown">
          {items.length === 0 && <li class="quiet">Nothing new.</li>}
          {items.map((n) => (
            <li>
              <strong>{n.title}</strong> <span class="quiet">{dateTime(n.timestamp)}</span>
              <div>{n.body}</div>
              <button type="button" class="link" onClick={() => void request(Read, { id: n.id }).then(unread.reload, unread.reload)}>
                Mark read
              </button>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
