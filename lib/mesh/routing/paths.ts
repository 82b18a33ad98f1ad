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

/**
 * One origin's offers, `STRIDE` slots each in one array: link, hops, RTT sum, and `since`, which
 * orders the offers links started (what `dropLink` and `retire` go by); and the best of them.
 * One array per origin and no per-link index: a node holds an entry per origin it reaches (a
 * simulated 10,000-node mesh holds a million), and each offer touches as little memory as can be.
 */
interface Entry {
  /** The origin, as first offered (the one string the table keeps of it). */
  readonly origin: string;
  readonly offers: (string | number)[];
  /** The best offer: its link (undefined: none), hops and RTT sum. */
  link: string | undefined;
  hops: number;
  rtt: number;
  /** The best as `best` hands it out: made when first asked for after a change. */
  path: Path | undefined;
}

/** An origin's place in a `PathTable` (`slot`, `offerTo`); opaque. */
export interface PathSlot {
  readonly origin: string;
}

/** Slots per offer in `Entry.offers`: link, hops, rtt, since. */
const STRIDE = 4;

function entry(origin: string): Entry {
  return { origin, offers: [], link: undefined, hops: 0, rtt: 0, path: undefined };
}

/** The index of `link`'s offer in `e.offers`, or -1. */
function find(e: Entry, link: string): number {
  const o = e.offers;
  for (let i = 0; i < o.length; i += STRIDE) if (o[i] === link) return i;
  return -1;
}

/** The best path of `e`, or undefined. */
function bestOf(e: Entry): Path | undefined {
  const link = e.link;
  if (link === undefined) return undefined;
  return e.path ??= { link, hops: e.hops, rtt: e.rtt };
}

/** Origin id → the offers of each neighbour, and the best of them. */
export class PathTable {
  readonly #origins = new Map<string, Entry>();
  /** Links being let go: their offers lose to any other (`retire`). */
  readonly #retiring = new Set<string>();
  /** Stamps offers as links start them (the `since` slot of `Entry.offers`). */
  #since = 0;

  /** Origins with at least one offer. */
  get size(): number {
    return this.#origins.size;
  }

  /** The next hop toward `origin`, if any neighbour offers a path. */
  best(origin: string): Path | undefined {
    const e = this.#origins.get(origin);
    return e === undefined ? undefined : bestOf(e);
  }

  /**
   * The next hop toward `origin` for a frame that came in over `from`: the best path, or, when
   * that leads back over `from` (a transient loop while paths settle after a change), the best of
   * the other offers. With no other offer, back over `from` after all: the node there is about to
   * hear this node's withdrawal and take another path, and the frame's hop limit bounds the rest.
   */
  nextHop(origin: string, from: string | undefined): Path | undefined {
    const e = this.#origins.get(origin);
    if (e === undefined) return undefined;
    if (e.link === undefined || e.link !== from) return bestOf(e);
    let alt: Path | undefined;
    const o = e.offers;
    for (let i = 0; i < o.length; i += STRIDE) {
      const link = o[i] as string, hops = o[i + 1] as number, rtt = o[i + 2] as number;
      if (link !== from && (!alt || this.#better(link, hops, rtt, alt.link, alt.hops, alt.rtt))) {
        alt = { link, hops, rtt };
      }
    }
    return alt ?? bestOf(e);
  }

  /** How many neighbours offer a path to `origin`. */
  offers(origin: string): number {
    return (this.#origins.get(origin)?.offers.length ?? 0) / STRIDE;
  }

  /**
   * `link` offers `origin` at `hops` (already counting the hop to `link`) and `rtt`. Returns true
   * when the best hop count or next hop changed (what the router floods on).
   */
  offer(origin: string, link: string, hops: number, rtt: number): boolean {
    if (hops >= MAX_HOPS) return this.withdraw(origin, link);
    let e = this.#origins.get(origin);
    if (!e) this.#origins.set(origin, e = entry(origin));
    return this.#offer(e, link, hops, rtt);
  }

  /**
   * `origin`'s slot, for a caller that keeps a record per origin anyway: `offerTo` with it is
   * `offer` without looking the origin up (the cost of an offer in a large mesh, where every
   * origin's entry is cold). A slot stays valid whatever happens to the origin's offers.
   */
  slot(origin: string): PathSlot {
    return this.#origins.get(origin) ?? entry(origin);
  }

  /** `offer`, for the origin of `slot`. */
  offerTo(slot: PathSlot, link: string, hops: number, rtt: number): boolean {
    const e = slot as Entry;
    if (hops >= MAX_HOPS) return this.withdraw(e.origin, link);
    if (e.offers.length === 0) {
      // Not in the table (no offer yet, or none left): entered again, unless the origin's offers
      // went to another entry meanwhile.
      const cur = this.#origins.get(e.origin);
      if (cur !== undefined && cur !== e) return this.#offer(cur, link, hops, rtt);
      if (cur === undefined) this.#origins.set(e.origin, e);
    }
    return this.#offer(e, link, hops, rtt);
  }

  #offer(e: Entry, link: string, hops: number, rtt: number): boolean {
    const o = e.offers;
    const i = find(e, link);
    if (i >= 0) {
      if (o[i + 1] === hops && o[i + 2] === rtt) return false;
      o[i + 1] = hops;
      o[i + 2] = rtt;
    } else {
      o.push(link, hops, rtt, this.#since++);
    }
    // Better than the best: the new best. The best itself got worse: look again. Else no change.
    const b = e.link;
    if (b === undefined || this.#better(link, hops, rtt, b, e.hops, e.rtt)) {
      return this.#set(e, link, hops, rtt);
    }
    if (b === link) return this.#rebest(e);
    return false;
  }

  /** `link` no longer offers `origin`. True when the best changed (or the origin is now unreachable). */
  withdraw(origin: string, link: string): boolean {
    const e = this.#origins.get(origin);
    if (!e || !remove(e, link)) return false;
    if (e.offers.length === 0) {
      this.#empty(e);
      return true;
    }
    return e.link === link ? this.#rebest(e) : false;
  }

  /**
   * `link` is being let go: its offers lose to any other from now on (an origin only it offers
   * keeps it). Returns the origins whose best changed.
   */
  retire(link: string): string[] {
    if (this.#retiring.has(link)) return [];
    this.#retiring.add(link);
    const changed: string[] = [];
    for (const e of this.#offeredBy(link)) {
      if (e.link === link && this.#rebest(e)) changed.push(e.origin);
    }
    return changed;
  }

  /**
   * A neighbour went: the origins whose best changed (some maybe now unreachable). A scan of the
   * table (origins × offers each): routes close seldom, offers arrive all the time, so no per-link
   * index is kept up to date on every offer for it.
   */
  dropLink(link: string): string[] {
    this.#retiring.delete(link);
    const changed: string[] = [];
    for (const e of this.#offeredBy(link)) {
      remove(e, link);
      if (e.offers.length === 0) {
        this.#empty(e);
        changed.push(e.origin);
      } else if (e.link === link && this.#rebest(e)) changed.push(e.origin);
    }
    return changed;
  }

  /** Forgets every offer for `origin` (it died or left). */
  forget(origin: string): void {
    const e = this.#origins.get(origin);
    if (!e) return;
    e.offers.length = 0;
    this.#empty(e);
  }

  /** `e` has no offer left: out of the table, and a slot held for it reads as a new one. */
  #empty(e: Entry): void {
    this.#origins.delete(e.origin);
    e.link = undefined;
    e.path = undefined;
  }

  /** The entries `link` offers, in the order it started offering them. */
  #offeredBy(link: string): Entry[] {
    const found: Entry[] = [];
    const since: number[] = [];
    for (const e of this.#origins.values()) {
      const i = find(e, link);
      if (i < 0) continue;
      found.push(e);
      since.push(e.offers[i + 3] as number);
    }
    if (found.length < 2) return found;
    const order = found.map((_, i) => i).sort((a, b) => since[a]! - since[b]!);
    return order.map((i) => found[i]!);
  }

  /** Looks for the best of `e`'s offers again (it has at least one). */
  #rebest(e: Entry): boolean {
    const o = e.offers;
    let bi = 0;
    for (let i = STRIDE; i < o.length; i += STRIDE) {
      const link = o[i] as string, hops = o[i + 1] as number, rtt = o[i + 2] as number;
      if (
        this.#better(link, hops, rtt, o[bi] as string, o[bi + 1] as number, o[bi + 2] as number)
      ) {
        bi = i;
      }
    }
    return this.#set(e, o[bi] as string, o[bi + 1] as number, o[bi + 2] as number);
  }

  /** Whether an offer beats the one of link `bl`: not being let go, then fewer hops, a lower RTT sum, the lower link id. */
  #better(link: string, hops: number, rtt: number, bl: string, bh: number, br: number): boolean {
    if (this.#retiring.size > 0) {
      const r = this.#retiring.has(link), rb = this.#retiring.has(bl);
      if (r !== rb) return rb;
    }
    return hops < bh || (hops === bh && (rtt < br || (rtt === br && link < bl)));
  }

  /** Sets the best; true when its link or hop count changed (what neighbours must hear). */
  #set(e: Entry, link: string, hops: number, rtt: number): boolean {
    const changed = e.link === undefined || e.link !== link || e.hops !== hops;
    if (changed || e.rtt !== rtt) {
      e.link = link;
      e.hops = hops;
      e.rtt = rtt;
      e.path = undefined;
    }
    return changed;
  }
}

/** Removes `link`'s offer from `e` (the last offer takes its place); false when it had none. */
function remove(e: Entry, link: string): boolean {
  const i = find(e, link);
  if (i < 0) return false;
  const o = e.offers;
  const last = o.length - STRIDE;
  for (let j = 0; j < STRIDE; j++) o[i + j] = o[last + j]!;
  o.length = last;
  return true;
}
