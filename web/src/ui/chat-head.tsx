// The chat header: who the contact is (shown name, number, WhatsApp's push name; the name is
// editable), the conversation's labels, and the workflow's actions: assign, labels, snooze,
// resolve / reopen and the status menu beside it (open, pending, resolved), with keyboard
// shortcuts (E, P, Z, A) while focus is not in a text field.

import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { displayName, formatNumber, fullTime } from "../format";
import { navigate, onLinkClick } from "../router";
import { getState, toast, useStore } from "../store";
import type { Conversation, ConversationStatus } from "../types";
import { assign, memberName, renameContact, setLabels, setStatus } from "../workflow";
import { IconBack } from "./icons";
import { Avatar } from "./inbox";
import { LabelChip, LabelChips } from "./labels";
import { Popover } from "./popover";

/** The snooze menu's choices, in local time. */
export function snoozeChoices(now = new Date()): { label: string; until: Date }[] {
  const hour = new Date(now.getTime() + 3_600_000);
  const tomorrow = new Date(now);
  tomorrow.setDate(now.getDate() + 1);
  tomorrow.setHours(9, 0, 0, 0);
  const monday = new Date(now);
  monday.setDate(now.getDate() + ((8 - now.getDay()) % 7 || 7));
  monday.setHours(9, 0, 0, 0);
  return [
    { label: "For 1 hour", until: hour },
    { label: "Until tomorrow, 9:00", until: tomorrow },
    { label: "Until next week (Monday, 9:00)", until: monday },
  ];
}

/** `<input type="datetime-local">`'s value for a date, in local time. */
function localInput(d: Date): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** True when a key press is meant for a text field (or a dialog), not for a shortcut. */
function typing(e: KeyboardEvent): boolean {
  if (e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return true;
  const t = e.target as HTMLElement | null;
  if (!t) return false;
  if (t.isContentEditable) return true;
  if (t instanceof HTMLTextAreaElement || t instanceof HTMLSelectElement) return true;
  if (t instanceof HTMLInputElement) return !["checkbox", "radio", "button"].includes(t.type);
  return document.querySelector("dialog[open]") !== null;
}

async function run(action: Promise<void>): Promise<void> {
  try {
    await action;
  } catch (e) {
    toast((e as Error).message);
  }
}

export function ChatHeader(props: { c: Conversation | undefined }) {
  const { c } = props;
  const me = useStore((s) => s.user);
  // The assignee's name comes from the team list, which may arrive after the chat.
  useStore((s) => s.team);
  const [menu, setMenu] = useState<"assign" | "labels" | "snooze" | "status" | "keys" | null>(null);
  const [editing, setEditing] = useState(false);
  const toggle = (m: typeof menu) => (open: boolean) => setMenu(open ? m : null);

  const id = c?.id;
  const status = c?.status;
  useEffect(() => {
    if (!id) return;
    const onKey = (e: KeyboardEvent) => {
      if (e.defaultPrevented || typing(e)) return;
      const key = e.key.toLowerCase();
      if (key === "e") {
        e.preventDefault();
        void run(setStatus(id, status === "open" || status === "pending" ? "resolved" : "open"));
      } else if (key === "p") {
        e.preventDefault();
        void run(setStatus(id, status === "pending" ? "open" : "pending"));
      } else if (key === "z") {
        e.preventDefault();
        setMenu("snooze");
      } else if (key === "a" && me) {
        e.preventDefault();
        void run(assign(id, me.id));
      }
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, [id, status, me]);

  const name = c ? displayName(c) : "";
  const done = status === "resolved" || status === "snoozed";
  return (
    <header class="chat-head">
      <div class="chat-who">
        <button
          type="button"
          class="icon-btn back-btn"
          aria-label="Back to conversations"
          onClick={() => navigate("/inbox")}
        >
          <IconBack />
        </button>
        {c && <Avatar name={name} id={c.contactNumber} />}
        <div class="chat-title">
          {c && editing ? (
            <NameEditor c={c} onDone={() => setEditing(false)} />
          ) : (
            <div class="chat-name">
              <h2>{name || "Loading…"}</h2>
              {c && (
                <button
                  type="button"
                  class="link-btn small"
                  onClick={() => setEditing(true)}
                  title="Edit the name the team sees for this contact"
                >
                  Edit name
                </button>
              )}
            </div>
          )}
          {c && (
            <span class="muted contact-sub">
              <span data-number>{formatNumber(c.contactNumber)}</span>
              {c.pushName && (
                <span data-push-name>
                  {" · "}WhatsApp name: {c.pushName}
                </span>
              )}
            </span>
          )}
          {c && c.labels.length > 0 && <LabelChips ids={c.labels} />}
        </div>
      </div>
      {c && (
        <div class="chat-actions">
          {status && status !== "open" && (
            <span class={`status-pill status-${status}`} data-status={status}>
              {status === "snoozed" && c.snoozedUntil
                ? `Snoozed until ${fullTime(c.snoozedUntil)}`
                : status === "resolved"
                  ? "Resolved"
                  : "Pending"}
            </span>
          )}
          <Popover
            label="Assign"
            title="Assign (A: assign to me)"
            shortcut="A"
            open={menu === "assign"}
            onOpenChange={toggle("assign")}
            panel={<AssignPanel c={c} close={() => setMenu(null)} />}
          >
            {c.assigneeId ? (
              <>
                <span class="sr-only">Assign: assigned to </span>
                {c.assigneeId === me?.id ? "You" : (memberName(c.assigneeId) ?? "A teammate")}
              </>
            ) : (
              "Assign"
            )}
          </Popover>
          <Popover
            label="Labels"
            open={menu === "labels"}
            onOpenChange={toggle("labels")}
            panel={<LabelsPanel c={c} />}
          />
          <Popover
            label="Snooze"
            title="Snooze (Z)"
            shortcut="Z"
            open={menu === "snooze"}
            onOpenChange={toggle("snooze")}
            panel={<SnoozePanel c={c} close={() => setMenu(null)} />}
          />
          <div class={`split ${done ? "" : "split-primary"}`}>
            <button
              type="button"
              class={`btn btn-sm ${done ? "" : "btn-primary"}`}
              aria-keyshortcuts="E"
              title={done ? "Reopen (E)" : "Resolve (E)"}
              onClick={() => void run(setStatus(c.id, done ? "open" : "resolved"))}
            >
              {done ? "Reopen" : "Resolve"}
            </button>
            <Popover
              label="Status"
              title={status === "pending" ? "Status (P: back to open)" : "Status (P: mark pending)"}
              shortcut="P"
              class="split-more"
              open={menu === "status"}
              onOpenChange={toggle("status")}
              panel={<StatusPanel c={c} close={() => setMenu(null)} />}
            >
              <span aria-hidden="true">▾</span>
              <span class="sr-only">Status</span>
            </Popover>
          </div>
          <Popover
            label="Keyboard shortcuts"
            class="keys"
            open={menu === "keys"}
            onOpenChange={toggle("keys")}
            panel={<ShortcutsHelp />}
          >
            <span aria-hidden="true">?</span>
            <span class="sr-only">Keyboard shortcuts</span>
          </Popover>
        </div>
      )}
    </header>
  );
}

function NameEditor(props: { c: Conversation; onDone: () => void }) {
  const { c } = props;
  const [value, setValue] = useState(c.contactName ?? "");
  const [error, setError] = useState<string | null>(null);
  const input = useRef<HTMLInputElement>(null);
  useLayoutEffect(() => {
    input.current?.focus();
    input.current?.select();
  }, []);
  async function save(e: Event) {
    e.preventDefault();
    try {
      await renameContact(c.id, value);
      props.onDone();
    } catch (err) {
      setError((err as Error).message);
    }
  }
  return (
    <form class="name-edit" onSubmit={save}>
      <label class="sr-only" for="contact-name">
        Contact name
      </label>
      <input
        id="contact-name"
        ref={input}
        value={value}
        maxLength={100}
        placeholder={c.pushName ?? formatNumber(c.contactNumber)}
        aria-describedby="contact-name-hint"
        onInput={(e) => setValue((e.currentTarget as HTMLInputElement).value)}
        onKeyDown={(e) => {
          if (e.key === "Escape") {
            e.preventDefault();
            props.onDone();
          }
        }}
      />
      <button type="submit" class="btn btn-primary btn-sm">
        Save
      </button>
      <button type="button" class="btn btn-sm" onClick={props.onDone}>
        Cancel
      </button>
      <span id="contact-name-hint" class="sr-only">
        Leave it empty to show the contact's WhatsApp name again.
      </span>
      {error && (
        <span class="form-error" role="alert">
          {error}
        </span>
      )}
    </form>
  );
}

function AssignPanel(props: { c: Conversation; close: () => void }) {
  const { c } = props;
  const me = useStore((s) => s.user);
  const team = useStore((s) => s.team);
  const manager = me?.role === "owner" || me?.role === "admin";
  const pick = (userId: string | null) => {
    props.close();
    void run(assign(c.id, userId));
  };
  return (
    <div class="menu">
      {me && c.assigneeId !== me.id && (
        <button type="button" class="menu-item" onClick={() => pick(me.id)}>
          Assign to me <kbd>A</kbd>
        </button>
      )}
      {c.assigneeId && (manager || c.assigneeId === me?.id) && (
        <button type="button" class="menu-item" onClick={() => pick(null)}>
          Unassign
        </button>
      )}
      {manager && (
        <>
          <span class="menu-heading">Team</span>
          {team.map((u) => (
            <button
              key={u.id}
              type="button"
              class="menu-item"
              aria-current={c.assigneeId === u.id ? "true" : undefined}
              onClick={() => pick(u.id)}
            >
              {u.name}
              {u.id === me?.id ? " (you)" : ""}
            </button>
          ))}
        </>
      )}
    </div>
  );
}

const QUIET_MS = 1500;

function LabelsPanel(props: { c: Conversation }) {
  const { c } = props;
  const labels = useStore((s) => s.labels);
  // Ticked at once; the requests go one after another, each with the whole set, so quick
  // clicks never send a set that misses an earlier tick. The events of one's own changes can
  // arrive after the answers: for a moment after the last answer, the ticks stay as clicked
  // (then they show what the store holds).
  const [selected, setSelected] = useState(c.labels);
  const pending = useRef(0);
  const settled = useRef(0);
  const queue = useRef(Promise.resolve());
  const key = c.labels.join();
  useEffect(() => {
    if (pending.current === 0 && Date.now() - settled.current > QUIET_MS) setSelected(c.labels);
  }, [key]);
  const resync = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  useEffect(() => () => clearTimeout(resync.current), []);
  if (labels.length === 0) {
    return (
      <p class="menu-note muted">
        No labels yet.{" "}
        <a href="/team" onClick={(e) => onLinkClick(e, "/team")}>
          Owners and admins create them on the Team page.
        </a>
      </p>
    );
  }
  const toggleLabel = (id: string, on: boolean) => {
    const next = [...new Set(on ? [...selected, id] : selected.filter((x) => x !== id))].sort();
    setSelected(next);
    pending.current += 1;
    queue.current = queue.current
      .then(() => run(setLabels(c.id, next)))
      .finally(() => {
        pending.current -= 1;
        if (pending.current > 0) return;
        // Then show what the server holds (a refused change is unticked again).
        settled.current = Date.now();
        clearTimeout(resync.current);
        resync.current = setTimeout(() => {
          const now = getState().conversations[c.id]?.labels;
          if (pending.current === 0 && now) setSelected(now);
        }, QUIET_MS);
      });
  };
  return (
    <div class="menu">
      {labels.map((l) => (
        <label key={l.id} class="menu-item menu-check">
          <input
            type="checkbox"
            checked={selected.includes(l.id)}
            onChange={(e) => toggleLabel(l.id, (e.currentTarget as HTMLInputElement).checked)}
          />
          <LabelChip label={l} />
        </label>
      ))}
    </div>
  );
}

const STATUS_ITEMS: { status: ConversationStatus; label: string; key: string }[] = [
  { status: "open", label: "Open", key: "" },
  { status: "pending", label: "Pending", key: "P" },
  { status: "resolved", label: "Resolved", key: "E" },
];

/** Open, pending or resolved; the current one ticked (snoozing has its own menu). */
function StatusPanel(props: { c: Conversation; close: () => void }) {
  const { c } = props;
  const pick = (status: ConversationStatus) => {
    props.close();
    if (status !== c.status) void run(setStatus(c.id, status));
  };
  return (
    <div class="menu">
      {STATUS_ITEMS.map((o) => (
        <button
          key={o.status}
          type="button"
          class="menu-item"
          aria-current={c.status === o.status ? "true" : undefined}
          onClick={() => pick(o.status)}
        >
          {o.label}
          {o.key && <kbd>{o.key}</kbd>}
        </button>
      ))}
      <p class="menu-note muted">
        Pending: waiting on something. Unlike a resolved chat, it stays pending when the contact
        writes.
      </p>
    </div>
  );
}

function SnoozePanel(props: { c: Conversation; close: () => void }) {
  const { c } = props;
  const [custom, setCustom] = useState(() => localInput(new Date(Date.now() + 2 * 3_600_000)));
  const snooze = (until: Date) => {
    props.close();
    void run(setStatus(c.id, "snoozed", until));
  };
  return (
    <div class="menu">
      {snoozeChoices().map((o) => (
        <button
          key={o.label}
          type="button"
          class="menu-item"
          title={fullTime(o.until.toISOString())}
          onClick={() => snooze(o.until)}
        >
          {o.label}
        </button>
      ))}
      <form
        class="menu-form"
        onSubmit={(e) => {
          e.preventDefault();
          const d = new Date(custom);
          if (Number.isNaN(d.getTime()) || d.getTime() <= Date.now()) {
            toast("Pick a time in the future.");
            return;
          }
          snooze(d);
        }}
      >
        <label class="field">
          <span>Pick a time</span>
          <input
            type="datetime-local"
            value={custom}
            min={localInput(new Date())}
            onInput={(e) => setCustom((e.currentTarget as HTMLInputElement).value)}
          />
        </label>
        <button type="submit" class="btn btn-sm">
          Snooze until then
        </button>
      </form>
      <p class="menu-note muted">It reopens then, or as soon as the contact writes.</p>
    </div>
  );
}

function ShortcutsHelp() {
  return (
    <div class="menu keys-help">
      <span class="menu-heading">Keyboard shortcuts</span>
      <dl>
        <dt>
          <kbd>E</kbd>
        </dt>
        <dd>Resolve, or reopen</dd>
        <dt>
          <kbd>P</kbd>
        </dt>
        <dd>Mark pending, or back to open</dd>
        <dt>
          <kbd>Z</kbd>
        </dt>
        <dd>Snooze…</dd>
        <dt>
          <kbd>A</kbd>
        </dt>
        <dd>Assign to me</dd>
        <dt>
          <kbd>/</kbd>
        </dt>
        <dd>At the start of a message: quick replies</dd>
        <dt>
          <kbd>@</kbd>
        </dt>
        <dd>In a note: mention a teammate</dd>
      </dl>
      <p class="menu-note muted">E, P, Z and A work when the cursor is not in a text field.</p>
    </div>
  );
}
