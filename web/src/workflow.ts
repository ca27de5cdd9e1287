// The team workflow's data: the team, labels, quick replies and notifications in the store,
// and the actions on a conversation (status, assignee, labels, contact name). Each action
// applies the server's answer at once; the `conversation_updated` event that follows brings
// the same state to everyone else's screen.

import { api } from "./api";
import { displayName } from "./format";
import { loadCountsSoon, reloadList, upsertConversation } from "./inbox";
import { getState, setState } from "./store";
import type {
  AppEvent,
  AppNotification,
  CannedResponse,
  Conversation,
  ConversationStatus,
  Label,
  User,
} from "./types";

// ---- what the workflow screens read -----------------------------------------------------

export async function loadTeam(): Promise<User[]> {
  const page = await api.team();
  setState({ team: page.items });
  return page.items;
}

const byName = (a: Label, b: Label) => a.name.localeCompare(b.name);

export async function loadLabels(): Promise<void> {
  const { items } = await api.labels();
  setState({ labels: items.slice().sort(byName) });
  dropGoneLabelFilter();
}

/** A label filter whose label was deleted (here or by someone else) goes back to any label. */
function dropGoneLabelFilter(): void {
  const { list, labels } = getState();
  if (list.label && !labels.some((l) => l.id === list.label)) void reloadList({ label: null });
}

export async function loadCanned(): Promise<void> {
  const { items } = await api.cannedResponses();
  setState({ canned: sortCanned(items) });
}

function sortCanned(items: CannedResponse[]): CannedResponse[] {
  return items.slice().sort((a, b) => a.shortCode.localeCompare(b.shortCode));
}

/** Everything the inbox needs besides the list, at sign-in (failures leave it empty). */
export function loadWorkflow(): void {
  loadTeam().catch(() => {});
  loadLabels().catch(() => {});
  loadCanned().catch(() => {});
  loadNotifications().catch(() => {});
}

// ---- conversation actions ---------------------------------------------------------------

function applied(c: Conversation | undefined | null): void {
  // The answer is the conversation as the caller sees it (their own unread count included).
  if (c && typeof c === "object" && "id" in c) upsertConversation(c, false);
  loadCountsSoon(100);
}

export async function setStatus(
  id: string,
  status: ConversationStatus,
  snoozedUntil?: Date,
): Promise<void> {
  applied(await api.setStatus(id, status, snoozedUntil?.toISOString()));
}

export async function assign(id: string, userId: string | null): Promise<void> {
  applied(await api.assign(id, userId));
}

export async function setLabels(id: string, labels: string[]): Promise<void> {
  applied(await api.setLabels(id, labels));
}

/** A name sets the team's name for the contact; empty goes back to WhatsApp's push name. */
export async function renameContact(id: string, name: string): Promise<void> {
  const trimmed = name.trim();
  applied(await api.renameContact(id, trimmed === "" ? null : trimmed));
}

// ---- labels and quick replies (owners and admins manage them) ----------------------------

export async function createLabel(name: string, color: string): Promise<void> {
  const label = await api.createLabel({ name, color });
  setState((s) => ({ labels: [...s.labels.filter((l) => l.id !== label.id), label].sort(byName) }));
}

export async function updateLabel(id: string, patch: { name?: string; color?: string }) {
  const label = await api.updateLabel(id, patch);
  setState((s) => ({ labels: s.labels.map((l) => (l.id === id ? label : l)).sort(byName) }));
}

export async function deleteLabel(id: string): Promise<void> {
  await api.deleteLabel(id);
  setState((s) => ({ labels: s.labels.filter((l) => l.id !== id) }));
  dropGoneLabelFilter();
}

export async function createCanned(shortCode: string, content: string): Promise<void> {
  const r = await api.createCanned({ shortCode, content });
  setState((s) => ({ canned: sortCanned([...(s.canned ?? []).filter((x) => x.id !== r.id), r]) }));
}

export async function updateCanned(id: string, patch: { shortCode?: string; content?: string }) {
  const r = await api.updateCanned(id, patch);
  setState((s) => ({ canned: sortCanned((s.canned ?? []).map((x) => (x.id === id ? r : x))) }));
}

export async function deleteCanned(id: string): Promise<void> {
  await api.deleteCanned(id);
  setState((s) => ({ canned: (s.canned ?? []).filter((x) => x.id !== id) }));
}

/** A quick reply's text with `{{contact.name}}` and `{{agent.name}}` filled in. */
export function fillTemplate(content: string, c: Conversation | undefined, agent: User | null) {
  const contact = c ? displayName(c) : "";
  return content
    .replace(/\{\{\s*contact\.name\s*\}\}/g, contact)
    .replace(/\{\{\s*agent\.name\s*\}\}/g, agent?.name ?? "");
}

// ---- notifications -----------------------------------------------------------------------

function isRead(n: AppNotification): boolean {
  return n.readAt !== null;
}

export { isRead as notificationIsRead };

export async function loadNotifications(more = false): Promise<void> {
  const cur = getState().notifications;
  const page = await api.notifications(more ? cur.cursor : null);
  setState((s) => {
    const seen = new Set(more ? s.notifications.items.map((n) => n.id) : []);
    const items = more
      ? [...s.notifications.items, ...page.items.filter((n) => !seen.has(n.id))]
      : page.items;
    return {
      notifications: { items, unread: page.unread, cursor: page.nextCursor, loaded: true },
    };
  });
}

/** Marks the given notifications (or all) read, on screen at once. */
export async function markNotificationsRead(ids?: string[]): Promise<void> {
  setState((s) => {
    const hit = (n: AppNotification) => !ids || ids.includes(n.id);
    const newly = s.notifications.items.filter((n) => hit(n) && !isRead(n)).length;
    return {
      notifications: {
        ...s.notifications,
        items: s.notifications.items.map((n) =>
          hit(n) && !isRead(n) ? { ...n, readAt: new Date().toISOString() } : n,
        ),
        unread: ids ? Math.max(0, s.notifications.unread - newly) : 0,
      },
    };
  });
  try {
    await api.markNotificationsRead(ids);
  } catch {
    // The next load shows the server's numbers.
  }
}

/** Who wrote a message, by the team list. */
export function memberName(id: string | null | undefined): string | null {
  if (!id) return null;
  return getState().team.find((u) => u.id === id)?.name ?? null;
}

/** How much of its note a notification quotes (the server's `EXCERPT_CHARS`). */
const EXCERPT_CHARS = 140;

/**
 * A notification's line: who mentioned the member where, and the note's beginning. The
 * contact comes with the notification; a conversation the store holds has the latest name
 * (renamed since, live), so it is preferred. Nothing is fetched per notification.
 */
export function describeNotification(n: AppNotification): {
  who: string;
  where: string;
  text: string;
} {
  const who = memberName(n.authorId) ?? "A teammate";
  const where = displayName(getState().conversations[n.conversationId] ?? n);
  // An excerpt of the full 140 characters is (almost always) cut short.
  const text = [...n.excerpt].length >= EXCERPT_CHARS ? `${n.excerpt}…` : n.excerpt;
  return { who, where, text };
}

/**
 * A `mention` event's notification, whole: one logged before notifications carried their
 * excerpt and contact is completed from the event's message and conversation.
 */
function mentionNotification(e: AppEvent): AppNotification | null {
  const n = e.notification;
  if (!n) return null;
  const c = e.conversation;
  return {
    ...n,
    readAt: n.readAt ?? null,
    authorId: n.authorId ?? e.message?.authorId ?? null,
    excerpt: n.excerpt ?? [...(e.message?.content ?? "")].slice(0, EXCERPT_CHARS).join(""),
    contactName: n.contactName !== undefined ? n.contactName : (c?.contactName ?? null),
    contactNumber: n.contactNumber ?? c?.contactNumber ?? "",
  };
}

let labelsTimer: ReturnType<typeof setTimeout> | undefined;

/** The workflow's part of a realtime event: mentions, and labels the store does not know. */
export function applyWorkflowEvent(e: AppEvent): void {
  const n = e.type === "mention" ? mentionNotification(e) : null;
  if (n) {
    setState((s) => {
      if (s.notifications.items.some((x) => x.id === n.id)) return {};
      return {
        notifications: {
          ...s.notifications,
          items: [n, ...s.notifications.items],
          unread: s.notifications.unread + (isRead(n) ? 0 : 1),
        },
      };
    });
  }
  const labels = e.conversation?.labels;
  if (labels?.length) {
    const known = new Set(getState().labels.map((l) => l.id));
    if (labels.some((id) => !known.has(id))) {
      clearTimeout(labelsTimer);
      labelsTimer = setTimeout(() => loadLabels().catch(() => {}), 200);
    }
  }
}

// ---- search ------------------------------------------------------------------------------

/**
 * The words a person typed as an FTS5 query: each one a quoted phrase (inner quotes doubled),
 * so nothing they type is read as FTS5 syntax.
 */
export function ftsQuery(text: string): string {
  return text
    .trim()
    .split(/\s+/)
    .filter(Boolean)
    .map((w) => `"${w.replace(/"/g, '""')}"`)
    .join(" ");
}

/**
 * A word shorter than the index's three characters among several, if any: the server refuses
 * those (a single short word is searched by a scan).
 */
export function shortWord(text: string): string | null {
  const words = text.trim().split(/\s+/).filter(Boolean);
  if (words.length < 2) return null;
  return words.find((w) => [...w].length < 3) ?? null;
}

/** The longest query the server takes (`q`, as sent: quoted). */
export const MAX_QUERY = 200;
