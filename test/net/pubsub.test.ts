/** Pub/sub across three nodes over real QUIC on 127.0.0.1. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Client } from "../../lib/client/client.ts";
import { Logger } from "../../lib/util/mod.ts";
import { until } from "../helpers/quic.ts";
import { type Mesh, mesh, take } from "../helpers/mesh.ts";

let m: Mesh;
let c0: Client;
let c1: Client;
let c2: Client;

beforeAll(async () => {
  m = await mesh(3);
  [c0, c1, c2] = await Promise.all([m.client(0), m.client(1), m.client(2)]);
});
afterAll(() => m.close());

describe("pub/sub across three nodes", () => {
  test("the mesh is fully connected, one route per pair", () => {
    for (const n of m.nodes) expect(n.routes.length).toBe(2);
  });

  test("wildcards: '*' is one segment, '>' one or more, exact topics exact", async () => {
    const exact = c0.subscribe("w.b.c");
    const one = c1.subscribe("w.*.c");
    const tail = c2.subscribe("w.>");
    await Promise.all([c0.flush(), c1.flush(), c2.flush()]);
    for (const t of ["w.b.c", "w.x.c", "w.b.c.d", "v.b.c", "w"]) c0.publish(t, t);
    expect(await take(exact, 1)).toEqual(["w.b.c w.b.c"]);
    expect(await take(one, 2)).toEqual(["w.b.c w.b.c", "w.x.c w.x.c"]);
    expect(await take(tail, 3)).toEqual(["w.b.c w.b.c", "w.x.c w.x.c", "w.b.c.d w.b.c.d"]);
    // Nothing else arrives: a marker published after is the next message everywhere.
    c0.publish("w.b.c", "end");
    expect(await take(exact, 1)).toEqual(["w.b.c end"]);
    expect(await take(one, 1)).toEqual(["w.b.c end"]);
    expect(await take(tail, 1)).toEqual(["w.b.c end"]);
    for (const s of [exact, one, tail]) s.unsubscribe();
  });

  test("messages from one publisher arrive in order, with their bytes intact", async () => {
    const sub = c2.subscribe("order.x");
    await c2.flush();
    const payloads = Array.from({ length: 500 }, (_, i) => `${i}:${"z".repeat(i % 97)}`);
    for (const p of payloads) c0.publish("order.x", p);
    expect(await take(sub, 500)).toEqual(payloads.map((p) => `order.x ${p}`));
    sub.unsubscribe();
  });

  test("a queue group gets each message once; plain subscribers get them all", async () => {
    // Members on the two other nodes only: the publisher's node picks one node per message (the
    // nearer by RTT, or both in turn when their RTTs are within the tie band).
    const w1 = c1.subscribe("jobs.>", { queue: "workers" });
    const w2 = c2.subscribe("jobs.>", { queue: "workers" });
    const w2b = c2.subscribe("jobs.*", { queue: "workers" });
    const all = c1.subscribe("jobs.>");
    await Promise.all([c1.flush(), c2.flush()]);
    for (let i = 0; i < 60; i++) c0.publish(`jobs.${i}`, String(i));
    expect((await take(all, 60)).length).toBe(60);
    c0.publish("jobs.end", "end"); // a marker for the plain subscriber: everything before arrived
    await take(all, 1);
    await c0.flush();
    const got = [w1, w2, w2b].map((s) => {
      const out: string[] = [];
      for (let x = s.buffer.shift(); x; x = s.buffer.shift()) out.push(x.text());
      return out;
    });
    const seen = got.flat().filter((x) => x !== "end");
    expect(seen.length).toBe(60);
    expect(new Set(seen).size).toBe(60);
    for (const s of [w1, w2, w2b, all]) s.unsubscribe();
  });

  test("a queue group with a member on the publisher's node stays local", async () => {
    const local = c0.subscribe("lq.x", { queue: "q" });
    const remote = c1.subscribe("lq.x", { queue: "q" });
    await Promise.all([c0.flush(), c1.flush()]);
    for (let i = 0; i < 10; i++) c0.publish("lq.x", String(i));
    expect((await take(local, 10)).length).toBe(10);
    c1.publish("lq.x", "from-1"); // published on node 1: its own member gets it
    expect(await take(remote, 1)).toEqual(["lq.x from-1"]);
    expect(remote.stats().accepted).toBe(1);
    local.unsubscribe();
    remote.unsubscribe();
  });

  test("unsubscribe stops delivery, and the interest leaves the other nodes", async () => {
    const sub = c1.subscribe("gone.x");
    await c1.flush();
    await until(() => m.nodes[0]!.snapshot().remoteInterest > 0, "node 0 sees the interest");
    const before = m.nodes[0]!.snapshot().remoteInterest;
    sub.unsubscribe();
    await c1.flush();
    expect(m.nodes[0]!.snapshot().remoteInterest).toBe(before - 1);
    c0.publish("gone.x", "nobody");
    await c0.flush();
    expect(sub.stats().accepted).toBe(0);
  });

  test("a slow subscriber hits its policy: drop-oldest keeps the newest, and counts", async () => {
    const slow = c1.subscribe("slow.x", { maxMessages: 10 });
    const newest = c1.subscribe("slow.x", { maxMessages: 10, policy: "drop-newest" });
    const marker = c1.subscribe("slow.end");
    await c1.flush();
    for (let i = 0; i < 100; i++) c0.publish("slow.x", String(i));
    c0.publish("slow.end", "");
    await take(marker, 1); // same connection, in order: all 100 reached the buffers
    const s = slow.stats();
    expect(s.dropped).toBe(90);
    expect(s.length).toBe(10);
    expect((await take(slow, 10)).map((x) => x.split(" ")[1])).toEqual(
      Array.from({ length: 10 }, (_, i) => String(90 + i)),
    );
    expect(newest.stats().dropped).toBe(90);
    expect((await take(newest, 10)).map((x) => x.split(" ")[1])).toEqual(
      Array.from({ length: 10 }, (_, i) => String(i)),
    );
    for (const x of [slow, newest, marker]) x.unsubscribe();
  });

  test("a blocked subscriber pushes back; what the node drops is reported, not lost silently", async () => {
    const logged: { event: string; msg: string; repeated?: number }[] = [];
    const log = new Logger({ format: "json", write: (l) => logged.push(JSON.parse(l)) });
    const n = await m.add({ maxBacklog: 32 * 1024, join: [], log });
    const pub = await m.client(3);
    const sub = await m.client(3);
    const slow = sub.subscribe("bp.x", { maxMessages: 4, policy: "block" });
    await sub.flush();
    const total = 6000; // 6 MB: past the 1 MiB stream window + 1 MiB read buffer + backlog
    const payload = "p".repeat(1000);
    for (let i = 0; i < total; i++) pub.publish("bp.x", payload);
    await pub.flush();
    expect(n.snapshot().dropped.messages).toBeGreaterThan(0);
    // Said in the log: once, then the repeats summed up when the interval ends.
    const drops = () => logged.filter((l) => l.event === "message.dropped");
    expect(drops()).toHaveLength(1);
    expect(drops()[0]!.msg).toMatch(
      /^dropping messages to client [a-z2-7]{12}…: \d+ bytes queued to it, over the 32768 it may hold \(it reads too slowly\)$/,
    );
    log.close();
    expect(1 + (drops()[1]?.repeated ?? 0)).toBe(n.snapshot().dropped.messages);
    let received = 0;
    const it = slow[Symbol.asyncIterator]();
    await until(() => {
      // Drain what is buffered without waiting; LOST reports arrive once the backlog clears.
      for (let x = slow.buffer.shift(); x; x = slow.buffer.shift()) received++;
      return received + slow.stats().droppedAtNode === total;
    }, "every message received or reported dropped by the node");
    expect(slow.stats().droppedAtNode).toBe(n.snapshot().dropped.messages);
    void it;
    slow.unsubscribe();
  });

  test("bad input: invalid topics and patterns are refused with the rule named", () => {
    expect(() => c0.publish("a..b", "x")).toThrow(/empty segment/);
    expect(() => c0.publish("a.*", "x")).toThrow(/wildcard/);
    expect(() => c0.subscribe("a.>.b")).toThrow(/must be the last segment/);
    expect(() => c0.subscribe("a", { queue: "bad queue" })).toThrow(/queue/);
    expect(() => c0.publish("big.x", new Uint8Array(c0.maxPayload + 1))).toThrow(
      /over the node's limit/,
    );
  });
});
