/**
 * A deterministic discrete-event simulator for sans-IO cores (lib/mesh/types.ts): a virtual clock,
 * one event queue ordered by (time, sequence number), a simulated network with latency, loss,
 * partitions and one-way link failures, and processes that crash, restart and pause.
 *
 * Every random choice comes from the run seed through derived streams (lib/sim/rng.ts), so the
 * same seed, cores and scenario give the same run, bit for bit. See docs/simulator.md.
 *
 * Hot path: nodes live in an array indexed by a small integer (the addr → index Map is only for
 * lookups), events are recycled records of one shape, and no closure is allocated per event.
 */
import { SimError } from "./errors.ts";
import type { Addr, Core, Rng } from "../mesh/mod.ts";
import { deriveRng } from "./rng.ts";
import { ACTION, DELIVER, type Ev, EventQueue, RESUME, TIMER } from "./queue.ts";

/** Per-message latency: `baseMs + jitterMs · rng()`, or any distribution drawn from `rng`. */
export type Latency = { baseMs: number; jitterMs?: number } | ((rng: Rng) => number);

/** Why a message did not arrive. */
export type DropReason = "loss" | "partition" | "blocked" | "down" | "inbox-full" | "unknown";

/** All drop reasons, in the order stats report them. */
export const DROP_REASONS: readonly DropReason[] = [
  "loss",
  "partition",
  "blocked",
  "down",
  "inbox-full",
  "unknown",
];

export interface SimOptions<M> {
  /** The run seed: every random choice derives from it. */
  seed: number;
  /** Default per-message latency (default `{ baseMs: 1, jitterMs: 0 }`). */
  latency?: Latency;
  /** Probability a message is dropped in flight, in [0, 1] (default 0). */
  loss?: number;
  /** Message size in bytes for accounting; default: `Outgoing.size`. */
  sizeOf?: (msg: M) => number;
  /** Capacity of a paused node's inbox; arrivals beyond it are dropped as "inbox-full" (4096). */
  inboxLimit?: number;
  /**
   * Events that may run at one instant before the run is declared a livelock and throws (a core
   * whose `nextWake()` stays ≤ now after `tick`, or zero-latency ping-pong). Default 10,000,000.
   */
  maxEventsPerInstant?: number;
}

/** Builds the core of a node (at `add` and at every `restart`). */
export type CoreFactory<M, E> = (addr: Addr, rng: Rng) => Core<M, E>;

/** Counters of one node (its current and earlier incarnations together). */
export interface NodeStats {
  up: boolean;
  paused: boolean;
  /** 0 for the process started by `add`, +1 per `restart`. */
  incarnation: number;
  /** Messages its core emitted (including those then dropped), and their bytes. */
  sent: number;
  bytesSent: number;
  /** Messages handed to its core's `receive`, and their bytes. */
  received: number;
  bytesReceived: number;
  /** Messages it sent that were dropped, by reason. */
  dropped: Record<DropReason, number>;
  /** Timer firings (`tick` calls). */
  ticks: number;
}

export interface SimStats {
  now: number;
  /** Events taken off the queue (deliveries, timers, resumes, actions; stale ones included). */
  events: number;
  sent: number;
  bytesSent: number;
  received: number;
  bytesReceived: number;
  dropped: Record<DropReason, number>;
  ticks: number;
  /** Per node, by address, in the order nodes were added. */
  nodes: Record<Addr, NodeStats>;
}

/** What happened to one message (for `onMessage` listeners). */
export type MessageOutcome = "sent" | "delivered" | "queued" | DropReason;

type LatencyFn = (rng: Rng) => number;

/** Drop reason → slot in the per-node counter arrays. */
const LOSS = 0, PARTITION = 1, BLOCKED = 2, DOWN = 3, INBOX_FULL = 4, UNKNOWN = 5;

interface NodeRec<M, E> {
  index: number;
  addr: Addr;
  core: Core<M, E> | undefined;
  incarnation: number;
  /** The time the pending timer event was scheduled for (nextWake as read), or Infinity. */
  wake: number;
  /** Timer generation: a TIMER event is live only if its gen equals this. */
  timerGen: number;
  paused: boolean;
  pausedUntil: number;
  pauseGen: number;
  inbox: Ev[];
  /** Partition group (0 = not listed in any group). */
  group: number;
  blockedTo: Set<number> | null;
  linkLatency: Map<number, LatencyFn> | null;
  sent: number;
  bytesSent: number;
  received: number;
  bytesReceived: number;
  ticks: number;
  dropped: number[];
}

function toLatencyFn(l: Latency): LatencyFn {
  if (typeof l === "function") return l;
  const base = l.baseMs, jitter = l.jitterMs ?? 0;
  if (!(base >= 0) || !(jitter >= 0)) {
    throw new RangeError(`latency: baseMs and jitterMs must be ≥ 0, got ${base} and ${jitter}`);
  }
  return jitter === 0 ? () => base : (rng) => base + jitter * rng();
}

function checkLoss(p: number): number {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`loss must be in [0, 1], got ${p}`);
  return p;
}

export class Simulator<M, E> {
  /** The run seed. */
  readonly seed: number;
  /** A stream for scenario choices (which node to crash...), separate from the network's. */
  readonly rng: Rng;

  #now = 0;
  #q = new EventQueue();
  #nodes: NodeRec<M, E>[] = [];
  #index = new Map<Addr, number>();
  #net: Rng;
  #latency: LatencyFn;
  #loss: number;
  #sizeOf: ((msg: M) => number) | undefined;
  #inboxLimit: number;
  #maxPerInstant: number;
  #partitioned = false;
  #blocks = 0;
  #links = 0;
  #eventListeners: ((addr: Addr, event: E, now: number) => void)[] = [];
  #msgListeners: ((from: Addr, to: Addr, msg: M, outcome: MessageOutcome, now: number) => void)[] =
    [];
  #events = 0;
  #dropped = [0, 0, 0, 0, 0, 0];
  #sent = 0;
  #bytesSent = 0;
  #received = 0;
  #bytesReceived = 0;
  #ticks = 0;
  #stale = 0;
  #instant = -1;
  #atInstant = 0;

  constructor(o: SimOptions<M>) {
    this.seed = o.seed;
    this.#net = deriveRng(o.seed, "net");
    this.rng = deriveRng(o.seed, "scenario");
    this.#latency = toLatencyFn(o.latency ?? { baseMs: 1 });
    this.#loss = checkLoss(o.loss ?? 0);
    this.#sizeOf = o.sizeOf;
    this.#inboxLimit = o.inboxLimit ?? 4096;
    this.#maxPerInstant = o.maxEventsPerInstant ?? 10_000_000;
  }

  /** Current sim time (ms, starting at 0). */
  get now(): number {
    return this.#now;
  }

  /** Events waiting in the queue (stale timers included). */
  get pending(): number {
    return this.#q.size;
  }

  /** Every address ever added, in the order added. */
  addrs(): Addr[] {
    return this.#nodes.map((n) => n.addr);
  }

  /** The live core at `addr`, or undefined when it is crashed (or was never added). */
  core(addr: Addr): Core<M, E> | undefined {
    const i = this.#index.get(addr);
    return i === undefined ? undefined : this.#nodes[i]!.core;
  }

  isUp(addr: Addr): boolean {
    return this.core(addr) !== undefined;
  }

  isPaused(addr: Addr): boolean {
    return this.#node(addr).paused;
  }

  // ---- listeners --------------------------------------------------------------------------

  /** Calls `fn` with every event a core emits, in order. Returns an unsubscribe function. */
  onEvent(fn: (addr: Addr, event: E, now: number) => void): () => void {
    this.#eventListeners.push(fn);
    return () => {
      this.#eventListeners = this.#eventListeners.filter((f) => f !== fn);
    };
  }

  /**
   * Calls `fn` for every message as it is sent ("sent"), dropped (the reason), put in a paused
   * node's inbox ("queued") or handed to a core ("delivered"). Costs nothing when unused.
   */
  onMessage(
    fn: (from: Addr, to: Addr, msg: M, outcome: MessageOutcome, now: number) => void,
  ): () => void {
    this.#msgListeners.push(fn);
    return () => {
      this.#msgListeners = this.#msgListeners.filter((f) => f !== fn);
    };
  }

  // ---- processes --------------------------------------------------------------------------

  /** Starts a node at `addr` now; its core gets its own rng derived from the seed and addr. */
  add(addr: Addr, factory: CoreFactory<M, E>): Core<M, E> {
    if (this.#index.has(addr)) throw new SimError(`sim: ${addr} already added (use restart)`);
    const n: NodeRec<M, E> = {
      index: this.#nodes.length,
      addr,
      core: undefined,
      incarnation: 0,
      wake: Infinity,
      timerGen: 0,
      paused: false,
      pausedUntil: 0,
      pauseGen: 0,
      inbox: [],
      group: 0,
      blockedTo: null,
      linkLatency: null,
      sent: 0,
      bytesSent: 0,
      received: 0,
      bytesReceived: 0,
      ticks: 0,
      dropped: [0, 0, 0, 0, 0, 0],
    };
    this.#nodes.push(n);
    this.#index.set(addr, n.index);
    return this.#start(n, factory);
  }

  /** The process at `addr` dies: its timer is gone, its inbox lost, messages to it dropped. */
  crash(addr: Addr): void {
    const n = this.#node(addr);
    if (n.core === undefined) return;
    n.core = undefined;
    this.#cancelTimer(n);
    this.#endPause(n);
  }

  /** A new process with a fresh core at `addr` (crashing the running one first, if any). */
  restart(addr: Addr, factory: CoreFactory<M, E>): Core<M, E> {
    const n = this.#node(addr);
    this.crash(addr);
    n.incarnation++;
    return this.#start(n, factory);
  }

  /**
   * The process at `addr` stops for `ms`: no timers fire, arriving messages wait in its inbox
   * (bounded by `inboxLimit`) and are delivered in order when it resumes, then due timers run.
   * Pausing a paused node extends the pause to whichever ends later.
   */
  pause(addr: Addr, ms: number): void {
    const n = this.#node(addr);
    if (n.core === undefined || !(ms > 0)) return;
    const until = this.#now + ms;
    if (n.paused && until <= n.pausedUntil) return;
    if (!n.paused) {
      n.paused = true;
      this.#cancelTimer(n);
    }
    n.pausedUntil = until;
    const e = this.#q.alloc(until, RESUME, n.index, ++n.pauseGen);
    this.#q.push(e);
  }

  // ---- network ----------------------------------------------------------------------------

  /**
   * Only messages within one group get through (checked at send time). Nodes listed in no group
   * form one more group together. Replaces any earlier partition; a node sending to itself is
   * never cut off.
   */
  partition(groups: Addr[][]): void {
    for (const n of this.#nodes) n.group = 0;
    groups.forEach((g, gi) => {
      for (const a of g) {
        const n = this.#node(a);
        if (n.group !== 0) throw new SimError(`sim: ${a} is in two partition groups`);
        n.group = gi + 1;
      }
    });
    this.#partitioned = true;
  }

  /** Removes the partition. */
  heal(): void {
    for (const n of this.#nodes) n.group = 0;
    this.#partitioned = false;
  }

  /** Messages from `from` to `to` are dropped (one way) until `unblock`. */
  block(from: Addr, to: Addr): void {
    const f = this.#node(from), t = this.#node(to);
    f.blockedTo ??= new Set();
    if (!f.blockedTo.has(t.index)) {
      f.blockedTo.add(t.index);
      this.#blocks++;
    }
  }

  unblock(from: Addr, to: Addr): void {
    const f = this.#node(from), t = this.#node(to);
    if (f.blockedTo?.delete(t.index)) this.#blocks--;
  }

  setLoss(p: number): void {
    this.#loss = checkLoss(p);
  }

  /** Replaces the default latency. */
  setLatency(l: Latency): void {
    this.#latency = toLatencyFn(l);
  }

  /** Latency for messages from `from` to `to` (one way); `undefined` restores the default. */
  setLinkLatency(from: Addr, to: Addr, l: Latency | undefined): void {
    const f = this.#node(from), t = this.#node(to);
    if (l === undefined) {
      if (f.linkLatency?.delete(t.index)) this.#links--;
      return;
    }
    f.linkLatency ??= new Map();
    if (!f.linkLatency.has(t.index)) this.#links++;
    f.linkLatency.set(t.index, toLatencyFn(l));
  }

  // ---- scenario and driving ---------------------------------------------------------------

  /** Runs `fn` at absolute sim time `timeMs` (after everything already scheduled for then). */
  at(timeMs: number, fn: () => void): void {
    if (!(timeMs >= this.#now)) {
      throw new RangeError(`sim.at(${timeMs}): that is before now (${this.#now})`);
    }
    const e = this.#q.alloc(timeMs, ACTION, -1, 0);
    e.fn = fn;
    this.#q.push(e);
  }

  /** Runs `fn` `ms` from now. */
  after(ms: number, fn: () => void): void {
    this.at(this.#now + ms, fn);
  }

  /** Runs `fn` on the live core at `addr` now, then delivers its output. Returns what fn does. */
  call<R>(addr: Addr, fn: (core: Core<M, E>, now: number) => R): R {
    const n = this.#node(addr);
    const core = n.core;
    if (core === undefined) throw new SimError(`sim.call: ${addr} is down`);
    const r = fn(core, this.#now);
    this.#drain(n, core);
    this.#reschedule(n, core);
    return r;
  }

  /** Processes every event due at or before `timeMs`, then sets the clock to `timeMs`. */
  runUntil(timeMs: number): void {
    if (!Number.isFinite(timeMs)) throw new RangeError(`sim.runUntil(${timeMs}): not finite`);
    const q = this.#q;
    while (q.peekTime() <= timeMs) this.#step();
    if (timeMs > this.#now) this.#now = timeMs;
  }

  runFor(ms: number): void {
    this.runUntil(this.#now + ms);
  }

  /**
   * Runs until `pred()` holds or `limitMs` of sim time have passed, whichever comes first.
   * `pred` is checked first, then after the events of each instant (or, with `checkEveryMs`, only
   * every that many ms of sim time, for expensive predicates). Returns whether `pred` held; the
   * clock stops where it was seen to hold, or at now + limitMs.
   */
  runUntilCondition(
    pred: () => boolean,
    limitMs: number,
    o: { checkEveryMs?: number } = {},
  ): boolean {
    if (!(limitMs >= 0 && Number.isFinite(limitMs))) {
      throw new RangeError(`runUntilCondition: limitMs must be finite and ≥ 0, got ${limitMs}`);
    }
    const end = this.#now + limitMs;
    if (pred()) return true;
    const every = o.checkEveryMs;
    if (every !== undefined) {
      if (!(every > 0)) throw new RangeError(`checkEveryMs must be > 0, got ${every}`);
      while (this.#now < end) {
        this.runUntil(Math.min(end, this.#now + every));
        if (pred()) return true;
      }
      return false;
    }
    const q = this.#q;
    while (q.peekTime() <= end) {
      const t = q.peekTime();
      while (q.peekTime() === t) this.#step();
      if (pred()) return true;
    }
    if (end > this.#now) this.#now = end;
    return pred();
  }

  /** Processes the next event, if any. Returns false when the queue is empty. */
  step(): boolean {
    if (this.#q.size === 0) return false;
    this.#step();
    return true;
  }

  // ---- stats ------------------------------------------------------------------------------

  stats(): SimStats {
    const nodes: Record<Addr, NodeStats> = {};
    for (const n of this.#nodes) nodes[n.addr] = this.#nodeStats(n);
    return {
      now: this.#now,
      events: this.#events,
      sent: this.#sent,
      bytesSent: this.#bytesSent,
      received: this.#received,
      bytesReceived: this.#bytesReceived,
      dropped: dropRecord(this.#dropped),
      ticks: this.#ticks,
      nodes,
    };
  }

  /** The counters of one node. */
  nodeStats(addr: Addr): NodeStats {
    return this.#nodeStats(this.#node(addr));
  }

  // ---- internals --------------------------------------------------------------------------

  #node(addr: Addr): NodeRec<M, E> {
    const i = this.#index.get(addr);
    if (i === undefined) throw new SimError(`sim: unknown node ${addr}`);
    return this.#nodes[i]!;
  }

  #nodeStats(n: NodeRec<M, E>): NodeStats {
    return {
      up: n.core !== undefined,
      paused: n.paused,
      incarnation: n.incarnation,
      sent: n.sent,
      bytesSent: n.bytesSent,
      received: n.received,
      bytesReceived: n.bytesReceived,
      dropped: dropRecord(n.dropped),
      ticks: n.ticks,
    };
  }

  #start(n: NodeRec<M, E>, factory: CoreFactory<M, E>): Core<M, E> {
    const core = factory(n.addr, deriveRng(this.seed, "node", n.addr, n.incarnation));
    if (core.addr !== n.addr) {
      throw new SimError(`sim: the core built for ${n.addr} says its addr is ${core.addr}`);
    }
    n.core = core;
    this.#drain(n, core);
    this.#reschedule(n, core);
    return core;
  }

  #cancelTimer(n: NodeRec<M, E>): void {
    if (n.wake !== Infinity) {
      n.timerGen++;
      n.wake = Infinity;
      this.#stale++;
    }
  }

  /** Clears a pause (on crash); the inbox is lost. */
  #endPause(n: NodeRec<M, E>): void {
    if (!n.paused) return;
    n.paused = false;
    n.pauseGen++;
    for (const e of n.inbox) {
      this.#drop(DOWN, e.gen, n.addr, e.msg as M);
      this.#q.release(e);
    }
    n.inbox.length = 0;
  }

  /** Reads `nextWake()` and keeps the node's single timer event in step with it. */
  #reschedule(n: NodeRec<M, E>, core: Core<M, E>): void {
    if (n.paused || n.core !== core) return;
    const w = core.nextWake();
    if (w === n.wake) return;
    if (Number.isNaN(w)) throw new SimError(`sim: ${n.addr} nextWake() returned NaN`);
    if (n.wake !== Infinity) this.#stale++;
    n.timerGen++;
    n.wake = w;
    if (w === Infinity) return;
    const e = this.#q.alloc(w > this.#now ? w : this.#now, TIMER, n.index, n.timerGen);
    this.#q.push(e);
    if (this.#stale > 65536 && this.#stale * 2 > this.#q.size) this.#compact();
  }

  #compact(): void {
    const nodes = this.#nodes;
    this.#q.retain((e) => {
      if (e.kind === TIMER) return e.gen === nodes[e.node]!.timerGen;
      if (e.kind === RESUME) return e.gen === nodes[e.node]!.pauseGen;
      return true;
    });
    this.#stale = 0;
  }

  /** Sends the core's queued messages and passes its events to the listeners. */
  #drain(n: NodeRec<M, E>, core: Core<M, E>): void {
    const out = core.drain();
    const send = out.send;
    for (let i = 0; i < send.length; i++) {
      const o = send[i]!;
      this.#send(n, o.to, o.msg, this.#sizeOf === undefined ? o.size : this.#sizeOf(o.msg));
    }
    const events = out.events;
    if (events.length > 0) {
      const ls = this.#eventListeners;
      for (let i = 0; i < events.length; i++) {
        for (let j = 0; j < ls.length; j++) ls[j]!(n.addr, events[i]!, this.#now);
      }
    }
  }

  #send(src: NodeRec<M, E>, to: Addr, msg: M, size: number): void {
    src.sent++;
    src.bytesSent += size;
    this.#sent++;
    this.#bytesSent += size;
    if (this.#msgListeners.length > 0) this.#notify(src.addr, to, msg, "sent");
    const di = this.#index.get(to);
    if (di === undefined) return this.#drop(UNKNOWN, src.index, to, msg);
    if (this.#partitioned && src.group !== this.#nodes[di]!.group && di !== src.index) {
      return this.#drop(PARTITION, src.index, to, msg);
    }
    if (this.#blocks > 0 && src.blockedTo !== null && src.blockedTo.has(di)) {
      return this.#drop(BLOCKED, src.index, to, msg);
    }
    const net = this.#net;
    if (this.#loss > 0 && net() < this.#loss) return this.#drop(LOSS, src.index, to, msg);
    let lat: LatencyFn = this.#latency;
    if (this.#links > 0 && src.linkLatency !== null) lat = src.linkLatency.get(di) ?? lat;
    const d = lat(net);
    if (!(d >= 0)) throw new RangeError(`sim: latency ${src.addr} → ${to} drew ${d}`);
    const e = this.#q.alloc(this.#now + d, DELIVER, di, src.index);
    e.from = src.addr;
    e.msg = msg;
    e.size = size;
    this.#q.push(e);
  }

  #drop(reason: number, srcIndex: number, to: Addr, msg: M): void {
    this.#dropped[reason]!++;
    const src = this.#nodes[srcIndex]!;
    src.dropped[reason]!++;
    if (this.#msgListeners.length > 0) this.#notify(src.addr, to, msg, DROP_REASONS[reason]!);
  }

  #notify(from: Addr, to: Addr, msg: M, outcome: MessageOutcome): void {
    for (const f of this.#msgListeners) f(from, to, msg, outcome, this.#now);
  }

  #step(): void {
    const q = this.#q;
    const e = q.pop()!;
    const t = e.t;
    if (t !== this.#instant) {
      this.#instant = t;
      this.#atInstant = 0;
    } else if (++this.#atInstant > this.#maxPerInstant) {
      throw new SimError(
        `sim: more than ${this.#maxPerInstant} events at t=${t} ms: livelock (a core whose ` +
          `nextWake() stays ≤ now, or zero-latency ping-pong?)`,
      );
    }
    this.#now = t;
    this.#events++;
    switch (e.kind) {
      case DELIVER: {
        const n = this.#nodes[e.node]!;
        const core = n.core;
        if (core === undefined) {
          this.#drop(DOWN, e.gen, n.addr, e.msg as M);
        } else if (n.paused) {
          if (n.inbox.length >= this.#inboxLimit) {
            this.#drop(INBOX_FULL, e.gen, n.addr, e.msg as M);
          } else {
            n.inbox.push(e);
            if (this.#msgListeners.length > 0) {
              this.#notify(e.from, n.addr, e.msg as M, "queued");
            }
            return; // the record lives on in the inbox
          }
        } else {
          this.#deliver(n, core, e);
          this.#drain(n, core);
          this.#reschedule(n, core);
        }
        break;
      }
      case TIMER: {
        const n = this.#nodes[e.node]!;
        const core = n.core;
        if (e.gen === n.timerGen && core !== undefined && !n.paused) {
          n.wake = Infinity;
          this.#tick(n, core);
        } else if (this.#stale > 0) {
          this.#stale--;
        }
        break;
      }
      case RESUME: {
        const n = this.#nodes[e.node]!;
        if (e.gen === n.pauseGen && n.paused) this.#resume(n);
        break;
      }
      case ACTION: {
        const fn = e.fn!;
        q.release(e); // before running it: the action may schedule more
        fn();
        return;
      }
    }
    q.release(e);
  }

  #deliver(n: NodeRec<M, E>, core: Core<M, E>, e: Ev): void {
    n.received++;
    n.bytesReceived += e.size;
    this.#received++;
    this.#bytesReceived += e.size;
    if (this.#msgListeners.length > 0) this.#notify(e.from, n.addr, e.msg as M, "delivered");
    core.receive(this.#now, e.from, e.msg as M);
  }

  #tick(n: NodeRec<M, E>, core: Core<M, E>): void {
    n.ticks++;
    this.#ticks++;
    core.tick(this.#now);
    this.#drain(n, core);
    this.#reschedule(n, core);
  }

  #resume(n: NodeRec<M, E>): void {
    n.paused = false;
    const inbox = n.inbox;
    n.inbox = [];
    let i = 0;
    for (; i < inbox.length; i++) {
      const core = n.core;
      if (core === undefined || n.paused) break; // a listener crashed or paused it again
      const e = inbox[i]!;
      this.#deliver(n, core, e);
      this.#q.release(e);
      this.#drain(n, core);
    }
    if (i < inbox.length) {
      // Paused again mid-way: the rest stay first in line; crashed: they are lost.
      const rest = inbox.slice(i);
      if (n.core !== undefined) n.inbox = rest.concat(n.inbox);
      else {
        for (const e of rest) {
          this.#drop(DOWN, e.gen, n.addr, e.msg as M);
          this.#q.release(e);
        }
      }
      return;
    }
    const core = n.core;
    if (core === undefined) return;
    if (core.nextWake() <= this.#now) this.#tick(n, core);
    else this.#reschedule(n, core);
  }
}

function dropRecord(a: number[]): Record<DropReason, number> {
  return {
    loss: a[LOSS]!,
    partition: a[PARTITION]!,
    blocked: a[BLOCKED]!,
    down: a[DOWN]!,
    "inbox-full": a[INBOX_FULL]!,
    unknown: a[UNKNOWN]!,
  };
}
