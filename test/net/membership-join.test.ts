/**
 * Joins on real nodes (docs/membership.md, "Settling"): 8 nodes over QUIC on 127.0.0.1 join one
 * seed in sequence (overlay k=2) and every node comes to hold all 8 members live, with the
 * periodic anti-entropy sync 10 minutes away — so what converges them is the settling sync and
 * the pull from an unknown sender, not the periodic sync. The second start starves gossip (one
 * transmission per update), where nearly every join misses someone. Every wait is bounded and
 * event-driven (`waitForMembers`); the bound (45 s) is far below the first periodic sync (at
 * least 5 minutes), and the test asserts who is known, never how fast.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { MembershipConfig } from "../../lib/mesh/mod.ts";
import type { Node } from "../../lib/node/node.ts";
import { joinOneSeed } from "../helpers/mesh.ts";

const N = 8;
let dir = "";
let nodes: Node[] = [];

afterEach(async () => {
  await Promise.allSettled(nodes.map((n) => n.stop()));
  nodes = [];
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = "";
});

/** N nodes, each joining the first, one after another. */
async function start(membership: Partial<MembershipConfig>): Promise<Node[]> {
  dir = mkdtempSync(join(tmpdir(), "macula-join-"));
  return await joinOneSeed(dir, N, () => ({ overlay: { k: 2 }, membership }), nodes);
}

/** Every node holds every node live (alive, or suspect on a loaded machine). */
async function allKnowAll(ns: Node[]): Promise<void> {
  await Promise.all(ns.map((n) => n.waitForMembers(N, 45_000)));
  const ids = ns.map((n) => n.nodeId).sort();
  for (const n of ns) {
    const live = n.membership.core.members()
      .filter((m) => m.state === "alive" || m.state === "suspect")
      .map((m) => m.id)
      .sort();
    expect(live).toEqual(ids);
  }
}

describe("membership: 8 real nodes joining one seed", () => {
  test("all 8 hold all 8 live without the periodic sync (it is 10 minutes away)", async () => {
    const ns = await start({ syncIntervalMs: 600_000 });
    await allKnowAll(ns);
  }, 90_000);

  test(
    "with gossip starved (one transmission per update) the repair alone brings all 8 to all 8",
    async () => {
      const ns = await start({ syncIntervalMs: 600_000, retransmitMult: 1 });
      await allKnowAll(ns);
    },
    90_000,
  );
});
