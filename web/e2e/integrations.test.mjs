// Sign up → Integrations → Connect → QR shown → simulate scan → connected, on the card.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { pageWithToken, screenshot, setup, signUpApi, uniqueEmail, watchPage } from "./harness.mjs";

let env;
before(async () => {
  env = await setup();
});
after(async () => {
  await env?.close();
});

test("sign up, link WhatsApp by QR with a simulated scan", async () => {
  const context = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = watchPage(await context.newPage());

  await page.goto(`${env.base}/`);
  await page.getByRole("heading", { name: "Sign in to your inbox" }).waitFor();
  await screenshot(page, "signin-desktop");

  await page.getByRole("link", { name: "Create a workspace" }).click();
  await page.getByLabel("Workspace name").fill("Northwind Support");
  await page.getByLabel("Your name").fill("Nadia Owner");
  await page.getByLabel("Email").fill(uniqueEmail("nadia"));
  await page.getByLabel("Password").fill("short");
  await page.getByRole("button", { name: "Create workspace" }).click();
  // The server's validation message, in plain words, for a password that is too short.
  await page
    .getByRole("alert")
    .filter({ hasText: /password/i })
    .waitFor();

  await page.getByLabel("Password").fill("a long enough password");
  await page.getByRole("button", { name: "Create workspace" }).click();
  await page.getByRole("heading", { name: "Integrations", level: 1 }).waitFor();
  await page.getByText("Simulated WhatsApp", { exact: false }).first().waitFor();

  const card = page.locator(".wa-card");
  await assert.doesNotReject(card.locator('[data-state="disconnected"]').waitFor());
  await screenshot(page, "integrations-desktop");

  await card.getByRole("button", { name: "Connect" }).click();
  const dialog = page.getByRole("dialog", { name: "Link WhatsApp" });
  await dialog.waitFor();
  const qr = dialog.getByRole("img", { name: "QR code to scan with WhatsApp" });
  await qr.waitFor();
  const src = await qr.getAttribute("src");
  assert.match(src ?? "", /^(data:image\/svg\+xml|blob:)/);
  // The image really decoded (CSP allows data: and blob: images).
  await page.waitForFunction(() => {
    const img = document.querySelector(".qr-img");
    return img instanceof HTMLImageElement && img.complete && img.naturalWidth > 0;
  });
  await screenshot(page, "qr-dialog-desktop");

  // A new code replaces the old one as the `qr` events come (every 2 s here).
  await page.waitForFunction(
    (old) => document.querySelector(".qr-img")?.getAttribute("src") !== old,
    src,
    {
      timeout: 10_000,
    },
  );

  await dialog.getByRole("button", { name: "Simulate scan" }).click();
  await dialog.waitFor({ state: "detached" });
  await card.locator('[data-state="connected"]').waitFor();
  assert.match(await card.textContent(), /Connected/);
  assert.ok(await card.getByRole("button", { name: "Disconnect" }).isVisible());
  await screenshot(page, "integrations-connected-desktop");

  // Escape closes a dialog: the disconnect confirmation says what happens first.
  await card.getByRole("button", { name: "Disconnect" }).click();
  const confirm = page.getByRole("dialog", { name: "Disconnect WhatsApp?" });
  await confirm.waitFor();
  assert.match(await confirm.textContent(), /link to the phone is\s+kept/);
  await page.keyboard.press("Escape");
  await confirm.waitFor({ state: "detached" });
  assert.ok(await card.locator('[data-state="connected"]').isVisible());

  assert.deepEqual(page.errors, []);
  await context.close();
});

test("link by pairing code, then log out after a warning", async () => {
  const owner = await signUpApi(env.server.url, "Pair Co");
  const { context, page } = await pageWithToken(env, owner.token);
  await page.goto(`${env.base}/integrations`);
  const card = page.locator(".wa-card");
  await card.getByRole("button", { name: "Connect" }).click();
  const dialog = page.getByRole("dialog", { name: "Link WhatsApp" });
  await dialog.getByRole("tab", { name: "Phone number" }).click();
  await dialog.getByLabel("The phone's WhatsApp number").fill("+62 812 0000 1111");
  await dialog.getByRole("button", { name: "Get a pairing code" }).click();
  const code = dialog.locator(".pair-code");
  await code.waitFor();
  assert.match((await code.textContent()) ?? "", /^[A-Z0-9-]{8,9}$/);
  await dialog.getByRole("button", { name: "Simulate scan" }).click();
  await dialog.waitFor({ state: "detached" });
  await card.locator('[data-state="connected"]').waitFor();

  await card.getByRole("button", { name: "Log out" }).click();
  const confirm = page.getByRole("dialog", { name: "Log out of WhatsApp?" });
  assert.match(await confirm.textContent(), /scan a new QR code/);
  await confirm.getByRole("button", { name: "Log out" }).click();
  await card.locator('[data-state="logged_out"]').waitFor();
  assert.ok(await card.getByRole("button", { name: "Connect" }).isVisible());
  assert.deepEqual(page.errors, []);
  await context.close();
});
