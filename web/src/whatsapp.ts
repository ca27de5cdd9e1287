import { api } from "./api";
import { getState, setState } from "./store";

/** Loads the integration card; its status only if no newer event arrived meanwhile. */
export async function loadIntegrations(): Promise<void> {
  const version = getState().whatsappVersion;
  const r = await api.integrations();
  const wa = r.items.find((i) => i.id === "whatsapp") ?? null;
  if (getState().whatsappVersion === version) {
    setState({ integration: wa, whatsapp: wa?.status ?? null });
  } else {
    setState((s) => ({ integration: wa && s.whatsapp ? { ...wa, status: s.whatsapp } : wa }));
  }
}
