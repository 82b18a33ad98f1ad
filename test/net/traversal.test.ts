/**
 * Reaching a node by id on 127.0.0.1 (no NAT here; the NAT lab tests the same code behind real
 * NATs): an open session or a dial is `direct`; through a rendezvous, introduction + probes +
 * handshake is `punched`; a QUIC connection of their own through a relay node is `relayed`, and
 * later moves to a punched path.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { isPunch, punchConnect, PunchError, sendProbes } from "../../lib/nat/punch.ts";
import { PeerSession } from "../../lib/peer/session.ts";
import { Traversal } from "../../lib/nat/traversal.ts";
import { SILENT } from "../../lib/util/mod.ts";
import { endpoint, until } from "../helpers/quic.ts";
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

  test("relayed: a session of their own through a relay, end to end TLS; the relay counts what it carries", async () => {
    const [r0, a, b] = m.nodes;
    const res = await a!.traversal.reach(b!.nodeId, { relayOnly: true });
    expect(res.path).toBe("relayed");
    expect(res.via).toBe(r0!.nodeId);
    // Both ends see a relayed session through r0, at a tunnel address.
    const mine = a!.snapshot().peers.find((p) => p.nodeId === b!.nodeId && p.path === "relayed");
    expect(mine).toMatchObject({
      via: r0!.nodeId,
      remote: expect.stringMatching(/^\[100::1\]:\d+$/),
    });
    const theirs = b!.snapshot().peers.find((p) => p.nodeId === a!.nodeId && p.path === "relayed");
    expect(theirs?.via).toBe(r0!.nodeId);
    const relay = r0!.snapshot().relay!;
    expect(relay.sessions).toHaveLength(1);
    expect([relay.sessions[0]!.a, relay.sessions[0]!.b]).toEqual([a!.nodeId, b!.nodeId]);
    expect(relay.packets).toBeGreaterThan(4); // handshake and ping
    expect(relay.droppedWrongSource + relay.droppedRate + relay.droppedGone).toBe(0);
    expect(a!.snapshot().traversal.relayPacketsUnknown).toBe(0);
    // Asked again, the open relayed session is used: no second allocation.
    expect((await a!.traversal.reach(b!.nodeId, { relayOnly: true })).path).toBe("relayed");
    expect(a!.traversal.stats.relayedSessions).toBe(1);
    expect(r0!.snapshot().relay!.sessions).toHaveLength(1);
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
      sessions: () => [],
      relay: null,
      upgradeAfterMs: 30_000,
      log: SILENT,
      rendezvous: () => [rendezvousSession],
      addressOf: () => undefined,
      isMember: () => Promise.resolve(true),
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

  test("malformed traversal and relay requests get errors naming the field; the node carries on", async () => {
    const [r0, a] = m.nodes;
    const conn = await a!.endpoint.connect(r0!.endpoint.address);
    const s = await PeerSession.dial(conn, { self: { nodeId: a!.nodeId, realm: a!.realm } });
    const ask = (method: string, body: string) =>
      s.request(method, new TextEncoder().encode(body), { timeoutMs: 2000 }).then(
        () => "ok",
        (e) => String(e),
      );
    expect(await ask("relay.open", "{}")).toContain("relay.open: target must be a node id");
    expect(await ask("relay.open", "not json")).toContain("relay.open: the payload is not JSON");
    expect(await ask("relay.accept", JSON.stringify({ peer: a!.nodeId, token: "zz" }))).toContain(
      "relay.accept: token must be 32 hex digits",
    );
    expect(
      await ask("nat.dial", JSON.stringify({ peer: a!.nodeId, host: "100::1", port: 5 })),
    ).toContain("nat.dial: host must be an IP address");
    expect(
      await ask("nat.punch", JSON.stringify({ peer: a!.nodeId, host: "127.0.0.1", port: 0 })),
    ).toContain("nat.punch: port must be a port 1-65535");
    expect(await ask("nat.introduce", "[]")).toContain("nat.introduce: target must be a node id");
    // Not relayed: nothing to move, nothing to mark.
    expect(await ask("nat.upgrade", "")).toBe("ok");
    expect(await ask("nat.punched", "")).toBe("ok");
    expect(await ask("ping", "")).toBe("ok");
    await s.close();
  });

  test("no reflection: punches only for members, bounded per requester and per address, counted", async () => {
    const [r0, a] = m.nodes;
    const conn = await a!.endpoint.connect(r0!.endpoint.address);
    const s = await PeerSession.dial(conn, { self: { nodeId: a!.nodeId, realm: a!.realm } });
    const ask = (method: string, body: unknown) =>
      s.request(method, new TextEncoder().encode(JSON.stringify(body)), { timeoutMs: 2000 }).then(
        () => "ok",
        (e) => String(e),
      );
    const before = r0!.traversal.stats.refused;
    const stranger = "b".repeat(52);
    expect(await ask("nat.punch", { peer: stranger, host: "127.0.0.1", port: 9 })).toContain(
      `${stranger.slice(0, 12)}… is not a member of the realm here`,
    );
    expect(await ask("nat.dial", { peer: stranger, host: "127.0.0.1", port: 9 })).toContain(
      "is not a member of the realm here",
    );
    // Toward one address: 4 punches at once, then one every 2 s, whoever asks.
    const answers: string[] = [];
    for (let i = 0; i < 5; i++) {
      answers.push(await ask("nat.punch", { peer: a!.nodeId, host: "127.0.0.1", port: 9 }));
    }
    expect(answers.slice(0, 4)).toEqual(["ok", "ok", "ok", "ok"]);
    expect(answers[4]).toContain("too many punches toward 127.0.0.1:9 (4, then one every 2 s)");
    // Per requester: 64 at once (five spent above, and a's introduction earlier in this file),
    // then 8 a second, whatever the address.
    const started = performance.now();
    let ok = 0;
    let refused = 0;
    for (let port = 10; port < 100; port++) {
      const r = await ask("nat.punch", { peer: a!.nodeId, host: "127.0.0.1", port });
      if (r === "ok") ok++;
      else if (r.includes("too many traversal requests from this node")) refused++;
    }
    const refill = 8 * Math.ceil((performance.now() - started) / 1000);
    expect(ok).toBeGreaterThanOrEqual(50);
    expect(refused).toBeGreaterThanOrEqual(1);
    expect(ok).toBeLessThanOrEqual(59 + refill);
    expect(ok + refused).toBe(90);
    expect(r0!.traversal.stats.refused - before).toBe(3 + refused);
    await s.close();
  });

  test("an unknown node id: answered at once, not a member", async () => {
    const c = await m.client(1);
    await expect(c.ping("a".repeat(52))).rejects.toThrow(
      `nat.ping: ${"a".repeat(52)} is not a member this node knows`,
    );
  });

  test("a member that stopped: a clear error listing what was tried", async () => {
    const gone = await m.add({ relay: { enabled: false } });
    await until(() => m.nodes[1]!.membership.knows(gone.nodeId), "node 1 knows the new member");
    await gone.stop();
    const c = await m.client(1);
    await expect(c.ping(gone.nodeId)).rejects.toThrow(
      new RegExp(`nat\\.ping: cannot reach ${gone.nodeId}: .+`),
    );
  });
});

describe("relay quotas and the move to a direct path", () => {
  test("a relay refuses past its quota and says which; a node with relaying off says so; the relayed session later moves to a punched path", async () => {
    // r relays, with one relayed session per peer; the others do not relay. a retries an upgrade
    // of its relayed sessions after 300 ms.
    const q = await mesh(1, { relay: { sessionsPerPeer: 1 } });
    try {
      const r = q.nodes[0]!;
      const a = await q.add({ relay: { enabled: false, upgradeAfterMs: 300 } });
      const b = await q.add({ relay: { enabled: false } });
      const c = await q.add({ relay: { enabled: false } });
      await Promise.all(q.nodes.map((n) => n.waitForRoutes(3)));
      const first = await a.traversal.connect(b.nodeId, { relayOnly: true });
      expect(first.path).toBe("relayed");
      const err = await a.traversal.connect(c.nodeId, { relayOnly: true }).catch((e) => e);
      expect(String(err)).toContain(
        `node ${
          a.nodeId.slice(0, 12)
        }… already has 1 relayed sessions here (relay.sessions_per_peer)`,
      );
      expect(String(err)).toContain("this node does not relay (relay.enabled: false)");
      expect(r.snapshot().relay!.refused).toBe(1);
      expect(b.snapshot().relay).toBeNull();
      // The relayed session moves to a direct path: same session, now punched at both ends.
      const s = first.session;
      await until(() => a.traversal.pathOf(s) === "punched", "the relayed session to move", 15_000);
      expect(s.conn.remote.port).toBe(b.endpoint.address.port);
      expect(a.traversal.stats.upgraded).toBe(1);
      // The same session carries on (a and b also have a direct route: this mesh is on one host).
      const pong = await s.request("ping", new Uint8Array(0), { timeoutMs: 2000 });
      expect(JSON.parse(new TextDecoder().decode(pong))).toEqual({ node: b.nodeId });
      expect(a.traversal.stats.relayedSessions).toBe(1);
      await until(
        () => b.snapshot().peers.some((p) => p.nodeId === a.nodeId && p.path === "punched"),
        "b to see the move",
      );
    } finally {
      await q.close();
    }
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
    const dialed = ep.stats.connectionsDialed;
    const err = await punchConnect(ep, "127.0.0.1", port, { attempts: 2, attemptTimeoutMs: 200 })
      .catch((e) => e);
    expect(err).toBeInstanceOf(PunchError);
    expect(ep.stats.connectionsDialed - dialed).toBe(2); // two handshakes were started
    expect((err as PunchError).message).toContain("2 handshake attempts in 400 ms");
    await ep.close();
    await other.close();
  });
});
