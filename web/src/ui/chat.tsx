import { memo } from "preact/compat";
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { clock, dayLabel, displayName, formatNumber, fullTime } from "../format";
import { loadOlder, markReadSoon, retry, sendMessage } from "../inbox";
import { navigate } from "../router";
import { useStore } from "../store";
import type { Message } from "../types";
import { IconAlert, IconBack, IconCheck, IconClock, IconDoubleCheck, IconSend } from "./icons";
import { Avatar } from "./inbox";

const STATUS_LABEL: Record<Message["status"], string> = {
  pending: "Sending",
  sent: "Sent",
  delivered: "Delivered",
  read: "Read",
  failed: "Not sent",
};

function Ticks(props: { status: Message["status"] }) {
  const { status } = props;
  const label = STATUS_LABEL[status];
  return (
    <span
      class={`ticks ticks-${status}`}
      data-status={status}
      role="img"
      aria-label={label}
      title={label}
    >
      {status === "pending" && <IconClock />}
      {status === "sent" && <IconCheck />}
      {(status === "delivered" || status === "read") && <IconDoubleCheck />}
      {status === "failed" && <IconAlert />}
    </span>
  );
}

const Bubble = memo(function Bubble(props: { m: Message }) {
  const { m } = props;
  const mine = m.sender === "agent";
  return (
    <li
      class={`msg ${mine ? "msg-out" : "msg-in"} ${m.status === "failed" ? "msg-failed" : ""}`}
      data-id={m.id}
    >
      <div class="bubble">
        <p class="bubble-text">{m.content}</p>
        <span class="bubble-meta">
          <time dateTime={m.createdAt} title={fullTime(m.createdAt)}>
            {clock(m.createdAt)}
          </time>
          {mine && <Ticks status={m.status} />}
        </span>
      </div>
      {m.status === "failed" && (
        <div class="msg-error">
          <span>Not sent: {m.failureReason ?? "WhatsApp refused this message."}</span>
          <button type="button" class="link-btn" onClick={() => void retry(m)}>
            Retry
          </button>
        </div>
      )}
    </li>
  );
});

export function Chat(props: { id: string }) {
  const { id } = props;
  const c = useStore((s) => s.conversations[id], [id]);
  const thread = useStore((s) => s.threads[id], [id]);
  const whatsapp = useStore((s) => s.whatsapp?.state);
  const scroller = useRef<HTMLDivElement>(null);
  const top = useRef<HTMLLIElement>(null);
  const stick = useRef(true);
  const anchor = useRef<{ first: string; fromBottom: number } | null>(null);
  const items = thread?.items ?? [];
  const firstId = items[0]?.id;
  const lastId = items[items.length - 1]?.id;

  // Keep the view at the bottom for new messages (when it was there), and in place when
  // older ones are added above.
  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const a = anchor.current;
    if (a && a.first !== firstId) {
      el.scrollTop = el.scrollHeight - a.fromBottom;
    } else if (stick.current) {
      el.scrollTop = el.scrollHeight;
    }
    anchor.current = firstId
      ? { first: firstId, fromBottom: el.scrollHeight - el.scrollTop }
      : null;
  }, [firstId, lastId, items.length]);

  const older = thread?.older ?? null;
  const loading = thread?.loading ?? false;
  useEffect(() => {
    const el = top.current;
    if (!el || older === null || loading) return;
    const io = new IntersectionObserver(
      (entries) => {
        if (entries.some((e) => e.isIntersecting)) void loadOlder(id);
      },
      { root: scroller.current, rootMargin: "300px 0px" },
    );
    io.observe(el);
    return () => io.disconnect();
  }, [id, older, loading]);

  useEffect(() => {
    const onVisible = () => {
      if (document.visibilityState === "visible") markReadSoon(id);
    };
    document.addEventListener("visibilitychange", onVisible);
    return () => document.removeEventListener("visibilitychange", onVisible);
  }, [id]);

  const name = c ? displayName(c) : "";
  let lastDay = "";
  return (
    <div class="chat">
      <header class="chat-head">
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
          <h2>{name || "Loading…"}</h2>
          {c?.contactName && <span class="muted">{formatNumber(c.contactNumber)}</span>}
        </div>
      </header>
      <div
        class="chat-scroll"
        ref={scroller}
        onScroll={(e) => {
          const el = e.currentTarget as HTMLDivElement;
          stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 80;
          if (firstId)
            anchor.current = { first: firstId, fromBottom: el.scrollHeight - el.scrollTop };
        }}
      >
        <ol
          class="messages"
          aria-label={`Messages with ${name}`}
          aria-live="polite"
          aria-relevant="additions"
        >
          {older !== null && (
            <li ref={top} class="history-sentinel" aria-hidden="true">
              {loading ? "Loading earlier messages…" : ""}
            </li>
          )}
          {thread?.loaded && older === null && (
            <li class="history-start">This is the start of the conversation.</li>
          )}
          {items.map((m) => {
            const day = dayLabel(m.createdAt);
            const sep = day !== lastDay;
            lastDay = day;
            return [
              sep ? (
                <li key={`d-${m.id}`} class="day-sep">
                  <span>{day}</span>
                </li>
              ) : null,
              <Bubble key={m.id} m={m} />,
            ];
          })}
        </ol>
        {thread?.error && (
          <p class="form-error" role="alert">
            {thread.error}
          </p>
        )}
      </div>
      {whatsapp && whatsapp !== "connected" && (
        <p class="chat-note" role="note">
          WhatsApp is not connected: messages you send wait as “Sending” and go out once it is.
        </p>
      )}
      <Composer id={id} />
    </div>
  );
}

function Composer(props: { id: string }) {
  const [text, setText] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const area = useRef<HTMLTextAreaElement>(null);

  useLayoutEffect(() => {
    const el = area.current;
    if (!el) return;
    el.style.height = "auto";
    el.style.height = `${Math.min(el.scrollHeight, 160)}px`;
  }, [text]);

  async function send() {
    const content = text.trim();
    if (!content || busy) return;
    setBusy(true);
    setError(null);
    try {
      await sendMessage(props.id, content);
      setText("");
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
      area.current?.focus();
    }
  }

  return (
    <form
      class="composer"
      onSubmit={(e) => {
        e.preventDefault();
        void send();
      }}
    >
      {error && (
        <p class="form-error composer-error" role="alert">
          {error}
        </p>
      )}
      <label class="sr-only" for="composer-input">
        Write a message
      </label>
      <span id="composer-hint" class="sr-only">
        Enter sends; Shift+Enter starts a new line.
      </span>
      <textarea
        id="composer-input"
        ref={area}
        rows={1}
        value={text}
        placeholder="Type a message"
        aria-describedby="composer-hint"
        onInput={(e) => setText((e.currentTarget as HTMLTextAreaElement).value)}
        onKeyDown={(e) => {
          if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
            e.preventDefault();
            void send();
          }
        }}
      />
      <button type="submit" class="send-btn" aria-label="Send" disabled={busy || !text.trim()}>
        <IconSend />
      </button>
    </form>
  );
}
