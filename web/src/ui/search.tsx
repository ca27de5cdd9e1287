// The search screen: every message and note of the workspace, newest first, with the match
// highlighted from the API's `snippet` parts (text only, never markup). A result opens its
// chat at that message.

import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../api";
import { displayName, fullTime, shortTime } from "../format";
import { navigate, onLinkClick, useSearchParams } from "../router";
import type { SearchHit } from "../types";
import { ftsQuery, MAX_QUERY, shortWord } from "../workflow";
import { Avatar } from "./inbox";

interface Results {
  q: string;
  items: SearchHit[];
  next: string | null;
  loading: boolean;
  error: string | null;
}

export function Search() {
  const q = useSearchParams().get("q") ?? "";
  const [text, setText] = useState(q);
  const [r, setR] = useState<Results>({
    q: "",
    items: [],
    next: null,
    loading: false,
    error: null,
  });
  const input = useRef<HTMLInputElement>(null);
  const short = q ? shortWord(q) : null;
  const long = ftsQuery(q).length > MAX_QUERY;

  useEffect(() => {
    setText(q);
    if (!q.trim() || shortWord(q) || ftsQuery(q).length > MAX_QUERY) {
      setR({ q, items: [], next: null, loading: false, error: null });
      return;
    }
    let live = true;
    setR({ q, items: [], next: null, loading: true, error: null });
    api.search(ftsQuery(q)).then(
      (page) =>
        live && setR({ q, items: page.items, next: page.nextCursor, loading: false, error: null }),
      (e) =>
        live && setR({ q, items: [], next: null, loading: false, error: (e as Error).message }),
    );
    return () => {
      live = false;
    };
  }, [q]);

  useEffect(() => {
    if (!q) input.current?.focus();
  }, []);

  async function more() {
    if (!r.next || r.loading) return;
    const cursor = r.next;
    setR({ ...r, loading: true });
    try {
      const page = await api.search(ftsQuery(r.q), cursor);
      setR((cur) =>
        cur.q === r.q
          ? { ...cur, items: [...cur.items, ...page.items], next: page.nextCursor, loading: false }
          : cur,
      );
    } catch (e) {
      setR((cur) => ({ ...cur, loading: false, error: (e as Error).message }));
    }
  }

  return (
    <div class="page search-page">
      <header class="page-head">
        <h1>Search</h1>
        <p class="muted">Every message and private note of the workspace, newest first.</p>
      </header>
      {/* biome-ignore lint/a11y/useSemanticElements: <search> is not in Preact's JSX types */}
      <form
        class="search-form"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          const t = text.trim();
          navigate(t ? `/search?q=${encodeURIComponent(t)}` : "/search");
        }}
      >
        <label class="search search-big">
          <span class="sr-only">Search messages</span>
          <input
            ref={input}
            type="search"
            name="q"
            value={text}
            placeholder="Words from a message"
            maxLength={150}
            aria-describedby="search-hint"
            onInput={(e) => setText((e.currentTarget as HTMLInputElement).value)}
          />
        </label>
        <button type="submit" class="btn btn-primary">
          Search
        </button>
      </form>
      <p id="search-hint" class="muted small">
        Finds every word you type, also inside longer words, in any language. With several words,
        each needs 3 characters or more.
      </p>
      <div role="status" class="search-status">
        {short && (
          <p>With more than one word, each needs at least 3 characters (“{short}” is shorter).</p>
        )}
        {long && <p>That is too long to search: use fewer or shorter words.</p>}
        {r.error && <p class="form-error">{r.error}</p>}
        {!short && !long && q && !r.loading && !r.error && (
          <p class="muted">
            {r.items.length === 0
              ? `Nothing found for “${q}”.`
              : `${r.items.length}${r.next ? "+" : ""} ${r.items.length === 1 ? "message" : "messages"} found.`}
          </p>
        )}
        {r.loading && r.items.length === 0 && <p class="muted">Searching…</p>}
      </div>
      {r.items.length > 0 && (
        <ol class="results" aria-label="Search results">
          {r.items.map((hit) => (
            <Result key={hit.message.id} hit={hit} />
          ))}
        </ol>
      )}
      {r.next && (
        <div>
          <button type="button" class="btn" disabled={r.loading} onClick={() => void more()}>
            {r.loading ? "Loading…" : "Load more"}
          </button>
        </div>
      )}
    </div>
  );
}

function Result(props: { hit: SearchHit }) {
  const { message: m, conversation: c, snippet } = props.hit;
  const name = displayName(c);
  const href = `/inbox/${encodeURIComponent(c.id)}?message=${encodeURIComponent(m.id)}`;
  return (
    <li class="result" data-id={m.id}>
      <a href={href} class="result-link" onClick={(e) => onLinkClick(e, href)}>
        <Avatar name={name} id={c.contactNumber} />
        <span class="result-main">
          <span class="result-top">
            <span class="result-name">{name}</span>
            {m.private && <span class="tag tag-note">Private note</span>}
            {!m.private && m.sender === "agent" && <span class="tag">Reply</span>}
            <time dateTime={m.createdAt} title={fullTime(m.createdAt)}>
              {shortTime(m.createdAt)}
            </time>
          </span>
          <span class="result-snippet">
            {snippet.length
              ? snippet.map((part, i) =>
                  part.match ? <mark key={i}>{part.text}</mark> : <span key={i}>{part.text}</span>,
                )
              : m.content}
          </span>
        </span>
      </a>
    </li>
  );
}
