// The "API & webhooks" page (owners and admins): the workspace's API keys and its webhook
// endpoints (docs/WEBHOOKS.md). A key or a signing secret is shown once, right after it was
// made; the server keeps only a hash of a key.

import { useEffect, useState } from "preact/hooks";
import { api } from "../api";
import { useStore } from "../store";
import type { ApiKey, ApiScope } from "../types";
import { Confirm } from "./dialog";
import { SecretDialog, when } from "./secret";
import { WebhooksSection } from "./webhooks";

export const SCOPES: { scope: ApiScope; help: string }[] = [
  {
    scope: "conversations:read",
    help: "List and read conversations, messages, search, the event log and labels",
  },
  { scope: "messages:send", help: "Start conversations and send messages" },
  { scope: "webhooks:manage", help: "Create and change webhook endpoints" },
  { scope: "team:read", help: "List the team's members" },
];

export function Developers() {
  const role = useStore((s) => s.user?.role);
  const manager = role === "owner" || role === "admin";
  return (
    <div class="page">
      <header class="page-head">
        <h1>API &amp; webhooks</h1>
        <p class="muted">
          Connect your other tools to this inbox: programs call the API with an API key, and webhook
          endpoints receive the workspace's events as they happen, signed in the Standard Webhooks
          format.
        </p>
      </header>
      {manager ? (
        <>
          <ApiKeysSection />
          <WebhooksSection />
        </>
      ) : (
        <section class="card" aria-labelledby="dev-denied">
          <h2 id="dev-denied">Ask an admin</h2>
          <p class="muted">
            Only owners and admins can manage API keys and webhooks. Ask an owner or admin of your
            workspace if a tool needs access to the inbox.
          </p>
        </section>
      )}
    </div>
  );
}

function isExpired(k: ApiKey): boolean {
  return k.expiresAt !== null && new Date(k.expiresAt).getTime() <= Date.now();
}

function ApiKeysSection() {
  const [keys, setKeys] = useState<ApiKey[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [created, setCreated] = useState<{ key: string; apiKey: ApiKey } | null>(null);
  const [revoking, setRevoking] = useState<ApiKey | null>(null);
  const [revokeError, setRevokeError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const team = useStore((s) => s.team);

  useEffect(() => {
    api.apiKeys().then(
      (p) => setKeys(p.items),
      (e) => setError((e as Error).message),
    );
  }, []);

  async function revoke(k: ApiKey) {
    setBusy(true);
    setRevokeError(null);
    try {
      await api.revokeApiKey(k.id);
      setKeys((ks) => ks?.filter((x) => x.id !== k.id) ?? null);
      setRevoking(null);
    } catch (e) {
      setRevokeError((e as Error).message);
    } finally {
      setBusy(false);
    }
  }

  const creator = (id: string | null) => (id ? team.find((u) => u.id === id)?.name : undefined);

  return (
    <section class="card" aria-labelledby="keys-title">
      <h2 id="keys-title">API keys {keys && <span class="count">{keys.length}</span>}</h2>
      <p class="muted">
        A program sends its key as <code>Authorization: Bearer aez_…</code>. A key reaches only this
        workspace, and only what its scopes allow; it can never manage the team, passwords or other
        keys.
      </p>
      {error && (
        <p class="form-error" role="alert">
          {error}
        </p>
      )}
      {keys === null && !error && <p class="muted">Loading…</p>}
      {keys?.length === 0 && <p class="muted">No API keys yet.</p>}
      {keys && keys.length > 0 && (
        <ul class="rows dev-list" aria-label="API keys">
          {keys.map((k) => (
            <li key={k.id} class="row dev-item" data-key={k.name} data-prefix={k.prefix}>
              <div class="row-main dev-main">
                <span class="dev-name">
                  {k.name}
                  {isExpired(k) && <span class="tag tag-bad">Expired</span>}
                </span>
                <code class="dev-code">{k.prefix}…</code>
                <ul class="scope-list" aria-label={`Scopes of ${k.name}`}>
                  {k.scopes.map((s) => (
                    <li key={s} class="scope">
                      {s}
                    </li>
                  ))}
                </ul>
                <dl class="meta">
                  <div>
                    <dt>Created</dt>
                    <dd>
                      {when(k.createdAt)}
                      {creator(k.createdBy) && ` by ${creator(k.createdBy)}`}
                    </dd>
                  </div>
                  <div>
                    <dt>Last used</dt>
                    <dd>{when(k.lastUsedAt, "Never")}</dd>
                  </div>
                  <div>
                    <dt>Expires</dt>
                    <dd>{when(k.expiresAt, "Never")}</dd>
                  </div>
                </dl>
              </div>
              <div class="row-actions">
                <button
                  type="button"
                  class="btn btn-sm btn-danger-outline"
                  onClick={() => {
                    setRevokeError(null);
                    setRevoking(k);
                  }}
                >
                  Revoke<span class="sr-only"> the key {k.name}</span>
                </button>
              </div>
            </li>
          ))}
        </ul>
      )}
      <CreateKeyForm
        onCreated={(r) => {
          setKeys((ks) => [...(ks ?? []), r.apiKey]);
          setCreated(r);
        }}
      />
      {created && (
        <SecretDialog
          title="Your new API key"
          label="API key"
          secret={created.key}
          onClose={() => setCreated(null)}
        >
          <p>
            The key <strong>{created.apiKey.name}</strong> can:{" "}
            {created.apiKey.scopes.join(", ") || "nothing yet"}.
          </p>
        </SecretDialog>
      )}
      {revoking && (
        <Confirm
          title={`Revoke the key ${revoking.name}?`}
          confirm="Revoke"
          danger
          busy={busy}
          error={revokeError}
          onClose={() => setRevoking(null)}
          onConfirm={() => void revoke(revoking)}
        >
          <p>
            Programs using <code>{revoking.prefix}…</code> are refused from their next request. This
            cannot be undone: a program that still needs access needs a new key.
          </p>
        </Confirm>
      )}
    </section>
  );
}

/** The end of the chosen day, in the browser's time zone, as RFC 3339. */
function endOfDay(date: string): string {
  const [y, m, d] = date.split("-").map(Number);
  return new Date(y, m - 1, d, 23, 59, 59).toISOString();
}

function today(): string {
  const t = new Date();
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${t.getFullYear()}-${pad(t.getMonth() + 1)}-${pad(t.getDate())}`;
}

function CreateKeyForm(props: { onCreated: (r: { key: string; apiKey: ApiKey }) => void }) {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: Event) {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const f = new FormData(form);
    const name = String(f.get("name") ?? "").trim();
    const scopes = f.getAll("scope").map(String) as ApiScope[];
    const expires = String(f.get("expires") ?? "");
    setError(null);
    if (scopes.length === 0) {
      setError("Choose at least one scope: a key without scopes can do nothing.");
      return;
    }
    setBusy(true);
    try {
      const r = await api.createApiKey({
        name,
        scopes,
        ...(expires ? { expiresAt: endOfDay(expires) } : {}),
      });
      form.reset();
      props.onCreated(r);
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form class="form form-grid dev-form" aria-labelledby="new-key-title" onSubmit={submit}>
      <h3 id="new-key-title" class="span-all">
        Create an API key
      </h3>
      <label class="field">
        <span>Key name</span>
        <input name="name" required maxLength={100} autoComplete="off" placeholder="CRM sync" />
      </label>
      <label class="field">
        <span>
          Expires on <span class="muted">(optional)</span>
        </span>
        <input name="expires" type="date" min={today()} />
      </label>
      <fieldset class="checks span-all">
        <legend>Scopes</legend>
        {SCOPES.map(({ scope, help }) => (
          <label key={scope} class="check">
            <input type="checkbox" name="scope" value={scope} />
            <span class="check-text">
              <code>{scope}</code>
              <span class="muted small check-help">{help}</span>
            </span>
          </label>
        ))}
      </fieldset>
      {error && (
        <p class="form-error span-all" role="alert">
          {error}
        </p>
      )}
      <div class="span-all">
        <button type="submit" class="btn btn-primary" disabled={busy}>
          Create key
        </button>
      </div>
    </form>
  );
}
