// Private notes (shown apart, with their author), a mention reaching the other member's bell
// live, quick replies through `/` with their placeholders filled, and each member's own unread
// count.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import {
  addMemberApi,
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

let env;
before(async () => {
  env = await setup();
});
after(async () => {
  await env?.close();
});

const row = (page, name) => page.locator(".conv-item", { hasText: name });

test("a private note is shown apart; @ mentions a teammate, whose bell rings live", async () => {
  const owner = await signUpApi(env.server.url, "Notes Inc", "Olivia Owner");
  const agent = await addMemberApi(env.server.url, owner.token, "Ayu Agent");
  await addMemberApi(env.server.url, owner.token, "Ayu Admin", "admin");
  await connectWhatsapp(env.server.url, owner.token);
  await incoming(env.server.url, owner.token, "+6281210000001", "My order is late", "Intan");

  const o = await pageWithToken(env, owner.token);
  const a = await pageWithToken(env, agent.token);
  await o.page.goto(`${env.base}/inbox`);
  await a.page.goto(`${env.base}/inbox`);
  await row(a.page, "Intan").waitFor();
  const bell = a.page.getByRole("button", { name: /^Alerts/ });
  assert.equal(await bell.getAttribute("data-unread"), "0");

  await row(o.page, "Intan").locator(".conv").click();
  await o.page.locator(".msg-in", { hasText: "late" }).waitFor();
  await o.page.getByRole("button", { name: "Note", exact: true }).click();
  assert.equal(
    await o.page.getByRole("button", { name: "Note", exact: true }).getAttribute("aria-pressed"),
    "true",
  );
  const box = o.page.getByRole("textbox", { name: "Write a private note" });
  await box.type("Please call her back @ayu");
  // Both Ayus are offered; the arrow picks the second, Enter inserts the full name.
  const offer = o.page.getByRole("listbox", { name: "Teammates" });
  await offer.getByRole("option", { name: /Ayu Agent/ }).waitFor();
  await offer.getByRole("option", { name: /Ayu Admin/ }).waitFor();
  assert.equal(await offer.getByRole("option", { name: /Olivia/ }).count(), 0);
  const options = await offer.getByRole("option").allTextContents();
  const agentAt = options.findIndex((t) => t.includes("Ayu Agent"));
  for (let i = 0; i < agentAt; i++) await box.press("ArrowDown");
  await box.press("Enter");
  assert.equal(await box.inputValue(), "Please call her back @Ayu Agent ");
  await box.type("today, she is a VIP");
  await box.press("Enter");
  const note = o.page.locator('.msg-note[data-private="true"]').last();
  await note.getByText("today, she is a VIP").waitFor();
  await note.locator(".note-label", { hasText: "Private note" }).waitFor();
  await note.locator(".note-author", { hasText: "Olivia Owner" }).waitFor();
  await note.locator(".mention", { hasText: "@Ayu Agent" }).waitFor();
  // Not a reply: no ticks, no outgoing bubble, and the list's last message is unchanged.
  assert.equal(await note.locator(".ticks").count(), 0);
  assert.equal(await o.page.locator(".msg-out").count(), 0);
  assert.match(await row(o.page, "Intan").textContent(), /My order is late/);
  await screenshot(o.page, "workflow-note-desktop");

  // The agent's bell counts it at once, without a reload.
  await a.page.locator('button.bell[data-unread="1"]').waitFor();
  await bell.click();
  const dialog = a.page.getByRole("dialog", { name: "Notifications" });
  const item = dialog.locator(".notification.unread").first();
  await item.getByText("Olivia Owner").waitFor();
  await item.getByText("Intan").waitFor();
  await item
    .locator(".notification-text", {
      hasText: "Please call her back @Ayu Agent today, she is a VIP",
    })
    .waitFor();
  await screenshot(a.page, "workflow-notifications-desktop");
  await item.getByRole("button").click();
  // It opens the chat at the note, highlighted, and is read now.
  await a.page.locator(".msg-note.msg-highlight", { hasText: "she is a VIP" }).waitFor();
  await a.page.locator('button.bell[data-unread="0"]').waitFor();
  const list = await call(env.server.url, "GET", "/api/notifications", undefined, agent.token);
  assert.equal(list.unread, 0);

  // A note added while the agent has the chat open appears in the thread live; the owner's
  // own bell never counted the owner's note.
  await box.fill("Called, no answer");
  await box.press("Enter");
  await a.page.locator(".msg-note", { hasText: "Called, no answer" }).waitFor();
  await o.page.locator('button.bell[data-unread="0"]').waitFor();

  // Back to a reply: the toggle off sends to WhatsApp again.
  await o.page.getByRole("button", { name: "Note", exact: true }).click();
  const reply = o.page.getByRole("textbox", { name: "Write a message" });
  await reply.fill("We are on it!");
  await reply.press("Enter");
  await o.page.locator('.msg-out .ticks[data-status="sent"]').waitFor();

  // Loaded from REST: a fresh page lists the notifications with their note's excerpt (cut at
  // 140 characters) and the contact, who is not in the list (resolved); no conversation is
  // fetched for them.
  const intanId = await conversationId(env.server.url, owner.token, "+6281210000001");
  await call(
    env.server.url,
    "POST",
    `/api/conversations/${intanId}/status`,
    { status: "resolved" },
    owner.token,
  );
  const long = `@Ayu Agent the courier says ${"the parcel is in the depot and ".repeat(6)}done`;
  await call(
    env.server.url,
    "POST",
    `/api/conversations/${intanId}/notes`,
    { content: long },
    owner.token,
  );
  const fetched = [];
  a.page.on("request", (r) => {
    if (new URL(r.url()).pathname === `/api/conversations/${intanId}`) fetched.push(r.url());
  });
  await a.page.goto(`${env.base}/inbox`);
  await a.page.locator('button.bell[data-unread="1"]').waitFor();
  assert.equal(await row(a.page, "Intan").count(), 0);
  await bell.click();
  const items = dialog.locator(".notification");
  await items.nth(1).waitFor();
  assert.equal(await items.count(), 2);
  const newest = items.nth(0);
  assert.match(await newest.getAttribute("class"), /unread/);
  await newest.getByText("Olivia Owner").waitFor();
  await newest.getByText("Intan").waitFor();
  assert.equal(
    await newest.locator(".notification-text").textContent(),
    `${[...long].slice(0, 140).join("")}…`,
  );
  const older = items.nth(1);
  await older.getByText("Intan").waitFor();
  assert.equal(
    await older.locator(".notification-text").textContent(),
    "Please call her back @Ayu Agent today, she is a VIP",
  );
  await a.page.waitForTimeout(300);
  assert.deepEqual(fetched, []);
  // Opening it still goes to the note (the chat is fetched then).
  await newest.getByRole("button").click();
  await a.page.locator(".msg-note.msg-highlight", { hasText: "courier says" }).waitFor();
  await a.page.locator('button.bell[data-unread="0"]').waitFor();

  assert.deepEqual(o.page.errors, []);
  assert.deepEqual(a.page.errors, []);
  await o.context.close();
  await a.context.close();
});

test("quick replies: managed on the Team page, offered by / and filled in", async () => {
  const owner = await signUpApi(env.server.url, "Canned Co", "Olivia Owner");
  await connectWhatsapp(env.server.url, owner.token);
  await incoming(
    env.server.url,
    owner.token,
    "+6281220000001",
    "Hello, are you open?",
    "Rina Putri",
  );

  const { context, page } = await pageWithToken(env, owner.token);
  await page.goto(`${env.base}/team`);
  const section = page.locator("section", {
    has: page.getByRole("heading", { name: /^Quick replies/ }),
  });
  const form = section.getByRole("form", { name: "New quick reply" });
  const add = async (code, text) => {
    await form.getByLabel("Short code").fill(code);
    await form.getByLabel("Text").fill(text);
    await form.getByRole("button", { name: "Add quick reply" }).click();
    await section.locator(`.row[data-code="${code}"]`).waitFor();
  };
  await add("thanks", "Hi {{contact.name}}, thanks for writing! — {{agent.name}}");
  await add("hours", "We are open 9:00–17:00, Monday to Saturday.");
  await add("oops", "To be deleted");
  // A short code is unique.
  await form.getByLabel("Short code").fill("hours");
  await form.getByLabel("Text").fill("again");
  await form.getByRole("button", { name: "Add quick reply" }).click();
  await section.getByRole("alert").filter({ hasText: "already exists" }).waitFor();
  await form.getByLabel("Short code").fill("");
  await form.getByLabel("Text").fill("");
  // Edit one, delete one.
  await section.getByRole("button", { name: "Edit quick reply hours" }).click();
  const edit = section.locator("form", { has: page.getByRole("button", { name: "Save" }) });
  await edit.getByLabel("Text").fill("We are open 8:00–18:00, every day.");
  await edit.getByRole("button", { name: "Save" }).click();
  await section.locator('.row[data-code="hours"]', { hasText: "every day" }).waitFor();
  await section.getByRole("button", { name: "Delete quick reply oops" }).click();
  await page
    .getByRole("dialog", { name: "Delete the quick reply /oops?" })
    .getByRole("button", { name: "Delete" })
    .click();
  await section.locator('.row[data-code="oops"]').waitFor({ state: "detached" });
  await screenshot(page, "workflow-quick-replies-desktop");

  await page.getByRole("link", { name: "Inbox" }).click();
  await row(page, "Rina Putri").locator(".conv").click();
  const box = page.getByRole("textbox", { name: "Write a message" });
  await box.type("/");
  const offer = page.getByRole("listbox", { name: "Quick replies" });
  await offer.getByRole("option").nth(1).waitFor();
  assert.equal(await offer.getByRole("option").count(), 2);
  // Typing filters: /th leaves one, shown with its placeholders filled.
  await box.type("th");
  await waitFor(async () => (await offer.getByRole("option").count()) === 1, "one offer");
  await offer.getByText("Hi Rina Putri, thanks for writing! — Olivia Owner").waitFor();
  await screenshot(page, "workflow-quick-reply-offer-desktop");
  await box.press("Enter");
  assert.equal(await box.inputValue(), "Hi Rina Putri, thanks for writing! — Olivia Owner");
  await offer.waitFor({ state: "detached" });
  await box.press("Enter");
  await page
    .locator(".msg-out", { hasText: "Hi Rina Putri, thanks for writing! — Olivia Owner" })
    .locator('.ticks[data-status="sent"]')
    .waitFor();

  // Arrows pick another one; Escape dismisses the offer and the text stays.
  await box.type("/");
  await offer.getByRole("option").nth(1).waitFor();
  const codes = await offer.locator("code").allTextContents();
  await box.press("ArrowDown");
  await box.press("Tab");
  const second = codes[1] === "/hours" ? "We are open 8:00–18:00, every day." : "Hi Rina Putri";
  assert.match(await box.inputValue(), new RegExp(second));
  await box.fill("/nothing-like-it");
  assert.equal(await offer.count(), 0);
  await box.fill("/");
  await offer.waitFor();
  await box.press("Escape");
  await offer.waitFor({ state: "detached" });
  assert.equal(await box.inputValue(), "/");

  assert.deepEqual(page.errors, []);
  await context.close();
});

test("each member has their own unread count", async () => {
  const owner = await signUpApi(env.server.url, "Unread Pair");
  const agent = await addMemberApi(env.server.url, owner.token, "Umar Agent");
  await incoming(env.server.url, owner.token, "+6281230000001", "Anyone there?", "Joko");

  const o = await pageWithToken(env, owner.token);
  const a = await pageWithToken(env, agent.token);
  await o.page.goto(`${env.base}/inbox`);
  await a.page.goto(`${env.base}/inbox`);
  const badge = (page) => row(page, "Joko").locator(".badge");
  await badge(o.page).waitFor();
  await badge(a.page).waitFor();
  assert.equal(await badge(o.page).getAttribute("data-unread"), "1");
  assert.equal(await badge(a.page).getAttribute("data-unread"), "1");

  // The owner reads it: the owner's badge goes, the agent's stays.
  await row(o.page, "Joko").locator(".conv").click();
  await o.page.locator(".msg-in", { hasText: "Anyone there?" }).waitFor();
  await badge(o.page).waitFor({ state: "detached" });
  await a.page.waitForTimeout(800);
  assert.equal(await badge(a.page).getAttribute("data-unread"), "1");

  // Another message: +1 for the agent, nothing for the owner who is reading.
  await incoming(env.server.url, owner.token, "+6281230000001", "Hello??", "Joko");
  await o.page.locator(".msg-in", { hasText: "Hello??" }).waitFor();
  await row(a.page, "Joko").locator('.badge[data-unread="2"]').waitFor();
  await o.page.waitForTimeout(800);
  assert.equal(await badge(o.page).count(), 0);

  // The server agrees after a reload.
  await a.page.reload();
  await row(a.page, "Joko").locator('.badge[data-unread="2"]').waitFor();
  await o.page.reload();
  await row(o.page, "Joko").waitFor();
  await o.page.waitForTimeout(300);
  assert.equal(await badge(o.page).count(), 0);
  const mine = await call(env.server.url, "GET", "/api/conversations", undefined, agent.token);
  assert.equal(mine.items[0].unreadCount, 2);

  // The agent reads it too.
  await row(a.page, "Joko").locator(".conv").click();
  await badge(a.page).waitFor({ state: "detached" });

  assert.deepEqual(o.page.errors, []);
  assert.deepEqual(a.page.errors, []);
  await o.context.close();
  await a.context.close();
});
