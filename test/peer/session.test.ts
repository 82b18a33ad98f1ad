import { describe, expect, test } from "bun:test";
import { type DevCa, issue, makeCa } from "../../lib/identity/devca.ts";
import { Verifier } from "../../lib/identity/verify.ts";
import { backoffDelay } from "../../lib/util/backoff.ts";
import { sessionCodec } from "../../lib/peer/frames.ts";
import { PeerSession, type SessionOptions } from "../../lib/peer/session.ts";
import { QuicEndpoint } from "../../lib/quic/mod.ts";
import { closingEndpoints, prng } from "../helpers/quic.ts";

const { track } = closingEndpoints();

async function node(ca: DevCa, v: Verifier, name: string, accept = true) {
  const c = await issue(ca, { name });
  const ep = track(
    await QuicEndpoint.bind({
      host: "127.0.0.1",
      acceptIncoming: accept,
      tls: { ca: ca.pem, ...c },
      checkPeer: v.checkPeer(),
    }),
  );
  const self = await v.verify(c.cert);
  return { ep, self: { nodeId: self.nodeId, realm: self.realm } };
}

async function pair(
  serverOpts: Partial<SessionOptions> = {},
  clientOpts: Partial<SessionOptions> = {},
) {
  const ca = await makeCa("ed25519", "acme-ca", "acme");
  const v = await Verifier.create({ ca: ca.pem });
  const a = await node(ca, v, "alpha");
  const b = await node(ca, v, "beta", false);
  const accepted = (async () => {
    const conn = (await a.ep.accept())!;
    return PeerSession.accept(conn, { self: a.self, ...serverOpts });
  })();
  const conn = await b.ep.connect(a.ep.address);
  const client = await PeerSession.dial(conn, { self: b.self, ...clientOpts });
  return { server: await accepted, client, a, b };
}

/** Connects beta to alpha without a session on beta's side (alpha accepts one). */
async function rawDial() {
  const ca = await makeCa("ed25519", "acme-ca", "acme");
  const v = await Verifier.create({ ca: ca.pem });
  const a = await node(ca, v, "alpha");
  const b = await node(ca, v, "beta", false);
  const accepted = (async () => PeerSession.accept((await a.ep.accept())!, { self: a.self }))()
    .catch((e) => e);
  const conn = await b.ep.connect(a.ep.address);
  return { a, b, accepted, conn };
}

describe("peer sessions", () => {
  test("the handshake binds each side's certificate identity and agrees on a version", async () => {
    const { server, client, a, b } = await pair();
    expect(client.version).toBe("macula/1");
    expect(client.peer.nodeId).toBe(a.self.nodeId);
    expect(server.peer.nodeId).toBe(b.self.nodeId);
    expect(server.peer.name).toBe("beta");
  });

  test("requests go both ways, multiplexed, and answer with the handler's bytes", async () => {
    const echo = (tag: string) => (m: string, p: Uint8Array) =>
      new TextEncoder().encode(`${tag}:${m}:${p.length}`);
    const { server, client } = await pair({ onRequest: echo("a") }, { onRequest: echo("b") });
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) => client.request("sum", new Uint8Array(i))),
    );
    expect(answers.map((x) => new TextDecoder().decode(x))).toEqual(
      Array.from({ length: 50 }, (_, i) => `a:sum:${i}`),
    );
    expect(new TextDecoder().decode(await server.request("ping", new Uint8Array(3)))).toBe(
      "b:ping:3",
    );
  });

  test("errors: the handler's message, no handler, timeout, cancellation", async () => {
    let release!: () => void;
    const hang = new Promise<void>((r) => (release = r));
    const { client } = await pair({
      onRequest: async (m) => {
        if (m === "fail") throw new Error("disk full");
        await hang;
        return new Uint8Array();
      },
    });
    const e1 = await client.request("fail", new Uint8Array()).catch((e) => e);
    expect(e1).toMatchObject({
      code: "remote",
      remoteCode: "handler_error",
      message: "fail: disk full",
    });
    const e2 = await client.request("slow", new Uint8Array(), { timeoutMs: 100 }).catch((e) => e);
    expect(e2).toMatchObject({ code: "timeout", message: "slow: no answer in 100 ms" });
    const ac = new AbortController();
    const p = client.request("slow", new Uint8Array(), { signal: ac.signal }).catch((e) => e);
    ac.abort();
    expect(await p).toMatchObject({ code: "cancelled" });
    release();
    const { client: c2 } = await pair();
    const e3 = await c2.request("x", new Uint8Array()).catch((e) => e);
    expect(e3).toMatchObject({ code: "remote", remoteCode: "no_handler" });
  });

  test("a HELLO that names another node than the certificate is refused", async () => {
    const { a, accepted, conn } = await rawDial();
    const err = await PeerSession.dial(conn, { self: { nodeId: a.self.nodeId, realm: "acme" } })
      .catch((e) => e);
    expect(err).toMatchObject({ code: "identity" });
    expect(err.message).toContain("but the certificate is node");
    expect(await accepted).toMatchObject({ code: "identity" });
  });

  test("no common version: the acceptor says which versions each side speaks", async () => {
    const { b, accepted, conn } = await rawDial();
    const s = await conn.openStream();
    const reply = s.readAll();
    await s.end(
      sessionCodec.encode("HELLO", { versions: ["macula/9"], node: b.self.nodeId, realm: "acme" }),
    );
    const err = sessionCodec.decodeBody((await reply).subarray(4));
    expect(err).toMatchObject({ name: "ERR", fields: { code: "version" } });
    expect(JSON.stringify(err)).toContain("peer speaks macula/9");
    expect(await accepted).toMatchObject({ code: "version" });
  });

  test("graceful close: the peer sees the reason", async () => {
    const { server, client } = await pair();
    await client.close("maintenance");
    expect(await server.closed).toMatchObject({ initiator: "peer", reason: "maintenance" });
  });
});

describe("reconnect backoff", () => {
  test("full jitter under an exponential cap, bounded by the maximum, reproducible from the seed", () => {
    const r1 = prng(7), r2 = prng(7);
    const a = Array.from(
      { length: 20 },
      (_, i) => backoffDelay(i, r1, { baseMs: 100, maxMs: 5000 }),
    );
    const b = Array.from(
      { length: 20 },
      (_, i) => backoffDelay(i, r2, { baseMs: 100, maxMs: 5000 }),
    );
    expect(a).toEqual(b);
    a.forEach((d, i) => {
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThanOrEqual(Math.min(5000, 100 * 2 ** i));
    });
    expect(backoffDelay(1000, () => 0.999999)).toBeLessThanOrEqual(30_000);
  });
});
