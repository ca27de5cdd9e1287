// A message's media in its bubble: a photo or sticker inline (a click opens it full size), a
// voice note or audio file with a player, a video, or a document chip with a download link.
// The links are signed and short-lived: an element that fails to load asks for fresh links
// once (`renewMediaLinks`), and the chat re-renders with them.

import { createPortal } from "preact/compat";
import { useEffect, useState } from "preact/hooks";
import { duration, fileSize } from "../format";
import { renewMediaLinks } from "../inbox";
import type { Media, Message } from "../types";
import { Dialog } from "./dialog";
import { IconAlert, IconClock, IconDownload, IconFile, IconMic } from "./icons";

const KIND_NAME: Record<Media["kind"], string> = {
  image: "Photo",
  sticker: "Sticker",
  audio: "Audio",
  video: "Video",
  document: "Document",
};

/** Whether a message carries (or should carry) media rather than text alone. */
export function isMedia(m: Message): boolean {
  return m.media !== undefined || (m.type !== undefined && m.type !== "text");
}

/** The box an image is shown in: its own shape, within `maxW` × `maxH`. */
function fit(media: Media, maxW: number, maxH: number): { width: number; height: number } | null {
  const { width: w, height: h } = media;
  if (!w || !h || w <= 0 || h <= 0) return null;
  const scale = Math.min(1, maxW / w, maxH / h);
  return { width: Math.max(1, Math.round(w * scale)), height: Math.max(1, Math.round(h * scale)) };
}

function expired(media: Media): boolean {
  const t = Date.parse(media.linksExpireAt);
  return Number.isFinite(t) && t <= Date.now();
}

/** "PDF" from `report.pdf`, else from the MIME type. */
function typeLabel(media: Media): string {
  const ext = /\.([A-Za-z0-9]{1,8})$/.exec(media.fileName ?? "")?.[1];
  if (ext) return ext.toUpperCase();
  const sub = media.mimeType.split("/")[1]?.split(";")[0] ?? "";
  return /^[a-z0-9.+-]{1,12}$/i.test(sub) && !sub.includes(".") ? sub.toUpperCase() : "File";
}

/**
 * Fresh links when an element failed with `url` (once per set of links); `broken` once even
 * the fresh ones fail.
 */
function useLinks(m: Message) {
  const media = m.media;
  const [broken, setBroken] = useState(false);
  const url = media?.url;
  // New links (a new url) get a new chance.
  useEffect(() => setBroken(url === undefined), [url]);
  useEffect(() => {
    if (media && media.status === "ready" && expired(media)) void renewMediaLinks(m);
  }, [media, m]);
  const onError = (failed: string | undefined) => {
    void renewMediaLinks(m, failed).then((fresh) => {
      if (!fresh) setBroken(true);
    });
  };
  return { broken, onError };
}

function Placeholder(props: { media: Media | undefined; kind: string }) {
  const { media } = props;
  const status = media?.status ?? "unavailable";
  const size = media ? fit(media, 280, 200) : null;
  let text: string;
  if (status === "pending") text = "Downloading…";
  else if (status === "failed")
    text = `Couldn't download: ${media?.reason ?? "WhatsApp did not send the file"} — retrying`;
  else text = `Not available: ${media?.reason ?? "WhatsApp offers no way to fetch it"}`;
  return (
    <div
      class={`media-placeholder media-${status}`}
      data-media-status={status}
      style={size && status === "pending" ? { minHeight: `${Math.min(size.height, 200)}px` } : {}}
    >
      {status === "pending" ? <IconClock /> : <IconAlert />}
      <span>
        <span class="media-kind">{props.kind}</span> {text}
      </span>
    </div>
  );
}

function Broken(props: { kind: string }) {
  return (
    <div class="media-placeholder media-failed" data-media-status="broken">
      <IconAlert />
      <span>
        <span class="media-kind">{props.kind}</span> Couldn't load it. Reload the page to try again.
      </span>
    </div>
  );
}

function ImageView(props: { m: Message; media: Media }) {
  const { m, media } = props;
  const [open, setOpen] = useState(false);
  const { broken, onError } = useLinks(m);
  const sticker = media.kind === "sticker";
  const name = KIND_NAME[media.kind];
  if (broken) return <Broken kind={name} />;
  const box = fit(media, sticker ? 160 : 280, sticker ? 160 : 320);
  const src = media.thumbnailUrl ?? media.url;
  const label = m.content ? `${name}: ${m.content}` : name;
  return (
    <>
      <button
        type="button"
        class={`media-img-btn ${sticker ? "media-sticker" : ""}`}
        aria-label={`Open the ${name.toLowerCase()} full size`}
        title={`Open the ${name.toLowerCase()} full size`}
        onClick={() => setOpen(true)}
      >
        <img
          class="media-img"
          src={src}
          alt={label}
          loading="lazy"
          decoding="async"
          width={box?.width}
          height={box?.height}
          onError={() => onError(src)}
        />
      </button>
      {open &&
        createPortal(
          <Dialog title={name} class="dialog-media" onClose={() => setOpen(false)}>
            <figure class="media-full">
              <img src={media.url} alt={label} onError={() => onError(media.url)} />
              {m.content && <figcaption>{m.content}</figcaption>}
            </figure>
            <div class="dialog-actions">
              <a class="btn" href={media.url} download={media.fileName ?? ""}>
                <IconDownload /> Download
              </a>
            </div>
          </Dialog>,
          document.body,
        )}
    </>
  );
}

function AudioView(props: { m: Message; media: Media }) {
  const { m, media } = props;
  const { broken, onError } = useLinks(m);
  const name = media.voice ? "Voice message" : (media.fileName ?? "Audio");
  if (broken) return <Broken kind={media.voice ? "Voice message" : "Audio"} />;
  const length = duration(media.durationMs);
  return (
    <div class={`media-audio ${media.voice ? "media-voice" : ""}`}>
      <span class="media-audio-label">
        {media.voice && <IconMic />}
        <span class="media-audio-name">{name}</span>
        {length && <span class="muted"> · {length}</span>}
      </span>
      {/* biome-ignore lint/a11y/useMediaCaption: a contact's voice note comes without captions */}
      <audio
        controls
        preload="metadata"
        src={media.url}
        aria-label={length ? `${name}, ${length}` : name}
        onError={() => onError(media.url)}
      />
    </div>
  );
}

function VideoView(props: { m: Message; media: Media }) {
  const { m, media } = props;
  const { broken, onError } = useLinks(m);
  if (broken) return <Broken kind="Video" />;
  const box = fit(media, 320, 320);
  const length = duration(media.durationMs);
  return (
    // biome-ignore lint/a11y/useMediaCaption: a contact's video comes without captions
    <video
      class="media-video"
      controls
      preload="metadata"
      src={media.url}
      poster={media.thumbnailUrl}
      width={box?.width}
      height={box?.height}
      aria-label={length ? `Video, ${length}` : "Video"}
      onError={() => onError(media.url)}
    />
  );
}

function DocumentView(props: { m: Message; media: Media }) {
  const { m, media } = props;
  const name = media.fileName ?? "Document";
  const size = fileSize(media.size);
  const details = [size, typeLabel(media)].filter(Boolean).join(" · ");
  return (
    <div class="media-doc">
      <IconFile class="media-doc-icon" />
      <span class="media-doc-info">
        <span class="media-doc-name" title={name}>
          {name}
        </span>
        <span class="media-doc-details">{details}</span>
      </span>
      <a
        class="icon-btn media-doc-dl"
        href={media.url}
        download={name}
        aria-label={`Download ${name}`}
        title={`Download ${name}`}
        onClick={(e) => {
          if (!expired(media)) return;
          // The link ran out: fetch fresh ones and follow those instead.
          e.preventDefault();
          void renewMediaLinks(m).then((fresh) => {
            if (!fresh) return;
            const a = document.createElement("a");
            a.href = fresh.url;
            a.download = name;
            a.click();
          });
        }}
      >
        <IconDownload />
      </a>
    </div>
  );
}

/** The media part of a bubble (the caption is the bubble's text). */
export function MediaBody(props: { m: Message }) {
  const { m } = props;
  const media = m.media;
  const kind = media?.kind ?? (m.type === "text" ? "document" : m.type);
  const name = KIND_NAME[kind] ?? "File";
  if (media?.status !== "ready") {
    return (
      <div class="media" data-kind={kind}>
        <Placeholder media={media} kind={name} />
      </div>
    );
  }
  return (
    <div class="media" data-kind={kind} data-media-status="ready">
      {(kind === "image" || kind === "sticker") && <ImageView m={m} media={media} />}
      {kind === "audio" && <AudioView m={m} media={media} />}
      {kind === "video" && <VideoView m={m} media={media} />}
      {kind === "document" && <DocumentView m={m} media={media} />}
    </div>
  );
}
