// A webhook receiver for tests/api/webhooks.rs: verifies every delivery's signature with the
// `standardwebhooks` package (an implementation independent of the server's) and records it.
//
// Prints `listening <port>` once bound on 127.0.0.1, then serves:
// - POST /hook         a delivery: verified against each secret set, answered as the mode says
// - POST /_secrets     {"secrets": ["whsec_…", …]}: the secrets to verify with, by index
// - POST /_mode        {"fail": n}: answer 500 to the next n deliveries (then 200);
//                      {"failUntil": <unix ms>}: answer 500 until then
// - GET  /_received    every delivery so far: {webhookId, timestamp, answered, verified: [bool
//                      per secret], body (parsed)}
// Exits when its stdin closes (the test process is gone).

import http from "node:http";
import { Webhook } from "standardwebhooks";

let secrets = [];
let failNext = 0;
let failUntil = 0;
const received = [];

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function verified(body, headers) {
  return secrets.map((secret) => {
    try {
      new Webhook(secret).verify(body, {
        "webhook-id": headers["webhook-id"] ?? "",
        "webhook-timestamp": headers["webhook-timestamp"] ?? "",
        "webhook-signature": headers["webhook-signature"] ?? "",
      });
      return true;
    } catch {
      return false;
    }
  });
}

const server = http.createServer(async (req, res) => {
  const body = await readBody(req);
  const answer = (status, value) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(value));
  };
  if (req.method === "POST" && req.url === "/_secrets") {
    secrets = JSON.parse(body).secrets;
    return answer(200, { ok: true });
  }
  if (req.method === "POST" && req.url === "/_mode") {
    const mode = JSON.parse(body);
    failNext = mode.fail ?? 0;
    failUntil = mode.failUntil ?? 0;
    return answer(200, { ok: true });
  }
  if (req.method === "GET" && req.url === "/_received") {
    return answer(200, received);
  }
  if (req.method === "POST" && req.url === "/hook") {
    let status = 200;
    if (failNext > 0) {
      failNext -= 1;
      status = 500;
    } else if (Date.now() < failUntil) {
      status = 500;
    }
    let parsed = null;
    try {
      parsed = JSON.parse(body);
    } catch {
      parsed = null;
    }
    received.push({
      webhookId: req.headers["webhook-id"] ?? null,
      timestamp: req.headers["webhook-timestamp"] ?? null,
      signature: req.headers["webhook-signature"] ?? null,
      answered: status,
      verified: verified(body, req.headers),
      body: parsed,
    });
    return answer(status, status === 200 ? { ok: true } : { error: "refusing for the test" });
  }
  answer(404, { error: "not found" });
});

server.listen(0, "127.0.0.1", () => {
  console.log(`listening ${server.address().port}`);
});
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
