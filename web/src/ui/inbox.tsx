import { memo } from "preact/compat";
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { api } from "../api";
import { colorIndex, displayName, initials, shortTime } from "../format";
import { loadMore, openConversation, reloadList } from "../inbox";
import { navigate, onLinkClick } from "../router";
import { useStore } from "../store";
import type { Conversation } from "../types";
import { Chat } from "./chat";
import { Dialog } from "./dialog";
import { IconChat, IconPlus, IconSearch } from "./icons";

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
  useEffect(() => {
    if (chatId) void openConversation(chatId);
  }, [chatId]);
  return (
    <div class="inbox">
      <ConversationList activeId={chatId} />
      <section class="chat-pane" aria-label="Chat">
        {chatId ? (
          <Chat key={chatId} id={chatId} />
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
      </div>
      <div class="list-scroll" ref={scroller}>
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
              {list.q || list.unread
                ? "No conversations match."
                : "No conversations yet. When someone messages your WhatsApp number, the chat shows up here."}
            </p>
          </div>
        )}
      </div>
      {creating && <NewConversation onClose={() => setCreating(false)} />}
    </section>
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
        </span>
      </a>
    </li>
  );
});

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
