/**
 * The provider of the procedure the deaf caller abuses, in its own process (its work is not the
 * well-behaved clients' process's): `bun bench/abuse/provider.ts <url> <creds-dir>` serves
 * `abuse.big` with 32 KiB replies and prints `{"ready":true,"port":1}` once it serves (the port field is required; it has none), and on
 * stderr how many calls it served when it stops (SIGTERM).
 */
import process from "node:process";
import { connect } from "../../lib/client/mod.ts";

const [url, creds] = process.argv.slice(2);
if (!url || !creds) {
  process.stderr.write("usage: provider.ts <url> <creds-dir>\n");
  process.exit(2);
}
const c = await connect({ url, creds, onError: () => {} });
const reply = new Uint8Array(32 * 1024);
let served = 0;
await c.serve("abuse.big", () => {
  served++;
  return reply;
}).ready;
process.stdout.write(`${JSON.stringify({ ready: true, port: 1 })}\n`);
process.on("SIGTERM", () => {
  process.stderr.write(`${JSON.stringify({ served })}\n`);
  void c.close().finally(() => process.exit(0));
});
