import { useState } from "preact/hooks";
import { api } from "../api";
import { signOut } from "../app";
import { connect } from "../realtime";
import { setToken } from "../session";
import { useStore } from "../store";
import { WorkspaceSection } from "./workspace";

export function Account() {
  const user = useStore((s) => s.user);
  const tenant = useStore((s) => s.tenant);
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [perm, setPerm] = useState(() =>
    "Notification" in window ? Notification.permission : "unsupported",
  );

  async function submit(e: Event) {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const f = new FormData(form);
    const currentPassword = String(f.get("current") ?? "");
    const newPassword = String(f.get("new") ?? "");
    setError(null);
    setDone(null);
    if (newPassword !== String(f.get("confirm") ?? "")) {
      setError("The new passwords don't match.");
      return;
    }
    setBusy(true);
    try {
      const r = await api.changePassword({ currentPassword, newPassword });
      setToken(r.token);
      connect();
      form.reset();
      setDone("Password changed. Other devices signed in as you have been signed out.");
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  }

  return (
    <div class="page">
      <header class="page-head">
        <h1>Account</h1>
      </header>
      <section class="card" aria-labelledby="me-title">
        <h2 id="me-title">You</h2>
        <dl class="facts">
          <dt>Name</dt>
          <dd>{user?.name}</dd>
          <dt>Email</dt>
          <dd>{user?.email}</dd>
          <dt>Role</dt>
          <dd class="cap">{user?.role}</dd>
          <dt>Workspace</dt>
          <dd>{tenant?.name ?? "…"}</dd>
        </dl>
        <div class="card-actions">
          <button type="button" class="btn" onClick={() => signOut(null)}>
            Sign out
          </button>
        </div>
      </section>
      <section class="card" aria-labelledby="notif-title">
        <h2 id="notif-title">Notifications</h2>
        <p class="muted">
          {perm === "granted"
            ? "This browser shows a notification for new messages while the inbox tab is in the background."
            : perm === "denied"
              ? "Notifications are blocked for this site in the browser's settings."
              : perm === "unsupported"
                ? "This browser does not support notifications."
                : "Get a notification for new messages while the inbox tab is in the background."}
        </p>
        {perm === "default" && (
          <button
            type="button"
            class="btn"
            onClick={() => void Notification.requestPermission().then((p) => setPerm(p))}
          >
            Enable notifications
          </button>
        )}
      </section>
      <section class="card" aria-labelledby="pw-title">
        <h2 id="pw-title">Change password</h2>
        <form class="form" onSubmit={submit}>
          <label class="field">
            <span>Current password</span>
            <input name="current" type="password" required autoComplete="current-password" />
          </label>
          <label class="field">
            <span>New password</span>
            <input name="new" type="password" required minLength={8} autoComplete="new-password" />
          </label>
          <label class="field">
            <span>Repeat the new password</span>
            <input
              name="confirm"
              type="password"
              required
              minLength={8}
              autoComplete="new-password"
            />
          </label>
          {error && (
            <p class="form-error" role="alert">
              {error}
            </p>
          )}
          {done && (
            <p class="notice" role="status">
              {done}
            </p>
          )}
          <div>
            <button type="submit" class="btn btn-primary" disabled={busy}>
              Change password
            </button>
          </div>
        </form>
      </section>
      {user?.role === "owner" && <WorkspaceSection />}
    </div>
  );
}
