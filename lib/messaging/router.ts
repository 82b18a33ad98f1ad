/**
 * The router: what a node does with the bus frames of its clients and peer nodes. A sans-IO core
 * (lib/util/sansio.ts): a link is an id and a kind, time is the `now` passed to `receive` and
 * `tick`, the frames to send are drained (`drain()`), randomness is an injected generator. The
 * node runtime (lib/node) turns sessions into links, calls `receive` per frame, and sends what it
 * drains.
 *
 * Routing is one hop (docs/messaging.md, "Across nodes"):
 * - A node tells each peer node the patterns its clients subscribe to (`SUB`/`UNSUB`, one per
 *   distinct pattern and queue group, reference-counted) and the procedures they serve
 *   (`REG`/`UNREG`).
 * - A client's `PUB` goes to the matching local subscriptions and, as one `FWD` per interested
 *   peer node, to the nodes with matching interest. A node delivers a `FWD` to its own clients
 *   only, never onwards, so there are no loops. A queue group gets one member: a local one when
 *   the group has local members (as in NATS), else one peer node (round-robin), which then
 *   picks one of its members.
 * - A `CALL` goes to one provider chosen by strategy (default local-first). A node serves a call
 *   from a peer node with its own clients only. A peer node answering `no_provider` (its provider
 *   left meanwhile) makes the router try the next provider within the same deadline.
 */
import { RateLimiter, type Rng, type SansIoCore } from "../util/mod.ts";
import type { Frame } from "../wire/mod.ts";
import { ProtocolError } from "./errors.ts";
import {
  checkPayloadSize,
  type PendingCall,
  PendingCalls,
  ProcedureRegistry,
  SELECTION_STRATEGIES,
  type SelectionStrategy,
} from "./rpc.ts";
import { RPC_ERROR_NUMBERS, RpcError, type RpcErrorCode, rpcErrorCodeOf } from "./errors.ts";
import { checkProcedure, checkTopic, TopicError } from "./topics.ts";
import { SubscriptionTrie } from "./trie.ts";

/** The far end of a session as the router sees it. */
export interface Link {
  /** Unique among the router's links. */
  readonly id: string;
  /** A client attached to this node, or a peer node. */
  readonly kind: "client" | "node";
  /**
   * True while frames to this link are backed up past its limit (the driver's view): calls are
   * not handed to a congested provider while another can take them. Default: never.
   */
  congested?(): boolean;
  /** Bytes queued to this link and not yet taken by its transport. Default: 0. */
  backlog?(): number;
}

/** One bus frame for the driver to send to a link (the router's only kind of action). */
export interface RouterSend<L extends Link = Link> {
  readonly to: L;
  readonly name: string;
  readonly fields: Record<string, unknown>;
}

export { ProtocolError };

/** What a client does on the bus, as the router asks `authorize` about it. */
export type BusOperation = "publish" | "subscribe" | "serve" | "call";

/** Router options. */
export interface RouterOptions<L extends Link = Link> {
  /**
   * Decides whether a client may do `op` on `subject` (topic, pattern or procedure; `queue` for
   * a queue subscription): null when it may, else the refusal's message (it names the rule).
   * Asked for client links only; default: everything allowed. A refusal reaches the client as
   * `ERROR permission_denied` (or `FAIL permission_denied` for a call) and is counted.
   */
  authorize?: (link: L, op: BusOperation, subject: string, queue?: string) => string | null;
  /** Numbers in [0, 1) for the `random` strategy. */
  random: Rng;
  /** Largest payload accepted (PUB, CALL, REPLY). Default 1 MiB. */
  maxPayload?: number;
  /** Strategy for calls that do not name one. Default `local-first`. */
  defaultStrategy?: SelectionStrategy;
  /** How long a flush waits for peer nodes. Default 5 000 ms. */
  pingTimeoutMs?: number;
  /** Subscriptions one client may hold at once. Default 10 000 (`ROUTER_LIMITS`). */
  maxSubscriptions?: number;
  /** Procedures one client may serve at once. Default 1 000. */
  maxProcedures?: number;
  /** Calls one client may have in flight at once. Default 1 000. */
  maxPendingCalls?: number;
  /** The longest deadline a call may ask for; longer ones are cut to it. Default 300 000 ms. */
  maxCallTimeoutMs?: number;
  /** Bytes queued to a client past which its new calls fail (`unavailable`). Default 1 MiB. */
  maxUnreadBytes?: number;
}

/**
 * The router's default bounds on what one link may hold, each with its reason. Past a bound the
 * operation is refused with an error naming the limit (`ERROR limit` / `FAIL bad_request`) and
 * counted in `stats.limited`.
 */
export const ROUTER_LIMITS = {
  /** Far above an application's need (NATS allows unlimited; 10k covers wide fan-in), far below what costs a node real memory (about 200 B each). */
  maxSubscriptions: 10_000,
  /** A service serves a handful of procedures; 1 000 is generous. */
  maxProcedures: 1_000,
  /** Each pending call holds its payload until answered: 1 000 × 1 MiB bounds a link at 1 GiB worst case, typically far less. */
  maxPendingCalls: 1_000,
  /** A call waiting longer than 5 minutes should be a message, not a held request. */
  maxCallTimeoutMs: 300_000,
  /**
   * A caller that does not read its replies gets no more calls served: past 1 MiB queued to it
   * (after the 1 MiB its stream window takes), each new call fails at once. A caller that reads
   * never comes near; one that does not would otherwise have providers do work nobody reads.
   */
  maxUnreadBytes: 1024 * 1024,
  /**
   * Refused frames one client may cause: an application that gets an error now and then never
   * comes near; a flood of frames that are refused anyway closes the session.
   */
  refusals: { perSecond: 100, burst: 1000 },
  /**
   * SUB/UNSUB/REG/UNREG per client: each changes the tables every publish reads; a reconnecting
   * client restores up to `maxSubscriptions` at once, hence the burst.
   */
  churn: { perSecond: 1000, burst: 10_000 },
} as const;

/** Counters, all growing. */
export interface RouterStats {
  published: number;
  delivered: number;
  forwarded: number;
  /** Messages published with no subscriber anywhere (at-most-once: counted, not kept). */
  unrouted: number;
  calls: number;
  replies: number;
  failures: number;
  protocolErrors: number;
  /** Client operations refused by `authorize`. */
  denied: number;
  /** Operations refused because a link reached one of its limits (`ROUTER_LIMITS`). */
  limited: number;
}

interface LocalSub {
  readonly link: Link;
  readonly sid: number;
  readonly pattern: string;
  readonly queue: string | undefined;
}

/** A peer node's interest; interned per (link, queue) so the trie de-duplicates per node. */
interface Remote {
  readonly link: Link;
  readonly queue: string | undefined;
}

interface LinkState {
  readonly link: Link;
  /** client: sid → its subscription; node: interest id → what it names. */
  readonly subs: Map<
    number,
    { pattern: string; queue: string | undefined; entry: LocalSub | Remote }
  >;
  /** node: queue ("" for plain) → the interned interest object. */
  readonly remotes: Map<string, Remote>;
  /** node: `queue pattern` → how many of its interest ids name it (O(1) unsubscribe). */
  readonly refs: Map<string, number>;
  /** Procedures this link provides. */
  readonly provides: Set<string>;
  /** Calls this link started and that are still pending here: its call id → our id. */
  readonly calls: Map<number, number>;
}

interface CallContext {
  readonly origin: Link;
  readonly originId: number;
  readonly payload: Uint8Array;
  readonly strategy: SelectionStrategy;
  readonly tried: Set<string>;
}

interface Ping {
  readonly origin: Link;
  readonly originId: number;
  readonly waiting: Set<Link>;
  readonly deadline: number;
}

const QUEUE_KEY = (queue: string | undefined) => queue ?? "";

/** The message router of one node. */
export class Router<L extends Link = Link> implements SansIoCore<RouterSend<L>[]> {
  readonly stats: RouterStats = {
    published: 0,
    delivered: 0,
    forwarded: 0,
    unrouted: 0,
    calls: 0,
    replies: 0,
    failures: 0,
    protocolErrors: 0,
    denied: 0,
    limited: 0,
  };
  readonly maxPayload: number;
  readonly #links = new Map<string, LinkState>();
  readonly #local: SubscriptionTrie<LocalSub>;
  readonly #remote: SubscriptionTrie<Remote>;
  /** Distinct local (pattern, queue) → reference count and the interest id told to peers. */
  readonly #interest = new Map<
    string,
    { pattern: string; queue?: string; id: number; n: number }
  >();
  #interestIds = 1;
  /** Procedure → number of local (client) providers. */
  readonly #localProcs = new Map<string, number>();
  readonly #registry: ProcedureRegistry;
  readonly #calls = new PendingCalls<CallContext>();
  readonly #pings = new Map<number, Ping>();
  /** Topics already checked (publishers repeat topics; the check is a regex per segment). */
  readonly #validTopics = new Set<string>();
  #pingIds = 1;
  readonly #opts: Required<Omit<RouterOptions<L>, "authorize">>;
  readonly #refusals = new RateLimiter<string>({ ...ROUTER_LIMITS.refusals, maxKeys: 1 << 20 });
  readonly #churn = new RateLimiter<string>({ ...ROUTER_LIMITS.churn, maxKeys: 1 << 20 });
  readonly #authorize: RouterOptions<L>["authorize"];
  /** The `now` of the latest input (the router reads no clock). */
  #now = 0;
  #out: RouterSend<L>[] = [];

  constructor(options: RouterOptions<L>) {
    const { authorize, ...rest } = options;
    this.#authorize = authorize;
    this.#opts = {
      maxPayload: 1024 * 1024,
      defaultStrategy: "local-first",
      pingTimeoutMs: 5000,
      ...ROUTER_LIMITS,
      ...rest,
    };
    this.maxPayload = this.#opts.maxPayload;
    this.#local = new SubscriptionTrie<LocalSub>();
    this.#remote = new SubscriptionTrie<Remote>();
    this.#registry = new ProcedureRegistry({ random: options.random });
  }

  /** A session became usable. A peer node learns this node's interest and procedures. */
  attach(link: L): void {
    if (this.#links.has(link.id)) throw new RangeError(`link ${link.id} is already attached`);
    this.#links.set(link.id, {
      link,
      subs: new Map(),
      remotes: new Map(),
      refs: new Map(),
      provides: new Set(),
      calls: new Map(),
    });
    if (link.kind === "node") {
      for (const i of this.#interest.values()) {
        this.#send(link, "SUB", { sid: i.id, pattern: i.pattern, queue: i.queue });
      }
      for (const proc of this.#localProcs.keys()) this.#send(link, "REG", { proc });
    }
  }

  /** A session ended: its subscriptions, procedures, calls and flushes are cleaned up. */
  detach(link: Link): void {
    const st = this.#links.get(link.id);
    if (!st) return;
    for (const sid of [...st.subs.keys()]) this.#unsub(st, sid);
    for (const proc of [...st.provides]) this.#unreg(st, proc);
    // Calls it was serving fail with `unavailable`; calls it made are cancelled downstream.
    for (const f of this.#calls.failProvider(link.id)) this.#answerFail(f.call, f.error);
    for (const ourId of st.calls.values()) {
      const call = this.#calls.cancel(ourId, "the caller went away");
      if (call) this.#cancelDownstream(call.call);
    }
    this.#links.delete(link.id);
    this.#refusals.forget(link.id);
    this.#churn.forget(link.id);
    for (const [id, p] of this.#pings) {
      if (p.origin === link) this.#pings.delete(id);
      else if (p.waiting.delete(link) && p.waiting.size === 0) this.#pingDone(id, p);
    }
  }

  /**
   * Handles one frame from `link` at `now`. Throws `ProtocolError` when the session must be
   * closed (what was queued before stays queued: drain it).
   */
  receive(now: number, link: Link, frame: Frame): void {
    this.#now = now;
    const st = this.#links.get(link.id);
    if (!st) throw new RangeError(`frame from unknown link ${link.id}`);
    const f = frame.fields;
    switch (frame.name) {
      case "PUB":
        if (link.kind !== "client") break;
        return this.#publish(link, f.topic as string, f.payload as Uint8Array);
      case "FWD":
        if (link.kind !== "node") break;
        return this.#forwarded(f.topic as string, f.payload as Uint8Array, f.queues as string[]);
      case "SUB":
        if (this.#churned(st, `SUB ${f.pattern as string}`, { sid: f.sid as number })) return;
        return this.#sub(
          st,
          f.sid as number,
          f.pattern as string,
          (f.queue ?? undefined) as
            | string
            | undefined,
        );
      case "UNSUB":
        if (this.#churned(st, "UNSUB")) return;
        this.#unsub(st, f.sid as number);
        return;
      case "REG":
        if (this.#churned(st, `REG ${f.proc as string}`, { proc: f.proc as string })) return;
        return this.#reg(st, f.proc as string);
      case "UNREG":
        if (this.#churned(st, "UNREG")) return;
        this.#unreg(st, f.proc as string);
        return;
      case "CALL":
        return this.#call(
          st,
          f.id as number,
          f.proc as string,
          f.payload as Uint8Array,
          f.timeout_ms as number,
          (f.strategy ?? undefined) as string | undefined,
        );
      case "REPLY":
        return this.#reply(link, f.id as number, f.payload as Uint8Array);
      case "FAIL":
        return this.#failed(link, f.id as number, f.code as number, f.message as string);
      case "CANCEL":
        return this.#cancel(st, f.id as number);
      case "PING":
        return this.#ping(link, f.id as number);
      case "PONG":
        if (link.kind !== "node") break;
        return this.#pong(link, f.id as number);
      default:
        break;
    }
    this.stats.protocolErrors++;
    throw new ProtocolError(`${frame.name}: not allowed from a ${link.kind} on the bus`);
  }

  /** Expires calls and flushes whose deadline passed by `now`. */
  tick(now: number): void {
    this.#now = now;
    for (const f of this.#calls.tick(now)) {
      this.#answerFail(f.call, f.error);
      this.#cancelDownstream(f.call);
    }
    for (const [id, p] of this.#pings) if (p.deadline <= now) this.#pingDone(id, p);
  }

  /** When `tick` must next run (the clock of `now`), or `Infinity`. */
  nextWake(): number {
    let d = this.#calls.nextWake();
    for (const p of this.#pings.values()) if (p.deadline < d) d = p.deadline;
    return d;
  }

  /** Takes the frames queued for links since the last call, in the order they were queued. */
  drain(): RouterSend<L>[] {
    const out = this.#out;
    this.#out = [];
    return out;
  }

  #send(to: Link, name: string, fields: Record<string, unknown>): void {
    this.#out.push({ to: to as L, name, fields });
  }

  /** A snapshot for inspection. */
  snapshot(): {
    links: { clients: number; nodes: number };
    subscriptions: number;
    remoteInterest: number;
    procedures: string[];
    pendingCalls: number;
    stats: RouterStats;
  } {
    let clients = 0;
    let nodes = 0;
    for (const s of this.#links.values()) s.link.kind === "client" ? clients++ : nodes++;
    return {
      links: { clients, nodes },
      subscriptions: this.#local.size,
      remoteInterest: this.#remote.size,
      procedures: this.#registry.procedures(),
      pendingCalls: this.#calls.size,
      stats: { ...this.stats },
    };
  }

  // ------------------------------------------------------------------ pub/sub

  /**
   * Refuses a client's frame with `ERROR`, spending one of its refusals: a client refused more
   * than `ROUTER_LIMITS.refusals` allows is misbehaving, and its session is closed (a
   * `ProtocolError`), so a flood of refused frames cannot take the node's time from others.
   */
  #refuse(link: Link, fields: Record<string, unknown>): void {
    this.#spendRefusal(link);
    this.#send(link, "ERROR", fields);
  }

  #spendRefusal(link: Link): void {
    if (link.kind !== "client") return;
    if (this.#refusals.take(link.id, 1, this.#now)) return;
    this.stats.protocolErrors++;
    const { perSecond, burst } = ROUTER_LIMITS.refusals;
    throw new ProtocolError(
      `too many refused operations (more than ${burst} at once or ${perSecond} a second)`,
    );
  }

  /** Subscription and registration changes of a client: bounded in rate (`ROUTER_LIMITS.churn`). */
  #churned(st: LinkState, what: string, at: { sid?: number; proc?: string } = {}): boolean {
    if (st.link.kind !== "client" || this.#churn.take(st.link.id, 1, this.#now)) return false;
    this.stats.limited++;
    const { perSecond, burst } = ROUTER_LIMITS.churn;
    this.#refuse(st.link, {
      code: "limit",
      message:
        `${what}: too many subscription or registration changes (${burst} at once, then ${perSecond} a second)`,
      ...at,
    });
    return true;
  }

  /** The refusal of a client's operation, counted; null when allowed (or not a client). */
  #denied(link: Link, op: BusOperation, subject: string, queue?: string): string | null {
    if (!this.#authorize || link.kind !== "client") return null;
    const why = this.#authorize(link as L, op, subject, queue);
    if (why !== null) this.stats.denied++;
    return why;
  }

  /**
   * Asks `authorize` again about every client subscription and registration (after the rules
   * changed): what is no longer allowed is removed, and its client told (`ERROR
   * permission_denied` with the sid or the procedure). Returns how many were removed.
   */
  reauthorize(): number {
    let n = 0;
    for (const st of this.#links.values()) {
      if (st.link.kind !== "client") continue;
      for (const [sid, s] of [...st.subs]) {
        const why = this.#denied(st.link, "subscribe", s.pattern, s.queue);
        if (why === null) continue;
        this.#unsub(st, sid);
        this.#send(st.link, "ERROR", { code: "permission_denied", message: why, sid });
        n++;
      }
      for (const proc of [...st.provides]) {
        const why = this.#denied(st.link, "serve", proc);
        if (why === null) continue;
        this.#unreg(st, proc);
        this.#send(st.link, "ERROR", { code: "permission_denied", message: why, proc });
        n++;
      }
    }
    return n;
  }

  #publish(link: Link, topic: string, payload: Uint8Array): void {
    const why = this.#denied(link, "publish", topic);
    if (why !== null) {
      this.#refuse(link, { code: "permission_denied", message: why });
      return;
    }
    if (!this.#validTopics.has(topic)) {
      try {
        checkTopic(topic);
      } catch (e) {
        this.#refuse(link, { code: "bad_topic", message: (e as Error).message });
        return;
      }
      if (this.#validTopics.size >= 8192) this.#validTopics.clear();
      this.#validTopics.add(topic);
    }
    if (payload.length > this.maxPayload) {
      this.#refuse(link, {
        code: "payload_too_large",
        message:
          `PUB ${topic}: ${payload.length} bytes, over this node's limit of ${this.maxPayload}`,
      });
      return;
    }
    this.stats.published++;
    const local = this.#local.match(topic);
    let served: Set<string> | undefined;
    for (const s of local) {
      if (s.queue !== undefined) (served ??= new Set()).add(s.queue);
      this.#send(s.link, "MSG", { sid: s.sid, topic, payload });
    }
    this.stats.delivered += local.length;
    const remote = this.#remote.match(topic);
    if (remote.length === 0) {
      if (local.length === 0) this.stats.unrouted++;
      return;
    }
    // One FWD per node: plain interest, plus the queue groups it was picked for.
    const perNode = new Map<Link, string[]>();
    for (const r of remote) {
      if (r.queue !== undefined && served?.has(r.queue)) continue;
      let qs = perNode.get(r.link);
      if (!qs) perNode.set(r.link, qs = []);
      if (r.queue !== undefined) qs.push(r.queue);
    }
    for (const [node, queues] of perNode) this.#send(node, "FWD", { topic, payload, queues });
    this.stats.forwarded += perNode.size;
    if (local.length === 0 && perNode.size === 0) this.stats.unrouted++;
  }

  #forwarded(topic: string, payload: Uint8Array, queues: string[]): void {
    try {
      checkTopic(topic);
    } catch (e) {
      throw new ProtocolError(`FWD.topic: ${(e as Error).message}`, { cause: e });
    }
    for (const s of this.#local.match(topic)) {
      if (s.queue !== undefined && !queues.includes(s.queue)) continue;
      this.#send(s.link, "MSG", { sid: s.sid, topic, payload });
      this.stats.delivered++;
    }
  }

  #sub(st: LinkState, sid: number, pattern: string, queue: string | undefined): void {
    const link = st.link;
    if (st.subs.has(sid)) {
      if (link.kind === "node") throw new ProtocolError(`SUB: interest id ${sid} is in use`);
      this.#refuse(link, {
        code: "duplicate_sid",
        message: `SUB: sid ${sid} is in use`,
        sid,
      });
      return;
    }
    if (link.kind === "client") {
      const why = this.#denied(link, "subscribe", pattern, queue);
      if (why !== null) {
        this.#refuse(link, { code: "permission_denied", message: why, sid });
        return;
      }
      if (st.subs.size >= this.#opts.maxSubscriptions) {
        this.stats.limited++;
        this.#refuse(link, {
          code: "limit",
          message:
            `SUB ${pattern}: this client holds ${st.subs.size} subscriptions, the node's limit (limits.max_subscriptions)`,
          sid,
        });
        return;
      }
      const entry: LocalSub = { link, sid, pattern, queue };
      try {
        this.#local.add(pattern, entry, queue);
      } catch (e) {
        if (!(e instanceof TopicError)) throw e;
        this.#refuse(link, { code: "bad_pattern", message: e.message, sid });
        return;
      }
      st.subs.set(sid, { pattern, queue, entry });
      this.#addInterest(pattern, queue);
      return;
    }
    let entry = st.remotes.get(QUEUE_KEY(queue));
    if (!entry) st.remotes.set(QUEUE_KEY(queue), entry = { link, queue });
    try {
      this.#remote.add(pattern, entry, queue);
    } catch (e) {
      throw new ProtocolError(`SUB.pattern: ${(e as Error).message}`, { cause: e });
    }
    st.subs.set(sid, { pattern, queue, entry });
    const k = `${QUEUE_KEY(queue)} ${pattern}`;
    st.refs.set(k, (st.refs.get(k) ?? 0) + 1);
  }

  #unsub(st: LinkState, sid: number): void {
    const s = st.subs.get(sid);
    if (!s) return;
    st.subs.delete(sid);
    if (st.link.kind === "client") {
      this.#local.remove(s.pattern, s.entry as LocalSub, s.queue);
      this.#dropInterest(s.pattern, s.queue);
      return;
    }
    // Another interest id of this node may name the same (pattern, queue): keep it then.
    const k = `${QUEUE_KEY(s.queue)} ${s.pattern}`;
    const n = (st.refs.get(k) ?? 1) - 1;
    if (n > 0) {
      st.refs.set(k, n);
      return;
    }
    st.refs.delete(k);
    this.#remote.remove(s.pattern, s.entry as Remote, s.queue);
  }

  #addInterest(pattern: string, queue: string | undefined): void {
    const key = `${QUEUE_KEY(queue)} ${pattern}`;
    const i = this.#interest.get(key);
    if (i) {
      i.n++;
      return;
    }
    const id = this.#interestIds++;
    this.#interest.set(key, { pattern, queue, id, n: 1 });
    this.#toNodes("SUB", { sid: id, pattern, queue });
  }

  #dropInterest(pattern: string, queue: string | undefined): void {
    const key = `${QUEUE_KEY(queue)} ${pattern}`;
    const i = this.#interest.get(key);
    if (!i) return;
    if (--i.n > 0) return;
    this.#interest.delete(key);
    this.#toNodes("UNSUB", { sid: i.id });
  }

  #toNodes(name: string, fields: Record<string, unknown>): void {
    for (const s of this.#links.values()) {
      if (s.link.kind === "node") this.#send(s.link, name, fields);
    }
  }

  // ------------------------------------------------------------------ RPC

  #reg(st: LinkState, proc: string): void {
    try {
      checkProcedure(proc);
    } catch (e) {
      if (st.link.kind === "node") {
        throw new ProtocolError(`REG.proc: ${(e as Error).message}`, { cause: e });
      }
      this.#refuse(st.link, { code: "bad_procedure", message: (e as Error).message });
      return;
    }
    const why = this.#denied(st.link, "serve", proc);
    if (why !== null) {
      this.#refuse(st.link, { code: "permission_denied", message: why, proc });
      return;
    }
    if (st.provides.has(proc)) return;
    if (st.link.kind === "client" && st.provides.size >= this.#opts.maxProcedures) {
      this.stats.limited++;
      this.#refuse(st.link, {
        code: "limit",
        message:
          `REG ${proc}: this client serves ${st.provides.size} procedures, the node's limit (limits.max_procedures)`,
        proc,
      });
      return;
    }
    st.provides.add(proc);
    this.#registry.register(proc, { id: st.link.id, local: st.link.kind === "client" });
    if (st.link.kind === "client") {
      const n = this.#localProcs.get(proc) ?? 0;
      this.#localProcs.set(proc, n + 1);
      if (n === 0) this.#toNodes("REG", { proc });
    }
  }

  #unreg(st: LinkState, proc: string): void {
    if (!st.provides.delete(proc)) return;
    this.#registry.unregister(proc, st.link.id);
    if (st.link.kind === "client") {
      const n = (this.#localProcs.get(proc) ?? 1) - 1;
      if (n > 0) this.#localProcs.set(proc, n);
      else {
        this.#localProcs.delete(proc);
        this.#toNodes("UNREG", { proc });
      }
    }
  }

  #call(
    st: LinkState,
    id: number,
    proc: string,
    payload: Uint8Array,
    timeoutMs: number,
    strategyName: string | undefined,
  ): void {
    const link = st.link;
    const fail = (code: RpcErrorCode, message: string) => {
      this.#spendRefusal(link);
      this.stats.failures++;
      this.#send(link, "FAIL", { id, code: RPC_ERROR_NUMBERS[code], message });
    };
    this.stats.calls++;
    if (st.calls.has(id)) {
      if (link.kind === "node") throw new ProtocolError(`CALL: id ${id} is in use`);
      return fail("bad_request", `CALL: id ${id} is already in flight on this session`);
    }
    try {
      checkProcedure(proc);
      checkPayloadSize(payload, this.maxPayload);
    } catch (e) {
      if (e instanceof RpcError) return fail(e.code, e.detail ?? e.message);
      return fail("bad_request", (e as Error).message);
    }
    const why = this.#denied(link, "call", proc);
    if (why !== null) return fail("permission_denied", why);
    if (link.kind === "client" && st.calls.size >= this.#opts.maxPendingCalls) {
      this.stats.limited++;
      return fail(
        "bad_request",
        `CALL ${proc}: ${st.calls.size} calls of this session are in flight, the node's limit (limits.max_pending_calls)`,
      );
    }
    if (link.kind === "client" && (link.backlog?.() ?? 0) > this.#opts.maxUnreadBytes) {
      this.stats.limited++;
      return fail(
        "unavailable",
        `CALL ${proc}: this session does not read its replies (over ${this.#opts.maxUnreadBytes} bytes queued to it, limits.max_unread_bytes)`,
      );
    }
    timeoutMs = Math.min(timeoutMs, this.#opts.maxCallTimeoutMs);
    let strategy = this.#opts.defaultStrategy;
    if (strategyName !== undefined) {
      if (!SELECTION_STRATEGIES.includes(strategyName as SelectionStrategy)) {
        return fail(
          "bad_request",
          `CALL.strategy: ${JSON.stringify(strategyName)} is not one of ${
            SELECTION_STRATEGIES.join(", ")
          }`,
        );
      }
      strategy = strategyName as SelectionStrategy;
    }
    const tried = new Set<string>();
    if (link.kind === "node") {
      // A peer node's call is served by this node's own clients only.
      for (const p of this.#registry.providers(proc)) if (!p.local) tried.add(p.id);
    }
    this.#dispatch(
      { origin: link, originId: id, payload, strategy, tried },
      proc,
      this.#now + timeoutMs,
    );
  }

  /** Picks a provider and sends the call; answers `no_provider` when none is left. */
  #dispatch(ctx: CallContext, proc: string, deadline: number): void {
    const origin = this.#links.get(ctx.origin.id);
    if (!origin) return;
    let providerId: string;
    try {
      providerId = this.#registry.choose(proc, ctx.strategy, { exclude: ctx.tried }).id;
      // A provider whose link is backed up would hold the call in its queue: try the others.
      if (this.#links.get(providerId)?.link.congested?.()) {
        const skip = new Set(ctx.tried);
        for (const p of this.#registry.providers(proc)) {
          if (this.#links.get(p.id)?.link.congested?.()) skip.add(p.id);
        }
        try {
          providerId = this.#registry.choose(proc, ctx.strategy, { exclude: skip }).id;
        } catch {
          this.stats.limited++;
          throw new RpcError(
            "unavailable",
            `every provider of ${proc} is backed up (its node's queue to it is full)`,
          );
        }
      }
    } catch (e) {
      this.stats.failures++;
      const err = e as RpcError;
      this.#send(ctx.origin, "FAIL", {
        id: ctx.originId,
        code: RPC_ERROR_NUMBERS[err.code],
        message: err.detail ?? err.message,
      });
      return;
    }
    const provider = this.#links.get(providerId)!;
    ctx.tried.add(providerId);
    const now = this.#now;
    const call = this.#calls.start({
      procedure: proc,
      provider: providerId,
      now,
      timeoutMs: Math.max(0, deadline - now),
      context: ctx,
    });
    origin.calls.set(ctx.originId, call.id);
    this.#send(provider.link, "CALL", {
      id: call.id,
      proc,
      payload: ctx.payload,
      timeout_ms: Math.max(0, Math.ceil(deadline - now)),
      strategy: ctx.strategy,
    });
  }

  #reply(link: Link, id: number, payload: Uint8Array): void {
    const call = this.#calls.get(id);
    if (!call || call.provider !== link.id) return; // late (timed out, cancelled) or not theirs
    this.#calls.complete(id);
    const ctx = call.context;
    this.#links.get(ctx.origin.id)?.calls.delete(ctx.originId);
    this.stats.replies++;
    this.#send(ctx.origin, "REPLY", { id: ctx.originId, payload });
  }

  #failed(link: Link, id: number, code: number, message: string): void {
    const call = this.#calls.get(id);
    if (!call || call.provider !== link.id) return;
    this.#calls.complete(id);
    const rpcCode = rpcErrorCodeOf(code) ?? "handler_error";
    // A peer node whose provider left meanwhile: try the next provider, same deadline.
    if (link.kind === "node" && rpcCode === "no_provider") {
      this.#links.get(call.context.origin.id)?.calls.delete(call.context.originId);
      this.#dispatch(call.context, call.procedure, call.deadline);
      return;
    }
    this.#answerFail(call, new RpcError(rpcCode, message));
  }

  #cancel(st: LinkState, originId: number): void {
    const ourId = st.calls.get(originId);
    if (ourId === undefined) return;
    const f = this.#calls.cancel(ourId, "cancelled by the caller");
    st.calls.delete(originId);
    if (f) this.#cancelDownstream(f.call);
  }

  #cancelDownstream(call: PendingCall<CallContext>): void {
    const provider = this.#links.get(call.provider);
    if (provider) this.#send(provider.link, "CANCEL", { id: call.id });
  }

  /** Tells the caller a call failed (the wire carries the detail; the code is the number). */
  #answerFail(call: PendingCall<CallContext>, error: RpcError): void {
    const ctx = call.context;
    const st = this.#links.get(ctx.origin.id);
    if (!st) return;
    st.calls.delete(ctx.originId);
    this.stats.failures++;
    this.#send(ctx.origin, "FAIL", {
      id: ctx.originId,
      code: error.number,
      message: error.detail ?? error.message,
    });
  }

  // ------------------------------------------------------------------ flush

  /**
   * PING from a client: answered once every peer node has answered a PING of ours, so a PONG
   * means this node and its peers have processed everything the client sent before. PING from a
   * node is answered at once (it does not travel further).
   */
  #ping(link: Link, id: number): void {
    const waiting = new Set<Link>();
    if (link.kind === "client") {
      for (const s of this.#links.values()) if (s.link.kind === "node") waiting.add(s.link);
    }
    if (waiting.size === 0) {
      this.#send(link, "PONG", { id });
      return;
    }
    const ourId = this.#pingIds++;
    this.#pings.set(ourId, {
      origin: link,
      originId: id,
      waiting,
      deadline: this.#now + this.#opts.pingTimeoutMs,
    });
    for (const peer of waiting) this.#send(peer, "PING", { id: ourId });
  }

  #pong(link: Link, id: number): void {
    const p = this.#pings.get(id);
    if (p && p.waiting.delete(link) && p.waiting.size === 0) this.#pingDone(id, p);
  }

  #pingDone(id: number, p: Ping): void {
    this.#pings.delete(id);
    if (this.#links.has(p.origin.id)) this.#send(p.origin, "PONG", { id: p.originId });
  }
}
