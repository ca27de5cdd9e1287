// Incoming messages appear live (list top + unread badge, and in the open chat); a reply's
// ticks move through sent, delivered and read as receipts arrive.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import {
  call,
  connectWhatsapp,
  incoming,
  pageWithToken,
  screenshot,
  setup,
  signUpApi,
  waitFor,
} from "./harness.mjs";

let env;
before(async () => {
  env = await setup();
});
after(async () => {
  await env?.close();
});

test("live incoming messages, reply and its receipts", async () => {
  const owner = await signUpApi(env.server.url, "Contoso Care");
  await connectWhatsapp(env.server.url, owner.token);
  await incoming(
    env.server.url,
    owner.token,
    "+6281100000001",
    "Hi, is my order shipped?",
    "Budi Santoso",
  );
  await incoming(
    env.server.url,
    owner.token,
    "+4420794600002",
    "Do you open on Sunday?",
    "Grace Hall",
  );

  const { context, page } = await pageWithToken(env, owner.token);
  await page.goto(`${env.base}/inbox`);
  const items = page.locator(".conv-item");
  await items.nth(1).waitFor();
  assert.equal(await items.count(), 2);

  // Open Budi's chat.
  await page.locator(".conv", { hasText: "Budi Santoso" }).click();
  const chat = page.locator(".chat");
  await chat.getByText("Hi, is my order shipped?").waitFor();
  // Opening marks it read: the badge goes.
  await page
    .locator(".conv", { hasText: "Budi Santoso" })
    .locator(".badge")
    .waitFor({ state: "detached" });

  // A new contact writes: it appears at the top with an unread badge, without a reload.
  await incoming(
    env.server.url,
    owner.token,
    "+33612340003",
    "Bonjour, une question",
    "Chloé Martin",
  );
  await page.locator(".conv-item").first().filter({ hasText: "Chloé Martin" }).waitFor();
  const top = page.locator(".conv-item").first();
  assert.equal((await top.locator(".badge").getAttribute("data-unread")) ?? "", "1");
  assert.match(await top.textContent(), /Bonjour, une question/);

  // Budi writes again: the bubble appears in the open chat.
  await incoming(
    env.server.url,
    owner.token,
    "+6281100000001",
    "Order #1042, thanks!",
    "Budi Santoso",
  );
  await chat.locator(".msg-in", { hasText: "Order #1042, thanks!" }).waitFor();
  await page.locator(".conv-item").first().filter({ hasText: "Budi Santoso" }).waitFor();

  // Reply with Enter (Shift+Enter makes a new line).
  const box = page.getByRole("textbox", { name: "Write a message" });
  await box.fill("It left the warehouse today.");
  await box.press("Shift+Enter");
  await box.type("Tracking: JNE-42");
  await box.press("Enter");
  const mine = chat.locator(".msg-out").last();
  await mine.getByText("Tracking: JNE-42").waitFor();
  assert.equal(await box.inputValue(), "");
  assert.match(await mine.locator(".bubble-text").textContent(), /today\.\nTracking/);

  await mine.locator('.ticks[data-status="sent"]').waitFor();
  const id = await mine.getAttribute("data-id");
  assert.ok(id);
  await call(
    env.server.url,
    "POST",
    "/api/integrations/whatsapp/simulate/receipt",
    { messageId: id, status: "delivered" },
    owner.token,
  );
  await mine.locator('.ticks[data-status="delivered"]').waitFor();
  await call(
    env.server.url,
    "POST",
    "/api/integrations/whatsapp/simulate/receipt",
    { messageId: id, status: "read" },
    owner.token,
  );
  await mine.locator('.ticks[data-status="read"]').waitFor();
  assert.equal(await mine.locator(".ticks").getAttribute("aria-label"), "Read");

  await screenshot(page, "inbox-desktop");

  // Search uses `q`; the unread filter shows only Chloé.
  await page.getByRole("searchbox", { name: "Search conversations" }).fill("grace");
  await page.waitForFunction(() => document.querySelectorAll(".conv-item").length === 1);
  assert.match(await page.locator(".conv-item").first().textContent(), /Grace Hall/);
  await page.getByRole("searchbox", { name: "Search conversations" }).fill("");
  await page.waitForFunction(() => document.querySelectorAll(".conv-item").length === 3);
  await page.getByRole("button", { name: "Unread" }).click();
  await page.waitForFunction(() => document.querySelectorAll(".conv-item").length === 2);
  const unreadNames = await page.locator(".conv-item .conv-name").allTextContents();
  assert.ok(
    unreadNames.includes("Chloé Martin") && unreadNames.includes("Grace Hall"),
    unreadNames.join(),
  );

  // Start a conversation by number; an invalid one gets the server's reason.
  await page.getByRole("button", { name: "All" }).click();
  await page.getByRole("button", { name: "New conversation" }).click();
  const dlg = page.getByRole("dialog", { name: "New conversation" });
  await dlg.getByLabel("WhatsApp number").fill("0812 345");
  await dlg.getByRole("button", { name: "Open chat" }).click();
  await dlg
    .getByRole("alert")
    .filter({ hasText: /country code/ })
    .waitFor();
  await dlg.getByLabel("WhatsApp number").fill("+49 151 2345 6789");
  await dlg.getByLabel("Name (optional)").fill("Max Müller");
  await dlg.getByRole("button", { name: "Open chat" }).click();
  await dlg.waitFor({ state: "detached" });
  await page.locator(".chat-head", { hasText: "Max Müller" }).waitFor();
  await page.getByRole("textbox", { name: "Write a message" }).fill("Hallo Max!");
  await page.getByRole("textbox", { name: "Write a message" }).press("Enter");
  await chat.locator('.msg-out .ticks[data-status="sent"]').waitFor();
  await page.locator(".conv-item").first().filter({ hasText: "Max Müller" }).waitFor();

  // While the tab is hidden, new messages count in the title; showing it again resets it.
  await page.evaluate(() => {
    Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
    document.dispatchEvent(new Event("visibilitychange"));
  });
  await incoming(env.server.url, owner.token, "+4420794600002", "Are you there?", "Grace Hall");
  await incoming(env.server.url, owner.token, "+33612340003", "Allô ?", "Chloé Martin");
  await page.waitForFunction(() => document.title === "(2) AEZEN Inbox");
  await page.evaluate(() => {
    Object.defineProperty(document, "visibilityState", {
      configurable: true,
      get: () => "visible",
    });
    document.dispatchEvent(new Event("visibilitychange"));
  });
  await page.waitForFunction(() => document.title === "AEZEN Inbox");

  assert.deepEqual(page.errors, []);
  await context.close();
});

test("a message WhatsApp refuses says why and can be retried", async () => {
  const owner = await signUpApi(env.server.url, "Refused Sends");
  await connectWhatsapp(env.server.url, owner.token);
  const { context, page } = await pageWithToken(env, owner.token);
  await page.goto(`${env.base}/inbox`);
  // The simulated WhatsApp refuses +999 numbers (no country has that code).
  await page.getByRole("button", { name: "New conversation" }).click();
  const dlg = page.getByRole("dialog", { name: "New conversation" });
  await dlg.getByLabel("WhatsApp number").fill("+999 1234 5678");
  await dlg.getByRole("button", { name: "Open chat" }).click();
  await dlg.waitFor({ state: "detached" });
  const box = page.getByRole("textbox", { name: "Write a message" });
  await box.fill("Anyone there?");
  await box.press("Enter");
  const chat = page.locator(".chat");
  const failed = chat.locator(".msg-failed").first();
  await failed.locator(".msg-error", { hasText: /not on WhatsApp/ }).waitFor();
  assert.equal(await chat.locator(".msg-failed").count(), 1);

  // Retry sends the text again: a second attempt, refused again, with the same reason.
  await failed.getByRole("button", { name: "Retry" }).click();
  await waitFor(
    async () => (await chat.locator(".msg-failed").count()) === 2,
    "the retried message to fail too",
  );
  assert.match(await chat.locator(".msg-failed").last().textContent(), /Anyone there\?/);
  assert.deepEqual(page.errors, []);
  await context.close();
});
