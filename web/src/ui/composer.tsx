// The composer: a reply to the contact, or (the Note toggle) a private note for the team.
// `/` at the start offers the quick replies, filtered as one types; `@` in a note offers the
// teammates. Arrows move through the offer, Enter or Tab takes one, Escape dismisses it.
// A file (the paperclip, a drop on the chat, or an image pasted) is sent with the text as its
// caption, uploaded with its progress shown in the strip above the text.

import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import type { Upload } from "../api";
import { fileSize } from "../format";
import { sendMedia, sendMessage, sendNote } from "../inbox";
import { useStore } from "../store";
import type { CannedResponse, Message, User } from "../types";
import { fillTemplate } from "../workflow";
import { IconClose, IconFile, IconPaperclip, IconSend } from "./icons";

type Offer =
  | { kind: "canned"; items: CannedResponse[] }
  | { kind: "mention"; items: User[]; start: number; end: number };

/** What the text before the caret asks for, if anything. */
function offerFor(
  text: string,
  caret: number,
  note: boolean,
  canned: CannedResponse[],
  team: User[],
  me: string | undefined,
): Offer | null {
  const slash = /^\/([^\s/]*)$/.exec(text.slice(0, caret));
  if (slash && caret === text.length) {
    const q = slash[1].toLowerCase();
    const starts = canned.filter((r) => r.shortCode.startsWith(q));
    const rest = canned.filter(
      (r) =>
        !r.shortCode.startsWith(q) &&
        (r.shortCode.includes(q) || r.content.toLowerCase().includes(q)),
    );
    const items = [...starts, ...rest].slice(0, 8);
    return items.length ? { kind: "canned", items } : null;
  }
  if (!note) return null;
  const at = /(^|\s)@([^@\n]{0,40})$/.exec(text.slice(0, caret));
  if (!at) return null;
  const q = at[2].toLowerCase();
  const items = team
    .filter((u) => u.id !== me && u.name.toLowerCase().includes(q))
    .sort(
      (a, b) =>
        Number(!a.name.toLowerCase().startsWith(q)) - Number(!b.name.toLowerCase().startsWith(q)),
    )
    .slice(0, 8);
  if (!items.length) return null;
  return { kind: "mention", items, start: caret - at[2].length - 1, end: caret };
}

/** An Ogg file, which WhatsApp can play as a voice note. */
function isOgg(file: File): boolean {
  return /^audio\/ogg\b/.test(file.type) || /\.(ogg|opus|oga)$/i.test(file.name);
}

export function Composer(props: {
  id: string;
  /** A file dropped on the chat, to attach. */
  dropped?: File | null;
  onDroppedTaken?: () => void;
}) {
  const { id, dropped, onDroppedTaken } = props;
  const [file, setFile] = useState<File | null>(null);
  const [preview, setPreview] = useState<string | null>(null);
  const [voice, setVoice] = useState(false);
  const [progress, setProgress] = useState<number | null>(null);
  const uploading = useRef<Upload<Message> | null>(null);
  const picker = useRef<HTMLInputElement>(null);
  const [text, setText] = useState("");
  const [caret, setCaret] = useState(0);
  const [note, setNote] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [active, setActive] = useState(0);
  const [dismissed, setDismissed] = useState<string | null>(null);
  const area = useRef<HTMLTextAreaElement>(null);
  const c = useStore((s) => s.conversations[id], [id]);
  const me = useStore((s) => s.user);
  const canned = useStore((s) => s.canned);
  const team = useStore((s) => s.team);
  const pendingCaret = useRef<number | null>(null);

  useLayoutEffect(() => {
    const el = area.current;
    if (!el) return;
    el.style.height = "auto";
    el.style.height = `${Math.min(el.scrollHeight, 160)}px`;
    if (pendingCaret.current !== null) {
      el.setSelectionRange(pendingCaret.current, pendingCaret.current);
      pendingCaret.current = null;
    }
  }, [text]);

  // The preview's object URL lives as long as the attachment.
  useEffect(() => {
    if (!file?.type.startsWith("image/")) {
      setPreview(null);
      return;
    }
    const url = URL.createObjectURL(file);
    setPreview(url);
    return () => URL.revokeObjectURL(url);
  }, [file]);

  function attach(f: File) {
    if (uploading.current) return;
    setFile(f);
    setVoice(false);
    setError(null);
    area.current?.focus();
  }

  function detach() {
    if (uploading.current) {
      uploading.current.abort();
      return;
    }
    setFile(null);
    setError(null);
    area.current?.focus();
  }

  useEffect(() => {
    if (!dropped) return;
    attach(dropped);
    onDroppedTaken?.();
  });

  const offer = dismissed === text ? null : offerFor(text, caret, note, canned ?? [], team, me?.id);
  const count = offer?.items.length ?? 0;
  const current = count ? Math.min(active, count - 1) : 0;

  function update(value: string, at: number) {
    setText(value);
    setCaret(at);
    setActive(0);
  }

  function pick(i: number) {
    if (!offer) return;
    if (offer.kind === "canned") {
      const filled = fillTemplate(offer.items[i].content, c, me);
      pendingCaret.current = filled.length;
      update(filled, filled.length);
    } else {
      const insert = `@${offer.items[i].name} `;
      const value = text.slice(0, offer.start) + insert + text.slice(offer.end);
      const at = offer.start + insert.length;
      pendingCaret.current = at;
      update(value, at);
    }
    area.current?.focus();
  }

  const withFile = file !== null && !note;
  async function send() {
    const content = text.trim();
    if ((!content && !withFile) || busy) return;
    setBusy(true);
    setError(null);
    try {
      if (withFile && file) {
        setProgress(0);
        const up = sendMedia(id, file, content, (p) => setProgress(p), voice && isOgg(file));
        uploading.current = up;
        await up.done;
        setFile(null);
      } else if (note) await sendNote(id, content);
      else await sendMessage(id, content);
      update("", 0);
    } catch (e) {
      const err = e as Error & { code?: string };
      if (err.code !== "aborted") setError(err.message);
    } finally {
      uploading.current = null;
      setProgress(null);
      setBusy(false);
      area.current?.focus();
    }
  }

  const listId = "composer-offer";
  const optionId = (i: number) => `composer-offer-${i}`;
  const label = note ? "Write a private note" : "Write a message";
  return (
    <form
      class={`composer ${note ? "composer-note" : ""}`}
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
      {withFile && file && (
        <div class="attach-strip">
          {preview ? (
            <img class="attach-thumb" src={preview} alt="" />
          ) : (
            <IconFile class="attach-icon" />
          )}
          <span class="attach-info">
            <span class="attach-name" title={file.name}>
              {file.name || "Pasted image"}
            </span>
            <span class="attach-size">
              {fileSize(file.size)}
              {progress !== null && ` · Uploading ${Math.round(progress * 100)}%`}
            </span>
          </span>
          {progress !== null && (
            <progress
              class="attach-progress"
              max={1}
              value={progress}
              aria-label={`Uploading ${file.name}`}
            />
          )}
          {isOgg(file) && progress === null && (
            <label class="attach-voice">
              <input
                type="checkbox"
                checked={voice}
                onChange={(e) => setVoice((e.currentTarget as HTMLInputElement).checked)}
              />{" "}
              Send as a voice message
            </label>
          )}
          <button
            type="button"
            class="icon-btn"
            aria-label={
              progress !== null ? "Cancel the upload" : `Remove ${file.name || "the file"}`
            }
            title={progress !== null ? "Cancel the upload" : "Remove the file"}
            onClick={detach}
          >
            <IconClose />
          </button>
        </div>
      )}
      {note && (
        <p class="composer-mode" id="composer-mode">
          Private note: only your team sees it; it is never sent to WhatsApp. Type @ to mention a
          teammate.
        </p>
      )}
      {offer && (
        <div
          class="offer"
          id={listId}
          role="listbox"
          aria-label={offer.kind === "canned" ? "Quick replies" : "Teammates"}
        >
          {offer.kind === "canned"
            ? offer.items.map((r, i) => (
                // biome-ignore lint/a11y/useKeyWithClickEvents: the keyboard picks from the textarea (arrows, Enter)
                <div
                  key={r.id}
                  tabIndex={-1}
                  id={optionId(i)}
                  role="option"
                  aria-selected={i === current}
                  class="offer-item"
                  onMouseDown={(e) => e.preventDefault()}
                  onClick={() => pick(i)}
                >
                  <code>/{r.shortCode}</code>
                  <span class="offer-text">{fillTemplate(r.content, c, me)}</span>
                </div>
              ))
            : offer.items.map((u, i) => (
                // biome-ignore lint/a11y/useKeyWithClickEvents: the keyboard picks from the textarea (arrows, Enter)
                <div
                  key={u.id}
                  tabIndex={-1}
                  id={optionId(i)}
                  role="option"
                  aria-selected={i === current}
                  class="offer-item"
                  onMouseDown={(e) => e.preventDefault()}
                  onClick={() => pick(i)}
                >
                  <strong>{u.name}</strong>
                  <span class="offer-text muted">{u.email}</span>
                </div>
              ))}
        </div>
      )}
      <span class="sr-only" role="status">
        {offer
          ? `${count} ${offer.kind === "canned" ? "quick replies" : "teammates"}: arrows to choose, Enter to insert.`
          : ""}
      </span>
      {!note && (
        <button
          type="button"
          class="icon-btn attach-btn"
          aria-label="Attach a file"
          title="Attach a file"
          disabled={busy}
          onClick={() => picker.current?.click()}
        >
          <IconPaperclip />
        </button>
      )}
      <input
        ref={picker}
        type="file"
        class="file-input"
        tabIndex={-1}
        aria-hidden="true"
        hidden
        onChange={(e) => {
          const el = e.currentTarget as HTMLInputElement;
          const f = el.files?.[0];
          if (f) attach(f);
          el.value = "";
        }}
      />
      <button
        type="button"
        class="note-toggle"
        aria-pressed={note}
        title="Private note: only your team sees it"
        onClick={() => {
          setNote(!note);
          area.current?.focus();
        }}
      >
        Note
      </button>
      <label class="sr-only" for="composer-input">
        {label}
      </label>
      <span id="composer-hint" class="sr-only">
        Enter sends; Shift+Enter starts a new line; / at the start offers quick replies.
      </span>
      <textarea
        id="composer-input"
        ref={area}
        rows={1}
        value={text}
        placeholder={
          note
            ? "Private note for the team — @ to mention"
            : withFile
              ? "Add a caption"
              : "Type a message"
        }
        aria-describedby={note ? "composer-hint composer-mode" : "composer-hint"}
        aria-autocomplete="list"
        aria-controls={offer ? listId : undefined}
        aria-activedescendant={offer ? optionId(current) : undefined}
        onInput={(e) => {
          const el = e.currentTarget as HTMLTextAreaElement;
          update(el.value, el.selectionStart ?? el.value.length);
        }}
        onKeyUp={(e) => {
          const el = e.currentTarget as HTMLTextAreaElement;
          if (e.key.startsWith("Arrow") && !offer) setCaret(el.selectionStart ?? 0);
        }}
        onClick={(e) => setCaret((e.currentTarget as HTMLTextAreaElement).selectionStart ?? 0)}
        onPaste={(e) => {
          // An image from the clipboard (a screenshot) becomes the attachment; text pastes.
          if (note) return;
          const pasted = Array.from(e.clipboardData?.files ?? []).find((f) =>
            f.type.startsWith("image/"),
          );
          if (!pasted) return;
          e.preventDefault();
          attach(pasted);
        }}
        onKeyDown={(e) => {
          if (offer && !e.isComposing) {
            if (e.key === "ArrowDown" || e.key === "ArrowUp") {
              e.preventDefault();
              setActive((current + (e.key === "ArrowDown" ? 1 : count - 1)) % count);
              return;
            }
            if (e.key === "Enter" || e.key === "Tab") {
              e.preventDefault();
              pick(current);
              return;
            }
            if (e.key === "Escape") {
              e.preventDefault();
              setDismissed(text);
              return;
            }
          }
          if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
            e.preventDefault();
            void send();
          }
        }}
      />
      <button
        type="submit"
        class="send-btn"
        aria-label={note ? "Add note" : "Send"}
        disabled={busy || (!text.trim() && !withFile)}
      >
        <IconSend />
      </button>
    </form>
  );
}
