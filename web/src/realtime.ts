// The Socket.IO connection: live events, the connection indicator, and catch-up after a
// reconnect from the event log (`GET /api/events?after=<last seq>`).

import { io, type Socket } from "socket.io-client";
import { api } from "./api";
import { applyChatEvent, resync } from "./inbox";
import { getToken } from "./session";
import { getState, setState } from "./store";
import type { AppEvent, EventType } from "./types";
import { loadIntegrations } from "./whatsapp";
import { applyWorkflowEvent, loadNotifications } from "./workflow";

const EVENTS: EventType[] = [
  "incoming_message",
  "message_sent",
  "message_status",
  "media_updated",
  "conversation_updated",
  "note_added",
  "mention",
  "qr",
  "whatsapp_status",
];

let socket: Socket | null = null;
/** The seq of the last event applied; null until one is seen. */
let lastSeq: number | null = null;
/** While catching up, live events wait here so they apply in seq order. */
let buffer: AppEvent[] | null = null;
let onRevoked: () => void = () => {};

export function setRevokedHandler(handler: () => void): void {
  onRevoked = handler;
}

function apply(e: AppEvent, live: boolean): void {
  if (lastSeq !== null && e.seq <= lastSeq) return;
  lastSeq = e.seq;
  if (e.type === "qr") {
    // A code on screen means the session waits for a scan.
    setState((s) => ({
      qrSvg: e.svg ?? null,
      qrExpiresAt: e.expiresAt ?? null,
      whatsappVersion: s.whatsappVersion + 1,
      whatsapp: s.whatsapp?.state === "qr" ? s.whatsapp : { state: "qr" },
    }));
  } else if (e.type === "whatsapp_status") {
    const status = {
      state: e.state ?? "disconnected",
      phoneNumber: e.phoneNumber,
      pushName: e.pushName,
      reason: e.reason,
      pairCode: e.pairCode,
      expiresAt: e.expiresAt,
    };
    setState((s) => ({
      whatsapp: status,
      whatsappVersion: s.whatsappVersion + 1,
      qrSvg: status.state === "qr" ? s.qrSvg : null,
      integration: s.integration ? { ...s.integration, status } : s.integration,
    }));
  } else {
    applyChatEvent(e, live);
    applyWorkflowEvent(e);
  }
}

async function catchUp(): Promise<void> {
  buffer = [];
  try {
    if (lastSeq === null) {
      // Nothing seen yet: what changed since the screen was loaded is unknown; reload it.
      await Promise.all([
        resync(),
        loadIntegrations().catch(() => {}),
        loadNotifications().catch(() => {}),
      ]);
    } else {
      for (;;) {
        const page = await api.events(lastSeq);
        if (page.truncated) {
          // The gap was pruned: reload, and go on from the newest seq seen (re-applying
          // an event is harmless).
          const newest = page.items.at(-1)?.seq ?? null;
          await Promise.all([
            resync(),
            loadIntegrations().catch(() => {}),
            loadNotifications().catch(() => {}),
          ]);
          if (newest !== null && (lastSeq === null || newest > lastSeq)) lastSeq = newest;
          break;
        }
        for (const e of page.items) apply(e, false);
        if (page.nextCursor === null || page.items.length === 0) break;
      }
    }
  } catch {
    // A failed catch-up reloads on the next connect.
  } finally {
    const waiting = buffer ?? [];
    buffer = null;
    for (const e of waiting.sort((a, b) => a.seq - b.seq)) apply(e, true);
  }
}

export function connect(): void {
  disconnect();
  const token = getToken();
  if (!token) return;
  lastSeq = null;
  const s = io({
    path: "/socket.io",
    auth: { token },
    transports: ["websocket", "polling"],
    reconnectionDelay: 500,
    reconnectionDelayMax: 3000,
  });
  socket = s;
  setState({ connection: "connecting" });
  s.on("connect", () => {
    setState({ connection: "online" });
    // Every connect, the first included (the first page load raced it), catches up.
    void catchUp();
  });
  s.on("disconnect", (reason) => {
    setState({ connection: "offline" });
    // The server cut this socket off (shutting down, or the user's tokens were revoked):
    // Socket.IO does not come back by itself then.
    if (reason === "io server disconnect") retryLater(s);
  });
  s.on("connect_error", () => {
    setState({ connection: "offline" });
    // A refused handshake (not a network error) is not retried by Socket.IO itself.
    if (!s.active) retryLater(s);
  });
  for (const name of EVENTS) {
    s.on(name, (e: AppEvent) => {
      if (buffer) buffer.push(e);
      else apply(e, true);
    });
  }
}

/** Checks the token (a 401 signs out) and reconnects; keeps trying while the server is away. */
function retryLater(s: Socket, delay = 1000): void {
  setTimeout(() => {
    if (socket !== s) return;
    api.me().then(
      () => {
        if (socket === s && !s.connected) s.connect();
      },
      (e: { status?: number }) => {
        if (e.status === 401) onRevoked();
        else retryLater(s, Math.min(delay * 2, 5000));
      },
    );
  }, delay);
}

export function disconnect(): void {
  if (socket) {
    socket.removeAllListeners();
    socket.disconnect();
    socket = null;
  }
  lastSeq = null;
  buffer = null;
}

/** For the connection indicator's tooltip and tests. */
export function connectionState(): string {
  return getState().connection;
}
