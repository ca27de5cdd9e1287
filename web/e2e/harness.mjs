// Test harness: starts the real aezen server (AEZEN_BIN) on a temp dir with the simulated
// WhatsApp backend, and drives headless Chromium through playwright-core.

import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
export const WEB_DIR = resolve(here, "..");
export const SCREENSHOTS = resolve(WEB_DIR, "../docs/screenshots");

export function requireBin() {
  const bin = process.env.AEZEN_BIN;
  if (!bin) {
    throw new Error(
      "AEZEN_BIN is not set: point it at the aezen server binary, e.g. " +
        "AEZEN_BIN=../target/release/aezen npm test",
    );
  }
  // A relative path is taken from where the command was typed (`npm test --prefix web`
  // runs the script in web/; npm keeps the original directory in INIT_CWD).
  const path = resolve(process.env.INIT_CWD ?? process.cwd(), bin);
  if (!existsSync(path)) throw new Error(`AEZEN_BIN=${bin}: no such file (${path})`);
  return path;
}

/** A port that was free a moment ago (so a restart can bind the same one again). */
export function freePort() {
  return new Promise((ok, fail) => {
    const s = net.createServer();
    s.unref();
    s.on("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

// Whatever happens to the test process, no server outlives it.
const children = new Set();
process.on("exit", () => {
  for (const c of children) c.kill("SIGKILL");
});
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.once(signal, () => {
    for (const c of children) c.kill("SIGKILL");
    process.exit(130);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * The aezen server as a child process; restartable on the same data dir and port. `args` and
 * `env` are added to the command line and the environment (a test's own flags).
 */
export class Server {
  constructor({ args = [], env = {} } = {}) {
    this.extraArgs = args;
    this.extraEnv = env;
    this.bin = requireBin();
    this.dir = mkdtempSync(join(tmpdir(), "aezen-e2e-"));
    this.port = 0;
    this.child = null;
    this.log = [];
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  async start() {
    if (!this.port) this.port = await freePort();
    const child = spawn(
      this.bin,
      [
        "--listen",
        `127.0.0.1:${this.port}`,
        "--data-dir",
        join(this.dir, "data"),
        "--sessions-dir",
        join(this.dir, "sessions"),
        "--whatsapp",
        "simulated",
        ...this.extraArgs,
      ],
      {
        env: {
          ...process.env,
          AEZEN_SIMULATED_QR_MS: "2000",
          NO_COLOR: "1",
          RUST_LOG: "info",
          ...this.extraEnv,
        },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    this.child = child;
    children.add(child);
    child.once("exit", () => children.delete(child));
    const keep = (chunk) => {
      this.log.push(chunk.toString());
      if (this.log.length > 400) this.log.splice(0, 100);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    const exited = new Promise((r) => child.once("exit", (code, sig) => r({ code, sig })));
    this.exited = exited;
    const deadline = Date.now() + 30_000;
    for (;;) {
      const early = await Promise.race([exited, sleep(100).then(() => null)]);
      if (early) {
        throw new Error(`aezen exited during start-up (${JSON.stringify(early)}):\n${this.logs()}`);
      }
      try {
        const res = await fetch(`${this.url}/api/healthz`);
        if (res.status === 200) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`aezen did not become healthy:\n${this.logs()}`);
    }
  }

  /** Kills the process (SIGKILL: no graceful goodbye to the sockets) and waits for it. */
  async kill(signal = "SIGKILL") {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    await this.exited;
    this.child = null;
  }

  async stop() {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const t = setTimeout(() => child.kill("SIGKILL"), 5000);
    await this.exited;
    clearTimeout(t);
    this.child = null;
  }

  cleanup() {
    rmSync(this.dir, { recursive: true, force: true });
  }

  logs() {
    return this.log.join("").split("\n").slice(-60).join("\n");
  }
}

/**
 * Development only (AEZEN_TEST_SERVE_DIST=1): a server binary that does not serve the SPA yet
 * is fronted by a tiny proxy serving web/dist with the production CSP. The real setup has
 * aezen serve web/dist itself, and that is what the tests use by default.
 */
function distProxy(target) {
  const dist = join(WEB_DIR, "dist");
  const types = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".html": "text/html",
  };
  // The server's policy (src/http/web.rs).
  const csp =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://x");
    if (url.pathname.startsWith("/api/") || url.pathname.startsWith("/socket.io")) {
      const up = http.request(
        {
          host: "127.0.0.1",
          port: target(),
          path: req.url,
          method: req.method,
          headers: req.headers,
        },
        (r) => {
          res.writeHead(r.statusCode, r.headers);
          r.pipe(res);
        },
      );
      up.on("error", () => {
        res.writeHead(502);
        res.end();
      });
      req.pipe(up);
      return;
    }
    let file = join(dist, url.pathname);
    if (!file.startsWith(dist) || !existsSync(file) || url.pathname === "/")
      file = join(dist, "index.html");
    const ext = file.slice(file.lastIndexOf("."));
    res.writeHead(200, {
      "Content-Type": types[ext] ?? "application/octet-stream",
      "Content-Security-Policy": csp,
      "X-Content-Type-Options": "nosniff",
    });
    res.end(readFileSync(file));
  });
  server.on("upgrade", (req, socket, head) => {
    const up = net.connect(target(), "127.0.0.1", () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2)
        lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      up.write(`${lines.join("\r\n")}\r\n\r\n`);
      up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    up.on("error", () => socket.destroy());
    socket.on("error", () => up.destroy());
  });
  return new Promise((ok) => server.listen(0, "127.0.0.1", () => ok(server)));
}

/**
 * Starts a server and a browser; `base` is where the web app is served. `server` options
 * ({args, env}) go to the Server.
 */
export async function setup({ server: serverOptions } = {}) {
  const server = new Server(serverOptions);
  await server.start();
  let base = process.env.AEZEN_WEB_URL ?? server.url;
  let proxy = null;
  if (process.env.AEZEN_TEST_SERVE_DIST === "1") {
    proxy = await distProxy(() => server.port);
    base = `http://127.0.0.1:${proxy.address().port}`;
  }
  const home = await fetch(`${base}/inbox`).catch((e) => ({
    status: 0,
    headers: new Headers(),
    e,
  }));
  if (!(home.headers.get("content-type") ?? "").includes("text/html")) {
    await server.stop();
    server.cleanup();
    throw new Error(
      `${base}/inbox does not serve the web app (status ${home.status}, ${home.headers.get("content-type")}): ` +
        "AEZEN_BIN must embed web/dist (or, for development, set AEZEN_TEST_SERVE_DIST=1)",
    );
  }
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox"],
  });
  const env = {
    server,
    browser,
    base,
    async close() {
      await browser.close().catch(() => {});
      proxy?.closeAllConnections?.();
      proxy?.close();
      await server.stop();
      server.cleanup();
    },
  };
  return env;
}

/** A JSON call to the API; throws with the server's error body on a non-2xx answer. */
export async function call(base, method, path, body, token) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(`${base}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (!res.ok) throw new Error(`${method} ${path} → ${res.status} ${text}`);
  return data;
}

let counter = 0;
export function uniqueEmail(prefix = "user") {
  counter += 1;
  return `${prefix}-${process.pid}-${Date.now()}-${counter}@example.test`;
}

/** Signs a tenant up over the API → {token, user, tenant, email, password}. */
export async function signUpApi(base, tenantName = "Acme Support", name = "Olivia Owner") {
  const email = uniqueEmail("owner");
  const password = "correct horse battery";
  const r = await call(base, "POST", "/api/auth/register", { tenantName, name, email, password });
  return { ...r, email, password };
}

/** Links the tenant's simulated WhatsApp: toggle, wait for the QR, scan, wait for connected. */
export async function connectWhatsapp(base, token) {
  await call(base, "POST", "/api/integrations/whatsapp/toggle", undefined, token);
  await waitFor(async () => {
    const s = await call(base, "GET", "/api/integrations/whatsapp/status", undefined, token);
    return s.state === "qr";
  }, "QR state");
  await call(base, "POST", "/api/integrations/whatsapp/simulate/scan", undefined, token);
  await waitFor(async () => {
    const s = await call(base, "GET", "/api/integrations/whatsapp/status", undefined, token);
    return s.state === "connected";
  }, "connected state");
}

export function incoming(base, token, from, content, pushName) {
  return call(
    base,
    "POST",
    "/api/integrations/whatsapp/simulate/incoming",
    { from, content, pushName },
    token,
  );
}

export async function waitFor(check, what, timeout = 15_000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** A new browser context and page whose tab already holds `token` (as after a sign-in). */
export async function pageWithToken(env, token, options = {}) {
  const context = await env.browser.newContext({
    viewport: { width: 1280, height: 800 },
    ...options,
  });
  await context.addInitScript((t) => {
    if (!sessionStorage.getItem("aezen.token")) sessionStorage.setItem("aezen.token", t);
  }, token);
  const page = await context.newPage();
  watchPage(page);
  return { context, page };
}

/** Fails the test on uncaught page errors and on CSP violations reported to the console. */
export function watchPage(page) {
  page.setDefaultTimeout(15_000);
  page.errors = [];
  page.on("pageerror", (e) => page.errors.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy|Refused to/i.test(m.text())) {
      page.errors.push(`csp: ${m.text()}`);
    }
  });
  return page;
}

export async function signInUi(page, base, email, password) {
  await page.goto(`${base}/signin`);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Inbox", level: 1 }).waitFor();
}

export async function screenshot(page, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`) });
}

/** The gzip size of the JavaScript index.html loads (the first screen's JS). */
export function firstScreenJsGzip() {
  const dist = join(WEB_DIR, "dist");
  const html = readFileSync(join(dist, "index.html"), "utf8");
  let raw = 0;
  let gz = 0;
  for (const [, src] of html.matchAll(/<script[^>]+src="\/([^"]+)"/g)) {
    const body = readFileSync(join(dist, src));
    raw += body.length;
    gz += gzipSync(body, { level: 9 }).length;
  }
  return { raw, gz };
}

/** Adds a member to the owner's team over the API and signs them in → {token, user, email, password}. */
export async function addMemberApi(base, ownerToken, name, role = "agent") {
  const email = uniqueEmail(role);
  const password = "member password 1";
  await call(base, "POST", "/api/team", { name, email, password, role }, ownerToken);
  const r = await call(base, "POST", "/api/auth/login", { email, password });
  return { ...r, email, password };
}

/** The id of the conversation with `number` (E.164), from the API. */
export async function conversationId(base, token, number) {
  const page = await call(base, "GET", "/api/conversations?status=all&limit=200", undefined, token);
  const c = page.items.find((x) => x.contactNumber === number);
  if (!c) throw new Error(`no conversation with ${number}`);
  return c.id;
}
