// A second browser context signed up to another tenant never sees the first tenant's data.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import {
  call,
  incoming,
  pageWithToken,
  setup,
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

test("two tenants side by side see only their own inbox", async () => {
  const a = await signUpApi(env.server.url, "Tenant Alpha");
  await incoming(env.server.url, a.token, "+6281300000001", "alpha-secret-order", "Alpha Customer");
  const aConversations = await call(
    env.server.url,
    "GET",
    "/api/conversations",
    undefined,
    a.token,
  );
  const aId = aConversations.items[0].id;

  const pa = await pageWithToken(env, a.token);
  await pa.page.goto(`${env.base}/inbox`);
  await pa.page.locator(".conv", { hasText: "Alpha Customer" }).waitFor();

  // Tenant B signs up in its own context through the UI.
  const ctxB = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
  const pb = watchPage(await ctxB.newPage());
  await pb.goto(`${env.base}/signup`);
  await pb.getByLabel("Workspace name").fill("Tenant Beta");
  await pb.getByLabel("Your name").fill("Bea");
  await pb.getByLabel("Email").fill(uniqueEmail("bea"));
  await pb.getByLabel("Password").fill("another long password");
  await pb.getByRole("button", { name: "Create workspace" }).click();
  await pb.getByRole("heading", { name: "Integrations", level: 1 }).waitFor();
  await pb.getByRole("link", { name: "Inbox" }).click();
  await pb.getByText("No conversations yet").waitFor();
  const bToken = await pb.evaluate(() => sessionStorage.getItem("aezen.token"));
  assert.ok(bToken);

  // B gets its own message; A gets another one. Each sees only its own, live.
  await incoming(env.server.url, bToken, "+6281300000002", "beta-only-hello", "Beta Customer");
  await incoming(env.server.url, a.token, "+6281300000001", "alpha-second", "Alpha Customer");
  await pb.locator(".conv", { hasText: "Beta Customer" }).waitFor();
  await pa.page.locator(".conv", { hasText: "alpha-second" }).waitFor();
  await pb.waitForTimeout(500);

  const bText = await pb.locator("body").textContent();
  assert.doesNotMatch(bText, /alpha|Alpha Customer|81300000001/i);
  const aText = await pa.page.locator("body").textContent();
  assert.doesNotMatch(aText, /beta-only|Beta Customer/);
  assert.equal(await pb.locator(".conv-item").count(), 1);

  // B opening A's conversation by URL gets nothing of it.
  await pb.goto(`${env.base}/inbox/${aId}`);
  await pb.getByText("That conversation does not exist.").waitFor();
  assert.doesNotMatch(await pb.locator("body").textContent(), /alpha-secret-order/);
  const team = await pb.evaluate(async (t) => {
    const r = await fetch("/api/team", { headers: { Authorization: `Bearer ${t}` } });
    return r.json();
  }, bToken);
  assert.equal(team.items.length, 1);

  assert.deepEqual(pa.page.errors, []);
  assert.deepEqual(pb.errors, []);
  await pa.context.close();
  await ctxB.close();
});
