import { useEffect, useState } from "preact/hooks";
import { api } from "../api";
import { formatNumber } from "../format";
import { getState, setState, useStore } from "../store";
import type { SessionState, WhatsappStatus } from "../types";
import { loadIntegrations } from "../whatsapp";
import { Confirm, Dialog } from "./dialog";
import { IconWhatsapp } from "./icons";

const STATE_LABEL: Record<SessionState, string> = {
  disconnected: "Not connected",
  connecting: "Connecting…",
  qr: "Waiting for the QR code to be scanned",
  pair_code: "Waiting for the pairing code",
  connected: "Connected",
  logged_out: "Logged out",
  banned: "Banned by WhatsApp",
  failed: "Failed",
};

function tone(s: SessionState): string {
  if (s === "connected") return "ok";
  if (s === "banned" || s === "failed") return "bad";
  if (s === "connecting" || s === "qr" || s === "pair_code") return "busy";
  return "off";
}

/** Applies a status an HTTP call answered, unless an event newer than the call came first. */
function applyStatus(status: WhatsappStatus, version: number): void {
  if (getState().whatsappVersion !== version) return;
  setState((s) => ({
    whatsapp: status,
    integration: s.integration ? { ...s.integration, status } : s.integration,
  }));
}

export function Integrations() {
  const integration = useStore((s) => s.integration);
  const status = useStore((s) => s.whatsapp);
  const role = useStore((s) => s.user?.role);
  const manager = role === "owner" || role === "admin";
  const [dialog, setDialog] = useState(false);
  const [confirm, setConfirm] = useState<"disconnect" | "logout" | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    loadIntegrations().catch((e) => setError((e as Error).message));
  }, []);

  const state = status?.state ?? "disconnected";
  const on =
    state === "connecting" || state === "qr" || state === "pair_code" || state === "connected";

  async function run(action: () => Promise<WhatsappStatus>, then?: (s: WhatsappStatus) => void) {
    setBusy(true);
    setError(null);
    try {
      const version = getState().whatsappVersion;
      const s = await action();
      applyStatus(s, version);
      then?.(s);
      setConfirm(null);
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  }

  function connect() {
    if (state === "qr" || state === "pair_code") {
      setDialog(true);
      return;
    }
    setState({ qrSvg: null });
    void run(api.toggle, (s) => {
      if (s.state !== "connected") setDialog(true);
    });
  }

  return (
    <div class="page">
      <header class="page-head">
        <h1>Integrations</h1>
        <p class="muted">Link the WhatsApp number your team answers from.</p>
      </header>
      <article class="card wa-card" aria-labelledby="wa-title">
        <div class="card-row">
          <span class="wa-logo">
            <IconWhatsapp />
          </span>
          <div class="card-main">
            <h2 id="wa-title">
              WhatsApp
              {integration?.backend === "simulated" && <span class="tag">Simulated</span>}
            </h2>
            <p class={`state state-${tone(state)}`} data-state={state} role="status">
              <span class="state-dot" aria-hidden="true" />
              {STATE_LABEL[state]}
            </p>
            {state === "connected" && (status?.phoneNumber || status?.pushName) && (
              <dl class="facts">
                {status?.phoneNumber && (
                  <>
                    <dt>Number</dt>
                    <dd>{formatNumber(status.phoneNumber)}</dd>
                  </>
                )}
                {status?.pushName && (
                  <>
                    <dt>Name</dt>
                    <dd>{status.pushName}</dd>
                  </>
                )}
              </dl>
            )}
            {status?.reason && state !== "connected" && <p class="muted reason">{status.reason}</p>}
          </div>
        </div>
        {error && (
          <p class="form-error" role="alert">
            {error}
          </p>
        )}
        {manager ? (
          <div class="card-actions">
            {!on && (
              <button type="button" class="btn btn-primary" disabled={busy} onClick={connect}>
                Connect
              </button>
            )}
            {(state === "qr" || state === "pair_code") && (
              <button type="button" class="btn btn-primary" onClick={() => setDialog(true)}>
                Show QR code
              </button>
            )}
            {on && (
              <button
                type="button"
                class="btn"
                disabled={busy}
                onClick={() => setConfirm("disconnect")}
              >
                Disconnect
              </button>
            )}
            {state !== "logged_out" && (
              <button
                type="button"
                class="btn btn-danger-outline"
                disabled={busy}
                onClick={() => setConfirm("logout")}
              >
                Log out
              </button>
            )}
          </div>
        ) : (
          <p class="muted">Only owners and admins can connect or disconnect WhatsApp.</p>
        )}
      </article>
      <aside class="card warn-card">
        <h2>About the WhatsApp link</h2>
        <p class="muted">
          AEZEN links as a WhatsApp Web device through an unofficial client. WhatsApp may restrict
          or ban numbers used this way: use a number you can afford to lose, and don't send bulk
          messages.
        </p>
      </aside>
      {dialog && (
        <QrDialog
          simulated={integration?.backend === "simulated"}
          onClose={() => setDialog(false)}
        />
      )}
      {confirm === "disconnect" && (
        <Confirm
          title="Disconnect WhatsApp?"
          confirm="Disconnect"
          busy={busy}
          error={error}
          onClose={() => setConfirm(null)}
          onConfirm={() => void run(api.toggle)}
        >
          <p>
            AEZEN stops receiving and sending until you connect again. The link to the phone is
            kept, so connecting again needs no QR code. Messages sent meanwhile wait as “Sending”.
          </p>
        </Confirm>
      )}
      {confirm === "logout" && (
        <Confirm
          title="Log out of WhatsApp?"
          confirm="Log out"
          danger
          busy={busy}
          error={error}
          onClose={() => setConfirm(null)}
          onConfirm={() => void run(api.logout)}
        >
          <p>
            This unlinks the device and deletes its session from this server. To use WhatsApp again
            you will have to scan a new QR code. Your conversations stay.
          </p>
          {state !== "connected" && (
            <p>
              WhatsApp is not connected right now, so the phone cannot be told: remove the device on
              the phone too (Settings → Linked devices).
            </p>
          )}
        </Confirm>
      )}
    </div>
  );
}

function QrDialog(props: { simulated: boolean; onClose: () => void }) {
  const status = useStore((s) => s.whatsapp);
  const svg = useStore((s) => s.qrSvg);
  const [fetched, setFetched] = useState<string | null>(null);
  const [mode, setMode] = useState<"qr" | "code">(status?.state === "pair_code" ? "code" : "qr");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const state = status?.state;

  // Closes by itself once the phone has linked.
  useEffect(() => {
    if (state === "connected") props.onClose();
  }, [state]);

  // No `qr` event yet (e.g. the dialog opened on a code shown earlier): fetch the current one.
  useEffect(() => {
    if (svg || state !== "qr") return;
    let url: string | null = null;
    let alive = true;
    void api.qrBlobUrl().then((u) => {
      url = u;
      if (alive) setFetched(u);
      else if (u) URL.revokeObjectURL(u);
    });
    return () => {
      alive = false;
      if (url) URL.revokeObjectURL(url);
    };
  }, [svg, state]);

  const src = svg ? `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}` : fetched;

  async function pair(e: Event) {
    e.preventDefault();
    const phone = String(new FormData(e.currentTarget as HTMLFormElement).get("phone") ?? "");
    setBusy(true);
    setError(null);
    try {
      const version = getState().whatsappVersion;
      applyStatus(await api.pairCode(phone), version);
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  }

  async function simulateScan() {
    setBusy(true);
    setError(null);
    try {
      await api.simulateScan();
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  }

  async function restart() {
    setError(null);
    setState({ qrSvg: null });
    try {
      const version = getState().whatsappVersion;
      applyStatus(await api.toggle(), version);
    } catch (err) {
      setError((err as Error).message);
    }
  }

  const ended =
    state === "disconnected" || state === "logged_out" || state === "failed" || state === "banned";

  return (
    <Dialog title="Link WhatsApp" onClose={props.onClose} class="qr-dialog">
      <div class="tabs" role="tablist" aria-label="How to link">
        <button
          type="button"
          role="tab"
          aria-selected={mode === "qr"}
          onClick={() => setMode("qr")}
        >
          QR code
        </button>
        <button
          type="button"
          role="tab"
          aria-selected={mode === "code"}
          onClick={() => setMode("code")}
        >
          Phone number
        </button>
      </div>
      {mode === "qr" ? (
        <div class="qr-body" role="tabpanel" aria-label="QR code">
          <ol class="steps">
            <li>Open WhatsApp on the phone.</li>
            <li>Go to Settings → Linked devices → Link a device.</li>
            <li>Point the phone at this code.</li>
          </ol>
          <div class="qr-frame" aria-live="polite">
            {ended ? (
              <div class="qr-ended">
                <p>{status?.reason ?? "The link attempt ended."}</p>
                <button type="button" class="btn btn-primary" onClick={() => void restart()}>
                  Try again
                </button>
              </div>
            ) : src && state === "qr" ? (
              <img
                class="qr-img"
                src={src}
                alt="QR code to scan with WhatsApp"
                width={264}
                height={264}
              />
            ) : (
              <p class="muted" role="status">
                {state === "pair_code"
                  ? "Linking by phone number instead."
                  : "Preparing a QR code…"}
              </p>
            )}
          </div>
          <p class="muted small">A new code comes every 20 seconds.</p>
        </div>
      ) : (
        <div class="qr-body" role="tabpanel" aria-label="Phone number">
          {state === "pair_code" && status?.pairCode ? (
            <>
              <p>
                On the phone: Linked devices → Link a device → Link with phone number instead, and
                type:
              </p>
              <p class="pair-code">{status.pairCode}</p>
            </>
          ) : (
            <form class="form" onSubmit={pair}>
              <label class="field">
                <span>The phone's WhatsApp number</span>
                <input name="phone" type="tel" required placeholder="+62 812 3456 7890" />
              </label>
              <button type="submit" class="btn btn-primary" disabled={busy}>
                Get a pairing code
              </button>
            </form>
          )}
        </div>
      )}
      {error && (
        <p class="form-error" role="alert">
          {error}
        </p>
      )}
      {props.simulated && (
        <div class="sim-box">
          <p>
            <strong>Simulated WhatsApp:</strong> there is no real phone. Pretend it scanned:
          </p>
          <button
            type="button"
            class="btn btn-primary"
            disabled={busy || (state !== "qr" && state !== "pair_code")}
            onClick={() => void simulateScan()}
          >
            Simulate scan
          </button>
        </div>
      )}
    </Dialog>
  );
}
