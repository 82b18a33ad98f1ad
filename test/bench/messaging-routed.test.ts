/**
 * The messaging bench's routed rows (bench/messaging/README.md, "Routed"): how the table shows
 * them against NATS's two-server figures, what the runner accepts as "two hops throughout", and
 * one small routed pub/sub and RPC run through three real Macula node processes on 127.0.0.1
 * (A ← B ← C: B forwards every message and call, C keeps a route to B only).
 */
import { describe, expect, test } from "bun:test";
import { resolve } from "node:path";
import {
  checkRouted,
  docBody,
  MACULA,
  type Outcome,
  type Params,
  PUBSUB,
  RPC,
  runPubsub,
  runRpc,
  tableRows,
} from "../../bench/messaging/bench.ts";
import type { NodeStats } from "../../bench/messaging/protocol.ts";

const REPO_ROOT = resolve(import.meta.dirname, "../..");

const params = (o: Partial<Params> = {}): Params => ({
  count: 300,
  warmup: 10,
  rpcCount: 50,
  rpcCalls: 1,
  concurrency: 8,
  idleMs: 1000,
  batch: 64,
  timeoutMs: 60_000,
  ...o,
});

function outcome(name: "nats" | "macula", values: Record<string, number>): Outcome {
  return {
    name,
    status: "ok",
    errors: [],
    values: new Map(
      Object.entries(values).map(([k, v]) => [k, { value: v, unit: "msg/s" as const }]),
    ),
  };
}

function stats(
  o: Partial<NodeStats> & { nodeId: string },
  router: Partial<NodeStats["router"]> = {},
): NodeStats {
  return {
    routes: [],
    lineRetiredBeforeReady: 0,
    lineRetiredAfterReady: 0,
    ...o,
    router: {
      published: 0,
      delivered: 0,
      forwarded: 0,
      calls: 0,
      replies: 0,
      noRoute: 0,
      hopLimit: 0,
      shortcutsOpened: 0,
      viaShortcut: 0,
      ...router,
    },
  };
}

/** A, B and C of a run that took two hops throughout, B having forwarded `relayed` of each. */
const line = (relayed: number) => [
  stats({ nodeId: "A", routes: ["B"] }),
  stats({ nodeId: "B", routes: ["A", "C"] }, { forwarded: relayed, calls: relayed }),
  stats({ nodeId: "C", routes: ["B"], lineRetiredBeforeReady: 1 }),
];

const routedPubsub = PUBSUB.find((w) => w.nodes === 3)!;
const routedRpc = RPC.find((w) => w.nodes === 3)!;

describe("messaging bench: the routed rows", () => {
  test("the routed workloads exist, pub/sub and RPC, each against a two-node baseline", () => {
    expect(routedPubsub.baselineKey).toBe("pubsub_1to1_128B_2nodes");
    expect(routedRpc.baselineKey).toBe("rpc_128B_2nodes");
    expect(PUBSUB.some((w) => w.key === routedPubsub.baselineKey)).toBe(true);
    expect(RPC.some((w) => w.key === routedRpc.baselineKey)).toBe(true);
  });

  test("the nats cells of the † rows are its two-server figures, and macula gain is against them", () => {
    const nats = outcome("nats", {
      pubsub_1to1_128B_2nodes_delivered: 1000,
      pubsub_1to1_128B_2nodes_lost: 3,
      rpc_128B_2nodes_p50: 400,
    });
    const macula = outcome("macula", {
      pubsub_1to1_128B_2nodes_delivered: 900,
      pubsub_1to1_128B_3nodes_routed_delivered: 800,
      pubsub_1to1_128B_3nodes_routed_lost: 0,
      rpc_128B_3nodes_routed_p50: 500,
    });
    const { headers, rows } = tableRows([nats, macula], params());
    expect(headers).toEqual([
      "workload",
      "unit",
      "nats",
      "nats lost",
      "macula",
      "macula lost",
      "macula gain",
    ]);
    const row = (label: string) => rows.find((r) => r[0] === label);
    expect(row("pub/sub 1→1, 128 B, across two nodes")).toEqual([
      "pub/sub 1→1, 128 B, across two nodes",
      "msg/s",
      "1000",
      "3",
      "900",
      "—",
      "0.90×",
    ]);
    expect(row("pub/sub 1→1, 128 B, across three nodes (routed) †")).toEqual([
      "pub/sub 1→1, 128 B, across three nodes (routed) †",
      "msg/s",
      "1000",
      "3",
      "800",
      "0",
      "0.80×",
    ]);
    // Latency: nats ÷ macula.
    expect(row("RPC 128 B sequential, across three nodes (routed), p50 †")?.slice(2)).toEqual([
      "400",
      "—",
      "500",
      "—",
      "0.80×",
    ]);
  });

  test("the docs section explains the † rows and says what B forwarded", () => {
    const macula = outcome("macula", {
      pubsub_1to1_128B_3nodes_routed_delivered: 800,
      pubsub_1to1_128B_3nodes_routed_forwarded_by_b: 300,
      rpc_128B_3nodes_routed_calls_forwarded_by_b: 60,
    });
    const body = docBody([outcome("nats", {}), macula], params(), "- Machine: test");
    expect(body).toContain("| pub/sub 1→1, 128 B, across three nodes (routed) † | msg/s |");
    expect(body).toContain("the `nats` cells of these rows are its two-server route figures");
    expect(body).toContain(
      'Node B forwarded, in this run: 300 FWDs for "pub/sub 1→1, 128 B, across three nodes ' +
        '(routed)"; 60 calls for "RPC 128 B sequential, across three nodes (routed)".',
    );
  });

  test("a run is two hops throughout only with no direct route, no shortcut, and everything through B", () => {
    expect(checkRouted(line(100), "messages", 100)).toBe(100);
    expect(checkRouted(line(120), "calls", 110)).toBe(120);
    const [a, b, c] = line(100) as [NodeStats, NodeStats, NodeStats];
    expect(() => checkRouted([a, b, { ...c, lineRetiredAfterReady: 1 }], "messages", 100)).toThrow(
      /direct route between A and C came up during the run/,
    );
    expect(() => checkRouted([a, b, { ...c, routes: ["B", "A"] }], "messages", 100)).toThrow(
      /C had routes to A besides B/,
    );
    expect(() =>
      checkRouted([{ ...a, router: { ...a.router, viaShortcut: 1 } }, b, c], "messages", 100)
    ).toThrow(/shortcut/);
    expect(() => checkRouted(line(99), "messages", 100)).toThrow(/B forwarded 99 messages/);
    expect(() => checkRouted([a, undefined, c], "calls", 1)).toThrow(/B wrote no stats line/);
  });

  test(
    "three real nodes in a line: B forwards every message and call from A to C",
    async () => {
      const p = params();
      const out = outcome("macula", {});
      await runPubsub(MACULA, routedPubsub, p, REPO_ROOT, out);
      expect(out.values.get("pubsub_1to1_128B_3nodes_routed_lost")?.value).toBe(0);
      expect(out.values.get("pubsub_1to1_128B_3nodes_routed_forwarded_by_b")?.value)
        .toBeGreaterThanOrEqual(p.count);
      expect(out.values.get("pubsub_1to1_128B_3nodes_routed_delivered")?.value).toBeGreaterThan(0);
      await runRpc(MACULA, routedRpc, p, REPO_ROOT, out);
      expect(out.values.get("rpc_128B_3nodes_routed_calls_forwarded_by_b")?.value)
        .toBeGreaterThanOrEqual(p.warmup + p.rpcCount);
      expect(out.values.get("rpc_128B_3nodes_routed_p50")?.value).toBeGreaterThan(0);
    },
    120_000,
  );
});
