// axe-core on every screen: no serious or critical violations.
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { after, before, test } from "node:test";
import { call, connectWhatsapp, incoming, screenshot, setup, signUpApi } from "./harness.mjs";
import { pdf, png } from "./media-files.mjs";

const axePath = createRequire(import.meta.url).resolve("axe-core/axe.min.js");

let env;
before(async () => {
  // A webhook endpoint on loopback (nothing listens there: its deliveries fail).
  env = await setup({
    server: {
      env: { AEZEN_WEBHOOK_ALLOW_HTTP: "true", AEZEN_WEBHOOK_ALLOW_HOSTS: "127.0.0.1" },
    },
  });
});
after(async () => {
  await env?.close();
});

async function audit(page, screen) {
  // The app's CSP (script-src 'self') refuses the injected axe script, so this context alone
  // runs with bypassCSP: true. The other tests keep the CSP on and fail on any violation.
  await page.addScriptTag({ path: axePath });
  const result = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")),
    }));
  });
  const bad = result.filter((v) => v.impact === "serious" || v.impact === "critical");
  const minor = result.filter((v) => !bad.includes(v));
  if (minor.length) console.log(`a11y ${screen}: minor`, JSON.stringify(minor));
  assert.deepEqual(bad, [], `${screen}: ${JSON.stringify(bad, null, 2)}`);
}

for (const scheme of ["light", "dark"]) {
  test(`accessibility of every screen (${scheme})`, async () => {
    const owner = await signUpApi(env.server.url, `Axe ${scheme}`);
    await incoming(env.server.url, owner.token, "+6281400000001", "Halo, apa kabar?", "Sari Dewi");
    await incoming(env.server.url, owner.token, "+6281400000002", "Need an invoice", "Tom Baker");
    // A teammate to offer after @ in a note.
    await call(
      env.server.url,
      "POST",
      "/api/team",
      {
        name: "Tia Agent",
        email: `tia-${scheme}-${Date.now()}@example.test`,
        password: "agent password 1",
        role: "agent",
      },
      owner.token,
    );
    const context = await env.browser.newContext({
      viewport: { width: 1280, height: 800 },
      bypassCSP: true,
      colorScheme: scheme,
    });
    const page = await context.newPage();

    await page.goto(`${env.base}/signin`);
    await page.getByRole("heading", { name: "Sign in to your inbox" }).waitFor();
    await audit(page, "sign in");
    await page.goto(`${env.base}/signup`);
    await page.getByRole("heading", { name: "Create your workspace" }).waitFor();
    await audit(page, "sign up");

    await page.goto(`${env.base}/signin`);
    await page.getByLabel("Email").fill(owner.email);
    await page.getByLabel("Password").fill(owner.password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.locator(".conv", { hasText: "Sari Dewi" }).click();
    await page.locator(".msg-in").first().waitFor();
    await audit(page, "inbox with a chat open");
    if (scheme === "dark") await screenshot(page, "inbox-dark-desktop");

    // Media in the chat: a photo with a caption, a document, and a file being attached.
    const simulate = (body) =>
      call(
        env.server.url,
        "POST",
        "/api/integrations/whatsapp/simulate/incoming",
        { from: "+6281400000001", ...body },
        owner.token,
      );
    await simulate({
      content: "Our price list",
      type: "image",
      media: png(120, 80).toString("base64"),
      width: 120,
      height: 80,
    });
    await simulate({
      content: "",
      type: "document",
      media: pdf().toString("base64"),
      mimeType: "application/pdf",
      fileName: "price-list-2025.pdf",
    });
    await page.locator(".msg-in .media-doc").waitFor();
    await page.waitForFunction(() => {
      const img = document.querySelector(".msg-in .media img");
      return img instanceof HTMLImageElement && img.complete && img.naturalWidth > 0;
    });
    await page.locator(".composer input[type=file]").setInputFiles({
      name: "reply.png",
      mimeType: "image/png",
      buffer: png(20, 20),
    });
    await page.locator(".attach-strip img").waitFor();
    await audit(page, "chat with a photo, a document and an attachment");
    if (scheme === "light") await screenshot(page, "inbox-media-desktop");
    await page.getByRole("button", { name: "Remove reply.png" }).click();
    await page.getByRole("button", { name: "Open the photo full size" }).click();
    await page.getByRole("dialog", { name: "Photo" }).waitFor();
    await audit(page, "photo dialog");
    await page.keyboard.press("Escape");

    // The chat header's menus and the note composer.
    await page.locator(".chat-head").getByRole("button", { name: "Assign" }).click();
    await page.getByRole("group", { name: "Assign menu" }).waitFor();
    await audit(page, "assign menu");
    await page.keyboard.press("Escape");
    await page.locator(".chat-head").getByRole("button", { name: "Snooze" }).click();
    await page.getByRole("group", { name: "Snooze menu" }).waitFor();
    await audit(page, "snooze menu");
    await page.keyboard.press("Escape");
    await page.locator(".chat-head").getByRole("button", { name: "Status", exact: true }).click();
    await page.getByRole("group", { name: "Status menu" }).waitFor();
    await audit(page, "status menu");
    await page.keyboard.press("Escape");
    await page.getByRole("button", { name: "Note", exact: true }).click();
    await page.getByRole("textbox", { name: "Write a private note" }).fill("Checked @");
    await page.getByRole("listbox", { name: "Teammates" }).waitFor();
    await audit(page, "note composer with the teammates offered");
    await page.getByRole("textbox", { name: "Write a private note" }).fill("");
    await page.getByRole("button", { name: "Note", exact: true }).click();
    await page.getByRole("tab", { name: /^Resolved/ }).click();
    await audit(page, "resolved tab");
    await page.getByRole("tab", { name: /^Open/ }).click();

    await page.getByRole("button", { name: /^Alerts/ }).click();
    await page.getByRole("dialog", { name: "Notifications" }).waitFor();
    await audit(page, "notifications dialog");
    await page.keyboard.press("Escape");

    await page.getByRole("link", { name: "Search" }).click();
    await page.getByRole("searchbox", { name: "Search messages" }).fill("invoice");
    await page.getByRole("searchbox", { name: "Search messages" }).press("Enter");
    await page.locator(".result mark").first().waitFor();
    await audit(page, "search results");
    await page.getByRole("link", { name: "Inbox" }).click();
    await page.locator(".conv").first().waitFor();

    await page.getByRole("button", { name: "New conversation" }).click();
    await page.getByRole("dialog", { name: "New conversation" }).waitFor();
    await audit(page, "new conversation dialog");
    await page.keyboard.press("Escape");

    await page.getByRole("link", { name: "Integrations" }).click();
    await page.locator(".wa-card").waitFor();
    await audit(page, "integrations");
    await page.getByRole("button", { name: "Connect" }).click();
    await page.locator(".qr-img").waitFor();
    await audit(page, "QR dialog");
    await page.keyboard.press("Escape");

    await page.getByRole("link", { name: "Team" }).click();
    await page.locator(".member").first().waitFor();
    await audit(page, "team");

    await call(
      env.server.url,
      "POST",
      "/api/webhooks",
      { url: "http://127.0.0.1:9/unreachable", events: ["*"], description: "Nobody listens" },
      owner.token,
    );
    await page.getByRole("link", { name: "API & webhooks" }).click();
    await page.locator(".hook").first().waitFor();
    await page.getByText("No API keys yet.").waitFor();
    await page.getByRole("button", { name: /^Send test/ }).click();
    await page.locator(".hook-result .result-bad").waitFor();
    await page.getByRole("button", { name: /^Delivery log/ }).click();
    await page.locator(".delivery").first().waitFor();
    await page.getByRole("button", { name: /^Edit/ }).click();
    await page.locator(".hook-edit").getByRole("radio", { name: "Only the events chosen" }).check();
    await audit(page, "API & webhooks");
    const keyForm = page.locator("form", { has: page.getByRole("button", { name: "Create key" }) });
    await keyForm.getByLabel("Key name").fill("Axe key");
    await keyForm.getByRole("checkbox", { name: /team:read/ }).check();
    await keyForm.getByRole("button", { name: "Create key" }).click();
    await page.getByRole("dialog", { name: "Your new API key" }).waitFor();
    await audit(page, "new API key dialog");
    await page.keyboard.press("Escape");
    await page.getByRole("button", { name: /^Replay/ }).click();
    await page.getByRole("dialog", { name: "Replay events" }).waitFor();
    await audit(page, "replay dialog");
    await page.keyboard.press("Escape");

    await page.getByRole("link", { name: "Account" }).click();
    await page.getByRole("heading", { name: "Change password" }).waitFor();
    await audit(page, "account");
    await page.getByRole("heading", { name: "Workspace", level: 2 }).waitFor();
    await page.getByRole("button", { name: "Delete workspace…" }).click();
    await page.getByRole("dialog", { name: "Delete this workspace?" }).waitFor();
    await audit(page, "delete workspace dialog");
    await page.keyboard.press("Escape");
    await context.close();
  });
}

test("keyboard: focus is visible and reaches the composer", async () => {
  const owner = await signUpApi(env.server.url, "Keyboard Co");
  await connectWhatsapp(env.server.url, owner.token);
  await incoming(env.server.url, owner.token, "+6281400000009", "keyboard hello", "Kiki");
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  await page.goto(`${env.base}/signin`);
  await page.keyboard.press("Tab");
  await page.keyboard.press("Tab");
  // Tab order starts at the form's first field; the focused element has a visible outline.
  const outline = await page.evaluate(() => {
    const el = document.activeElement;
    return el ? getComputedStyle(el).outlineStyle : "none";
  });
  assert.notEqual(outline, "none");
  await page.getByLabel("Email").fill(owner.email);
  await page.getByLabel("Password").fill(owner.password);
  await page.getByLabel("Password").press("Enter");
  await page.locator(".conv", { hasText: "Kiki" }).focus();
  await page.keyboard.press("Enter");
  await page.locator(".msg-in", { hasText: "keyboard hello" }).waitFor();
  await page.getByRole("textbox", { name: "Write a message" }).focus();
  await page.keyboard.type("sent from the keyboard");
  await page.keyboard.press("Enter");
  await page.locator(".msg-out", { hasText: "sent from the keyboard" }).waitFor();
  await context.close();
});
