/**
 * A whole overlay mesh in one process, for the simulator (`macula sim membership` builds the
 * overlay over its final view) and tests: every node's `Overlay` knows
 * the members; planned connects become links on both ends, planned disconnects close them on both
 * ends; rounds repeat until every plan is empty. Sans-IO, deterministic for given ids and seeds.
 */
import { SimError } from "./errors.ts";
import { Graph, idHex, Overlay, type Rng, seededRng, SortedMembers } from "../mesh/mod.ts";

/** 32 random bytes from `rng` (an id for simulations). */
export function randomId(rng: Rng): Uint8Array {
  const id = new Uint8Array(32);
  for (let i = 0; i < 32; i++) id[i] = Math.floor(rng() * 256);
  return id;
}

/** Options: overlay parameters for every node. */
export interface OverlayMeshOptions {
  k?: number;
  near?: number;
  maxConnections?: number;
}

export class OverlayMesh {
  readonly nodes: Overlay[];
  readonly alive: boolean[];
  readonly adj: Set<number>[];
  private readonly index = new Map<string, number>();
  rounds = 0;
  connects = 0;
  disconnects = 0;

  /**
   * `ids`: the nodes; `bulk`: start every node from one shared member list instead of n
   * `memberUp` calls each (what makes 10,000 nodes affordable).
   */
  constructor(readonly ids: Uint8Array[], seed: number, bulk = true, o: OverlayMeshOptions = {}) {
    this.ids.forEach((id, i) => this.index.set(idHex(id), i));
    this.alive = this.ids.map(() => true);
    this.adj = this.ids.map(() => new Set<number>());
    const table = bulk
      ? SortedMembers.from(this.ids.map((id, i) => ({ id, addr: `n${i}` })))
      : undefined;
    this.nodes = this.ids.map((self, i) => {
      const overlay = new Overlay({
        self,
        rng: seededRng(seed, "overlay", i),
        members: table,
        ...o,
      });
      if (!bulk) this.ids.forEach((id, j) => overlay.memberUp(id, `n${j}`));
      return overlay;
    });
  }

  private idx(id: Uint8Array): number {
    return this.index.get(idHex(id))!;
  }

  private close(i: number, j: number): void {
    if (!this.adj[i]!.delete(j)) return;
    this.adj[j]!.delete(i);
    this.nodes[i]!.linkDown(this.ids[j]!);
    this.nodes[j]!.linkDown(this.ids[i]!);
  }

  /** Runs plan rounds until all plans are empty; returns the number of rounds. */
  settle(maxRounds = 200): number {
    for (let r = 0; r < maxRounds; r++) {
      let actions = 0;
      for (let i = 0; i < this.nodes.length; i++) {
        if (!this.alive[i]) continue;
        const p = this.nodes[i]!.drain();
        actions += p.connect.length + p.disconnect.length;
        for (const c of p.connect) {
          const j = Number(c.addr.slice(1));
          if (!this.alive[j]) {
            this.nodes[i]!.linkDown(c.id); // dial failed
          } else if (!this.adj[i]!.has(j)) {
            this.adj[i]!.add(j);
            this.adj[j]!.add(i);
            this.connects++;
            this.nodes[i]!.linkUp(c.id, "out");
            this.nodes[j]!.linkUp(this.ids[i]!, "in");
          }
        }
        for (const d of p.disconnect) {
          this.close(i, this.idx(d));
          this.disconnects++;
        }
      }
      this.rounds++;
      if (actions === 0) return r;
    }
    throw new SimError(`no quiescence after ${maxRounds} rounds`);
  }

  /** Kills `victims`: their links close and every survivor is told (memberDown or a new view). */
  kill(victims: number[], bulk: boolean): void {
    for (const v of victims) this.alive[v] = false;
    const table = bulk
      ? SortedMembers.from(
        this.ids.flatMap((id, i) => (this.alive[i] ? [{ id, addr: `n${i}` }] : [])),
      )
      : undefined;
    for (let i = 0; i < this.nodes.length; i++) {
      if (!this.alive[i]) continue;
      if (table) this.nodes[i]!.syncMembers(table);
      else for (const v of victims) this.nodes[i]!.memberDown(this.ids[v]!);
    }
    for (const v of victims) for (const j of [...this.adj[v]!]) this.close(v, j);
  }

  graph(): Graph {
    const alive: number[] = [];
    const map = new Map<number, number>();
    this.alive.forEach((a, i) => {
      if (a) {
        map.set(i, alive.length);
        alive.push(i);
      }
    });
    return Graph.from(alive.map((i) => [...this.adj[i]!].map((j) => map.get(j)!)));
  }
}
