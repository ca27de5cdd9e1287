// A small fetch wrapper for the AEZEN API: bearer token, JSON both ways, and the API's error
// body `{error: {code, message}}` turned into an ApiError with a message a person can read.

import { getToken } from "./session";
import type {
  ApiKey,
  ApiScope,
  CannedResponse,
  Conversation,
  ConversationStatus,
  Counts,
  Delivery,
  EventPage,
  Integration,
  Label,
  Media,
  Message,
  NotificationPage,
  Page,
  Role,
  SearchHit,
  Tenant,
  User,
  Webhook,
  WhatsappStatus,
} from "./types";

/** The list's filters, as `GET /api/conversations` takes them. */
export interface ListQuery {
  q?: string;
  unread?: boolean;
  status?: string;
  assignee?: string;
  label?: string | null;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfter?: number,
  ) {
    super(message);
  }
}

type Unauthorized = () => void;
let onUnauthorized: Unauthorized = () => {};

/** Called when an authenticated request answers 401: the token expired or was revoked. */
export function setUnauthorizedHandler(handler: Unauthorized): void {
  onUnauthorized = handler;
}

const PLAIN: Record<string, string> = {
  invalid_credentials: "That email and password don't match an account.",
  email_taken: "An account with this email already exists (an email belongs to one workspace).",
  rate_limited: "Too many attempts. Please wait a moment and try again.",
  wrong_password: "Your current password is not correct.",
  last_owner: "A workspace must keep at least one owner.",
  forbidden: "You don't have permission to do that.",
  payload_too_large: "That is too long to send.",
  not_pairing: "No QR or pairing code is being shown right now.",
  already_connected: "WhatsApp is already connected.",
  duplicate_label: "A label with that name already exists.",
  duplicate_short_code: "A quick reply with that short code already exists.",
  tenant_unavailable: "This workspace is temporarily unavailable. Please try again shortly.",
  internal_error: "Something went wrong on the server. Please try again.",
};

/** The API's message in plain words: a known code gets a friendly sentence. */
function plainMessage(status: number, code: string, message: string): string {
  if (code === "validation_failed" || code === "invalid_body" || code === "invalid_search") {
    return message.charAt(0).toUpperCase() + message.slice(1).replace(/\.?$/, ".");
  }
  if (code === "forbidden" && message) {
    return message.charAt(0).toUpperCase() + message.slice(1).replace(/\.?$/, ".");
  }
  return PLAIN[code] ?? (message || `Request failed (${status}).`);
}

export async function request<T>(
  method: string,
  path: string,
  body?: unknown,
  opts: { auth?: boolean } = {},
): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  const auth = opts.auth ?? true;
  const token = getToken();
  if (auth && token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "network", "Can't reach the server. Check your connection.");
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  // A 202 may carry a body (a replay's range) or none (the simulator's acknowledgements).
  if (res.status === 202 && !text) return undefined as T;
  const data = parseJson(text);
  if (!res.ok) throw failure(res, data, auth);
  return data as T;
}

function parseJson(text: string): unknown {
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** A non-2xx answer as an ApiError (a 401 on an authenticated call also signs out). */
function failure(res: Response, data: unknown, auth: boolean): ApiError {
  return failureOf(res.status, res.headers.get("Retry-After"), data, auth);
}

function failureOf(
  status: number,
  retryAfter: string | null,
  data: unknown,
  auth: boolean,
  serverWords = false,
): ApiError {
  const err = (data as { error?: { code?: string; message?: string } } | null)?.error;
  const code = err?.code ?? "http_error";
  if (status === 401 && auth) onUnauthorized();
  const retry = Number(retryAfter) || undefined;
  // An upload's refusals (too large, not what its name says) are the server's own sentence.
  let msg =
    serverWords && err?.message && code !== "internal_error" && code !== "rate_limited"
      ? sentence(err.message)
      : plainMessage(status, code, err?.message ?? "");
  if (code === "rate_limited" && retry) msg = `Too many attempts. Try again in ${retry} s.`;
  return new ApiError(status, code, msg, retry);
}

function sentence(message: string): string {
  return message.charAt(0).toUpperCase() + message.slice(1).replace(/\.?$/, ".");
}

/** An upload under way: its answer, and a way to stop it. */
export interface Upload<T> {
  done: Promise<T>;
  abort: () => void;
}

/**
 * A multipart upload over XMLHttpRequest (fetch has no upload progress): `onProgress` gets
 * the fraction sent, 0 to 1. An abort rejects with code `aborted`.
 */
function upload<T>(path: string, form: FormData, onProgress?: (sent: number) => void): Upload<T> {
  const xhr = new XMLHttpRequest();
  const done = new Promise<T>((resolve, reject) => {
    xhr.open("POST", path);
    xhr.setRequestHeader("Accept", "application/json");
    const token = getToken();
    if (token) xhr.setRequestHeader("Authorization", `Bearer ${token}`);
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable && e.total > 0) onProgress?.(e.loaded / e.total);
    };
    xhr.onload = () => {
      const data = parseJson(xhr.responseText);
      if (xhr.status >= 200 && xhr.status < 300) resolve(data as T);
      else reject(failureOf(xhr.status, xhr.getResponseHeader("Retry-After"), data, true, true));
    };
    xhr.onerror = () =>
      reject(new ApiError(0, "network", "The upload failed. Check your connection and try again."));
    xhr.onabort = () => reject(new ApiError(0, "aborted", "The upload was cancelled."));
    xhr.send(form);
  });
  return { done, abort: () => xhr.abort() };
}

/** The file name a `Content-Disposition: attachment; filename="…"` header gives, if any. */
function attachmentName(header: string | null): string | null {
  if (!header) return null;
  let name: string | null = null;
  const star = /filename\*\s*=\s*UTF-8''([^;]+)/i.exec(header);
  if (star) {
    try {
      name = decodeURIComponent(star[1].trim());
    } catch {
      name = null;
    }
  }
  if (!name) {
    const plain = /filename\s*=\s*(?:"([^"]*)"|([^;\s]+))/i.exec(header);
    name = plain ? (plain[1] ?? plain[2] ?? null) : null;
  }
  // A bare name only: no folders, no control characters.
  const base = (name ?? "").replace(/^.*[\\/]/, "");
  const clean = [...base]
    .filter((c) => c >= " " && c !== "\u007f")
    .join("")
    .trim();
  return clean || null;
}

function qs(params: Record<string, string | number | boolean | undefined | null>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "" && v !== false) u.set(k, String(v));
  }
  const s = u.toString();
  return s ? `?${s}` : "";
}

export const api = {
  register: (b: { tenantName: string; name: string; email: string; password: string }) =>
    request<{ token: string; user: User; tenant: Tenant }>("POST", "/api/auth/register", b, {
      auth: false,
    }),
  login: (b: { email: string; password: string }) =>
    request<{ token: string; user: User }>("POST", "/api/auth/login", b, { auth: false }),
  me: () => request<{ user: User; tenant: Tenant }>("GET", "/api/auth/me"),
  changePassword: (b: { currentPassword: string; newPassword: string }) =>
    request<{ token: string }>("POST", "/api/auth/password", b),

  team: () => request<Page<User>>("GET", "/api/team"),
  addMember: (b: { name: string; email: string; password: string; role: Role }) =>
    request<User>("POST", "/api/team", b),
  updateMember: (id: string, b: { name?: string; role?: Role }) =>
    request<User>("PATCH", `/api/team/${encodeURIComponent(id)}`, b),
  removeMember: (id: string) => request<void>("DELETE", `/api/team/${encodeURIComponent(id)}`),

  conversations: (p: ListQuery & { cursor?: string | null; limit?: number }) =>
    request<Page<Conversation>>(
      "GET",
      `/api/conversations${qs({
        limit: p.limit ?? 50,
        cursor: p.cursor,
        q: p.q,
        unread: p.unread,
        status: p.status,
        assignee: p.assignee,
        label: p.label,
      })}`,
    ),
  counts: (p: { status?: string; assignee?: string; label?: string | null }) =>
    request<Counts>(
      "GET",
      `/api/conversations/counts${qs({ status: p.status, assignee: p.assignee, label: p.label })}`,
    ),
  setStatus: (id: string, status: ConversationStatus, snoozedUntil?: string) =>
    request<Conversation>(
      "POST",
      `/api/conversations/${encodeURIComponent(id)}/status`,
      snoozedUntil ? { status, snoozedUntil } : { status },
    ),
  assign: (id: string, userId: string | null) =>
    request<Conversation>("POST", `/api/conversations/${encodeURIComponent(id)}/assignee`, {
      userId,
    }),
  setLabels: (id: string, labels: string[]) =>
    request<Conversation>("PUT", `/api/conversations/${encodeURIComponent(id)}/labels`, {
      labels,
    }),
  renameContact: (id: string, contactName: string | null) =>
    request<Conversation>("PATCH", `/api/conversations/${encodeURIComponent(id)}`, {
      contactName,
    }),
  addNote: (id: string, content: string) =>
    request<Message>("POST", `/api/conversations/${encodeURIComponent(id)}/notes`, { content }),

  labels: () => request<{ items: Label[] }>("GET", "/api/labels"),
  createLabel: (b: { name: string; color: string }) => request<Label>("POST", "/api/labels", b),
  updateLabel: (id: string, b: { name?: string; color?: string }) =>
    request<Label>("PATCH", `/api/labels/${encodeURIComponent(id)}`, b),
  deleteLabel: (id: string) => request<void>("DELETE", `/api/labels/${encodeURIComponent(id)}`),

  cannedResponses: () => request<{ items: CannedResponse[] }>("GET", "/api/canned-responses"),
  createCanned: (b: { shortCode: string; content: string }) =>
    request<CannedResponse>("POST", "/api/canned-responses", b),
  updateCanned: (id: string, b: { shortCode?: string; content?: string }) =>
    request<CannedResponse>("PATCH", `/api/canned-responses/${encodeURIComponent(id)}`, b),
  deleteCanned: (id: string) =>
    request<void>("DELETE", `/api/canned-responses/${encodeURIComponent(id)}`),

  notifications: (cursor?: string | null) =>
    request<NotificationPage>("GET", `/api/notifications${qs({ limit: 30, cursor })}`),
  markNotificationsRead: (ids?: string[]) =>
    request<unknown>("POST", "/api/notifications/read", ids ? { ids } : {}),

  search: (q: string, cursor?: string | null) =>
    request<{ items: SearchHit[]; nextCursor: string | null }>(
      "GET",
      `/api/search${qs({ q, limit: 20, cursor })}`,
    ),
  conversation: (id: string) =>
    request<Conversation>("GET", `/api/conversations/${encodeURIComponent(id)}`),
  createConversation: (b: { contactNumber: string; contactName?: string }) =>
    request<Conversation>("POST", "/api/conversations", b),
  messages: (id: string, before?: string | null) =>
    request<Page<Message>>(
      "GET",
      `/api/conversations/${encodeURIComponent(id)}/messages${qs({ limit: 50, before })}`,
    ),
  send: (id: string, content: string) =>
    request<Message>("POST", `/api/conversations/${encodeURIComponent(id)}/send`, { content }),
  /**
   * Sends a file (`POST …/send-media`, multipart): a photo, video, audio, document; `voice`
   * sends audio as a voice note. 201 with the message (pending, like a text).
   */
  sendMedia: (
    id: string,
    file: File,
    opts: { caption?: string; voice?: boolean } = {},
    onProgress?: (sent: number) => void,
  ): Upload<Message> => {
    const form = new FormData();
    form.append("file", file, file.name);
    if (opts.caption) form.append("caption", opts.caption);
    if (opts.voice) form.append("voice", "true");
    return upload<Message>(
      `/api/conversations/${encodeURIComponent(id)}/send-media`,
      form,
      onProgress,
    );
  },
  /** A media item with fresh signed links (the old ones expired or failed to load). */
  mediaLinks: (id: string) => request<Media>("GET", `/api/media/${encodeURIComponent(id)}/links`),
  markRead: (id: string) =>
    request<Conversation>("POST", `/api/conversations/${encodeURIComponent(id)}/read`),

  events: (after: number, limit = 500) =>
    request<EventPage>("GET", `/api/events${qs({ after: String(after), limit })}`),

  integrations: () => request<{ items: Integration[] }>("GET", "/api/integrations"),
  whatsappStatus: () => request<WhatsappStatus>("GET", "/api/integrations/whatsapp/status"),
  toggle: () => request<WhatsappStatus>("POST", "/api/integrations/whatsapp/toggle"),
  pairCode: (phoneNumber: string) =>
    request<WhatsappStatus>("POST", "/api/integrations/whatsapp/pair-code", { phoneNumber }),
  logout: () => request<WhatsappStatus>("POST", "/api/integrations/whatsapp/logout"),
  simulateScan: () => request<void>("POST", "/api/integrations/whatsapp/simulate/scan"),

  apiKeys: () => request<{ items: ApiKey[] }>("GET", "/api/api-keys"),
  createApiKey: (b: { name: string; scopes: ApiScope[]; expiresAt?: string }) =>
    request<{ key: string; apiKey: ApiKey }>("POST", "/api/api-keys", b),
  revokeApiKey: (id: string) => request<void>("DELETE", `/api/api-keys/${encodeURIComponent(id)}`),

  webhooks: () => request<{ items: Webhook[] }>("GET", "/api/webhooks"),
  webhook: (id: string) => request<Webhook>("GET", `/api/webhooks/${encodeURIComponent(id)}`),
  createWebhook: (b: { url: string; events: string[]; enabled?: boolean; description?: string }) =>
    request<{ webhook: Webhook; secret: string }>("POST", "/api/webhooks", b),
  updateWebhook: (
    id: string,
    b: { url?: string; events?: string[]; enabled?: boolean; description?: string },
  ) => request<Webhook>("PATCH", `/api/webhooks/${encodeURIComponent(id)}`, b),
  deleteWebhook: (id: string) => request<void>("DELETE", `/api/webhooks/${encodeURIComponent(id)}`),
  rotateWebhookSecret: (id: string, overlapSeconds: number) =>
    request<{ webhook: Webhook; secret: string }>(
      "POST",
      `/api/webhooks/${encodeURIComponent(id)}/rotate-secret`,
      { overlapSeconds },
    ),
  /** Newest first; `cursor` is the previous page's `nextCursor`. */
  webhookDeliveries: (id: string, cursor?: string | null) =>
    request<Page<Delivery>>(
      "GET",
      `/api/webhooks/${encodeURIComponent(id)}/deliveries${qs({ limit: 50, cursor })}`,
    ),
  replayWebhook: (id: string, b: { fromSeq: number; toSeq?: number }) =>
    request<{ fromSeq: number; toSeq: number } | undefined>(
      "POST",
      `/api/webhooks/${encodeURIComponent(id)}/replay`,
      b,
    ),
  testWebhook: (id: string) =>
    request<Delivery>("POST", `/api/webhooks/${encodeURIComponent(id)}/test`),

  /**
   * The whole workspace as a `.tar.zst` archive (owner only). The download needs the bearer
   * token, so it is fetched into a Blob rather than followed as a link.
   */
  async exportWorkspace(): Promise<{ blob: Blob; filename: string }> {
    const token = getToken();
    let res: Response;
    try {
      res = await fetch("/api/tenant/export", {
        headers: token ? { Authorization: `Bearer ${token}` } : {},
        cache: "no-store",
      });
    } catch {
      throw new ApiError(0, "network", "Can't reach the server. Check your connection.");
    }
    if (!res.ok) throw failure(res, parseJson(await res.text().catch(() => "")), true);
    let blob: Blob;
    try {
      blob = await res.blob();
    } catch {
      throw new ApiError(
        0,
        "interrupted",
        "The download was interrupted before the archive was complete. Please try again.",
      );
    }
    const filename =
      attachmentName(res.headers.get("Content-Disposition")) ?? "aezen-workspace.tar.zst";
    return { blob, filename };
  },
  /** Erases the workspace and every user of it; the owner's password is asked again. */
  deleteWorkspace: (password: string) => request<void>("DELETE", "/api/tenant", { password }),

  /** The current QR code as an object URL (the image needs the bearer token). */
  async qrBlobUrl(): Promise<string | null> {
    const token = getToken();
    const res = await fetch("/api/integrations/whatsapp/qr.svg", {
      headers: token ? { Authorization: `Bearer ${token}` } : {},
    });
    if (!res.ok) return null;
    return URL.createObjectURL(await res.blob());
  },
};
