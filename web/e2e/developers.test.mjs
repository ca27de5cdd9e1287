// The "API & webhooks" page: an owner makes an API key (shown once) that a program then uses
// within its scope, and revokes it; adds a webhook endpoint pointing at a receiver this test
// runs, whose deliveries (a test, then a real incoming message) arrive signed in the Standard
// Webhooks format and show in the page's delivery log; rotates its secret, replays an event,
// disables and enables it. An agent gets no such page.
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, test } from "node:test";
import { Webhook } from "standardwebhooks";
import {
  addMemberApi,
  conversationId,
  incoming,
  pageWithToken,
  screenshot,
  setup,
  signUpApi,
  waitFor,
} from "./harness.mjs";

let env;
let receiver;

/** A webhook receiver on 127.0.0.1: answers 200 and keeps every request. */
function startReceiver() {
  const requests = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c) => {
      body += c;
    });
    req.on("end", () => {
      let json = null;
      try {
        json = JSON.parse(body);
      } catch {
        // kept as text
      }
      requests.push({ method: req.method, url: req.url, headers: req.headers, body, json });
      res.writeHead(200, { "Content-Type": "text/plain" });
      res.end("received");
    });
  });
  return new Promise((ok) =>
    server.listen(0, "127.0.0.1", () => ok({ server, requests, port: server.address().port })),
  );
}

before(async () => {
  receiver = await startReceiver();
  // Webhooks to plain http on loopback are refused unless the operator allows them.
  env = await setup({
    server: {
      env: { AEZEN_WEBHOOK_ALLOW_HTTP: "true", AEZEN_WEBHOOK_ALLOW_HOSTS: "127.0.0.1" },
    },
  });
});
after(async () => {
  await env?.close();
  receiver?.server.closeAllConnections();
  receiver?.server.close();
});

/** A raw API call with an API key (or none): → {status, body}. */
async function withKey(key, method, path, body) {
  const headers = { Accept: "application/json" };
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(`${env.server.url}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = text;
  }
  return { status: res.status, body: json };
}

/** The signature headers of a received request, as standardwebhooks reads them. */
function sigHeaders(r) {
  return {
    "webhook-id": r.headers["webhook-id"],
    "webhook-timestamp": r.headers["webhook-timestamp"],
    "webhook-signature": r.headers["webhook-signature"],
  };
}

/** Shown once: the dialog's value, read and closed. */
async function readSecretDialog(page, title, label) {
  const dialog = page.getByRole("dialog", { name: title });
  await dialog.waitFor();
  await dialog.getByText("you won't see it again").waitFor();
  const value = await dialog.getByLabel(label).inputValue();
  await dialog.getByRole("button", { name: "Copy" }).click();
  await dialog
    .getByRole("status")
    .filter({ hasText: /Copied|copy it by hand/ })
    .waitFor();
  await dialog.getByRole("button", { name: "I have copied it" }).click();
  await dialog.waitFor({ state: "detached" });
  return value;
}

test("API keys: shown once, used within their scopes, revoked", async () => {
  const owner = await signUpApi(env.server.url, "Hub Works", "Hana Owner");
  await incoming(env.server.url, owner.token, "+6282100000001", "Hello from a customer", "Cici");
  const convId = await conversationId(env.server.url, owner.token, "+6282100000001");

  const { context, page } = await pageWithToken(env, owner.token);
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: env.base });
  await page.goto(`${env.base}/inbox`);
  await page.getByRole("link", { name: "API & webhooks" }).click();
  await page.getByRole("heading", { name: "API & webhooks", level: 1 }).waitFor();
  await page.getByText("No API keys yet.").waitFor();

  // A key with one scope.
  const form = page.locator("form", { has: page.getByRole("button", { name: "Create key" }) });
  await form.getByLabel("Key name").fill("Reporting script");
  // No scope: the form says so before asking the server.
  await form.getByRole("button", { name: "Create key" }).click();
  await form.getByRole("alert").filter({ hasText: "at least one scope" }).waitFor();
  await form.getByRole("checkbox", { name: /conversations:read/ }).check();
  await form.getByRole("button", { name: "Create key" }).click();
  const key = await readSecretDialog(page, "Your new API key", "API key");
  assert.match(key, /^aez_[A-Za-z0-9_-]{43}$/);
  const row = page.locator(".dev-item", { hasText: "Reporting script" });
  await row.waitFor();
  assert.equal(await row.getAttribute("data-prefix"), key.slice(0, 12));
  await row.getByText("conversations:read").waitFor();
  await row.getByText("Never").first().waitFor();
  // The Copy button put it on the clipboard (when the browser allows it).
  const clip = await page.evaluate(() => navigator.clipboard.readText().catch(() => null));
  if (clip !== null) assert.equal(clip, key);

  // A second key with an expiry date: the list shows the date.
  await form.getByLabel("Key name").fill("Expiring sync");
  await form.getByRole("checkbox", { name: /team:read/ }).check();
  const soon = new Date(Date.now() + 30 * 86_400_000);
  const ymd = `${soon.getFullYear()}-${String(soon.getMonth() + 1).padStart(2, "0")}-${String(soon.getDate()).padStart(2, "0")}`;
  await form.getByLabel(/Expires on/).fill(ymd);
  await form.getByRole("button", { name: "Create key" }).click();
  const key2 = await readSecretDialog(page, "Your new API key", "API key");
  assert.notEqual(key2, key);
  const row2 = page.locator(".dev-item", { hasText: "Expiring sync" });
  await row2.waitFor();
  assert.equal(await row2.getByText("Never").count(), 1, "last used never; expires set");

  // Shown once: after a reload the page has only the prefix.
  await page.reload();
  await row.waitFor();
  assert.equal((await page.content()).includes(key), false);

  // The key from a program: its scope works, the rest is refused.
  const list = await withKey(key, "GET", "/api/conversations?status=all");
  assert.equal(list.status, 200, JSON.stringify(list.body));
  assert.ok(list.body.items.some((c) => c.id === convId));
  const sendRes = await withKey(key, "POST", `/api/conversations/${convId}/send`, {
    content: "from a key without messages:send",
  });
  assert.equal(sendRes.status, 403, JSON.stringify(sendRes.body));
  assert.equal(sendRes.body.error.code, "missing_scope");
  assert.match(sendRes.body.error.message, /messages:send/);
  const teamRes = await withKey(key, "GET", "/api/team");
  assert.equal(teamRes.status, 403, JSON.stringify(teamRes.body));
  assert.equal(teamRes.body.error.code, "missing_scope");
  const keysRes = await withKey(key, "GET", "/api/api-keys");
  assert.equal(keysRes.status, 403, JSON.stringify(keysRes.body));
  // The second key reads the team only.
  assert.equal((await withKey(key2, "GET", "/api/team")).status, 200);
  assert.equal((await withKey(key2, "GET", "/api/conversations")).status, 403);

  // "Last used" follows the key's use.
  await waitFor(
    async () => {
      await page.reload();
      await row.waitFor();
      return (await row.getByText("Never").count()) === 1;
    },
    "the key's last use shown",
    10_000,
  );

  // Revoke it in the page: the program is refused from its next request.
  await row.getByRole("button", { name: "Revoke the key Reporting script" }).click();
  const confirm = page.getByRole("dialog", { name: "Revoke the key Reporting script?" });
  await confirm.getByText("refused from their next request").waitFor();
  await confirm.getByRole("button", { name: "Revoke" }).click();
  await row.waitFor({ state: "detached" });
  const revoked = await withKey(key, "GET", "/api/conversations");
  assert.equal(revoked.status, 401, JSON.stringify(revoked.body));
  // The other key is untouched.
  assert.equal((await withKey(key2, "GET", "/api/team")).status, 200);

  assert.deepEqual(page.errors, []);
  await context.close();
});

test("webhooks: signed test and event deliveries, the log, rotate, replay, disable", async () => {
  const owner = await signUpApi(env.server.url, "Hook Traders", "Hadi Owner");
  const { context, page } = await pageWithToken(env, owner.token);
  await page.goto(`${env.base}/developers`);
  await page.getByText("No webhook endpoints yet.").waitFor();
  const form = page.locator("form", { has: page.getByRole("button", { name: "Add endpoint" }) });

  // The SSRF guard, as the server answers it: a link-local address is refused, naming `url`.
  await form.getByLabel("Endpoint URL").fill("http://169.254.169.254/latest/meta-data");
  await form.getByRole("button", { name: "Add endpoint" }).click();
  await form.getByRole("alert").filter({ hasText: /url/i }).waitFor();

  const url = `http://127.0.0.1:${receiver.port}/hooks/aezen`;
  await form.getByLabel("Endpoint URL").fill(url);
  await form.getByLabel(/Description/).fill("The test's receiver");
  await form.getByRole("radio", { name: "All events" }).check();
  await form.getByRole("button", { name: "Add endpoint" }).click();
  const secret = await readSecretDialog(page, "The endpoint's signing secret", "Signing secret");
  assert.match(secret, /^whsec_[A-Za-z0-9+/=]{32}$/);
  const hook = page.locator(`.hook[data-url="${url}"]`);
  await hook.waitFor();
  await hook.getByText("All events").waitFor();
  await hook.getByText("The test's receiver").waitFor();
  assert.equal(await hook.getAttribute("data-state"), "active");
  assert.ok(await hook.getByRole("switch", { name: "Enabled" }).isChecked());

  // Send test: delivered at once, signed.
  const seen = receiver.requests.length;
  await hook.getByRole("button", { name: `Send test to ${url}` }).click();
  await hook.getByRole("status").filter({ hasText: "Test delivered: HTTP 200" }).waitFor();
  const testReq = receiver.requests.slice(seen).find((r) => r.json?.type === "webhook.test");
  assert.ok(testReq, JSON.stringify(receiver.requests.slice(seen).map((r) => r.json?.type)));
  assert.equal(testReq.method, "POST");
  assert.equal(testReq.url, "/hooks/aezen");
  assert.match(testReq.headers["content-type"], /application\/json/);
  for (const h of ["webhook-id", "webhook-timestamp", "webhook-signature"])
    assert.ok(testReq.headers[h], `${h} is missing`);
  const testPayload = new Webhook(secret).verify(testReq.body, sigHeaders(testReq));
  assert.equal(testPayload.type, "webhook.test");
  // A wrong secret does not verify.
  const other = `whsec_${Buffer.alloc(24, 7).toString("base64")}`;
  assert.throws(() => new Webhook(other).verify(testReq.body, sigHeaders(testReq)));

  // The delivery log shows the test.
  await hook.getByRole("button", { name: `Delivery log of ${url}` }).click();
  const log = hook.locator(".delivery-log");
  await log.locator('.delivery[data-event="webhook.test"][data-status="200"]').waitFor();

  // A real event: an incoming WhatsApp message.
  await incoming(env.server.url, owner.token, "+6282200000001", "Order #77, where is it?", "Dewi");
  let event;
  await waitFor(() => {
    event = receiver.requests.find(
      (r) =>
        r.json?.type === "incoming_message" &&
        r.json?.data?.message?.content === "Order #77, where is it?",
    );
    return Boolean(event);
  }, "the incoming_message delivery");
  const payload = new Webhook(secret).verify(event.body, sigHeaders(event));
  assert.equal(payload.type, "incoming_message");
  assert.equal(payload.tenantId, owner.tenant.id);
  assert.equal(payload.data.type, "incoming_message");
  assert.equal(payload.data.conversation.contactNumber, "+6282200000001");
  const seq = payload.data.seq;
  assert.ok(Number.isInteger(seq), JSON.stringify(payload.data));
  const hookId = event.headers["webhook-id"].match(/^msg_(.+)_(\d+)$/);
  assert.ok(hookId, event.headers["webhook-id"]);
  assert.equal(Number(hookId[2]), seq);
  // The QR code never leaves the inbox.
  assert.equal(
    receiver.requests.some((r) => r.json?.type === "qr"),
    false,
  );

  // The log (refreshed) shows it with its seq, and the cursor moved on to it.
  const eventRow = log.locator(`.delivery[data-event="incoming_message"][data-seq="${seq}"]`);
  await waitFor(async () => {
    await log.getByRole("button", { name: "Refresh the delivery log" }).click();
    await page.waitForTimeout(200);
    return (await eventRow.count()) > 0;
  }, "the incoming_message row in the log");
  assert.equal(await eventRow.first().getAttribute("data-status"), "200");
  await waitFor(async () => {
    await log.getByRole("button", { name: "Refresh the delivery log" }).click();
    await page.waitForTimeout(200);
    return Number(await hook.locator("[data-cursor]").getAttribute("data-cursor")) >= seq;
  }, "the cursor past the event");
  // The page scrolls inside the main area: the webhooks section at the top of the picture.
  await page.evaluate(() => {
    const main = document.querySelector("main.content");
    const title = document.getElementById("hooks-title");
    main.scrollTop += title.getBoundingClientRect().top - main.getBoundingClientRect().top - 24;
  });
  await screenshot(page, "developers-desktop");

  // Rotate the secret: a new one, shown once; for the overlap both sign.
  await hook.getByRole("button", { name: `Rotate secret… of ${url}` }).click();
  const rotate = page.getByRole("dialog", { name: "Rotate the signing secret" });
  assert.equal(await rotate.getByLabel(/Keep the old secret valid/).inputValue(), "24");
  await rotate.getByRole("button", { name: "Rotate secret" }).click();
  const secret2 = await readSecretDialog(page, "The new signing secret", "Signing secret");
  assert.match(secret2, /^whsec_/);
  assert.notEqual(secret2, secret);
  await hook.getByText("Old secret valid until").waitFor();
  const beforeTest2 = receiver.requests.length;
  await hook.getByRole("button", { name: `Send test to ${url}` }).click();
  await hook.getByRole("status").filter({ hasText: "Test delivered: HTTP 200" }).waitFor();
  const test2 = receiver.requests.slice(beforeTest2).find((r) => r.json?.type === "webhook.test");
  assert.ok(test2);
  assert.equal(test2.headers["webhook-signature"].split(" ").length, 2);
  new Webhook(secret2).verify(test2.body, sigHeaders(test2));
  new Webhook(secret).verify(test2.body, sigHeaders(test2));

  // Replay the incoming message: the same webhook-id again.
  const beforeReplay = receiver.requests.length;
  await hook.getByRole("button", { name: `Replay… events to ${url}` }).click();
  const replay = page.getByRole("dialog", { name: "Replay events" });
  await replay.getByLabel("From event (seq)").fill(String(seq));
  await replay.getByLabel(/To event/).fill(String(seq));
  await replay.getByRole("button", { name: "Replay", exact: true }).click();
  await replay.waitFor({ state: "detached" });
  await hook
    .getByRole("status")
    .filter({ hasText: `Replaying events ${seq}` })
    .waitFor();
  let replayed;
  await waitFor(() => {
    replayed = receiver.requests
      .slice(beforeReplay)
      .find((r) => r.headers["webhook-id"] === event.headers["webhook-id"]);
    return Boolean(replayed);
  }, "the replayed delivery");
  new Webhook(secret2).verify(replayed.body, sigHeaders(replayed));
  assert.equal(JSON.parse(replayed.body).data.seq, seq);
  await waitFor(async () => {
    await log.getByRole("button", { name: "Refresh the delivery log" }).click();
    await page.waitForTimeout(200);
    return (await log.locator(`.delivery[data-seq="${seq}"] .tag`).count()) > 0;
  }, "the replay in the log");

  // Disable: nothing more is sent; enabling resumes from the cursor.
  await hook.getByRole("switch", { name: "Enabled" }).click();
  await page.locator(`.hook[data-url="${url}"][data-state="disabled"]`).waitFor();
  await hook.locator(".state", { hasText: "Disabled" }).waitFor();
  assert.equal(await hook.getByRole("switch", { name: "Enabled" }).isChecked(), false);
  const beforeOff = receiver.requests.length;
  await incoming(env.server.url, owner.token, "+6282200000002", "sent while disabled", "Eka");
  await page.waitForTimeout(1500);
  assert.equal(
    receiver.requests
      .slice(beforeOff)
      .some((r) => r.json?.data?.message?.content === "sent while disabled"),
    false,
  );
  await hook.getByRole("switch", { name: "Enabled" }).click();
  await page.locator(`.hook[data-url="${url}"][data-state="active"]`).waitFor();
  await waitFor(
    () =>
      receiver.requests
        .slice(beforeOff)
        .some((r) => r.json?.data?.message?.content === "sent while disabled"),
    "the event sent while disabled, after enabling",
  );

  // Delete it.
  await hook.getByRole("button", { name: `Delete ${url}` }).click();
  const del = page.getByRole("dialog", { name: "Delete this webhook endpoint?" });
  await del.getByRole("button", { name: "Delete" }).click();
  await hook.waitFor({ state: "detached" });
  await page.getByText("No webhook endpoints yet.").waitFor();

  assert.deepEqual(page.errors, []);
  await context.close();
});

test("phone layout, and an agent is told to ask an admin", async () => {
  const owner = await signUpApi(env.server.url, "Small Shop", "Sam Owner");
  const phone = {
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
  };
  const o = await pageWithToken(env, owner.token, phone);
  await o.page.goto(`${env.base}/developers`);
  await o.page.getByRole("heading", { name: "API & webhooks", level: 1 }).waitFor();
  await o.page.getByText("No API keys yet.").waitFor();
  // On the bottom bar the link reads "API"; its name stays whole.
  assert.ok(await o.page.getByRole("link", { name: "API & webhooks" }).isVisible());
  const box = await o.page.locator(".page").boundingBox();
  assert.ok(box && box.x >= 0 && box.width <= 390, JSON.stringify(box));
  await screenshot(o.page, "developers-phone");
  assert.deepEqual(o.page.errors, []);
  await o.context.close();

  const agent = await addMemberApi(env.server.url, owner.token, "Ayu Agent", "agent");
  const a = await pageWithToken(env, agent.token);
  await a.page.goto(`${env.base}/inbox`);
  await a.page.getByRole("link", { name: "Team" }).waitFor();
  assert.equal(await a.page.getByRole("link", { name: "API & webhooks" }).count(), 0);
  await a.page.goto(`${env.base}/developers`);
  await a.page.getByRole("heading", { name: "Ask an admin" }).waitFor();
  await a.page.getByText("Only owners and admins can manage API keys and webhooks.").waitFor();
  assert.equal(await a.page.getByRole("button", { name: "Create key" }).count(), 0);
  // The server agrees.
  const res = await fetch(`${env.server.url}/api/api-keys`, {
    headers: { Authorization: `Bearer ${agent.token}` },
  });
  assert.equal(res.status, 403);
  assert.deepEqual(a.page.errors, []);
  await a.context.close();
});
