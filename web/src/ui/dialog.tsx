// A modal dialog on the native <dialog> element: focus moves into it and is trapped there,
// Escape closes it, and focus returns to what opened it.

import type { ComponentChildren } from "preact";
import { useEffect, useRef } from "preact/hooks";
import { IconClose } from "./icons";

export function Dialog(props: {
  title: string;
  onClose: () => void;
  children: ComponentChildren;
  class?: string;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const close = useRef(props.onClose);
  close.current = props.onClose;
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    const opener = document.activeElement as HTMLElement | null;
    if (!d.open) d.showModal();
    const onCancel = (e: Event) => {
      e.preventDefault();
      close.current();
    };
    d.addEventListener("cancel", onCancel);
    return () => {
      d.removeEventListener("cancel", onCancel);
      if (d.open) d.close();
      opener?.focus?.();
    };
  }, []);
  const id = `dlg-${props.title.replace(/\W+/g, "-").toLowerCase()}`;
  return (
    // A click on the backdrop closes it, like Escape does for the keyboard.
    // biome-ignore lint/a11y/useKeyWithClickEvents: Escape (the `cancel` event) is the keyboard path
    <dialog
      ref={ref}
      class={`dialog ${props.class ?? ""}`}
      aria-labelledby={id}
      onClick={(e) => {
        if (e.target === ref.current) props.onClose();
      }}
    >
      <div class="dialog-inner">
        <header class="dialog-head">
          <h2 id={id}>{props.title}</h2>
          <button type="button" class="icon-btn" aria-label="Close" onClick={props.onClose}>
            <IconClose />
          </button>
        </header>
        {props.children}
      </div>
    </dialog>
  );
}

/** A yes/no question whose consequences are said before anything happens. */
export function Confirm(props: {
  title: string;
  children: ComponentChildren;
  confirm: string;
  danger?: boolean;
  busy?: boolean;
  error?: string | null;
  onConfirm: () => void;
  onClose: () => void;
}) {
  return (
    <Dialog title={props.title} onClose={props.onClose}>
      <div class="dialog-body">{props.children}</div>
      {props.error && (
        <p class="form-error" role="alert">
          {props.error}
        </p>
      )}
      <div class="dialog-actions">
        <button type="button" class="btn" onClick={props.onClose}>
          Cancel
        </button>
        <button
          type="button"
          class={props.danger ? "btn btn-danger" : "btn btn-primary"}
          disabled={props.busy}
          onClick={props.onConfirm}
        >
          {props.confirm}
        </button>
      </div>
    </Dialog>
  );
}
