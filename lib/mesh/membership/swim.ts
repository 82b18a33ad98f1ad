/**
 * SWIM membership with the Lifeguard extensions, sans-IO (docs/membership.md).
 *
 * - Failure detection: every probe interval a member is pinged (a shuffled round-robin over all
 *   members, so each is probed once per pass); no ack within the probe timeout → `ping-req`
 *   through `indirectChecks` other members; still nothing by the end of the interval → the member
 *   is *suspected*.
 * - Suspicion: a suspect is declared dead when its suspicion timeout runs out, unless it refutes
 *   (an `alive` with a higher incarnation, which only the member itself issues). The timeout
 *   starts at `suspicionMaxTimeoutMult` × the minimum and shrinks towards the minimum
 *   (`suspicionMult` × log10 N × probe interval) as independent suspicions confirm it (Lifeguard).
 * - Local health (Lifeguard): a node that misses acks and nacks, or has to refute suspicions about
 *   itself, raises its awareness score and stretches its own probe interval and timeout by
 *   (score + 1), so a slow node stops accusing healthy ones. Indirect probers answer `nack` when
 *   the target did not answer them, which tells the prober its own links are fine.
 * - Dissemination: updates ride on pings, acks and gossip messages (to `gossipNodes` random members
 *   every gossip interval while there is news), each retransmitted `retransmitMult` ×
 *   ceil(log10(N + 1)) times; a newer update about a member replaces the older one.
 * - Join: a full-state `sync` with a seed; periodic syncs repair what gossip missed. Leave: a
 *   `left` update about oneself, gossiped like the others.
 *
 * Members are directory indices; time is the `now` passed in; randomness is the injected rng.
 */
import type { Addr, Core, Outgoing, Output, Rng } from "../types.ts";
import {
  ALIVE,
  DEAD,
  Directory,
  LEFT,
  type MemberMeta,
  MemberTable,
  STATE_NAMES,
  type StateName,
  SUSPECT,
  UNKNOWN,
} from "./directory.ts";
import {
  type Msg,
  sizeOf,
  U_ALIVE,
  U_DEAD,
  U_LEFT,
  U_SUSPECT,
  type Update,
  updateSize,
} from "./messages.ts";

/** Tunables; see `DEFAULT_CONFIG` for the defaults and docs/membership.md for the reasons. */
export interface MembershipConfig {
  probeIntervalMs: number;
  probeTimeoutMs: number;
  indirectChecks: number;
  gossipIntervalMs: number;
  gossipNodes: number;
  retransmitMult: number;
  suspicionMult: number;
  suspicionMaxTimeoutMult: number;
  awarenessMax: number;
  /** Base interval of anti-entropy full syncs (scaled up with the cluster size); 0 disables. */
  syncIntervalMs: number;
  /** Largest message; piggybacked updates fill what the message leaves. */
  maxPacketBytes: number;
  joinRetryMs: number;
  /**
   * How often a node tries a digest sync with one member it holds dead (not left): when a
   * partition heals, that is how the two sides find each other again. 0 disables.
   */
  reconnectIntervalMs: number;
}

export const DEFAULT_CONFIG: MembershipConfig = {
  probeIntervalMs: 500,
  probeTimeoutMs: 200,
  indirectChecks: 3,
  gossipIntervalMs: 200,
  gossipNodes: 3,
  retransmitMult: 4,
  suspicionMult: 4,
  suspicionMaxTimeoutMult: 6,
  awarenessMax: 8,
  syncIntervalMs: 30_000,
  maxPacketBytes: 1200,
  joinRetryMs: 1000,
  reconnectIntervalMs: 10_000,
};

/** What a core reports as its view changes. */
export interface MemberEvent {
  kind: "alive" | "suspect" | "dead" | "left" | "refute" | "joined";
  member: number;
  inc: number;
}

/** A member as `members()` lists it (for `macula inspect members`). */
export interface MemberView {
  id: string;
  addr: string;
  state: StateName;
  inc: number;
  since: number;
  meta: MemberMeta;
}

/** Options of a membership core. */
export interface MembershipOptions {
  /** This node's id, address and metadata (the realm is `meta.realm`). */
  id: string;
  addr: Addr;
  meta: MemberMeta;
  rng: Rng;
  /** Shared with other cores only in the simulator (see directory.ts). */
  directory?: Directory;
  config?: Partial<MembershipConfig>;
  /** Addresses to join through; empty for the first node. */
  seeds?: Addr[];
  /** The first incarnation (a restarted process picks up from what others say, see refute). */
  incarnation?: number;
  now?: number;
}

interface Probe {
  target: number;
  seq: number;
  timeoutAt: number;
  endAt: number;
  acked: boolean;
  indirect: boolean;
  expectedNacks: number;
  nacks: number;
}

interface Relay {
  requester: Addr;
  theirSeq: number;
  nackAt: number;
  acked: boolean;
}

interface Suspicion {
  inc: number;
  /** Who raised it first (not a confirmation). */
  origin: number;
  start: number;
  min: number;
  max: number;
  k: number;
  confirmations: Set<number>;
  deadline: number;
}

interface Queued {
  u: Update;
  n: number;
}

/** Counters for the simulator's report and for inspection. */
export interface MembershipStats {
  probes: number;
  probesFailed: number;
  indirectProbes: number;
  suspicions: number;
  refutations: number;
  deaths: number;
  droppedOtherRealm: number;
}

/** One node's SWIM + Lifeguard membership. */
export class Membership implements Core<Msg, MemberEvent> {
  readonly addr: Addr;
  readonly self: number;
  readonly dir: Directory;
  readonly table: MemberTable;
  readonly cfg: MembershipConfig;
  readonly stats: MembershipStats = {
    probes: 0,
    probesFailed: 0,
    indirectProbes: 0,
    suspicions: 0,
    refutations: 0,
    deaths: 0,
    droppedOtherRealm: 0,
  };
  incarnation: number;
  /** Lifeguard's local health score, 0 (healthy) to `awarenessMax`. */
  awareness = 0;
  readonly #realm: string;
  readonly #meta: MemberMeta;
  readonly #rng: Rng;
  #out: Outgoing<Msg>[] = [];
  #events: MemberEvent[] = [];
  #seq = 1;
  #probe: Probe | null = null;
  #nextProbeAt: number;
  readonly #relays = new Map<number, Relay>();
  readonly #suspicions = new Map<number, Suspicion>();
  readonly #queue = new Map<number, Queued>();
  #nextGossipAt = 0;
  readonly #seeds: Addr[];
  #joined: boolean;
  #joinAttempt = 0;
  #nextJoinAt: number;
  #nextSyncAt: number;
  #leaving = false;
  /** Members held dead (not left): candidates for reconnection. */
  readonly #dead = new Set<number>();
  #nextReconnectAt: number;
  // Probe order: a stride permutation of directory indices, new per pass (no per-member memory).
  #passCap = 0;
  #passStart = 0;
  #passStep = 1;
  #passPos = 0;

  constructor(o: MembershipOptions) {
    this.cfg = { ...DEFAULT_CONFIG, ...o.config };
    this.addr = o.addr;
    this.dir = o.directory ?? new Directory();
    this.table = new MemberTable(this.dir);
    this.#realm = o.meta.realm;
    this.#meta = o.meta;
    this.#rng = o.rng;
    this.incarnation = o.incarnation ?? 0;
    const now = o.now ?? 0;
    this.self = this.dir.intern(o.id, o.addr, o.meta);
    this.dir.learn(this.self, this.incarnation, o.addr, o.meta);
    this.table.ensure(this.dir.size);
    this.table.set(this.self, ALIVE, this.incarnation, now);
    this.#seeds = (o.seeds ?? []).filter((s) => s !== o.addr);
    this.#joined = this.#seeds.length === 0;
    this.#nextJoinAt = now;
    // Spread the first probes and syncs over one interval, so a cluster started at once does not
    // probe in lockstep.
    this.#nextProbeAt = now + this.#rng() * this.cfg.probeIntervalMs;
    this.#nextSyncAt = now + this.#syncInterval() * (0.5 + this.#rng());
    this.#nextReconnectAt = now + this.cfg.reconnectIntervalMs * (0.5 + this.#rng());
  }

  // ------------------------------------------------------------------ driver interface

  drain(): Output<Msg, MemberEvent> {
    const out = { send: this.#out, events: this.#events };
    this.#out = [];
    this.#events = [];
    return out;
  }

  nextWake(): number {
    let t = Infinity;
    const p = this.#probe;
    if (p) {
      if (!p.indirect && !p.acked && p.timeoutAt < t) t = p.timeoutAt;
      if (p.endAt < t) t = p.endAt;
    } else if (!this.#leaving && this.#nextProbeAt < t) t = this.#nextProbeAt;
    for (const r of this.#relays.values()) if (!r.acked && r.nackAt < t) t = r.nackAt;
    for (const s of this.#suspicions.values()) if (s.deadline < t) t = s.deadline;
    if (this.#queue.size > 0 && this.#nextGossipAt < t) t = this.#nextGossipAt;
    if (!this.#joined && this.#nextJoinAt < t) t = this.#nextJoinAt;
    if (this.#joined && !this.#leaving && this.cfg.syncIntervalMs > 0 && this.#nextSyncAt < t) {
      t = this.#nextSyncAt;
    }
    if (this.#dead.size > 0 && this.cfg.reconnectIntervalMs > 0 && this.#nextReconnectAt < t) {
      t = this.#nextReconnectAt;
    }
    return t;
  }

  tick(now: number): void {
    this.#tickRelays(now);
    this.#tickProbe(now);
    this.#tickSuspicions(now);
    if (this.#queue.size > 0 && now >= this.#nextGossipAt) this.#gossip(now);
    if (!this.#joined && now >= this.#nextJoinAt) this.#tryJoin(now);
    this.#tickReconnect(now);
    if (this.#joined && !this.#leaving && this.cfg.syncIntervalMs > 0 && now >= this.#nextSyncAt) {
      this.#nextSyncAt = now + this.#syncInterval();
      const peer = this.#randomLive([this.self]);
      if (peer >= 0) this.#digestSync(peer);
    }
  }

  /** Anti-entropy: our digest alone; the peer answers with its view only if the digests differ. */
  #digestSync(member: number): void {
    this.#send(this.dir.entries[member]!.addr, {
      t: "sync",
      realm: this.#realm,
      from: this.self,
      join: false,
      digest: this.#digest(),
      members: [],
      reply: true,
    });
  }

  #tickReconnect(now: number): void {
    if (this.#dead.size === 0 || this.cfg.reconnectIntervalMs <= 0 || now < this.#nextReconnectAt) {
      return;
    }
    this.#nextReconnectAt = now + this.cfg.reconnectIntervalMs;
    let k = Math.floor(this.#rng() * this.#dead.size);
    for (const member of this.#dead) {
      if (k-- > 0) continue;
      this.#digestSync(member);
      return;
    }
  }

  receive(now: number, from: Addr, m: Msg): void {
    if (m.realm !== this.#realm) {
      this.stats.droppedOtherRealm++;
      return;
    }
    switch (m.t) {
      case "ping":
        this.#merge(now, m.piggy, from);
        if (m.target !== this.self) return; // meant for a process that was here before
        this.#send(from, {
          t: "ack",
          realm: this.#realm,
          from: this.self,
          seq: m.seq,
          piggy: this.#piggy(64, m.from),
        });
        return;
      case "ack": {
        this.#merge(now, m.piggy, from);
        const p = this.#probe;
        if (p && p.seq === m.seq) {
          p.acked = true;
          return;
        }
        const r = this.#relays.get(m.seq);
        if (r && !r.acked) {
          r.acked = true;
          this.#relays.delete(m.seq);
          this.#send(r.requester, {
            t: "ack",
            realm: this.#realm,
            from: this.self,
            seq: r.theirSeq,
            piggy: [],
          });
        }
        return;
      }
      case "nack": {
        const p = this.#probe;
        if (p && p.seq === m.seq) p.nacks++;
        return;
      }
      case "ping-req": {
        this.#merge(now, m.piggy, from);
        const seq = this.#seq++;
        this.#relays.set(seq, {
          requester: from,
          theirSeq: m.seq,
          nackAt: now + this.#scaled(this.cfg.probeTimeoutMs) * 0.8,
          acked: false,
        });
        this.#send(m.targetAddr, {
          t: "ping",
          realm: this.#realm,
          from: this.self,
          seq,
          target: m.target,
          piggy: [],
        });
        return;
      }
      case "sync": {
        this.#merge(now, m.members, from);
        if (!m.reply && !m.join) return;
        const digest = this.#digest();
        const agree = !m.join && digest[0] === m.digest[0] && digest[1] === m.digest[1];
        this.#send(from, {
          t: "sync-reply",
          realm: this.#realm,
          from: this.self,
          digest,
          members: agree ? [] : this.#fullState(),
        });
        return;
      }
      case "sync-reply": {
        this.#merge(now, m.members, from);
        if (!this.#joined) {
          this.#joined = true;
          this.#nextSyncAt = now + this.#syncInterval() * (0.5 + this.#rng());
          this.#event("joined", this.self, this.incarnation);
          return;
        }
        const digest = this.#digest();
        if (m.members.length > 0 && (digest[0] !== m.digest[0] || digest[1] !== m.digest[1])) {
          // The views still differ after taking theirs: give them ours.
          this.#send(from, {
            t: "sync",
            realm: this.#realm,
            from: this.self,
            join: false,
            digest,
            members: this.#fullState(),
            reply: false,
          });
        }
        return;
      }
      case "gossip":
        this.#merge(now, m.piggy, from);
        return;
    }
  }

  // ------------------------------------------------------------------ public operations

  /**
   * Makes every member in `members` alive at the incarnation the directory holds (the
   * simulator's warm start: a cluster that has already formed). No messages, no events.
   */
  bootstrap(members: readonly number[], now: number): void {
    this.table.ensure(this.dir.size);
    for (const i of members) {
      if (i === this.self) continue;
      this.#set(i, ALIVE, this.dir.entries[i]!.inc, now);
    }
    this.#joined = true;
    this.#nextSyncAt = now + this.#syncInterval() * (0.5 + this.#rng());
  }

  /** Leaves gracefully: a `left` update about itself, gossiped; probing stops. */
  leave(now: number): void {
    if (this.#leaving) return;
    this.#leaving = true;
    this.#probe = null;
    this.incarnation++;
    const u: Update = { kind: U_LEFT, member: this.self, inc: this.incarnation, from: this.self };
    this.#set(this.self, LEFT, this.incarnation, now);
    this.#enqueue(u);
    this.#nextGossipAt = now;
    this.#gossip(now);
  }

  /** Members this node knows (itself included), for inspection. */
  members(): MemberView[] {
    const out: MemberView[] = [];
    const t = this.table;
    for (let i = 0; i < this.dir.size; i++) {
      const s = t.stateOf(i);
      if (s === UNKNOWN) continue;
      const e = this.dir.entries[i]!;
      out.push({
        id: e.id,
        addr: e.addr,
        state: STATE_NAMES[s]!,
        inc: t.incOf(i),
        since: t.changedAt[i]!,
        meta: e.meta,
      });
    }
    return out;
  }

  /** The state of `member` in this node's view. */
  stateOf(member: number): StateName {
    return STATE_NAMES[this.table.stateOf(member)]!;
  }

  /** Members alive or suspect, itself included. */
  get liveCount(): number {
    return this.table.live;
  }

  get joined(): boolean {
    return this.#joined;
  }

  // ------------------------------------------------------------------ probing

  #scaled(ms: number): number {
    return ms * (this.awareness + 1);
  }

  #health(delta: number): void {
    this.awareness = Math.max(0, Math.min(this.cfg.awarenessMax, this.awareness + delta));
  }

  #tickProbe(now: number): void {
    let p = this.#probe;
    if (p && !p.acked && !p.indirect && now >= p.timeoutAt) {
      // No direct ack in time: ask others to try.
      p.indirect = true;
      this.stats.indirectProbes++;
      const exclude = [this.self, p.target];
      const target = this.dir.entries[p.target]!;
      for (let i = 0; i < this.cfg.indirectChecks; i++) {
        const helper = this.#randomLive(exclude);
        if (helper < 0) break;
        exclude.push(helper);
        p.expectedNacks++;
        this.#send(this.dir.entries[helper]!.addr, {
          t: "ping-req",
          realm: this.#realm,
          from: this.self,
          seq: p.seq,
          target: p.target,
          targetAddr: target.addr,
          piggy: this.#piggy(64, helper),
        });
      }
    }
    if (p && now >= p.endAt) {
      this.#probe = null;
      if (p.acked) this.#health(p.indirect ? 0 : -1);
      else {
        this.stats.probesFailed++;
        this.#health(p.expectedNacks > 0 ? Math.max(0, p.expectedNacks - p.nacks) : 1);
        const state = this.table.stateOf(p.target);
        const inc = this.table.incOf(p.target);
        if (state === ALIVE) this.#suspect(now, p.target, inc, this.self);
        else if (state === SUSPECT) {
          // Already suspected by someone else: our failed probe confirms it (while it still
          // counts: the first k confirmations).
          const s = this.#suspicions.get(p.target);
          if (
            s && s.origin !== this.self && !s.confirmations.has(this.self) &&
            s.confirmations.size < s.k
          ) {
            s.confirmations.add(this.self);
            s.deadline = s.start + Membership.#timeout(s);
            this.#enqueue({ kind: U_SUSPECT, member: p.target, inc, from: this.self });
          }
        }
      }
      p = null;
    }
    if (!p && !this.#leaving && now >= this.#nextProbeAt) {
      const target = this.#nextTarget();
      const interval = this.#scaled(this.cfg.probeIntervalMs);
      this.#nextProbeAt = now + interval;
      if (target < 0) return;
      const seq = this.#seq++;
      this.stats.probes++;
      this.#probe = {
        target,
        seq,
        timeoutAt: now + this.#scaled(this.cfg.probeTimeoutMs),
        endAt: now + interval,
        acked: false,
        indirect: false,
        expectedNacks: 0,
        nacks: 0,
      };
      this.#send(this.dir.entries[target]!.addr, {
        t: "ping",
        realm: this.#realm,
        from: this.self,
        seq,
        target,
        piggy: this.#piggy(64 + 34, target),
      });
    }
  }

  #tickRelays(now: number): void {
    for (const [seq, r] of this.#relays) {
      if (r.acked) {
        this.#relays.delete(seq);
        continue;
      }
      if (now >= r.nackAt) {
        this.#relays.delete(seq);
        this.#send(r.requester, {
          t: "nack",
          realm: this.#realm,
          from: this.self,
          seq: r.theirSeq,
        });
      }
    }
  }

  /** The next member to probe: each alive or suspect member once per pass, in a random order. */
  #nextTarget(): number {
    const t = this.table;
    if (t.live <= 1) return -1;
    for (let tries = 0; tries < 2 * this.dir.size + 2; tries++) {
      if (this.#passPos >= this.#passCap || this.#passCap !== this.dir.size) this.#newPass();
      const i = (this.#passStart + this.#passPos * this.#passStep) % this.#passCap;
      this.#passPos++;
      if (i === this.self) continue;
      const s = t.stateOf(i);
      if (s === ALIVE || s === SUSPECT) return i;
    }
    return -1;
  }

  #newPass(): void {
    const n = this.dir.size;
    this.#passCap = n;
    this.#passPos = 0;
    this.#passStart = Math.floor(this.#rng() * n);
    let step = 1;
    for (let i = 0; i < 16 && n > 2; i++) {
      const s = 1 + Math.floor(this.#rng() * (n - 1));
      if (gcd(s, n) === 1) {
        step = s;
        break;
      }
    }
    this.#passStep = step;
  }

  /** A random alive (or, with `suspects`, suspect) member not in `exclude`, or -1. */
  #randomLive(exclude: readonly number[], suspects = false): number {
    const n = this.dir.size;
    const t = this.table;
    if (t.live <= exclude.length) return -1;
    const ok = (i: number) => {
      const s = t.stateOf(i);
      return (s === ALIVE || (suspects && s === SUSPECT)) && !exclude.includes(i);
    };
    for (let tries = 0; tries < 32; tries++) {
      const i = Math.floor(this.#rng() * n);
      if (ok(i)) return i;
    }
    const start = Math.floor(this.#rng() * n);
    for (let k = 0; k < n; k++) {
      const i = (start + k) % n;
      if (ok(i)) return i;
    }
    return -1;
  }

  // ------------------------------------------------------------------ suspicion

  #suspicionBounds(): { min: number; max: number; k: number } {
    const n = Math.max(1, this.table.live);
    const min = this.cfg.suspicionMult * Math.max(1, Math.log10(n)) * this.cfg.probeIntervalMs;
    return {
      min,
      max: this.cfg.suspicionMaxTimeoutMult * min,
      k: n < 3 ? 0 : this.cfg.suspicionMult - 2,
    };
  }

  static #timeout(s: Suspicion): number {
    if (s.k < 1) return s.min;
    const c = Math.min(s.confirmations.size, s.k);
    const frac = Math.log(c + 1) / Math.log(s.k + 1);
    return Math.max(s.min, s.max - (s.max - s.min) * frac);
  }

  #suspect(now: number, member: number, inc: number, from: number): void {
    const b = this.#suspicionBounds();
    const s: Suspicion = {
      inc,
      origin: from,
      start: now,
      min: b.min,
      max: b.max,
      k: b.k,
      confirmations: new Set(),
      deadline: 0,
    };
    s.deadline = now + Membership.#timeout(s);
    this.#suspicions.set(member, s);
    this.#set(member, SUSPECT, inc, now);
    this.stats.suspicions++;
    this.#enqueue({ kind: U_SUSPECT, member, inc, from });
    this.#event("suspect", member, inc);
  }

  #tickSuspicions(now: number): void {
    for (const [member, s] of this.#suspicions) {
      if (now < s.deadline) continue;
      this.#suspicions.delete(member);
      if (this.table.stateOf(member) !== SUSPECT || this.table.incOf(member) !== s.inc) continue;
      this.#set(member, DEAD, s.inc, now);
      this.stats.deaths++;
      this.#enqueue({ kind: U_DEAD, member, inc: s.inc, from: this.self });
      this.#event("dead", member, s.inc);
    }
  }

  // ------------------------------------------------------------------ updates

  /** Applies updates that came from `from` (the sender of the message that carried them). */
  #merge(now: number, updates: readonly Update[], from: Addr): void {
    for (const u of updates) this.#apply(now, u, from);
  }

  #apply(now: number, u: Update, from: Addr): void {
    const m = u.member;
    if (m === this.self) return this.#aboutSelf(now, u, from);
    const t = this.table;
    if (m >= t.state.length) t.ensure(this.dir.size);
    const state = t.stateOf(m);
    const inc = t.incOf(m);
    switch (u.kind) {
      case U_ALIVE: {
        const meta = u.meta ?? this.dir.entries[m]!.meta;
        if (meta.realm !== this.#realm) {
          this.stats.droppedOtherRealm++;
          return;
        }
        if (state !== UNKNOWN && u.inc <= inc) return;
        if (u.addr !== undefined) this.dir.learn(m, u.inc, u.addr, meta);
        this.#suspicions.delete(m);
        this.#set(m, ALIVE, u.inc, now);
        this.#enqueue(u);
        this.#event("alive", m, u.inc);
        return;
      }
      case U_SUSPECT: {
        if (state === UNKNOWN || state === DEAD || state === LEFT || u.inc < inc) return;
        if (state === SUSPECT && u.inc === inc) {
          const s = this.#suspicions.get(m);
          // Only the first k confirmations shorten the timeout, and only they are news worth
          // re-gossiping (past k, every prober's failure would start another wave).
          if (!s || u.from === s.origin || s.confirmations.has(u.from)) return;
          if (s.confirmations.size >= s.k) return;
          s.confirmations.add(u.from);
          s.deadline = s.start + Membership.#timeout(s);
          this.#enqueue(u); // a new confirmation is news
          return;
        }
        this.#suspect(now, m, u.inc, u.from);
        return;
      }
      case U_DEAD:
      case U_LEFT: {
        // "left" comes only from the member itself, so it also replaces a "dead" we concluded
        // (the leaver's goodbye can arrive after our own suspicion ran out, on a busy node).
        const final = u.kind === U_LEFT ? state === LEFT : state === DEAD || state === LEFT;
        if (state === UNKNOWN || final || u.inc < inc) return;
        this.#suspicions.delete(m);
        this.#set(m, u.kind === U_LEFT ? LEFT : DEAD, u.inc, now);
        this.#enqueue(u);
        this.#event(u.kind === U_LEFT ? "left" : "dead", m, u.inc);
        return;
      }
    }
  }

  /**
   * News about this node itself: refute anything but our own word, with a higher incarnation.
   * The refutation is gossiped as usual and also sent at once to whoever told us: that sender
   * just reached us, while our gossip targets may not be reachable (members behind NATs before
   * they have sessions), and a suspicion confirmed by several members runs out in seconds.
   */
  #aboutSelf(now: number, u: Update, from: Addr): void {
    if (this.#leaving) return;
    if (u.kind === U_ALIVE && u.inc <= this.incarnation) return;
    if (u.kind !== U_ALIVE && u.inc < this.incarnation) return;
    this.incarnation = u.inc + 1;
    this.stats.refutations++;
    if (u.kind !== U_ALIVE) this.#health(1);
    this.dir.learn(this.self, this.incarnation, this.addr, this.#meta);
    this.#set(this.self, ALIVE, this.incarnation, now);
    this.#enqueue(this.#aliveSelf());
    this.#event("refute", this.self, this.incarnation);
    if (u.kind !== U_ALIVE) {
      this.#send(from, {
        t: "gossip",
        realm: this.#realm,
        from: this.self,
        piggy: [this.#aliveSelf()],
      });
    }
  }

  #aliveSelf(): Update {
    return {
      kind: U_ALIVE,
      member: this.self,
      inc: this.incarnation,
      from: this.self,
      addr: this.addr,
      meta: this.#meta,
    };
  }

  /** Sets a member's state in the table, keeping the dead set right. */
  #set(member: number, state: number, inc: number, now: number): void {
    this.table.set(member, state, inc, now);
    if (state === DEAD) this.#dead.add(member);
    else this.#dead.delete(member);
  }

  #event(kind: MemberEvent["kind"], member: number, inc: number): void {
    this.#events.push({ kind, member, inc });
  }

  // ------------------------------------------------------------------ dissemination

  #retransmitLimit(): number {
    return this.cfg.retransmitMult * Math.ceil(Math.log10(this.table.live + 1));
  }

  #enqueue(u: Update): void {
    this.#queue.set(u.member, { u, n: 0 });
  }

  /**
   * Updates to piggyback within the packet budget, fewest transmissions first — except that news
   * about the recipient itself goes first: a suspect learns of its suspicion from the next
   * message it gets, and can refute at once.
   */
  #piggy(overhead: number, recipient = -1): Update[] {
    if (this.#queue.size === 0) return [];
    let budget = this.cfg.maxPacketBytes - overhead;
    const limit = this.#retransmitLimit();
    const out: Update[] = [];
    const take = (q: Queued): void => {
      const size = updateSize(q.u);
      if (size > budget) return;
      budget -= size;
      out.push(q.u);
      if (++q.n >= limit) this.#queue.delete(q.u.member);
    };
    const own = recipient >= 0 ? this.#queue.get(recipient) : undefined;
    if (own) take(own);
    const items = [...this.#queue.values()].sort((a, b) => a.n - b.n);
    for (const q of items) if (q !== own) take(q);
    return out;
  }

  #gossip(now: number): void {
    this.#nextGossipAt = now + this.cfg.gossipIntervalMs;
    const sent: number[] = [this.self];
    for (let i = 0; i < this.cfg.gossipNodes && this.#queue.size > 0; i++) {
      const peer = this.#randomLive(sent, true);
      if (peer < 0) break;
      sent.push(peer);
      this.#send(this.dir.entries[peer]!.addr, {
        t: "gossip",
        realm: this.#realm,
        from: this.self,
        piggy: this.#piggy(48, peer),
      });
    }
  }

  /** Everything this node knows, for a sync (alive and suspect members with their address). */
  #fullState(): Update[] {
    const out: Update[] = [];
    const t = this.table;
    for (let i = 0; i < this.dir.size; i++) {
      const s = t.stateOf(i);
      if (s === UNKNOWN) continue;
      const inc = i === this.self ? this.incarnation : t.incOf(i);
      if (s === ALIVE || s === SUSPECT) {
        const e = this.dir.entries[i]!;
        out.push({
          kind: s === ALIVE ? U_ALIVE : U_SUSPECT,
          member: i,
          inc,
          from: this.self,
          addr: e.addr,
          meta: e.meta,
        });
      } else out.push({ kind: s === LEFT ? U_LEFT : U_DEAD, member: i, inc, from: this.self });
    }
    return out;
  }

  #tryJoin(now: number): void {
    this.#nextJoinAt = now + this.cfg.joinRetryMs;
    const seed = this.#seeds[this.#joinAttempt++ % this.#seeds.length]!;
    this.#send(seed, {
      t: "sync",
      realm: this.#realm,
      from: this.self,
      join: true,
      digest: this.#digest(),
      members: [this.#aliveSelf()],
      reply: true,
    });
  }

  #digest(): [number, number] {
    return [this.table.d1, this.table.d2];
  }

  /** Anti-entropy interval, stretched as the cluster grows (a full view is O(N)). */
  #syncInterval(): number {
    const n = Math.max(1, this.table.live);
    return this.cfg.syncIntervalMs * Math.max(1, Math.ceil(Math.log2(n / 32)));
  }

  #send(to: Addr, msg: Msg): void {
    this.#out.push({ to, msg, size: sizeOf(msg) });
  }
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}
