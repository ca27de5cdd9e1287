// The phone-size layout (390×844): list and chat are two views.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import {
  connectWhatsapp,
  incoming,
  pageWithToken,
  screenshot,
  setup,
  signUpApi,
} from "./harness.mjs";

let env;
before(async () => {
  env = await setup();
});
after(async () => {
  await env?.close();
});

const phone = {
  viewport: { width: 390, height: 844 },
  deviceScaleFactor: 2,
  isMobile: true,
  hasTouch: true,
};

test("phone: list, then chat, then back to the list", async () => {
  const owner = await signUpApi(env.server.url, "Phone Shop");
  await connectWhatsapp(env.server.url, owner.token);
  const people = [
    ["+6281500000001", "Rina Putri", "Is the blue one still available?"],
    ["+6281500000002", "Andi Wijaya", "Thanks for the quick reply!"],
    ["+6281500000003", "Maya Lestari", "Can I pay on delivery?"],
  ];
  for (const [from, name, text] of people)
    await incoming(env.server.url, owner.token, from, text, name);

  const ctxSignIn = await env.browser.newContext(phone);
  const signin = await ctxSignIn.newPage();
  await signin.goto(`${env.base}/signin`);
  await signin.getByRole("heading", { name: "Sign in to your inbox" }).waitFor();
  await screenshot(signin, "signin-phone");
  await ctxSignIn.close();

  const { context, page } = await pageWithToken(env, owner.token, phone);
  await page.goto(`${env.base}/inbox`);
  const list = page.locator(".list-pane");
  const chatPane = page.locator(".chat-pane");
  await page.locator(".conv", { hasText: "Maya Lestari" }).waitFor();
  assert.ok(await list.isVisible());
  assert.equal(await chatPane.isVisible(), false);
  assert.ok(await page.getByRole("navigation", { name: "Main" }).isVisible());
  await screenshot(page, "inbox-phone");

  await page.locator(".conv", { hasText: "Rina Putri" }).click();
  await page.locator(".msg-in", { hasText: "blue one" }).waitFor();
  assert.ok(await chatPane.isVisible());
  assert.equal(await list.isVisible(), false);
  await page.getByRole("textbox", { name: "Write a message" }).fill("Yes! Size M or L?");
  await page.getByRole("textbox", { name: "Write a message" }).press("Enter");
  await page.locator('.msg-out .ticks[data-status="sent"]').waitFor();
  const box = await page.locator(".chat").boundingBox();
  assert.ok(box && box.width <= 390 && box.x >= 0, JSON.stringify(box));
  await screenshot(page, "chat-phone");

  await page.getByRole("button", { name: "Back to conversations" }).click();
  await list.waitFor({ state: "visible" });
  assert.equal(await chatPane.isVisible(), false);
  assert.match(new URL(page.url()).pathname, /^\/inbox$/);

  // The browser's back button works too.
  await page.locator(".conv", { hasText: "Andi Wijaya" }).click();
  await page.locator(".msg-in", { hasText: "quick reply" }).waitFor();
  await page.goBack();
  await list.waitFor({ state: "visible" });

  await page.getByRole("link", { name: "Integrations" }).click();
  await page.locator('.wa-card [data-state="connected"]').waitFor();
  await screenshot(page, "integrations-phone");

  assert.deepEqual(page.errors, []);
  await context.close();
});
