/**
 * The feed watcher (docs/tutorial.md): prints every message on `hello.feed`. With a number,
 * exits after that many; without, runs until Ctrl-C.
 *
 *   MACULA_URL=quic://127.0.0.1:4435 MACULA_CREDS=/tmp/hello/n3/client bun examples/hello/watch.ts 2
 */
import process from "node:process";
import { connect } from "../../mod.ts"; // in an app of your own: from "macula"

const url = process.env.MACULA_URL || "quic://127.0.0.1:4433";
const creds = process.env.MACULA_CREDS || "macula-data/client";
const count = process.argv[2] === undefined ? Infinity : Number(process.argv[2]);

const client = await connect({ url, creds });
const feed = client.subscribe("hello.feed"); // a pattern: "hello.*" or "hello.>" work too
await client.flush(); // from here on the mesh routes hello.feed to this client
console.log(`watch: watching hello.feed on ${url}`);
process.once("SIGINT", () => feed.unsubscribe());

let seen = 0;
for await (const message of feed) {
  console.log(`[${message.topic}] ${message.text()}`);
  if (++seen >= count) break; // leaving the loop unsubscribes
}
await client.close();
