/**
 * Tunnels: a connection whose packets go through the application (a relay) instead of the
 * socket, with TLS end to end. Here the "relay" is a function that copies packets between two
 * endpoints' tunnels, counting them.
 */
import { expect, test } from "bun:test";
import { closingEndpoints, echoStreams } from "../helpers/quic.ts";
import { type QuicEndpoint, TUNNEL_HOST } from "../../lib/quic/mod.ts";

const { ep } = closingEndpoints();

/** Tunnels on `a` and `b` handing packets to each other (copied, as a relay would), counted. */
function linked(a: QuicEndpoint, b: QuicEndpoint) {
  const n = { forwarded: 0 };
  const toB = a.openTunnel((p) => {
    n.forwarded++;
    b.tunnelReceive(fromA, p.slice());
  });
  const fromA = b.openTunnel((p) => {
    n.forwarded++;
    a.tunnelReceive(toB, p.slice());
  });
  return { toB, fromA, n };
}

test("a connection through a tunnel: handshake (with retry) and a 200 kB stream both ways, nothing on the socket", async () => {
  const a = await ep();
  const b = await ep();
  const { toB, fromA, n } = linked(a, b);
  expect(toB.host).toBe(TUNNEL_HOST);
  const accepted = b.accept();
  const conn = await a.connect(toB);
  const server = (await accepted)!;
  expect(server.remote).toEqual(fromA);
  echoStreams(server);
  const s = await conn.openStream();
  const payload = new Uint8Array(200_000).map((_, i) => i & 0xff);
  await s.end(payload);
  const chunks: Uint8Array[] = [];
  for await (const c of s) chunks.push(c.slice());
  expect(Buffer.concat(chunks)).toEqual(Buffer.from(payload));
  expect(b.stats.retriesSent).toBe(1);
  expect(n.forwarded).toBeGreaterThan(100);
  // Only the tunnel carried the connection: neither socket sent a packet.
  expect(a.stats.packetsSent).toBe(0);
  expect(b.stats.packetsSent).toBe(0);
});

test("a closed tunnel drops its packets: the connection inside times out, the endpoint is fine", async () => {
  const a = await ep({ idleTimeoutMs: 600 });
  const b = await ep({ idleTimeoutMs: 600 });
  const { toB } = linked(a, b);
  const accepted = b.accept();
  const conn = await a.connect(toB);
  await accepted;
  a.closeTunnel(toB);
  const why = await conn.closed;
  expect(why.initiator).toBe("idle");
  // The next tunnel gets another address.
  expect(a.openTunnel(() => {}).port).not.toBe(toB.port);
});

test("a tunnelled connection moves to the peer's real address (moveTo): same connection, the stream goes on", async () => {
  const a = await ep();
  const b = await ep();
  const { toB, n } = linked(a, b);
  const accepted = b.accept();
  const conn = await a.connect(toB);
  const server = (await accepted)!;
  echoStreams(server);
  const s = await conn.openStream();
  await s.write(new Uint8Array(50_000).fill(1));
  await conn.moveTo(b.address);
  expect(conn.remote).toEqual(b.address);
  const before = n.forwarded;
  await s.end(new Uint8Array(50_000).fill(2));
  const chunks: Uint8Array[] = [];
  for await (const c of s) chunks.push(c.slice());
  const got = Buffer.concat(chunks);
  expect(got.length).toBe(100_000);
  expect(got[0]).toBe(1);
  expect(got[99_999]).toBe(2);
  // The server followed (RFC 9000 §9.3): it now sends to A's socket address, not the tunnel.
  expect(server.remote.port).toBe(a.address.port);
  expect(a.stats.packetsSent).toBeGreaterThan(0);
  expect(n.forwarded - before).toBeLessThan(10); // only stragglers of the old path
});
