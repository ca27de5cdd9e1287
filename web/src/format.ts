export function displayName(c: { contactName: string | null; contactNumber: string }): string {
  return c.contactName?.trim() || formatNumber(c.contactNumber);
}

/** +6281234567890 → +62 812 3456 7890: grouped for reading (not a national format). */
export function formatNumber(e164: string): string {
  const d = e164.replace(/^\+/, "");
  if (d.length < 8) return e164;
  const ccLen = d[0] === "1" || d[0] === "7" ? 1 : 2;
  const cc = d.slice(0, ccLen);
  const rest = d.slice(ccLen);
  const sizes: Record<number, number[]> = {
    9: [3, 3, 3],
    10: [3, 3, 4],
    11: [3, 4, 4],
    12: [4, 4, 4],
  };
  const parts: string[] = [];
  let at = 0;
  for (const n of sizes[rest.length] ?? [4, 4, 4, 4]) {
    if (at >= rest.length) break;
    parts.push(rest.slice(at, at + n));
    at += n;
  }
  if (at < rest.length) parts.push(rest.slice(at));
  return `+${cc} ${parts.join(" ")}`;
}

export function initials(name: string): string {
  const words = name
    .replace(/[^\p{L}\p{N}\s]/gu, "")
    .trim()
    .split(/\s+/);
  if (!words[0]) return "#";
  return (
    (words[0][0] ?? "") + (words.length > 1 ? (words[words.length - 1][0] ?? "") : "")
  ).toUpperCase();
}

export function colorIndex(key: string): number {
  let h = 0;
  for (let i = 0; i < key.length; i++) h = (h * 31 + key.charCodeAt(i)) >>> 0;
  return h % 8;
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: "short" });
const dateFmt = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short" });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const dayHeading = new Intl.DateTimeFormat(undefined, {
  weekday: "long",
  day: "numeric",
  month: "long",
  year: "numeric",
});

/** For the list: a time today, a weekday this week, else a date. */
export function shortTime(iso: string | null): string {
  if (!iso) return "";
  const t = new Date(iso);
  const now = new Date();
  if (t.toDateString() === now.toDateString()) return timeFmt.format(t);
  const days = (now.getTime() - t.getTime()) / 86_400_000;
  if (days < 6) return dayFmt.format(t);
  return dateFmt.format(t);
}

export function clock(iso: string): string {
  return timeFmt.format(new Date(iso));
}

export function fullTime(iso: string): string {
  return fullFmt.format(new Date(iso));
}

export function dayLabel(iso: string): string {
  const t = new Date(iso);
  const now = new Date();
  if (t.toDateString() === now.toDateString()) return "Today";
  const y = new Date(now);
  y.setDate(now.getDate() - 1);
  if (t.toDateString() === y.toDateString()) return "Yesterday";
  return dayHeading.format(t);
}

/** 2_400_000 → "2.3 MB" (binary multiples, one decimal under 10). */
export function fileSize(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes) || bytes < 0) return "";
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KB", "MB", "GB"];
  let v = bytes / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v < 10 ? v.toFixed(1).replace(/\.0$/, "") : Math.round(v)} ${units[u]}`;
}

/** 72_400 ms → "1:12"; an hour or more → "1:02:03". */
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms < 0) return "";
  const total = Math.round(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}
