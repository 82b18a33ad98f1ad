/**
 * UDP GSO (lib/quic/gso.ts, the sender's runs in lib/quic/sender.ts): on Bun on Linux the
 * endpoint's socket segments runs of full packets to one peer; the peer still receives packets
 * of at most the payload limit, and every byte arrives. Without GSO (the node:dgram adapter,
 * Deno, Node) a datagram is one packet. A send of a run that fails turns GSO off.
 */
import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import {
  openNodeUdpSocket,
  openUdpSocket,
  type UdpSocket,
  type UdpSocketFactory,
} from "../../lib/quic/mod.ts";
import { closingEndpoints, pattern, serveEcho, wrapSocket } from "../helpers/quic.ts";

const { ep } = closingEndpoints();
const LIMIT = 1350; // the default maxUdpPayload

/** The real adapter, with what it was asked to send and what it received, by length. */
function recording(open: UdpSocketFactory) {
  const sent: number[] = [];
  const received: number[] = [];
  const factory: UdpSocketFactory = async (opts) => {
    const inner: UdpSocket = await open({
      ...opts,
      onPacket: (d, h, p) => {
        received.push(d.length);
        opts.onPacket(d, h, p);
      },
    });
    return wrapSocket(inner, (d, _port, _host, pass) => {
      sent.push(d.length);
      pass(d);
    }, true);
  };
  return { sent, received, factory };
}

/** A receiver that notes the length of each datagram, and a sender offered GSO at LIMIT. */
async function socketPair() {
  const got: number[] = [];
  const rx = await openUdpSocket({
    host: "127.0.0.1",
    port: 0,
    onPacket: (d) => got.push(d.length),
  });
  const tx = await openUdpSocket({
    host: "127.0.0.1",
    port: 0,
    onPacket: () => {},
    segment: LIMIT,
  });
  return { got, rx, tx };
}

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

async function echo8MiB(clientFactory: UdpSocketFactory, serverFactory: UdpSocketFactory) {
  const server = await ep({ socketFactory: serverFactory });
  const client = await ep({ acceptIncoming: false, socketFactory: clientFactory });
  serveEcho(server);
  const conn = await client.connect(server.address);
  const s = await conn.openStream();
  const msg = pattern(8 * 1024 * 1024, 7);
  const back = s.readAll();
  await s.end(msg);
  expect(sha(await back)).toBe(sha(msg));
  return { client, server };
}

describe("UDP GSO", () => {
  test("on Bun on Linux, runs of full packets go as one datagram each; the peer gets packets", async () => {
    const c = recording(openUdpSocket);
    const s = recording(openUdpSocket);
    const { client } = await echo8MiB(c.factory, s.factory);
    if (process.platform !== "linux") {
      // Elsewhere there is no GSO: the sender sends packet by packet (checked below too).
      expect(Math.max(...c.sent)).toBeLessThanOrEqual(LIMIT);
      return;
    }
    // GSO is on, and most of the 8 MiB left in runs: far fewer sends than packets.
    expect(client.stats.socketSendDropped).toBe(0);
    const runs = c.sent.filter((n) => n > LIMIT);
    expect(runs.length).toBeGreaterThan(0);
    for (const n of runs) expect(n).toBeLessThanOrEqual(Math.floor(65_000 / LIMIT) * LIMIT);
    expect(c.sent.length * 4).toBeLessThan((8 * 1024 * 1024) / LIMIT);
    // What the server received was segmented by the kernel: packets, each within the limit.
    expect(Math.max(...s.received)).toBeLessThanOrEqual(LIMIT);
    expect(s.received.length).toBeGreaterThan((8 * 1024 * 1024) / LIMIT);
  });

  test("without GSO (the node:dgram adapter) every send is one packet", async () => {
    const c = recording(openNodeUdpSocket);
    await echo8MiB(c.factory, openUdpSocket);
    expect(c.sent.length).toBeGreaterThan((8 * 1024 * 1024) / LIMIT);
    expect(Math.max(...c.sent)).toBeLessThanOrEqual(LIMIT);
  });

  test("a datagram longer than a segment that is not a run (a relayed packet) arrives whole", async () => {
    const { got, rx, tx } = await socketPair();
    try {
      tx.send(new Uint8Array(LIMIT + 40), rx.port, "127.0.0.1"); // a relay header on a full packet
      tx.send(new Uint8Array(100), rx.port, "127.0.0.1");
      tx.sendRun?.(new Uint8Array(LIMIT * 2 + 7), rx.port, "127.0.0.1");
      tx.flush();
      for (let i = 0; i < 200 && got.length < 5; i++) await new Promise((r) => setTimeout(r, 5));
      const want = process.platform === "linux" ? [100, LIMIT, LIMIT, 7, LIMIT + 40] : [];
      if (process.platform === "linux") expect(tx.gso).toBe(LIMIT);
      if (process.platform === "linux") {
        expect([...got].sort((x, y) => x - y)).toEqual([...want].sort((x, y) => x - y));
      }
      expect(tx.stats.sent).toBe(got.length);
    } finally {
      tx.close();
      rx.close();
    }
  });

  test("a run whose send fails turns GSO off; what failed goes again packet by packet", async () => {
    const { got, rx, tx } = await socketPair();
    try {
      if (process.platform !== "linux") {
        expect(tx.gso ?? 0).toBe(0);
        return;
      }
      expect(tx.gso).toBe(LIMIT);
      // 70 segments: more than the kernel segments in one datagram, so the send fails.
      tx.sendRun!(new Uint8Array(LIMIT * 70), rx.port, "127.0.0.1");
      tx.flush();
      expect(tx.gso).toBe(0);
      for (let i = 0; i < 400 && got.length < 70; i++) await new Promise((r) => setTimeout(r, 5));
      expect(got.length).toBe(70);
      expect(new Set(got)).toEqual(new Set([LIMIT]));
      expect(tx.stats.sendErrors).toBe(0);
      // A run queued after GSO went off is cut into packets here.
      tx.sendRun!(new Uint8Array(LIMIT + 5), rx.port, "127.0.0.1");
      tx.flush();
      for (let i = 0; i < 200 && got.length < 72; i++) await new Promise((r) => setTimeout(r, 5));
      expect(got.slice(70)).toEqual([LIMIT, 5]);
    } finally {
      tx.close();
      rx.close();
    }
  });
});
