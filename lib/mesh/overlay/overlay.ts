/**
 * The k-regular overlay policy: which long-lived connections a node keeps. A sans-IO core
 * (lib/util/sansio.ts): it is told about members (from membership events) and links (connections
 * that opened or closed), and `drain()` answers what to connect and disconnect now (a plan over
 * everything it was told since). `tick(now)` forgets, every `avoidMs`, the peers it stopped
 * dialing after a failure. Randomness from the injected `Rng`. docs/overlay.md describes the
 * policy and its guarantees.
 */
import type { SansIoCore } from "../../util/mod.ts";
import type { Addr, Rng } from "../types.ts";
import { nodeIdText } from "../../identity/mod.ts";
import { checkId, idHex, type Member, MemberSet, type SortedMembers } from "./members.ts";

/** Which side opened a connection. */
export type LinkDir = "out" | "in";

/** Why an outbound neighbour was chosen. */
export type NeighbourRole = "near" | "random";

export interface OverlayOptions {
  /** This node's 32-byte node id. */
  self: Uint8Array;
  /** Outbound neighbours to keep (default 8). */
  k?: number;
  /** How many of them are the XOR-closest members (default 2; at most `k`). */
  near?: number;
  /** Bound on all links, inbound plus outbound (default `2 * k`; at least `k`). */
  maxConnections?: number;
  /** Randomness for the random neighbours. */
  rng: Rng;
  /** Initial members (shared, copied on first change); `memberUp` can add more. */
  members?: SortedMembers;
  /** How long peers whose link failed are avoided before `tick` forgets them (default 30 s). */
  avoidMs?: number;
  /** The clock's value when the overlay starts (default 0). */
  now?: number;
}

/** Why a peer is avoided for 30 s: long enough not to redial a refusing peer in a loop. */
export const OVERLAY_AVOID_MS = 30_000;

/** What to do now. */
export interface OverlayPlan {
  connect: { id: Uint8Array; addr: Addr }[];
  disconnect: Uint8Array[];
}

export interface OverlayNeighbour {
  id: Uint8Array;
  addr: Addr;
  role: NeighbourRole;
  /** True once a link (either direction) to it is up. */
  linked: boolean;
}

export interface OverlayLink {
  id: Uint8Array;
  dir: LinkDir;
}

/** A plain snapshot for inspection (ids in their base32 text form). */
export interface OverlaySnapshot {
  self: string;
  k: number;
  near: number;
  maxConnections: number;
  members: number;
  neighbours: { id: string; addr: Addr; role: NeighbourRole; linked: boolean }[];
  links: { id: string; dir: LinkDir; closing: boolean }[];
  connecting: number;
  avoided: number;
}

interface Chosen {
  member: Member;
  role: NeighbourRole;
}

interface Link {
  id: Uint8Array;
  dir: LinkDir;
}

export class Overlay implements SansIoCore<OverlayPlan> {
  readonly k: number;
  readonly near: number;
  readonly maxConnections: number;
  private readonly self: Uint8Array;
  private readonly selfKey: string;
  private readonly rng: Rng;
  private readonly members: MemberSet;
  /** Outbound neighbours chosen (linked or still connecting). */
  private readonly chosen = new Map<string, Chosen>();
  /** Links that are up, in arrival order. */
  private readonly linkMap = new Map<string, Link>();
  /** Connects asked for by `drain()` and not yet reported up or down. */
  private readonly requested = new Set<string>();
  /** Disconnects asked for by `drain()` and not yet reported down. */
  private readonly closing = new Set<string>();
  /** Links to members that went down: closed by the next `drain()`. */
  private readonly toClose = new Set<string>();
  /** Members whose link to us failed or was closed while chosen: not chosen again until cleared. */
  private readonly avoid = new Set<string>();
  private readonly avoidMs: number;
  /** When `tick` next forgets the avoided peers. */
  private clearAt: number;

  constructor(opts: OverlayOptions) {
    checkId(opts.self);
    const k = opts.k ?? 8;
    const near = opts.near ?? 2;
    const maxConnections = opts.maxConnections ?? 2 * k;
    if (!Number.isInteger(k) || k < 1) throw new RangeError(`k must be an integer >= 1, got ${k}`);
    if (!Number.isInteger(near) || near < 0 || near > k) {
      throw new RangeError(`near must be an integer in [0, k=${k}], got ${near}`);
    }
    if (!Number.isInteger(maxConnections) || maxConnections < k) {
      throw new RangeError(`maxConnections must be an integer >= k=${k}, got ${maxConnections}`);
    }
    this.k = k;
    this.near = near;
    this.maxConnections = maxConnections;
    this.self = opts.self.slice();
    this.selfKey = idHex(this.self);
    this.rng = opts.rng;
    this.members = new MemberSet(opts.members);
    this.avoidMs = opts.avoidMs ?? OVERLAY_AVOID_MS;
    this.clearAt = (opts.now ?? 0) + this.avoidMs;
  }

  /** Every `avoidMs`: forgets the avoided peers (the next `drain` may choose them again). */
  tick(now: number): void {
    if (now < this.clearAt) return;
    this.clearAvoided();
    this.clearAt = now + this.avoidMs;
  }

  nextWake(): number {
    return this.clearAt;
  }

  /** Number of known alive members (self excluded when it was fed in). */
  get memberCount(): number {
    return this.members.size - (this.members.get(this.selfKey) ? 1 : 0);
  }

  /** A member is alive (joined, or refuted suspicion) at `addr`. O(log n) + one splice. */
  memberUp(id: Uint8Array, addr: Addr): void {
    checkId(id);
    const key = idHex(id);
    if (key === this.selfKey) return;
    if (this.members.add(id, addr)) this.avoid.delete(key);
    const c = this.chosen.get(key);
    if (c) c.member = this.members.get(key)!;
  }

  /** A member died or left. O(log n) + one splice. */
  memberDown(id: Uint8Array): void {
    this.dropMember(idHex(id));
  }

  /**
   * Replaces the member set with `table` (say, a fresh membership view): chosen neighbours and
   * links to members missing from it are treated as `memberDown`. O(k log n), no copy of `table`.
   */
  syncMembers(table: SortedMembers): void {
    const gone: string[] = [];
    for (const key of this.chosen.keys()) if (!table.get(key)) gone.push(key);
    for (const key of this.linkMap.keys()) {
      if (!table.get(key) && this.members.get(key)) gone.push(key);
    }
    for (const key of this.avoid) if (!table.get(key)) this.avoid.delete(key);
    this.members.reset(table);
    for (const key of gone) this.forget(key);
  }

  /** A connection to `id` opened (`out`: we dialled; `in`: it dialled us). One link per peer. */
  linkUp(id: Uint8Array, dir: LinkDir): void {
    checkId(id);
    const key = idHex(id);
    if (key === this.selfKey) return;
    if (dir === "out") this.requested.delete(key);
    // A link up while the one before it is being closed (the peer's connection replaced ours, or
    // came in as ours went): the close was for the old one. The next plan decides about this one.
    if (this.closing.delete(key)) this.linkMap.delete(key);
    if (!this.linkMap.has(key)) this.linkMap.set(key, { id: id.slice(), dir });
  }

  /**
   * The connection to `id` closed, or a connect that `drain()` asked for failed. A chosen neighbour
   * lost this way (while still a member) is replaced and avoided until `clearAvoided()` or it
   * rejoins, so a peer that refuses us (its inbound budget is full) is not redialled forever.
   */
  linkDown(id: Uint8Array): void {
    const key = idHex(id);
    const wasClosing = this.closing.delete(key);
    this.linkMap.delete(key);
    this.requested.delete(key);
    this.toClose.delete(key);
    if (!wasClosing && this.chosen.delete(key) && this.members.get(key)) this.avoid.add(key);
  }

  /** Forgets which peers were avoided (call now and then, e.g. every few minutes). */
  clearAvoided(): void {
    this.avoid.clear();
  }

  /** Whether an inbound link from `id` would be kept by the next `drain()` (admission hint). */
  wouldAccept(id: Uint8Array): boolean {
    const key = idHex(id);
    if (this.chosen.has(key) || this.linkMap.has(key)) return true;
    let inbound = 0;
    for (const [k, l] of this.linkMap) {
      if (l.dir === "in" && !this.chosen.has(k) && !this.closing.has(k)) inbound++;
    }
    return inbound < this.maxConnections - this.chosen.size;
  }

  /**
   * What to do now: repair and fill the `k` outbound neighbours (`near` XOR-closest members, the
   * rest uniformly random), close links to dead members and unwanted outbound links, and trim
   * inbound links beyond `maxConnections`. Actions it returns are remembered (a connect until
   * `linkUp`/`linkDown`, a disconnect until `linkDown`), so calling it again without news returns
   * an empty plan.
   */
  drain(): OverlayPlan {
    const connect: OverlayPlan["connect"] = [];
    const disconnect: Uint8Array[] = [];
    const skip = (key: string) => key === this.selfKey || this.avoid.has(key);

    // 1. The near neighbours track the XOR-closest members.
    const nearest = this.members.closest(this.self, this.near, skip);
    const nearKeys = new Set(nearest.map((m) => m.key));
    const demoted: string[] = [];
    for (const [key, c] of this.chosen) {
      if (c.role === "near" && !nearKeys.has(key)) {
        c.role = "random";
        demoted.push(key);
      }
    }
    for (const m of nearest) {
      const c = this.chosen.get(m.key);
      if (c) c.role = "near";
      else this.chosen.set(m.key, { member: m, role: "near" });
    }

    // 2. The random neighbours: trim a surplus (a demoted near one first), fill a shortfall.
    const randomTarget = this.k - nearest.length;
    const randoms: string[] = [];
    for (const [key, c] of this.chosen) if (c.role === "random") randoms.push(key);
    if (randoms.length > randomTarget) {
      const rank = (key: string) =>
        (demoted.includes(key) ? 0 : 2) + (this.linkMap.has(key) ? 1 : 0);
      randoms.sort((a, b) => rank(a) - rank(b));
      for (const key of randoms.slice(0, randoms.length - randomTarget)) {
        this.chosen.delete(key);
        this.requested.delete(key);
      }
    } else if (randoms.length < randomTarget) {
      this.fillRandom(randomTarget - randoms.length, skip);
    }

    // 3. Connect to chosen neighbours not yet linked or being dialled.
    for (const [key, c] of this.chosen) {
      if (!this.linkMap.has(key) && !this.requested.has(key)) {
        this.requested.add(key);
        connect.push({ id: c.member.id, addr: c.member.addr });
      }
    }

    // 4. Close links to dead members and outbound links we no longer want.
    const close = (key: string, l: Link) => {
      this.closing.add(key);
      disconnect.push(l.id);
    };
    const inbound: string[] = [];
    for (const [key, l] of this.linkMap) {
      if (this.closing.has(key) || this.chosen.has(key)) continue;
      if (this.toClose.has(key) || l.dir === "out") close(key, l);
      else inbound.push(key);
    }
    this.toClose.clear();

    // 5. Trim inbound links beyond the budget left after our own neighbours. Those from our
    // XOR-closest members go last (they keep the id ring whole: we are likely one of *their*
    // near neighbours); otherwise the newest go first (refuse newcomers, keep established links).
    const budget = this.maxConnections - this.chosen.size;
    if (inbound.length > budget) {
      const guard = Math.max(this.near, this.maxConnections - this.k);
      const closeKeys = new Set(
        this.members.closest(this.self, guard, (key) => key === this.selfKey).map((m) => m.key),
      );
      const order = inbound.map((key, i) => ({ key, i, guarded: closeKeys.has(key) }));
      order.sort((a, b) => (a.guarded === b.guarded ? b.i - a.i : a.guarded ? 1 : -1));
      for (const o of order.slice(0, inbound.length - budget)) {
        close(o.key, this.linkMap.get(o.key)!);
      }
    }
    return { connect, disconnect };
  }

  /** The chosen outbound neighbours (linked or still connecting). */
  neighbours(): OverlayNeighbour[] {
    return [...this.chosen].map(([key, c]) => ({
      id: c.member.id,
      addr: c.member.addr,
      role: c.role,
      linked: this.linkMap.has(key),
    }));
  }

  /** All links that are up (including those a disconnect was asked for). */
  links(): OverlayLink[] {
    return [...this.linkMap.values()].map((l) => ({ id: l.id, dir: l.dir }));
  }

  snapshot(): OverlaySnapshot {
    return {
      self: nodeIdText(this.self),
      k: this.k,
      near: this.near,
      maxConnections: this.maxConnections,
      members: this.memberCount,
      neighbours: this.neighbours().map((n) => ({
        id: nodeIdText(n.id),
        addr: n.addr,
        role: n.role,
        linked: n.linked,
      })),
      links: [...this.linkMap].map(([key, l]) => ({
        id: nodeIdText(l.id),
        dir: l.dir,
        closing: this.closing.has(key),
      })),
      connecting: this.requested.size,
      avoided: this.avoid.size,
    };
  }

  private dropMember(key: string): void {
    if (key === this.selfKey) return;
    this.members.remove(key);
    this.forget(key);
  }

  /** Bookkeeping for a member that is gone (the member set itself is already updated). */
  private forget(key: string): void {
    this.chosen.delete(key);
    this.avoid.delete(key);
    this.requested.delete(key);
    if (this.linkMap.has(key) && !this.closing.has(key)) this.toClose.add(key);
  }

  /** Adds up to `n` random neighbours, uniform over eligible members. */
  private fillRandom(n: number, skip: (key: string) => boolean): void {
    const eligible = (m: Member) => !skip(m.key) && !this.chosen.has(m.key);
    // Rejection sampling: O(1) per pick while most members are eligible (k << n).
    let tries = 4 * n + 16;
    while (n > 0 && tries-- > 0) {
      const m = this.members.randomMember(this.rng);
      if (m === undefined) return;
      if (!eligible(m)) continue;
      this.chosen.set(m.key, { member: m, role: "random" });
      n--;
    }
    if (n === 0) return;
    // Few eligible members left (small mesh): pick from an explicit list instead.
    const pool = this.members.all().filter(eligible);
    for (let i = 0; i < n && i < pool.length; i++) {
      const j = i + Math.floor(this.rng() * (pool.length - i));
      const t = pool[i]!;
      pool[i] = pool[j]!;
      pool[j] = t;
      this.chosen.set(pool[i]!.key, { member: pool[i]!, role: "random" });
    }
  }
}
