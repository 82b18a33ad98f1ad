/**
 * The relay (lib/nat/relay.ts): allocations, token rewriting, source checks, quotas and rate
 * limits on a virtual clock; then QUIC end to end through a relay endpoint on 127.0.0.1.
 */
import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import {
  isRelayPacket,
  RELAY_BYTE,
  RelayRefused,
  RelayServer,
  wrapRelayPacket,
} from "../../lib/nat/relay.ts";
import type { HostPort } from "../../lib/quic/mod.ts";
import { seededRng } from "../../lib/mesh/types.ts";
import { closingEndpoints, echoStreams } from "../helpers/quic.ts";
import { relayBetween } from "../helpers/relay.ts";

const { ep } = closingEndpoints();

function harness(limits: Partial<ConstructorParameters<typeof RelayServer>[0]["limits"]> = {}) {
  let now = 0;
  const sent: { data: Uint8Array; host: string; port: number }[] = [];
  const relay = new RelayServer({
    limits: {
      maxSessions: 4,
      sessionsPerPeer: 2,
      bytesPerSecond: 10_000,
      burstBytes: 2_000,
      idleMs: 60_000,
      unusedMs: 10_000,
      ...limits,
    },
    now: () => now,
    randomBytes: (n) => new Uint8Array(randomBytes(n)),
    send: (data, host, port) => sent.push({ data, host, port }),
  });
  const addrs = new Map<string, HostPort | null>();
  const end = (nodeId: string, port: number) => {
    addrs.set(nodeId, { host: "127.0.0.1", port });
    return { nodeId, remote: () => addrs.get(nodeId) ?? null };
  };
  return { relay, sent, end, addrs, tick: (ms: number) => (now += ms) };
}

describe("RelayServer", () => {
  test("forwards both ways under the other end's token, only from the end's own address", () => {
    const { relay, sent, end } = harness();
    const a = end("aaaa", 1001);
    const b = end("bbbb", 1002);
    const { tokenA, tokenB } = relay.allocate(a, b);
    const packet = new Uint8Array([0x40, 1, 2, 3]);
    expect(relay.onPacket(wrapRelayPacket(tokenA, packet), "127.0.0.1", 1001)).toBe(true);
    expect(sent.length).toBe(1);
    expect(sent[0]!.port).toBe(1002);
    expect(sent[0]!.data).toEqual(wrapRelayPacket(tokenB, packet));
    expect(relay.onPacket(wrapRelayPacket(tokenB, packet), "127.0.0.1", 1002)).toBe(true);
    expect(sent[1]!.port).toBe(1001);
    expect(sent[1]!.data).toEqual(wrapRelayPacket(tokenA, packet));
    // The right token from the wrong address is dropped and counted, not forwarded.
    expect(relay.onPacket(wrapRelayPacket(tokenA, packet), "127.0.0.1", 9999)).toBe(true);
    expect(relay.stats.droppedWrongSource).toBe(1);
    // A token the relay never issued is not its packet.
    expect(relay.onPacket(wrapRelayPacket(new Uint8Array(16), packet), "127.0.0.1", 1001)).toBe(
      false,
    );
    expect(sent.length).toBe(2);
    expect(relay.stats).toMatchObject({ packets: 2, allocations: 1 });
    expect(relay.allocations()).toEqual([
      { a: "aaaa", b: "bbbb", packets: 2, bytes: 42, ageMs: 0, idleMs: 0 },
    ]);
  });

  test("quotas: sessions per peer, sessions in all, no relaying to oneself; a release frees a slot", () => {
    const { relay, end } = harness();
    const a = end("aaaa", 1);
    const ids = [relay.allocate(a, end("b1", 2)).id, relay.allocate(a, end("b2", 3)).id];
    expect(() => relay.allocate(a, end("b3", 4))).toThrow(
      /node aaaa… already has 2 relayed sessions here \(relay.sessions_per_peer\)/,
    );
    relay.allocate(end("c1", 5), end("c2", 6));
    relay.allocate(end("d1", 7), end("d2", 8));
    expect(() => relay.allocate(end("e1", 9), end("e2", 10))).toThrow(
      /relay full: 4 relayed sessions \(relay.max_sessions\)/,
    );
    expect(() => relay.allocate(a, a)).toThrow(RelayRefused);
    expect(relay.stats.refused).toBe(3);
    relay.release(ids[0]!);
    relay.release(ids[1]!);
    expect(relay.allocate(a, end("b3", 4)).id).toBeGreaterThan(0);
  });

  test("sessions count against the peer that asks: nobody uses up another's quota", () => {
    const { relay, end } = harness({ maxSessions: 10 });
    const victim = end("vvvv", 1);
    relay.allocate(end("x1", 2), victim);
    relay.allocate(end("x2", 3), victim);
    relay.allocate(end("x3", 4), victim);
    // The victim was asked for three times (its quota is 2) and can still ask for its own.
    expect(relay.allocate(victim, end("y1", 5)).id).toBeGreaterThan(0);
    expect(relay.allocate(victim, end("y2", 6)).id).toBeGreaterThan(0);
    expect(() => relay.allocate(victim, end("y3", 7))).toThrow(/relay.sessions_per_peer/);
  });

  test("rate: a burst passes, the rest is dropped and counted until the bucket refills", () => {
    const { relay, sent, end, tick } = harness({ bytesPerSecond: 10_000, burstBytes: 2_000 });
    const { tokenA } = relay.allocate(end("aaaa", 1), end("bbbb", 2));
    const p = wrapRelayPacket(tokenA, new Uint8Array(483)); // 500 bytes on the wire
    for (let i = 0; i < 10; i++) relay.onPacket(p, "127.0.0.1", 1);
    expect(sent.length).toBe(4);
    expect(relay.stats.droppedRate).toBe(6);
    tick(100); // 1,000 bytes of budget
    for (let i = 0; i < 10; i++) relay.onPacket(p, "127.0.0.1", 1);
    expect(sent.length).toBe(6);
    expect(relay.stats.droppedRate).toBe(14);
  });

  test("an end gone for two sweeps ends the allocation (a gap between sessions does not); idle allocations are swept", () => {
    const { relay, sent, end, addrs, tick } = harness({ idleMs: 1_000 });
    const { tokenA } = relay.allocate(end("aaaa", 1), end("bbbb", 2));
    addrs.set("bbbb", null);
    expect(relay.onPacket(wrapRelayPacket(tokenA, new Uint8Array(9)), "127.0.0.1", 1)).toBe(true);
    expect(sent.length).toBe(0);
    expect(relay.stats.droppedGone).toBe(1);
    expect(relay.sweep()).toBe(0); // gone at one sweep: maybe a session being replaced
    addrs.set("bbbb", { host: "127.0.0.1", port: 3 }); // …it was: b is back on another session
    expect(relay.sweep()).toBe(0);
    expect(relay.onPacket(wrapRelayPacket(tokenA, new Uint8Array(9)), "127.0.0.1", 1)).toBe(true);
    expect(sent.map((x) => x.port)).toEqual([3]);
    addrs.set("bbbb", null);
    expect(relay.sweep()).toBe(0);
    expect(relay.sweep()).toBe(1); // gone at two sweeps in a row
    expect(relay.allocations()).toEqual([]);
    relay.allocate(end("aaaa", 1), end("bbbb", 2));
    tick(999);
    expect(relay.sweep()).toBe(0);
    tick(1);
    expect(relay.sweep()).toBe(1);
    expect(relay.allocations()).toEqual([]);
  });

  test("an allocation nobody uses is removed after unusedMs (its slot comes back)", () => {
    const { relay, end, tick } = harness({ unusedMs: 500, sessionsPerPeer: 1 });
    const a = end("aaaa", 1);
    relay.allocate(a, end("bbbb", 2));
    expect(() => relay.allocate(a, end("cccc", 3))).toThrow(/sessions_per_peer/);
    tick(499);
    expect(relay.sweep()).toBe(0);
    tick(1);
    expect(relay.sweep()).toBe(1);
    expect(relay.allocate(a, end("cccc", 3)).id).toBeGreaterThan(0);
  });

  test("fuzz: random and truncated packets never throw, and are never forwarded", () => {
    const { relay, sent, end } = harness();
    const { tokenA } = relay.allocate(end("aaaa", 1), end("bbbb", 2));
    const rng = seededRng("relay-fuzz");
    for (let i = 0; i < 20_000; i++) {
      const len = Math.floor(rng() * 40);
      const d = new Uint8Array(len).map(() => Math.floor(rng() * 256));
      if (len > 0 && rng() < 0.5) d[0] = RELAY_BYTE;
      if (len >= 17 && rng() < 0.1) {
        // A token right but for one byte.
        const n = Math.floor(rng() * 16);
        d.set(tokenA.subarray(0, n), 1);
        d[1 + n] = tokenA[n]! ^ 1;
      }
      expect(() => relay.onPacket(d, "127.0.0.1", 1)).not.toThrow();
    }
    expect(sent.length).toBe(0);
    expect(isRelayPacket(new Uint8Array([RELAY_BYTE, ...new Uint8Array(16)]))).toBe(false);
  });
});

test("QUIC end to end through a relay endpoint on 127.0.0.1: the ends only ever talk to the relay", async () => {
  const r = await ep();
  const a = await ep();
  const b = await ep();
  const { relay, ta, tb, toB } = relayBetween(r, a, b, {
    maxSessions: 8,
    sessionsPerPeer: 8,
    bytesPerSecond: 64 * 1024 * 1024,
    burstBytes: 4 * 1024 * 1024,
    idleMs: 60_000,
    unusedMs: 10_000,
  });
  const accepted = b.accept();
  const conn = await a.connect(toB);
  const server = (await accepted)!;
  expect(tb.has(server.remote)).toBe(true);
  expect(conn.peerCertificates.length).toBeGreaterThan(0); // TLS end to end, not with the relay
  echoStreams(server);
  const s = await conn.openStream();
  const payload = new Uint8Array(300_000).map((_, i) => (i * 7) & 0xff);
  await s.end(payload);
  const chunks: Uint8Array[] = [];
  for await (const c of s) chunks.push(c.slice());
  expect(Buffer.concat(chunks)).toEqual(Buffer.from(payload));
  // Everything the ends received came through the relay, which forwarded only what they sent
  // (a few may still be in flight).
  expect(relay.stats.packets).toBeLessThanOrEqual(ta.stats.packetsOut + tb.stats.packetsOut);
  expect(relay.stats.packets).toBeGreaterThanOrEqual(ta.stats.packetsIn + tb.stats.packetsIn);
  expect(relay.stats.droppedWrongSource + relay.stats.droppedRate).toBe(0);
  expect(ta.stats.packetsIn).toBeGreaterThan(200); // 300 kB came back
  // Every packet A sent went to the relay: it never had a path to B.
  expect(conn.remote).toEqual(toB);
  ta.close(toB);
  expect(ta.size).toBe(0);
});
