// A small disclosure popover for the chat header's menus (assign, labels, snooze): a button
// with aria-expanded that shows a panel under it. Focus moves into the panel, arrow keys walk
// its controls, Escape (or a click outside) closes it and focus returns to the button.

import type { ComponentChildren } from "preact";
import { useEffect, useLayoutEffect, useRef } from "preact/hooks";

const FOCUSABLE = "button:not([disabled]), input:not([disabled]), select, a[href]";

export function Popover(props: {
  /** The button's accessible name. */
  label: string;
  /** What the button shows (defaults to the label). */
  children?: ComponentChildren;
  panel: ComponentChildren;
  open: boolean;
  onOpenChange: (open: boolean) => void;
  class?: string;
  title?: string;
  shortcut?: string;
  align?: "start" | "end";
}) {
  const { open, onOpenChange } = props;
  const button = useRef<HTMLButtonElement>(null);
  const panel = useRef<HTMLDivElement>(null);
  const id = `pop-${props.label.replace(/\W+/g, "-").toLowerCase()}`;

  useLayoutEffect(() => {
    if (!open) return;
    const first = panel.current?.querySelector<HTMLElement>(FOCUSABLE);
    first?.focus();
  }, [open]);

  useEffect(() => {
    if (!open) return;
    const onDown = (e: PointerEvent) => {
      const t = e.target as Node;
      if (panel.current?.contains(t) || button.current?.contains(t)) return;
      onOpenChange(false);
    };
    document.addEventListener("pointerdown", onDown);
    return () => document.removeEventListener("pointerdown", onDown);
  }, [open, onOpenChange]);

  function onKeyDown(e: KeyboardEvent) {
    if (e.key === "Escape") {
      e.preventDefault();
      e.stopPropagation();
      onOpenChange(false);
      button.current?.focus();
      return;
    }
    if (e.key !== "ArrowDown" && e.key !== "ArrowUp") return;
    const target = e.target as HTMLElement;
    if (target instanceof HTMLInputElement && target.type !== "checkbox") return;
    const items = [...(panel.current?.querySelectorAll<HTMLElement>(FOCUSABLE) ?? [])];
    const at = items.indexOf(target);
    const next = items[(at + (e.key === "ArrowDown" ? 1 : -1) + items.length) % items.length];
    if (next) {
      e.preventDefault();
      next.focus();
    }
  }

  return (
    <div class={`popover-wrap ${props.class ?? ""}`}>
      <button
        ref={button}
        type="button"
        class="btn btn-sm"
        aria-expanded={open}
        aria-controls={id}
        aria-keyshortcuts={props.shortcut}
        title={props.title}
        onClick={() => onOpenChange(!open)}
      >
        {props.children ?? props.label}
      </button>
      {open && (
        // biome-ignore lint/a11y/useSemanticElements: a labelled group of menu controls, not a form section
        <div
          ref={panel}
          id={id}
          class={`popover popover-${props.align ?? "end"}`}
          role="group"
          aria-label={`${props.label} menu`}
          onKeyDown={onKeyDown}
        >
          {props.panel}
        </div>
      )}
    </div>
  );
}

/** Closes the popover it is in and returns focus to its button, after `action`. */
export function closePopoverFrom(el: HTMLElement | null): void {
  const wrap = el?.closest(".popover-wrap");
  wrap?.querySelector<HTMLButtonElement>("button[aria-expanded]")?.focus();
}
