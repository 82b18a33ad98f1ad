/**
 * Reaching a node by id on 127.0.0.1 (no NAT here; the NAT lab tests the same code behind real
 * NATs): an open session or a dial is `direct`; through a rendezvous, introduction + probes +
 * handshake is `punched`; a request through the rendezvous is `relayed`.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { isPunch, punchConnect, PunchError, sendProbes } from "../../lib/nat/punch.ts";
import { PeerSession } from "../../lib/peer/session.ts";
import { Traversal } from "../../lib/node/traversal.ts";
import { endpoint } from "../helpers/quic.ts";
import { type Mesh, mesh } from "../helpers/mesh.ts";

let m: Mesh;

beforeAll(async () => {
  m = await mesh(3); // n0 is the rendezvous; n1 and n2 also know each other (membership, overlay)
});
afterAll(() => m.close());

describe("reaching a node by id", () => {
  test("an open session is direct; the client's ping says so", async () => {
    const [, a, b] = m.nodes;
    const c = await m.client(1);
    const r = await c.ping(b!.nodeId);
    expect(r.path).toBe("direct");
    expect(r.rttMs).toBeGreaterThan(0);
    expect((await a!.traversal.reach(b!.nodeId)).path).toBe("direct");
    // Every session knows its path, the peer's address and the RTT.
    const peers = a!.snapshot().peers;
    expect(peers.length).toBeGreaterThan(0);
    for (const p of peers) {
      expect(p.path).toBe("direct");
      expect(p.remote).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(p.rttMs).toBeGreaterThanOrEqual(0);
    }
    expect(peers.some((p) => p.role === "route" && p.nodeId === b!.nodeId)).toBe(true);
  });

  test("relayed through the rendezvous when asked to (or when nothing else works)", async () => {
    const [r0, a, b] = m.nodes;
    const res = await a!.traversal.reach(b!.nodeId, { relayOnly: true });
    expect(res.path).toBe("relayed");
    expect([r0!.nodeId, b!.nodeId]).toContain(res.via!);
    expect(r0!.traversal.stats.relayed + b!.traversal.stats.relayed).toBeGreaterThan(0);
  });

  test("punched: introduced by the rendezvous, probes both ways, then the handshake", async () => {
    const [r0, a, b] = m.nodes;
    // A traversal of node a that knows neither a session nor an address for b: only the
    // rendezvous (its route to n0) can get it there.
    // A session from a to the rendezvous n0.
    const conn = await a!.endpoint.connect(r0!.endpoint.address);
    const rendezvousSession = await PeerSession.dial(conn, {
      self: { nodeId: a!.nodeId, realm: a!.realm },
    });
    const t = new Traversal({
      nodeId: a!.nodeId,
      endpoint: a!.endpoint,
      sessionTo: () => undefined,
      rendezvous: () => [rendezvousSession],
      addressOf: () => undefined,
      dial: () => Promise.reject(new Error("no dial in this test")),
      adopt: (conn) => PeerSession.dial(conn, { self: { nodeId: a!.nodeId, realm: a!.realm } }),
    });
    const probesBefore = a!.punchProbesSeen;
    const res = await t.reach(b!.nodeId);
    expect(res.path).toBe("punched");
    expect(res.via).toBe(r0!.nodeId);
    expect(r0!.traversal.stats.introductions).toBeGreaterThan(0);
    expect(b!.traversal.stats.punchRequests).toBeGreaterThan(0);
    expect(a!.punchProbesSeen).toBeGreaterThan(probesBefore); // b's probes reached a
    await rendezvousSession.close();
  });

  test("an unknown node id: a clear error listing what was tried", async () => {
    const c = await m.client(1);
    await expect(c.ping("a".repeat(52))).rejects.toThrow(/cannot reach a{52}/);
  });
});

describe("punch probes", () => {
  test("probes are recognised and dropped by the demux; a punch to nobody fails, bounded", async () => {
    const ep = await endpoint();
    const other = await endpoint();
    const seen: Uint8Array[] = [];
    other.setNonQuicHandler((d) => seen.push(d));
    sendProbes(ep, "127.0.0.1", other.address.port, { lowProbes: 2, probes: 2 });
    const t0 = Date.now();
    while (seen.length < 4 && Date.now() - t0 < 5000) await new Promise((r) => setImmediate(r));
    expect(seen.length).toBe(4); // TTL 2 is enough on loopback
    expect(seen.every(isPunch)).toBe(true);
    // Nothing answers on this port: 2 attempts of 200 ms, then a PunchError naming them.
    const silent = await endpoint();
    const port = silent.address.port;
    await silent.close();
    const err = await punchConnect(ep, "127.0.0.1", port, { attempts: 2, attemptTimeoutMs: 200 })
      .catch((e) => e);
    expect(err).toBeInstanceOf(PunchError);
    expect((err as PunchError).tried.length).toBe(2);
    await ep.close();
    await other.close();
  });
});
