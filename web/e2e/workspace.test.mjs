// The owner's way out of a workspace (Account → Workspace): the archive download, and the
// deletion behind its confirmation. Admins and agents do not see the section.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, test } from "node:test";
import {
  call,
  incoming,
  pageWithToken,
  screenshot,
  setup,
  signInUi,
  signUpApi,
  uniqueEmail,
  watchPage,
} from "./harness.mjs";

let env;
before(async () => {
  env = await setup();
});
after(async () => {
  await env?.close();
});

async function openAccount(page) {
  await page.getByRole("link", { name: "Account" }).click();
  await page.getByRole("heading", { name: "Change password" }).waitFor();
}

async function addMember(base, ownerToken, role) {
  const email = uniqueEmail(role);
  const password = `${role} password 1`;
  await call(
    base,
    "POST",
    "/api/team",
    { name: `${role[0].toUpperCase()}${role.slice(1)} Person`, email, password, role },
    ownerToken,
  );
  return { email, password };
}

test("the owner downloads the workspace archive", async () => {
  const owner = await signUpApi(env.server.url, "Northwind Traders", "Nora Owner");
  await incoming(env.server.url, owner.token, "+6281500000001", "Is the archive complete?", "Ari");
  const ctx = await env.browser.newContext({
    viewport: { width: 1280, height: 800 },
    acceptDownloads: true,
  });
  const page = watchPage(await ctx.newPage());
  await signInUi(page, env.base, owner.email, owner.password);
  await openAccount(page);

  const section = page.locator("section", {
    has: page.getByRole("heading", { name: "Workspace", level: 2 }),
  });
  await section.getByText("aezen tenant import").waitFor();
  await section.getByText("password hash").waitFor();

  // While it downloads the button says so (and a second press does nothing); a failure says
  // what went wrong. (The server's answer is held, then replaced by a 503.)
  let release;
  const held = new Promise((r) => {
    release = r;
  });
  let calls = 0;
  await page.route("**/api/tenant/export", async (route) => {
    calls += 1;
    await held;
    await route.fulfill({
      status: 503,
      contentType: "application/json",
      body: JSON.stringify({ error: { code: "tenant_unavailable", message: "maintenance" } }),
    });
  });
  await section.getByRole("button", { name: "Download workspace archive" }).click();
  const busy = section.getByRole("button", { name: "Downloading the archive…" });
  await busy.waitFor();
  assert.equal(await busy.getAttribute("aria-disabled"), "true");
  await busy.click({ force: true });
  release();
  await section
    .getByRole("alert")
    .filter({
      hasText: "The archive could not be downloaded. This workspace is temporarily unavailable",
    })
    .waitFor();
  assert.equal(calls, 1);
  await page.unroute("**/api/tenant/export");

  const [download] = await Promise.all([
    page.waitForEvent("download"),
    section.getByRole("button", { name: "Download workspace archive" }).click(),
  ]);
  const name = download.suggestedFilename();
  assert.ok(name.endsWith(".tar.zst"), name);
  assert.equal(name, `aezen-${owner.tenant.id}.tar.zst`);
  const bytes = await readFile(await download.path());
  assert.ok(bytes.length > 0, "the archive is empty");
  assert.deepEqual([...bytes.subarray(0, 4)], [0x28, 0xb5, 0x2f, 0xfd], "zstd magic bytes");
  await section.getByText(`Downloaded ${name}`).waitFor();
  assert.equal(await section.getByRole("alert").count(), 0, "the earlier error is gone");
  await section.getByRole("button", { name: "Download workspace archive" }).waitFor();
  await screenshot(page, "account-workspace-desktop");

  assert.deepEqual(page.errors, []);
  await ctx.close();
});

test("admins and agents do not see the Workspace section", async () => {
  const owner = await signUpApi(env.server.url, "Contoso Help", "Omar Owner");
  for (const role of ["agent", "admin"]) {
    const member = await addMember(env.server.url, owner.token, role);
    const ctx = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = watchPage(await ctx.newPage());
    await signInUi(page, env.base, member.email, member.password);
    await openAccount(page);
    await page.getByRole("heading", { name: "Notifications" }).waitFor();
    assert.equal(await page.getByRole("heading", { name: "Workspace" }).count(), 0, role);
    assert.equal(await page.getByRole("button", { name: /Download workspace/ }).count(), 0);
    assert.equal(await page.getByRole("button", { name: /Delete workspace/ }).count(), 0);
    assert.deepEqual(page.errors, []);
    await ctx.close();
  }
});

test("deleting the workspace: a wrong password keeps it; the right confirmation deletes it", async () => {
  const owner = await signUpApi(env.server.url, "Fabrikam Gone", "Fiona Owner");
  const agent = await addMember(env.server.url, owner.token, "agent");
  const { context: ctx, page } = await pageWithToken(env, owner.token);
  await page.goto(`${env.base}/account`);
  await page.getByRole("heading", { name: "Change password" }).waitFor();

  // The agent is working in the same workspace meanwhile.
  const ctx2 = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
  const agentPage = watchPage(await ctx2.newPage());
  await signInUi(agentPage, env.base, agent.email, agent.password);
  await agentPage.locator('[data-connection="online"]').waitFor();

  await page.getByRole("button", { name: "Delete workspace…" }).click();
  const dialog = page.getByRole("dialog", { name: "Delete this workspace?" });
  await dialog.getByText("at once and for good").waitFor();
  const confirmName = dialog.getByLabel("Type Fabrikam Gone to confirm");
  const password = dialog.getByLabel("Your password");
  const del = dialog.getByRole("button", { name: "Delete workspace" });
  // Focus starts in the first field.
  assert.equal(await confirmName.evaluate((el) => el === document.activeElement), true);

  // Nothing can happen before the confirmation is complete.
  assert.equal(await del.isDisabled(), true);
  await confirmName.fill("Fabrikam");
  await password.fill(owner.password);
  assert.equal(await del.isDisabled(), true, "a partial name does not enable it");
  await password.press("Enter");
  await confirmName.fill("Fabrikam Gone");
  await password.fill("");
  assert.equal(await del.isDisabled(), true, "no password does not enable it");
  await confirmName.press("Enter");
  assert.equal(
    (await call(env.server.url, "GET", "/api/auth/me", undefined, owner.token)).tenant.name,
    "Fabrikam Gone",
  );

  // A wrong password: the error is next to the password field; nothing is deleted.
  await password.fill("not the password");
  assert.equal(await del.isEnabled(), true);
  await del.click();
  const pwError = dialog.locator("#ws-delete-password-error");
  await pwError.getByText("That password is not correct").waitFor();
  assert.equal(await pwError.getAttribute("role"), "alert");
  assert.equal(await password.getAttribute("aria-invalid"), "true");
  assert.equal(await password.getAttribute("aria-describedby"), "ws-delete-password-error");
  assert.equal(await password.evaluate((el) => el === document.activeElement), true);
  await screenshot(page, "workspace-delete-desktop");
  const me = await call(env.server.url, "GET", "/api/auth/me", undefined, owner.token);
  assert.equal(me.tenant.name, "Fabrikam Gone");
  await call(env.server.url, "GET", "/api/conversations", undefined, owner.token);
  assert.equal(await dialog.isVisible(), true);

  // Cancel closes it without a trace; the app still works.
  await dialog.getByRole("button", { name: "Cancel" }).click();
  await dialog.waitFor({ state: "detached" });
  await page.getByRole("link", { name: "Inbox" }).click();
  await page.getByRole("heading", { name: "Inbox", level: 1 }).waitFor();
  await openAccount(page);

  // The right confirmation deletes it.
  await page.getByRole("button", { name: "Delete workspace…" }).click();
  await dialog.getByLabel("Type Fabrikam Gone to confirm").fill("Fabrikam Gone");
  await dialog.getByLabel("Your password").fill(owner.password);
  await dialog.getByRole("button", { name: "Delete workspace" }).click();
  await page.getByRole("heading", { name: "Sign in to your inbox" }).waitFor();
  await page.getByText("The workspace “Fabrikam Gone” was deleted").waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem("aezen.token")), null);
  assert.equal(new URL(page.url()).pathname, "/signin");

  // Every token of it stops working; the agent's open inbox is sent to sign-in.
  const res = await fetch(`${env.server.url}/api/auth/me`, {
    headers: { Authorization: `Bearer ${owner.token}` },
  });
  assert.equal(res.status, 401);
  await agentPage.getByRole("heading", { name: "Sign in to your inbox" }).waitFor();

  // Signing in again fails: the account is gone with the workspace.
  await page.getByLabel("Email").fill(owner.email);
  await page.getByLabel("Password").fill(owner.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("alert").getByText("don't match an account").waitFor();
  assert.equal(
    await page.getByRole("heading", { name: "Sign in to your inbox" }).isVisible(),
    true,
  );

  assert.deepEqual(page.errors, []);
  assert.deepEqual(agentPage.errors, []);
  await ctx.close();
  await ctx2.close();
});
