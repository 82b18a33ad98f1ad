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
 * One neighbour's offers to every origin in the table, `STRIDE` numbers per origin (at the
 * origin's index) in one typed array: hops, RTT sum, and `since`, which orders the offers the
 * link started (what `dropLink` and `retire` go by; 0: no offer). Kept per link, not per origin:
 * a node hears a run of offers from one route at a time (a simulated 10,000-node mesh holds a
 * million origin entries), so the array is warm and each offer touches one slot of it, with no
 * search among the origin's other offers.
 */
interface LinkOffers {
  readonly id: string;
  /** Being let go: its offers lose to any other (`retire`). */
  retiring: boolean;
  offers: Float64Array;
}

/**
 * One origin: its place in every link's offers, how many links offer it, and the best. Six
 * fields: as small as the router's record of the origin, made just before it, so the two share
 * a size class and sit side by side in memory (one cache miss for both, per offer).
 */
interface Entry {
  /** The origin, as first offered (the one string the table keeps of it). */
  readonly origin: string;
  /** Its index in `LinkOffers.offers` while in the table, else -1. */
  index: number;
  /** Links offering it. */
  count: number;
  /** The best offer: its link (undefined: none), hops and RTT sum. */
  best: LinkOffers | undefined;
  hops: number;
  rtt: number;
}

/** An origin's place in a `PathTable` (`slot`, `offerTo`); opaque. */
export interface PathSlot {
  readonly origin: string;
}

/** Numbers per origin in `LinkOffers.offers`: hops, rtt, since. */
const STRIDE = 3;
/**
 * Origins a link's offers have room for at first (3 KB; doubled as needed): a route carries the
 * record of every origin its node reaches, often a hundred or more, and each growth is a copy.
 */
const FIRST_ROOM = 128;

function entry(origin: string): Entry {
  return { origin, index: -1, count: 0, best: undefined, hops: 0, rtt: 0 };
}

/** The best path of `e`, or undefined. */
function bestOf(e: Entry): Path | undefined {
  const b = e.best;
  if (b === undefined) return undefined;
  return { link: b.id, hops: e.hops, rtt: e.rtt };
}

/**
 * `l`'s hops to the origin at `i` (its slot). Hops are whole numbers, stored as doubles: read back
 * as integers, so that they keep one type as they go from node to node (a double-typed count
 * reaching compiled code made for integers throws it back to the interpreter, offer after offer).
 */
function hopsAt(l: LinkOffers, i: number): number {
  return l.offers[i]! | 0;
}

/** Whether `l` offers the origin at `index`. */
function offersAt(l: LinkOffers, index: number): boolean {
  const i = index * STRIDE;
  return i < l.offers.length && l.offers[i + 2] !== 0;
}

/** Origin id → the offers of each neighbour, and the best of them. */
export class PathTable {
  readonly #origins = new Map<string, Entry>();
  /** Each neighbour's offers, by link id (from its first offer, or `retire`, to `dropLink`). */
  readonly #links = new Map<string, LinkOffers>();
  /** Links being let go (`LinkOffers.retiring`). */
  #retiring = 0;
  /** Indices of origins that left the table, for the next to enter; and the next new one. */
  readonly #free: number[] = [];
  #next = 0;
  /** Stamps offers as links start them (the `since` slot; from 1, as 0 is no offer). */
  #since = 1;

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
    const b = e.best;
    if (b === undefined || b.id !== from) return bestOf(e);
    let alt: LinkOffers | undefined;
    let hops = 0, rtt = 0;
    const i = e.index * STRIDE;
    for (const l of this.#links.values()) {
      if (l === b || !offersAt(l, e.index)) continue;
      const h = hopsAt(l, i), r = l.offers[i + 1]!;
      if (!alt || this.#better(l, h, r, alt, hops, rtt)) {
        alt = l;
        hops = h;
        rtt = r;
      }
    }
    return alt ? { link: alt.id, hops, rtt } : bestOf(e);
  }

  /** How many neighbours offer a path to `origin`. */
  offers(origin: string): number {
    return this.#origins.get(origin)?.count ?? 0;
  }

  /**
   * `link` offers `origin` at `hops` (a whole number, already counting the hop to `link`) and
   * `rtt`. Returns true when the best hop count or next hop changed (what the router floods on).
   */
  offer(origin: string, link: string, hops: number, rtt: number): boolean {
    if (hops >= MAX_HOPS) return this.withdraw(origin, link);
    let e = this.#origins.get(origin);
    if (!e) this.#enter(e = entry(origin));
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
    if (e.count === 0) {
      // Not in the table (no offer yet, or none left): entered again, unless the origin's offers
      // went to another entry meanwhile.
      const cur = this.#origins.get(e.origin);
      if (cur !== undefined && cur !== e) return this.#offer(cur, link, hops, rtt);
      if (cur === undefined) this.#enter(e);
    }
    return this.#offer(e, link, hops, rtt);
  }

  #offer(e: Entry, link: string, hops: number, rtt: number): boolean {
    const l = this.#link(link);
    const i = e.index * STRIDE;
    if (i >= l.offers.length) l.offers = grown(l.offers, i + STRIDE);
    const o = l.offers;
    if (o[i + 2] !== 0) {
      if (o[i] === hops && o[i + 1] === rtt) return false;
    } else {
      o[i + 2] = this.#since++;
      e.count++;
    }
    o[i] = hops;
    o[i + 1] = rtt;
    // Better than the best: the new best. The best itself got worse: look again. Else no change.
    const b = e.best;
    if (b === undefined || this.#better(l, hops, rtt, b, e.hops, e.rtt)) {
      return this.#set(e, l, hops, rtt);
    }
    if (b === l) return this.#rebest(e);
    return false;
  }

  /** `link` no longer offers `origin`. True when the best changed (or the origin is now unreachable). */
  withdraw(origin: string, link: string): boolean {
    const e = this.#origins.get(origin);
    const l = this.#links.get(link);
    if (!e || !l || !this.#remove(e, l)) return false;
    if (e.count === 0) {
      this.#empty(e);
      return true;
    }
    return e.best === l ? this.#rebest(e) : false;
  }

  /**
   * `link` is being let go: its offers lose to any other from now on (an origin only it offers
   * keeps it). Returns the origins whose best changed.
   */
  retire(link: string): string[] {
    const l = this.#link(link);
    if (l.retiring) return [];
    l.retiring = true;
    this.#retiring++;
    const changed: string[] = [];
    for (const e of this.#offeredBy(l)) {
      if (e.best === l && this.#rebest(e)) changed.push(e.origin);
    }
    return changed;
  }

  /**
   * A neighbour went: the origins whose best changed (some maybe now unreachable). A scan of the
   * table's origins (one slot of the link's offers each): routes close seldom.
   */
  dropLink(link: string): string[] {
    const l = this.#links.get(link);
    if (!l) return [];
    if (l.retiring) {
      l.retiring = false;
      this.#retiring--;
    }
    const changed: string[] = [];
    for (const e of this.#offeredBy(l)) {
      this.#remove(e, l);
      if (e.count === 0) {
        this.#empty(e);
        changed.push(e.origin);
      } else if (e.best === l && this.#rebest(e)) changed.push(e.origin);
    }
    this.#links.delete(link);
    return changed;
  }

  /** Forgets every offer for `origin` (it died or left). */
  forget(origin: string): void {
    const e = this.#origins.get(origin);
    if (!e) return;
    for (const l of this.#links.values()) this.#remove(e, l);
    this.#empty(e);
  }

  /** `link`'s offers, made empty on its first offer (or `retire`). */
  #link(link: string): LinkOffers {
    let l = this.#links.get(link);
    if (l === undefined) {
      l = { id: link, retiring: false, offers: new Float64Array(FIRST_ROOM * STRIDE) };
      this.#links.set(link, l);
    }
    return l;
  }

  /** `e` enters the table: it takes an index in every link's offers. */
  #enter(e: Entry): void {
    e.index = this.#free.pop() ?? this.#next++;
    this.#origins.set(e.origin, e);
  }

  /** `e` has no offer left: out of the table (its index free again), and a slot held for it reads as a new one. */
  #empty(e: Entry): void {
    this.#origins.delete(e.origin);
    this.#free.push(e.index);
    e.index = -1;
    e.count = 0;
    e.best = undefined;
  }

  /** Removes `l`'s offer to `e`; false when it had none. */
  #remove(e: Entry, l: LinkOffers): boolean {
    if (!offersAt(l, e.index)) return false;
    l.offers.fill(0, e.index * STRIDE, (e.index + 1) * STRIDE);
    e.count--;
    return true;
  }

  /** The entries `l` offers, in the order it started offering them. */
  #offeredBy(l: LinkOffers): Entry[] {
    const found: Entry[] = [];
    for (const e of this.#origins.values()) if (offersAt(l, e.index)) found.push(e);
    const since = (e: Entry) => l.offers[e.index * STRIDE + 2]!;
    return found.sort((a, b) => since(a) - since(b));
  }

  /** Looks for the best of `e`'s offers again (it has at least one). */
  #rebest(e: Entry): boolean {
    const i = e.index * STRIDE;
    let best: LinkOffers | undefined;
    let hops = 0, rtt = 0;
    for (const l of this.#links.values()) {
      if (!offersAt(l, e.index)) continue;
      const h = hopsAt(l, i), r = l.offers[i + 1]!;
      if (!best || this.#better(l, h, r, best, hops, rtt)) {
        best = l;
        hops = h;
        rtt = r;
      }
    }
    return this.#set(e, best!, hops, rtt);
  }

  /** Whether an offer of `l` beats one of `b`: not being let go, then fewer hops, a lower RTT sum, the lower link id. */
  #better(
    l: LinkOffers,
    hops: number,
    rtt: number,
    b: LinkOffers,
    bh: number,
    br: number,
  ): boolean {
    if (this.#retiring > 0 && l.retiring !== b.retiring) return b.retiring;
    return hops < bh || (hops === bh && (rtt < br || (rtt === br && l.id < b.id)));
  }

  /** Sets the best; true when its link or hop count changed (what neighbours must hear). */
  #set(e: Entry, l: LinkOffers, hops: number, rtt: number): boolean {
    const changed = e.best === undefined || e.best !== l || e.hops !== hops;
    e.best = l;
    e.hops = hops;
    e.rtt = rtt;
    return changed;
  }
}

/** `a`, copied into an array of at least `n` numbers (doubling: few copies as origins come). */
function grown(a: Float64Array, n: number): Float64Array {
  const b = new Float64Array(Math.max(n, 2 * a.length));
  b.set(a);
  return b;
}
