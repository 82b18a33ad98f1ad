/**
 * Deno smoke test (run by `npm test` through scripts/check.ts, with the permissions docs/client.md
 * documents for a node in-process: --allow-net --allow-read --allow-write --allow-ffi, not -A):
 * the library loads under Deno from the sources; two endpoints exchange data over QUIC on
 * 127.0.0.1 through the node:dgram socket adapter; and a node started in-process routes a publish
 * and a call between two `connect()` clients.
 */
import { connect, Node, QuicEndpoint, Verifier, VERSION } from "../../mod.ts";
import { makeCa, tlsFor } from "../../lib/identity/devca.ts";

const Deno = (globalThis as unknown as {
  Deno: { exit(code: number): never; version: { deno: string } };
}).Deno;

const ca = await makeCa("ed25519", "smoke-ca", "smoke");
const verifier = await Verifier.create({ ca: ca.pem });
const server = await QuicEndpoint.bind({
  host: "127.0.0.1",
  tls: await tlsFor(ca, { name: "server-node" }),
  checkPeer: verifier.checkPeer(),
});
const client = await QuicEndpoint.bind({
  host: "127.0.0.1",
  tls: await tlsFor(ca),
  acceptIncoming: false,
});
let peerName = "";
void (async () => {
  for await (const conn of server) {
    peerName = (conn.context as { name: string }).name;
    for await (const s of conn.streams()) {
      const body = await s.readAll();
      await s.end(body.reverse());
    }
  }
})();
const conn = await client.connect(server.address);
const s = await conn.openStream();
const reply = s.readAll();
await s.end(new TextEncoder().encode("olleh"));
const text = new TextDecoder().decode(await reply);
await client.close();
await server.close();
if (text !== "hello" || peerName !== "node") {
  console.error(
    `deno smoke: expected "hello" from "node", got ${JSON.stringify(text)} from ${peerName}`,
  );
  Deno.exit(1);
}

// A node and two clients: pub/sub and RPC through the node.
const dataDir = await (globalThis as unknown as {
  Deno: { makeTempDir(): Promise<string> };
}).Deno.makeTempDir();
const node = await Node.start({ dataDir, listen: { host: "127.0.0.1", port: 0 } });
const a = await connect({ url: node.url, creds: node.credsDir! });
const b = await connect({ url: node.url, creds: node.credsDir! });
const sub = b.subscribe("smoke.*");
b.serve("smoke.upper", (p) => new TextEncoder().encode(new TextDecoder().decode(p).toUpperCase()));
await b.flush();
a.publish("smoke.hello", "from deno");
const got = await sub[Symbol.asyncIterator]().next();
const upper = new TextDecoder().decode(await a.call("smoke.upper", "shout"));
await a.close();
await b.close();
await node.stop();
if (got.done || got.value.text() !== "from deno" || upper !== "SHOUT") {
  console.error(`deno smoke: pub/sub or RPC through a node failed: ${got.value?.text()} ${upper}`);
  Deno.exit(1);
}
console.log(
  `deno smoke: macula ${VERSION} on Deno ${Deno.version.deno}: QUIC round trip, peer identity, ` +
    "pub/sub and RPC through a node ok",
);
