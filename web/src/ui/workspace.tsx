// The owner's way out of a workspace (Account page, owners only): download its whole archive,
// and delete it for good behind a confirmation (the workspace's name typed, the password
// re-entered).

import { useRef, useState } from "preact/hooks";
import { type ApiError, api } from "../api";
import { signOut, withExpiryHeld } from "../app";
import { useStore } from "../store";
import { Dialog } from "./dialog";

function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} bytes`;
  const units = ["KB", "MB", "GB", "TB"];
  let n = bytes / 1024;
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return `${n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
}

/** Saves a Blob as a file: an object URL behind a temporary `<a download>`. */
function saveBlob(blob: Blob, filename: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  // The browser has taken the file by then; a big archive gets a minute to be sure.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

export function WorkspaceSection() {
  const tenant = useStore((s) => s.tenant);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [deleting, setDeleting] = useState(false);

  async function download() {
    if (busy) return;
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      const { blob, filename } = await api.exportWorkspace();
      if (blob.size === 0) throw new Error("The server sent an empty archive. Please try again.");
      saveBlob(blob, filename);
      setDone(`Downloaded ${filename} (${formatSize(blob.size)}).`);
    } catch (err) {
      setError(`The archive could not be downloaded. ${(err as Error).message}`);
    } finally {
      setBusy(false);
    }
  }

  return (
    <section class="card" aria-labelledby="ws-title" data-section="workspace">
      <h2 id="ws-title">Workspace</h2>
      <div class="subsection">
        <h3 id="ws-export-title">Download workspace archive</h3>
        <p class="muted">
          One <code>.tar.zst</code> file with everything in {tenant?.name ?? "this workspace"} — its
          conversations, every member's account with their password hash, and the WhatsApp session
          that keeps the phone linked — which <code>aezen tenant import</code> reads on another
          AEZEN server; keep it as safe as a password.
        </p>
        <div class="card-actions">
          <button
            type="button"
            class="btn"
            aria-disabled={busy}
            aria-describedby="ws-export-status"
            onClick={() => void download()}
          >
            {busy ? "Downloading the archive…" : "Download workspace archive"}
          </button>
        </div>
        <div id="ws-export-status" aria-live="polite">
          {busy && (
            <p class="muted small">
              The archive is written as it downloads; a big workspace can take a while.
            </p>
          )}
          {done && <p class="notice">{done}</p>}
        </div>
        {error && (
          <p class="form-error" role="alert">
            {error}
          </p>
        )}
      </div>
      <div class="subsection danger-zone">
        <h3 id="ws-delete-title">Delete workspace</h3>
        <p class="muted">
          Deletes the workspace and everything in it at once and for good: conversations, every
          member's account and the WhatsApp session. There is no undo.
        </p>
        <div class="card-actions">
          <button
            type="button"
            class="btn btn-danger-outline"
            disabled={!tenant}
            onClick={() => setDeleting(true)}
          >
            Delete workspace…
          </button>
        </div>
      </div>
      {deleting && tenant && <DeleteDialog name={tenant.name} onClose={() => setDeleting(false)} />}
    </section>
  );
}

function DeleteDialog(props: { name: string; onClose: () => void }) {
  const { name } = props;
  const [typed, setTyped] = useState("");
  const [password, setPassword] = useState("");
  const [pwError, setPwError] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const pwRef = useRef<HTMLInputElement>(null);
  const nameMatches = typed.trim() === name.trim();
  const ready = nameMatches && password !== "" && !busy;

  async function submit(e: Event) {
    e.preventDefault();
    if (!ready) return;
    setBusy(true);
    setPwError(null);
    setError(null);
    try {
      await withExpiryHeld(() => api.deleteWorkspace(password));
    } catch (err) {
      const ae = err as ApiError;
      if (ae.status === 401) return; // signed out already, with the reason
      setBusy(false);
      if (ae.code === "wrong_password") {
        setPwError("That password is not correct. Nothing was deleted.");
        pwRef.current?.focus();
        pwRef.current?.select();
      } else {
        setError(`Nothing was deleted. ${ae.message}`);
      }
      return;
    }
    signOut(
      `The workspace “${name}” was deleted, with its conversations, its members' accounts and its WhatsApp session.`,
    );
  }

  return (
    <Dialog title="Delete this workspace?" onClose={props.onClose} class="delete-dialog">
      <form class="form" onSubmit={submit}>
        <div class="dialog-body">
          <p>
            <strong>{name}</strong> is deleted at once and for good: every conversation and message,
            every member's account (everyone is signed out) and the WhatsApp session. It cannot be
            undone: download the workspace archive first if you may want it back.
          </p>
          <p>
            The phone keeps listing the device under Settings → Linked devices until you remove it
            there.
          </p>
        </div>
        <label class="field">
          <span>
            Type <strong class="confirm-name">{name}</strong> to confirm
          </span>
          <input
            name="confirmName"
            value={typed}
            onInput={(e) => setTyped((e.currentTarget as HTMLInputElement).value)}
            required
            autoComplete="off"
            autoCapitalize="off"
            spellcheck={false}
            autoFocus
          />
        </label>
        <div class="field">
          <label class="field" for="ws-delete-password">
            <span>Your password</span>
            <input
              id="ws-delete-password"
              ref={pwRef}
              name="password"
              type="password"
              value={password}
              onInput={(e) => {
                setPassword((e.currentTarget as HTMLInputElement).value);
                setPwError(null);
              }}
              required
              autoComplete="current-password"
              aria-invalid={pwError ? true : undefined}
              aria-describedby={pwError ? "ws-delete-password-error" : undefined}
            />
          </label>
          {pwError && (
            <p id="ws-delete-password-error" class="form-error" role="alert">
              {pwError}
            </p>
          )}
        </div>
        {error && (
          <p class="form-error" role="alert">
            {error}
          </p>
        )}
        <div class="dialog-actions">
          <button type="button" class="btn" onClick={props.onClose}>
            Cancel
          </button>
          <button type="submit" class="btn btn-danger" disabled={!ready}>
            {busy ? "Deleting…" : "Delete workspace"}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
