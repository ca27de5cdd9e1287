import { useState } from "preact/hooks";
import { api } from "../api";
import { onLinkClick } from "../router";
import { takeFlash } from "../session";
import type { Tenant, User } from "../types";

export function AuthPage(props: {
  mode: "signin" | "signup";
  onSignedIn: (token: string, user: User, tenant?: Tenant) => void;
}) {
  const signup = props.mode === "signup";
  const [flash] = useState(() => takeFlash());
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: Event) {
    e.preventDefault();
    const form = new FormData(e.currentTarget as HTMLFormElement);
    const v = (k: string) => String(form.get(k) ?? "");
    setBusy(true);
    setError(null);
    try {
      if (signup) {
        const r = await api.register({
          tenantName: v("tenantName"),
          name: v("name"),
          email: v("email"),
          password: v("password"),
        });
        props.onSignedIn(r.token, r.user, r.tenant);
      } else {
        const r = await api.login({ email: v("email"), password: v("password") });
        props.onSignedIn(r.token, r.user);
      }
    } catch (err) {
      setError((err as Error).message);
      setBusy(false);
    }
  }

  return (
    <main class="auth">
      <div class="auth-card">
        <div class="brand">
          <span class="brand-mark" aria-hidden="true">
            A
          </span>
          <span class="brand-name">AEZEN</span>
        </div>
        <h1>{signup ? "Create your workspace" : "Sign in to your inbox"}</h1>
        <p class="muted">
          {signup
            ? "One workspace per brand or client. You'll link its WhatsApp number next."
            : "Answer your team's WhatsApp chats together."}
        </p>
        {flash && (
          <p class="notice" role="status">
            {flash}
          </p>
        )}
        <form onSubmit={submit} class="form" noValidate>
          {signup && (
            <>
              <label class="field">
                <span>Workspace name</span>
                <input name="tenantName" required autoComplete="organization" />
              </label>
              <label class="field">
                <span>Your name</span>
                <input name="name" required autoComplete="name" />
              </label>
            </>
          )}
          <label class="field">
            <span>Email</span>
            <input name="email" type="email" required autoComplete="email" />
          </label>
          <label class="field">
            <span>Password</span>
            <input
              name="password"
              type="password"
              required
              minLength={signup ? 8 : undefined}
              autoComplete={signup ? "new-password" : "current-password"}
            />
            {signup && <small class="muted">At least 8 characters.</small>}
          </label>
          {error && (
            <p class="form-error" role="alert">
              {error}
            </p>
          )}
          <button type="submit" class="btn btn-primary btn-block" disabled={busy}>
            {busy ? "Please wait…" : signup ? "Create workspace" : "Sign in"}
          </button>
        </form>
        <p class="auth-switch">
          {signup ? "Already have an account? " : "New to AEZEN? "}
          <a
            href={signup ? "/signin" : "/signup"}
            onClick={(e) => onLinkClick(e, signup ? "/signin" : "/signup")}
          >
            {signup ? "Sign in" : "Create a workspace"}
          </a>
        </p>
      </div>
    </main>
  );
}
