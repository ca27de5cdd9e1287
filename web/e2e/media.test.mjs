// Media in the chat: an incoming photo shown inline once its bytes arrive (and full size in a
// dialog), a download that fails and is retried, a document sent from the composer with its
// caption, and an upload whose bytes contradict its type refused with the server's words.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import {
  call,
  connectWhatsapp,
  conversationId,
  incoming,
  pageWithToken,
  screenshot,
  setup,
  signUpApi,
  waitFor,
} from "./harness.mjs";
import { pdf, png } from "./media-files.mjs";

let env;
before(async () => {
  // A failed download is retried 1.5 s later (not the default's minutes).
  env = await setup({ server: { env: { AEZEN_MEDIA_FIRST_RETRY_MS: "1500" } } });
});
after(async () => {
  await env?.close();
});

function incomingMedia(token, body) {
  return call(env.server.url, "POST", "/api/integrations/whatsapp/simulate/incoming", body, token);
}

test("an incoming photo shows inline once its bytes arrive and opens full size", async () => {
  const owner = await signUpApi(env.server.url, "Warung Media");
  await connectWhatsapp(env.server.url, owner.token);
  await incoming(env.server.url, owner.token, "+6281200000001", "Halo!", "Dewi Lestari");

  const { context, page } = await pageWithToken(env, owner.token);
  await page.goto(`${env.base}/inbox`);
  await page.locator(".conv", { hasText: "Dewi Lestari" }).click();
  const chat = page.locator(".chat");
  await chat.getByText("Halo!").waitFor();

  // The photo arrives while the chat is open: stored as pending, its bytes a moment later
  // (a media_updated event puts them in place).
  await incomingMedia(owner.token, {
    from: "+6281200000001",
    pushName: "Dewi Lestari",
    content: "the menu",
    type: "image",
    media: png(64, 48).toString("base64"),
    mimeType: "image/png",
    width: 64,
    height: 48,
  });
  const bubble = chat.locator(".msg-in", { hasText: "the menu" });
  await bubble.waitFor();
  const img = bubble.locator(".media img");
  await img.waitFor();
  await page.waitForFunction((el) => el.complete && el.naturalWidth > 0, await img.elementHandle());
  assert.equal(await img.evaluate((el) => el.naturalWidth), 64);
  // Sized from the message's width and height before it loaded (no jump).
  assert.equal(await img.getAttribute("width"), "64");
  assert.equal(await img.getAttribute("height"), "48");
  assert.equal(await bubble.locator(".bubble-text").textContent(), "the menu");
  // The list shows the caption as the last message.
  await page.locator(".conv-item").first().filter({ hasText: "the menu" }).waitFor();

  // A click opens the full-size photo in a dialog; Escape closes it and focus comes back.
  await bubble.getByRole("button", { name: "Open the photo full size" }).click();
  const dlg = page.getByRole("dialog", { name: "Photo" });
  await dlg.waitFor();
  const full = dlg.locator(".media-full img");
  await page.waitForFunction(
    (el) => el.complete && el.naturalWidth > 0,
    await full.elementHandle(),
  );
  assert.equal(await dlg.locator("figcaption").textContent(), "the menu");
  await screenshot(page, "media-photo-dialog");
  await page.keyboard.press("Escape");
  await dlg.waitFor({ state: "detached" });
  await page.waitForFunction(
    () => document.activeElement?.getAttribute("aria-label") === "Open the photo full size",
    undefined,
    { timeout: 5000 },
  );
  // The close button closes it too.
  await bubble.getByRole("button", { name: "Open the photo full size" }).click();
  await dlg.waitFor();
  await dlg.getByRole("button", { name: "Close" }).click();
  await dlg.waitFor({ state: "detached" });

  // A photo with no caption: only the image in the bubble, "Photo" in the list.
  await incomingMedia(owner.token, {
    from: "+6281200000001",
    content: "",
    type: "image",
    media: png(30, 40).toString("base64"),
    width: 30,
    height: 40,
  });
  await waitFor(async () => (await chat.locator(".msg-in .media img").count()) === 2, "2nd photo");
  assert.equal(await chat.locator(".msg-in").last().locator(".bubble-text").count(), 0);
  await page.locator(".conv-item").first().filter({ hasText: "Photo" }).waitFor();

  assert.deepEqual(page.errors, []);
  await context.close();
});

test("a download that fails says so, is retried, then shows", async () => {
  const owner = await signUpApi(env.server.url, "Flaky Downloads");
  await connectWhatsapp(env.server.url, owner.token);
  await incoming(env.server.url, owner.token, "+6281200000002", "Here it comes", "Rudi");
  const { context, page } = await pageWithToken(env, owner.token);
  await page.goto(`${env.base}/inbox`);
  await page.locator(".conv", { hasText: "Rudi" }).click();
  const chat = page.locator(".chat");
  await chat.getByText("Here it comes").waitFor();

  await incomingMedia(owner.token, {
    from: "+6281200000002",
    content: "",
    type: "document",
    media: pdf("Quote 7").toString("base64"),
    mimeType: "application/pdf",
    fileName: "quote-7.pdf",
    failDownloads: 1,
  });
  const bubble = chat.locator(".msg-in").last();
  await bubble
    .locator('[data-media-status="failed"]', { hasText: /Couldn't download: .+ — retrying/ })
    .waitFor();
  // The retry brings the bytes: the document chip with its name, size and a download link.
  const chip = bubble.locator(".media-doc");
  await chip.waitFor();
  assert.equal(await chip.locator(".media-doc-name").textContent(), "quote-7.pdf");
  assert.match(await chip.locator(".media-doc-details").textContent(), /^\d+(\.\d)? (B|KB) · PDF$/);
  const link = chip.getByRole("link", { name: "Download quote-7.pdf" });
  assert.equal(await link.getAttribute("download"), "quote-7.pdf");
  const res = await page.request.get(new URL(await link.getAttribute("href"), env.base).href);
  assert.equal(res.status(), 200);
  assert.ok((await res.body()).subarray(0, 5).equals(Buffer.from("%PDF-")));

  assert.deepEqual(page.errors, []);
  await context.close();
});

test("send a document with a caption from the composer", async () => {
  const owner = await signUpApi(env.server.url, "Outgoing Files");
  await connectWhatsapp(env.server.url, owner.token);
  await incoming(env.server.url, owner.token, "+4915100000003", "Send me the invoice", "Jonas");
  const { context, page } = await pageWithToken(env, owner.token);
  await page.goto(`${env.base}/inbox`);
  await page.locator(".conv", { hasText: "Jonas" }).click();
  const chat = page.locator(".chat");
  await chat.getByText("Send me the invoice").waitFor();

  const attach = page.getByRole("button", { name: "Attach a file" });
  await attach.waitFor();
  // The paperclip opens the file picker.
  const [chooser] = await Promise.all([page.waitForEvent("filechooser"), attach.click()]);
  await chooser.setFiles({
    name: "invoice-1042.pdf",
    mimeType: "application/pdf",
    buffer: pdf(),
  });
  const strip = page.locator(".attach-strip");
  await strip.getByText("invoice-1042.pdf").waitFor();
  assert.match(await strip.locator(".attach-size").textContent(), /\d+(\.\d)? (B|KB)/);

  // Removing it empties the strip; the file input brings it back.
  await strip.getByRole("button", { name: "Remove invoice-1042.pdf" }).click();
  await strip.waitFor({ state: "detached" });
  await page.locator(".composer input[type=file]").setInputFiles({
    name: "invoice-1042.pdf",
    mimeType: "application/pdf",
    buffer: pdf(),
  });
  await strip.getByText("invoice-1042.pdf").waitFor();

  const box = page.getByRole("textbox", { name: "Write a message" });
  await box.fill("Your invoice, as promised");
  await page.getByRole("button", { name: "Send", exact: true }).click();

  const mine = chat.locator(".msg-out").last();
  await mine.locator(".media-doc-name", { hasText: "invoice-1042.pdf" }).waitFor();
  assert.equal(await mine.locator(".bubble-text").textContent(), "Your invoice, as promised");
  await mine.locator('.ticks[data-status="sent"]').waitFor();
  await strip.waitFor({ state: "detached" });
  assert.equal(await box.inputValue(), "");
  assert.equal(await chat.locator(".msg-out").count(), 1);

  // The receipts move its ticks like a text's.
  const id = await mine.getAttribute("data-id");
  await call(
    env.server.url,
    "POST",
    "/api/integrations/whatsapp/simulate/receipt",
    { messageId: id, status: "delivered" },
    owner.token,
  );
  await mine.locator('.ticks[data-status="delivered"]').waitFor();

  // The message as the API has it: a document with the name and the caption.
  const conv = await conversationId(env.server.url, owner.token, "+4915100000003");
  const history = await call(
    env.server.url,
    "GET",
    `/api/conversations/${conv}/messages`,
    undefined,
    owner.token,
  );
  const sent = history.items.find((m) => m.id === id);
  assert.equal(sent.type, "document");
  assert.equal(sent.media.fileName, "invoice-1042.pdf");
  assert.equal(sent.content, "Your invoice, as promised");

  // A photo pasted from the clipboard is attached with a preview, and sent without a caption.
  await box.focus();
  await page.evaluate((b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const data = new DataTransfer();
    data.items.add(new File([bytes], "image.png", { type: "image/png" }));
    const ev = new ClipboardEvent("paste", {
      clipboardData: data,
      bubbles: true,
      cancelable: true,
    });
    document.activeElement?.dispatchEvent(ev);
  }, png(40, 40).toString("base64"));
  await strip.locator("img.attach-thumb").waitFor();
  await box.press("Enter");
  await waitFor(async () => (await chat.locator(".msg-out .media img").count()) === 1, "the photo");
  await chat.locator(".msg-out").last().locator('.ticks[data-status="sent"]').waitFor();
  await screenshot(page, "media-chat");
  assert.deepEqual(page.errors, []);
  await context.close();

  // On a phone the bubbles fit the screen (nothing scrolls sideways) and the paperclip stays.
  const phone = await pageWithToken(env, owner.token, {
    viewport: { width: 390, height: 844 },
    isMobile: true,
    hasTouch: true,
  });
  await phone.page.goto(`${env.base}/inbox/${conv}`);
  await phone.page.locator(".msg-out .media-doc").waitFor();
  await phone.page.getByRole("button", { name: "Attach a file" }).waitFor();
  const overflow = await phone.page.evaluate(() => {
    const el = document.querySelector(".chat-scroll");
    return el ? el.scrollWidth - el.clientWidth : -1;
  });
  assert.equal(overflow, 0);
  await screenshot(phone.page, "media-phone");
  assert.deepEqual(phone.page.errors, []);
  await phone.context.close();
});

test("an upload whose bytes contradict its type is refused with the server's reason", async () => {
  const owner = await signUpApi(env.server.url, "Mismatched Uploads");
  await connectWhatsapp(env.server.url, owner.token);
  await incoming(env.server.url, owner.token, "+4915100000004", "A picture please", "Lena");
  const { context, page } = await pageWithToken(env, owner.token);
  await page.goto(`${env.base}/inbox`);
  await page.locator(".conv", { hasText: "Lena" }).click();
  const chat = page.locator(".chat");
  await chat.getByText("A picture please").waitFor();

  await page.locator(".composer input[type=file]").setInputFiles({
    name: "x.png",
    mimeType: "image/png",
    buffer: pdf(),
  });
  await page.locator(".attach-strip").getByText("x.png").waitFor();
  await page.getByRole("button", { name: "Send", exact: true }).click();
  const alert = page.locator(".composer").getByRole("alert");
  await alert.waitFor();
  assert.match(
    await alert.textContent(),
    /declared as image\/png but its bytes are application\/pdf/,
  );
  // No bubble is left behind; the file stays attached to be removed or replaced.
  assert.equal(await chat.locator(".msg-out").count(), 0);
  await page.locator(".attach-strip").getByText("x.png").waitFor();
  await page.getByRole("button", { name: "Remove x.png" }).click();
  await page.locator(".attach-strip").waitFor({ state: "detached" });

  assert.deepEqual(page.errors, []);
  await context.close();
});
