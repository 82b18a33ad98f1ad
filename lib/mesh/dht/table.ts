/**
 * The Kademlia routing table (docs/dht.md): 256 buckets of up to `k` contacts, bucket `i`
 * holding the contacts whose id shares exactly `i` leading bits with this node's. Each bucket is
 * ordered least recently seen first. A contact enters only when it spoke to this node itself (a
 * request or an answer): ids merely named in others' answers are lookup candidates, never table
 * entries, so no peer can fill another's table with made-up contacts. A full bucket keeps its
 * old contacts while they answer (Kademlia's preference for long-lived nodes): the newcomer
 * waits in the bucket's replacement cache, and the oldest contact is pinged; if it does not
 * answer it is dropped and the newest replacement takes its place. Pure state, no IO, no clock.
 */
import { compareXor, idHex } from "../overlay/members.ts";

/** One node as the table knows it. */
export interface Contact {
  readonly id: Uint8Array;
  /** `idHex(id)`. */
  readonly key: string;
  addr: string;
  /** When it last spoke to this node (the core's clock). */
  lastSeen: number;
}

/** Leading bits `a` and `b` share (0–256). */
export function commonPrefix(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i]! ^ b[i]!;
    if (x !== 0) return i * 8 + Math.clz32(x) - 24;
  }
  return a.length * 8;
}

/**
 * The XOR distance of `a` from `t` in its first 48 bits, as a number: orders ids by distance
 * without a comparison loop (ties, one in 2^48 for random ids, fall back to `compareXor`).
 */
export function distance48(a: Uint8Array, t: Uint8Array): number {
  return ((a[0]! ^ t[0]!) * 2 ** 40) + ((a[1]! ^ t[1]!) * 2 ** 32) + ((a[2]! ^ t[2]!) << 24 >>> 0) +
    ((a[3]! ^ t[3]!) << 16) + ((a[4]! ^ t[4]!) << 8) + (a[5]! ^ t[5]!);
}

/** What `seen` did: entered, moved to the end, or the bucket is full (ping `oldest`). */
export type SeenResult =
  | { kind: "added" }
  | { kind: "updated" }
  | { kind: "full"; oldest: Contact };

export class RoutingTable {
  readonly #buckets: Contact[][] = Array.from({ length: 256 }, () => []);
  readonly #spare: Contact[][] = Array.from({ length: 256 }, () => []);
  readonly #byKey = new Map<string, Contact>();
  readonly selfKey: string;

  constructor(readonly self: Uint8Array, readonly k: number) {
    this.selfKey = idHex(self);
  }

  /** Contacts in the table (replacement caches not counted). */
  get size(): number {
    return this.#byKey.size;
  }

  bucketOf(id: Uint8Array): number {
    return Math.min(255, commonPrefix(this.self, id));
  }

  get(key: string): Contact | undefined {
    return this.#byKey.get(key);
  }

  /** `id` at `addr` spoke to this node at `now`. */
  seen(id: Uint8Array, addr: string, now: number): SeenResult {
    const key = idHex(id);
    if (key === this.selfKey) return { kind: "updated" };
    const b = this.bucketOf(id);
    const bucket = this.#buckets[b]!;
    const known = this.#byKey.get(key);
    if (known) {
      known.addr = addr;
      known.lastSeen = now;
      bucket.splice(bucket.indexOf(known), 1);
      bucket.push(known);
      return { kind: "updated" };
    }
    const c: Contact = { id: id.slice(), key, addr, lastSeen: now };
    if (bucket.length < this.k) {
      bucket.push(c);
      this.#byKey.set(key, c);
      return { kind: "added" };
    }
    const spare = this.#spare[b]!;
    const i = spare.findIndex((x) => x.key === key);
    if (i >= 0) spare.splice(i, 1);
    spare.push(c);
    if (spare.length > this.k) spare.shift();
    return { kind: "full", oldest: bucket[0]! };
  }

  /** `key` did not answer: dropped, and the newest replacement (if any) takes its place. */
  remove(key: string): boolean {
    const c = this.#byKey.get(key);
    if (!c) return false;
    const b = this.bucketOf(c.id);
    const bucket = this.#buckets[b]!;
    bucket.splice(bucket.indexOf(c), 1);
    this.#byKey.delete(key);
    const next = this.#spare[b]!.pop();
    if (next) {
      bucket.push(next);
      this.#byKey.set(next.key, next);
    }
    return true;
  }

  /** The `n` contacts closest to `target` by XOR (ties by id), the one keyed `skip` left out. */
  closest(target: Uint8Array, n: number, skip?: string): Contact[] {
    // Bucket by bucket, nearest first: the target's own bucket b (ids that share more than b
    // bits with the target), then every deeper one (exactly b shared bits), then b-1, b-2, …
    // (ever fewer). Only what may be among the n nearest is sorted.
    const got: Contact[] = [];
    const buckets = this.#buckets;
    const take = (i: number) => {
      const bucket = buckets[i]!;
      for (let j = 0; j < bucket.length; j++) if (bucket[j]!.key !== skip) got.push(bucket[j]!);
    };
    const b = this.bucketOf(target);
    take(b);
    if (got.length < n) {
      const deepest = this.deepest();
      for (let i = b + 1; i <= deepest; i++) if (buckets[i]!.length > 0) take(i);
    }
    for (let i = b - 1; i >= 0 && got.length < n; i--) if (buckets[i]!.length > 0) take(i);
    if (got.length <= 1) return got;
    const d = new Float64Array(got.length);
    const idx = Array.from({ length: got.length }, (_, i) => i);
    for (let i = 0; i < got.length; i++) d[i] = distance48(got[i]!.id, target);
    idx.sort((x, y) => d[x]! - d[y]! || compareXor(got[x]!.id, got[y]!.id, target));
    const out: Contact[] = [];
    for (let i = 0; i < Math.min(n, idx.length); i++) out.push(got[idx[i]!]!);
    return out;
  }

  /** Buckets holding at least one contact, and the contacts in each (for inspection). */
  buckets(): { index: number; contacts: readonly Contact[] }[] {
    const out: { index: number; contacts: readonly Contact[] }[] = [];
    this.#buckets.forEach((contacts, index) => {
      if (contacts.length > 0) out.push({ index, contacts });
    });
    return out;
  }

  /** The deepest bucket that holds a contact (-1 when the table is empty). */
  deepest(): number {
    for (let i = 255; i >= 0; i--) if (this.#buckets[i]!.length > 0) return i;
    return -1;
  }
}

/** A random id in bucket `b` of `self` (shares exactly `b` leading bits), from `rng`. */
export function randomIdInBucket(self: Uint8Array, b: number, rng: () => number): Uint8Array {
  const id = new Uint8Array(32);
  for (let i = 0; i < 32; i++) id[i] = Math.floor(rng() * 256);
  // Copy the first b bits of self, flip bit b.
  for (let bit = 0; bit <= Math.min(b, 255); bit++) {
    const byte = bit >> 3, mask = 0x80 >> (bit & 7);
    const want = bit < b ? self[byte]! & mask : (self[byte]! & mask) ^ mask;
    id[byte] = (id[byte]! & ~mask) | want;
  }
  return id;
}
