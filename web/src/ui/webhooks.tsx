// Webhook endpoints on the "API & webhooks" page: the list with each endpoint's state and
// cursor, its actions (enable, test, rotate the secret, replay, edit, delete) and its delivery
// log; and the form that adds one. The signing secret is shown once, after creating or rotating.

import { useEffect, useState } from "preact/hooks";
import { api } from "../api";
import type { Delivery, Webhook, WebhookEventName, WebhookState } from "../types";
import { Confirm, Dialog } from "./dialog";
import { SecretDialog, when } from "./secret";

export const WEBHOOK_EVENTS: { name: WebhookEventName; help: string }[] = [
  { name: "incoming_message", help: "A contact wrote to the inbox" },
  { name: "message_sent", help: "The team (or a key) sent a message" },
  { name: "message_status", help: "A sent message was delivered, read or failed" },
  { name: "media_updated", help: "A photo, voice note or file finished downloading (or failed)" },
  {
    name: "conversation_updated",
    help: "Status, assignee, labels or contact name changed",
  },
  { name: "note_added", help: "A private note was added" },
  { name: "mention", help: "A teammate was mentioned in a note" },
  { name: "whatsapp_status", help: "The WhatsApp link connected, dropped or logged out" },
];

const STATE_LABEL: Record<WebhookState, string> = {
  active: "Active",
  failing: "Failing: retrying",
  disabled: "Disabled",
};

const STATE_TONE: Record<WebhookState, string> = {
  active: "ok",
  failing: "busy",
  disabled: "bad",
};

function eventsText(events: string[]): string {
  return events.includes("*") ? "All events" : events.join(", ");
}

export function WebhooksSection() {
  const [hooks, setHooks] = useState<Webhook[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [secret, setSecret] = useState<{ title: string; secret: string; url: string } | null>(null);

  useEffect(() => {
    api.webhooks().then(
      (p) => setHooks(p.items),
      (e) => setError((e as Error).message),
    );
  }, []);

  const replace = (h: Webhook) => setHooks((hs) => hs?.map((x) => (x.id === h.id ? h : x)) ?? hs);

  return (
    <section class="card" aria-labelledby="hooks-title">
      <h2 id="hooks-title">Webhooks {hooks && <span class="count">{hooks.length}</span>}</h2>
      <p class="muted">
        Each endpoint gets the workspace's events one at a time and in order, as a signed{" "}
        <code>POST</code>. An endpoint that does not answer 2xx is retried with growing pauses for
        up to a day, then disabled; enabling it again resumes where it stopped.
      </p>
      {error && (
        <p class="form-error" role="alert">
          {error}
        </p>
      )}
      {hooks === null && !error && <p class="muted">Loading…</p>}
      {hooks?.length === 0 && <p class="muted">No webhook endpoints yet.</p>}
      {hooks && hooks.length > 0 && (
        <ul class="hooks" aria-label="Webhook endpoints">
          {hooks.map((h) => (
            <WebhookItem
              key={h.id}
              hook={h}
              onChange={replace}
              onDeleted={() => setHooks((hs) => hs?.filter((x) => x.id !== h.id) ?? hs)}
              onSecret={(s, webhook) => {
                replace(webhook);
                setSecret({ title: "The new signing secret", secret: s, url: webhook.url });
              }}
            />
          ))}
        </ul>
      )}
      <CreateWebhookForm
        onCreated={(r) => {
          setHooks((hs) => [...(hs ?? []), r.webhook]);
          setSecret({
            title: "The endpoint's signing secret",
            secret: r.secret,
            url: r.webhook.url,
          });
        }}
      />
      {secret && (
        <SecretDialog
          title={secret.title}
          label="Signing secret"
          secret={secret.secret}
          onClose={() => setSecret(null)}
        >
          <p>
            Deliveries to <span class="dev-url">{secret.url}</span> are signed with this secret.
            Give it to the receiver, which checks the <code>webhook-signature</code> header with it
            (any Standard Webhooks library does).
          </p>
        </SecretDialog>
      )}
    </section>
  );
}

/** "All events" or a chosen few: a radio pair and, for the few, a checkbox each. */
function EventsField(props: { initial: string[]; idPrefix: string }) {
  const [all, setAll] = useState(props.initial.includes("*"));
  const chosen = new Set(props.initial);
  return (
    <fieldset class="checks span-all">
      <legend>Events</legend>
      <label class="check">
        <input
          type="radio"
          name="eventsMode"
          value="all"
          checked={all}
          onChange={() => setAll(true)}
        />
        <span>All events</span>
      </label>
      <label class="check">
        <input
          type="radio"
          name="eventsMode"
          value="some"
          checked={!all}
          onChange={() => setAll(false)}
        />
        <span>Only the events chosen here</span>
      </label>
      {!all && (
        <div class="checks-nested" id={`${props.idPrefix}-events`}>
          {WEBHOOK_EVENTS.map(({ name, help }) => (
            <label key={name} class="check">
              <input type="checkbox" name="event" value={name} defaultChecked={chosen.has(name)} />
              <span class="check-text">
                <code>{name}</code>
                <span class="muted small check-help">{help}</span>
              </span>
            </label>
          ))}
        </div>
      )}
    </fieldset>
  );
}

/** The events the form chose, or an error for a person. */
function readEvents(f: FormData): string[] | string {
  if (f.get("eventsMode") !== "some") return ["*"];
  const events = f.getAll("event").map(String);
  return events.length ? events : "Choose at least one event, or All events.";
}

function CreateWebhookForm(props: {
  onCreated: (r: { webhook: Webhook; secret: string }) => void;
}) {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [generation, setGeneration] = useState(0);

  async function submit(e: Event) {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const f = new FormData(form);
    const events = readEvents(f);
    setError(null);
    if (typeof events === "string") {
      setError(events);
      return;
    }
    const description = String(f.get("description") ?? "").trim();
    setBusy(true);
    try {
      const r = await api.createWebhook({
        url: String(f.get("url") ?? "").trim(),
        events,
        ...(description ? { description } : {}),
      });
      form.reset();
      setGeneration((g) => g + 1);
      props.onCreated(r);
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form
      key={generation}
      class="form form-grid dev-form"
      aria-labelledby="new-hook-title"
      onSubmit={submit}
    >
      <h3 id="new-hook-title" class="span-all">
        Add a webhook endpoint
      </h3>
      <label class="field span-all">
        <span>Endpoint URL</span>
        <input
          name="url"
          type="url"
          required
          autoComplete="off"
          spellcheck={false}
          placeholder="https://example.com/hooks/aezen"
        />
      </label>
      <label class="field span-all">
        <span>
          Description <span class="muted">(optional)</span>
        </span>
        <input name="description" maxLength={200} autoComplete="off" placeholder="CRM sync" />
      </label>
      <EventsField initial={["*"]} idPrefix="new-hook" />
      {error && (
        <p class="form-error span-all" role="alert">
          {error}
        </p>
      )}
      <div class="span-all">
        <button type="submit" class="btn btn-primary" disabled={busy}>
          Add endpoint
        </button>
      </div>
    </form>
  );
}

type TestOutcome = { delivery: Delivery } | { error: string };

function testSummary(d: Delivery): { ok: boolean; text: string } {
  const ok = d.statusCode !== null && d.statusCode >= 200 && d.statusCode < 300;
  const status = d.statusCode !== null ? `HTTP ${d.statusCode}` : "no answer";
  const latency = d.latencyMs !== null ? ` in ${d.latencyMs} ms` : "";
  const why = d.error ? `: ${d.error}` : "";
  return {
    ok,
    text: ok
      ? `Test delivered: ${status}${latency}.`
      : `Test failed: ${status}${latency}${why}.`.replace(/\.\.$/, "."),
  };
}

function WebhookItem(props: {
  hook: Webhook;
  onChange: (h: Webhook) => void;
  onDeleted: () => void;
  onSecret: (secret: string, h: Webhook) => void;
}) {
  const h = props.hook;
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [test, setTest] = useState<TestOutcome | null>(null);
  const [dialog, setDialog] = useState<"rotate" | "replay" | "delete" | null>(null);
  const [dialogError, setDialogError] = useState<string | null>(null);
  const [editing, setEditing] = useState(false);
  const [logOpen, setLogOpen] = useState(false);
  const [logVersion, setLogVersion] = useState(0);

  async function run<T>(action: () => Promise<T>, inDialog = false): Promise<T | undefined> {
    setBusy(true);
    if (inDialog) setDialogError(null);
    else setError(null);
    try {
      return await action();
    } catch (e) {
      if (inDialog) setDialogError((e as Error).message);
      else setError((e as Error).message);
      return undefined;
    } finally {
      setBusy(false);
    }
  }

  async function setEnabled(enabled: boolean) {
    setNotice(null);
    const updated = await run(() => api.updateWebhook(h.id, { enabled }));
    if (updated) props.onChange(updated);
  }

  async function sendTest() {
    setNotice(null);
    setTest(null);
    setBusy(true);
    setError(null);
    try {
      setTest({ delivery: await api.testWebhook(h.id) });
    } catch (e) {
      setTest({ error: (e as Error).message });
    } finally {
      setBusy(false);
      setLogVersion((v) => v + 1);
    }
  }

  async function rotate(e: Event) {
    e.preventDefault();
    const hours = Number(new FormData(e.currentTarget as HTMLFormElement).get("overlap") ?? 24);
    const r = await run(() => api.rotateWebhookSecret(h.id, Math.round(hours * 3600)), true);
    if (r) {
      setDialog(null);
      props.onSecret(r.secret, r.webhook);
    }
  }

  async function replay(e: Event) {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    const fromSeq = Number(f.get("fromSeq"));
    const to = String(f.get("toSeq") ?? "").trim();
    const body = to ? { fromSeq, toSeq: Number(to) } : { fromSeq };
    if (to && Number(to) < fromSeq) {
      setDialogError("The last event must not come before the first.");
      return;
    }
    const r = await run(async () => (await api.replayWebhook(h.id, body)) ?? body, true);
    if (r) {
      setDialog(null);
      setNotice(
        `Replaying events ${r.fromSeq}–${"toSeq" in r && r.toSeq !== undefined ? r.toSeq : "newest"}: they are sent again before the next new event.`,
      );
    }
  }

  async function remove() {
    const r = await run(async () => {
      await api.deleteWebhook(h.id);
      return true;
    }, true);
    if (r) {
      setDialog(null);
      props.onDeleted();
    }
  }

  async function save(e: Event) {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    const events = readEvents(f);
    if (typeof events === "string") {
      setError(events);
      return;
    }
    const updated = await run(() =>
      api.updateWebhook(h.id, {
        url: String(f.get("url") ?? "").trim(),
        events,
        description: String(f.get("description") ?? "").trim(),
      }),
    );
    if (updated) {
      props.onChange(updated);
      setEditing(false);
    }
  }

  async function refreshHook() {
    try {
      props.onChange(await api.webhook(h.id));
    } catch {
      // The log's own error line says the server is unreachable.
    }
  }

  const outcome = test && ("delivery" in test ? testSummary(test.delivery) : null);
  const titleId = `hook-${h.id}`;
  return (
    <li class="hook" data-url={h.url} data-state={h.state} aria-labelledby={titleId}>
      <div class="hook-head">
        <div class="hook-title">
          <h3 id={titleId} class="dev-url">
            {h.url}
          </h3>
          {h.description && <p class="muted">{h.description}</p>}
        </div>
        <label class="switch">
          <input
            type="checkbox"
            role="switch"
            aria-checked={h.enabled}
            checked={h.enabled}
            disabled={busy}
            onChange={(e) => void setEnabled((e.currentTarget as HTMLInputElement).checked)}
          />
          <span>Enabled</span>
        </label>
      </div>
      <p class={`state state-${STATE_TONE[h.state]}`} data-state={h.state}>
        <span class="state-dot" aria-hidden="true" />
        {STATE_LABEL[h.state]}
      </p>
      {h.disabledReason && h.state !== "active" && (
        <p class="muted reason hook-reason">{h.disabledReason}</p>
      )}
      <dl class="meta">
        <div>
          <dt>Events</dt>
          <dd>{eventsText(h.events)}</dd>
        </div>
        <div>
          <dt>Cursor</dt>
          <dd data-cursor={h.cursor ?? ""}>{h.cursor ? `event ${h.cursor}` : "No event yet"}</dd>
        </div>
        {h.state === "failing" && (
          <>
            <div>
              <dt>Failing since</dt>
              <dd>{when(h.failingSince)}</dd>
            </div>
            <div>
              <dt>Next attempt</dt>
              <dd>{when(h.nextAttemptAt)}</dd>
            </div>
          </>
        )}
        {h.previousSecretExpiresAt &&
          new Date(h.previousSecretExpiresAt).getTime() > Date.now() && (
            <div>
              <dt>Old secret valid until</dt>
              <dd>{when(h.previousSecretExpiresAt)}</dd>
            </div>
          )}
        <div>
          <dt>Created</dt>
          <dd>{when(h.createdAt)}</dd>
        </div>
      </dl>
      {editing && (
        <form class="form form-grid hook-edit" aria-label={`Edit ${h.url}`} onSubmit={save}>
          <label class="field span-all">
            <span>Endpoint URL</span>
            <input name="url" type="url" required value={h.url} spellcheck={false} />
          </label>
          <label class="field span-all">
            <span>Description</span>
            <input name="description" maxLength={200} value={h.description ?? ""} />
          </label>
          <EventsField initial={h.events} idPrefix={h.id} />
          <div class="span-all row-actions">
            <button type="submit" class="btn btn-primary btn-sm" disabled={busy}>
              Save
            </button>
            <button type="button" class="btn btn-sm" onClick={() => setEditing(false)}>
              Cancel
            </button>
          </div>
        </form>
      )}
      {error && (
        <p class="form-error" role="alert">
          {error}
        </p>
      )}
      <div class="hook-result" role="status">
        {outcome && (
          <span
            class={outcome.ok ? "result-ok" : "result-bad"}
            data-test-status={
              test && "delivery" in test ? (test.delivery.statusCode ?? "none") : undefined
            }
          >
            {outcome.text}
          </span>
        )}
        {test && "error" in test && <span class="result-bad">{test.error}</span>}
        {notice && <span>{notice}</span>}
      </div>
      <div class="card-actions hook-actions">
        <button type="button" class="btn btn-sm" disabled={busy} onClick={() => void sendTest()}>
          Send test<span class="sr-only"> to {h.url}</span>
        </button>
        <button
          type="button"
          class="btn btn-sm"
          aria-expanded={logOpen}
          aria-controls={`log-${h.id}`}
          onClick={() => setLogOpen((o) => !o)}
        >
          Delivery log<span class="sr-only"> of {h.url}</span>
        </button>
        <button
          type="button"
          class="btn btn-sm"
          onClick={() => {
            setDialogError(null);
            setDialog("replay");
          }}
        >
          Replay…<span class="sr-only"> events to {h.url}</span>
        </button>
        <button
          type="button"
          class="btn btn-sm"
          onClick={() => {
            setDialogError(null);
            setDialog("rotate");
          }}
        >
          Rotate secret…<span class="sr-only"> of {h.url}</span>
        </button>
        <button type="button" class="btn btn-sm" onClick={() => setEditing((v) => !v)}>
          Edit<span class="sr-only"> {h.url}</span>
        </button>
        <button
          type="button"
          class="btn btn-sm btn-danger-outline"
          onClick={() => {
            setDialogError(null);
            setDialog("delete");
          }}
        >
          Delete<span class="sr-only"> {h.url}</span>
        </button>
      </div>
      {logOpen && (
        <DeliveryLog
          id={`log-${h.id}`}
          hook={h}
          version={logVersion}
          onRefresh={() => void refreshHook()}
        />
      )}
      {dialog === "rotate" && (
        <Dialog title="Rotate the signing secret" onClose={() => setDialog(null)}>
          <form class="form" onSubmit={rotate}>
            <div class="dialog-body">
              <p>
                A new secret is made and shown once. For the overlap, every delivery is signed with
                both the new and the old secret, so the receiver can switch when it is ready.
              </p>
            </div>
            <label class="field">
              <span>Keep the old secret valid for (hours)</span>
              <input
                name="overlap"
                type="number"
                min={0}
                max={168}
                step={1}
                defaultValue="24"
                required
              />
            </label>
            {dialogError && (
              <p class="form-error" role="alert">
                {dialogError}
              </p>
            )}
            <div class="dialog-actions">
              <button type="button" class="btn" onClick={() => setDialog(null)}>
                Cancel
              </button>
              <button type="submit" class="btn btn-primary" disabled={busy}>
                Rotate secret
              </button>
            </div>
          </form>
        </Dialog>
      )}
      {dialog === "replay" && (
        <Dialog title="Replay events" onClose={() => setDialog(null)}>
          <form class="form" onSubmit={replay}>
            <div class="dialog-body">
              <p>
                Sends a range of the event log to this endpoint again, with the same{" "}
                <code>webhook-id</code>s, before its next new event.
              </p>
            </div>
            <div class="field-pair">
              <label class="field">
                <span>From event (seq)</span>
                <input name="fromSeq" type="number" min={0} step={1} required />
              </label>
              <label class="field">
                <span>
                  To event <span class="muted">(optional)</span>
                </span>
                <input name="toSeq" type="number" min={0} step={1} placeholder="newest" />
              </label>
            </div>
            {dialogError && (
              <p class="form-error" role="alert">
                {dialogError}
              </p>
            )}
            <div class="dialog-actions">
              <button type="button" class="btn" onClick={() => setDialog(null)}>
                Cancel
              </button>
              <button type="submit" class="btn btn-primary" disabled={busy}>
                Replay
              </button>
            </div>
          </form>
        </Dialog>
      )}
      {dialog === "delete" && (
        <Confirm
          title="Delete this webhook endpoint?"
          confirm="Delete"
          danger
          busy={busy}
          error={dialogError}
          onClose={() => setDialog(null)}
          onConfirm={() => void remove()}
        >
          <p class="dev-url">{h.url}</p>
          <p>It gets no more events, and its delivery log goes with it.</p>
        </Confirm>
      )}
    </li>
  );
}

function DeliveryLog(props: { id: string; hook: Webhook; version: number; onRefresh: () => void }) {
  const [items, setItems] = useState<Delivery[] | null>(null);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const [refreshed, setRefreshed] = useState(0);

  async function load(cursor: string | null) {
    setLoading(true);
    setError(null);
    try {
      const page = await api.webhookDeliveries(props.hook.id, cursor);
      setItems((cur) => (cursor ? [...(cur ?? []), ...page.items] : page.items));
      setNext(page.nextCursor);
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setLoading(false);
    }
  }

  // Reloads after a test and on Refresh.
  useEffect(() => {
    void load(null);
  }, [props.version, refreshed]);

  return (
    <section id={props.id} class="delivery-log" aria-label={`Delivery log of ${props.hook.url}`}>
      <div class="log-head">
        <h4>Delivery log</h4>
        <button
          type="button"
          class="btn btn-sm"
          disabled={loading}
          onClick={() => {
            setRefreshed((r) => r + 1);
            props.onRefresh();
          }}
        >
          Refresh<span class="sr-only"> the delivery log</span>
        </button>
      </div>
      {error && (
        <p class="form-error" role="alert">
          {error}
        </p>
      )}
      {items === null && !error && <p class="muted">Loading…</p>}
      {items?.length === 0 && <p class="muted">Nothing delivered yet.</p>}
      {items && items.length > 0 && (
        // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrollable region must be reachable by keyboard
        <section class="table-scroll" tabIndex={0} aria-label="Deliveries, newest first">
          <table class="log-table">
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Event</th>
                <th scope="col">Seq</th>
                <th scope="col">Attempt</th>
                <th scope="col">Status</th>
                <th scope="col">Latency</th>
                <th scope="col">Response or error</th>
              </tr>
            </thead>
            <tbody>
              {items.map((d) => {
                const ok = d.statusCode !== null && d.statusCode >= 200 && d.statusCode < 300;
                return (
                  <tr
                    key={d.id}
                    class="delivery"
                    data-event={d.eventType}
                    data-seq={d.seq ?? ""}
                    data-status={d.statusCode ?? ""}
                  >
                    <td>
                      <time dateTime={d.createdAt}>{when(d.createdAt)}</time>
                    </td>
                    <td>
                      <code>{d.eventType}</code>
                      {d.replay && <span class="tag">replay</span>}
                    </td>
                    <td>{d.seq ?? "—"}</td>
                    <td>{d.attempt}</td>
                    <td class={ok ? "result-ok" : "result-bad"}>{d.statusCode ?? "—"}</td>
                    <td>{d.latencyMs !== null ? `${d.latencyMs} ms` : "—"}</td>
                    <td class="log-text">
                      {d.error && <span class="result-bad">{d.error}</span>}
                      {d.error && d.responseExcerpt && " "}
                      {d.responseExcerpt && <span class="muted">{d.responseExcerpt}</span>}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </section>
      )}
      {next && (
        <button type="button" class="btn btn-sm" disabled={loading} onClick={() => void load(next)}>
          Show older deliveries
        </button>
      )}
    </section>
  );
}
