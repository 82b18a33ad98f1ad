/**
 * Member ids and what is known of them, shared by index.
 *
 * A membership core works with small integers, not 52-character ids: the `Directory` interns an
 * id into an index and keeps the member's own record of the highest incarnation seen: address,
 * metadata, whether it is a goodbye, and the member's signature over it (opaque here).
 * A node in production has its own directory. The simulator gives all its nodes one directory:
 * interning is a dictionary, not knowledge — what a node *knows* of a member (its state and
 * incarnation) lives in that node's own `MemberTable`, and a core reads the directory only for
 * members its table knows. That keeps 10,000 simulated nodes at a few bytes per member each.
 */

import type { Proof } from "./messages.ts";

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
  /** The member's record as of incarnation `inc` (the highest seen by whoever wrote it). */
  addr: string;
  meta: MemberMeta;
  inc: number;
  /** The record is the member's goodbye (`left`), not an `alive`. */
  left: boolean;
  /** The member's signature over the record (undefined: this node's own, or the simulator). */
  proof: Proof | undefined;
}

const NO_META: MemberMeta = { realm: "", tags: [], version: "" };

/** Options of a directory. */
export interface DirectoryOptions {
  /**
   * Reuse the indices of forgotten members (`release`). A node's own directory does, so the
   * members an attacker makes up and that die cost no memory once forgotten; the simulator's
   * directory, shared by all its nodes, does not (a node forgetting a member is not all of them).
   */
  recycle?: boolean;
}

/** Interns member ids; holds their records. */
export class Directory {
  readonly entries: Entry[] = [];
  readonly #byId = new Map<string, number>();
  readonly #free: number[] = [];
  readonly #recycle: boolean;

  constructor(o: DirectoryOptions = {}) {
    this.#recycle = o.recycle ?? false;
  }

  /** The index of `id`, interning it (with `addr`/`meta` when it is new). */
  intern(id: string, addr = "", meta: MemberMeta = NO_META): number {
    const known = this.#byId.get(id);
    if (known !== undefined) return known;
    const e: Entry = {
      id,
      h1: fnv(id, 0x811c9dc5),
      h2: fnv(id, 0x01000193 ^ 0x9e3779b9),
      addr,
      meta,
      inc: 0,
      left: false,
      proof: undefined,
    };
    const i = this.#free.pop() ?? this.entries.length;
    this.entries[i] = e;
    this.#byId.set(id, i);
    return i;
  }

  /** The index of `id`, or undefined. */
  indexOf(id: string): number | undefined {
    return this.#byId.get(id);
  }

  /**
   * Records the member's own record as of incarnation `inc` unless something newer is already
   * there (a goodbye outranks an alive of the same incarnation).
   */
  learn(
    i: number,
    inc: number,
    addr: string,
    meta: MemberMeta,
    left = false,
    proof?: Proof,
  ): void {
    const e = this.entries[i]!;
    if (e.addr !== "" && (inc < e.inc || (inc === e.inc && e.left && !left))) return;
    e.inc = inc;
    e.addr = addr;
    e.meta = meta;
    e.left = left;
    e.proof = proof;
  }

  /**
   * Forgets member `i` (a recycling directory only; the caller holds no state for it any more):
   * its index goes to the next new member. Returns whether it was forgotten.
   */
  release(i: number): boolean {
    if (!this.#recycle) return false;
    const e = this.entries[i];
    if (!e || e.id === "" || this.#byId.get(e.id) !== i) return false;
    this.#byId.delete(e.id);
    this.entries[i] = {
      id: "",
      h1: 0,
      h2: 0,
      addr: "",
      meta: NO_META,
      inc: 0,
      left: false,
      proof: undefined,
    };
    this.#free.push(i);
    return true;
  }

  /** Indices in use or free (the bound of every index). */
  get size(): number {
    return this.entries.length;
  }

  /** Members interned now. */
  get count(): number {
    return this.#byId.size;
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
  /** Members in any state but unknown. */
  known = 0;
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
    if (was === UNKNOWN && state !== UNKNOWN) this.known++;
    else if (was !== UNKNOWN && state === UNKNOWN) this.known--;
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
