// The bell: the member's own notifications (mentions in notes), the unread number on it, and
// a list that opens the conversation at the note and marks it read.

import { useEffect, useState } from "preact/hooks";
import { shortTime } from "../format";
import { navigate } from "../router";
import { useStore } from "../store";
import type { AppNotification } from "../types";
import {
  describeNotification,
  loadNotifications,
  markNotificationsRead,
  notificationIsRead,
} from "../workflow";
import { Dialog } from "./dialog";
import { IconBell } from "./icons";

export function Bell() {
  const unread = useStore((s) => s.notifications.unread);
  const [open, setOpen] = useState(false);
  return (
    <>
      <button
        type="button"
        class="rail-link bell"
        aria-haspopup="dialog"
        aria-label={unread > 0 ? `Alerts (${unread} new)` : "Alerts"}
        onClick={() => setOpen(true)}
        data-unread={unread}
      >
        <IconBell />
        <span class="rail-label">Alerts</span>
        {unread > 0 && (
          <span class="rail-badge" aria-hidden="true">
            {unread > 99 ? "99+" : unread}
          </span>
        )}
      </button>
      {open && <NotificationsDialog onClose={() => setOpen(false)} />}
    </>
  );
}

function NotificationsDialog(props: { onClose: () => void }) {
  const n = useStore((s) => s.notifications);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    loadNotifications().catch((e) => setError((e as Error).message));
  }, []);
  // A conversation the store holds may have been renamed since: its name is the latest.
  useStore((s) => s.conversations);

  function openOne(item: AppNotification) {
    if (!notificationIsRead(item)) void markNotificationsRead([item.id]);
    props.onClose();
    navigate(
      `/inbox/${encodeURIComponent(item.conversationId)}?message=${encodeURIComponent(item.messageId)}`,
    );
  }

  return (
    <Dialog title="Notifications" onClose={props.onClose} class="dialog-wide">
      {error && (
        <p class="form-error" role="alert">
          {error}
        </p>
      )}
      {n.loaded && n.items.length === 0 && (
        <p class="muted">
          Nothing yet. When a teammate mentions you in a private note (@ and your name), it shows up
          here.
        </p>
      )}
      <ul class="notifications" aria-label="Notifications">
        {n.items.map((item) => {
          const d = describeNotification(item);
          const read = notificationIsRead(item);
          return (
            <li key={item.id} class={`notification ${read ? "" : "unread"}`} data-id={item.id}>
              <button type="button" class="notification-btn" onClick={() => openOne(item)}>
                <span class="notification-top">
                  <span>
                    <strong>{d.who}</strong> mentioned you in <strong>{d.where}</strong>
                  </span>
                  <time dateTime={item.createdAt}>{shortTime(item.createdAt)}</time>
                </span>
                {d.text && <span class="notification-text">{d.text}</span>}
                {!read && <span class="sr-only"> (unread)</span>}
              </button>
            </li>
          );
        })}
      </ul>
      <div class="dialog-actions">
        {n.cursor && (
          <button
            type="button"
            class="btn"
            onClick={() => loadNotifications(true).catch((e) => setError((e as Error).message))}
          >
            Show older
          </button>
        )}
        <button
          type="button"
          class="btn"
          disabled={n.unread === 0}
          onClick={() => void markNotificationsRead()}
        >
          Mark all read
        </button>
      </div>
    </Dialog>
  );
}
