// The team workflow in the list and the chat header: status tabs with their counts, resolve /
// snooze / reopen and pending (buttons, the status menu and keyboard shortcuts), assignment
// with Mine / Unassigned / All (an agent included), labels (managed on the Team page, applied
// in the chat, filtered by), and the contact's name edited in the header.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import {
  addMemberApi,
  call,
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

/** The number a tab (or assignee switch) shows, once it shows `n`. */
async function count(page, selector, n) {
  await page.locator(`${selector} .tab-count[data-count="${n}"]`).waitFor();
}

const rows = (page) => page.locator(".conv-item");
const row = (page, name) => page.locator(".conv-item", { hasText: name });

test("status tabs count and list; resolve, snooze and reopen, by button and by key", async () => {
  const owner = await signUpApi(env.server.url, "Status Shop");
  await incoming(env.server.url, owner.token, "+6281110000001", "Where is my parcel?", "Ana");
  await incoming(env.server.url, owner.token, "+6281110000002", "Do you ship to Bali?", "Bayu");
  await incoming(env.server.url, owner.token, "+6281110000003", "Price list please", "Citra");

  const { context, page } = await pageWithToken(env, owner.token);
  await page.goto(`${env.base}/inbox`);
  const open = page.getByRole("tab", { name: /^Open/ });
  const resolved = page.getByRole("tab", { name: /^Resolved/ });
  const snoozed = page.getByRole("tab", { name: /^Snoozed/ });
  await count(page, "#tab-open", 3);
  await count(page, "#tab-resolved", 0);
  assert.equal(await open.getAttribute("aria-selected"), "true");
  assert.equal(await rows(page).count(), 3);

  // Resolve Ana with the button: she leaves the Open list, the counts follow.
  await row(page, "Ana").locator(".conv").click();
  await page.locator(".msg-in", { hasText: "parcel" }).waitFor();
  await page.locator(".chat-head").getByRole("button", { name: "Resolve" }).click();
  await page.locator(".chat-head .status-pill", { hasText: "Resolved" }).waitFor();
  await row(page, "Ana").waitFor({ state: "detached" });
  await count(page, "#tab-open", 2);
  await count(page, "#tab-resolved", 1);

  // The Resolved tab lists her; Reopen takes her back.
  await resolved.click();
  await row(page, "Ana").waitFor();
  assert.equal(await rows(page).count(), 1);
  await screenshot(page, "workflow-status-desktop");
  await page.locator(".chat-head").getByRole("button", { name: "Reopen" }).click();
  await row(page, "Ana").waitFor({ state: "detached" });
  await count(page, "#tab-open", 3);
  await count(page, "#tab-resolved", 0);

  // The tabs follow the keyboard too (arrows, Home, End).
  await resolved.focus();
  await page.keyboard.press("ArrowRight");
  await waitFor(async () => (await snoozed.getAttribute("aria-selected")) === "true", "Snoozed");
  await page.keyboard.press("Home");
  await waitFor(async () => (await open.getAttribute("aria-selected")) === "true", "Open tab");
  await row(page, "Ana").waitFor();

  // Z opens the snooze menu (focus is on the list link, not in a text field).
  await row(page, "Bayu").locator(".conv").click();
  await page.locator(".msg-in", { hasText: "Bali" }).waitFor();
  await page.locator(".chat-head").click({ position: { x: 5, y: 5 } });
  await page.keyboard.press("z");
  const menu = page.getByRole("group", { name: "Snooze menu" });
  await menu.waitFor();
  await menu.getByRole("button", { name: "For 1 hour" }).click();
  await page.locator(".chat-head .status-pill", { hasText: "Snoozed until" }).waitFor();
  await row(page, "Bayu").waitFor({ state: "detached" });
  await count(page, "#tab-snoozed", 1);
  await count(page, "#tab-open", 2);

  // A key typed in the composer is text, not a shortcut.
  await row(page, "Citra").locator(".conv").click();
  await page.locator(".msg-in", { hasText: "Price list" }).waitFor();
  const box = page.getByRole("textbox", { name: "Write a message" });
  await box.fill("");
  await box.type("e");
  assert.equal(await box.inputValue(), "e");
  await page.waitForTimeout(300);
  assert.equal(await page.locator(".chat-head .status-pill").count(), 0);
  await box.fill("");
  // E resolves once focus is out of the text field.
  await page.locator(".chat-head h2").click();
  await page.keyboard.press("e");
  await page.locator(".chat-head .status-pill", { hasText: "Resolved" }).waitFor();
  await row(page, "Citra").waitFor({ state: "detached" });
  await count(page, "#tab-resolved", 1);

  // Citra writes again: the server reopens the chat and it comes back into the Open list live.
  await incoming(env.server.url, owner.token, "+6281110000003", "Hello again?", "Citra");
  await row(page, "Citra").waitFor();
  await page.locator(".chat-head .status-pill").waitFor({ state: "detached" });
  await count(page, "#tab-open", 2);
  await count(page, "#tab-resolved", 0);

  // The snoozed one is under Snoozed; a chosen time works as well.
  await snoozed.click();
  await row(page, "Bayu").waitFor();
  await row(page, "Bayu").locator(".conv").click();
  await page.locator(".chat-head").getByRole("button", { name: "Snooze" }).click();
  const later = new Date(Date.now() + 3 * 86_400_000);
  const p = (n) => String(n).padStart(2, "0");
  await menu
    .getByLabel("Pick a time")
    .fill(`${later.getFullYear()}-${p(later.getMonth() + 1)}-${p(later.getDate())}T10:30`);
  await menu.getByRole("button", { name: "Snooze until then" }).click();
  await page.locator(".chat-head .status-pill", { hasText: "10:30" }).waitFor();

  // A snooze that runs out reopens the chat by itself: it comes back to the Open tab live.
  await open.click();
  await row(page, "Ana").waitFor();
  const anaId = await conversationId(env.server.url, owner.token, "+6281110000001");
  await call(
    env.server.url,
    "POST",
    `/api/conversations/${anaId}/status`,
    { status: "snoozed", snoozedUntil: new Date(Date.now() + 2500).toISOString() },
    owner.token,
  );
  await row(page, "Ana").waitFor({ state: "detached" });
  await count(page, "#tab-snoozed", 2);
  await row(page, "Ana").waitFor({ timeout: 20_000 });
  await count(page, "#tab-snoozed", 1);

  assert.deepEqual(page.errors, []);
  await context.close();
});

test("pending: set from the status menu and by P, listed under Pending, back to open", async () => {
  const owner = await signUpApi(env.server.url, "Pending Place");
  await incoming(env.server.url, owner.token, "+6281150000001", "Send me the invoice", "Kiki");
  await incoming(env.server.url, owner.token, "+6281150000002", "Is it in stock?", "Lala");

  const { context, page } = await pageWithToken(env, owner.token);
  await page.goto(`${env.base}/inbox`);
  const head = page.locator(".chat-head");
  const open = page.getByRole("tab", { name: /^Open/ });
  const pending = page.getByRole("tab", { name: /^Pending/ });
  await count(page, "#tab-open", 2);
  await count(page, "#tab-pending", 0);

  // The status menu beside Resolve: Open is ticked; Pending moves Kiki to the Pending tab.
  await row(page, "Kiki").locator(".conv").click();
  await page.locator(".msg-in", { hasText: "invoice" }).waitFor();
  const toggle = head.getByRole("button", { name: "Status", exact: true });
  assert.equal(await toggle.getAttribute("aria-keyshortcuts"), "P");
  await toggle.click();
  const menu = page.getByRole("group", { name: "Status menu" });
  assert.equal(
    await menu.getByRole("button", { name: "Open" }).getAttribute("aria-current"),
    "true",
  );
  await screenshot(page, "workflow-status-menu-desktop");
  await menu.getByRole("button", { name: /^Pending/ }).click();
  await menu.waitFor({ state: "detached" });
  await head.locator('.status-pill[data-status="pending"]', { hasText: "Pending" }).waitFor();
  await row(page, "Kiki").waitFor({ state: "detached" });
  await count(page, "#tab-open", 1);
  await count(page, "#tab-pending", 1);
  // Still the primary action: a pending chat can be resolved.
  await head.getByRole("button", { name: "Resolve" }).waitFor();

  // The Pending tab lists her (with the server's agreement); her next message keeps her there.
  await pending.click();
  await row(page, "Kiki").waitFor();
  assert.equal(await rows(page).count(), 1);
  assert.equal(await pending.getAttribute("aria-selected"), "true");
  const kikiId = await conversationId(env.server.url, owner.token, "+6281150000001");
  const listed = await call(
    env.server.url,
    "GET",
    "/api/conversations?status=pending",
    undefined,
    owner.token,
  );
  assert.deepEqual(
    listed.items.map((c) => c.id),
    [kikiId],
  );
  await incoming(env.server.url, owner.token, "+6281150000001", "Any news?", "Kiki");
  await page.locator(".msg-in", { hasText: "Any news?" }).waitFor();
  await page.waitForTimeout(500);
  await row(page, "Kiki").waitFor();
  await count(page, "#tab-pending", 1);
  await count(page, "#tab-open", 1);

  // P, with focus out of the text fields: Lala becomes pending too (listed live here).
  await open.click();
  await row(page, "Lala").locator(".conv").click();
  await page.locator(".msg-in", { hasText: "in stock" }).waitFor();
  await head.locator("h2").click();
  await page.keyboard.press("p");
  await head.locator('.status-pill[data-status="pending"]').waitFor();
  await row(page, "Lala").waitFor({ state: "detached" });
  await count(page, "#tab-open", 0);
  await count(page, "#tab-pending", 2);
  await pending.click();
  await row(page, "Lala").waitFor();
  await row(page, "Kiki").waitFor();

  // The ? help lists P; P again takes Lala back to open.
  await head.getByRole("button", { name: "Keyboard shortcuts" }).click();
  await page
    .getByRole("group", { name: "Keyboard shortcuts menu" })
    .getByText("Mark pending, or back to open")
    .waitFor();
  await page.keyboard.press("Escape");
  await row(page, "Lala").locator(".conv").click();
  await head.locator("h2").click();
  await page.keyboard.press("p");
  await head.locator(".status-pill").waitFor({ state: "detached" });
  await row(page, "Lala").waitFor({ state: "detached" });
  await count(page, "#tab-open", 1);
  await count(page, "#tab-pending", 1);

  assert.deepEqual(page.errors, []);
  await context.close();
});

test("assignment: Mine / Unassigned / All, the assign menu, and what an agent may do", async () => {
  const owner = await signUpApi(env.server.url, "Assign Agency", "Olivia Owner");
  const agent = await addMemberApi(env.server.url, owner.token, "Ayu Agent");
  await incoming(env.server.url, owner.token, "+6281120000001", "Question one", "Dina");
  await incoming(env.server.url, owner.token, "+6281120000002", "Question two", "Eko");

  const o = await pageWithToken(env, owner.token);
  await o.page.goto(`${env.base}/inbox`);
  await count(o.page, ".radios label:has(input[value=unassigned])", 2);

  // The owner gives Dina to Ayu from the menu, and takes Eko with A.
  await row(o.page, "Dina").locator(".conv").click();
  await o.page.locator(".msg-in", { hasText: "Question one" }).waitFor();
  await o.page.locator(".chat-head").getByRole("button", { name: "Assign" }).click();
  const menu = o.page.getByRole("group", { name: "Assign menu" });
  await menu.getByRole("button", { name: "Ayu Agent" }).click();
  await row(o.page, "Dina").locator(".conv-assignee", { hasText: "Ayu Agent" }).waitFor();
  await row(o.page, "Eko").locator(".conv").click();
  await o.page.locator(".msg-in", { hasText: "Question two" }).waitFor();
  await o.page.keyboard.press("a");
  await row(o.page, "Eko").locator(".conv-assignee", { hasText: "You" }).waitFor();
  await count(o.page, ".radios label:has(input[value=me])", 1);
  await count(o.page, ".radios label:has(input[value=unassigned])", 0);
  await count(o.page, ".radios label:has(input[value=all])", 2);

  await o.page.getByRole("radio", { name: /^Mine/ }).check();
  await waitFor(async () => (await rows(o.page).count()) === 1, "only Eko under Mine");
  await row(o.page, "Eko").waitFor();
  await o.page.getByRole("radio", { name: /^Unassigned/ }).check();
  await o.page.getByText("No conversations match.").waitFor();
  await o.page.getByRole("radio", { name: /^Mine/ }).check();
  await row(o.page, "Eko").waitFor();

  // The agent: Mine lists Dina; the menu offers only themselves, no one else.
  const a = await pageWithToken(env, agent.token);
  await a.page.goto(`${env.base}/inbox`);
  await a.page.getByRole("radio", { name: /^Mine/ }).check();
  await row(a.page, "Dina").waitFor();
  await waitFor(async () => (await rows(a.page).count()) === 1, "only Dina for the agent");
  await a.page.getByRole("radio", { name: /^All/ }).check();
  await row(a.page, "Eko").locator(".conv").click();
  await a.page
    .locator(".chat-head")
    .getByRole("button", { name: /Assign/ })
    .click();
  const agentMenu = a.page.getByRole("group", { name: "Assign menu" });
  await agentMenu.getByRole("button", { name: /Assign to me/ }).waitFor();
  assert.equal(await agentMenu.getByRole("button", { name: "Olivia Owner" }).count(), 0);
  assert.equal(await agentMenu.getByRole("button", { name: "Unassign" }).count(), 0);
  // Taking Eko from the owner: he leaves the owner's Mine list live.
  await agentMenu.getByRole("button", { name: /Assign to me/ }).click();
  await row(a.page, "Eko").locator(".conv-assignee", { hasText: "You" }).waitFor();
  await row(o.page, "Eko").waitFor({ state: "detached" });
  await count(o.page, ".radios label:has(input[value=me])", 0);

  // The agent unassigns Dina: the owner's Unassigned count follows.
  await row(a.page, "Dina").locator(".conv").click();
  await a.page
    .locator(".chat-head")
    .getByRole("button", { name: /Assign/ })
    .click();
  await agentMenu.getByRole("button", { name: "Unassign" }).click();
  await row(a.page, "Dina").locator(".conv-assignee").waitFor({ state: "detached" });
  await count(o.page, ".radios label:has(input[value=unassigned])", 1);
  await o.page.getByRole("radio", { name: /^Unassigned/ }).check();
  await row(o.page, "Dina").waitFor();
  await screenshot(o.page, "workflow-assign-desktop");

  assert.deepEqual(o.page.errors, []);
  assert.deepEqual(a.page.errors, []);
  await o.context.close();
  await a.context.close();
});

test("labels: managed on the Team page, applied in the chat, shown as chips, filtered", async () => {
  const owner = await signUpApi(env.server.url, "Label Works");
  const agent = await addMemberApi(env.server.url, owner.token, "Lia Agent");
  await incoming(env.server.url, owner.token, "+6281130000001", "I want a refund", "Fajar");
  await incoming(env.server.url, owner.token, "+6281130000002", "Bulk order of 500", "Gita");
  await incoming(env.server.url, owner.token, "+6281130000003", "Just saying hi", "Hadi");

  const { context, page } = await pageWithToken(env, owner.token);
  await page.goto(`${env.base}/team`);
  const section = page.locator("section", { has: page.getByRole("heading", { name: /^Labels/ }) });
  const form = section.getByRole("form", { name: "New label" });
  for (const name of ["VIP", "Refund", "Temporary"]) {
    await form.getByLabel("Label name").fill(name);
    await form.getByRole("button", { name: "Add label" }).click();
    await section.locator(`.row[data-label="${name}"]`).waitFor();
  }
  // Names are unique ignoring case.
  await form.getByLabel("Label name").fill("vip");
  await form.getByRole("button", { name: "Add label" }).click();
  await section.getByRole("alert").filter({ hasText: "already exists" }).waitFor();
  // Rename one, delete one.
  await section.getByRole("button", { name: "Edit label Refund" }).click();
  await section.getByLabel("Name", { exact: true }).fill("Refunds");
  await section.getByRole("button", { name: "Save" }).click();
  await section.locator('.row[data-label="Refunds"]').waitFor();
  await section.getByRole("button", { name: "Delete label Temporary" }).click();
  await page
    .getByRole("dialog", { name: "Delete the label Temporary?" })
    .getByRole("button", { name: "Delete" })
    .click();
  await section.locator('.row[data-label="Temporary"]').waitFor({ state: "detached" });
  await screenshot(page, "workflow-labels-desktop");

  // Apply them in the chat header's picker.
  await page.getByRole("link", { name: "Inbox" }).click();
  await row(page, "Fajar").locator(".conv").click();
  await page.locator(".chat-head").getByRole("button", { name: "Labels" }).click();
  const picker = page.getByRole("group", { name: "Labels menu" });
  await picker.getByRole("checkbox", { name: "Refunds" }).check();
  await picker.getByRole("checkbox", { name: "VIP" }).check();
  await page.locator('.chat-title .chip[data-label="Refunds"]').waitFor();
  await row(page, "Fajar").locator('.chip[data-label="VIP"]').waitFor();
  await page.keyboard.press("Escape");
  await row(page, "Gita").locator(".conv").click();
  await page.locator(".chat-head").getByRole("button", { name: "Labels" }).click();
  await picker.getByRole("checkbox", { name: "VIP" }).check();
  await row(page, "Gita").locator('.chip[data-label="VIP"]').waitFor();
  // Unchecking takes it off again.
  await picker.getByRole("checkbox", { name: "VIP" }).uncheck();
  await row(page, "Gita").locator(".chip").waitFor({ state: "detached" });
  await picker.getByRole("checkbox", { name: "VIP" }).check();
  await page.keyboard.press("Escape");

  // Filter by label.
  await page.getByLabel("Filter by label").selectOption({ label: "Refunds" });
  await waitFor(async () => (await rows(page).count()) === 1, "only Fajar under Refunds");
  await row(page, "Fajar").waitFor();
  await page.getByLabel("Filter by label").selectOption({ label: "VIP" });
  await waitFor(async () => (await rows(page).count()) === 2, "Fajar and Gita under VIP");
  await count(page, "#tab-open", 2);
  await page.getByLabel("Filter by label").selectOption({ label: "Any label" });
  await waitFor(async () => (await rows(page).count()) === 3, "everyone again");

  // The agent sees the labels on the rows and can apply them, but not manage them.
  const a = await pageWithToken(env, agent.token);
  await a.page.goto(`${env.base}/inbox`);
  await row(a.page, "Fajar").locator('.chip[data-label="Refunds"]').waitFor();
  await row(a.page, "Hadi").locator(".conv").click();
  await a.page.locator(".chat-head").getByRole("button", { name: "Labels" }).click();
  await a.page
    .getByRole("group", { name: "Labels menu" })
    .getByRole("checkbox", { name: "VIP" })
    .check();
  await row(page, "Hadi").locator('.chip[data-label="VIP"]').waitFor();
  await a.page.getByRole("link", { name: "Team" }).click();
  await a.page.locator('.row[data-label="VIP"]').waitFor();
  assert.equal(await a.page.getByRole("button", { name: "Add label" }).count(), 0);
  assert.equal(await a.page.getByRole("button", { name: /Delete label/ }).count(), 0);

  assert.deepEqual(page.errors, []);
  assert.deepEqual(a.page.errors, []);
  await context.close();
  await a.context.close();
});

test("the contact's name: number, shown name and push name; edited inline, cleared back", async () => {
  const owner = await signUpApi(env.server.url, "Name Studio");
  await incoming(env.server.url, owner.token, "+6281140000001", "Hi there", "Budi Santoso");
  const { context, page } = await pageWithToken(env, owner.token);
  await page.goto(`${env.base}/inbox`);
  await row(page, "Budi Santoso").locator(".conv").click();
  const head = page.locator(".chat-head");
  await head.getByRole("heading", { name: "Budi Santoso" }).waitFor();
  await head.getByText("+62 811 4000 0001").waitFor();
  await head.getByText("WhatsApp name: Budi Santoso").waitFor();

  await head.getByRole("button", { name: "Edit name" }).click();
  const input = head.getByRole("textbox", { name: "Contact name" });
  await input.fill("Budi (wholesale)");
  await input.press("Enter");
  await head.getByRole("heading", { name: "Budi (wholesale)" }).waitFor();
  await row(page, "Budi (wholesale)").waitFor();

  // WhatsApp's push name changes: the team's name stays, the header shows the new push name.
  await incoming(env.server.url, owner.token, "+6281140000001", "New phone", "Budi S.");
  await head.getByText("WhatsApp name: Budi S.").waitFor();
  assert.equal(await head.getByRole("heading", { level: 2 }).textContent(), "Budi (wholesale)");
  await screenshot(page, "workflow-contact-desktop");

  // Escape cancels; an empty name goes back to the push name.
  await head.getByRole("button", { name: "Edit name" }).click();
  await input.fill("Never saved");
  await input.press("Escape");
  await head.getByRole("heading", { name: "Budi (wholesale)" }).waitFor();
  await head.getByRole("button", { name: "Edit name" }).click();
  await input.fill("");
  await head.getByRole("button", { name: "Save" }).click();
  await head.getByRole("heading", { name: "Budi S." }).waitFor();
  await row(page, "Budi S.").waitFor();

  assert.deepEqual(page.errors, []);
  await context.close();
});
