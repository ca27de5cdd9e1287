import { memo } from "preact/compat";
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { api } from "../api";
import { colorIndex, displayName, initials, shortTime } from "../format";
import { loadMore, openConversation, reloadList } from "../inbox";
import { navigate, onLinkClick, useSearchParams } from "../router";
import { type AssigneeFilter, useStore } from "../store";
import type { Conversation, ConversationStatus } from "../types";
import { Chat } from "./chat";
import { Dialog } from "./dialog";
import { IconChat, IconPlus, IconSearch } from "./icons";
import { LabelChips } from "./labels";

export function Avatar(props: { name: string; id: string; size?: "lg" }) {
  return (
    <span
      class={`avatar avatar-c${colorIndex(props.id)} ${props.size === "lg" ? "avatar-lg" : ""}`}
      aria-hidden="true"
    >
      {initials(props.name)}
    </span>
  );
}

export function Inbox(props: { chatId: string | null }) {
  const { chatId } = props;
  const focus = useSearchParams().get("message");
  useEffect(() => {
    if (chatId) void openConversation(chatId);
  }, [chatId]);
  return (
    <div class="inbox">
      <ConversationList activeId={chatId} />
      <section class="chat-pane" aria-label="Chat">
        {chatId ? (
          <Chat key={chatId} id={chatId} focus={focus} />
        ) : (
          <div class="chat-empty">
            <IconChat />
            <h2>Select a conversation</h2>
            <p class="muted">
              Messages to your WhatsApp number appear here as they arrive, for the whole team.
            </p>
          </div>
        )}
      </section>
    </div>
  );
}

function ConversationList(props: { activeId: string | null }) {
  const list = useStore((s) => s.list);
  const conversations = useStore((s) => s.conversations);
  const counts = useStore((s) => s.counts);
  const [q, setQ] = useState(list.q);
  const [creating, setCreating] = useState(false);
  const scroller = useRef<HTMLDivElement>(null);
  const sentinel = useRef<HTMLLIElement>(null);

  // Search as one types, a moment after the last key.
  useEffect(() => {
    if (q === list.q) return;
    const t = setTimeout(() => void reloadList({ q, unread: list.unread }), 250);
    return () => clearTimeout(t);
  }, [q, list.q, list.unread]);

  // Infinite scroll: the next page loads when the sentinel nears the viewport. Observing
  // again after every page re-checks a sentinel that is still in view.
  const count = list.order.length;
  useEffect(() => {
    const el = sentinel.current;
    if (!el || list.done) return;
    const io = new IntersectionObserver(
      (entries) => {
        if (entries.some((e) => e.isIntersecting)) void loadMore();
      },
      { root: scroller.current, rootMargin: "600px 0px" },
    );
    io.observe(el);
    return () => io.disconnect();
  }, [count, list.done, list.loading]);

  return (
    <section class="list-pane" aria-label="Conversations">
      <header class="pane-head">
        <h1>Inbox</h1>
        <button
          type="button"
          class="icon-btn"
          aria-label="New conversation"
          title="New conversation"
          onClick={() => setCreating(true)}
        >
          <IconPlus />
        </button>
      </header>
      <div class="list-tools">
        <label class="search">
          <IconSearch />
          <span class="sr-only">Search conversations</span>
          <input
            type="search"
            placeholder="Search name or number"
            value={q}
            onInput={(e) => setQ((e.currentTarget as HTMLInputElement).value)}
          />
        </label>
        <div class="list-filters">
          <AssigneeSwitch />
          <fieldset class="segmented">
            <legend class="sr-only">Show</legend>
            <button
              type="button"
              aria-pressed={!list.unread}
              onClick={() => list.unread && void reloadList({ q, unread: false })}
            >
              All
            </button>
            <button
              type="button"
              aria-pressed={list.unread}
              onClick={() => !list.unread && void reloadList({ q, unread: true })}
            >
              Unread
            </button>
          </fieldset>
          <LabelFilter />
        </div>
      </div>
      <StatusTabs />
      <div
        class="list-scroll"
        ref={scroller}
        id="conv-panel"
        role="tabpanel"
        aria-labelledby={`tab-${list.status}`}
      >
        <ul class="conv-list" aria-label="Conversation list" aria-busy={list.loading}>
          {list.order.map((id) => {
            const c = conversations[id];
            return c ? <ConversationItem key={id} c={c} active={id === props.activeId} /> : null;
          })}
          {!list.done && (
            <li ref={sentinel} class="list-sentinel" aria-hidden="true">
              {list.loading ? "Loading…" : ""}
            </li>
          )}
        </ul>
        {list.error && (
          <div class="list-state" role="alert">
            <p>{list.error}</p>
            <button
              type="button"
              class="btn"
              onClick={() => void loadMore(list.order.length === 0)}
            >
              Try again
            </button>
          </div>
        )}
        {list.done && list.order.length === 0 && !list.error && (
          <div class="list-state">
            <p>
              {list.q || list.unread || list.label || list.assignee !== "all"
                ? "No conversations match."
                : counts && Object.values(counts.status).some((n) => n > 0)
                  ? `No ${STATUS_LABEL[list.status].toLowerCase()} conversations.`
                  : "No conversations yet. When someone messages your WhatsApp number, the chat shows up here."}
            </p>
          </div>
        )}
      </div>
      {creating && <NewConversation onClose={() => setCreating(false)} />}
    </section>
  );
}

export const STATUS_LABEL: Record<ConversationStatus, string> = {
  open: "Open",
  pending: "Pending",
  resolved: "Resolved",
  snoozed: "Snoozed",
};
const STATUSES: ConversationStatus[] = ["open", "pending", "resolved", "snoozed"];

/** The status tabs, each with the number of conversations clicking it would list. */
function StatusTabs() {
  const status = useStore((s) => s.list.status);
  const counts = useStore((s) => s.counts);
  const refs = useRef<(HTMLButtonElement | null)[]>([]);
  function onKeyDown(e: KeyboardEvent) {
    const at = STATUSES.indexOf(status);
    let next = -1;
    if (e.key === "ArrowRight") next = (at + 1) % STATUSES.length;
    else if (e.key === "ArrowLeft") next = (at - 1 + STATUSES.length) % STATUSES.length;
    else if (e.key === "Home") next = 0;
    else if (e.key === "End") next = STATUSES.length - 1;
    if (next < 0) return;
    e.preventDefault();
    void reloadList({ status: STATUSES[next] });
    refs.current[next]?.focus();
  }
  return (
    <div class="status-tabs" role="tablist" aria-label="Status" onKeyDown={onKeyDown}>
      {STATUSES.map((st, i) => (
        <button
          key={st}
          ref={(el) => {
            refs.current[i] = el;
          }}
          type="button"
          role="tab"
          id={`tab-${st}`}
          aria-selected={status === st}
          aria-controls="conv-panel"
          tabIndex={status === st ? 0 : -1}
          data-status={st}
          onClick={() => status !== st && void reloadList({ status: st })}
        >
          {STATUS_LABEL[st]}
          <span class="tab-count" data-count={counts?.status[st] ?? ""}>
            {counts ? counts.status[st] : ""}
          </span>
        </button>
      ))}
    </div>
  );
}

const ASSIGNEES: { value: AssigneeFilter; label: string }[] = [
  { value: "me", label: "Mine" },
  { value: "unassigned", label: "Unassigned" },
  { value: "all", label: "All" },
];

/** Mine / Unassigned / All, as radio buttons (one of them is always chosen). */
function AssigneeSwitch() {
  const assignee = useStore((s) => s.list.assignee);
  const counts = useStore((s) => s.counts);
  return (
    <fieldset class="segmented radios">
      <legend class="sr-only">Assigned to</legend>
      {ASSIGNEES.map((a) => (
        <label key={a.value} class={assignee === a.value ? "checked" : ""}>
          <input
            type="radio"
            name="assignee"
            value={a.value}
            checked={assignee === a.value}
            onChange={() => void reloadList({ assignee: a.value })}
          />
          {a.label}
          <span class="tab-count" data-count={counts?.assignee[a.value] ?? ""}>
            {counts ? counts.assignee[a.value] : ""}
          </span>
        </label>
      ))}
    </fieldset>
  );
}

function LabelFilter() {
  const labels = useStore((s) => s.labels);
  const label = useStore((s) => s.list.label);
  if (labels.length === 0 && !label) return null;
  return (
    <label class="label-filter">
      <span class="sr-only">Filter by label</span>
      <select
        value={label ?? ""}
        onChange={(e) =>
          void reloadList({ label: (e.currentTarget as HTMLSelectElement).value || null })
        }
      >
        <option value="">Any label</option>
        {labels.map((l) => (
          <option key={l.id} value={l.id}>
            {l.name}
          </option>
        ))}
      </select>
    </label>
  );
}

const ConversationItem = memo(function ConversationItem(props: {
  c: Conversation;
  active: boolean;
}) {
  const { c, active } = props;
  const name = displayName(c);
  const href = `/inbox/${c.id}`;
  return (
    <li class="conv-item" data-id={c.id}>
      <a
        href={href}
        class={`conv ${active ? "active" : ""} ${c.unreadCount > 0 ? "unread" : ""}`}
        aria-current={active ? "true" : undefined}
        onClick={(e) => onLinkClick(e, href)}
      >
        <Avatar name={name} id={c.contactNumber} />
        <span class="conv-main">
          <span class="conv-top">
            <span class="conv-name">{name}</span>
            <time class="conv-time" dateTime={c.lastMessageAt ?? c.createdAt}>
              {shortTime(c.lastMessageAt ?? c.createdAt)}
            </time>
          </span>
          <span class="conv-bottom">
            <span class="conv-preview">{c.lastMessage ?? "No messages yet"}</span>
            {c.unreadCount > 0 && (
              <span class="badge" data-unread={c.unreadCount}>
                {c.unreadCount > 99 ? "99+" : c.unreadCount}
                <span class="sr-only"> unread</span>
              </span>
            )}
          </span>
          {(c.labels.length > 0 || c.assigneeId) && (
            <span class="conv-meta">
              <LabelChips ids={c.labels} max={3} />
              {c.assigneeId && <Assignee id={c.assigneeId} />}
            </span>
          )}
        </span>
      </a>
    </li>
  );
});

function Assignee(props: { id: string }) {
  const me = useStore((s) => s.user?.id);
  const name = useStore((s) => s.team.find((u) => u.id === props.id)?.name, [props.id]);
  return (
    <span class="conv-assignee" data-assignee={props.id}>
      <span class="sr-only">Assigned to </span>
      {props.id === me ? "You" : (name ?? "A teammate")}
    </span>
  );
}

function NewConversation(props: { onClose: () => void }) {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  useLayoutEffect(() => input.current?.focus(), []);
  async function submit(e: Event) {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    const contactNumber = String(f.get("number") ?? "");
    const contactName = String(f.get("name") ?? "").trim();
    setBusy(true);
    setError(null);
    try {
      const c = await api.createConversation({
        contactNumber,
        contactName: contactName || undefined,
      });
      props.onClose();
      navigate(`/inbox/${c.id}`);
    } catch (err) {
      setError((err as Error).message);
      setBusy(false);
    }
  }
  return (
    <Dialog title="New conversation" onClose={props.onClose}>
      <form class="form" onSubmit={submit}>
        <label class="field">
          <span>WhatsApp number</span>
          <input
            ref={input}
            name="number"
            type="tel"
            required
            placeholder="+62 812 3456 7890"
            autoComplete="off"
          />
          <small class="muted">With the country code, e.g. +44 20 7946 0958.</small>
        </label>
        <label class="field">
          <span>Name (optional)</span>
          <input name="name" autoComplete="off" />
        </label>
        {error && (
          <p class="form-error" role="alert">
            {error}
          </p>
        )}
        <div class="dialog-actions">
          <button type="button" class="btn" onClick={props.onClose}>
            Cancel
          </button>
          <button type="submit" class="btn btn-primary" disabled={busy}>
            Open chat
          </button>
        </div>
      </form>
    </Dialog>
  );
}
