/**
 * Kademlia, sans-IO (docs/dht.md), in the style of the membership core: messages in
 * (`receive`), messages and events out (`drain`), time passed in (`tick`, `nextWake`), randomness
 * from the `rng` it is built with. The simulator and real nodes run the same code.
 *
 * - FIND_NODE, FIND_VALUE, STORE and PING; iterative lookups with `alpha` queries in flight, the
 *   `k` closest answering ends a lookup. A query that has not answered within `slowMs` no longer
 *   counts against `alpha` (the lookup goes on without it; a late answer still counts), and one
 *   that has not answered within `rpcTimeoutMs` failed: a lookup never waits on a dead contact.
 *   Every lookup has a deadline (`lookupTimeoutMs`).
 * - Contacts enter the table only by speaking to this node themselves, and only in server mode:
 *   a node that cannot be reached directly runs in client mode (`mode: "client"`), stays out of
 *   every table, and can still look up and publish.
 * - Records are signed by their publisher and checked on every store and every read.
 * - Buckets not looked into for `refreshMs` are refreshed by a lookup of a random id in them;
 *   this node's own records are republished every `republishMs`; stored records expire.
 * - One table per realm: a message of another realm is dropped, counted.
 * - Per-peer costs are bounded: requests per sender per second, contacts and records per answer,
 *   records per publisher, lookups at once.
 */
import type { Addr, Core, Outgoing, Output, Rng } from "../types.ts";
import { compareXor, idHex } from "../overlay/members.ts";
import { RateLimiter } from "../../util/mod.ts";
import { type Contact, distance48, randomIdInBucket, RoutingTable } from "./table.ts";
import {
  check,
  type DhtRecord,
  type DhtSigner,
  type DhtVerifier,
  malformed,
  RECORD_LIMITS,
  recordBytes,
  RecordStore,
  type Refusal,
} from "./records.ts";

/** Defaults, each with its reason (docs/dht.md). */
export const DHT_DEFAULTS = {
  /** Bucket size and replication (Kademlia's k = 20: a bucket outlives an hour of churn). */
  k: 20,
  /** Queries in flight per lookup (Kademlia's α = 3). */
  alpha: 3,
  /** A query not answered by then stops holding a slot of α (a few RTTs of a slow WAN path). */
  slowMs: 300,
  /** A query not answered by then failed (the contact counts as not answering). */
  rpcTimeoutMs: 2000,
  /** A lookup ends by then whatever is left (libp2p's js lookups ran for minutes without one). */
  lookupTimeoutMs: 10_000,
  /** Refresh a bucket not looked into for an hour (Kademlia's tRefresh). */
  refreshMs: 3_600_000,
  /** Republish own records hourly (Kademlia's tRepublish), well inside their ttl. */
  republishMs: 3_600_000,
  /** Records this node publishes live a day at the nodes that store them (Kademlia's tExpire). */
  recordTtlMs: 86_400_000,
  /** Requests one sender may make: 50 a second, bursts of 200 (a joining node's refresh). */
  requestsPerSecond: 50,
  requestBurst: 200,
  /** Lookups this node runs at once (its own; more are refused with an error). */
  maxLookups: 64,
  /** How often stored records are swept for expiry. */
  sweepMs: 60_000,
} as const;

export type DhtConfig = { -readonly [K in keyof typeof DHT_DEFAULTS]: number };

/** A contact on the wire: an id and the address it is reached at. */
export interface WireContact {
  id: Uint8Array;
  addr: Addr;
}

type Body =
  | { t: "ping" }
  | { t: "pong" }
  | { t: "find_node"; target: Uint8Array }
  | { t: "nodes"; contacts: WireContact[] }
  | { t: "find_value"; key: Uint8Array }
  | { t: "value"; records: DhtRecord[]; contacts: WireContact[] }
  | { t: "store"; record: DhtRecord }
  | { t: "stored"; refused: Refusal | null };

/** A DHT message: realm, the sender's id and mode, a request id, and the body. */
export type DhtMsg = {
  realm: string;
  from: Uint8Array;
  mode: "server" | "client";
  rid: number;
} & Body;

/** What a lookup found. */
export interface LookupResult {
  id: number;
  kind: "node" | "value" | "put";
  target: Uint8Array;
  /** The closest contacts that answered, nearest first (at most k). */
  closest: WireContact[];
  /** Records found (value lookups), each checked. */
  records: DhtRecord[];
  /** For puts: stores acknowledged, and refused by the storing node. */
  stored: number;
  refused: number;
  /** The length of the longest chain of queries it took (1: only contacts from the table). */
  rounds: number;
  /** Requests this lookup sent. */
  messages: number;
  /** Ended at its deadline or by a failure of every contact. */
  timedOut: boolean;
  durationMs: number;
}

export type DhtEvent =
  | { kind: "lookup"; result: LookupResult }
  | { kind: "error"; id: number; message: string };

/** Counters (all growing). */
export interface DhtStats {
  requestsIn: number;
  requestsOut: number;
  answersIn: number;
  timeouts: number;
  /** Requests refused: over a sender's rate, of another realm, malformed. */
  limited: number;
  otherRealm: number;
  malformed: number;
  /** Records refused on store or on read, by reason. */
  refusedRecords: Record<Refusal, number>;
  /** Records read in answers that failed their check (dropped). */
  badRecordsRead: number;
  lookups: number;
  refreshes: number;
  republishes: number;
  expired: number;
  /** Contacts taken out of the table because they spoke in client mode (unreachable directly). */
  leftAsClients: number;
}

/** Options of a DHT core. */
export interface DhtOptions {
  id: Uint8Array;
  addr: Addr;
  realm: string;
  rng: Rng;
  now: number;
  /** Server (reachable directly: enters others' tables) or client (only asks). Default server. */
  mode?: "server" | "client";
  config?: Partial<DhtConfig>;
  signer: DhtSigner;
  verify: DhtVerifier;
  /** Size of a message in bytes (for traffic accounting); default an estimate. */
  sizeOf?: (m: DhtMsg) => number;
}

interface Candidate {
  c: WireContact;
  key: string;
  state: "new" | "asked" | "answered" | "failed";
  round: number;
  slow: boolean;
  /** `distance48` from the lookup's target. */
  d: number;
}

interface Lookup {
  id: number;
  kind: "node" | "value" | "put";
  target: Uint8Array;
  started: number;
  deadline: number;
  /** key → candidate, and the candidates nearest first. */
  /** Candidates by the top 30 bits of their distance (a chain on a tie; ids compared). */
  byDist: Map<number, Candidate[]>;
  order: Candidate[];
  records: Map<string, DhtRecord>;
  messages: number;
  rounds: number;
  /** For puts: the record, and the stores in flight. */
  record?: DhtRecord;
  storing: number;
  stored: number;
  refused: number;
  done: boolean;
  /** The join's own-id lookup: its end refreshes the farther buckets. */
  join?: boolean;
}

interface Pending {
  rid: number;
  to: string;
  addr: Addr;
  id: Uint8Array | undefined;
  lookup: number | undefined;
  /** A ping of a full bucket's oldest contact, on behalf of `newcomer`. */
  evictCheck?: boolean;
  store?: boolean;
  /** Past `slowAt` already (no longer holding a slot of alpha). */
  slowDone?: boolean;
  slowAt: number;
  timeoutAt: number;
}

/** Estimated encoded size: a header, 40 bytes per contact, records with their value. */
function estimate(m: DhtMsg): number {
  let n = 48;
  if (m.t === "nodes" || m.t === "value") n += m.contacts.length * 40;
  if (m.t === "value") { for (const r of m.records) n += 240 + r.value.length; }
  if (m.t === "store") n += 240 + m.record.value.length;
  if (m.t === "find_node" || m.t === "find_value") n += 33;
  return n;
}

export class Dht implements Core<DhtMsg, DhtEvent> {
  readonly addr: Addr;
  readonly id: Uint8Array;
  /** Server: in others' tables. Client: reachable only through others, so in no table. */
  get mode(): "server" | "client" {
    return this.#mode;
  }
  #mode: "server" | "client";
  readonly table: RoutingTable;
  readonly store: RecordStore;
  readonly cfg: DhtConfig;
  readonly stats: DhtStats;
  readonly #realm: string;
  readonly #rng: Rng;
  readonly #signer: DhtSigner;
  readonly #verify: DhtVerifier;
  readonly #sizeOf: (m: DhtMsg) => number;
  readonly #rate: RateLimiter<string>;
  #now: number;
  #out: Outgoing<DhtMsg>[] = [];
  #events: DhtEvent[] = [];
  #rid = 0;
  #lookupId = 0;
  readonly #pending = new Map<number, Pending>();
  readonly #lookups = new Map<number, Lookup>();
  /** When each bucket was last looked into. */
  readonly #touched = new Float64Array(256);
  /** This node's own records (key hex → record), republished. */
  readonly #own = new Map<string, DhtRecord>();
  #seq = 0;
  #nextRefresh: number;
  #nextRepublish: number;
  #nextSweep: number;
  /** Buckets whose oldest contact is being pinged (one at a time per bucket). */
  readonly #checking = new Set<number>();

  constructor(o: DhtOptions) {
    this.addr = o.addr;
    this.id = o.id.slice();
    this.#mode = o.mode ?? "server";
    this.cfg = { ...DHT_DEFAULTS, ...o.config };
    if (!(this.cfg.k >= 1 && this.cfg.alpha >= 1 && this.cfg.alpha <= this.cfg.k)) {
      throw new RangeError(
        `dht: need k >= 1 and 1 <= alpha <= k (got k ${this.cfg.k}, alpha ${this.cfg.alpha})`,
      );
    }
    this.#realm = o.realm;
    this.#rng = o.rng;
    this.#signer = o.signer;
    this.#verify = o.verify;
    this.#sizeOf = o.sizeOf ?? estimate;
    this.#now = o.now;
    this.table = new RoutingTable(this.id, this.cfg.k);
    this.store = new RecordStore(o.realm, o.verify);
    this.#rate = new RateLimiter({
      perSecond: this.cfg.requestsPerSecond,
      burst: this.cfg.requestBurst,
      maxKeys: 4096,
    });
    this.#touched.fill(o.now);
    this.#nextRefresh = o.now + this.cfg.refreshMs;
    this.#nextRepublish = o.now + this.cfg.republishMs;
    this.#nextSweep = o.now + this.cfg.sweepMs;
    this.stats = {
      requestsIn: 0,
      requestsOut: 0,
      answersIn: 0,
      timeouts: 0,
      limited: 0,
      otherRealm: 0,
      malformed: 0,
      refusedRecords: this.store.refused,
      badRecordsRead: 0,
      lookups: 0,
      refreshes: 0,
      republishes: 0,
      expired: 0,
      leftAsClients: 0,
    };
  }

  // ------------------------------------------------------------------ API

  /**
   * Joins through `contacts` (seeds, or members membership knows): asks each for this node's
   * own id, then refreshes every bucket farther than its nearest neighbour (Kademlia's join).
   */
  bootstrap(contacts: readonly WireContact[], now: number): number {
    this.#now = now;
    const id = this.#start("node", this.id, contacts);
    const l = this.#lookups.get(id);
    if (l) l.join = true;
    this.#step(id);
    return id;
  }

  /** Looks up the `k` nodes closest to `target`. Returns the lookup's id (its event carries it). */
  findNode(target: Uint8Array, now: number): number {
    this.#now = now;
    const id = this.#start("node", target);
    this.#step(id);
    return id;
  }

  /** Looks up the records under `key`. */
  findValue(key: Uint8Array, now: number): number {
    this.#now = now;
    const id = this.#start("value", key);
    this.#step(id);
    return id;
  }

  /** Publishes `value` under `key`, signed by this node, at the `k` nodes closest to `key`. */
  put(key: Uint8Array, value: Uint8Array, now: number): number {
    this.#now = now;
    if (!(key instanceof Uint8Array) || key.length !== 32) {
      return this.#fail(`put: a key is 32 bytes (got ${key?.length})`);
    }
    if (value.length > RECORD_LIMITS.maxValueBytes) {
      return this.#fail(
        `put: a value is at most ${RECORD_LIMITS.maxValueBytes} bytes (got ${value.length})`,
      );
    }
    const base = {
      key: key.slice(),
      value: value.slice(),
      publisher: this.id,
      seq: ++this.#seq,
      ttlMs: this.cfg.recordTtlMs,
    };
    const record: DhtRecord = {
      ...base,
      pub: this.#signer.key,
      sig: this.#signer.sign(recordBytes(this.#realm, base)),
    };
    this.#own.set(idHex(key), record);
    return this.#publish(record);
  }

  /** Lookups running now (puts and the join's refreshes included). */
  get running(): number {
    return this.#lookups.size;
  }

  /** This node's own records (what it publishes and republishes). */
  published(): DhtRecord[] {
    return [...this.#own.values()];
  }

  /** The id a query in flight (by request id) is addressed to; undefined when none is. */
  queriedId(rid: number): Uint8Array | undefined {
    return this.#pending.get(rid)?.id;
  }

  /** A contact is gone for good (membership declared it dead): out of the table. */
  forget(id: Uint8Array): void {
    this.table.remove(idHex(id));
  }

  // ------------------------------------------------------------------ sans-IO

  drain(): Output<DhtMsg, DhtEvent> {
    const out = { send: this.#out, events: this.#events };
    this.#out = [];
    this.#events = [];
    return out;
  }

  nextWake(): number {
    let t = Math.min(this.#nextRefresh, this.#nextRepublish, this.#nextSweep);
    for (const p of this.#pending.values()) {
      t = Math.min(t, p.timeoutAt);
      if (p.lookup !== undefined && !p.slowDone && !p.store) t = Math.min(t, p.slowAt);
    }
    for (const l of this.#lookups.values()) t = Math.min(t, l.deadline);
    return t;
  }

  tick(now: number): void {
    this.#now = now;
    for (const p of [...this.#pending.values()]) {
      if (now >= p.timeoutAt) this.#timedOut(p);
      else if (now >= p.slowAt && p.lookup !== undefined && !p.slowDone && !p.store) {
        this.#markSlow(p);
      }
    }
    for (const l of [...this.#lookups.values()]) {
      if (now >= l.deadline) this.#finish(l, true);
    }
    if (now >= this.#nextSweep) {
      this.#nextSweep = now + this.cfg.sweepMs;
      this.stats.expired += this.store.expire(now);
    }
    if (now >= this.#nextRepublish) {
      this.#nextRepublish = now + this.cfg.republishMs;
      for (const r of this.#own.values()) {
        this.stats.republishes++;
        this.#publish(r);
      }
    }
    if (now >= this.#nextRefresh) {
      this.#nextRefresh = now + Math.min(this.cfg.refreshMs, 60_000);
      this.#refresh(now);
    }
  }

  /**
   * A message from `from`. `listed: false` (a sender the driver cannot vouch for an address of,
   * e.g. not an alive member): answered, but neither entered into the table nor taken out.
   */
  receive(now: number, from: Addr, m: DhtMsg, listed = true): void {
    this.#now = now;
    if (!m || typeof m !== "object" || !(m.from instanceof Uint8Array) || m.from.length !== 32) {
      this.stats.malformed++;
      return;
    }
    if (m.realm !== this.#realm) {
      this.stats.otherRealm++;
      return;
    }
    const key = idHex(m.from);
    if (key === this.table.selfKey) return;
    const isRequest = m.t === "ping" || m.t === "find_node" || m.t === "find_value" ||
      m.t === "store";
    if (isRequest) {
      this.stats.requestsIn++;
      if (!this.#rate.take(key, 1, now)) {
        this.stats.limited++;
        return;
      }
      if (listed) this.#heardFrom(m, from, now);
      this.#answer(from, m);
      return;
    }
    const p = this.#pending.get(m.rid);
    if (!p || p.to !== key) return; // not asked, or late after a timeout
    this.#pending.delete(m.rid);
    this.stats.answersIn++;
    if (listed) this.#heardFrom(m, from, now);
    if (p.evictCheck) {
      // The oldest answered: it stays (#heard moved it to the end); the newcomer waits.
      this.#checking.delete(this.table.bucketOf(p.id!));
      return;
    }
    if (p.store) {
      const l = p.lookup === undefined ? undefined : this.#lookups.get(p.lookup);
      if (l && m.t === "stored") {
        l.storing--;
        if (m.refused === null) l.stored++;
        else l.refused++;
        if (l.storing === 0) this.#finish(l, false);
      }
      return;
    }
    const l = p.lookup === undefined ? undefined : this.#lookups.get(p.lookup);
    if (!l || l.done) return;
    const cand = candidateOf(l, m.from);
    if (!cand) return;
    cand.state = "answered";
    if (m.t === "nodes" || m.t === "value") {
      for (const c of m.contacts.slice(0, this.cfg.k)) this.#consider(l, c, cand.round + 1);
    }
    if (m.t === "value" && l.kind === "value") {
      for (const r of m.records.slice(0, RECORD_LIMITS.perKeyAnswer)) {
        if (compareXor(r.key, l.target, l.target) !== 0 || check(this.#realm, r, this.#verify)) {
          this.stats.badRecordsRead++;
          continue;
        }
        const pk = idHex(r.publisher);
        const had = l.records.get(pk);
        if (!had || had.seq < r.seq) l.records.set(pk, r);
      }
      if (l.records.size > 0) {
        l.rounds = Math.max(l.rounds, cand.round);
        return this.#finish(l, false);
      }
    }
    this.#step(l.id);
  }

  // ------------------------------------------------------------------ inside

  #fail(message: string): number {
    const id = ++this.#lookupId;
    this.#events.push({ kind: "error", id, message });
    return id;
  }

  /**
   * From now on this node says it is in `mode` (docs/dht.md, "Client mode": a node finds out
   * whether others can dial it). Its table and records stay; peers take it out of theirs as it
   * speaks to them in client mode.
   */
  setMode(mode: "server" | "client"): void {
    this.#mode = mode;
  }

  /**
   * A message from a peer: in server mode, it enters the table; in client mode it leaves it (a
   * node may say of itself only that it cannot be reached: `from` is the sender's own id).
   */
  #heardFrom(m: DhtMsg, from: Addr, now: number): void {
    if (m.mode === "server") this.#heard(m.from, from, now);
    else if (this.table.remove(idHex(m.from))) this.stats.leftAsClients++;
  }

  /** A peer in server mode spoke to this node: into the table (or its bucket's oldest checked). */
  #heard(id: Uint8Array, addr: Addr, now: number): void {
    const r = this.table.seen(id, addr, now);
    if (r.kind !== "full") return;
    const b = this.table.bucketOf(id);
    if (this.#checking.has(b)) return;
    this.#checking.add(b);
    const rid = this.#request(r.oldest.addr, r.oldest.id, { t: "ping" }, undefined);
    const p = this.#pending.get(rid)!;
    p.evictCheck = true;
  }

  #answer(to: Addr, m: DhtMsg): void {
    const reply = (body: Body) => this.#send(to, { ...this.#header(m.rid), ...body } as DhtMsg);
    switch (m.t) {
      case "ping":
        return reply({ t: "pong" });
      case "find_node": {
        if (!(m.target instanceof Uint8Array) || m.target.length !== 32) {
          this.stats.malformed++;
          return;
        }
        return reply({ t: "nodes", contacts: this.#closestFor(m.target, m.from) });
      }
      case "find_value": {
        if (!(m.key instanceof Uint8Array) || m.key.length !== 32) {
          this.stats.malformed++;
          return;
        }
        const records = this.store.get(m.key, this.#now);
        // Checked on read as on store: a record is handed on only while it still verifies.
        const good = records.filter((r) => !check(this.#realm, r, this.#verify));
        return reply({
          t: "value",
          records: good,
          contacts: good.length > 0 ? [] : this.#closestFor(m.key, m.from),
        });
      }
      case "store": {
        if (this.mode === "client") return reply({ t: "stored", refused: "full" });
        if (malformed(m.record)) {
          this.stats.malformed++;
          this.store.refused.malformed++;
          return reply({ t: "stored", refused: "malformed" });
        }
        return reply({ t: "stored", refused: this.store.put(m.record, this.#now) });
      }
    }
  }

  #closestFor(target: Uint8Array, asker: Uint8Array): WireContact[] {
    return this.table.closest(target, this.cfg.k, idHex(asker)).map((c) => ({
      id: c.id,
      addr: c.addr,
    }));
  }

  #header(rid: number) {
    return { realm: this.#realm, from: this.id, mode: this.mode, rid };
  }

  #send(to: Addr, msg: DhtMsg): void {
    this.#out.push({ to, msg, size: this.#sizeOf(msg) });
  }

  #request(addr: Addr, id: Uint8Array | undefined, body: Body, lookup: number | undefined): number {
    const rid = ++this.#rid;
    this.stats.requestsOut++;
    this.#pending.set(rid, {
      rid,
      to: id ? idHex(id) : "",
      addr,
      id,
      lookup,
      slowAt: this.#now + this.cfg.slowMs,
      timeoutAt: this.#now + this.cfg.rpcTimeoutMs,
    });
    this.#send(addr, { ...this.#header(rid), ...body } as DhtMsg);
    return rid;
  }

  #start(kind: Lookup["kind"], target: Uint8Array, seeds?: readonly WireContact[]): number {
    const id = ++this.#lookupId;
    if (this.#lookups.size >= this.cfg.maxLookups) {
      this.#events.push({
        kind: "error",
        id,
        message: `dht: ${this.cfg.maxLookups} lookups already running (maxLookups)`,
      });
      return id;
    }
    this.stats.lookups++;
    const l: Lookup = {
      id,
      kind,
      target: target.slice(),
      started: this.#now,
      deadline: this.#now + this.cfg.lookupTimeoutMs,
      byDist: new Map(),
      order: [],
      records: new Map(),
      messages: 0,
      rounds: 0,
      storing: 0,
      stored: 0,
      refused: 0,
      done: false,
    };
    this.#lookups.set(id, l);
    this.#touched[Math.min(255, this.table.bucketOf(target))] = this.#now;
    for (const c of this.table.closest(target, this.cfg.k)) this.#consider(l, c, 1);
    for (const c of seeds ?? []) this.#consider(l, c, 1);
    return id;
  }

  #consider(l: Lookup, c: WireContact, round: number): void {
    if (!(c?.id instanceof Uint8Array) || c.id.length !== 32 || typeof c.addr !== "string") return;
    // A lookup keeps its 3k nearest candidates: one farther than all of them is never asked.
    const d = distance48(c.id, l.target);
    const cap = 3 * this.cfg.k;
    if (l.order.length >= cap && d > l.order[l.order.length - 1]!.d) return;
    if (candidateOf(l, c.id, d) || sameId(c.id, this.id)) return;
    const key = idHex(c.id);
    const cand: Candidate = {
      c: { id: c.id, addr: c.addr },
      key,
      state: "new",
      round,
      slow: false,
      d,
    };
    const chain = l.byDist.get(top30(d));
    if (chain) chain.push(cand);
    else l.byDist.set(top30(d), [cand]);
    // Insert in XOR order: binary search on the 48-bit distance, then the full ids on a tie.
    const order = l.order;
    let lo = 0, hi = order.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const o = order[mid]!;
      if (o.d < d || (o.d === d && compareXor(o.c.id, c.id, l.target) < 0)) lo = mid + 1;
      else hi = mid;
    }
    order.splice(lo, 0, cand);
    if (order.length > cap) {
      const gone = order.pop()!;
      if (gone.state === "new") {
        const chain = l.byDist.get(top30(gone.d))!;
        if (chain.length === 1) l.byDist.delete(top30(gone.d));
        else chain.splice(chain.indexOf(gone), 1);
      } else order.push(gone); // asked already: kept (its answer is still awaited or counted)
    }
  }

  /** Sends what the lookup may send now, or ends it when the k closest have answered. */
  #step(id: number): void {
    const l = this.#lookups.get(id);
    if (!l || l.done || l.kind === "put" && l.storing > 0) return;
    const k = this.cfg.k;
    let active = 0;
    for (const c of l.order) if (c.state === "asked" && !c.slow) active++;
    let seen = 0;
    let waiting = false;
    for (const c of l.order) {
      // A failed contact, and one slow to answer, do not hold the lookup: it goes on (and can
      // end) without them; a slow one's late answer still counts while the lookup runs.
      if (c.state === "failed" || c.state === "asked" && c.slow) continue;
      if (seen >= k) break;
      seen++;
      if (c.state === "asked") waiting = true;
      if (c.state !== "new") continue;
      if (active >= this.cfg.alpha) {
        waiting = true;
        continue;
      }
      c.state = "asked";
      active++;
      waiting = true;
      l.messages++;
      const body: Body = l.kind === "value"
        ? { t: "find_value", key: l.target }
        : { t: "find_node", target: l.target };
      this.#request(c.c.addr, c.c.id, body, l.id);
    }
    if (!waiting) this.#closestDone(l);
  }

  /** The node search is over: a find ends; a put stores at the closest. */
  #closestDone(l: Lookup): void {
    const answered = l.order.filter((c) => c.state === "answered").slice(0, this.cfg.k);
    l.rounds = Math.max(l.rounds, ...answered.map((c) => c.round), 0);
    if (l.kind !== "put") return this.#finish(l, false);
    if (answered.length === 0) return this.#finish(l, true);
    for (const c of answered) {
      l.storing++;
      const rid = this.#request(c.c.addr, c.c.id, { t: "store", record: l.record! }, l.id);
      this.#pending.get(rid)!.store = true;
    }
  }

  #finish(l: Lookup, timedOut: boolean): void {
    if (l.done) return;
    l.done = true;
    this.#lookups.delete(l.id);
    // Queries still out stay pending: a late answer still enters the table, a timeout still
    // drops a dead contact from it.
    for (const p of this.#pending.values()) if (p.lookup === l.id) p.lookup = undefined;
    if (timedOut && l.rounds === 0) {
      const answered = l.order.filter((c) => c.state === "answered");
      l.rounds = Math.max(0, ...answered.map((c) => c.round));
    }
    const closest = l.order.filter((c) => c.state === "answered").slice(0, this.cfg.k).map((c) =>
      c.c
    );
    this.#events.push({
      kind: "lookup",
      result: {
        id: l.id,
        kind: l.kind,
        target: l.target,
        closest,
        records: [...l.records.values()],
        stored: l.stored,
        refused: l.refused,
        rounds: l.rounds,
        messages: l.messages,
        timedOut,
        durationMs: this.#now - l.started,
      },
    });
    if (l.join) this.#joinRefresh();
  }

  /** After the join's own-id lookup: every bucket farther than the nearest neighbour, once. */
  #joinRefresh(): void {
    const deepest = this.table.deepest();
    for (let b = 0; b < deepest && this.#lookups.size < this.cfg.maxLookups; b++) {
      this.stats.refreshes++;
      const id = this.#start("node", randomIdInBucket(this.id, b, this.#rng));
      this.#step(id);
    }
  }

  #refresh(now: number): void {
    const deepest = this.table.deepest();
    for (let b = 0; b <= deepest; b++) {
      if (now - this.#touched[b]! < this.cfg.refreshMs) continue;
      if (this.#lookups.size >= this.cfg.maxLookups) break;
      this.stats.refreshes++;
      const id = this.#start("node", randomIdInBucket(this.id, b, this.#rng));
      this.#step(id);
    }
  }

  #publish(record: DhtRecord): number {
    const id = this.#start("put", record.key);
    const l = this.#lookups.get(id);
    if (l) l.record = record;
    this.#step(id);
    return id;
  }

  #markSlow(p: Pending): void {
    p.slowDone = true;
    const l = this.#lookups.get(p.lookup!);
    const c = l && p.id ? candidateOf(l, p.id) : undefined;
    if (!l || !c || c.slow || c.state !== "asked") return;
    c.slow = true;
    this.#step(l.id);
  }

  #timedOut(p: Pending): void {
    this.#pending.delete(p.rid);
    this.stats.timeouts++;
    if (p.evictCheck) {
      this.#checking.delete(this.table.bucketOf(p.id!));
      this.table.remove(p.to); // its newest replacement takes the place
      return;
    }
    // A contact that does not answer leaves the table (it comes back when it speaks again).
    this.table.remove(p.to);
    const l = p.lookup === undefined ? undefined : this.#lookups.get(p.lookup);
    if (!l) return;
    if (p.store) {
      l.storing--;
      if (l.storing === 0) this.#finish(l, false);
      return;
    }
    const c = p.id ? candidateOf(l, p.id) : undefined;
    if (c && c.state === "asked") c.state = "failed";
    this.#step(l.id);
  }
}

/** A `distance48` cut to its top 30 bits: a small integer, the cheapest Map key. */
function top30(d: number): number {
  return Math.floor(d / 2 ** 18);
}

function sameId(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < 32; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The candidate of lookup `l` with id `id`, if any. */
function candidateOf(
  l: Lookup,
  id: Uint8Array,
  d = distance48(id, l.target),
): Candidate | undefined {
  const chain = l.byDist.get(top30(d));
  if (!chain) return undefined;
  for (const c of chain) if (sameId(c.c.id, id)) return c;
  return undefined;
}

export type { Contact };
