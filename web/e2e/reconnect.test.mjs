// The socket is cut (server killed and restarted on the same data dir and port) while a
// message arrives: after reconnection it is on screen, exactly once.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { connectWhatsapp, incoming, pageWithToken, setup, signUpApi } from "./harness.mjs";

let env;
before(async () => {
  env = await setup();
});
after(async () => {
  await env?.close();
});

test("a message that arrives across a server restart shows once", async () => {
  const owner = await signUpApi(env.server.url, "Fabrikam");
  await connectWhatsapp(env.server.url, owner.token);
  await incoming(env.server.url, owner.token, "+6281200000001", "first message", "Dewi");

  const { context, page } = await pageWithToken(env, owner.token);
  await page.goto(`${env.base}/inbox`);
  await page.locator(".conv", { hasText: "Dewi" }).click();
  await page.locator(".msg-in", { hasText: "first message" }).waitFor();
  await page.locator('[data-connection="online"]').waitFor();
  // A live event first, so the page has a seq to catch up from.
  await incoming(env.server.url, owner.token, "+6281200000001", "second message", "Dewi");
  await page.locator(".msg-in", { hasText: "second message" }).waitFor();

  await env.server.kill("SIGKILL");
  await page.locator('[data-connection="offline"]').waitFor();
  assert.ok(await page.getByText("Connection lost").isVisible());

  await env.server.start();
  // Straight after the restart, before the page has necessarily reconnected.
  await incoming(env.server.url, owner.token, "+6281200000001", "sent during the outage", "Dewi");
  await incoming(env.server.url, owner.token, "+6281299999999", "a new contact meanwhile", "Eko");

  await page.locator('[data-connection="online"]').waitFor({ timeout: 20_000 });
  await page.locator(".msg-in", { hasText: "sent during the outage" }).waitFor();
  await page.locator(".conv", { hasText: "Eko" }).waitFor();
  // Give a late live event or a second catch-up the chance to duplicate it.
  await page.waitForTimeout(1500);
  assert.equal(await page.locator(".msg-in", { hasText: "sent during the outage" }).count(), 1);
  assert.equal(await page.locator(".msg-in").count(), 3);
  assert.equal(await page.locator(".conv-item", { hasText: "Dewi" }).count(), 1);
  assert.equal(await page.locator(".conv-item", { hasText: "Eko" }).count(), 1);
  assert.match(await page.locator(".conv-item").first().textContent(), /Eko/);

  // A graceful stop (SIGTERM: the server says goodbye to every socket, which Socket.IO does
  // not retry by itself) comes back the same way.
  await env.server.stop();
  await page.locator('[data-connection="offline"]').waitFor();
  await env.server.start();
  await incoming(env.server.url, owner.token, "+6281200000001", "after a clean restart", "Dewi");
  await page.locator('[data-connection="online"]').waitFor({ timeout: 20_000 });
  await page.locator(".msg-in", { hasText: "after a clean restart" }).waitFor();
  await page.waitForTimeout(1000);
  assert.equal(await page.locator(".msg-in", { hasText: "after a clean restart" }).count(), 1);
  assert.equal(await page.locator(".msg-in").count(), 4);

  assert.deepEqual(page.errors, []);
  await context.close();
});
