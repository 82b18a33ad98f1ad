/**
 * Letting a route go without loss (docs/routing.md, "Letting a route go"): three nodes on
 * 127.0.0.1, every pair with a route. Node A lets its route to C go while a publisher on A
 * streams to a subscriber on C: the stream moves to the path through B at once, the route
 * closes only after both ends drained, and the subscriber gets every message exactly once. A call
 * in flight over a route being let go (A's to B) is answered before the route closes. Real QUIC; every wait
 * is bounded.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Client, connect } from "../../lib/client/client.ts";
import { Node } from "../../lib/node/node.ts";
import { until } from "../helpers/quic.ts";

const dir = mkdtempSync(join(tmpdir(), "macula-route-retire-"));
const nodes: Node[] = [];
const clients: Client[] = [];
let a: Node, b: Node, c: Node;

const hopsTo = (
  from: Node,
  to: Node,
  what: (o: { subs: readonly unknown[]; procs: readonly string[] }) => boolean,
) => from.router.interest().find((o) => o.node === to.nodeId && what(o))?.path?.hops;

beforeAll(async () => {
  const start = (name: string, seed?: Node) =>
    Node.start({
      dataDir: join(dir, name),
      devCaDir: seed?.caDir,
      listen: { host: "127.0.0.1", port: 0 },
      join: seed ? [{ host: "127.0.0.1", port: seed.endpoint.address.port }] : [],
      log: () => {},
    });
  a = await start("a");
  nodes.push(a);
  b = await start("b", a);
  nodes.push(b);
  c = await start("c", a);
  nodes.push(c);
  await Promise.all(nodes.map((n) => n.waitForMembers(3, 30_000)));
  await until(
    () => nodes.every((n) => nodes.every((m) => m === n || n.routes.includes(m.nodeId))),
    "a route between every pair of nodes",
    30_000,
  );
});

afterAll(async () => {
  await Promise.allSettled(clients.map((x) => x.close()));
  await Promise.allSettled(nodes.map((n) => n.stop()));
  rmSync(dir, { recursive: true, force: true });
});

test("a stream moves off a route being let go without losing or doubling a message", async () => {
  const pub = await connect({ url: a.url, creds: a.credsDir! });
  const subClient = await connect({ url: c.url, creds: a.credsDir! });
  clients.push(pub, subClient);
  const seen = new Map<string, number>();
  const sub = subClient.subscribe("retire.stream");
  void (async () => {
    for await (const m of sub) seen.set(m.text(), (seen.get(m.text()) ?? 0) + 1);
  })();
  await subClient.flush();
  await until(
    () => nodes.every((n) => n === c || hopsTo(n, c, (o) => o.subs.length > 0) === 1),
    "C's subscription at A and B, one hop away",
  );
  const before = a.snapshot().retired.clean;
  const total = 3000;
  for (let i = 0; i < total; i++) {
    if (i === 1000) {
      expect(a.retireRoute(c.nodeId)).toBe(true);
      // At once: the path to C is the one through B.
      expect(hopsTo(a, c, (o) => o.subs.length > 0)).toBe(2);
    }
    pub.publish("retire.stream", `m${i}`);
    if (i % 50 === 0) await new Promise<void>((r) => setImmediate(r));
  }
  await pub.flush();
  await until(() => seen.size === total, `all ${total} messages at C's subscriber`, 30_000);
  expect([...seen.values()].every((x) => x === 1)).toBe(true);
  await until(() => a.snapshot().retired.clean === before + 1, "A's route to C closed, drained");
  for (const n of nodes) {
    expect(n.snapshot().dropped.lostInRoute).toBe(0);
    expect(n.snapshot().retired.cut).toBe(0);
  }
  sub.unsubscribe();
}, 90_000);

test("a call in flight over a route being let go is answered before the route closes", async () => {
  const caller = await connect({ url: a.url, creds: a.credsDir! });
  const server = await connect({ url: b.url, creds: a.credsDir! });
  clients.push(caller, server);
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let arrived = false;
  server.serve("retire.slow", async (p) => {
    arrived = true;
    await held;
    return p;
  });
  await server.flush();
  await until(
    () => hopsTo(a, b, (o) => o.procs.includes("retire.slow")) === 1,
    "the procedure at A",
  );
  const before = a.snapshot().retired.clean;
  const reply = caller.request("retire.slow", "still here", { timeoutMs: 20_000 });
  await until(() => arrived, "the call at B's provider");
  expect(a.retireRoute(b.nodeId)).toBe(true);
  // B has answered RETIRE; A holds the route for the call over it.
  await until(() => a.snapshot().retired.draining === 1, "A waiting on the call over the route");
  expect(a.routes).toContain(b.nodeId);
  release();
  expect(new TextDecoder().decode(await reply)).toBe("still here");
  await until(() => a.snapshot().retired.clean === before + 1, "A's route to B closed, drained");
  expect(a.snapshot().retired.draining).toBe(0);
}, 90_000);
