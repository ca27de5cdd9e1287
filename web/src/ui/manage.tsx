// The team's shared tools on the Team page: labels and quick replies. Owners and admins
// create, edit and delete them; agents see the lists.

import { useEffect, useState } from "preact/hooks";
import { useStore } from "../store";
import type { CannedResponse, Label } from "../types";
import {
  createCanned,
  createLabel,
  deleteCanned,
  deleteLabel,
  loadCanned,
  loadLabels,
  updateCanned,
  updateLabel,
} from "../workflow";
import { Confirm } from "./dialog";
import { LabelChip } from "./labels";

const PALETTE = ["#1f6f8b", "#7a4fb0", "#b04f6d", "#2e7d32", "#a35a00", "#3d5a99", "#c62828"];

function field(form: HTMLFormElement, name: string): string {
  return String(new FormData(form).get(name) ?? "");
}

export function LabelsSection(props: { manager: boolean }) {
  const labels = useStore((s) => s.labels);
  const [error, setError] = useState<string | null>(null);
  const [editing, setEditing] = useState<string | null>(null);
  const [deleting, setDeleting] = useState<Label | null>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    loadLabels().catch((e) => setError((e as Error).message));
  }, []);

  async function add(e: Event) {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    setError(null);
    setBusy(true);
    try {
      await createLabel(field(form, "name").trim(), field(form, "color"));
      form.reset();
      const color = form.elements.namedItem("color");
      if (color instanceof HTMLInputElement)
        color.value = PALETTE[(labels.length + 1) % PALETTE.length];
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  }

  async function save(e: Event, l: Label) {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    setError(null);
    try {
      await updateLabel(l.id, { name: field(form, "name").trim(), color: field(form, "color") });
      setEditing(null);
    } catch (err) {
      setError((err as Error).message);
    }
  }

  async function remove(l: Label) {
    setBusy(true);
    try {
      await deleteLabel(l.id);
      setDeleting(null);
    } catch (err) {
      setError((err as Error).message);
      setDeleting(null);
    } finally {
      setBusy(false);
    }
  }

  return (
    <section class="card" aria-labelledby="labels-title">
      <h2 id="labels-title">
        Labels <span class="count">{labels.length}</span>
      </h2>
      <p class="muted">
        Everyone can put labels on a conversation and filter the inbox by them.
        {props.manager ? "" : " Owners and admins create and change them."}
      </p>
      {labels.length === 0 && <p class="muted">No labels yet.</p>}
      <ul class="rows" aria-label="Labels">
        {labels.map((l) =>
          editing === l.id ? (
            <li key={l.id} class="row">
              <form class="row-form" onSubmit={(e) => void save(e, l)}>
                <label class="field">
                  <span>Name</span>
                  <input name="name" required maxLength={50} value={l.name} />
                </label>
                <label class="field field-color">
                  <span>Colour</span>
                  <input name="color" type="color" value={l.color} />
                </label>
                <div class="row-actions">
                  <button type="submit" class="btn btn-primary btn-sm">
                    Save
                  </button>
                  <button type="button" class="btn btn-sm" onClick={() => setEditing(null)}>
                    Cancel
                  </button>
                </div>
              </form>
            </li>
          ) : (
            <li key={l.id} class="row" data-label={l.name}>
              <LabelChip label={l} />
              {props.manager && (
                <div class="row-actions">
                  <button type="button" class="btn btn-sm" onClick={() => setEditing(l.id)}>
                    Edit<span class="sr-only"> label {l.name}</span>
                  </button>
                  <button
                    type="button"
                    class="btn btn-sm btn-danger-outline"
                    onClick={() => setDeleting(l)}
                  >
                    Delete<span class="sr-only"> label {l.name}</span>
                  </button>
                </div>
              )}
            </li>
          ),
        )}
      </ul>
      {error && (
        <p class="form-error" role="alert">
          {error}
        </p>
      )}
      {props.manager && (
        <form class="form row-form" aria-label="New label" onSubmit={add}>
          <label class="field">
            <span>Label name</span>
            <input name="name" required maxLength={50} autoComplete="off" />
          </label>
          <label class="field field-color">
            <span>Colour</span>
            <input name="color" type="color" value={PALETTE[labels.length % PALETTE.length]} />
          </label>
          <div class="row-actions">
            <button type="submit" class="btn btn-primary" disabled={busy}>
              Add label
            </button>
          </div>
        </form>
      )}
      {deleting && (
        <Confirm
          title={`Delete the label ${deleting.name}?`}
          confirm="Delete"
          danger
          busy={busy}
          onClose={() => setDeleting(null)}
          onConfirm={() => void remove(deleting)}
        >
          <p>It comes off every conversation that has it. The conversations stay.</p>
        </Confirm>
      )}
    </section>
  );
}

export function QuickRepliesSection(props: { manager: boolean }) {
  const canned = useStore((s) => s.canned);
  const [error, setError] = useState<string | null>(null);
  const [editing, setEditing] = useState<string | null>(null);
  const [deleting, setDeleting] = useState<CannedResponse | null>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    loadCanned().catch((e) => setError((e as Error).message));
  }, []);

  async function add(e: Event) {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    setError(null);
    setBusy(true);
    try {
      await createCanned(field(form, "shortCode").trim(), field(form, "content"));
      form.reset();
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  }

  async function save(e: Event, r: CannedResponse) {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    setError(null);
    try {
      await updateCanned(r.id, {
        shortCode: field(form, "shortCode").trim(),
        content: field(form, "content"),
      });
      setEditing(null);
    } catch (err) {
      setError((err as Error).message);
    }
  }

  async function remove(r: CannedResponse) {
    setBusy(true);
    try {
      await deleteCanned(r.id);
      setDeleting(null);
    } catch (err) {
      setError((err as Error).message);
      setDeleting(null);
    } finally {
      setBusy(false);
    }
  }

  const codeHint = "1–32 of a–z, 0–9, _ and -";
  return (
    <section class="card" aria-labelledby="canned-title">
      <h2 id="canned-title">
        Quick replies <span class="count">{canned?.length ?? ""}</span>
      </h2>
      <p class="muted">
        Type <kbd>/</kbd> at the start of the message box to pick one.{" "}
        <code>{"{{contact.name}}"}</code> and <code>{"{{agent.name}}"}</code> are filled in before
        sending.
      </p>
      {canned?.length === 0 && <p class="muted">No quick replies yet.</p>}
      <ul class="rows" aria-label="Quick replies">
        {(canned ?? []).map((r) =>
          editing === r.id ? (
            <li key={r.id} class="row">
              <form class="form row-form row-form-wide" onSubmit={(e) => void save(e, r)}>
                <label class="field">
                  <span>Short code</span>
                  <input
                    name="shortCode"
                    required
                    pattern="[a-z0-9_\-]{1,32}"
                    title={codeHint}
                    value={r.shortCode}
                  />
                </label>
                <label class="field span-all">
                  <span>Text</span>
                  <textarea name="content" required rows={3} value={r.content} />
                </label>
                <div class="row-actions">
                  <button type="submit" class="btn btn-primary btn-sm">
                    Save
                  </button>
                  <button type="button" class="btn btn-sm" onClick={() => setEditing(null)}>
                    Cancel
                  </button>
                </div>
              </form>
            </li>
          ) : (
            <li key={r.id} class="row" data-code={r.shortCode}>
              <div class="row-main">
                <code class="shortcode">/{r.shortCode}</code>
                <span class="muted row-text">{r.content}</span>
              </div>
              {props.manager && (
                <div class="row-actions">
                  <button type="button" class="btn btn-sm" onClick={() => setEditing(r.id)}>
                    Edit<span class="sr-only"> quick reply {r.shortCode}</span>
                  </button>
                  <button
                    type="button"
                    class="btn btn-sm btn-danger-outline"
                    onClick={() => setDeleting(r)}
                  >
                    Delete<span class="sr-only"> quick reply {r.shortCode}</span>
                  </button>
                </div>
              )}
            </li>
          ),
        )}
      </ul>
      {error && (
        <p class="form-error" role="alert">
          {error}
        </p>
      )}
      {props.manager && (
        <form class="form row-form row-form-wide" aria-label="New quick reply" onSubmit={add}>
          <label class="field">
            <span>Short code</span>
            <input
              name="shortCode"
              required
              pattern="[a-z0-9_\-]{1,32}"
              title={codeHint}
              autoComplete="off"
              placeholder="thanks"
            />
          </label>
          <label class="field span-all">
            <span>Text</span>
            <textarea
              name="content"
              required
              rows={3}
              placeholder="Hi {{contact.name}}, thanks for writing! — {{agent.name}}"
            />
          </label>
          <div class="row-actions">
            <button type="submit" class="btn btn-primary" disabled={busy}>
              Add quick reply
            </button>
          </div>
        </form>
      )}
      {deleting && (
        <Confirm
          title={`Delete the quick reply /${deleting.shortCode}?`}
          confirm="Delete"
          danger
          busy={busy}
          onClose={() => setDeleting(null)}
          onConfirm={() => void remove(deleting)}
        >
          <p>Messages already sent with it stay as they are.</p>
        </Confirm>
      )}
    </section>
  );
}
