/**
 * Whole-mesh tests: build the overlay of 1,000 and 10,000 random nodes (every node's Overlay knows
 * all members; planned connects become links on both ends; planned disconnects close them on both
 * ends; rounds repeat until every plan is empty) and measure the resulting graph.
 */
import { describe, expect, test } from "bun:test";
import { type Rng, seededRng } from "../../lib/mesh/types.ts";
import { OverlayMesh, randomId } from "../../lib/sim/overlay.ts";
import { Graph } from "../../lib/mesh/overlay/graph.ts";

const testRng = (seed: number): Rng => seededRng(seed);

class Mesh extends OverlayMesh {
  constructor(n: number, seed: number, bulk: boolean) {
    const rng = testRng(seed);
    super(Array.from({ length: n }, () => randomId(rng)), seed, bulk);
  }

  /** Every node's links agree with the mesh and every node has k neighbours, near ones linked. */
  check(k: number): void {
    for (let i = 0; i < this.nodes.length; i++) {
      if (!this.alive[i]) continue;
      const o = this.nodes[i]!;
      const links = o.links();
      expect(links.length).toBe(this.adj[i]!.size);
      expect(links.length).toBeLessThanOrEqual(o.maxConnections);
      const ns = o.neighbours();
      expect(ns.length).toBe(k);
      expect(ns.every((n) => n.linked)).toBe(true);
    }
  }
}

function report(label: string, mesh: Mesh, g: Graph, d: ReturnType<Graph["diameter"]>): void {
  const c = g.components();
  const deg = g.degreeStats();
  console.log(
    `${label}: n=${g.n} rounds=${mesh.rounds} connects=${mesh.connects} disconnects=${mesh.disconnects} ` +
      `components=${c.count} largest=${c.largest} degree min/mean/max=${deg.min}/` +
      `${deg.mean.toFixed(2)}/${deg.max} diameter=${d.diameter}${
        d.exact ? "" : " (lower bound)"
      } ` +
      `mean distance=${d.meanDistance.toFixed(2)}`,
  );
}

describe("overlay of a whole mesh", () => {
  test("1,000 nodes (each fed all members by memberUp): connected, degree <= 16, diameter <= 6", () => {
    const mesh = new Mesh(1000, 1, false);
    mesh.settle();
    mesh.check(8);
    const g = mesh.graph();
    const d = g.diameter(); // exact: BFS from all 1,000 nodes
    report("1k", mesh, g, d);
    expect(g.components()).toEqual({ count: 1, largest: 1000 });
    expect(g.degreeStats().max).toBeLessThanOrEqual(16);
    expect(g.degreeStats().min).toBeGreaterThanOrEqual(8);
    expect(d.exact).toBe(true);
    expect(d.diameter).toBeLessThanOrEqual(6);

    // Quiescent: another round changes nothing.
    for (const o of mesh.nodes) expect(o.drain()).toEqual({ connect: [], disconnect: [] });

    // Kill 10%, let survivors repair.
    const rng = testRng(99);
    const victims = [...new Set(Array.from({ length: 100 }, () => Math.floor(rng() * 1000)))];
    while (victims.length < 100) {
      const v = Math.floor(rng() * 1000);
      if (!victims.includes(v)) victims.push(v);
    }
    mesh.kill(victims, false);
    const before = mesh.graph();
    mesh.rounds = 0;
    mesh.settle();
    mesh.check(8);
    const g2 = mesh.graph();
    const d2 = g2.diameter();
    report("1k after 10% killed", mesh, g2, d2);
    console.log(`  before repair: components=${before.components().count}`);
    expect(g2.components()).toEqual({ count: 1, largest: 900 });
    expect(g2.degreeStats().max).toBeLessThanOrEqual(16);
    expect(d2.diameter).toBeLessThanOrEqual(6);
  });

  test(
    "10,000 nodes (shared member table): connected, degree <= 16, diameter <= 7 (sampled)",
    () => {
      const mesh = new Mesh(10_000, 2, true);
      mesh.settle();
      mesh.check(8);
      const g = mesh.graph();
      const d = g.diameter({ samples: 64, rng: testRng(5) });
      report("10k", mesh, g, d);
      expect(g.components()).toEqual({ count: 1, largest: 10_000 });
      expect(g.degreeStats().max).toBeLessThanOrEqual(16);
      expect(d.exact).toBe(false);
      expect(d.diameter).toBeLessThanOrEqual(7);

      const rng = testRng(77);
      const victims = new Set<number>();
      while (victims.size < 1000) victims.add(Math.floor(rng() * 10_000));
      mesh.kill([...victims], true);
      mesh.rounds = 0;
      mesh.settle();
      mesh.check(8);
      const g2 = mesh.graph();
      const d2 = g2.diameter({ samples: 64, rng: testRng(6) });
      report("10k after 10% killed", mesh, g2, d2);
      expect(g2.components()).toEqual({ count: 1, largest: 9000 });
      expect(g2.degreeStats().max).toBeLessThanOrEqual(16);
      expect(d2.diameter).toBeLessThanOrEqual(7);
    },
    120_000,
  );
});
