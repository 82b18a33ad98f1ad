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
 *   ceil(log10(N + 1)) times (N counted at each send), fewest-sent first and newest first among
 *   those; a newer update about a member replaces the older one.
 * - Join: a full-state `sync` with a seed; the joiner then gossips its own alive too. Repair of
 *   what gossip missed (docs/membership.md, "Settling"): a digest sync with a random member
 *   once the view has settled after a join or a new member, a sync asked of a member that
 *   speaks to a node that does not know it, and periodic syncs. Leave: a `left` update about
 *   oneself, gossiped like the others.
 * - Trust (docs/membership.md, "What a member can and cannot make others believe"): a member's
 *   own state (alive, address, metadata, left, incarnation) comes only from its own record,
 *   whose signature the edge checked before `receive` (`screen` says which to check); a suspect
 *   or dead claim by others is believed only at the incarnation the member last signed, so the
 *   member can always refute it with the next one, at most once per `refuteIntervalMs`. New
 *   members are bounded per message, per source and per view; pings go only to members at their
 *   own address, and a `ping-req` only toward a member this node knows, at that address.
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
  ED25519_PROOF_BYTES,
  hasRecord,
  MAX_INCARNATION,
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
  /**
   * Most members a view holds (alive, suspect, dead and left). Past it, the member dead or left
   * the longest is forgotten to make room; when none is, a new member is refused.
   */
  maxMembers: number;
  /** Most new members one message may introduce (an answer to this node's own sync excepted). */
  maxNewPerMessage: number;
  /**
   * New members one sender may introduce: a bucket of this many, refilled at this many a minute
   * (answers to this node's own syncs take none).
   */
  newMembersPerSource: number;
  /** Shortest time between two refutations (each uses an incarnation of the 2^32). */
  refuteIntervalMs: number;
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
  maxMembers: 16_384,
  maxNewPerMessage: 64,
  newMembersPerSource: 256,
  refuteIntervalMs: 100,
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
  /**
   * Bytes the signature adds to a record of this node's own (the edge signs it when it encodes):
   * for the packet budget and traffic accounting. Default Ed25519's (112); 0 counts unsigned.
   */
  proofBytes?: number;
}

/** Verdicts of `screen`, one per update. */
export const SCREEN_CHECK = 0;
export const SCREEN_PASS = 1;
export const SCREEN_DROP = 2;
export const SCREEN_BOUND = 3;

/** One update as `screen` sees it, before anything of it is interned. */
export interface ScreenItem {
  /** The member's index, or -1 when this node's directory does not know the id. */
  member: number;
  kind: number;
  inc: number;
  /** It carries the member's own record (alive and left always). */
  record: boolean;
  /** The record's realm. */
  realm?: string;
}

interface Probe {
  target: number;
  /** Members asked to probe indirectly: only their acks and nacks count, besides the target's. */
  helpers: number[];
  seq: number;
  timeoutAt: number;
  endAt: number;
  acked: boolean;
  indirect: boolean;
  expectedNacks: number;
  nacks: number;
}

interface Relay {
  /** Whom the requester asked about: only its ack is relayed. */
  target: number;
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
  /** Order of enqueueing: among updates sent as often, the newest goes first. */
  seq: number;
}

/** New members a sender may still introduce (a token bucket). */
interface Bucket {
  tokens: number;
  at: number;
}

/** What one received message has used of the bounds on new members. */
interface Intake {
  sender: number;
  /** An answer to a sync this node sent: only the view's bound applies. */
  solicited: boolean;
  admitted: number;
  /** New members refused: forgotten once the message is merged. */
  refused: number[];
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
  /** Records of other members taken (each one's signature was checked once, by the edge). */
  records: number;
  /** New members refused: per message, per source, or the view full of live members. */
  refusedByBound: number;
  /** Dead and left members forgotten to make room for new ones. */
  forgotten: number;
  /** Suspect/dead claims below the member's latest signed incarnation (late news). */
  staleClaims: number;
  /** Suspect/dead claims above the member's latest signed incarnation: never signed, refused. */
  claimsAhead: number;
  /** Claims by an accuser this node does not know. */
  claimsUnknownAccuser: number;
  /** `ping-req`s toward a member this node does not know (answered `nack`, nothing dialed). */
  refusedPingReqs: number;
  /** Acks and nacks from a member that was not asked (not the target, not a helper). */
  refusedAcks: number;
  /** Refutations held back to keep `refuteIntervalMs` between two. */
  refutationsDeferred: number;
  /** Digest syncs sent early, soon after this node joined or learned a new member (settling). */
  settleSyncs: number;
  /** Digest syncs asked of a member this node did not know, when it spoke to this node. */
  pulls: number;
  /** Such syncs not asked: the same member asked within 10 s, or another within 1 s. */
  pullsHeldBack: number;
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
    records: 0,
    refusedByBound: 0,
    forgotten: 0,
    staleClaims: 0,
    claimsAhead: 0,
    claimsUnknownAccuser: 0,
    refusedPingReqs: 0,
    refusedAcks: 0,
    refutationsDeferred: 0,
    settleSyncs: 0,
    pulls: 0,
    pullsHeldBack: 0,
  };
  incarnation: number;
  /** Lifeguard's local health score, 0 (healthy) to `awarenessMax`. */
  awareness = 0;
  readonly #realm: string;
  #meta: MemberMeta;
  readonly #rng: Rng;
  #out: Outgoing<Msg>[] = [];
  #events: MemberEvent[] = [];
  #seq = 1;
  #probe: Probe | null = null;
  #nextProbeAt: number;
  readonly #relays = new Map<number, Relay>();
  readonly #suspicions = new Map<number, Suspicion>();
  readonly #queue = new Map<number, Queued>();
  #queued = 0;
  #nextGossipAt = 0;
  readonly #seeds: Addr[];
  #joined: boolean;
  #joinAttempt = 0;
  #nextJoinAt: number;
  #nextSyncAt: number;
  /** Settling: the first view change not yet followed by a sync, when the sync is due, the last. */
  #settleFrom = Infinity;
  #settleAt = Infinity;
  #lastSettleAt = -Infinity;
  #leaving = false;
  /** Members held dead (not left): candidates for reconnection. */
  readonly #dead = new Set<number>();
  #nextReconnectAt: number;
  // Probe order: a stride permutation of directory indices, new per pass (no per-member memory).
  #passCap = 0;
  #passStart = 0;
  #passStep = 1;
  #passPos = 0;
  readonly #proofBytes: number;
  /** New members each sender may still introduce. */
  readonly #buckets = new Map<number, Bucket>();
  /** Members this node asked for (or gave) a full view, until when their answer counts as asked. */
  readonly #asked = new Map<number, number>();
  #lastRefuteAt = -Infinity;
  /** Until when this node does not again tell a member (or an address) that a view is behind. */
  readonly #recent = new Map<string, number>();
  #lastPullAt = -Infinity;
  /** Members not known here that sent a message: when the first came (at most MAX_STRANGERS). */
  readonly #strangers = new Map<number, number>();
  /** A refutation held back (refuteIntervalMs): when it is due, and whom to tell at once. */
  #refuteDue = Infinity;
  #refuteTell: Addr | null = null;

  constructor(o: MembershipOptions) {
    this.cfg = { ...DEFAULT_CONFIG, ...o.config };
    this.addr = o.addr;
    this.dir = o.directory ?? new Directory();
    this.table = new MemberTable(this.dir);
    this.#realm = o.meta.realm;
    this.#meta = o.meta;
    this.#rng = o.rng;
    this.#proofBytes = o.proofBytes ?? ED25519_PROOF_BYTES;
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
    if (this.#settleAt < t) t = this.#settleAt;
    if (this.#dead.size > 0 && this.cfg.reconnectIntervalMs > 0 && this.#nextReconnectAt < t) {
      t = this.#nextReconnectAt;
    }
    if (this.#refuteDue < t) t = this.#refuteDue;
    return t;
  }

  tick(now: number): void {
    if (now >= this.#refuteDue) this.#refute(now);
    this.#tickRelays(now);
    this.#tickProbe(now);
    this.#tickSuspicions(now);
    if (this.#queue.size > 0 && now >= this.#nextGossipAt) this.#gossip(now);
    if (!this.#joined && now >= this.#nextJoinAt) this.#tryJoin(now);
    this.#tickReconnect(now);
    if (this.#joined && !this.#leaving && this.cfg.syncIntervalMs > 0 && now >= this.#nextSyncAt) {
      this.#nextSyncAt = now + this.#syncInterval();
      const peer = this.#randomLive([this.self]);
      if (peer >= 0) this.#digestSync(peer, now);
    }
    if (now >= this.#settleAt) this.#settle(now);
  }

  /**
   * The view just changed in a way gossip may not have carried everywhere: this node joined, or
   * learned a member it did not know. Gossip gives each update a bounded number of transmissions
   * (`retransmitMult` × log10 N), so now and then a member misses one (about 1 in 50 per member
   * and update below 10 members); the next periodic sync repairs it, 15 s to minutes later. So a
   * digest sync with a random member follows once the view has been quiet for about the time
   * the news takes to spread (`#settleDelay`): when views differ, the two exchange them (a
   * missed member is learned, or taught), which is itself a change and settles again; when they
   * agree it costs two small messages. At most one such sync per settle delay × the periodic
   * sync's size factor (`#syncScale`: 1 up to 64 members, 3 at 200, 9 at 10,000: views that
   * differ cost O(N)), whatever the number of changes (a burst of joins, or a member introducing
   * others), and at the latest `SETTLE_MAX` delays after the first change of a burst.
   */
  #unsettled(now: number): void {
    if (!this.#joined || this.#leaving || this.cfg.syncIntervalMs <= 0) return;
    const q = this.#settleDelay();
    if (this.#settleFrom === Infinity) this.#settleFrom = now;
    this.#settleAt = Math.max(
      this.#lastSettleAt + q * this.#syncScale(),
      Math.min(this.#settleFrom + SETTLE_MAX * q, now + q * (1 + 0.5 * this.#rng())),
    );
  }

  #settle(now: number): void {
    this.#settleFrom = this.#settleAt = Infinity;
    if (!this.#joined || this.#leaving || this.cfg.syncIntervalMs <= 0) return;
    this.#lastSettleAt = now;
    const peer = this.#randomLive([this.self]);
    if (peer < 0) return;
    this.stats.settleSyncs++;
    this.#digestSync(peer, now);
  }

  /** How long news takes to spread: its transmissions, `gossipNodes` per gossip interval. */
  #settleDelay(): number {
    const rounds = Math.ceil(this.#retransmitLimit() / Math.max(1, this.cfg.gossipNodes));
    return this.cfg.gossipIntervalMs * (rounds + 1);
  }

  /** Anti-entropy: our digest alone; the peer answers with its view only if the digests differ. */
  #digestSync(member: number, now: number, to: Addr = this.dir.entries[member]!.addr): void {
    this.#ask(member, now);
    this.#send(to, {
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
      this.#digestSync(member, now);
      return;
    }
  }

  /**
   * What of a message's updates to check before `receive` (the edge calls it; the simulator and
   * tests, whose updates need no checking, do not): `SCREEN_CHECK` a record that would change
   * this view (its signature must be checked first), `SCREEN_PASS` a claim (to keep without its
   * record), `SCREEN_DROP` what changes nothing (leave it out, record and all), `SCREEN_BOUND` a
   * new member past a bound (refused, counted). It follows the rules of `receive`, reads the
   * view and changes nothing but the counters of what it drops.
   */
  screen(now: number, sender: number, t: Msg["t"], items: readonly ScreenItem[]): number[] {
    const out = new Array<number>(items.length);
    const tb = this.table;
    let budget = this.#budget(now, sender, this.#solicited(now, t, sender, false));
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      if (it.record && it.realm !== this.#realm) {
        this.stats.droppedOtherRealm++;
        out[i] = SCREEN_DROP;
        continue;
      }
      const self = it.member === this.self;
      const state = it.member < 0 ? UNKNOWN : tb.stateOf(it.member);
      if (state === UNKNOWN && !self) {
        if (!it.record) out[i] = SCREEN_DROP; // a claim about a member this view does not know
        else if (budget > 0) {
          budget--;
          out[i] = SCREEN_CHECK;
        } else {
          this.stats.refusedByBound++;
          out[i] = SCREEN_BOUND;
        }
        continue;
      }
      const inc = self ? this.incarnation : tb.incOf(it.member);
      if (it.kind === U_ALIVE) out[i] = it.inc > inc ? SCREEN_CHECK : SCREEN_DROP;
      else if (it.kind === U_LEFT) {
        out[i] = (self || state !== LEFT) && it.inc >= inc ? SCREEN_CHECK : SCREEN_DROP;
      } else out[i] = it.record && it.inc > inc ? SCREEN_CHECK : SCREEN_PASS;
    }
    return out;
  }

  receive(now: number, from: Addr, m: Msg): void {
    if (m.realm !== this.#realm) {
      this.stats.droppedOtherRealm++;
      return;
    }
    const intake: Intake = {
      sender: m.from,
      solicited: this.#solicited(now, m.t, m.from, true),
      admitted: 0,
      refused: [],
    };
    try {
      this.#receive(now, from, m, intake);
      this.#behind(now, from, m.from);
      this.#unknownSender(now, from, m);
    } finally {
      // New members refused by a bound: forgotten (the edge interned them to hand them over).
      for (const i of intake.refused) {
        if (this.table.stateOf(i) === UNKNOWN && i !== m.from) this.dir.release(i);
      }
    }
  }

  #receive(now: number, from: Addr, m: Msg, intake: Intake): void {
    switch (m.t) {
      case "ping":
        this.#merge(now, m.piggy, from, intake);
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
        this.#merge(now, m.piggy, from, intake);
        const p = this.#probe;
        if (p && p.seq === m.seq) {
          // The target's own ack, or a helper's relaying it: nobody else can ack for the target.
          if (m.from === p.target || (p.indirect && p.helpers.includes(m.from))) p.acked = true;
          else this.stats.refusedAcks++;
          return;
        }
        const r = this.#relays.get(m.seq);
        if (r && !r.acked) {
          if (m.from !== r.target) {
            this.stats.refusedAcks++;
            return;
          }
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
        if (p && p.seq === m.seq) {
          if (p.helpers.includes(m.from)) p.nacks++;
          else this.stats.refusedAcks++;
        }
        return;
      }
      case "ping-req": {
        this.#merge(now, m.piggy, from, intake);
        const t = m.target;
        const st = t < 0 ? UNKNOWN : this.table.stateOf(t);
        if (
          t === this.self || st === UNKNOWN || this.dir.entries[t]!.addr === "" ||
          this.#relays.size >= 1024
        ) {
          // Only toward a member this node knows, at the address of its own record (never one a
          // message names); one it holds dead too (its view may be behind the requester's).
          // "No" at once, so the requester does not blame its own links.
          this.stats.refusedPingReqs++;
          this.#send(from, { t: "nack", realm: this.#realm, from: this.self, seq: m.seq });
          return;
        }
        const seq = this.#seq++;
        this.#relays.set(seq, {
          target: t,
          requester: from,
          theirSeq: m.seq,
          // The requester's timeout, not this node's own scaled one (memberlist does the same):
          // a helper whose awareness is high must still answer "no" before the probe ends.
          nackAt: now + this.cfg.probeTimeoutMs * 0.8,
          acked: false,
        });
        this.#send(this.dir.entries[t]!.addr, {
          t: "ping",
          realm: this.#realm,
          from: this.self,
          seq,
          target: t,
          piggy: [],
        });
        return;
      }
      case "sync": {
        this.#merge(now, m.members, from, intake);
        if (!m.reply && !m.join) return;
        const digest = this.#digest();
        const agree = !m.join && digest[0] === m.digest[0] && digest[1] === m.digest[1];
        // Our full view invites theirs back (a push after our reply): that answer is asked for.
        if (!agree) this.#ask(m.from, now);
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
        this.#merge(now, m.members, from, intake);
        if (!this.#joined) {
          // Joined: this node gossips its own alive too (the seed's gossip of it is the other
          // source), and checks its view with a random member once things settle.
          this.#joined = true;
          this.#enqueue(this.#aliveSelf());
          this.#nextSyncAt = now + this.#syncInterval() * (0.5 + this.#rng());
          this.#unsettled(now);
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
        this.#merge(now, m.piggy, from, intake);
        return;
    }
  }

  /**
   * A member this node holds dead or left just spoke to it: one of the two views is behind. Tell
   * it what this node holds about it (at most once a second per member): it refutes a claim at
   * its incarnation, and answers one below with its newer record (`#aboutSelf`). Without this, a
   * node that missed a refutation (its retransmissions spent) waits for anti-entropy.
   */
  #behind(now: number, from: Addr, member: number): void {
    if (member < 0 || member === this.self) return;
    const st = this.table.stateOf(member);
    if (st !== DEAD && st !== LEFT) return;
    if (!this.#once(now, `m${member}`)) return;
    const e = this.dir.entries[member]!;
    const inc = this.table.incOf(member);
    const u: Update = st === DEAD
      ? { kind: U_DEAD, member, inc, from: this.self }
      : { kind: U_LEFT, member, inc, from: member, addr: e.addr, meta: e.meta, proof: e.proof };
    if (st === LEFT && (!e.left || e.inc !== inc)) return; // no goodbye of its own to show it
    this.#send(from, { t: "gossip", realm: this.#realm, from: this.self, piggy: [u] });
  }

  /**
   * A member this node does not know spoke to it: this node's view may be behind (gossip gives
   * an update a bounded number of transmissions, and the member's alive may have missed this
   * node). The first message only notes when (a new member's own messages often arrive before
   * the gossip about it); one that comes a settle delay later, the member still unknown, asks
   * that member for its view, a digest sync on the path its message came by: it answers with its
   * full view, which names it. At most once per `PULL_MEMBER_MS` per member and once per
   * `PULL_GAP_MS` in all (one answer teaches every member missed); past that held back, counted
   * (`pullsHeldBack`). A sync needs none: its exchange names the sender.
   */
  #unknownSender(now: number, from: Addr, m: Msg): void {
    const member = m.from;
    if (member < 0 || member === this.self || m.t === "sync" || m.t === "sync-reply") return;
    if (!this.#joined || this.#leaving || this.table.stateOf(member) !== UNKNOWN) return;
    const first = this.#strangers.get(member);
    if (first === undefined) {
      if (this.#strangers.size >= MAX_STRANGERS) {
        this.#strangers.delete(this.#strangers.keys().next().value!);
      }
      this.#strangers.set(member, now);
      return;
    }
    if (now - first < this.#settleDelay()) return;
    if (now < this.#lastPullAt + PULL_GAP_MS || !this.#once(now, `u${member}`, PULL_MEMBER_MS)) {
      this.stats.pullsHeldBack++;
      return;
    }
    this.#lastPullAt = now;
    this.stats.pulls++;
    this.#digestSync(member, now, from);
  }

  /** True at most once per `ms` (a second) per `key` (a bounded memory of recent ones). */
  #once(now: number, key: string, ms = 1000): boolean {
    const until = this.#recent.get(key);
    if (until !== undefined && now < until) return false;
    if (this.#recent.size >= 1024) {
      for (const [k, t] of this.#recent) if (now >= t) this.#recent.delete(k);
      if (this.#recent.size >= 1024) return false;
    }
    this.#recent.set(key, now + ms);
    return true;
  }

  // ------------------------------------------------------------------ bounds

  /** Remembers that `member`'s next full view is one this node asked for. */
  #ask(member: number, now: number): void {
    if (this.#asked.size >= 256) {
      for (const [k, until] of this.#asked) if (until <= now) this.#asked.delete(k);
      if (this.#asked.size >= 256) return;
    }
    this.#asked.set(member, now + 30_000);
  }

  /** Whether a message of type `t` from `sender` answers a full view this node asked for. */
  #solicited(now: number, t: Msg["t"], sender: number, take: boolean): boolean {
    if (t === "sync-reply" && !this.#joined) return true; // the answer to our join
    if (t !== "sync" && t !== "sync-reply") return false;
    const until = this.#asked.get(sender);
    if (until === undefined || until <= now) return false;
    if (take) this.#asked.delete(sender);
    return true;
  }

  /** The bucket of new members `sender` may introduce, refilled to `now`. */
  #bucket(now: number, sender: number): Bucket {
    const cap = this.cfg.newMembersPerSource;
    let b = this.#buckets.get(sender);
    if (!b) {
      if (this.#buckets.size >= this.cfg.maxMembers) this.#buckets.clear();
      b = { tokens: cap, at: now };
      this.#buckets.set(sender, b);
    }
    b.tokens = Math.min(cap, b.tokens + ((now - b.at) * cap) / 60_000);
    b.at = now;
    return b;
  }

  /** How many new members a message from `sender` may introduce now. */
  #budget(now: number, sender: number, solicited: boolean): number {
    const room = this.cfg.maxMembers - this.table.live;
    if (solicited) return room;
    return Math.max(
      0,
      Math.min(room, this.cfg.maxNewPerMessage, Math.floor(this.#bucket(now, sender).tokens)),
    );
  }

  /** Takes one new member into the view, within the bounds; false when refused (counted). */
  #admit(now: number, m: number, intake: Intake): boolean {
    const refuse = () => {
      this.stats.refusedByBound++;
      intake.refused.push(m);
      return false;
    };
    if (this.table.live >= this.cfg.maxMembers) return refuse();
    if (!intake.solicited) {
      if (intake.admitted >= this.cfg.maxNewPerMessage) return refuse();
      const b = this.#bucket(now, intake.sender);
      if (b.tokens < 1) return refuse();
      b.tokens -= 1;
    }
    intake.admitted++;
    if (this.table.known >= this.cfg.maxMembers) this.#forgetOldest(intake);
    return true;
  }

  /**
   * Forgets the member dead or left the longest, to make room (its directory entry goes once
   * the message is merged: a later update of the same message may still name it).
   */
  #forgetOldest(intake: Intake): void {
    const t = this.table;
    let best = -1;
    for (let i = 0; i < this.dir.size; i++) {
      const s = t.stateOf(i);
      if ((s === DEAD || s === LEFT) && (best < 0 || t.changedAt[i]! < t.changedAt[best]!)) {
        best = i;
      }
    }
    if (best < 0) return;
    this.#set(best, UNKNOWN, 0, t.changedAt[best]!);
    this.#suspicions.delete(best);
    this.#queue.delete(best);
    this.#asked.delete(best);
    this.#buckets.delete(best);
    this.stats.forgotten++;
    intake.refused.push(best);
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

  /**
   * Asks `member` (reached at `to`) for its view now, digest first: a node told of a member it
   * does not know yet (a NAT traversal introduces one before gossip arrived) learns it from the
   * introducer, whose answer counts as asked for (no per-source bound applies to it).
   */
  syncWith(now: number, member: number, to: Addr): void {
    if (member === this.self || this.#leaving) return;
    this.#digestSync(member, now, to);
  }

  /**
   * Announces new metadata (its tags changed on a reload): a new incarnation carrying it,
   * gossiped like a refutation (and reported as one, so the edge signs the new record). The
   * realm cannot change. False when it cannot (leaving, or the incarnations are used up).
   */
  setMeta(meta: MemberMeta, now: number): boolean {
    if (this.#leaving || this.incarnation >= MAX_INCARNATION || meta.realm !== this.#realm) {
      return false;
    }
    this.#meta = meta;
    this.incarnation++;
    this.dir.learn(this.self, this.incarnation, this.addr, this.#meta);
    this.#set(this.self, ALIVE, this.incarnation, now);
    this.#enqueue(this.#aliveSelf());
    this.#event("refute", this.self, this.incarnation);
    return true;
  }

  /** Leaves gracefully: a `left` update about itself, gossiped; probing stops. */
  leave(now: number): void {
    if (this.#leaving) return;
    this.#leaving = true;
    this.#probe = null;
    this.#refuteDue = Infinity;
    if (this.incarnation < MAX_INCARNATION) this.incarnation++;
    // The goodbye is this node's own record (the edge signs it), like its alive.
    const u: Update = { ...this.#aliveSelf(), kind: U_LEFT };
    this.dir.learn(this.self, this.incarnation, this.addr, this.#meta, true);
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
      for (let i = 0; i < this.cfg.indirectChecks; i++) {
        const helper = this.#randomLive(exclude);
        if (helper < 0) break;
        exclude.push(helper);
        p.helpers.push(helper);
        p.expectedNacks++;
        this.#send(this.dir.entries[helper]!.addr, {
          t: "ping-req",
          realm: this.#realm,
          from: this.self,
          seq: p.seq,
          target: p.target,
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
        helpers: [],
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
  #merge(now: number, updates: readonly Update[], from: Addr, intake: Intake): void {
    for (const u of updates) this.#apply(now, u, from, intake);
  }

  #apply(now: number, u: Update, from: Addr, intake: Intake): void {
    const m = u.member;
    if (m < 0) return;
    if (m === this.self) return this.#aboutSelf(now, u, from);
    const t = this.table;
    if (m >= t.state.length) t.ensure(this.dir.size);
    const record = hasRecord(u);
    const meta = u.meta ?? this.dir.entries[m]!.meta;
    if ((record || u.kind === U_ALIVE) && meta.realm !== this.#realm) {
      this.stats.droppedOtherRealm++;
      return;
    }
    const claim = u.kind === U_SUSPECT || u.kind === U_DEAD;
    if (claim && u.from < 0) {
      this.stats.claimsUnknownAccuser++;
      return;
    }
    const state = t.stateOf(m);
    const inc = t.incOf(m);
    if (state === UNKNOWN) {
      if (claim && !record) return; // about a member this view does not know
      if (!this.#admit(now, m, intake)) return;
    }
    switch (u.kind) {
      case U_ALIVE: {
        if (state !== UNKNOWN && u.inc <= inc) return;
        this.#learn(m, u, false);
        this.#suspicions.delete(m);
        this.#set(m, ALIVE, u.inc, now);
        this.#enqueue(u);
        this.#event("alive", m, u.inc);
        if (state === UNKNOWN) this.#unsettled(now);
        return;
      }
      case U_LEFT: {
        // A goodbye comes only from the member itself, so it also replaces a "dead" we concluded
        // (the leaver's goodbye can arrive after our own suspicion ran out, on a busy node).
        if (state === LEFT || (state !== UNKNOWN && u.inc < inc)) return;
        this.#learn(m, u, true);
        this.#suspicions.delete(m);
        this.#set(m, LEFT, u.inc, now);
        this.#enqueue(u);
        if (state !== UNKNOWN) this.#event("left", m, u.inc);
        return;
      }
      default:
        return this.#claim(now, m, u, state, inc, record);
    }
  }

  /** Keeps a member's own record (its signature was checked by the edge, if it travelled). */
  #learn(m: number, u: Update, left: boolean): void {
    this.stats.records++;
    if (u.addr === undefined) return; // a test's or simulation's update without a record
    this.dir.learn(m, u.inc, u.addr, u.meta ?? this.dir.entries[m]!.meta, left, u.proof);
  }

  /**
   * A suspect or dead claim about `m`, believed only at the incarnation `m` last signed: one
   * below is late news, one above was never signed (a claim at 2^32 − 1 would leave the member
   * no incarnation to refute with). A claim that carries the member's record at a higher
   * incarnation (a full sync) takes the record first, and is then at the signed incarnation.
   */
  #claim(now: number, m: number, u: Update, state: number, inc: number, record: boolean): void {
    if (record && (state === UNKNOWN || u.inc > inc)) {
      this.#learn(m, u, false);
      const live = state === ALIVE || state === SUSPECT;
      this.#suspicions.delete(m);
      if (u.kind === U_DEAD) {
        // Dead to us at once; news only if we held it live (a dead member first learned from a
        // full view changes nothing anyone sees).
        this.#set(m, DEAD, u.inc, now);
        if (live) {
          this.#enqueue(u);
          this.#event("dead", m, u.inc);
        }
        return;
      }
      this.#set(m, ALIVE, u.inc, now);
      if (!live) this.#event("alive", m, u.inc);
      this.#suspect(now, m, u.inc, u.from);
      if (state === UNKNOWN) this.#unsettled(now);
      return;
    }
    if (state === UNKNOWN) return;
    if (u.inc < inc) {
      this.stats.staleClaims++;
      return;
    }
    if (u.inc > inc) {
      this.stats.claimsAhead++;
      return;
    }
    const bare: Update = { kind: u.kind, member: m, inc: u.inc, from: u.from };
    if (u.kind === U_SUSPECT) {
      if (state === DEAD || state === LEFT) return;
      if (state === SUSPECT) {
        const s = this.#suspicions.get(m);
        // Only the first k confirmations shorten the timeout, and only they are news worth
        // re-gossiping (past k, every prober's failure would start another wave).
        if (!s || u.from === s.origin || s.confirmations.has(u.from)) return;
        if (s.confirmations.size >= s.k) return;
        s.confirmations.add(u.from);
        s.deadline = s.start + Membership.#timeout(s);
        this.#enqueue(bare); // a new confirmation is news
        return;
      }
      this.#suspect(now, m, u.inc, u.from);
      return;
    }
    if (state === DEAD || state === LEFT) return;
    this.#suspicions.delete(m);
    this.#set(m, DEAD, u.inc, now);
    this.#enqueue(bare);
    this.#event("dead", m, u.inc);
  }

  /**
   * News about this node itself. Its own record at a higher incarnation (signed with this node's
   * key: an earlier process of it signed it) is taken up and refuted past; a claim at its current
   * incarnation is refuted with the next one; a claim below is late, one above was never signed
   * by this node and is refused. The refutation is gossiped as usual and also sent at once to
   * whoever told us: that sender just reached us, while our gossip targets may not be reachable
   * (members behind NATs before they have sessions), and a suspicion confirmed by several
   * members runs out in seconds.
   */
  #aboutSelf(now: number, u: Update, from: Addr): void {
    if (this.#leaving) return;
    const claim = u.kind === U_SUSPECT || u.kind === U_DEAD;
    if (!claim || hasRecord(u)) {
      const newer = u.kind === U_LEFT ? u.inc >= this.incarnation : u.inc > this.incarnation;
      if (newer) {
        this.incarnation = u.inc;
        if (!claim) return this.#wantRefute(now, null);
      } else if (!claim) return;
    }
    if (u.inc < this.incarnation) {
      // Late news about us: whoever told us is behind; our record, at once (once a second).
      this.stats.staleClaims++;
      if (this.#once(now, `a${from}`)) {
        this.#send(from, {
          t: "gossip",
          realm: this.#realm,
          from: this.self,
          piggy: [this.#aliveSelf()],
        });
      }
      return;
    }
    if (u.inc > this.incarnation) {
      this.stats.claimsAhead++;
      return;
    }
    this.#health(1);
    this.#wantRefute(now, from);
  }

  /**
   * Refutes now, or once `refuteIntervalMs` has passed since the last refutation: however many
   * claims arrive, incarnations are used at most one per interval (2^32 of them last 13 years at
   * 100 ms). `tell` is whom to send the refutation to at once.
   */
  #wantRefute(now: number, tell: Addr | null): void {
    if (tell !== null) this.#refuteTell = tell;
    if (this.#refuteDue !== Infinity) {
      this.stats.refutationsDeferred++;
      return;
    }
    const at = this.#lastRefuteAt + this.cfg.refuteIntervalMs;
    if (now < at) {
      this.#refuteDue = at;
      this.stats.refutationsDeferred++;
      return;
    }
    this.#refute(now);
  }

  #refute(now: number): void {
    this.#refuteDue = Infinity;
    const tell = this.#refuteTell;
    this.#refuteTell = null;
    if (this.#leaving || this.incarnation >= MAX_INCARNATION) return;
    this.#lastRefuteAt = now;
    this.incarnation++;
    this.stats.refutations++;
    this.dir.learn(this.self, this.incarnation, this.addr, this.#meta);
    this.#set(this.self, ALIVE, this.incarnation, now);
    this.#enqueue(this.#aliveSelf());
    this.#event("refute", this.self, this.incarnation);
    if (tell !== null) {
      this.#send(tell, {
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
    if (state !== UNKNOWN) this.#strangers.delete(member);
  }

  #event(kind: MemberEvent["kind"], member: number, inc: number): void {
    this.#events.push({ kind, member, inc });
  }

  // ------------------------------------------------------------------ dissemination

  #retransmitLimit(): number {
    return this.cfg.retransmitMult * Math.ceil(Math.log10(this.table.live + 1));
  }

  #enqueue(u: Update): void {
    this.#queue.set(u.member, { u, n: 0, seq: this.#queued++ });
  }

  /**
   * Updates to piggyback within the packet budget, fewest transmissions first and, among those,
   * newest first (memberlist's order: a joiner's own alive goes ahead of the view it just
   * learned) — except that news about the recipient itself goes first: a suspect learns of its
   * suspicion from the next message it gets, and can refute at once.
   */
  #piggy(overhead: number, recipient = -1, packets = 1): Update[] {
    if (this.#queue.size === 0) return [];
    let budget = this.cfg.maxPacketBytes * packets - overhead;
    const limit = this.#retransmitLimit();
    const out: Update[] = [];
    const take = (q: Queued): void => {
      const size = updateSize(q.u, this.#proofBytes);
      if (size > budget) return;
      budget -= size;
      out.push(q.u);
      if (++q.n >= limit) this.#queue.delete(q.u.member);
    };
    const own = recipient >= 0 ? this.#queue.get(recipient) : undefined;
    if (own) take(own);
    const items = [...this.#queue.values()].sort((a, b) => a.n - b.n || b.seq - a.seq);
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
        // A burst of news (a healed partition: every member refutes at once) goes in gossip of up
        // to GOSSIP_BURST packets' worth (on a stream, on a node): signed records are about
        // 190 bytes, six to a datagram, and a hundred refutations would otherwise trickle.
        piggy: this.#piggy(48, peer, this.#queue.size > 24 ? GOSSIP_BURST : 1),
      });
    }
  }

  /**
   * Everything this node knows, for a sync: each member's own record (alive, left), and a claim
   * (suspect, dead) with the alive record it is about, so a node that did not know the member
   * learns it, and a restarted member learns the incarnation it had.
   */
  #fullState(): Update[] {
    const out: Update[] = [];
    const t = this.table;
    for (let i = 0; i < this.dir.size; i++) {
      const s = t.stateOf(i);
      if (s === UNKNOWN) continue;
      if (i === this.self) {
        out.push(s === LEFT ? { ...this.#aliveSelf(), kind: U_LEFT } : this.#aliveSelf());
        continue;
      }
      const inc = t.incOf(i);
      const e = this.dir.entries[i]!;
      // The record held is the one at `inc` (always on a node; the simulator's shared directory
      // may hold a newer one, and carries no signatures).
      const rec = e.addr !== "" && (e.inc === inc || e.proof === undefined);
      const withRecord = (u: Update): Update =>
        rec ? { ...u, addr: e.addr, meta: e.meta, proof: e.proof } : u;
      if (s === LEFT) {
        if (e.left && rec) {
          out.push(withRecord({ kind: U_LEFT, member: i, inc, from: i }));
        } else if (e.proof === undefined) out.push({ kind: U_LEFT, member: i, inc, from: i });
      } else if (s === ALIVE) {
        if (rec && !e.left) out.push(withRecord({ kind: U_ALIVE, member: i, inc, from: i }));
      } else {
        const kind = s === SUSPECT ? U_SUSPECT : U_DEAD;
        const claim: Update = { kind, member: i, inc, from: this.self };
        out.push(!e.left ? withRecord(claim) : claim);
      }
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
    return this.cfg.syncIntervalMs * this.#syncScale();
  }

  /** How much longer than at 32 members anti-entropy waits: a full view is O(N). */
  #syncScale(): number {
    return Math.max(1, Math.ceil(Math.log2(Math.max(1, this.table.live) / 32)));
  }

  #send(to: Addr, msg: Msg): void {
    this.#out.push({ to, msg, size: sizeOf(msg, this.#proofBytes) });
  }
}

/** Shortest time between two syncs asked of the same unknown sender, and of any two. */
const PULL_MEMBER_MS = 10_000;
const PULL_GAP_MS = 1000;
/** Unknown senders remembered at once (the oldest is forgotten first). */
const MAX_STRANGERS = 256;

/** Latest settling sync after the first change of a burst, in settle delays (`#unsettled`). */
const SETTLE_MAX = 4;

/** Most packets' worth of updates one gossip message carries when much news waits. */
const GOSSIP_BURST = 4;

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}
