import { memo } from "preact/compat";
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { clock, dayLabel, displayName, fullTime } from "../format";
import { loadOlder, markReadSoon, retry, revealMessage } from "../inbox";
import { toast, useStore } from "../store";
import type { Message, User } from "../types";
import { ChatHeader } from "./chat-head";
import { Composer } from "./composer";
import { IconAlert, IconCheck, IconClock, IconDoubleCheck } from "./icons";
import { isMedia, MediaBody } from "./media";

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

/** A note's text with each `@Name` of a teammate set apart. */
function withMentions(text: string, team: User[]) {
  const names = team.map((u) => u.name).filter(Boolean);
  if (!names.length || !text.includes("@")) return text;
  const esc = names
    .sort((a, b) => b.length - a.length)
    .map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const re = new RegExp(`@(?:${esc.join("|")})`, "giu");
  const out: (string | preact.JSX.Element)[] = [];
  let at = 0;
  for (const m of text.matchAll(re)) {
    const i = m.index ?? 0;
    if (i > at) out.push(text.slice(at, i));
    out.push(
      <strong key={i} class="mention">
        {m[0]}
      </strong>,
    );
    at = i + m[0].length;
  }
  if (at < text.length) out.push(text.slice(at));
  return out;
}

const Bubble = memo(function Bubble(props: { m: Message; highlight: boolean; team: User[] }) {
  const { m, highlight, team } = props;
  const mine = m.sender === "agent";
  const media = isMedia(m);
  if (m.private) {
    const author = team.find((u) => u.id === m.authorId)?.name ?? "A teammate";
    return (
      <li
        class={`msg msg-note ${highlight ? "msg-highlight" : ""}`}
        data-id={m.id}
        data-private="true"
        tabIndex={highlight ? -1 : undefined}
      >
        <div class="bubble">
          <span class="note-label">
            Private note · <span class="note-author">{author}</span>
          </span>
          <p class="bubble-text">{withMentions(m.content, team)}</p>
          <span class="bubble-meta">
            <time dateTime={m.createdAt} title={fullTime(m.createdAt)}>
              {clock(m.createdAt)}
            </time>
          </span>
        </div>
      </li>
    );
  }
  return (
    <li
      class={`msg ${mine ? "msg-out" : "msg-in"} ${m.status === "failed" ? "msg-failed" : ""} ${highlight ? "msg-highlight" : ""}`}
      data-id={m.id}
      tabIndex={highlight ? -1 : undefined}
    >
      <div class={`bubble ${media ? `bubble-media bubble-${m.media?.kind ?? m.type}` : ""}`}>
        {media && <MediaBody m={m} />}
        {(!media || m.content) && <p class="bubble-text">{m.content}</p>}
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

export function Chat(props: { id: string; focus?: string | null }) {
  const { id, focus } = props;
  const c = useStore((s) => s.conversations[id], [id]);
  const thread = useStore((s) => s.threads[id], [id]);
  const whatsapp = useStore((s) => s.whatsapp?.state);
  const team = useStore((s) => s.team);
  const [highlight, setHighlight] = useState<string | null>(null);
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

  // A search result or a mention: load back to that message, then show it.
  useEffect(() => {
    if (!focus) return;
    let live = true;
    void revealMessage(id, focus).then((found) => {
      if (!live) return;
      if (found) setHighlight(focus);
      else toast("That message is not in this chat any more.");
    });
    return () => {
      live = false;
    };
  }, [id, focus]);
  useEffect(() => {
    if (!highlight) return;
    const el = scroller.current?.querySelector<HTMLElement>(`[data-id="${CSS.escape(highlight)}"]`);
    if (!el) return;
    stick.current = false;
    el.scrollIntoView({ block: "center" });
    el.focus({ preventScroll: true });
    const t = setTimeout(() => setHighlight(null), 6000);
    return () => clearTimeout(t);
  }, [highlight]);

  useEffect(() => {
    const onVisible = () => {
      if (document.visibilityState === "visible") markReadSoon(id);
    };
    document.addEventListener("visibilitychange", onVisible);
    return () => document.removeEventListener("visibilitychange", onVisible);
  }, [id]);

  // A file dragged over the chat: dropped, it becomes the composer's attachment.
  const [dragging, setDragging] = useState(false);
  const [dropped, setDropped] = useState<File | null>(null);
  const depth = useRef(0);
  const hasFiles = (e: DragEvent) => Array.from(e.dataTransfer?.types ?? []).includes("Files");
  // An image or a player that loads grows its bubble: stay at the bottom if the view was.
  const keepBottom = () => {
    const el = scroller.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  };

  const name = c ? displayName(c) : "";
  let lastDay = "";
  return (
    // biome-ignore lint/a11y/noStaticElementInteractions: a drop target for files; the keyboard's way is the Attach button
    <div
      class={`chat ${dragging ? "chat-dragging" : ""}`}
      onDragEnter={(e) => {
        if (!hasFiles(e)) return;
        e.preventDefault();
        depth.current += 1;
        setDragging(true);
      }}
      onDragOver={(e) => {
        if (!hasFiles(e)) return;
        e.preventDefault();
        if (e.dataTransfer) e.dataTransfer.dropEffect = "copy";
      }}
      onDragLeave={(e) => {
        if (!hasFiles(e)) return;
        depth.current = Math.max(0, depth.current - 1);
        if (depth.current === 0) setDragging(false);
      }}
      onDrop={(e) => {
        if (!hasFiles(e)) return;
        e.preventDefault();
        depth.current = 0;
        setDragging(false);
        const file = e.dataTransfer?.files[0];
        if (file) setDropped(file);
      }}
    >
      <ChatHeader c={c} />
      {dragging && (
        <div class="drop-hint" aria-hidden="true">
          Drop the file to attach it
        </div>
      )}
      <div
        class="chat-scroll"
        ref={scroller}
        onLoadCapture={keepBottom}
        onLoadedMetadataCapture={keepBottom}
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
              <Bubble key={m.id} m={m} highlight={m.id === highlight} team={team} />,
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
      <Composer id={id} dropped={dropped} onDroppedTaken={() => setDropped(null)} />
    </div>
  );
}
