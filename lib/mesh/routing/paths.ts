/**
 * Paths to far nodes over the overlay (docs/routing.md): a distance-vector table. Each neighbour
 * (a route, seen here as an opaque link) offers a cost to reach an origin node: hops, and the sum
 * of the RTTs along its path. The best offer is the next hop toward that origin. Pure state, no
 * IO, no clock: the router (lib/messaging) feeds it offers and withdrawals and floods what
 * changed.
 *
 * - Best: fewest hops, then the lowest RTT sum, then the lower link id (each end is
 *   deterministic). Hops first: a path's hop count changes only when the overlay does, so a new
 *   version of a record, flooded again, offers every node the same counts and moves no next hop
 *   off a shorter path. With RTT first, every re-flood carried fresh RTT samples, next hops moved
 *   on jitter, and while they moved, paths looped (on 54 real nodes, 45 of 54 paths to a node that
 *   had just announced a procedure looped for a few ms; calls in that window failed). Among equal
 *   hop counts the lower RTT wins: such a switch cannot form a loop.
 * - A link being let go (`retire`) offers its paths as a last resort: any other offer beats it,
 *   so traffic moves off it at once, but an origin it alone reaches stays reachable until the
 *   link is gone (docs/routing.md, "Letting a route go").
 * - `MAX_HOPS` is infinity: an offer at or past it is a withdrawal. With poisoned reverse (a node
 *   offers infinity to its own next hop) two-node loops cannot form; longer transient loops
 *   count up to `MAX_HOPS` and end, and every forwarded frame carries a hop limit as well.
 *
 * @example
 * ```ts
 * import { PathTable } from "./paths.ts";
 * const t = new PathTable();
 * t.offer("far", "route:1", 3, 9);   // true: a first path
 * t.offer("far", "route:2", 2, 12);  // true: fewer hops win
 * t.offer("far", "route:3", 2, 1.5); // true: same hops, the lower RTT sum wins
 * t.best("far");                      // { link: "route:3", hops: 2, rtt: 1.5 }
 * t.dropLink("route:3");              // ["far"]: now via route:2
 * ```
 */

/** Hops at which an origin counts as unreachable (RIP's 16 is too small for a 10,000-node mesh's transient paths). */
export const MAX_HOPS = 32;

/** The best way to an origin. */
export interface Path {
  readonly link: string;
  readonly hops: number;
  /** Sum of the RTTs along the path, ms. */
  readonly rtt: number;
}

/** One origin's offers, in parallel arrays (a table per node × origins: kept small). */
interface Entry {
  readonly links: string[];
  readonly hops: number[];
  readonly rtt: number[];
  best: Path | undefined;
}

/** Origin id → the offers of each neighbour, and the best of them. */
export class PathTable {
  readonly #origins = new Map<string, Entry>();
  /** link → origins it offers (for `dropLink`). */
  readonly #byLink = new Map<string, Set<string>>();
  /** Links being let go: their offers lose to any other (`retire`). */
  readonly #retiring = new Set<string>();

  /** Origins with at least one offer. */
  get size(): number {
    return this.#origins.size;
  }

  /** The next hop toward `origin`, if any neighbour offers a path. */
  best(origin: string): Path | undefined {
    return this.#origins.get(origin)?.best;
  }

  /**
   * The next hop toward `origin` for a frame that came in over `from`: the best path, or, when
   * that leads back over `from` (a transient loop while paths settle after a change), the best of
   * the other offers. With no other offer, back over `from` after all: the node there is about to
   * hear this node's withdrawal and take another path, and the frame's hop limit bounds the rest.
   */
  nextHop(origin: string, from: string | undefined): Path | undefined {
    const e = this.#origins.get(origin);
    if (!e?.best || e.best.link !== from) return e?.best;
    let alt: Path | undefined;
    for (let i = 0; i < e.links.length; i++) {
      const link = e.links[i]!, hops = e.hops[i]!, rtt = e.rtt[i]!;
      if (link !== from && (!alt || this.#better(link, hops, rtt, alt))) alt = { link, hops, rtt };
    }
    return alt ?? e.best;
  }

  /** How many neighbours offer a path to `origin`. */
  offers(origin: string): number {
    return this.#origins.get(origin)?.links.length ?? 0;
  }

  /**
   * `link` offers `origin` at `hops` (already counting the hop to `link`) and `rtt`. Returns true
   * when the best hop count or next hop changed (what the router floods on).
   */
  offer(origin: string, link: string, hops: number, rtt: number): boolean {
    if (hops >= MAX_HOPS) return this.withdraw(origin, link);
    let e = this.#origins.get(origin);
    if (!e) this.#origins.set(origin, e = { links: [], hops: [], rtt: [], best: undefined });
    const i = e.links.indexOf(link);
    if (i >= 0) {
      if (e.hops[i] === hops && e.rtt[i] === rtt) return false;
      e.hops[i] = hops;
      e.rtt[i] = rtt;
    } else {
      e.links.push(link);
      e.hops.push(hops);
      e.rtt.push(rtt);
      let mine = this.#byLink.get(link);
      if (!mine) this.#byLink.set(link, mine = new Set());
      mine.add(origin);
    }
    const b = e.best;
    // Better than the best: the new best. The best itself got worse: look again. Else no change.
    if (!b || this.#better(link, hops, rtt, b)) return this.#set(e, { link, hops, rtt });
    if (b.link === link) return this.#rebest(e);
    return false;
  }

  /** `link` no longer offers `origin`. True when the best changed (or the origin is now unreachable). */
  withdraw(origin: string, link: string): boolean {
    const e = this.#origins.get(origin);
    if (!e || !remove(e, link)) return false;
    this.#byLink.get(link)?.delete(origin);
    if (e.links.length === 0) {
      this.#origins.delete(origin);
      return true;
    }
    return e.best?.link === link ? this.#rebest(e) : false;
  }

  /**
   * `link` is being let go: its offers lose to any other from now on (an origin only it offers
   * keeps it). Returns the origins whose best changed.
   */
  retire(link: string): string[] {
    if (this.#retiring.has(link)) return [];
    this.#retiring.add(link);
    const changed: string[] = [];
    for (const origin of this.#byLink.get(link) ?? []) {
      const e = this.#origins.get(origin);
      if (e?.best?.link === link && this.#rebest(e)) changed.push(origin);
    }
    return changed;
  }

  /** A neighbour went: the origins whose best changed (some maybe now unreachable). */
  dropLink(link: string): string[] {
    const mine = this.#byLink.get(link);
    this.#byLink.delete(link);
    this.#retiring.delete(link);
    const changed: string[] = [];
    for (const origin of mine ?? []) {
      const e = this.#origins.get(origin);
      if (!e || !remove(e, link)) continue;
      if (e.links.length === 0) {
        this.#origins.delete(origin);
        changed.push(origin);
      } else if (e.best?.link === link && this.#rebest(e)) changed.push(origin);
    }
    return changed;
  }

  /** Forgets every offer for `origin` (it died or left). */
  forget(origin: string): void {
    const e = this.#origins.get(origin);
    if (!e) return;
    for (const link of e.links) this.#byLink.get(link)?.delete(origin);
    this.#origins.delete(origin);
  }

  #rebest(e: Entry): boolean {
    let best: Path | undefined;
    for (let i = 0; i < e.links.length; i++) {
      const link = e.links[i]!, hops = e.hops[i]!, rtt = e.rtt[i]!;
      if (!best || this.#better(link, hops, rtt, best)) best = { link, hops, rtt };
    }
    return this.#set(e, best);
  }

  /** Whether an offer beats `b`: not being let go, then fewer hops, a lower RTT sum, the lower link id. */
  #better(link: string, hops: number, rtt: number, b: Path): boolean {
    if (this.#retiring.size > 0) {
      const r = this.#retiring.has(link), rb = this.#retiring.has(b.link);
      if (r !== rb) return rb;
    }
    return better(link, hops, rtt, b);
  }

  /** Sets the best; true when its link or hop count changed (what neighbours must hear). */
  #set(e: Entry, best: Path | undefined): boolean {
    const old = e.best;
    e.best = best;
    return !old || !best || old.link !== best.link || old.hops !== best.hops;
  }
}

/** Removes `link`'s offer from `e`; false when it had none. */
function remove(e: Entry, link: string): boolean {
  const i = e.links.indexOf(link);
  if (i < 0) return false;
  const last = e.links.length - 1;
  e.links[i] = e.links[last]!;
  e.hops[i] = e.hops[last]!;
  e.rtt[i] = e.rtt[last]!;
  e.links.pop();
  e.hops.pop();
  e.rtt.pop();
  return true;
}

/** Whether an offer beats `b`: fewer hops, then a lower RTT sum, then the lower link id. */
function better(link: string, hops: number, rtt: number, b: Path): boolean {
  return hops < b.hops || (hops === b.hops && (rtt < b.rtt || (rtt === b.rtt && link < b.link)));
}
