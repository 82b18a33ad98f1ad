/**
 * The caller (docs/tutorial.md): calls `hello.greet` once for each name on the command line and
 * prints the greetings. Exits 3 when nobody serves `hello.greet`.
 *
 *   MACULA_URL=quic://127.0.0.1:4433 MACULA_CREDS=/tmp/hello/n1/client bun examples/hello/call.ts Ada
 */
import process from "node:process";
import { connect, RpcError } from "../../mod.ts"; // in an app of your own: from "macula"

const url = process.env.MACULA_URL || "quic://127.0.0.1:4433";
const creds = process.env.MACULA_CREDS || "macula-data/client";

const client = await connect({ url, creds });
try {
  for (const name of process.argv.slice(2)) {
    const reply = await client.callJson<{ greeting: string }>("hello.greet", { name });
    console.log(reply.greeting);
  }
} catch (e) {
  if (!(e instanceof RpcError)) throw e;
  console.error(`call: ${e.message}`); // e.code: "no_provider", "timeout", "handler_error", …
  process.exitCode = e.code === "no_provider" ? 3 : 1;
} finally {
  await client.close();
}
