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

export interface Conversation {
  id: string;
  contactName: string | null;
  contactNumber: string;
  platform: string;
  lastMessage: string | null;
  lastMessageAt: string | null;
  unreadCount: number;
  createdAt: string;
}

export type MessageStatus = "pending" | "sent" | "delivered" | "read" | "failed";

export interface Message {
  id: string;
  conversationId: string;
  content: string;
  sender: "agent" | "user";
  type: string;
  status: MessageStatus;
  isRead: boolean;
  whatsappId: string | null;
  authorId: string | null;
  createdAt: string;
  /** Why WhatsApp refused the message (status `failed`). */
  failureReason?: string;
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
  | "conversation_updated"
  | "qr"
  | "whatsapp_status";

export interface AppEvent extends Partial<WhatsappStatus> {
  seq: number;
  type: EventType;
  createdAt: string;
  message?: Message;
  conversation?: Conversation;
  code?: string;
  svg?: string;
}

export interface EventPage {
  items: AppEvent[];
  nextCursor: string | null;
  truncated: boolean;
}
