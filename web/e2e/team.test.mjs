// The owner invites an agent through the UI; the agent signs in in a fresh context and sees
// the inbox but no team management.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { screenshot, setup, signInUi, signUpApi, uniqueEmail, watchPage } from "./harness.mjs";

let env;
before(async () => {
  env = await setup();
});
after(async () => {
  await env?.close();
});

test("owner adds an agent; the agent cannot manage the team", async () => {
  const owner = await signUpApi(env.server.url, "Litware Agency", "Omar Owner");
  const ctx = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = watchPage(await ctx.newPage());
  await signInUi(page, env.base, owner.email, owner.password);

  await page.getByRole("link", { name: "Team" }).click();
  await page.getByRole("heading", { name: "Team", level: 1 }).waitFor();
  const form = page.locator("form", { has: page.getByRole("button", { name: "Add member" }) });
  const agentEmail = uniqueEmail("agent");
  await form.getByLabel("Name").fill("Ayu Agent");
  await form.getByLabel("Email").fill(agentEmail);
  await form.getByLabel("Temporary password").fill("agent password 1");
  await form.getByLabel("Role").selectOption("agent");
  await form.getByRole("button", { name: "Add member" }).click();
  await page.getByText("Ayu Agent was added").waitFor();
  await page.locator(".member", { hasText: agentEmail }).waitFor();

  // The server's rules, shown as it answers them: an email is taken once...
  await form.getByLabel("Name").fill("Ayu Again");
  await form.getByLabel("Email").fill(agentEmail);
  await form.getByLabel("Temporary password").fill("agent password 1");
  await form.getByRole("button", { name: "Add member" }).click();
  await form
    .getByRole("alert")
    .filter({ hasText: /already exists/ })
    .waitFor();
  // ...and the last owner cannot step down.
  await page.getByLabel("Role of Omar Owner").selectOption("admin");
  await page
    .locator(".member", { hasText: owner.email })
    .getByRole("alert")
    .filter({ hasText: "at least one owner" })
    .waitFor();
  assert.equal(await page.getByLabel("Role of Omar Owner").inputValue(), "owner");
  await screenshot(page, "team-desktop");

  // A fresh context: the agent signs in.
  const ctx2 = await env.browser.newContext({ viewport: { width: 1280, height: 800 } });
  const agent = watchPage(await ctx2.newPage());
  await signInUi(agent, env.base, agentEmail, "agent password 1");
  assert.ok(await agent.getByRole("heading", { name: "Inbox", level: 1 }).isVisible());
  await agent.getByRole("link", { name: "Team" }).click();
  await agent.getByRole("heading", { name: "Team", level: 1 }).waitFor();
  await agent.locator(".member", { hasText: owner.email }).waitFor();
  await agent.getByText("Only owners and admins can manage the team.").waitFor();
  assert.equal(await agent.getByRole("button", { name: "Add member" }).count(), 0);
  assert.equal(await agent.getByRole("button", { name: /Remove/ }).count(), 0);
  assert.equal(await agent.locator("select").count(), 0);
  await agent.getByRole("link", { name: "Integrations" }).click();
  await agent.getByText("Only owners and admins can connect or disconnect WhatsApp.").waitFor();
  assert.equal(await agent.getByRole("button", { name: "Connect" }).count(), 0);

  // The owner removes the agent: the agent's open inbox is sent to sign-in, with a message.
  await agent.getByRole("link", { name: "Inbox" }).click();
  await page.getByRole("button", { name: "Remove Ayu Agent" }).click();
  const confirm = page.getByRole("dialog", { name: "Remove Ayu Agent?" });
  await confirm.getByText("loses access at once").waitFor();
  await confirm.getByRole("button", { name: "Remove" }).click();
  await page.locator(".member", { hasText: agentEmail }).waitFor({ state: "detached" });
  await agent.getByRole("heading", { name: "Sign in to your inbox" }).waitFor();
  await agent.getByText("Your session has ended").waitFor();
  assert.equal(await agent.evaluate(() => sessionStorage.getItem("aezen.token")), null);

  assert.deepEqual(page.errors, []);
  assert.deepEqual(agent.errors, []);
  await ctx.close();
  await ctx2.close();
});
