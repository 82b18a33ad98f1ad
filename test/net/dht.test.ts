/**
 * The DHT on real nodes (lib/node/dht.ts): 12 nodes over QUIC on 127.0.0.1 send nothing until
 * the DHT is used, then bootstrap from membership; a record put on one node is found from every other, a node id is found by
 * lookup, `inspect dht` shows the table and the records, and a message whose `from` is not its
 * session's certificate is refused.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { connect } from "../../lib/client/client.ts";
import { nodeIdFromText, nodeIdText } from "../../lib/identity/mod.ts";
import { encodeDht } from "../../lib/mesh/mod.ts";
import { DHT_MSG } from "../../lib/node/dht.ts";
import { Node } from "../../lib/node/node.ts";
import { ask, SessionError } from "../../lib/peer/mod.ts";
import { run } from "../helpers/run.ts";

const MAIN = fileURLToPath(new URL("../../cli/main.ts", import.meta.url));

const N = 12;
let dir: string;
const nodes: Node[] = [];
const key = (name: string) => new Uint8Array(createHash("sha256").update(name).digest());

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "macula-dht-"));
  const first = await Node.start({
    dataDir: join(dir, "n0"),
    listen: { host: "127.0.0.1", port: 0 },
    overlay: { k: 2 },
  });
  nodes.push(first);
  for (let i = 1; i < N; i++) {
    nodes.push(
      await Node.start({
        dataDir: join(dir, `n${i}`),
        devCaDir: first.caDir!,
        listen: { host: "127.0.0.1", port: 0 },
        join: [{ host: "127.0.0.1", port: first.endpoint.address.port }],
        overlay: { k: 2 },
      }),
    );
  }
  await Promise.all(nodes.map((n) => n.waitForMembers(N, 30_000)));
}, 90_000);

afterAll(async () => {
  await Promise.allSettled(nodes.map((n) => n.stop()));
  rmSync(dir, { recursive: true, force: true });
});

describe("the DHT on 12 real nodes", () => {
  test("a DHT nobody uses costs nothing: empty tables, no requests sent", () => {
    for (const n of nodes) {
      expect(n.dht.core.table.size).toBe(0);
      expect(n.dht.core.stats.requestsOut).toBe(0);
    }
  });

  test("a record put on one node is found from every other, signed by its publisher", async () => {
    const put = await nodes[0]!.dht.put(key("svc/printer"), new TextEncoder().encode("room 4"));
    expect(put.stored).toBeGreaterThan(0);
    expect(put.refused).toBe(0);
    // The first use bootstrapped from membership: contacts now, and only members.
    expect(nodes[0]!.dht.stats.bootstraps).toBe(1);
    expect(nodes[0]!.dht.core.table.size).toBeGreaterThanOrEqual(8);
    const members = new Set(nodes.map((n) => n.nodeId));
    for (const b of nodes[0]!.dht.core.table.buckets()) {
      for (const c of b.contacts) expect(members.has(nodeIdText(c.id))).toBe(true);
    }
    for (const n of nodes.slice(1)) {
      const r = await n.dht.get(key("svc/printer"));
      expect(r.records.map((x) => new TextDecoder().decode(x.value))).toEqual(["room 4"]);
      expect(nodeIdText(r.records[0]!.publisher)).toBe(nodes[0]!.nodeId);
    }
  }, 60_000);

  test("a lookup of a node's id finds that node first", async () => {
    const target = nodes[7]!;
    const r = await nodes[2]!.dht.findNode(nodeIdFromText(target.nodeId));
    expect(r.timedOut).toBe(false);
    expect(nodeIdText(r.closest[0]!.id)).toBe(target.nodeId);
    expect(r.closest[0]!.addr).toBe(target.url);
  }, 30_000);

  test("inspect dht shows the table, the records held and published", async () => {
    const c = await connect({ url: nodes[0]!.url, creds: nodes[0]!.credsDir! });
    try {
      const doc = await c.inspect("dht") as {
        nodeId: string;
        contacts: number;
        buckets: { contacts: { id: string; addr: string }[] }[];
        published: { key: string; seq: number; bytes: number }[];
        counters: Record<string, number>;
      };
      expect(doc.nodeId).toBe(nodes[0]!.nodeId);
      expect(doc.contacts).toBe(doc.buckets.reduce((a, b) => a + b.contacts.length, 0));
      expect(doc.published).toEqual([{
        key: Buffer.from(key("svc/printer")).toString("hex"),
        seq: 1,
        bytes: 6,
      }]);
      expect(doc.counters.requestsIn).toBeGreaterThan(0);
    } finally {
      await c.close();
    }
    const held = nodes.reduce((a, n) => a + n.dht.core.store.size, 0);
    expect(held).toBeGreaterThan(0);
    // The same from the command line: text for people, --json for jq.
    const holder = nodes.find((n) => n.dht.core.store.size > 0)!;
    const cli = (...extra: string[]) =>
      run([
        process.execPath,
        MAIN,
        "inspect",
        "dht",
        ...extra,
        "--server",
        holder.url,
        "--creds",
        nodes[0]!.credsDir!,
      ]);
    const text = await cli();
    expect(text.stderr).toBe("");
    expect(text.code).toBe(0);
    // Its reachability check may not have answered yet (docs/dht.md, "Client mode").
    expect(text.stdout).toMatch(
      new RegExp(
        `${holder.nodeId}  server mode \\((others can dial it|reachability not checked yet)\\), \\d+ contacts`,
      ),
    );
    expect(text.stdout).toContain(
      `held for others:\n    key ${
        Buffer.from(key("svc/printer")).toString("hex").slice(0, 16)
      }…  from ${nodes[0]!.nodeId}  seq 1  6 B  expires in`,
    );
    const json = await cli("--json");
    expect(json.code).toBe(0);
    const doc = JSON.parse(json.stdout) as { heldCount: number; held: { publisher: string }[] };
    expect(doc.heldCount).toBe(holder.dht.core.store.size);
    expect(doc.held.map((h) => h.publisher)).toContain(nodes[0]!.nodeId);
  }, 30_000);

  test("a message whose from is not its session's certificate is refused, counted", async () => {
    const a = nodes[3]!, b = nodes[4]!;
    const s = await a.membership.sessionTo(b.url);
    expect(s).not.toBeNull();
    const before = b.dht.stats.forged;
    const lie = encodeDht({
      realm: "dev",
      from: nodeIdFromText(nodes[5]!.nodeId), // not a's
      mode: "server",
      rid: 1,
      t: "ping",
    });
    const e = await ask(s!, DHT_MSG, lie, { timeoutMs: 5000 }).then(() => null, (x: Error) => x);
    expect(e).toBeInstanceOf(SessionError);
    expect(e!.message).toContain("from is not the id of this session's certificate");
    expect(b.dht.stats.forged).toBe(before + 1);
    const from = nodeIdFromText(a.nodeId);
    const refusal = (m: Parameters<typeof encodeDht>[0]) =>
      ask(s!, DHT_MSG, encodeDht(m), { timeoutMs: 5000 }).then(
        () => "answered",
        (x: Error) => x.message,
      );
    // A store of a record another node published: one node may not fill others' stores.
    const record = {
      key: new Uint8Array(32),
      value: new Uint8Array(1),
      publisher: nodeIdFromText(nodes[5]!.nodeId),
      seq: 1,
      ttlMs: 1000,
      pub: new Uint8Array(44),
      sig: new Uint8Array(64),
    };
    expect(await refusal({ realm: "dev", from, mode: "server", rid: 2, t: "store", record }))
      .toContain("store of a record this node did not publish");
    expect(b.dht.stats.forged).toBe(before + 2);
    // An answer sent as a request.
    expect(await refusal({ realm: "dev", from, mode: "server", rid: 3, t: "pong" }))
      .toContain("pong is an answer, not a request");
  }, 30_000);

  test("requests over a sender's rate are refused as such, counted", async () => {
    const a = nodes[8]!, b = nodes[9]!;
    const s = (await a.membership.sessionTo(b.url))!;
    const from = nodeIdFromText(a.nodeId);
    const limited = b.dht.core.stats.limited;
    // The burst is 200 (DHT_DEFAULTS.requestBurst): 260 at once pass it.
    const answers = await Promise.all(
      Array.from(
        { length: 260 },
        (_, i) =>
          ask(
            s,
            DHT_MSG,
            encodeDht({ realm: "dev", from, mode: "server", rid: 100 + i, t: "ping" }),
            {
              timeoutMs: 10_000,
            },
          ).then(() => "pong", (x: Error) => x.message),
      ),
    );
    const refused = answers.filter((x) => x.includes("over this sender's rate of DHT requests"));
    expect(refused.length).toBeGreaterThan(0);
    expect(answers.filter((x) => x === "pong").length + refused.length).toBe(260);
    expect(b.dht.core.stats.limited - limited).toBe(refused.length);
  }, 30_000);
});
