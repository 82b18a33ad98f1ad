/**
 * Deno smoke test (run by `npm test` through scripts/check.ts): the library loads under Deno, and
 * two endpoints exchange data over QUIC on 127.0.0.1 through the node:dgram socket adapter.
 */
import { QuicEndpoint, Verifier, VERSION } from "../../mod.ts";
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
console.log(
  `deno smoke: macula ${VERSION} on Deno ${Deno.version.deno}: QUIC round trip and peer identity ok`,
);
