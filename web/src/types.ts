// The API's shapes (camelCase JSON), as the Rust handlers serialise them.

export type Role = "owner" | "admin" | "agent";

export interface User {
  id: string;
  email: string;
  name: string;
  role: Role;
  tenantId: string;
  createdAt: string;
}

export interface Tenant {
  id: string;
  name: string;
  createdAt: string;
}

export type ConversationStatus = "open" | "pending" | "resolved" | "snoozed";

export interface Conversation {
  id: string;
  /** The name shown: the team's if someone edited it, else WhatsApp's push name. */
  contactName: string | null;
  contactNumber: string;
  platform: string;
  lastMessage: string | null;
  lastMessageAt: string | null;
  /**
   * The caller's own unread count. Events sent to the whole team leave it out (the store keeps
   * the count it has), so it is optional on the wire; in the store it is always set.
   */
  unreadCount: number;
  /** Incoming messages no member has read yet (what WhatsApp read receipts follow). */
  contactUnreadCount?: number;
  createdAt: string;
  status: ConversationStatus;
  snoozedUntil: string | null;
  assigneeId: string | null;
  /** Label ids, sorted. */
  labels: string[];
  /** The name the contact set in WhatsApp (latest seen). */
  pushName: string | null;
  /** True once the team set the name: the push name no longer replaces it. */
  nameEdited: boolean;
}

/** A conversation as an event carries it: `unreadCount` may be absent (team-wide events). */
export type WireConversation = Omit<Conversation, "unreadCount"> & { unreadCount?: number };

export interface Label {
  id: string;
  name: string;
  /** `#rrggbb` */
  color: string;
}

export interface CannedResponse {
  id: string;
  shortCode: string;
  content: string;
}

export interface Counts {
  status: Record<ConversationStatus, number>;
  assignee: { me: number; unassigned: number; all: number };
}

/** A teammate's mention of the member in a private note (`GET /api/notifications`, `mention`). */
export interface AppNotification {
  id: string;
  /** `mention` */
  kind: string;
  conversationId: string;
  messageId: string;
  /** Who wrote the note. */
  authorId: string | null;
  createdAt: string;
  /** When the member marked it read; null while unread. */
  readAt: string | null;
  /** The note's first 140 characters. */
  excerpt: string;
  /** The conversation's contact as the inbox shows it (the team's name, else the push name). */
  contactName: string | null;
  contactNumber: string;
}

/**
 * A `mention` event's notification: events logged before notifications carried the excerpt
 * and the contact are replayed without them.
 */
export type WireNotification = Omit<AppNotification, "excerpt" | "contactName" | "contactNumber"> &
  Partial<Pick<AppNotification, "excerpt" | "contactName" | "contactNumber">>;

export interface NotificationPage {
  items: AppNotification[];
  nextCursor: string | null;
  unread: number;
}

export interface SnippetPart {
  text: string;
  match: boolean;
}

export interface SearchHit {
  message: Message;
  conversation: { id: string; contactName: string | null; contactNumber: string };
  snippet: SnippetPart[];
}

export type MessageStatus = "pending" | "sent" | "delivered" | "read" | "failed";

/** What a message carries: text, or a media item (its `content` is then the caption). */
export type MessageType = "text" | "image" | "audio" | "video" | "document" | "sticker";

/**
 * Where a media item's bytes are: stored here (`ready`), being fetched from WhatsApp
 * (`pending`), the last fetch failed and is retried (`failed`), or never to be fetched
 * (`unavailable`: too large, or WhatsApp offers no way).
 */
export type MediaStatus = "ready" | "pending" | "failed" | "unavailable";

/** A message's photo, voice note, video, document or sticker (docs/MEDIA.md). */
export interface Media {
  id: string;
  kind: Exclude<MessageType, "text">;
  mimeType: string;
  fileName: string | null;
  /** Bytes. */
  size: number | null;
  width?: number;
  height?: number;
  durationMs?: number;
  /** A voice note (recorded in WhatsApp) rather than an audio file. */
  voice: boolean;
  status: MediaStatus;
  /** Why a fetch failed, or why the item is unavailable. */
  reason?: string;
  /**
   * Signed links (`/api/media/{id}?tenant=…&expires=…&signature=…`): usable as `src` or
   * `href` without the bearer token until `linksExpireAt`; `GET /api/media/{id}/links` gives
   * fresh ones.
   */
  url: string;
  thumbnailUrl?: string;
  linksExpireAt: string;
}

export interface Message {
  id: string;
  conversationId: string;
  /** The text, or a media message's caption (possibly empty). */
  content: string;
  sender: "agent" | "user";
  type: MessageType;
  /** Media messages only. */
  media?: Media;
  status: MessageStatus;
  isRead: boolean;
  whatsappId: string | null;
  authorId: string | null;
  createdAt: string;
  /** Why WhatsApp refused the message (status `failed`). */
  failureReason?: string;
  /** A private note: seen by the team only, never sent to WhatsApp. */
  private?: boolean;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export type SessionState =
  | "disconnected"
  | "connecting"
  | "qr"
  | "pair_code"
  | "connected"
  | "logged_out"
  | "banned"
  | "failed";

export interface WhatsappStatus {
  state: SessionState;
  phoneNumber?: string;
  pushName?: string;
  reason?: string;
  pairCode?: string;
  expiresAt?: string;
}

export interface Integration {
  id: string;
  name: string;
  backend: "real" | "simulated";
  enabled: boolean;
  status: WhatsappStatus;
}

export type EventType =
  | "incoming_message"
  | "message_sent"
  | "message_status"
  | "media_updated"
  | "conversation_updated"
  | "note_added"
  | "mention"
  | "qr"
  | "whatsapp_status";

export interface AppEvent extends Partial<WhatsappStatus> {
  seq: number;
  type: EventType;
  createdAt: string;
  message?: Message;
  conversation?: WireConversation;
  notification?: WireNotification;
  code?: string;
  svg?: string;
}

export interface EventPage {
  items: AppEvent[];
  nextCursor: string | null;
  truncated: boolean;
}

/** What an API key may do (`docs/WEBHOOKS.md`, Scopes). */
export type ApiScope = "conversations:read" | "messages:send" | "webhooks:manage" | "team:read";

export interface ApiKey {
  id: string;
  name: string;
  /** The key's first 12 characters (`aez_Xy3k9Q0p`), to tell keys apart. */
  prefix: string;
  scopes: ApiScope[];
  createdAt: string;
  /** The member who created it. */
  createdBy: string | null;
  expiresAt: string | null;
  /** Updated at most once a minute. */
  lastUsedAt: string | null;
}

/** The event names a webhook endpoint can subscribe to (`*` is all of them). */
export type WebhookEventName =
  | "incoming_message"
  | "message_sent"
  | "message_status"
  | "media_updated"
  | "conversation_updated"
  | "note_added"
  | "mention"
  | "whatsapp_status";

export type WebhookState = "active" | "failing" | "disabled";

export interface Webhook {
  id: string;
  url: string;
  /** `["*"]` for every event, else a list of event names. */
  events: string[];
  enabled: boolean;
  /** Empty when none was given. */
  description: string;
  state: WebhookState;
  disabledReason: string | null;
  /**
   * The seq of the last event the endpoint acknowledged (or skipped as not wanted); it starts
   * at the newest event when the endpoint is made (0 in an empty log).
   */
  cursor: number;
  failingSince: string | null;
  nextAttemptAt: string | null;
  /** Until then deliveries are signed with the previous secret too. */
  previousSecretExpiresAt: string | null;
  createdAt: string;
}

export interface Delivery {
  /** A number (the log's row id). */
  id: number | string;
  /** Null for a test delivery (not in the event log). */
  seq: number | null;
  eventType: string;
  webhookId: string;
  attempt: number;
  /** Null when no answer came (connection refused, timeout…). */
  statusCode: number | null;
  latencyMs: number | null;
  responseExcerpt: string | null;
  error: string | null;
  replay: boolean;
  createdAt: string;
}
