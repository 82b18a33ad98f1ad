import { seededRng } from "../../lib/mesh/types.ts";
import { describe, expect, test } from "bun:test";
import { Graph } from "../../lib/mesh/overlay/graph.ts";

/** A deterministic LCG for test graphs (quality is irrelevant here). */

const ring = (n: number) => Array.from({ length: n }, (_, i) => [(i + 1) % n]);
const path = (n: number) => Array.from({ length: n }, (_, i) => (i + 1 < n ? [i + 1] : []));

describe("Graph", () => {
  test("from a Map: symmetrised, de-duplicated, unknown names added, self-loops dropped", () => {
    const g = Graph.from(
      new Map<string, string[]>([
        ["a", ["b", "b", "a"]],
        ["b", ["a"]],
        ["c", ["d"]],
      ]),
    );
    expect(g.n).toBe(4);
    expect(g.names).toEqual(["a", "b", "c", "d"]);
    expect(g.degreeStats()).toEqual({ min: 1, mean: 1, max: 1 });
    expect(g.components()).toEqual({ count: 2, largest: 2 });
    expect(g.diameter()).toMatchObject({ diameter: 1, exact: true, sources: 4 });
  });

  test("paths, rings, stars: exact diameters and degrees", () => {
    expect(Graph.from(path(10)).diameter().diameter).toBe(9);
    expect(Graph.from(ring(10)).diameter().diameter).toBe(5);
    expect(Graph.from(ring(11)).diameter()).toMatchObject({ diameter: 5, meanDistance: 3 });
    const star = Array.from({ length: 20 }, (_, i) => (i === 0 ? [] : [0]));
    const g = Graph.from(star);
    expect(g.degreeStats()).toEqual({ min: 1, mean: 1.9, max: 19 });
    expect(g.diameter().diameter).toBe(2);
    expect(Graph.from([]).components()).toEqual({ count: 0, largest: 0 });
    expect(Graph.from([[], [], []]).components()).toEqual({ count: 3, largest: 1 });
    expect(() => Graph.from([[1], [5]])).toThrow(RangeError);
  });

  test("sampled diameter is a lower bound; the double sweep finds a path's ends", () => {
    const g = Graph.from(path(5000)); // > 2,000 nodes: sampled by default
    const d = g.diameter({ samples: 2 });
    expect(d.exact).toBe(false);
    expect(d.sources).toBe(4);
    expect(d.diameter).toBe(4999); // from any source the farthest node is an end
    const rng = seededRng(1);
    const adj = Array.from({ length: 1500 }, () => [0, 0, 0].map(() => Math.floor(rng() * 1500)));
    const r = Graph.from(adj);
    const exact = r.diameter();
    expect(exact.exact).toBe(true);
    for (const samples of [1, 3, 10]) {
      const s = r.diameter({ samples, rng: seededRng(samples) });
      expect(s.exact).toBe(false);
      expect(s.diameter).toBeLessThanOrEqual(exact.diameter);
    }
    expect(r.diameter({ samples: 1500 }).exact).toBe(true);
  });

  test("10,000 nodes x degree ~16: sampled metrics in well under a second", () => {
    const rng = seededRng(2);
    const n = 10_000;
    const adj = Array.from(
      { length: n },
      () => Array.from({ length: 8 }, () => Math.floor(rng() * n)),
    );
    const t0 = performance.now();
    const g = Graph.from(adj);
    expect(g.components().count).toBe(1);
    expect(g.degreeStats().mean).toBeGreaterThan(15.9);
    const d = g.diameter({ samples: 32 });
    expect(d.diameter).toBeGreaterThanOrEqual(4);
    expect(d.diameter).toBeLessThanOrEqual(6);
    expect(performance.now() - t0).toBeLessThan(2000);
  });
});
