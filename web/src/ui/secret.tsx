// Shown once: a new API key or webhook signing secret, in a dialog with a Copy button. And
// the page's timestamps.

import type { ComponentChildren } from "preact";
import { useRef, useState } from "preact/hooks";
import { fullTime } from "../format";
import { Dialog } from "./dialog";

/** A timestamp for a person, or `fallback` when there is none. */
export function when(iso: string | null | undefined, fallback = "—"): string {
  return iso ? fullTime(iso) : fallback;
}

async function copyText(text: string, input: HTMLInputElement | null): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // No clipboard API (a plain-HTTP origin) or no permission: the old way.
    if (!input) return false;
    input.focus();
    input.select();
    try {
      return document.execCommand("copy");
    } catch {
      return false;
    }
  }
}

/** A key or secret, shown this once: selectable, with a Copy button. */
export function SecretDialog(props: {
  title: string;
  label: string;
  secret: string;
  onClose: () => void;
  children?: ComponentChildren;
}) {
  const input = useRef<HTMLInputElement>(null);
  const [copied, setCopied] = useState<boolean | null>(null);
  return (
    <Dialog title={props.title} onClose={props.onClose} class="dialog-wide secret-dialog">
      <div class="dialog-body">
        {props.children}
        <p class="notice notice-warn" role="note">
          <strong>Copy it now: you won't see it again.</strong> AEZEN does not keep it in a form it
          can show, so if it is lost you will have to make a new one.
        </p>
      </div>
      <div class="secret-row">
        <label class="field secret-field">
          <span>{props.label}</span>
          <input
            ref={input}
            class="secret-value"
            readOnly
            value={props.secret}
            spellcheck={false}
            autoComplete="off"
            onFocus={(e) => (e.currentTarget as HTMLInputElement).select()}
          />
        </label>
        <button
          type="button"
          class="btn btn-primary"
          onClick={() => void copyText(props.secret, input.current).then(setCopied)}
        >
          Copy
        </button>
      </div>
      <p class="small muted" role="status">
        {copied === true
          ? "Copied to the clipboard."
          : copied === false
            ? "The browser did not allow copying: select the text and copy it by hand."
            : ""}
      </p>
      <div class="dialog-actions">
        <button type="button" class="btn" onClick={props.onClose}>
          I have copied it
        </button>
      </div>
    </Dialog>
  );
}
