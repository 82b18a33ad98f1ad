/**
 * Member ids and what is known of them, shared by index.
 *
 * A membership core works with small integers, not 52-character ids: the `Directory` interns an
 * id into an index and keeps the member's address and metadata of the highest incarnation seen.
 * A node in production has its own directory. The simulator gives all its nodes one directory:
 * interning is a dictionary, not knowledge — what a node *knows* of a member (its state and
 * incarnation) lives in that node's own `MemberTable`, and a core reads the directory only for
 * members its table knows. That keeps 10,000 simulated nodes at a few bytes per member each.
 */

/** What a member says about itself (carried by `alive` updates). */
export interface MemberMeta {
  /** Realm the member belongs to; a core ignores members of other realms. */
  realm: string;
  /** Free-form roles/tags, e.g. `["relay"]`. */
  tags: string[];
  /** Software version. */
  version: string;
}

/** One interned member. */
export interface Entry {
  readonly id: string;
  /** Two 32-bit hashes of the id, for view digests. */
  readonly h1: number;
  readonly h2: number;
  /** Address and metadata as of incarnation `inc` (the highest seen by whoever wrote it). */
  addr: string;
  meta: MemberMeta;
  inc: number;
}

/** Interns member ids; holds their addresses and metadata. */
export class Directory {
  readonly entries: Entry[] = [];
  readonly #byId = new Map<string, number>();

  /** The index of `id`, interning it (with `addr`/`meta` when it is new). */
  intern(id: string, addr = "", meta: MemberMeta = { realm: "", tags: [], version: "" }): number {
    const known = this.#byId.get(id);
    if (known !== undefined) return known;
    const i = this.entries.length;
    this.entries.push({
      id,
      h1: fnv(id, 0x811c9dc5),
      h2: fnv(id, 0x01000193 ^ 0x9e3779b9),
      addr,
      meta,
      inc: 0,
    });
    this.#byId.set(id, i);
    return i;
  }

  /** The index of `id`, or undefined. */
  indexOf(id: string): number | undefined {
    return this.#byId.get(id);
  }

  /** Records `addr`/`meta` as of incarnation `inc` unless something newer is already there. */
  learn(i: number, inc: number, addr: string, meta: MemberMeta): void {
    const e = this.entries[i]!;
    if (inc < e.inc && e.addr !== "") return;
    e.inc = inc;
    e.addr = addr;
    e.meta = meta;
  }

  get size(): number {
    return this.entries.length;
  }
}

/** FNV-1a over the UTF-16 units of `s`, from `seed`. */
function fnv(s: string, seed: number): number {
  let h = seed >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** Member states as stored in a table. */
export const UNKNOWN = 0;
export const ALIVE = 1;
export const SUSPECT = 2;
export const DEAD = 3;
export const LEFT = 4;

/** State names, by code. */
export const STATE_NAMES = ["unknown", "alive", "suspect", "dead", "left"] as const;
export type StateName = (typeof STATE_NAMES)[number];

/**
 * One node's view: a state and an incarnation per directory index, in typed arrays, grown as the
 * directory grows; and a digest of the view (two 32-bit lanes, the XOR of one value per known
 * member, kept up to date on every change) so two nodes can tell in O(1) whether their views
 * agree (anti-entropy without sending the whole view every time).
 */
export class MemberTable {
  state = new Uint8Array(16);
  inc = new Uint32Array(16);
  /** When the state last changed (ms, the core's clock), for inspection. */
  changedAt = new Float64Array(16);
  /** Members in state alive or suspect (the ones probed and gossiped to). */
  live = 0;
  d1 = 0;
  d2 = 0;
  constructor(private readonly dir: Directory) {}

  #mix(i: number, state: number, inc: number): void {
    if (state === UNKNOWN) return;
    const e = this.dir.entries[i]!;
    const v =
      (Math.imul(inc + 1, 0x9e3779b1) ^ (state === DEAD || state === LEFT ? 0x5bd1e995 : 0)) >>> 0;
    this.d1 = (this.d1 ^ Math.imul(e.h1 ^ v, 0x85ebca6b)) >>> 0;
    this.d2 = (this.d2 ^ Math.imul(e.h2 ^ v, 0xc2b2ae35)) >>> 0;
  }

  ensure(n: number): void {
    if (n <= this.state.length) return;
    let cap = this.state.length;
    while (cap < n) cap *= 2;
    const s = new Uint8Array(cap);
    s.set(this.state);
    const c = new Uint32Array(cap);
    c.set(this.inc);
    const t = new Float64Array(cap);
    t.set(this.changedAt);
    this.state = s;
    this.inc = c;
    this.changedAt = t;
  }

  /** Sets member `i`'s state, keeping `live` right. */
  set(i: number, state: number, inc: number, now: number): void {
    this.ensure(i + 1);
    const was = this.state[i]!;
    this.#mix(i, was, this.inc[i]!); // XOR out the old value, in the new one
    this.#mix(i, state, inc);
    const wasLive = was === ALIVE || was === SUSPECT;
    const isLive = state === ALIVE || state === SUSPECT;
    if (wasLive && !isLive) this.live--;
    else if (!wasLive && isLive) this.live++;
    this.state[i] = state;
    this.inc[i] = inc;
    if (was !== state) this.changedAt[i] = now;
  }

  stateOf(i: number): number {
    return i < this.state.length ? this.state[i]! : UNKNOWN;
  }

  incOf(i: number): number {
    return i < this.inc.length ? this.inc[i]! : 0;
  }
}
