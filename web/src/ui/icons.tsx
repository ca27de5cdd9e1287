// Inline SVG icons (decorative: aria-hidden; the button or link around them has the name).

type P = { class?: string };
const base = {
  width: 20,
  height: 20,
  viewBox: "0 0 24 24",
  fill: "none",
  stroke: "currentColor",
  "stroke-width": 2,
  "stroke-linecap": "round" as const,
  "stroke-linejoin": "round" as const,
  "aria-hidden": true,
  focusable: "false",
};

export const IconInbox = (p: P) => (
  <svg {...base} class={p.class}>
    <path d="M22 12h-6l-2 3h-4l-2-3H2" />
    <path d="M5.5 5h13L22 12v6a2 2 0 0 1-2 2H4a2 2 0 0 1-2-2v-6z" />
  </svg>
);
export const IconPlug = (p: P) => (
  <svg {...base} class={p.class}>
    <path d="M9 2v6M15 2v6M6 8h12v4a6 6 0 0 1-12 0zM12 18v4" />
  </svg>
);
export const IconUsers = (p: P) => (
  <svg {...base} class={p.class}>
    <circle cx="9" cy="8" r="4" />
    <path d="M2 21a7 7 0 0 1 14 0M16 4a4 4 0 0 1 0 8M22 21a7 7 0 0 0-4-6.3" />
  </svg>
);
export const IconUser = (p: P) => (
  <svg {...base} class={p.class}>
    <circle cx="12" cy="8" r="4" />
    <path d="M4 21a8 8 0 0 1 16 0" />
  </svg>
);
export const IconSearch = (p: P) => (
  <svg {...base} class={p.class}>
    <circle cx="11" cy="11" r="7" />
    <path d="m20 20-3.5-3.5" />
  </svg>
);
export const IconPlus = (p: P) => (
  <svg {...base} class={p.class}>
    <path d="M12 5v14M5 12h14" />
  </svg>
);
export const IconBack = (p: P) => (
  <svg {...base} class={p.class}>
    <path d="M15 18l-6-6 6-6" />
  </svg>
);
export const IconSend = (p: P) => (
  <svg {...base} class={p.class}>
    <path d="M22 2 11 13M22 2l-7 20-4-9-9-4z" />
  </svg>
);
export const IconClose = (p: P) => (
  <svg {...base} class={p.class}>
    <path d="M18 6 6 18M6 6l12 12" />
  </svg>
);
export const IconClock = (p: P) => (
  <svg {...base} width={14} height={14} class={p.class}>
    <circle cx="12" cy="12" r="9" />
    <path d="M12 7v5l3 2" />
  </svg>
);
export const IconCheck = (p: P) => (
  <svg {...base} width={16} height={14} viewBox="0 0 24 20" class={p.class}>
    <path d="M3 11l5 5L20 4" />
  </svg>
);
export const IconDoubleCheck = (p: P) => (
  <svg {...base} width={18} height={14} viewBox="0 0 28 20" class={p.class}>
    <path d="M2 11l5 5L19 4M13 15l1 1L26 4" />
  </svg>
);
export const IconAlert = (p: P) => (
  <svg {...base} width={14} height={14} class={p.class}>
    <circle cx="12" cy="12" r="9" />
    <path d="M12 7v6M12 16.5v.5" />
  </svg>
);
export const IconChat = (p: P) => (
  <svg {...base} width={56} height={56} stroke-width={1.5} class={p.class}>
    <path d="M21 12a8 8 0 0 1-11.6 7.1L4 20l1-4.6A8 8 0 1 1 21 12z" />
  </svg>
);
export const IconWhatsapp = (p: P) => (
  <svg {...base} width={28} height={28} class={p.class}>
    <path d="M3.5 20.5l1.3-4.2A8.5 8.5 0 1 1 8 19.4z" />
    <path d="M9 8.5c0 3.5 3 6.5 6.5 6.5l1-1.8-2-1-1 1a4 4 0 0 1-2.7-2.7l1-1-1-2z" />
  </svg>
);
export const IconBell = (p: P) => (
  <svg {...base} class={p.class}>
    <path d="M6 8a6 6 0 0 1 12 0c0 7 3 9 3 9H3s3-2 3-9" />
    <path d="M10.3 21a1.94 1.94 0 0 0 3.4 0" />
  </svg>
);
export const IconCode = (p: P) => (
  <svg {...base} class={p.class}>
    <path d="m8 7-5 5 5 5M16 7l5 5-5 5M13.5 4l-3 16" />
  </svg>
);
export const IconPaperclip = (p: P) => (
  <svg {...base} class={p.class}>
    <path d="m21 11.5-8.6 8.6a5.5 5.5 0 0 1-7.8-7.8l8.6-8.6a3.7 3.7 0 0 1 5.2 5.2l-8.6 8.6a1.8 1.8 0 0 1-2.6-2.6l8-8" />
  </svg>
);
export const IconFile = (p: P) => (
  <svg {...base} width={28} height={28} stroke-width={1.6} class={p.class}>
    <path d="M14 2H6a2 2 0 0 0-2 2v16a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V8z" />
    <path d="M14 2v6h6M8 13h8M8 17h5" />
  </svg>
);
export const IconDownload = (p: P) => (
  <svg {...base} class={p.class}>
    <path d="M12 3v12M7 10l5 5 5-5M4 20h16" />
  </svg>
);
export const IconMic = (p: P) => (
  <svg {...base} width={18} height={18} class={p.class}>
    <rect x="9" y="2" width="6" height="12" rx="3" />
    <path d="M5 11a7 7 0 0 0 14 0M12 18v4" />
  </svg>
);
