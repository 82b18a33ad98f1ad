/**
 * Tracing across the mesh (docs/tracing.md), over real QUIC on 127.0.0.1: three nodes A, B, C
 * where A's route to C was let go (the overlay then avoids it for 30 s), so whatever goes from A
 * to C is forwarded by B (and no shortcut is made: `overlay.shortcuts: 0`). Each node and each application exports its spans over OTLP/HTTP
 * (lib/observe/trace.ts) to a small receiver on 127.0.0.1 (test/helpers/otlp.ts). Checked: one
 * call's spans on the caller, A, B, C and the provider share one trace id, each the child of the
 * one before; a publish's consumer span is linked to its producer and every hop's span hangs off
 * the producer's; the traceparent is on every frame; a hostile client's malformed traceparent is
 * dropped and counted, an oversize one closes its session; untraced traffic has no trace field;
 * a collector that is gone costs drops, counted, and nothing else.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Client, connect } from "../../lib/client/client.ts";
import { busCodec, isTraceparent, isTracestate } from "../../lib/messaging/mod.ts";
import { ClientTracing } from "../../lib/client/tracing.ts";
import { Node } from "../../lib/node/node.ts";
import { startTracing, type Tracing } from "../../lib/observe/trace.ts";
import type { Frame } from "../../lib/wire/codec.ts";
import { OTLP_KIND, type OtlpReceiver, otlpReceiver, type ReceivedSpan } from "../helpers/otlp.ts";
import { take } from "../helpers/mesh.ts";
import { until } from "../helpers/quic.ts";
import { rawPeer } from "../helpers/raw.ts";

const dir = mkdtempSync(join(tmpdir(), "macula-trace-"));
let receiver: OtlpReceiver;
let a: Node, b: Node, c: Node;
const nodes: Node[] = [];
const tracings: Tracing[] = [];
const clients: Client[] = [];
/** Frames each node's router took, by node (a spy on `receive`). */
const taken = new Map<Node, Frame[]>();

const tp = (traceId: string, spanId: string) => `00-${traceId}-${spanId}-01`;
const nodeOf = (s: ReceivedSpan) => s.resource["service.instance.id"];

function tracing(nodeId: string, serviceName?: string): Tracing {
  const t = startTracing({
    otlp: receiver.url,
    nodeId,
    realm: a.realm,
    serviceName,
    batchDelayMs: 20,
  });
  tracings.push(t);
  return t;
}

async function client(node: Node, o: { tracer?: Tracing | null } = {}): Promise<Client> {
  const x = await connect({
    url: node.url,
    creds: a.credsDir!,
    ...(o.tracer === undefined ? {} : { tracer: o.tracer === null ? null : o.tracer.tracer }),
  });
  clients.push(x);
  return x;
}

/** Hops from `from` to `to`'s record (one with interest), as `from`'s router sees them. */
const hopsTo = (from: Node, to: Node) =>
  from.router.interest().find((o) => o.node === to.nodeId && (o.subs.length + o.procs.length) > 0)
    ?.path?.hops;

beforeAll(async () => {
  receiver = await otlpReceiver();
  const start = (name: string, seed?: Node) =>
    Node.start({
      dataDir: join(dir, name),
      devCaDir: seed?.caDir,
      listen: { host: "127.0.0.1", port: 0 },
      join: seed ? [{ host: "127.0.0.1", port: seed.endpoint.address.port }] : [],
      // Hop by hop through B, whatever A sends C: the spans of each hop are what is checked.
      overlay: { shortcuts: 0 },
      log: () => {},
    });
  a = await start("a");
  b = await start("b", a);
  c = await start("c", a);
  nodes.push(a, b, c);
  await Promise.all(nodes.map((n) => n.waitForMembers(3, 30_000)));
  await until(
    () => nodes.every((n) => nodes.every((m) => m === n || n.routes.includes(m.nodeId))),
    "a route between every pair of nodes",
    30_000,
  );
  for (const n of nodes) {
    n.router.tracer = tracing(n.nodeId).tracer;
    const seen: Frame[] = [];
    taken.set(n, seen);
    const receive = n.router.receive.bind(n.router);
    n.router.receive = (now, link, frame) => {
      if (seen.length < 10_000) seen.push(frame);
      receive(now, link, frame);
    };
  }
  // A lets its route to C go; both ends then avoid each other, so A reaches C through B.
  expect(a.retireRoute(c.nodeId)).toBe(true);
  await until(
    () => !a.routes.includes(c.nodeId) && !c.routes.includes(a.nodeId),
    "the route between A and C closed",
    30_000,
  );
}, 90_000);

afterAll(async () => {
  await Promise.allSettled(clients.map((x) => x.close()));
  await Promise.allSettled(tracings.map((t) => t.shutdown()));
  await Promise.allSettled(nodes.map((n) => n.stop()));
  await receiver?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("tracing across three nodes", () => {
  test(
    "one call's spans on the caller, A, B, C and the provider share one trace id, each the child of the one before",
    async () => {
      const provider = await client(c, { tracer: tracing("provider", "app-provider") });
      let seenTraceparent: string | undefined;
      await provider.serve("trace.echo", (p, ctx) => {
        seenTraceparent = ctx.traceparent;
        return p;
      }).ready;
      await until(() => hopsTo(a, c) === 2, "A's path to C's procedure: 2 hops, through B");
      const settled: [string, number][] = [];
      const others: string[] = [];
      a.router.observer = { callSettled: (o, s) => settled.push([o, s]) };
      b.router.observer = c.router.observer = { callSettled: (o) => others.push(o) };
      const caller = await client(a, { tracer: tracing("caller", "app-caller") });
      expect(new TextDecoder().decode(await caller.call("trace.echo", "hi"))).toBe("hi");

      const callSpan = () => receiver.spans.find((s) => s.name === "call trace.echo");
      const inTrace = () => receiver.spans.filter((s) => s.traceId === callSpan()?.traceId);
      await receiver.waitFor(() => inTrace().length >= 5, "the call's 5 spans");
      const spans = inTrace();
      const root = callSpan()!;
      const hop = (n: Node) =>
        spans.find((s) => s.name === "send trace.echo" && nodeOf(s) === n.nodeId);
      const process = spans.find((s) => s.name === "process trace.echo")!;
      const [atA, atB, atC] = [hop(a)!, hop(b)!, hop(c)!];
      expect(spans).toHaveLength(5);
      // The chain: caller → A → B → C → provider, by parent span id.
      expect(root.parentSpanId).toBe("");
      expect(atA.parentSpanId).toBe(root.spanId);
      expect(atB.parentSpanId).toBe(atA.spanId);
      expect(atC.parentSpanId).toBe(atB.spanId);
      expect(process.parentSpanId).toBe(atC.spanId);
      expect([root, atA, atB, atC, process].map((s) => s.kind)).toEqual([
        OTLP_KIND.client,
        OTLP_KIND.client,
        OTLP_KIND.client,
        OTLP_KIND.client,
        OTLP_KIND.server,
      ]);
      expect([atA, atB, atC].map((s) => s.attributes["macula.hop"])).toEqual([0, 1, 2]);
      for (const s of [atA, atB, atC]) {
        expect(s.attributes).toMatchObject({
          "messaging.system": "macula",
          "messaging.destination.name": "trace.echo",
          "messaging.operation.type": "send",
          "macula.node.id": nodeOf(s),
        });
        expect(s.resource).toMatchObject({ "service.name": "macula", "macula.realm": a.realm });
      }
      expect(root.resource["service.name"]).toBe("app-caller");
      expect(process.resource["service.name"]).toBe("app-provider");
      // The handler saw its own span's context; each hop's CALL carried the hop before's.
      expect(seenTraceparent).toBe(tp(process.traceId, process.spanId));
      const calls = (n: Node) =>
        taken.get(n)!.filter((f) => f.name === "CALL" && f.fields.proc === "trace.echo");
      expect(calls(a).map((f) => f.fields.traceparent)).toEqual([tp(root.traceId, root.spanId)]);
      expect(calls(b).map((f) => f.fields.traceparent)).toEqual([tp(root.traceId, atA.spanId)]);
      expect(calls(c).map((f) => f.fields.traceparent)).toEqual([tp(root.traceId, atB.spanId)]);
      // The observer: once, at the caller's node.
      expect(settled.map(([o]) => o)).toEqual(["ok"]);
      expect(settled[0]![1]).toBeGreaterThanOrEqual(0);
      expect(others).toEqual([]);
    },
    60_000,
  );

  test(
    "a publish: every hop's span and the consumer's hang off the producer's, the consumer's linked to it",
    async () => {
      const sub = await client(c, { tracer: tracing("subscriber", "app-sub") });
      const s = sub.subscribe("trace.news.*");
      await sub.flush();
      await until(() => hopsTo(a, c) === 2, "A's path to C's subscription: 2 hops");
      const pub = await client(a, { tracer: tracing("publisher", "app-pub") });
      const got = s[Symbol.asyncIterator]().next();
      pub.publish("trace.news.eu", "hello");
      const m = (await got).value!;
      expect(m.text()).toBe("hello");

      const producer = () => receiver.spans.find((x) => x.name === "publish trace.news.eu");
      const inTrace = () => receiver.spans.filter((x) => x.traceId === producer()?.traceId);
      await receiver.waitFor(() => inTrace().length >= 5, "the publish's 5 spans");
      const p = producer()!;
      expect(p.kind).toBe(OTLP_KIND.producer);
      const hops = inTrace().filter((x) => x.name === "send trace.news.eu");
      expect(hops.map(nodeOf).sort()).toEqual([a.nodeId, b.nodeId, c.nodeId].sort());
      for (const h of hops) expect(h.parentSpanId).toBe(p.spanId);
      const byNode = (n: Node) => hops.find((h) => nodeOf(h) === n.nodeId)!.attributes;
      expect([a, b, c].map((n) => byNode(n)["macula.hop"])).toEqual([0, 1, 2]);
      expect(byNode(a)["macula.forwards"]).toBe(1);
      expect(byNode(c)["macula.deliveries"]).toBe(1);
      const consumer = inTrace().find((x) => x.name === "receive trace.news.eu")!;
      expect(consumer.kind).toBe(OTLP_KIND.consumer);
      expect(consumer.parentSpanId).toBe(p.spanId);
      expect(consumer.links).toEqual([{ traceId: p.traceId, spanId: p.spanId }]);
      expect(consumer.attributes["messaging.destination.subscription.name"]).toBe("trace.news.*");
      // The producer's traceparent, unchanged, on the PUB, the FWD at B, the FWD at C, the MSG.
      const producerTp = tp(p.traceId, p.spanId);
      const pubs = (n: Node, name: string) =>
        taken.get(n)!.filter((f) => f.name === name && f.fields.topic === "trace.news.eu");
      expect(pubs(a, "PUB").map((f) => f.fields.traceparent)).toEqual([producerTp]);
      expect(pubs(b, "FWD").map((f) => f.fields.traceparent)).toEqual([producerTp]);
      expect(pubs(c, "FWD").map((f) => f.fields.traceparent)).toEqual([producerTp]);
      expect(m.traceparent).toBe(producerTp);
    },
    60_000,
  );

  test(
    "a hostile client: a malformed traceparent is dropped and counted, the message delivered; an oversize one closes its session",
    async () => {
      const sub = await client(c, { tracer: null });
      const s = sub.subscribe("trace.hostile");
      await sub.flush();
      await until(() => hopsTo(a, c) === 2, "A's path to C's subscription");
      const it = s[Symbol.asyncIterator]();
      const before = a.router.stats.badTraceContext;
      const raw = await rawClient(a);
      try {
        await raw.write(busCodec.encode("PUB", {
          topic: "trace.hostile",
          payload: new TextEncoder().encode("one"),
          traceparent: "00-not-a-trace-context",
          tracestate: "k=v",
        }));
        const m = (await it.next()).value!;
        expect(m.text()).toBe("one");
        expect(m.traceparent).toBeUndefined();
        expect(a.router.stats.badTraceContext).toBe(before + 1);
        expect(raw.session.conn.closeInfo ?? null).toBeNull(); // the session goes on
        // Over the field's bound (128 bytes): a malformed frame, as any field over its limit.
        await raw.write(
          busCodec.encodeRaw([35, "trace.hostile", new Uint8Array(1), "0".repeat(129)]),
        );
        const info = await raw.session.closed;
        expect(info.message).toContain("PUB.traceparent: longer than 128 bytes");
      } finally {
        await raw.close();
      }
    },
    60_000,
  );

  test(
    "untraced (no SDK registered, no tracer given): no trace field anywhere, no span",
    async () => {
      const sub = await client(c);
      const s = sub.subscribe("trace.plain");
      await sub.flush();
      await sub.serve("trace.plain.echo", (p) => p).ready;
      await until(() => hopsTo(a, c) === 2, "A's path to C");
      const pub = await client(a);
      const got = take(s, 1);
      pub.publish("trace.plain", "x");
      expect(await got).toEqual(["trace.plain x"]);
      expect(new TextDecoder().decode(await pub.call("trace.plain.echo", "y"))).toBe("y");
      const frames = [...taken.values()].flat().filter((f) =>
        ["PUB", "FWD", "CALL"].includes(f.name) &&
        String(f.fields.topic ?? f.fields.proc).startsWith("trace.plain")
      );
      expect(frames.map((f) => f.name).sort()).toEqual([
        "CALL",
        "CALL",
        "CALL",
        "FWD",
        "FWD",
        "PUB",
      ]);
      for (const f of frames) {
        expect(f.fields.traceparent).toBeNull();
        expect(f.fields.tracestate).toBeNull();
      }
      await Promise.all(tracings.map((t) => t.flush()));
      expect(receiver.spans.filter((x) => x.name.includes("trace.plain"))).toEqual([]);
    },
    60_000,
  );
});

describe("startTracing", () => {
  test(
    "a collector that is gone: spans past the queue are dropped and counted, exports fail, shutdown is bounded",
    async () => {
      // A port that was just listening and is closed now: connections are refused.
      const gone = await otlpReceiver();
      await gone.close();
      const t = startTracing({
        otlp: gone.url,
        nodeId: "n",
        realm: "r",
        maxQueue: 10,
        batchDelayMs: 10,
        exportTimeoutMs: 1000,
      });
      for (let i = 0; i < 50; i++) t.tracer.startSpan(`s${i}`).end();
      expect(t.stats().dropped).toBe(40);
      await until(() => t.stats().pending === 0, "the failed export let go of its spans", 20_000);
      expect(t.stats()).toMatchObject({ exported: 0, dropped: 50, pending: 0 });
      expect(t.stats().failedExports).toBeGreaterThanOrEqual(1);
      await t.shutdown();
      t.tracer.startSpan("after").end();
      expect(t.stats().dropped).toBe(51);
    },
    30_000,
  );

  test("the resource names the node and the realm; a bad endpoint is refused by name", async () => {
    const t = startTracing({
      otlp: receiver.url,
      nodeId: "node-xyz",
      realm: "dev",
      batchDelayMs: 10,
    });
    tracings.push(t);
    t.tracer.startSpan("resource.check").end();
    await t.flush();
    await receiver.waitFor((s) => s.some((x) => x.name === "resource.check"), "the span");
    const span = receiver.spans.find((x) => x.name === "resource.check")!;
    expect(span.resource).toMatchObject({
      "service.name": "macula",
      "service.instance.id": "node-xyz",
      "macula.realm": "dev",
    });
    expect(t.stats()).toMatchObject({ exported: 1, dropped: 0 });
    expect(() => startTracing({ otlp: "ftp://x/v1/traces", nodeId: "n", realm: "r" })).toThrow(
      'trace.otlp: must be an http(s) URL (got "ftp://x/v1/traces")',
    );
  });
});

/**
 * A bus session of a client made by hand, to send what the client library never would; with a
 * certificate of its own (a misbehaving session's certificate is held down, not the others').
 */
async function rawClient(node: Node) {
  const peer = await rawPeer(node.caDir!, "hostile");
  const ep = peer.endpoint;
  const session = await peer.session(node.endpoint.address.port, { onChannel: () => {} });
  const ch = await session.openChannel("client");
  return {
    session,
    write: (frame: Uint8Array) => ch.write(frame),
    close: async () => {
      await session.close("test done").catch(() => {});
      await ep.close();
    },
  };
}

describe("W3C trace context checks", () => {
  const TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  test("traceparent and tracestate: exact W3C format, bounded", () => {
    expect(isTraceparent(TP)).toBe(true);
    expect(isTraceparent(TP.replace("-01", "-00"))).toBe(true);
    for (
      const bad of [
        "",
        TP.slice(0, 54),
        `${TP}0`,
        TP.replace("4bf9", "4BF9"),
        TP.replace("00-", "0-0"),
        `02-${TP.slice(3)}x`, // a later version: `-` after the flags
        `01-${TP.slice(3)}-${"x".repeat(80)}`, // over 128 bytes
      ]
    ) expect(isTraceparent(bad)).toBe(false);
    expect(isTracestate("")).toBe(true);
    expect(isTracestate("rojo=00f067aa0ba902b7, congo=t61rcWkgMzE ,,tenant@sys=v")).toBe(true);
    expect(isTracestate(Array.from({ length: 32 }, (_, i) => `k${i}=v`).join(","))).toBe(true);
    for (
      const bad of [
        "Upper=1",
        "k=",
        "k=a,b",
        "k=1,k=2",
        "k=v=w",
        Array.from({ length: 33 }, (_, i) => `k${i}=v`).join(","),
        `k=${"v".repeat(510)}`,
      ]
    ) expect(isTracestate(bad)).toBe(false);
  });

  test("the client drops and counts what a hostile node sends that is not W3C", () => {
    const t = new ClientTracing(null, () => "me");
    expect(t.check(null, null)).toEqual({ traceparent: undefined, tracestate: undefined });
    expect(t.check(TP, "k=v")).toEqual({ traceparent: TP, tracestate: "k=v" });
    expect(t.bad).toBe(0);
    expect(t.check("bogus", "k=v")).toEqual({ traceparent: undefined, tracestate: undefined });
    expect(t.check(TP, "K=v")).toEqual({ traceparent: TP, tracestate: undefined });
    expect(t.check(null, "k=v")).toEqual({ traceparent: undefined, tracestate: undefined });
    expect(t.check(5, null)).toEqual({ traceparent: undefined, tracestate: undefined });
    expect(t.bad).toBe(4);
    // `tracer: null` never traces; the default follows the global API (no SDK here: none).
    expect(t.tracer()).toBeNull();
    expect(new ClientTracing(undefined, () => "me").tracer()).toBeNull();
  });
});
