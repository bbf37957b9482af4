//! Sign-in with the node's accounts.

import { useState } from 'preact/hooks';
import { login, type Session } from '../session';
import { ApiError } from '../graphql';
import { Problem } from '../lib';

export function LoginPage({ notice, onLogin }: { notice: string | null; onLogin: (s: Session) => void }) {
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget as HTMLFormElement);
    setBusy(true);
    setError(null);
    try {
      onLogin(await login(String(form.get('username')), String(form.get('password'))));
    } catch (err) {
      setError(err as ApiError);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="login">
      <h1>HealSync</h1>
      <p>Sign in to this clinic.</p>
      {notice && <p class="notice">{notice}</p>}
      <form onSubmit={submit}>
        <label>
          User name
          <input name="username" autoComplete="username" required autoFocus />
        </label>
        <label>
          Password
          <input name="password" type="password" autoComplete="current-password" required />
        </label>
        <Problem error={error} />
        <button type="submit" disabled={busy}>
          Sign in
        </button>
      </form>
    </main>
  );
}
