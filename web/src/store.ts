// The app's state: one plain object, replaced (never mutated) on every change, with
// subscribers. Components read it through `useStore`.

import { useEffect, useState } from "preact/hooks";
import type {
  AppNotification,
  CannedResponse,
  Conversation,
  ConversationStatus,
  Counts,
  Integration,
  Label,
  Message,
  Tenant,
  User,
  WhatsappStatus,
} from "./types";

export type Connection = "connecting" | "online" | "offline";

export interface Thread {
  /** Oldest first. */
  items: Message[];
  /** `before` cursor for older messages; null when the start of the chat is loaded. */
  older: string | null;
  loading: boolean;
  loaded: boolean;
  error: string | null;
}

export type AssigneeFilter = "me" | "unassigned" | "all";

export interface ListState {
  /** Conversation ids in display order. */
  order: string[];
  cursor: string | null;
  loading: boolean;
  done: boolean;
  error: string | null;
  q: string;
  unread: boolean;
  /** The status tab. */
  status: ConversationStatus;
  assignee: AssigneeFilter;
  /** A label id, or null for every label. */
  label: string | null;
  /** Bumped on every reload, so an old page arriving late is dropped. */
  generation: number;
}

export interface State {
  user: User | null;
  tenant: Tenant | null;
  connection: Connection;
  conversations: Record<string, Conversation>;
  list: ListState;
  threads: Record<string, Thread>;
  activeId: string | null;
  integration: Integration | null;
  whatsapp: WhatsappStatus | null;
  /** The latest QR code image (SVG markup) from the `qr` event. */
  qrSvg: string | null;
  qrExpiresAt: string | null;
  /** Bumped by every `whatsapp_status`/`qr` event: an HTTP answer older than one is stale. */
  whatsappVersion: number;
  toast: string | null;
  /** The tabs' numbers for the list's current filters. */
  counts: Counts | null;
  /** The team (for the assign menu, mentions and note authors). */
  team: User[];
  labels: Label[];
  /** Quick replies; null until loaded. */
  canned: CannedResponse[] | null;
  notifications: NotificationsState;
}

export interface NotificationsState {
  items: AppNotification[];
  unread: number;
  cursor: string | null;
  loaded: boolean;
}

export const initialList = (): ListState => ({
  order: [],
  cursor: null,
  loading: false,
  done: false,
  error: null,
  q: "",
  unread: false,
  status: "open",
  assignee: "all",
  label: null,
  generation: 0,
});

const initial = (): State => ({
  user: null,
  tenant: null,
  connection: "connecting",
  conversations: {},
  list: initialList(),
  threads: {},
  activeId: null,
  integration: null,
  whatsapp: null,
  qrSvg: null,
  qrExpiresAt: null,
  whatsappVersion: 0,
  toast: null,
  counts: null,
  team: [],
  labels: [],
  canned: null,
  notifications: { items: [], unread: 0, cursor: null, loaded: false },
});

let state: State = initial();
const listeners = new Set<() => void>();

export function getState(): State {
  return state;
}

export function setState(patch: Partial<State> | ((s: State) => Partial<State>)): void {
  const p = typeof patch === "function" ? patch(state) : patch;
  state = { ...state, ...p };
  for (const l of listeners) l();
}

export function resetState(): void {
  state = initial();
  for (const l of listeners) l();
}

export function subscribe(l: () => void): () => void {
  listeners.add(l);
  return () => listeners.delete(l);
}

/** The part of the state `select` picks; re-renders only when that part changes (by ===). */
export function useStore<T>(select: (s: State) => T, deps: unknown[] = []): T {
  const [, force] = useState(0);
  const value = select(state);
  useEffect(() => {
    let current = select(state);
    if (current !== value) force((n) => n + 1);
    return subscribe(() => {
      const next = select(state);
      if (next !== current) {
        current = next;
        force((n) => n + 1);
      }
    });
  }, deps); // The selector changes only with `deps`.
  return value;
}

let toastTimer: ReturnType<typeof setTimeout> | undefined;
export function toast(message: string): void {
  setState({ toast: message });
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => setState({ toast: null }), 5000);
}
