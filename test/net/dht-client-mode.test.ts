/**
 * DHT client mode on real nodes (docs/dht.md, "Client mode"): with `dht.mode: auto` a node asks
 * peers to dial it back at its address on a new connection; one that cannot be dialed (here: it
 * advertises a port nobody listens on, as a node behind a NAT advertises an address others
 * cannot reach) runs its DHT as a client: it is in no other node's table, and still publishes and
 * looks up. Reachable nodes stay servers; `dht.mode: client` fixes the mode without a check; a
 * node that is no member is refused a dial-back (no reflection). Real QUIC on 127.0.0.1.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Node } from "../../lib/node/node.ts";
import { until } from "../helpers/quic.ts";
import { rawPeer } from "../helpers/raw.ts";

let dir: string;
const nodes: Node[] = [];
let seed: Node;
let other: Node;
/** Advertises a port nobody listens on: nobody can dial it. */
let hidden: Node;
/** `dht.mode: client`. */
let fixed: Node;

type DhtView = {
  mode: string;
  reachability: string;
  buckets: { contacts: { id: string }[] }[];
};
const dhtOf = (n: Node) => n.dht.snapshot() as DhtView;
const tableOf = (n: Node) => dhtOf(n).buckets.flatMap((b) => b.contacts.map((c) => c.id));
const key = (name: string) => new Uint8Array(createHash("sha256").update(name).digest());

/** A port nothing listens on (an endpoint bound, then closed). */
async function deadPort(): Promise<number> {
  const { endpoint } = await rawPeer(seed.caDir!, "placeholder", { role: "node" });
  const port = endpoint.address.port;
  await endpoint.close();
  return port;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "macula-dht-client-"));
  seed = await Node.start({ dataDir: join(dir, "seed"), listen: { host: "127.0.0.1", port: 0 } });
  const join_ = [{ host: "127.0.0.1", port: seed.endpoint.address.port }];
  const start = (name: string, extra: Parameters<typeof Node.start>[0] = {}) =>
    Node.start({
      dataDir: join(dir, name),
      devCaDir: seed.caDir!,
      listen: { host: "127.0.0.1", port: 0 },
      join: join_,
      ...extra,
    });
  other = await start("other");
  hidden = await start("hidden", { advertise: `quic://127.0.0.1:${await deadPort()}` });
  fixed = await start("fixed", { dht: { mode: "client" } });
  nodes.push(seed, other, hidden, fixed);
  await Promise.all(nodes.map((n) => n.waitForMembers(4, 30_000)));
}, 60_000);

afterAll(async () => {
  await Promise.allSettled(nodes.map((n) => n.stop()));
  rmSync(dir, { recursive: true, force: true });
});

describe("DHT client mode", () => {
  test(
    "a node others cannot dial finds out and runs as a client; the others stay servers",
    async () => {
      await until(
        () => [seed, other, hidden].every((n) => dhtOf(n).reachability !== "unknown"),
        "every auto node's reachability check answered",
        30_000,
      );
      expect(dhtOf(hidden)).toMatchObject({ mode: "client", reachability: "unreachable" });
      expect(dhtOf(seed)).toMatchObject({ mode: "server", reachability: "reachable" });
      expect(dhtOf(other)).toMatchObject({ mode: "server", reachability: "reachable" });
      // Fixed by configuration: no check.
      expect(dhtOf(fixed)).toMatchObject({ mode: "client", reachability: "fixed" });
      // Some peer tried to dial the hidden node back and could not.
      const unreached = nodes.reduce((n, x) => n + x.snapshot().traversal.reachChecks.unreached, 0);
      expect(unreached).toBeGreaterThanOrEqual(1);
    },
    40_000,
  );

  test("clients publish and look up, and are in no other node's table", async () => {
    const put = await hidden.dht.put(key("from-hidden"), new TextEncoder().encode("h"));
    expect(put.stored).toBeGreaterThan(0);
    await fixed.dht.put(key("from-fixed"), new TextEncoder().encode("f"));
    // The servers, which took part in those lookups, found the clients out of their tables.
    for (const n of [seed, other]) {
      const got = await n.dht.get(key("from-hidden"));
      expect(new TextDecoder().decode(got.records[0]!.value)).toBe("h");
    }
    const got = await hidden.dht.get(key("from-fixed"));
    expect(new TextDecoder().decode(got.records[0]!.value)).toBe("f");
    for (const n of nodes) {
      const table = tableOf(n);
      expect(table).not.toContain(hidden.nodeId);
      expect(table).not.toContain(fixed.nodeId);
    }
    expect(tableOf(hidden)).toContain(seed.nodeId); // a client's own table holds the servers
  }, 40_000);

  test(
    "one peer's word is not enough: a node with one neighbour that cannot dial it stays a server",
    async () => {
      const lonelyDir = join(dir, "pair");
      const seed2 = await Node.start({
        dataDir: join(lonelyDir, "seed"),
        devCaDir: seed.caDir!,
        listen: { host: "127.0.0.1", port: 0 },
      });
      const lonely = await Node.start({
        dataDir: join(lonelyDir, "lonely"),
        devCaDir: seed.caDir!,
        listen: { host: "127.0.0.1", port: 0 },
        join: [{ host: "127.0.0.1", port: seed2.endpoint.address.port }],
        advertise: `quic://127.0.0.1:${await deadPort()}`,
      });
      try {
        await until(() => lonely.dht.reachChecks >= 1, "the lonely node's first check", 20_000);
        expect(seed2.snapshot().traversal.reachChecks.unreached).toBeGreaterThanOrEqual(1);
        expect(dhtOf(lonely)).toMatchObject({ mode: "server", reachability: "unknown" });
      } finally {
        await Promise.allSettled([lonely.stop(), seed2.stop()]);
      }
    },
    30_000,
  );

  test("no reflection: a node that is no member is refused a dial-back", async () => {
    const peer = await rawPeer(seed.caDir!, "stranger", { role: "node" });
    try {
      const s = await peer.session(seed.endpoint.address.port);
      const refused = seed.traversal.stats.refused;
      const e = await s.request("nat.reachable", new Uint8Array(0), { timeoutMs: 5000 }).then(
        () => "answered",
        (e: Error) => e.message,
      );
      expect(e).toContain("is not a member of the realm here");
      expect(seed.traversal.stats.refused).toBe(refused + 1);
      await s.close();
    } finally {
      await peer.endpoint.close();
    }
  }, 20_000);
});
