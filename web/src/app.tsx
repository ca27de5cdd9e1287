import { useEffect, useState } from "preact/hooks";
import { api, setUnauthorizedHandler } from "./api";
import { displayName } from "./format";
import { closeConversation, reloadList, setIncomingHook } from "./inbox";
import { connect, disconnect, setRevokedHandler } from "./realtime";
import { navigate, onLinkClick, usePath } from "./router";
import { getToken, setFlash, setToken } from "./session";
import { getState, resetState, setState, useStore } from "./store";
import type { Tenant, User } from "./types";
import { Account } from "./ui/account";
import { AuthPage } from "./ui/auth";
import { Developers } from "./ui/developers";
import { IconCode, IconInbox, IconPlug, IconSearch, IconUser, IconUsers } from "./ui/icons";
import { Inbox } from "./ui/inbox";
import { Integrations } from "./ui/integrations";
import { Bell } from "./ui/notifications";
import { Search } from "./ui/search";
import { Team } from "./ui/team";
import { loadIntegrations } from "./whatsapp";
import { loadWorkflow } from "./workflow";

const BASE_TITLE = "AEZEN Inbox";
let hiddenUnread = 0;

function updateTitle(): void {
  document.title = hiddenUnread > 0 ? `(${hiddenUnread}) ${BASE_TITLE}` : BASE_TITLE;
}

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") {
    hiddenUnread = 0;
    updateTitle();
  }
});

setIncomingHook((m, c) => {
  if (document.visibilityState !== "hidden") return;
  hiddenUnread += 1;
  updateTitle();
  if ("Notification" in window && Notification.permission === "granted") {
    try {
      const n = new Notification(displayName(c), {
        // A photo without a caption: the list's summary ("Photo", "Voice message (0:12)").
        body: m.content || c.lastMessage || "",
        tag: c.id,
      });
      n.onclick = () => {
        window.focus();
        navigate(`/inbox/${c.id}`);
        n.close();
      };
    } catch {
      // Some browsers allow notifications only from a service worker.
    }
  }
});

export function signOut(message: string | null): void {
  disconnect();
  setToken(null);
  setFlash(message);
  resetState();
  hiddenUnread = 0;
  updateTitle();
  navigate("/signin", true);
}

// While the workspace is being deleted, the 401s its end causes (the socket cut off, a request
// in flight) are expected: the sign-out that follows says the workspace was deleted instead.
let holdExpiry = false;
let heldExpiry = false;

const expired = () => {
  // Already signed out (a late answer to a request sent before): nothing has ended.
  if (getToken() === null) return;
  if (holdExpiry) {
    heldExpiry = true;
    return;
  }
  signOut("Your session has ended (it expired or was revoked). Please sign in again.");
};
setUnauthorizedHandler(expired);
setRevokedHandler(expired);

/**
 * Runs `action` with the "session ended" sign-out held back; if the action fails after a 401
 * came in meanwhile, that sign-out happens then. On success the caller signs out itself.
 */
export async function withExpiryHeld<T>(action: () => Promise<T>): Promise<T> {
  holdExpiry = true;
  heldExpiry = false;
  let ok = false;
  try {
    const result = await action();
    ok = true;
    return result;
  } finally {
    holdExpiry = false;
    if (!ok && heldExpiry) expired();
    heldExpiry = false;
  }
}

function startSession(user: User, tenant: Tenant | null): void {
  setState({ user, tenant });
  connect();
  void reloadList();
  loadIntegrations().catch(() => {});
  loadWorkflow();
}

export function App() {
  const path = usePath();
  const user = useStore((s) => s.user);
  const [booting, setBooting] = useState(() => getToken() !== null && getState().user === null);

  useEffect(() => {
    if (!booting) return;
    api.me().then(
      (me) => {
        startSession(me.user, me.tenant);
        setBooting(false);
      },
      () => setBooting(false),
    );
  }, [booting]);

  const onAuthPath = path === "/signin" || path === "/signup";
  useEffect(() => {
    if (booting) return;
    if (!user && !onAuthPath) navigate("/signin", true);
    if (user && (onAuthPath || path === "/")) navigate("/inbox", true);
  }, [user, path, booting, onAuthPath]);

  if (booting) {
    return (
      <div class="splash" role="status">
        Loading your inbox…
      </div>
    );
  }
  if (!user) {
    return (
      <AuthPage
        mode={path === "/signup" ? "signup" : "signin"}
        onSignedIn={(token, u, tenant) => {
          setToken(token);
          startSession(u, tenant ?? null);
          if (!tenant) {
            void api.me().then(
              (me) => setState({ tenant: me.tenant }),
              () => {},
            );
          }
          navigate(tenant ? "/integrations" : "/inbox", true);
        }}
      />
    );
  }
  return <Shell path={path} />;
}

/** `more`: the rest of a label, hidden from sight (not from screen readers) on a phone. */
const NAV = [
  { path: "/inbox", label: "Inbox", Icon: IconInbox },
  { path: "/search", label: "Search", Icon: IconSearch },
  { path: "/integrations", label: "Integrations", Icon: IconPlug },
  { path: "/team", label: "Team", Icon: IconUsers },
  // Owners and admins only (an agent opening the address is told to ask one).
  { path: "/developers", label: "API", more: " & webhooks", Icon: IconCode, managers: true },
  { path: "/account", label: "Account", Icon: IconUser },
];

function Shell(props: { path: string }) {
  const { path } = props;
  const connection = useStore((s) => s.connection);
  const simulated = useStore((s) => s.integration?.backend === "simulated");
  const tenant = useStore((s) => s.tenant);
  const role = useStore((s) => s.user?.role);
  const manager = role === "owner" || role === "admin";
  const toastMsg = useStore((s) => s.toast);
  const unread = useStore((s) => {
    let n = 0;
    for (const id of s.list.order) if ((s.conversations[id]?.unreadCount ?? 0) > 0) n++;
    return n;
  });
  const chatId = path.startsWith("/inbox/") ? decodeURIComponent(path.slice(7)) : null;
  const section = NAV.find((n) => path === n.path || path.startsWith(`${n.path}/`))?.path;

  useEffect(() => {
    if (!chatId) closeConversation();
  }, [chatId]);

  const connLabel =
    connection === "online"
      ? "Live: connected"
      : connection === "connecting"
        ? "Connecting…"
        : "Offline: reconnecting…";

  return (
    <div class={`shell ${chatId ? "has-chat" : ""}`}>
      <a class="skip-link" href="#main">
        Skip to content
      </a>
      <nav class="rail" aria-label="Main">
        <div class="rail-brand" title={tenant?.name ?? "AEZEN"}>
          <span class="brand-mark" aria-hidden="true">
            A
          </span>
        </div>
        <ul>
          {NAV.filter((n) => manager || !n.managers).map(({ path: p, label, more, Icon }) => (
            <li key={p}>
              <a
                href={p}
                class="rail-link"
                aria-current={section === p ? "page" : undefined}
                onClick={(e) => onLinkClick(e, p)}
              >
                <Icon />
                <span class="rail-label">
                  {label}
                  {more && <span class="rail-label-more">{more}</span>}
                </span>
                {p === "/inbox" && unread > 0 && (
                  <span class="rail-badge">
                    {unread}
                    <span class="sr-only"> unread conversations</span>
                  </span>
                )}
              </a>
            </li>
          ))}
          <li>
            <Bell />
          </li>
        </ul>
        <div
          class={`conn conn-${connection}`}
          role="status"
          aria-live="polite"
          title={connLabel}
          data-connection={connection}
        >
          <span class="conn-dot" aria-hidden="true" />
          <span class="conn-text">{connLabel}</span>
        </div>
      </nav>
      <div class="stage">
        {(simulated || connection === "offline") && (
          <header class="stage-banners">
            {simulated && (
              <div class="banner" role="note">
                <strong>Simulated WhatsApp</strong> — an offline stand-in: no real messages are sent
                or received.
              </div>
            )}
            {connection === "offline" && (
              <div class="banner banner-warn" role="status">
                Connection lost — reconnecting. Changes will appear when it is back.
              </div>
            )}
          </header>
        )}
        <main id="main" class="content" tabIndex={-1}>
          {section === "/inbox" && <Inbox chatId={chatId} />}
          {section === "/search" && <Search />}
          {section === "/integrations" && <Integrations />}
          {section === "/team" && <Team />}
          {section === "/developers" && <Developers />}
          {section === "/account" && <Account />}
          {!section && (
            <div class="empty-page">
              <h1>Page not found</h1>
              <a href="/inbox" onClick={(e) => onLinkClick(e, "/inbox")}>
                Go to the inbox
              </a>
            </div>
          )}
        </main>
      </div>
      {toastMsg && (
        <div class="toast" role="alert">
          {toastMsg}
        </div>
      )}
    </div>
  );
}
