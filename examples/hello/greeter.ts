/**
 * The greeter (docs/tutorial.md): serves the procedure `hello.greet` and announces every
 * greeting on the topic `hello.feed`. Runs until Ctrl-C.
 *
 *   MACULA_URL=quic://127.0.0.1:4434 MACULA_CREDS=/tmp/hello/n2/client bun examples/hello/greeter.ts
 */
import process from "node:process";
import { connect } from "../../mod.ts"; // in an app of your own: from "macula"

const url = process.env.MACULA_URL || "quic://127.0.0.1:4433";
const creds = process.env.MACULA_CREDS || "macula-data/client";

const client = await connect({ url, creds });
let greeted = 0;

// A handler gets the request's bytes and returns the reply's. What it throws reaches the
// caller as an RpcError with code "handler_error" and the message.
const registration = client.serve("hello.greet", (payload) => {
  const { name } = JSON.parse(new TextDecoder().decode(payload)) as { name?: unknown };
  if (typeof name !== "string" || name === "") throw new Error('want {"name": "<someone>"}');
  const greeting = `Hello, ${name}!`;
  client.publish("hello.feed", greeting); // to every subscriber of hello.feed, on any node
  greeted++;
  console.log(`greeter: greeted ${name}`);
  return new TextEncoder().encode(JSON.stringify({ greeting }));
});
await registration.ready; // the node accepted the registration
await client.flush(); // and the nodes next to it know about it
console.log(`greeter: serving hello.greet on ${url}`);

process.once("SIGINT", async () => {
  registration.stop();
  await client.close();
  console.log(`greeter: stopped after ${greeted} greetings`);
});
