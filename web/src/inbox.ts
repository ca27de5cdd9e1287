// Inbox data: the conversation list (paged over nextCursor), the open chat's history (paged
// upward with `before`), sending, and applying realtime events to both.

import { ApiError, api, type Upload } from "./api";
import { navigate } from "./router";
import { getState, initialList, type ListState, setState, type Thread, toast } from "./store";
import type {
  AppEvent,
  Conversation,
  Media,
  Message,
  MessageStatus,
  WireConversation,
} from "./types";

const RANK: Record<MessageStatus, number> = {
  pending: 0,
  sent: 1,
  delivered: 2,
  read: 3,
  failed: 4,
};

/** Statuses only move forward (pending → sent → delivered → read, or → failed). */
function newerStatus(current: MessageStatus, next: MessageStatus): MessageStatus {
  if (current === "failed" && next !== "failed") return RANK[next] > RANK.sent ? next : current;
  return RANK[next] >= RANK[current] ? next : current;
}

function emptyThread(): Thread {
  return { items: [], older: null, loading: false, loaded: false, error: null };
}

function time(m: { createdAt: string }): number {
  return Date.parse(m.createdAt);
}

/** Inserts or updates messages in a thread (oldest first), one entry per id. */
function mergeMessages(items: Message[], incoming: Message[]): Message[] {
  const out = items.slice();
  const index = new Map(out.map((m, i) => [m.id, i]));
  for (const m of incoming) {
    const at = index.get(m.id);
    if (at !== undefined) {
      const old = out[at];
      out[at] = { ...old, ...m, status: newerStatus(old.status, m.status) };
      continue;
    }
    // Usually the newest: walk back from the end to its place.
    let i = out.length;
    while (i > 0 && time(out[i - 1]) > time(m)) i--;
    out.splice(i, 0, m);
    index.clear();
    for (let j = 0; j < out.length; j++) index.set(out[j].id, j);
  }
  return out;
}

// ---- the conversation list ---------------------------------------------------------------

/** The list's filters; `reloadList` takes any of them. */
export type ListFilter = Pick<ListState, "q" | "unread" | "status" | "assignee" | "label">;

function query(list: ListState) {
  return {
    q: list.q,
    unread: list.unread,
    status: list.status,
    assignee: list.assignee,
    label: list.label,
  };
}

/**
 * Whether a conversation belongs in the list: "yes"; "soft" when only the search text or the
 * unread filter fails (the open chat then stays in view, e.g. once it is read under
 * "Unread"); "no" when its status, assignee or labels put it elsewhere.
 */
function matchesFilter(c: Conversation): "yes" | "soft" | "no" {
  const s = getState();
  const { q, unread, status, assignee, label } = s.list;
  if (c.status !== status) return "no";
  if (assignee === "me" && c.assigneeId !== s.user?.id) return "no";
  if (assignee === "unassigned" && c.assigneeId !== null) return "no";
  if (label && !c.labels.includes(label)) return "no";
  if (unread && c.unreadCount === 0) return "soft";
  if (!q) return "yes";
  const needle = q.trim().toLowerCase();
  if ((c.contactName ?? "").toLowerCase().includes(needle)) return "yes";
  const digits = needle.replace(/[\s+\-().]/g, "");
  return /^\d+$/.test(digits) && c.contactNumber.includes(digits) ? "yes" : "soft";
}

/** A conversation from the API with the fields an older answer may lack filled in. */
function normal(c: WireConversation, prev?: Conversation): Conversation {
  return {
    ...c,
    status: c.status ?? prev?.status ?? "open",
    snoozedUntil: c.snoozedUntil ?? null,
    assigneeId: c.assigneeId ?? null,
    labels: c.labels ?? [],
    pushName: c.pushName ?? null,
    nameEdited: c.nameEdited ?? false,
    unreadCount: c.unreadCount ?? prev?.unreadCount ?? c.contactUnreadCount ?? 0,
  };
}

function activity(c: Conversation): number {
  return Date.parse(c.lastMessageAt ?? c.createdAt);
}

export async function reloadList(filter?: Partial<ListFilter>): Promise<void> {
  const prev = getState().list;
  setState({
    list: {
      ...initialList(),
      ...query(prev),
      ...filter,
      generation: prev.generation + 1,
      order: filter ? [] : prev.order,
    },
  });
  loadCountsSoon(0);
  await loadMore(true);
}

// First-page fetches are numbered: an answer older than one already applied is dropped.
let firstIssued = 0;
let firstApplied = 0;
// Conversations moved or created by events, with when (a counter): a first page requested
// before such an event keeps it on top.
let touchClock = 0;
const touched = new Map<string, number>();

function applyFirstPage(
  n: number,
  since: number,
  items: Conversation[],
  next: string | null,
  keepTail: boolean,
): void {
  if (n < firstApplied) return;
  firstApplied = n;
  const s = getState();
  const conversations = { ...s.conversations };
  for (const c of items) conversations[c.id] = normal(c);
  const ids = items.map((c) => c.id);
  const fresh = new Set(ids);
  const live = s.list.order.filter(
    (id) =>
      !fresh.has(id) &&
      (touched.get(id) ?? 0) > since &&
      conversations[id] !== undefined &&
      matchesFilter(conversations[id]) !== "no",
  );
  const head = [...live, ...ids];
  // A refresh keeps the pages loaded below the first one (their cursor still holds).
  const inHead = new Set(head);
  const tail =
    keepTail && s.list.order.length > ids.length
      ? s.list.order.filter((id) => !inHead.has(id))
      : [];
  const longer = tail.length > 0;
  setState({
    conversations,
    list: {
      ...s.list,
      order: [...head, ...tail],
      cursor: longer ? s.list.cursor : next,
      done: longer ? s.list.done : next === null,
      loading: false,
    },
  });
}

export async function loadMore(first = false): Promise<void> {
  const list = getState().list;
  if (list.loading || (list.done && !first)) return;
  const generation = list.generation;
  const n = first ? ++firstIssued : 0;
  const since = touchClock;
  setState({ list: { ...list, loading: true, error: null } });
  try {
    const page = await api.conversations({
      cursor: first ? null : list.cursor,
      ...query(list),
    });
    const s = getState();
    if (s.list.generation !== generation) return;
    if (first) {
      applyFirstPage(n, since, page.items, page.nextCursor, false);
      const after = getState().list;
      if (after.loading) setState({ list: { ...after, loading: false } });
      return;
    }
    const conversations = { ...s.conversations };
    for (const c of page.items) conversations[c.id] = normal(c);
    const seen = new Set(s.list.order);
    const order = [...s.list.order, ...page.items.map((c) => c.id).filter((id) => !seen.has(id))];
    setState({
      conversations,
      list: {
        ...s.list,
        order,
        cursor: page.nextCursor,
        done: page.nextCursor === null,
        loading: false,
      },
    });
  } catch (e) {
    const s = getState();
    if (s.list.generation !== generation) return;
    setState({
      list: { ...s.list, loading: false, error: (e as Error).message },
    });
  }
}

/** Fetches the first page again and merges it in, without disturbing a load in flight. */
export async function refreshFirstPage(): Promise<void> {
  const list = getState().list;
  const { generation } = list;
  const n = ++firstIssued;
  const since = touchClock;
  loadCountsSoon(0);
  try {
    const page = await api.conversations(query(list));
    if (getState().list.generation !== generation) return;
    applyFirstPage(n, since, page.items, page.nextCursor, true);
  } catch {
    // The next reconnect or filter change reloads.
  }
}

// ---- the tabs' counts --------------------------------------------------------------------

let countsTimer: ReturnType<typeof setTimeout> | undefined;
let countsIssued = 0;

/** Reloads the tabs' numbers a moment after the last change (a burst costs one request). */
export function loadCountsSoon(delay = 400): void {
  clearTimeout(countsTimer);
  countsTimer = setTimeout(() => void loadCounts(), delay);
}

async function loadCounts(): Promise<void> {
  const { list, user } = getState();
  if (!user) return;
  const n = ++countsIssued;
  try {
    const counts = await api.counts({
      status: list.status,
      assignee: list.assignee,
      label: list.label,
    });
    if (n === countsIssued) setState({ counts });
  } catch {
    // The numbers stay as they were; the next change asks again.
  }
}

// Conversations an event named without the caller's own unread count, and which the store
// did not hold: their count is asked for once.
const askUnread = new Set<string>();
function fetchOwnCountSoon(id: string): void {
  if (askUnread.has(id)) return;
  askUnread.add(id);
  setTimeout(async () => {
    try {
      const c = await api.conversation(id);
      const prev = getState().conversations[id];
      if (prev) upsertConversation({ ...prev, unreadCount: c.unreadCount }, false);
    } catch {
      // Keep the estimate.
    } finally {
      askUnread.delete(id);
    }
  }, 200);
}

/**
 * A conversation changed; `moved` says it got a message (so it goes to the top). `bump` says
 * a message from the contact came in that this member is not reading: when the event leaves
 * out the member's own unread count (events to the whole team do), the count kept goes up by
 * one instead of being replaced.
 */
export function upsertConversation(wire: WireConversation, moved: boolean, bump = false): void {
  const s = getState();
  const prev = s.conversations[wire.id];
  const c = normal(wire, prev);
  // An answer computed before a newer message (a mark-read in flight while one arrives) does
  // not take the list's last message back.
  if (prev?.lastMessageAt && c.lastMessageAt && prev.lastMessageAt !== c.lastMessageAt) {
    if (Date.parse(prev.lastMessageAt) > Date.parse(c.lastMessageAt)) {
      c.lastMessage = prev.lastMessage;
      c.lastMessageAt = prev.lastMessageAt;
    }
  }
  if (wire.unreadCount === undefined) {
    if (prev) c.unreadCount = prev.unreadCount + (bump ? 1 : 0);
    else {
      c.unreadCount = Math.max(wire.contactUnreadCount ?? 0, bump ? 1 : 0);
      fetchOwnCountSoon(c.id);
    }
  }
  const conversations = { ...s.conversations, [c.id]: c };
  let order = s.list.order;
  const present = order.includes(c.id);
  const fit = matchesFilter(c);
  if (fit === "no" || (fit === "soft" && c.id !== s.activeId)) {
    if (present) order = order.filter((id) => id !== c.id);
  } else if (moved) {
    order = [c.id, ...order.filter((id) => id !== c.id)];
    touched.set(c.id, ++touchClock);
  } else if (!present && fit === "yes") {
    // It newly belongs here (reopened, assigned, labelled): at its place by activity, unless
    // that is below the pages loaded so far (paging brings it then).
    const at = order.findIndex((id) => {
      const o = conversations[id];
      return o !== undefined && activity(o) < activity(c);
    });
    if (at >= 0) order = [...order.slice(0, at), c.id, ...order.slice(at)];
    else if (s.list.done) order = [...order, c.id];
    if (order !== s.list.order) touched.set(c.id, ++touchClock);
  }
  setState({ conversations, list: order === s.list.order ? s.list : { ...s.list, order } });
}

// ---- the open chat -----------------------------------------------------------------------

export async function openConversation(id: string): Promise<void> {
  const s = getState();
  setState({ activeId: id });
  if (!s.conversations[id]) {
    try {
      const c = await api.conversation(id);
      setState((st) => ({ conversations: { ...st.conversations, [c.id]: normal(c) } }));
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) {
        toast("That conversation does not exist.");
        if (getState().activeId === id) navigate("/inbox", true);
      }
      return;
    }
  }
  const thread = getState().threads[id];
  if (!thread?.loaded) await loadLatest(id);
  markReadSoon(id);
}

export function closeConversation(): void {
  setState({ activeId: null });
}

function setThread(id: string, patch: Partial<Thread>): void {
  setState((s) => ({
    threads: { ...s.threads, [id]: { ...(s.threads[id] ?? emptyThread()), ...patch } },
  }));
}

/** The newest page of a chat (on open, or to resynchronise after a gap). */
export async function loadLatest(id: string): Promise<void> {
  setThread(id, { loading: true, error: null });
  try {
    const page = await api.messages(id);
    const prev = getState().threads[id] ?? emptyThread();
    const items = mergeMessages(prev.loaded ? prev.items : [], page.items.slice().reverse());
    setThread(id, {
      items,
      older: prev.loaded && prev.older !== null ? prev.older : page.nextCursor,
      loading: false,
      loaded: true,
    });
  } catch (e) {
    setThread(id, { loading: false, error: (e as Error).message });
  }
}

export async function loadOlder(id: string): Promise<void> {
  const thread = getState().threads[id];
  if (!thread || thread.loading || thread.older === null) return;
  setThread(id, { loading: true });
  try {
    const page = await api.messages(id, thread.older);
    const cur = getState().threads[id] ?? emptyThread();
    setThread(id, {
      items: mergeMessages(cur.items, page.items.slice().reverse()),
      older: page.nextCursor,
      loading: false,
    });
  } catch (e) {
    setThread(id, { loading: false, error: (e as Error).message });
  }
}

const reading = new Set<string>();
/**
 * Marks the open conversation read (once per burst), while the tab is visible. `force` asks
 * even when the count kept is 0 (a message came in while the member was reading).
 */
export function markReadSoon(id: string, force = false): void {
  const c = getState().conversations[id];
  if (
    !c ||
    (c.unreadCount === 0 && !force) ||
    reading.has(id) ||
    document.visibilityState !== "visible"
  ) {
    return;
  }
  reading.add(id);
  setTimeout(async () => {
    try {
      const updated = await api.markRead(id);
      upsertConversation(updated, false);
    } catch {
      // The badge stays; the next open retries.
    } finally {
      reading.delete(id);
    }
  }, 150);
}

/**
 * Loads a chat's history upward until `messageId` is in it (a search result, a mention);
 * false when the start of the chat is reached without it.
 */
export async function revealMessage(id: string, messageId: string): Promise<boolean> {
  for (let i = 0; i < 400; i++) {
    const t = getState().threads[id];
    if (t?.items.some((m) => m.id === messageId)) return true;
    if (t?.loading) {
      await new Promise((r) => setTimeout(r, 50));
      continue;
    }
    if (!t?.loaded) {
      await loadLatest(id);
      if (getState().threads[id]?.error) return false;
      continue;
    }
    if (t.error || t.older === null) return false;
    await loadOlder(id);
  }
  return false;
}

export async function sendMessage(id: string, content: string): Promise<void> {
  const message = await api.send(id, content);
  applyMessage(message);
}

/** A private note: stored in the timeline, never sent to WhatsApp. */
export async function sendNote(id: string, content: string): Promise<void> {
  const message = await api.addNote(id, content);
  applyMessage(message);
}

/**
 * Sends a file with its caption; `onProgress` follows the upload (0 to 1). The message joins
 * the chat once the server has it (201), then moves through the usual ticks.
 */
export function sendMedia(
  id: string,
  file: File,
  caption: string,
  onProgress?: (sent: number) => void,
  voice = false,
): Upload<Message> {
  const up = api.sendMedia(id, file, { caption, voice }, onProgress);
  return {
    abort: up.abort,
    done: up.done.then((message) => {
      applyMessage(message);
      return message;
    }),
  };
}

/**
 * Sends a failed message again, as a new message: its text, or its file (read back through
 * its link) and caption.
 */
export async function retry(message: Message): Promise<void> {
  try {
    const media = message.media;
    if (media) {
      const fresh = await api.mediaLinks(media.id);
      const res = await fetch(fresh.url);
      if (!res.ok) throw new Error("The file could not be read back to send it again.");
      const blob = await res.blob();
      const name = media.fileName ?? `${media.kind}${extension(media.mimeType)}`;
      const file = new File([blob], name, { type: media.mimeType });
      await sendMedia(message.conversationId, file, message.content, undefined, media.voice).done;
    } else {
      await sendMessage(message.conversationId, message.content);
    }
  } catch (e) {
    toast((e as Error).message);
  }
}

function extension(mime: string): string {
  const sub = mime.split("/")[1]?.split(";")[0] ?? "";
  if (sub === "jpeg") return ".jpg";
  return /^[a-z0-9]{2,5}$/.test(sub) ? `.${sub}` : "";
}

// Media items whose links were renewed, with the renewed link: a second failure of the same
// link is not asked again (the item is broken, not its link).
const renewed = new Map<string, string>();
const renewing = new Map<string, Promise<Media | null>>();

/**
 * Fresh signed links for a message's media (they expired, or an element failed to load with
 * them), put into the chat; null when they were already renewed and fail still.
 */
export function renewMediaLinks(m: Message, failedUrl?: string): Promise<Media | null> {
  const media = m.media;
  if (!media) return Promise.resolve(null);
  if (failedUrl !== undefined && renewed.get(media.id) === failedUrl) return Promise.resolve(null);
  const inFlight = renewing.get(media.id);
  if (inFlight) return inFlight;
  const p = api
    .mediaLinks(media.id)
    .then((fresh) => {
      renewed.set(media.id, fresh.url);
      replaceMedia(m.conversationId, m.id, fresh);
      return fresh;
    })
    .catch(() => null)
    .finally(() => renewing.delete(media.id));
  renewing.set(media.id, p);
  return p;
}

function replaceMedia(conversationId: string, messageId: string, media: Media): void {
  const thread = getState().threads[conversationId];
  if (!thread?.loaded) return;
  const at = thread.items.findIndex((x) => x.id === messageId);
  if (at < 0) return;
  const items = thread.items.slice();
  items[at] = { ...items[at], media };
  setThread(conversationId, { items });
}

function applyMessage(m: Message): void {
  const thread = getState().threads[m.conversationId];
  if (!thread?.loaded) return;
  setThread(m.conversationId, { items: mergeMessages(thread.items, [m]) });
}

function applyStatus(m: Message): void {
  const thread = getState().threads[m.conversationId];
  if (!thread?.loaded) return;
  const at = thread.items.findIndex((x) => x.id === m.id);
  if (at < 0) return;
  setThread(m.conversationId, { items: mergeMessages(thread.items, [m]) });
}

// ---- events ------------------------------------------------------------------------------

type IncomingHook = (m: Message, c: Conversation) => void;
let onIncoming: IncomingHook = () => {};
export function setIncomingHook(hook: IncomingHook): void {
  onIncoming = hook;
}

/** Applies one realtime event (live or from /api/events); safe to apply twice. */
export function applyChatEvent(e: AppEvent, live: boolean): void {
  switch (e.type) {
    case "incoming_message":
    case "message_sent": {
      const c = e.conversation;
      const fromContact = e.type === "incoming_message" && e.message?.sender !== "agent";
      const isReading =
        c !== undefined && c.id === getState().activeId && document.visibilityState === "visible";
      if (c) upsertConversation(c, true, fromContact && !isReading);
      if (e.message) applyMessage(e.message);
      if (e.type === "incoming_message" && e.message && c) {
        if (live) onIncoming(e.message, normal(c, getState().conversations[c.id]));
        if (fromContact && c.id === getState().activeId) markReadSoon(c.id, isReading);
      }
      loadCountsSoon();
      break;
    }
    case "message_status":
    case "media_updated":
      // A receipt, or an incoming item's bytes stored (or its fetch failed): the message in
      // place, if the chat has it.
      if (e.message) applyStatus(e.message);
      break;
    case "note_added":
      if (e.conversation) upsertConversation(e.conversation, false);
      if (e.message) applyMessage(e.message);
      break;
    case "conversation_updated":
      if (e.conversation) upsertConversation(e.conversation, false);
      loadCountsSoon();
      break;
    default:
      break;
  }
}

/** After a gap that the event log cannot fill: reload what is on screen. */
export async function resync(): Promise<void> {
  const active = getState().activeId;
  setState((s) => ({
    threads: active && s.threads[active] ? { [active]: s.threads[active] } : {},
  }));
  await Promise.all([refreshFirstPage(), active ? loadLatest(active) : Promise.resolve()]);
}
