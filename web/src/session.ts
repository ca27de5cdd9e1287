// The signed-in session: the bearer token lives in memory and in sessionStorage (so a reload
// of the tab keeps it, a new tab or a closed browser does not). No cookie is ever set, so the
// API has no ambient credential a cross-site request could ride on (no CSRF surface).

import type { Tenant, User } from "./types";

const KEY = "aezen.token";
const FLASH = "aezen.flash";

let token: string | null = null;

function storage(): Storage | null {
  try {
    return window.sessionStorage;
  } catch {
    return null;
  }
}

export function getToken(): string | null {
  if (token === null) token = storage()?.getItem(KEY) ?? null;
  return token;
}

export function setToken(value: string | null): void {
  token = value;
  const s = storage();
  if (!s) return;
  if (value === null) s.removeItem(KEY);
  else s.setItem(KEY, value);
}

/** A message for the sign-in page (e.g. "your session expired"), shown once. */
export function setFlash(message: string | null): void {
  const s = storage();
  if (!s) return;
  if (message === null) s.removeItem(FLASH);
  else s.setItem(FLASH, message);
}

export function takeFlash(): string | null {
  const s = storage();
  const m = s?.getItem(FLASH) ?? null;
  if (m !== null) s?.removeItem(FLASH);
  return m;
}

export interface Me {
  user: User;
  tenant: Tenant;
}
