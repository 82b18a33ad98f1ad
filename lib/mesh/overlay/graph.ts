/**
 * Metrics of a whole (simulated) mesh graph: connected components, diameter, degrees. Edges are
 * undirected (a connection carries traffic both ways): the adjacency given is symmetrised and
 * de-duplicated, self-loops dropped. Stored as CSR (offsets + targets in typed arrays), so BFS over
 * 10,000 nodes × degree 16 takes about a millisecond.
 */
import type { Rng } from "../types.ts";

export interface ComponentStats {
  /** Number of connected components (isolated nodes count as one each). */
  count: number;
  /** Nodes in the largest component. */
  largest: number;
}

export interface DiameterResult {
  /**
   * The largest finite BFS distance seen (eccentricities within components; a disconnected graph
   * has infinite diameter in the strict sense — check `components()` first).
   */
  diameter: number;
  /** True when every node was a BFS source: `diameter` is exact. Otherwise a lower bound. */
  exact: boolean;
  /** How many BFS sources were used. */
  sources: number;
  /** Mean distance over the (source, reachable node) pairs seen. */
  meanDistance: number;
}

export interface DegreeStats {
  min: number;
  mean: number;
  max: number;
}

export class Graph {
  readonly n: number;
  private readonly offsets: Int32Array;
  private readonly targets: Int32Array;
  /** Node names, when built from a Map (index → name). */
  readonly names: readonly string[];

  private constructor(n: number, lists: Set<number>[], names: string[]) {
    this.n = n;
    this.names = names;
    this.offsets = new Int32Array(n + 1);
    let total = 0;
    for (let i = 0; i < n; i++) {
      this.offsets[i] = total;
      total += lists[i]!.size;
    }
    this.offsets[n] = total;
    this.targets = new Int32Array(total);
    let p = 0;
    for (let i = 0; i < n; i++) for (const j of lists[i]!) this.targets[p++] = j;
  }

  /**
   * From `Map<name, neighbour names>` (neighbours not in the map's keys are added as nodes) or
   * from `number[][]` (node i's neighbours as indices in [0, n)).
   */
  static from(adj: ReadonlyMap<string, Iterable<string>> | readonly (readonly number[])[]): Graph {
    const lists: Set<number>[] = [];
    const link = (a: number, b: number) => {
      if (a === b) return;
      lists[a]!.add(b);
      lists[b]!.add(a);
    };
    if (Array.isArray(adj)) {
      const arr = adj as readonly (readonly number[])[];
      for (let i = 0; i < arr.length; i++) lists.push(new Set());
      for (let i = 0; i < arr.length; i++) {
        for (const j of arr[i]!) {
          if (!Number.isInteger(j) || j < 0 || j >= arr.length) {
            throw new RangeError(`node ${i}: neighbour ${j} is not in [0, ${arr.length})`);
          }
          link(i, j);
        }
      }
      return new Graph(arr.length, lists, []);
    }
    const map = adj as ReadonlyMap<string, Iterable<string>>;
    const index = new Map<string, number>();
    const names: string[] = [];
    const idx = (name: string) => {
      let i = index.get(name);
      if (i === undefined) {
        i = names.length;
        index.set(name, i);
        names.push(name);
        lists.push(new Set());
      }
      return i;
    };
    for (const name of map.keys()) idx(name);
    for (const [name, ns] of map) for (const m of ns) link(idx(name), idx(m));
    return new Graph(names.length, lists, names);
  }

  degree(i: number): number {
    return this.offsets[i + 1]! - this.offsets[i]!;
  }

  degreeStats(): DegreeStats {
    if (this.n === 0) return { min: 0, mean: 0, max: 0 };
    let min = Infinity;
    let max = 0;
    for (let i = 0; i < this.n; i++) {
      const d = this.degree(i);
      if (d < min) min = d;
      if (d > max) max = d;
    }
    return { min, mean: this.targets.length / this.n, max };
  }

  components(): ComponentStats {
    const seen = new Uint8Array(this.n);
    const queue = new Int32Array(this.n);
    let count = 0;
    let largest = 0;
    for (let s = 0; s < this.n; s++) {
      if (seen[s]) continue;
      count++;
      seen[s] = 1;
      let head = 0;
      let tail = 0;
      queue[tail++] = s;
      while (head < tail) {
        const u = queue[head++]!;
        for (let p = this.offsets[u]!; p < this.offsets[u + 1]!; p++) {
          const v = this.targets[p]!;
          if (!seen[v]) {
            seen[v] = 1;
            queue[tail++] = v;
          }
        }
      }
      if (tail > largest) largest = tail;
    }
    return { count, largest };
  }

  /**
   * The diameter by BFS. With `samples` undefined and n <= 2,000, or `samples >= n`, BFS runs from
   * every node and the result is exact. Otherwise it runs from `samples` (default 32) sources
   * picked with `rng` (default: evenly spaced indices) plus, for each, the farthest node it found
   * (a double sweep, which tends to hit the periphery): the result is then a *lower bound* on the
   * true diameter, `exact: false`.
   */
  diameter(opts: { samples?: number; rng?: Rng } = {}): DiameterResult {
    const n = this.n;
    if (n === 0) return { diameter: 0, exact: true, sources: 0, meanDistance: 0 };
    const dist = new Int32Array(n);
    const queue = new Int32Array(n);
    let best = 0;
    let sumDist = 0;
    let pairs = 0;
    let sources = 0;
    const bfs = (s: number): number => {
      dist.fill(-1);
      dist[s] = 0;
      let head = 0;
      let tail = 0;
      queue[tail++] = s;
      let far = s;
      while (head < tail) {
        const u = queue[head++]!;
        const du = dist[u]!;
        sumDist += du;
        for (let p = this.offsets[u]!; p < this.offsets[u + 1]!; p++) {
          const v = this.targets[p]!;
          if (dist[v] === -1) {
            dist[v] = du + 1;
            queue[tail++] = v;
            far = v;
          }
        }
      }
      pairs += tail - 1;
      sources++;
      if (dist[far]! > best) best = dist[far]!;
      return far;
    };
    const exact = opts.samples === undefined ? n <= 2000 : opts.samples >= n;
    if (exact) {
      for (let s = 0; s < n; s++) bfs(s);
    } else {
      const samples = Math.max(1, Math.min(n, opts.samples ?? 32));
      for (let i = 0; i < samples; i++) {
        const s = opts.rng ? Math.floor(opts.rng() * n) : Math.floor((i * n) / samples);
        bfs(bfs(s));
      }
    }
    return { diameter: best, exact, sources, meanDistance: pairs === 0 ? 0 : sumDist / pairs };
  }
}
