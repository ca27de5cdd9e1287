// Drives the AEZEN Socket.IO gateway with the official socket.io-client v4.
//
// Usage: node socketio_client.mjs <baseUrl> <token> <conversationId>
//
// Run by tests/api/socketio_js.rs, which reads stdout line by line:
//   READY                 connected with the token; the test now simulates an incoming message
//   INCOMING <json>       the `incoming_message` event's payload
//   ACK <json>            the acknowledgement of a valid `send_message`
//   ACK_ERROR <json>      the acknowledgement of an invalid (empty) `send_message`
//   OK                    every step passed
// Any failure prints its reason on stderr and exits with status 1.

import { io } from "socket.io-client";

const STEP_TIMEOUT_MS = 10_000;

const [baseUrl, token, conversationId] = process.argv.slice(2);
if (!baseUrl || !token || !conversationId) {
  console.error("usage: node socketio_client.mjs <baseUrl> <token> <conversationId>");
  process.exit(2);
}

const sockets = [];

function fail(reason) {
  console.error(`socketio_client.mjs: FAILED: ${reason}`);
  for (const socket of sockets) socket.close();
  process.exit(1);
}

function check(condition, reason) {
  if (!condition) fail(reason);
}

// Resolves with the promise's value, or fails the run after STEP_TIMEOUT_MS.
async function step(name, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out after ${STEP_TIMEOUT_MS} ms`)),
      STEP_TIMEOUT_MS,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } catch (err) {
    fail(`${name}: ${err?.message ?? err}`);
  } finally {
    clearTimeout(timer);
  }
}

function connect(options) {
  const socket = io(baseUrl, { reconnection: false, ...options });
  sockets.push(socket);
  return socket;
}

// Connects with `auth` and expects the server to refuse with `unauthorized`.
async function expectRefused(name, auth) {
  const socket = connect({ auth, transports: ["websocket"] });
  const message = await step(
    name,
    new Promise((resolve, reject) => {
      socket.once("connect", () => reject(new Error("connected, but should have been refused")));
      socket.once("connect_error", (err) => resolve(err?.message));
    }),
  );
  socket.close();
  check(
    message === "unauthorized",
    `${name}: connect_error message is ${JSON.stringify(message)}, expected "unauthorized"`,
  );
}

// a. No token.
await expectRefused("refusal without a token", {});
// b. A token that is not one.
await expectRefused("refusal with a bad token", { token: "not-a-token" });

// c. A valid token, default transports (HTTP long-polling, then upgrade to WebSocket).
const socket = connect({ auth: { token } });
// Listen before the test can trigger the event, so that it cannot be missed.
const incoming = new Promise((resolve) => socket.once("incoming_message", resolve));
await step(
  "connect with a valid token",
  new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", (err) =>
      reject(new Error(`connect_error: ${err?.message ?? err}`)),
    );
  }),
);
console.log("READY");

// d. One incoming message, pushed by the server.
const payload = await step("wait for incoming_message", incoming);
check(
  payload && typeof payload === "object",
  `incoming_message payload is not an object: ${JSON.stringify(payload)}`,
);
check(
  payload.type === "incoming_message",
  `incoming_message payload.type is ${JSON.stringify(payload.type)}`,
);
check(
  typeof payload.seq === "number",
  `incoming_message payload.seq is not a number: ${JSON.stringify(payload.seq)}`,
);
check(
  typeof payload.message?.content === "string",
  `incoming_message payload.message.content is not a string: ${JSON.stringify(payload.message)}`,
);
check(
  typeof payload.conversation?.id === "string",
  `incoming_message payload.conversation.id is not a string: ${JSON.stringify(payload.conversation)}`,
);
console.log(`INCOMING ${JSON.stringify(payload)}`);

// e. send_message with an acknowledgement carrying the stored message.
const content = "sent from socket.io-client";
const ack = await step(
  "send_message ack",
  socket.timeout(STEP_TIMEOUT_MS).emitWithAck("send_message", { conversationId, content }),
);
check(ack && typeof ack === "object", `send_message ack is not an object: ${JSON.stringify(ack)}`);
check(typeof ack.id === "string", `send_message ack has no string id: ${JSON.stringify(ack)}`);
check(ack.content === content, `send_message ack content differs: ${JSON.stringify(ack)}`);
check(ack.sender === "agent", `send_message ack sender is not "agent": ${JSON.stringify(ack)}`);
check(
  ack.conversationId === conversationId,
  `send_message ack conversationId differs: ${JSON.stringify(ack)}`,
);
console.log(`ACK ${JSON.stringify(ack)}`);

// f. An invalid send_message is acknowledged with an error.
const ackError = await step(
  "send_message error ack",
  socket.timeout(STEP_TIMEOUT_MS).emitWithAck("send_message", { conversationId, content: "" }),
);
check(
  ackError?.error?.code === "validation_failed",
  `empty send_message ack is not a validation_failed error: ${JSON.stringify(ackError)}`,
);
check(
  typeof ackError.error.message === "string" && ackError.error.message.length > 0,
  `empty send_message error ack has no message: ${JSON.stringify(ackError)}`,
);
check(
  Object.keys(ackError).length === 1,
  `empty send_message error ack has more than {error}: ${JSON.stringify(ackError)}`,
);
console.log(`ACK_ERROR ${JSON.stringify(ackError)}`);

// g. Done.
console.log("OK");
socket.close();
process.exit(0);
