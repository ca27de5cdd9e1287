// The search screen: words in Latin, Cyrillic and CJK text found (trigram index), the match
// highlighted from the snippet parts, newest first with "Load more", and a result opening its
// chat at that message even when it is pages up the history.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { incoming, pageWithToken, screenshot, setup, signUpApi, waitFor } from "./harness.mjs";

let env;
before(async () => {
  env = await setup();
});
after(async () => {
  await env?.close();
});

test("search finds Latin, Cyrillic and CJK words and jumps to the message", async () => {
  const owner = await signUpApi(env.server.url, "Search Bazaar");
  const t = owner.token;
  const u = env.server.url;
  await incoming(u, t, "+6281310000001", "The refund was processed yesterday", "Kartika");
  // 70 later messages in the same chat: the match is on an older page of its history.
  for (let start = 0; start < 70; start += 10) {
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        incoming(u, t, "+6281310000001", `filler line ${start + i}`, "Kartika"),
      ),
    );
  }
  await incoming(u, t, "+79161234567", "Здравствуйте, где мой заказ?", "Иван Петров");
  await incoming(u, t, "+8613812345678", "我的订单什么时候发货？", "王伟");
  await incoming(u, t, "+8613812345679", "我要退款，谢谢", "李娜");
  await incoming(u, t, "+6281310000002", 'He said "<b>hi</b>" & left', "Quote Test");

  const { context, page } = await pageWithToken(env, t);
  const requests = [];
  page.on("request", (r) => {
    if (r.url().includes("/api/search")) requests.push(new URL(r.url()).searchParams.get("q"));
  });
  await page.goto(`${env.base}/inbox`);
  await page.getByRole("link", { name: "Search" }).click();
  await page.getByRole("heading", { name: "Search", level: 1 }).waitFor();
  const box = page.getByRole("searchbox", { name: "Search messages" });

  // Latin, inside a longer word; the query is sent as quoted phrases.
  await box.fill("refun");
  await box.press("Enter");
  const results = page.getByRole("list", { name: "Search results" });
  const first = results.locator(".result").first();
  await first.locator("mark", { hasText: /^refun$/i }).waitFor();
  assert.equal(await results.locator(".result").count(), 1);
  assert.match(await first.textContent(), /Kartika/);
  assert.equal(requests.at(-1), '"refun"');
  assert.match(page.url(), /\/search\?q=refun$/);
  await screenshot(page, "search-desktop");

  // Opening it loads the chat's history back to that message and highlights it.
  await first.getByRole("link").click();
  const hit = page.locator(".msg-highlight", { hasText: "The refund was processed yesterday" });
  await hit.waitFor({ timeout: 20_000 });
  await waitFor(
    async () =>
      hit.evaluate((el) => {
        const box = el.getBoundingClientRect();
        const pane = document.querySelector(".chat-scroll").getBoundingClientRect();
        return box.top >= pane.top && box.bottom <= pane.bottom;
      }),
    "the found message scrolled into view",
  );
  assert.ok((await page.locator(".msg-in").count()) > 50);

  // Back: the search is still there. Cyrillic next.
  await page.goBack();
  await first.waitFor();
  await box.fill("заказ");
  await box.press("Enter");
  await results.locator(".result mark", { hasText: "заказ" }).waitFor();
  assert.match(await results.locator(".result").first().textContent(), /Иван Петров/);
  await results.locator(".result").first().getByRole("link").click();
  await page.locator(".msg-highlight", { hasText: "где мой заказ" }).waitFor();
  await page.locator(".chat-head", { hasText: "Иван Петров" }).waitFor();

  // CJK: no spaces between words, found by three characters or more.
  await page.goto(`${env.base}/search?q=${encodeURIComponent("订单什么")}`);
  await results.locator(".result mark", { hasText: "订单什么" }).waitFor();
  await results.locator(".result").first().getByRole("link").click();
  await page.locator(".msg-highlight", { hasText: "我的订单什么时候发货" }).waitFor();
  // One word of two characters ("refund") is searched too (by a scan on the server).
  await page.goto(`${env.base}/search?q=${encodeURIComponent("退款")}`);
  await results.locator(".result mark", { hasText: "退款" }).waitFor();
  assert.match(await results.locator(".result").first().textContent(), /李娜/);

  // Text that would be FTS5 syntax or markup is just text.
  await page.goto(`${env.base}/search`);
  await box.fill('"<b>hi</b>"');
  await box.press("Enter");
  await results.locator(".result mark").first().waitFor();
  assert.equal(requests.at(-1), '"""<b>hi</b>"""');
  assert.equal(await results.locator(".result b").count(), 0);
  assert.match(await results.locator(".result").first().textContent(), /"<b>hi<\/b>" & left/);
  await box.fill("NEAR( *");
  await box.press("Enter");
  await page.getByText(/each needs at least 3 characters/).waitFor();
  await box.fill("NEAR( ***");
  await box.press("Enter");
  await page.getByText(/Nothing found for/).waitFor();
  assert.equal(await page.locator(".search-status .form-error").count(), 0);

  assert.deepEqual(page.errors, []);
  await context.close();
});

test("search results are newest first and page with Load more", async () => {
  const owner = await signUpApi(env.server.url, "Invoice Hub");
  for (let start = 0; start < 30; start += 10) {
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        incoming(
          env.server.url,
          owner.token,
          `+62813200${String(start + i).padStart(5, "0")}`,
          `invoice number ${start + i}`,
          `Payer ${start + i}`,
        ),
      ),
    );
  }
  await incoming(env.server.url, owner.token, "+6281329999999", "latest invoice", "Last Payer");
  const { context, page } = await pageWithToken(env, owner.token);
  await page.goto(`${env.base}/search?q=invoice`);
  const results = page.getByRole("list", { name: "Search results" });
  await results.locator(".result").nth(19).waitFor();
  assert.equal(await results.locator(".result").count(), 20);
  assert.match(await results.locator(".result").first().textContent(), /latest invoice/);
  const times = await results
    .locator(".result time")
    .evaluateAll((els) => els.map((e) => Date.parse(e.getAttribute("datetime"))));
  assert.deepEqual(
    times,
    times.slice().sort((a, b) => b - a),
  );
  await page.getByRole("button", { name: "Load more" }).click();
  await results.locator(".result").nth(30).waitFor();
  assert.equal(await results.locator(".result").count(), 31);
  await page.getByRole("button", { name: "Load more" }).waitFor({ state: "detached" });
  const ids = await results.locator(".result").evaluateAll((els) => els.map((e) => e.dataset.id));
  assert.equal(new Set(ids).size, 31);
  assert.deepEqual(page.errors, []);
  await context.close();
});
