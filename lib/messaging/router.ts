/**
 * The router: what a node does with the bus frames of its clients and peer nodes. A sans-IO core
 * (lib/util/sansio.ts): a link is an id and a kind, time is the `now` passed to `receive` and
 * `tick`, the frames to send are drained (`drain()`), randomness is an injected generator. The
 * node runtime (lib/node) turns sessions into links, calls `receive` per frame, and sends what it
 * drains.
 *
 * Routing is mesh-wide, over the overlay's routes (docs/routing.md):
 * - A node signs one interest record (lib/messaging/interest.ts): the distinct patterns its
 *   clients subscribe to (with queue groups) and the procedures they serve. The record floods
 *   over the routes (`INTEREST`), each node passing on a new version once, with its own cost to
 *   reach the origin (hops, RTT sum). Each node keeps the latest record of every origin it can
 *   reach, and the next hop toward it (lib/mesh/routing: distance vector, poisoned reverse).
 * - A client's `PUB` goes to the matching local subscriptions and, as `FWD`s, to every origin
 *   with matching interest: one `FWD` per next hop, naming the origins it is for. Each node on
 *   the way delivers to its own clients if it is named, and splits the rest by next hop: every
 *   named origin gets the message once, no loop outlives the hop limit (`ttl`). A queue group
 *   gets one member: a local one when the group has local members (as in NATS), else the
 *   nearest origin (fewest hops, then lowest RTT), which picks one of its members.
 * - A `CALL` goes to one provider chosen by strategy (default local-first): a local client, or
 *   an origin serving the procedure, reached hop by hop (`to`, `ttl`). Each hop holds the call
 *   as pending, so the reply, a failure or a cancellation travels back the same path. An origin
 *   answering `no_provider` (its provider left meanwhile, or no path was left) makes the node
 *   that chose it try the next provider within the same deadline.
 * - What cannot be delivered is counted where it was dropped (`noRoute`, `hopLimit`).
 * - A message or call carrying a W3C `traceparent` keeps it on every frame it travels in; with
 *   `tracer` set, each hop is a span (docs/tracing.md). Untraced frames cost one null check.
 */
import {
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
  type Tracer,
} from "@opentelemetry/api";
import { RateLimiter, type Rng, type SansIoCore } from "../util/mod.ts";
import type { Frame } from "../wire/mod.ts";
import { MAX_HOPS, PathTable } from "../mesh/mod.ts";
import { ProtocolError } from "./errors.ts";
import { MAX_DESTS, MAX_GROUPS, SHORT_ID_CHARS } from "./frames.ts";
import {
  interestBytes,
  type InterestRecord,
  type InterestSigner,
  type InterestSub,
  type InterestVerifier,
  ownInterest,
  unsignedInterest,
  unsignedVerifier,
} from "./interest.ts";
import {
  checkPayloadSize,
  type PendingCall,
  PendingCalls,
  ProcedureRegistry,
  SELECTION_STRATEGIES,
  type SelectionStrategy,
} from "./rpc.ts";
import { RPC_ERROR_NUMBERS, RpcError, type RpcErrorCode, rpcErrorCodeOf } from "./errors.ts";
import {
  checkProcedure,
  checkTopic,
  patternProblem,
  procedureProblem,
  TopicError,
} from "./topics.ts";
import { checkQueueGroup, type QueueStrategy, SubscriptionTrie } from "./trie.ts";
import { isTraceparent, isTracestate, spanContextOf, traceparentOf } from "./tracecontext.ts";

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
  /** A node link's round-trip time, ms (path costs). Default: 1. */
  rtt?(): number;
  /**
   * Set on a shortcut (a node link that is not an overlay route, docs/routing.md "Shortcuts"):
   * the short id (`SHORT_ID_CHARS`) of the node at its far end, as its certificate proved. No
   * interest travels on a shortcut; this node's own messages and calls to that node do.
   */
  readonly shortcut?: string | undefined;
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

/**
 * Told how each call of a client of this node ended (a latency histogram by outcome): once per
 * call, at the node the calling client is attached to.
 */
export interface RouterObserver {
  /**
   * `outcome`: `"ok"`, or the RPC error code the caller got (`timeout`, `no_provider`,
   * `cancelled`, `handler_error`, `unavailable`, …); `seconds` from the node taking the call to
   * its end (0 for a call refused at once).
   */
  callSettled(outcome: string, seconds: number): void;
}

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
  /** This node's id (text): the origin of its interest records. Default `"local"`. */
  nodeId?: string;
  /** The realm (part of what records sign). Default `""`. */
  realm?: string;
  /** Signs this node's interest records. Default: unsigned (tests, the simulator). */
  signer?: InterestSigner;
  /** Checks other nodes' records. Default: the unsigned check. */
  verify?: InterestVerifier;
  /** Wall-clock ms at start: versions start at it × 1000 (a restart's records win). Default 0. */
  epochMs?: number;
  /**
   * Whether `origin` is a member of the realm now: a record of another node is taken only then
   * (held until `memberUp` otherwise). Default: every origin.
   */
  admit?: (origin: string) => boolean;
  /** How long interest changes are gathered into one record. Default 5 ms. */
  announceDelayMs?: number;
  /** How long changed records and paths of others are gathered before they are passed on. Default 2 ms (0: at once). */
  floodDelayMs?: number;
  /** When to ask for shortcuts and when to let them go (`SHORTCUTS`); `max: 0` turns them off. */
  shortcuts?: Partial<ShortcutOptions>;
}

/** When a node asks for a shortcut to a far node, and when it lets one go (docs/routing.md, "Shortcuts"). */
export interface ShortcutOptions {
  /** Shortcuts in use or asked for at once (the node's `overlay.shortcuts`); 0: none. */
  max: number;
  /** Messages and calls of this node's clients to one node 2+ hops away, within `windowMs`, that earn a shortcut. */
  after: number;
  windowMs: number;
  /** A shortcut nothing went over (either way) for this long is let go. */
  idleMs: number;
  /** A node asked for (a dial that did not come up) is not asked for again sooner. */
  retryMs: number;
  /** Far nodes whose demand is counted at once (the oldest is forgotten past it). */
  maxTracked: number;
  /**
   * Messages to one far node held while its way changes (path to shortcut, or back), and bytes
   * held in all: past either they go at once (order yields to memory; `shortcutHoldOverflow`).
   */
  maxHeld: number;
  maxHeldBytes: number;
  /** Added to the old way's RTT sum before the new way is used (queueing at forwarders). */
  holdMarginMs: number;
  /**
   * The longest a switch holds messages, whatever the old way's RTT sum says (a path's cost is
   * what its forwarders claim: a peer that claims an hour must not hold traffic for one).
   */
  maxHoldMs: number;
}

/**
 * Shortcut defaults, each with its reason:
 * - `max` 128: a session costs a node tens of KiB, and a shortcut exists only while used; 128
 *   covers a publisher streaming to subscribers on 128 nodes (the simulated scenario has 100),
 *   and past that the least recently used gives way, so the busiest pairs keep theirs. A node
 *   takes at most twice `max` shortcuts in all (its own and its peers'; lib/node/links.ts).
 * - `after` 3 in 10 s: one-off messages (a flush, a rare event) never cost a handshake; a stream
 *   earns its shortcut on its third message.
 * - `idleMs` 30 s: the QUIC idle timeout's scale; a stream that pauses for less keeps its shortcut.
 * - `retryMs` 30 s: a node that cannot be reached directly (a relay only) is not dialed over and
 *   over.
 * - `maxTracked` 4,096 far nodes, `maxHeld` 1,024 messages a far node and `maxHeldBytes` 8 MiB
 *   in all: bounded memory whatever the traffic (held bytes are the node's, on top of what its
 *   sessions queue).
 * - `holdMarginMs` 25: the RTT sum is what the path measured lately; a forwarder's queue adds to
 *   it (15 ms seen on one hop in a review's test). The wait is paid once per switch.
 * - `maxHoldMs` 1 s: far above any real path's RTT sum and margin (a 10-hop path of 40 ms
 *   links is 800 ms), and a bound on what a lying path cost can hold.
 */
export const SHORTCUTS: ShortcutOptions = {
  max: 128,
  after: 3,
  windowMs: 10_000,
  idleMs: 30_000,
  retryMs: 30_000,
  maxTracked: 4096,
  maxHeld: 1024,
  maxHeldBytes: 8 << 20,
  holdMarginMs: 25,
  maxHoldMs: 1000,
};

/** What the driver does about shortcuts (`Router.shortcutPlan`). */
export interface ShortcutPlan<L extends Link = Link> {
  /** Node ids (full) to open a shortcut to: a session, direct or punched, and its shortcut channel. */
  readonly open: string[];
  /** Shortcuts this router no longer uses: let them go (drained, then the channel ended). */
  readonly close: L[];
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
  /** Origins whose records one node holds: the membership view's bound (lib/mesh/membership). */
  maxOrigins: 16_384,
  /** Records of not-yet-members held until membership admits them (one per origin). */
  maxPending: 1024,
  /**
   * INTEREST frames a peer node may send: a change floods once per route, so even a mesh in
   * upheaval stays far below; past it the route is closed.
   */
  interest: { perSecond: 2000, burst: 20_000 },
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
  /** Messages (per destination node) and calls with no path to the node they were for. */
  noRoute: number;
  /** Messages (per destination node) and calls dropped at the hop limit (a transient loop). */
  hopLimit: number;
  /** Interest records taken (new versions), and INTEREST frames received and sent. */
  records: number;
  interestIn: number;
  interestOut: number;
  /** Records whose signature did not verify (the sending route is closed). */
  forgedRecords: number;
  /** Records of origins that were not members yet, or past `maxOrigins` (held or dropped). */
  refusedRecords: number;
  /** Own subscriptions or procedures left out of this node's record (`ownInterest` bounds). */
  interestOverflow: number;
  /**
   * `traceparent`/`tracestate` values that were not W3C trace context: dropped, the frame taken
   * without them (docs/tracing.md).
   */
  badTraceContext: number;
  /** Shortcuts taken into use (either end's), let go (idle, or a route to the node came up), and FWDs sent over them. */
  shortcutsOpened: number;
  shortcutsClosed: number;
  viaShortcut: number;
  /**
   * This node's messages that waited while the way to their node changed (path and shortcut, so
   * that none overtakes one sent the old way), and those sent before their time because the
   * hold was full (`maxHeld`, `maxHeldBytes`: order yields to memory).
   */
  shortcutHeld: number;
  shortcutHoldOverflow: number;
}

/** What this node knows of one origin's interest (`inspect interest`). */
export interface OriginSnapshot {
  readonly node: string;
  readonly version: number;
  readonly subs: readonly InterestSub[];
  readonly procs: readonly string[];
  /** The next hop's node id, hops and RTT sum; absent for this node itself. */
  readonly path?: { via: string | undefined; hops: number; rttMs: number };
  /** Set when this node's own messages and calls to it go over a shortcut now (docs/routing.md). */
  readonly shortcut?: true;
}

interface LocalSub {
  readonly link: Link;
  readonly sid: number;
  readonly pattern: string;
  readonly queue: string | undefined;
}

/** One subscription of an origin's record, as the trie holds it (one object per pattern and queue). */
interface Remote {
  readonly origin: Origin;
  readonly pattern: string;
  readonly queue: string | undefined;
}

/** A far node whose record this node holds. */
interface Origin {
  readonly short: string;
  /**
   * Its node id and the version of its record held, as in `record`: a copy of a record seen
   * before (most INTEREST frames) is told apart without reading the record.
   */
  readonly id: string;
  version: number;
  record: InterestRecord;
  /**
   * What of its record is in the trie, one entry per distinct (pattern, queue), in record order
   * (an array, not a map: a node holds one per origin it reaches).
   */
  readonly entries: Remote[];
  /** Its place in the path table (offers without a lookup). */
  readonly path: ReturnType<PathTable["slot"]>;
}

interface LinkState {
  readonly link: Link;
  /** client: sid → its subscription. */
  readonly subs: Map<number, { pattern: string; queue: string | undefined; entry: LocalSub }>;
  /** Procedures this (client) link provides. */
  readonly provides: Set<string>;
  /** Calls this link started and that are still pending here: its call id → our id. */
  readonly calls: Map<number, number>;
  /**
   * A peer node's INTEREST tokens (`ROUTER_LIMITS.interest`), from its first INTEREST: a bucket
   * on the link's state, not in a table keyed by link (no lookup per frame).
   */
  interest: { tokens: number; at: number } | undefined;
}

interface CallContext {
  readonly origin: Link;
  readonly originId: number;
  readonly payload: Uint8Array;
  readonly strategy: SelectionStrategy;
  readonly tried: Set<string>;
  /** The origin a peer node's call is for, when this node only passes it on; with the hops left. */
  readonly pinned?: { to: string; ttl: number } | undefined;
  /** When this node took the call (the router's clock, ms). */
  readonly at: number;
  /** The trace context the call goes on with (this hop's span's when traced here), if any. */
  readonly traceparent: string | undefined;
  readonly tracestate: string | undefined;
  /** This hop's span (`tracer` set and the call traced). */
  readonly span: Span | undefined;
}

/** A shortcut link (docs/routing.md, "Shortcuts"). */
interface ShortcutLink {
  readonly link: Link;
  /** The far node's short id. */
  readonly short: string;
  /** When a frame last went over it, either way. */
  usedAt: number;
  /** Let go: no longer used; it stays attached until the driver detaches it (drained). */
  closing: boolean;
  /** Asked for by this node (counts against its `max`), not opened by the far node. */
  readonly mine: boolean;
  /** When this node's own last message went over it (-Infinity: none yet). */
  sentAt: number;
  /** Sweeps in a row that found it slower than the path (let go at the second). */
  slow: number;
}

/**
 * This node's own messages to one far node, held while the way there changes (path to shortcut,
 * or back): what went the old way may still be on it, and none of these may overtake it.
 */
interface Wait {
  readonly short: string;
  readyAt: number;
  readonly held: HeldForward[];
  bytes: number;
}

/** A client's PING that waits for held messages to go first (a PONG means they went). */
interface ParkedPing {
  readonly link: Link;
  readonly id: number;
  readonly waits: Set<Wait>;
  /** Past this the PING goes on anyway (`pingTimeoutMs`, as any flush). */
  readonly deadline: number;
}

/** A message held for a shortcut that is not ready yet (order), to one node. */
interface HeldForward {
  readonly topic: string;
  readonly payload: Uint8Array;
  readonly ttl: number;
  readonly queues: string[];
  readonly tp: string | undefined;
  readonly ts: string | undefined;
}

/** This node's messages and calls to one far node over paths of 2+ hops (kept in LRU order). */
interface Demand {
  n: number;
  since: number;
  /** When the last went over the path, and that path's RTT sum (when a shortcut may overtake it). */
  lastPathAt: number;
  pathRtt: number;
}

interface Ping {
  readonly origin: Link;
  readonly originId: number;
  readonly waiting: Set<Link>;
  readonly deadline: number;
}

const QUEUE_KEY = (queue: string | undefined) => queue ?? "";
/** A remote provider's id in the registry: `@` and the origin's short id. */
const REMOTE = "@";
/** `hops` of an INTEREST that withdraws the sender's path. */
const WITHDRAW = 255;

const EMPTY = new Uint8Array(0);

/** The shortcut plan with nothing to do (shared: no allocation per call). */
const NO_PLAN: ShortcutPlan<never> = Object.freeze({
  open: Object.freeze([]) as never[],
  close: Object.freeze([]) as never[],
});

/**
 * RTT sums this close to the nearest count as equally near for a queue group (the load is spread
 * among them): 25% or 1 ms, whichever is more. Closer than that is measurement noise, not
 * distance (a QUIC RTT estimate on a busy host moves by a millisecond).
 */
const tieBand = (rttMs: number) => Math.max(1, rttMs * 0.25);

/** Whether a record lists exactly these subscriptions and procedures (both sorted by `ownInterest`). */
function sameInterest(
  r: InterestRecord,
  subs: readonly InterestSub[],
  procs: readonly string[],
): boolean {
  if (r.subs.length !== subs.length || r.procs.length !== procs.length) return false;
  for (let i = 0; i < subs.length; i++) {
    if (r.subs[i]!.pattern !== subs[i]!.pattern || r.subs[i]!.queue !== subs[i]!.queue) {
      return false;
    }
  }
  for (let i = 0; i < procs.length; i++) if (r.procs[i] !== procs[i]) return false;
  return true;
}

/** Patterns of records found valid lately (records repeat the same few; the check is a regex per segment). */
const VALID_PATTERNS = new Set<string>();

/**
 * Whether a record's subscription as it came is in record form: a plain object of `pattern`,
 * then `queue` when it has one (a string), and nothing else.
 */
function inRecordForm(s: { pattern: string; queue?: string | null }): boolean {
  if (Object.getPrototypeOf(s) !== Object.prototype) return false;
  let n = 0;
  for (const k in s) if (k !== (n++ === 0 ? "pattern" : "queue")) return false;
  return s.queue === undefined ? n === 1 : typeof s.queue === "string" && n === 2;
}

/** A peer's INTEREST fields as a record, each pattern, queue group and procedure checked. */
function checkRecord(f: Record<string, unknown>): InterestRecord {
  const wire = f.subs as { pattern: string; queue?: string | null }[];
  const groups = new Set<string>();
  let asIs = true;
  for (const s of wire) {
    if (!VALID_PATTERNS.has(s.pattern)) {
      const bad = patternProblem(s.pattern);
      if (bad !== null) throw new ProtocolError(`INTEREST.subs: ${bad}`);
      if (VALID_PATTERNS.size >= 1 << 16) VALID_PATTERNS.clear();
      VALID_PATTERNS.add(s.pattern);
    }
    const queue = s.queue ?? undefined;
    if (queue !== undefined) {
      try {
        checkQueueGroup(queue);
      } catch (e) {
        throw new ProtocolError(`INTEREST.subs: ${(e as Error).message}`, { cause: e });
      }
      groups.add(queue);
      if (groups.size > MAX_GROUPS) {
        throw new ProtocolError(`INTEREST.subs: more than ${MAX_GROUPS} queue groups`);
      }
    }
    asIs &&= inRecordForm(s);
  }
  // Subscriptions already in record form are kept as they came (no copy for each node taking
  // the record); any other shape is rebuilt from what was checked.
  const subs: readonly InterestSub[] = asIs ? wire as InterestSub[] : wire.map((s) => {
    const queue = s.queue ?? undefined;
    return queue === undefined ? { pattern: s.pattern } : { pattern: s.pattern, queue };
  });
  const procs = f.procs as string[];
  for (const p of procs) {
    const bad = procedureProblem(p);
    if (bad !== null) throw new ProtocolError(`INTEREST.procs: ${bad}`);
  }
  return {
    origin: f.origin as string,
    version: f.version as number,
    subs,
    procs,
    key: f.key as Uint8Array,
    sig: f.sig as Uint8Array,
  };
}

/** An INTEREST's fields: record `r`, reached at `hops` and an RTT sum of `rttMs`. */
function recordFields(r: InterestRecord, hops: number, rttMs: number): Record<string, unknown> {
  return {
    origin: r.origin,
    version: r.version,
    hops,
    rtt_us: Math.min(0xffffffff, Math.max(0, Math.round(rttMs * 1000))),
    subs: r.subs,
    procs: r.procs,
    key: r.key,
    sig: r.sig,
  };
}

/** An INTEREST's fields telling a peer this node is no longer a way to `r`'s origin (the record left out). */
function withdrawFields(r: InterestRecord): Record<string, unknown> {
  return {
    origin: r.origin,
    version: r.version,
    hops: WITHDRAW,
    rtt_us: 0,
    subs: [],
    procs: [],
    key: EMPTY,
    sig: EMPTY,
  };
}

/** Short ids of the node ids seen lately (a frame's origin is mostly one of a few strings). */
const SHORT_IDS = new Map<string, string>();

/**
 * `origin`'s short id (its first `SHORT_ID_CHARS`), the same string for the same node id: no
 * new string per frame (each one allocated and hashed again, and each a different key to compare
 * in every table it is looked up in).
 */
function shortId(origin: string): string {
  let short = SHORT_IDS.get(origin);
  if (short === undefined) {
    if (SHORT_IDS.size >= 1 << 16) SHORT_IDS.clear();
    short = origin.slice(0, SHORT_ID_CHARS);
    SHORT_IDS.set(origin, short);
  }
  return short;
}

/** Frames queued for links, in order, as three arrays (reused from drain to drain). */
class Outbox<L> {
  readonly to: L[] = [];
  readonly name: string[] = [];
  readonly fields: Record<string, unknown>[] = [];

  clear(): void {
    this.to.length = 0;
    this.name.length = 0;
    this.fields.length = 0;
  }
}

/** No queue groups (a FWD that names none). */
const NO_QUEUES: readonly string[] = [];

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
    noRoute: 0,
    hopLimit: 0,
    records: 0,
    interestIn: 0,
    interestOut: 0,
    forgedRecords: 0,
    refusedRecords: 0,
    interestOverflow: 0,
    badTraceContext: 0,
    shortcutsOpened: 0,
    shortcutsClosed: 0,
    shortcutHeld: 0,
    shortcutHoldOverflow: 0,
    viaShortcut: 0,
  };
  /**
   * Spans for traced messages and calls, one per hop (docs/tracing.md); null: none, and nothing
   * spent on them. Frames keep their trace context either way. Span times are the tracer's
   * clock (the one thing here that reads one; leave it null in simulations).
   */
  tracer: Tracer | null = null;
  /** Told how each call of this node's clients ended; null: nobody. */
  observer: RouterObserver | null = null;
  readonly maxPayload: number;
  readonly #links = new Map<string, LinkState>();
  readonly #local: SubscriptionTrie<LocalSub>;
  readonly #remote: SubscriptionTrie<Remote>;
  /** Distinct local (pattern, queue) → reference count. */
  readonly #interest = new Map<string, { pattern: string; queue?: string; n: number }>();
  /** Far nodes' records, by short id, and the paths to them (keyed by link id). */
  readonly #origins = new Map<string, Origin>();
  readonly #paths = new PathTable();
  /** Records of origins not admitted yet: origin → the frame and the link it came on. */
  readonly #pending = new Map<string, { link: string; fields: Record<string, unknown> }>();
  readonly #nodeId: string;
  readonly #short: string;
  readonly #realm: string;
  readonly #signer: InterestSigner;
  readonly #verify: InterestVerifier;
  readonly #admit: (origin: string) => boolean;
  readonly #announceDelay: number;
  /** This node's record as last announced (undefined: never had interest). */
  #own: InterestRecord | undefined;
  #version: number;
  #announceAt = Infinity;
  readonly #floodDelay: number;
  /** Origins whose record or path changed, passed on at `#floodAt`. */
  readonly #dirty = new Set<string>();
  #floodAt = Infinity;
  /** Set when a record of ours came back newer than ours: the next one goes out even unchanged. */
  #reannounce = false;
  /** Procedure → number of local (client) providers. */
  readonly #localProcs = new Map<string, number>();
  readonly #registry: ProcedureRegistry;
  readonly #calls = new PendingCalls<CallContext>();
  readonly #pings = new Map<number, Ping>();
  /** Topics already checked (publishers repeat topics; the check is a regex per segment). */
  readonly #validTopics = new Set<string>();
  #pingIds = 1;
  readonly #opts: Required<
    Omit<
      RouterOptions<L>,
      | "authorize"
      | "nodeId"
      | "realm"
      | "signer"
      | "verify"
      | "epochMs"
      | "admit"
      | "announceDelayMs"
      | "floodDelayMs"
      | "shortcuts"
    >
  >;
  readonly #refusals = new RateLimiter<string>({ ...ROUTER_LIMITS.refusals, maxKeys: 1 << 20 });
  readonly #churn = new RateLimiter<string>({ ...ROUTER_LIMITS.churn, maxKeys: 1 << 20 });
  readonly #authorize: RouterOptions<L>["authorize"];
  /** The `now` of the latest input (the router reads no clock). */
  #now = 0;
  /** Frames queued since the last drain; and an emptied queue kept for the next drain to swap in. */
  #out = new Outbox<L>();
  #spare: Outbox<L> | undefined;
  readonly #sc: ShortcutOptions;
  /** Shortcut links by link id. */
  readonly #scLinks = new Map<string, ShortcutLink>();
  /** Far node (short id) → the shortcut this node's own messages and calls to it take. */
  readonly #scTo = new Map<string, ShortcutLink>();
  /** Far nodes (short id) a shortcut was asked for, and when (until it comes up or `retryMs`). */
  readonly #scAsked = new Map<string, number>();
  /** Far nodes whose shortcut the peer let go or refused, and when: not asked for within `retryMs`. */
  readonly #scRested = new Map<string, number>();
  readonly #demand = new Map<string, Demand>();
  /** Shortcuts this node asked for that are in use (`#scTo`, `mine`): with `#scAsked`, at most `max`. */
  #scOwn = 0;
  /** Far node (short id) → this node's messages to it waiting while the way changes. */
  readonly #waits = new Map<string, Wait>();
  #heldBytes = 0;
  #parkedPings: ParkedPing[] = [];
  #scOpen: string[] = [];
  #scClose: L[] = [];
  /** When idle shortcuts and stale asks are next looked at, and when held messages are next due. */
  #scSweepAt = Infinity;
  #scReleaseAt = Infinity;

  constructor(options: RouterOptions<L>) {
    const {
      authorize,
      nodeId,
      realm,
      signer,
      verify,
      epochMs,
      admit,
      announceDelayMs,
      floodDelayMs,
      shortcuts,
      ...rest
    } = options;
    this.#sc = { ...SHORTCUTS, ...shortcuts };
    this.#authorize = authorize;
    this.#opts = {
      maxPayload: 1024 * 1024,
      defaultStrategy: "local-first",
      pingTimeoutMs: 5000,
      ...ROUTER_LIMITS,
      ...rest,
    };
    this.maxPayload = this.#opts.maxPayload;
    this.#nodeId = nodeId ?? "local";
    this.#short = this.#nodeId.slice(0, SHORT_ID_CHARS);
    this.#realm = realm ?? "";
    this.#signer = signer ?? unsignedInterest(this.#nodeId);
    this.#verify = verify ?? unsignedVerifier;
    this.#admit = admit ?? (() => true);
    this.#announceDelay = announceDelayMs ?? 5;
    this.#floodDelay = floodDelayMs ?? 2;
    this.#version = Math.max(0, Math.floor(epochMs ?? 0)) * 1000;
    this.#local = new SubscriptionTrie<LocalSub>();
    // Removed one by one (`#uninstall`): no index by subscriber for a table of every origin's interest.
    this.#remote = new SubscriptionTrie<Remote>({ strategy: this.#nearest(), bySubscriber: false });
    this.#registry = new ProcedureRegistry({ random: options.random });
  }

  /** Queue groups of far nodes: the nearest origin (lowest RTT sum, as paths are chosen), ties in turn. */
  #nearest(): QueueStrategy<Remote> {
    const turns = new Map<string, number>();
    return {
      pick: (group, candidates) => {
        const rtts = candidates.map((c) => this.#paths.best(c.origin.short)?.rtt ?? Infinity);
        const best = Math.min(...rtts);
        // RTTs within the tie band of the nearest are ties: the load is spread among them.
        const ties: number[] = [];
        rtts.forEach((rtt, i) => {
          if (rtt <= best + tieBand(best)) ties.push(i);
        });
        const n = turns.get(group) ?? 0;
        turns.set(group, n + 1 >= Number.MAX_SAFE_INTEGER ? 0 : n + 1);
        return ties[n % ties.length] ?? 0;
      },
      forget: (group) => void turns.delete(group),
    };
  }

  /** A session became usable. A peer node learns this node's interest and procedures. */
  attach(link: L, now: number = this.#now): void {
    if (this.#links.has(link.id)) throw new RangeError(`link ${link.id} is already attached`);
    this.#links.set(link.id, {
      link,
      subs: new Map(),
      provides: new Set(),
      calls: new Map(),
      interest: undefined,
    });
    if (link.kind === "node" && link.shortcut !== undefined) {
      this.#now = Math.max(this.#now, now);
      return this.#shortcutUp(link);
    }
    if (link.kind === "node") {
      // What this node knows goes to the new route: its own record, and every origin it reaches.
      if (this.#own && this.#announceAt === Infinity) this.#sendRecord(link, this.#own, 0, 0);
      for (const o of this.#origins.values()) {
        const p = this.#paths.best(o.short);
        if (p) this.#sendRecord(link, o.record, p.hops, p.rtt);
      }
    }
  }

  /**
   * A route is being let go (docs/routing.md, "Letting a route go"): from now on its paths are a
   * last resort (any other path to an origin beats them), so what is published and called moves
   * to other routes while it drains. Calls already over it finish over it.
   */
  retire(link: Link, now: number = this.#now): void {
    if (link.kind !== "node" || !this.#links.has(link.id)) return;
    this.#now = Math.max(this.#now, now);
    // A shortcut let go by the driver (its peer let it go, or refused it): not used from now on.
    // Not asked for again within `retryMs` if this node asked for it and still uses it (the peer
    // had no room for it); an idle one, one the peer opened, or the answer to this node's own
    // letting go is no refusal.
    const sc = this.#scLinks.get(link.id);
    if (sc) {
      if (!sc.closing) this.#letGo(sc, sc.mine && this.#now - sc.usedAt < this.#sc.idleMs);
      return;
    }
    for (const short of this.#paths.retire(link.id)) this.#changedPath(short);
  }

  /** Whether calls are in flight over `link`, either way (a route let go waits for them). */
  busy(link: Link): boolean {
    const st = this.#links.get(link.id);
    return st !== undefined && (st.calls.size > 0 || this.#calls.hasProvider(link.id));
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
      if (call) {
        this.#settled(call.call.context, "cancelled");
        this.#cancelDownstream(call.call, false);
      }
    }
    const sc = this.#scLinks.get(link.id);
    if (sc) this.#shortcutDown(sc);
    this.#links.delete(link.id);
    this.#refusals.forget(link.id);
    this.#churn.forget(link.id);
    if (link.kind === "node") {
      for (const short of this.#paths.dropLink(link.id)) this.#changedPath(short);
    }
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
    if (link.shortcut !== undefined) {
      const sc = this.#scLinks.get(link.id);
      if (sc) sc.usedAt = now;
    }
    // A trace context is checked once, here: a value that is not W3C is dropped (and counted).
    if (f.traceparent != null || f.tracestate != null) this.#checkTrace(f);
    switch (frame.name) {
      case "PUB":
        if (link.kind !== "client") break;
        return this.#publish(
          link,
          f.topic as string,
          f.payload as Uint8Array,
          (f.traceparent ?? undefined) as string | undefined,
          (f.tracestate ?? undefined) as string | undefined,
        );
      case "FWD":
        if (link.kind !== "node") break;
        if (link.shortcut !== undefined) this.#onlyForMe("FWD", f.dests as string[]);
        return this.#forwarded(
          link,
          f.topic as string,
          f.payload as Uint8Array,
          f.ttl as number,
          f.dests as string[],
          f.groups as { node: string; queue: string }[],
          (f.traceparent ?? undefined) as string | undefined,
          (f.tracestate ?? undefined) as string | undefined,
        );
      case "INTEREST":
        if (link.kind !== "node") break;
        if (link.shortcut !== undefined) {
          this.stats.protocolErrors++;
          throw new ProtocolError(
            "INTEREST: not allowed on a shortcut (only routes carry interest)",
          );
        }
        return this.#interestIn(st, f);
      case "SUB":
        if (link.kind !== "client") break;
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
        if (link.kind !== "client") break;
        if (this.#churned(st, "UNSUB")) return;
        this.#unsub(st, f.sid as number);
        return;
      case "REG":
        if (link.kind !== "client") break;
        if (this.#churned(st, `REG ${f.proc as string}`, { proc: f.proc as string })) return;
        return this.#reg(st, f.proc as string);
      case "UNREG":
        if (link.kind !== "client") break;
        if (this.#churned(st, "UNREG")) return;
        this.#unreg(st, f.proc as string);
        return;
      case "CALL":
        if (link.shortcut !== undefined) this.#onlyForMe("CALL", [(f.to ?? "") as string]);
        return this.#call(
          st,
          f.id as number,
          f.proc as string,
          f.payload as Uint8Array,
          f.timeout_ms as number,
          (f.strategy ?? undefined) as string | undefined,
          (f.to ?? undefined) as string | undefined,
          (f.ttl ?? undefined) as number | undefined,
          (f.traceparent ?? undefined) as string | undefined,
          (f.tracestate ?? undefined) as string | undefined,
        );
      case "REPLY":
        return this.#reply(link, f.id as number, f.payload as Uint8Array);
      case "FAIL":
        return this.#failed(link, f.id as number, f.code as number, f.message as string);
      case "CANCEL":
        return this.#cancel(st, f.id as number, f.expired === true);
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

  /** A shortcut carries only its two ends' own traffic: a frame for any other node closes it. */
  #onlyForMe(name: string, nodes: string[]): void {
    for (const n of nodes) {
      if (n !== this.#short) {
        this.stats.protocolErrors++;
        throw new ProtocolError(
          `${name}: names node ${
            JSON.stringify(n)
          } on a shortcut, which carries only what is for its far end`,
        );
      }
    }
  }

  /**
   * Drops a trace context that is not W3C from a frame's fields (the frame goes on without it):
   * a bad `traceparent` takes its `tracestate` with it, and a `tracestate` means nothing alone.
   */
  #checkTrace(f: Record<string, unknown>): void {
    const tp = f.traceparent;
    if (tp != null && !(typeof tp === "string" && isTraceparent(tp))) {
      this.stats.badTraceContext++;
      f.traceparent = null;
      f.tracestate = null;
      return;
    }
    const ts = f.tracestate;
    if (ts == null) return;
    if (tp == null || !(typeof ts === "string" && isTracestate(ts))) {
      this.stats.badTraceContext++;
      f.tracestate = null;
    }
  }

  /**
   * This hop's span for a traced message or call (`tracer` set): a child of the context it came
   * with, named `send <topic or procedure>` (docs/tracing.md, "Spans").
   */
  #hopSpan(
    kind: SpanKind,
    op: "publish" | "call",
    dest: string,
    tp: string,
    ts: string | undefined,
    hop: number,
  ): Span {
    return this.tracer!.startSpan(
      `send ${dest}`,
      {
        kind,
        attributes: {
          "messaging.system": "macula",
          "messaging.operation.type": "send",
          "messaging.operation.name": op,
          "messaging.destination.name": dest,
          "macula.node.id": this.#nodeId,
          "macula.hop": hop,
        },
      },
      trace.setSpanContext(ROOT_CONTEXT, spanContextOf(tp, ts)),
    );
  }

  /** A call leaves this node's hands: its span ends, and its caller's node tells the observer. */
  #settled(ctx: CallContext, outcome: string): void {
    const span = ctx.span;
    if (span !== undefined) {
      if (outcome !== "ok") {
        span.setAttribute("error.type", outcome);
        span.setStatus({ code: SpanStatusCode.ERROR, message: outcome });
      }
      span.end();
    }
    if (this.observer !== null && ctx.origin.kind === "client") {
      this.observer.callSettled(outcome, Math.max(0, this.#now - ctx.at) / 1000);
    }
  }

  /** Expires calls and flushes whose deadline passed by `now`. */
  tick(now: number): void {
    this.#now = now;
    if (now >= this.#announceAt) this.#announce();
    if (now >= this.#floodAt) this.#floodDirty();
    if (now >= this.#scSweepAt || now >= this.#scReleaseAt) this.#shortcutTick(now);
    for (const f of this.#calls.tick(now)) {
      this.#answerFail(f.call, f.error);
      this.#cancelDownstream(f.call, true);
    }
    for (const [id, p] of this.#pings) if (p.deadline <= now) this.#pingDone(id, p);
    if (this.#parkedPings.length > 0 && this.#parkedPings[0]!.deadline <= now) {
      // Parked in deadline order (each `now + pingTimeoutMs`): the due ones are a prefix.
      const late = this.#parkedPings.findIndex((p) => p.deadline > now);
      const due = this.#parkedPings.splice(0, late < 0 ? this.#parkedPings.length : late);
      for (const p of due) if (this.#links.has(p.link.id)) this.#pingNow(p.link, p.id);
    }
  }

  /** When `tick` must next run (the clock of `now`), or `Infinity`. */
  nextWake(): number {
    let d = Math.min(
      this.#calls.nextWake(),
      this.#announceAt,
      this.#floodAt,
      this.#scSweepAt,
      this.#scReleaseAt,
    );
    for (const p of this.#pings.values()) if (p.deadline < d) d = p.deadline;
    if (this.#parkedPings.length > 0) d = Math.min(d, this.#parkedPings[0]!.deadline);
    return d;
  }

  /** Takes the frames queued for links since the last call, in the order they were queued. */
  drain(): RouterSend<L>[] {
    const out: RouterSend<L>[] = [];
    this.drainEach((to, name, fields) => out.push({ to, name, fields }));
    return out;
  }

  /**
   * `drain`, a frame at a time: `send` gets each frame queued since the last drain, in order;
   * what is queued meanwhile (by `send` itself, say) waits for the next drain. For a driver that
   * hands every frame on at once: no object per frame (the simulator, a million frames a second).
   */
  drainEach(send: (to: L, name: string, fields: Record<string, unknown>) => void): void {
    const out = this.#out;
    const n = out.to.length;
    if (n === 0) return;
    this.#out = this.#spare ?? new Outbox<L>();
    this.#spare = undefined;
    for (let i = 0; i < n; i++) send(out.to[i]!, out.name[i]!, out.fields[i]!);
    out.clear();
    this.#spare = out;
  }

  #send(to: Link, name: string, fields: Record<string, unknown>): void {
    const out = this.#out;
    out.to.push(to as L);
    out.name.push(name);
    out.fields.push(fields);
  }

  /** A snapshot for inspection. */
  snapshot(): {
    links: { clients: number; nodes: number };
    subscriptions: number;
    remoteInterest: number;
    procedures: string[];
    pendingCalls: number;
    origins: number;
    /** Shortcut links attached (either end's, docs/routing.md "Shortcuts"). */
    shortcuts: number;
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
      origins: this.#origins.size,
      shortcuts: this.#scLinks.size,
      stats: { ...this.stats },
    };
  }

  /**
   * What this node knows of who subscribes to and serves what (`inspect interest`): its own
   * record first, then every origin it reaches, with the path. `peerOf` names a link's node.
   */
  interest(peerOf: (link: L) => string | undefined = () => undefined): OriginSnapshot[] {
    const out: OriginSnapshot[] = [];
    const { subs, procs } = this.#ownRecordFields();
    out.push({ node: this.#nodeId, version: this.#own?.version ?? 0, subs, procs });
    for (const o of this.#origins.values()) {
      const p = this.#paths.best(o.short);
      const via = p ? this.#links.get(p.link)?.link : undefined;
      out.push({
        node: o.record.origin,
        version: o.record.version,
        subs: o.record.subs,
        procs: o.record.procs,
        path: p
          ? { via: via ? peerOf(via as L) : undefined, hops: p.hops, rttMs: p.rtt }
          : undefined,
        ...(this.#scTo.has(o.short) ? { shortcut: true as const } : {}),
      });
    }
    return out;
  }

  /**
   * A member joined: a record of it held back (it was not a member yet when the record came) is
   * taken now.
   */
  memberUp(origin: string): void {
    const p = this.#pending.get(origin);
    if (!p) return;
    this.#pending.delete(origin);
    const st = this.#links.get(p.link);
    if (st) this.#interestIn(st, p.fields);
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

  #publish(
    link: Link,
    topic: string,
    payload: Uint8Array,
    tp: string | undefined,
    ts: string | undefined,
  ): void {
    const why = this.#denied(link, "publish", topic);
    if (why !== null) {
      this.#refuse(link, { code: "permission_denied", message: why });
      return;
    }
    if (!this.#validTopics.has(topic)) {
      try {
        this.#checkTopic(topic);
      } catch (e) {
        this.#refuse(link, { code: "bad_topic", message: (e as Error).message });
        return;
      }
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
    if (tp === undefined || this.tracer === null) return this.#publishTo(topic, payload, tp, ts);
    const span = this.#hopSpan(SpanKind.PRODUCER, "publish", topic, tp, ts, 0);
    const before = this.#counts();
    try {
      this.#publishTo(topic, payload, tp, ts);
    } finally {
      this.#endHop(span, before);
    }
  }

  /** The counters a message's hop span reports, before the hop. */
  #counts(): [number, number, number, number] {
    const s = this.stats;
    return [s.delivered, s.forwarded, s.noRoute, s.hopLimit];
  }

  /** Ends a message's hop span with what the hop did: deliveries, FWDs sent, destinations lost. */
  #endHop(span: Span, before: [number, number, number, number]): void {
    const s = this.stats;
    span.setAttribute("macula.deliveries", s.delivered - before[0]);
    span.setAttribute("macula.forwards", s.forwarded - before[1]);
    const lost = s.noRoute - before[2] + s.hopLimit - before[3];
    if (lost > 0) span.setAttribute("macula.undeliverable", lost);
    span.end();
  }

  /** A client's publish, checked: to the local subscriptions and on toward every far one. */
  #publishTo(
    topic: string,
    payload: Uint8Array,
    tp: string | undefined,
    ts: string | undefined,
  ): void {
    const local = this.#local.match(topic);
    let served: Set<string> | undefined;
    for (const s of local) {
      if (s.queue !== undefined) (served ??= new Set()).add(s.queue);
      this.#sendMsg(s, topic, payload, tp, ts);
    }
    this.stats.delivered += local.length;
    const remote = this.#remote.match(topic);
    if (remote.length === 0) {
      if (local.length === 0) this.stats.unrouted++;
      return;
    }
    // Each origin once: its plain interest, plus the queue groups it was picked for.
    const dests = new Map<string, string[]>();
    for (const r of remote) {
      if (r.queue !== undefined && served?.has(r.queue)) continue;
      let qs = dests.get(r.origin.short);
      if (!qs) dests.set(r.origin.short, qs = []);
      if (r.queue !== undefined) qs.push(r.queue);
    }
    if (local.length === 0 && dests.size === 0) this.stats.unrouted++;
    this.#route(undefined, topic, payload, MAX_HOPS, dests, tp, ts);
  }

  /**
   * Sends one message on toward `dests` (short id → the queue groups it is for): one FWD per
   * next hop (more when it names over `MAX_DESTS`). A destination whose best path leads back
   * where the message came from goes by the next best, or back when there is none (paths still
   * settling: `PathTable.nextHop`); one with no path at all is counted (`noRoute`).
   */
  #route(
    from: Link | undefined,
    topic: string,
    payload: Uint8Array,
    ttl: number,
    dests: Map<string, string[]>,
    tp: string | undefined,
    ts: string | undefined,
  ): void {
    // This node's own messages: over a shortcut to their node when it has one.
    const own = from === undefined;
    if (dests.size === 1 && !(own && (this.#scTo.size > 0 || this.#waits.size > 0))) {
      // One destination and no shortcut to weigh (the common case): one FWD, no grouping.
      const [node, queues] = dests.entries().next().value!;
      const p = this.#paths.nextHop(node, from?.id);
      if (!p) {
        this.stats.noRoute++;
        return;
      }
      if (own && p.hops >= 2) this.#demanded(node, p.rtt);
      const groups = queues.length === 0 ? [] : queues.map((queue) => ({ node, queue }));
      const link = this.#links.get(p.link)!.link;
      this.#sendForward(link, topic, payload, ttl, [node], groups, tp, ts);
      return;
    }
    const byLink = new Map<string, [string, string[]][]>();
    for (const [node, queues] of dests) {
      if (own && (this.#scTo.size > 0 || this.#waits.size > 0)) {
        const w = this.#waits.get(node);
        if (w !== undefined && this.#hold(w, { topic, payload, ttl, queues, tp, ts })) continue;
        const sc = this.#scTo.get(node);
        if (sc !== undefined) {
          this.#sendShortcut(sc, { topic, payload, ttl, queues, tp, ts });
          continue;
        }
      }
      const p = this.#paths.nextHop(node, from?.id);
      if (!p) {
        this.stats.noRoute++;
        continue;
      }
      if (own && p.hops >= 2) this.#demanded(node, p.rtt);
      let list = byLink.get(p.link);
      if (!list) byLink.set(p.link, list = []);
      list.push([node, queues]);
    }
    for (const [id, list] of byLink) {
      const link = this.#links.get(id)!.link;
      // One FWD per next hop; more when it would name over MAX_DESTS nodes or MAX_GROUPS
      // (node, queue group) pairs.
      let names: string[] = [];
      let groups: { node: string; queue: string }[] = [];
      for (const [node, queues] of list) {
        if (
          names.length > 0 &&
          (names.length >= MAX_DESTS || groups.length + queues.length > MAX_GROUPS)
        ) {
          this.#sendForward(link, topic, payload, ttl, names, groups, tp, ts);
          names = [];
          groups = [];
        }
        names.push(node);
        for (const queue of queues) groups.push({ node, queue });
      }
      if (names.length > 0) this.#sendForward(link, topic, payload, ttl, names, groups, tp, ts);
    }
  }

  #sendForward(
    link: Link,
    topic: string,
    payload: Uint8Array,
    ttl: number,
    dests: string[],
    groups: { node: string; queue: string }[],
    tp: string | undefined,
    ts: string | undefined,
  ): void {
    this.#send(
      link,
      "FWD",
      tp === undefined
        ? { topic, payload, ttl, dests, groups }
        : { topic, payload, ttl, dests, groups, traceparent: tp, tracestate: ts },
    );
    this.stats.forwarded++;
  }

  #forwarded(
    from: Link,
    topic: string,
    payload: Uint8Array,
    ttl: number,
    dests: string[],
    groups: { node: string; queue: string }[],
    tp: string | undefined,
    ts: string | undefined,
  ): void {
    if (!this.#validTopics.has(topic)) {
      try {
        this.#checkTopic(topic);
      } catch (e) {
        this.stats.protocolErrors++;
        throw new ProtocolError(`FWD.topic: ${(e as Error).message}`, { cause: e });
      }
    }
    if (tp === undefined || this.tracer === null) {
      return this.#forwardOn(from, topic, payload, ttl, dests, groups, tp, ts);
    }
    const span = this.#hopSpan(SpanKind.PRODUCER, "publish", topic, tp, ts, MAX_HOPS - ttl + 1);
    const before = this.#counts();
    try {
      this.#forwardOn(from, topic, payload, ttl, dests, groups, tp, ts);
    } finally {
      this.#endHop(span, before);
    }
  }

  /** Throws unless `topic` is a valid concrete topic; a valid one is remembered (8,192 at most). */
  #checkTopic(topic: string): void {
    checkTopic(topic);
    if (this.#validTopics.size >= 8192) this.#validTopics.clear();
    this.#validTopics.add(topic);
  }

  /** A FWD, its topic checked: delivered here if this node is named, the rest passed on. */
  #forwardOn(
    from: Link,
    topic: string,
    payload: Uint8Array,
    ttl: number,
    dests: string[],
    groups: { node: string; queue: string }[],
    tp: string | undefined,
    ts: string | undefined,
  ): void {
    if (dests.length === 1 && groups.length === 0 && dests[0] === this.#short) {
      // The common last hop: for this node only, no queue groups (no Map to build).
      this.#deliverForwarded(topic, payload, NO_QUEUES, tp, ts);
      return;
    }
    const named = new Map<string, string[]>();
    for (const d of dests) if (!named.has(d)) named.set(d, []);
    for (const g of groups) {
      const qs = named.get(g.node);
      if (!qs) {
        this.stats.protocolErrors++;
        throw new ProtocolError(`FWD.groups: node ${g.node} is not one of the FWD's dests`);
      }
      qs.push(g.queue);
    }
    const mine = named.get(this.#short);
    if (mine) {
      named.delete(this.#short);
      this.#deliverForwarded(topic, payload, mine, tp, ts);
    }
    if (named.size === 0) return;
    if (ttl <= 1) {
      this.stats.hopLimit += named.size;
      return;
    }
    this.#route(from, topic, payload, ttl - 1, named, tp, ts);
  }

  /** One message to one local subscription. */
  #sendMsg(
    s: { link: Link; sid: number },
    topic: string,
    payload: Uint8Array,
    tp: string | undefined,
    ts: string | undefined,
  ): void {
    this.#send(
      s.link,
      "MSG",
      tp === undefined
        ? { sid: s.sid, topic, payload }
        : { sid: s.sid, topic, payload, traceparent: tp, tracestate: ts },
    );
  }

  /** A forwarded message, here: to the plain subscriptions and to the queue groups it names. */
  #deliverForwarded(
    topic: string,
    payload: Uint8Array,
    queues: readonly string[],
    tp: string | undefined,
    ts: string | undefined,
  ): void {
    for (const s of this.#local.match(topic)) {
      if (s.queue !== undefined && !queues.includes(s.queue)) continue;
      this.#sendMsg(s, topic, payload, tp, ts);
      this.stats.delivered++;
    }
  }

  #sub(st: LinkState, sid: number, pattern: string, queue: string | undefined): void {
    const link = st.link;
    if (st.subs.has(sid)) {
      this.#refuse(link, {
        code: "duplicate_sid",
        message: `SUB: sid ${sid} is in use`,
        sid,
      });
      return;
    }
    {
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
    }
  }

  #unsub(st: LinkState, sid: number): void {
    const s = st.subs.get(sid);
    if (!s) return;
    st.subs.delete(sid);
    this.#local.remove(s.pattern, s.entry, s.queue);
    this.#dropInterest(s.pattern, s.queue);
  }

  #addInterest(pattern: string, queue: string | undefined): void {
    const key = `${QUEUE_KEY(queue)} ${pattern}`;
    const i = this.#interest.get(key);
    if (i) {
      i.n++;
      return;
    }
    this.#interest.set(key, { pattern, queue, n: 1 });
    this.#changed();
  }

  #dropInterest(pattern: string, queue: string | undefined): void {
    const key = `${QUEUE_KEY(queue)} ${pattern}`;
    const i = this.#interest.get(key);
    if (!i) return;
    if (--i.n > 0) return;
    this.#interest.delete(key);
    this.#changed();
  }

  // ------------------------------------------------------------------ RPC

  #reg(st: LinkState, proc: string): void {
    try {
      checkProcedure(proc);
    } catch (e) {
      this.#refuse(st.link, { code: "bad_procedure", message: (e as Error).message });
      return;
    }
    const why = this.#denied(st.link, "serve", proc);
    if (why !== null) {
      this.#refuse(st.link, { code: "permission_denied", message: why, proc });
      return;
    }
    if (st.provides.has(proc)) return;
    if (st.provides.size >= this.#opts.maxProcedures) {
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
    this.#registry.register(proc, { id: st.link.id, local: true });
    const n = this.#localProcs.get(proc) ?? 0;
    this.#localProcs.set(proc, n + 1);
    if (n === 0) this.#changed();
  }

  #unreg(st: LinkState, proc: string): void {
    if (!st.provides.delete(proc)) return;
    this.#registry.unregister(proc, st.link.id);
    const n = (this.#localProcs.get(proc) ?? 1) - 1;
    if (n > 0) this.#localProcs.set(proc, n);
    else {
      this.#localProcs.delete(proc);
      this.#changed();
    }
  }

  #call(
    st: LinkState,
    id: number,
    proc: string,
    payload: Uint8Array,
    timeoutMs: number,
    strategyName: string | undefined,
    to: string | undefined,
    ttl: number | undefined,
    tp: string | undefined,
    ts: string | undefined,
  ): void {
    const link = st.link;
    const fail = (code: RpcErrorCode, message: string) => {
      if (link.kind === "client") this.observer?.callSettled(code, 0);
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
    let pinned: CallContext["pinned"];
    if (link.kind === "node") {
      if (to === undefined) return fail("bad_request", "CALL from a node: no destination (to)");
      if (to === this.#short) {
        // For this node: served by its own clients only.
        for (const p of this.#registry.providers(proc)) if (!p.local) tried.add(p.id);
      } else if ((ttl ?? 0) <= 1) {
        this.stats.hopLimit++;
        return fail("unavailable", `CALL ${proc}: hop limit reached on the way to ${to}`);
      } else pinned = { to, ttl: ttl! - 1 };
    }
    let span: Span | undefined;
    if (tp !== undefined && this.tracer !== null) {
      const hop = link.kind === "client" ? 0 : MAX_HOPS - (ttl ?? MAX_HOPS) + 1;
      span = this.#hopSpan(SpanKind.CLIENT, "call", proc, tp, ts, hop);
      tp = traceparentOf(span.spanContext()) ?? tp;
    }
    this.#dispatch(
      {
        origin: link,
        originId: id,
        payload,
        strategy,
        tried,
        pinned,
        at: this.#now,
        traceparent: tp,
        tracestate: ts,
        span,
      },
      proc,
      this.#now + timeoutMs,
    );
  }

  /**
   * The link a call for origin `short` goes out on (`PathTable.nextHop`: back where it came
   * from only when no other path is offered), or why none.
   */
  #hopToward(short: string, from: Link): LinkState | string {
    const p = this.#paths.nextHop(short, from.id);
    return (p && this.#links.get(p.link)) ?? `no path to node ${short}`;
  }

  /**
   * The link a call this node chose a far provider for goes out on: a shortcut to the provider's
   * node when there is one (calls need no order kept), else the path (counted as demand).
   */
  #ownHopToward(short: string, from: Link): LinkState | string {
    const sc = this.#scTo.get(short);
    if (sc !== undefined && sc.link !== from) {
      sc.usedAt = this.#now;
      return this.#links.get(sc.link.id)!;
    }
    const p = this.#paths.nextHop(short, from.id);
    if (p && p.hops >= 2) this.#demanded(short, p.rtt);
    return (p && this.#links.get(p.link)) ?? `no path to node ${short}`;
  }

  /** Picks a provider and sends the call; answers `no_provider` when none is left. */
  #dispatch(ctx: CallContext, proc: string, deadline: number): void {
    const origin = this.#links.get(ctx.origin.id);
    if (!origin) return;
    if (ctx.pinned) return this.#passOn(ctx, proc, deadline);
    let providerId: string;
    let provider: LinkState;
    let to: string | undefined;
    let congested = false;
    try {
      const skip = new Set(ctx.tried);
      // Providers without a path, or whose link is backed up (it would hold the call in its
      // queue), are passed over while another can take the call.
      for (;;) {
        providerId = this.#registry.choose(proc, ctx.strategy, {
          exclude: skip,
          cost: (p) => this.#cost(p),
        }).id;
        const st = providerId.startsWith(REMOTE)
          ? this.#ownHopToward(providerId.slice(REMOTE.length), ctx.origin)
          : this.#links.get(providerId);
        if (st === undefined || typeof st === "string") {
          skip.add(providerId);
          continue;
        }
        if (st.link.congested?.()) {
          congested = true;
          skip.add(providerId);
          continue;
        }
        provider = st;
        break;
      }
      if (providerId.startsWith(REMOTE)) to = providerId.slice(REMOTE.length);
    } catch (e) {
      let err = e as RpcError;
      if (e instanceof RpcError && e.code === "no_provider" && congested) {
        this.stats.limited++;
        err = new RpcError(
          "unavailable",
          `every provider of ${proc} is backed up (its node's queue to it is full)`,
        );
      }
      this.stats.failures++;
      this.#settled(ctx, err.code);
      this.#send(ctx.origin, "FAIL", {
        id: ctx.originId,
        code: RPC_ERROR_NUMBERS[err.code],
        message: err.detail ?? err.message,
      });
      return;
    }
    ctx.tried.add(providerId);
    this.#sendCall(ctx, origin, provider, proc, deadline, to, MAX_HOPS);
  }

  /** A provider's cost for `nearest`: a local one 0, a far one its path's RTT sum. */
  #cost(p: { id: string; local: boolean }): number {
    if (p.local) return 0;
    return this.#paths.best(p.id.slice(REMOTE.length))?.rtt ?? Infinity;
  }

  /** A call this node passes on toward the origin it is for (`pinned`). */
  #passOn(ctx: CallContext, proc: string, deadline: number): void {
    const { to, ttl } = ctx.pinned!;
    const next = this.#hopToward(to, ctx.origin);
    if (typeof next === "string") {
      this.stats.noRoute++;
      this.stats.failures++;
      this.#settled(ctx, "no_provider");
      // no_provider: the node that chose this provider tries another.
      this.#send(ctx.origin, "FAIL", {
        id: ctx.originId,
        code: RPC_ERROR_NUMBERS.no_provider,
        message: `CALL ${proc}: ${next}`,
      });
      return;
    }
    this.#sendCall(ctx, this.#links.get(ctx.origin.id)!, next, proc, deadline, to, ttl);
  }

  #sendCall(
    ctx: CallContext,
    origin: LinkState,
    provider: LinkState,
    proc: string,
    deadline: number,
    to: string | undefined,
    ttl: number,
  ): void {
    const now = this.#now;
    const call = this.#calls.start({
      procedure: proc,
      provider: provider.link.id,
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
      to,
      ttl: to === undefined ? undefined : ttl,
      traceparent: ctx.traceparent,
      tracestate: ctx.tracestate,
    });
  }

  #reply(link: Link, id: number, payload: Uint8Array): void {
    const call = this.#calls.get(id);
    if (!call || call.provider !== link.id) return; // late (timed out, cancelled) or not theirs
    this.#calls.complete(id);
    const ctx = call.context;
    this.#links.get(ctx.origin.id)?.calls.delete(ctx.originId);
    this.stats.replies++;
    this.#settled(ctx, "ok");
    this.#send(ctx.origin, "REPLY", { id: ctx.originId, payload });
  }

  #failed(link: Link, id: number, code: number, message: string): void {
    const call = this.#calls.get(id);
    if (!call || call.provider !== link.id) return;
    this.#calls.complete(id);
    const rpcCode = rpcErrorCodeOf(code) ?? "handler_error";
    // A far provider that left meanwhile (or lost its path): the node that chose it tries the
    // next provider, same deadline.
    if (link.kind === "node" && rpcCode === "no_provider" && !call.context.pinned) {
      this.#links.get(call.context.origin.id)?.calls.delete(call.context.originId);
      this.#dispatch(call.context, call.procedure, call.deadline);
      return;
    }
    this.#answerFail(call, new RpcError(rpcCode, message));
  }

  /** CANCEL from the caller; `expired`: because its deadline passed (a timeout, not a cancel). */
  #cancel(st: LinkState, originId: number, expired: boolean): void {
    const ourId = st.calls.get(originId);
    if (ourId === undefined) return;
    const f = this.#calls.cancel(ourId, "cancelled by the caller");
    st.calls.delete(originId);
    if (f) {
      this.#settled(f.call.context, expired ? "timeout" : "cancelled");
      this.#cancelDownstream(f.call, expired);
    }
  }

  #cancelDownstream(call: PendingCall<CallContext>, expired: boolean): void {
    const provider = this.#links.get(call.provider);
    if (provider) {
      this.#send(provider.link, "CANCEL", expired ? { id: call.id, expired } : { id: call.id });
    }
  }

  /** Tells the caller a call failed (the wire carries the detail; the code is the number). */
  #answerFail(call: PendingCall<CallContext>, error: RpcError): void {
    const ctx = call.context;
    this.#settled(ctx, error.code);
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

  // ------------------------------------------------------------------ interest

  /** This node's interest changed: a new record goes out once the changes settle. */
  #changed(): void {
    if (this.#announceAt === Infinity) this.#announceAt = this.#now + this.#announceDelay;
  }

  /** What this node's record lists now (bounded: `ownInterest`). */
  #ownRecordFields(): { subs: InterestSub[]; procs: string[]; overflow: number } {
    const subs: InterestSub[] = [];
    for (const i of this.#interest.values()) {
      subs.push(
        i.queue === undefined ? { pattern: i.pattern } : { pattern: i.pattern, queue: i.queue },
      );
    }
    return ownInterest(subs, this.#localProcs.keys());
  }

  /** Signs and sends this node's record to every peer node, when it changed. */
  #announce(): void {
    this.#announceAt = Infinity;
    const { subs, procs, overflow } = this.#ownRecordFields();
    this.stats.interestOverflow += overflow;
    const own = this.#own;
    if (!own && subs.length === 0 && procs.length === 0) return;
    if (own && !this.#reannounce && sameInterest(own, subs, procs)) return;
    this.#reannounce = false;
    const version = ++this.#version;
    const bytes = interestBytes(this.#realm, this.#nodeId, version, subs, procs);
    const record: InterestRecord = {
      origin: this.#nodeId,
      version,
      subs,
      procs,
      key: this.#signer.key,
      sig: this.#signer.sign(bytes),
    };
    this.#own = record;
    let fields: Record<string, unknown> | undefined;
    for (const st of this.#links.values()) {
      if (st.link.kind === "node" && st.link.shortcut === undefined) {
        this.#sendInterest(st.link, fields ??= recordFields(record, 0, 0));
      }
    }
  }

  #sendRecord(link: Link, r: InterestRecord, hops: number, rttMs: number): void {
    this.#sendInterest(link, recordFields(r, hops, rttMs));
  }

  /** Sends an INTEREST; the same `fields` may go to several peers (frames are never changed once sent). */
  #sendInterest(link: Link, fields: Record<string, unknown>): void {
    this.stats.interestOut++;
    this.#send(link, "INTEREST", fields);
  }

  /** Spends one of `st`'s INTEREST tokens (a token bucket, as `RateLimiter` keeps per key); false when none is left. */
  #interestToken(st: LinkState): boolean {
    const { perSecond, burst } = ROUTER_LIMITS.interest;
    const b = st.interest ??= { tokens: burst, at: this.#now };
    b.tokens = Math.min(burst, b.tokens + Math.max(0, this.#now - b.at) * perSecond / 1000);
    b.at = this.#now;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** An INTEREST from a peer node: a record (maybe a new version) and that peer's path to it. */
  #interestIn(st: LinkState, f: Record<string, unknown>): void {
    const link = st.link;
    this.stats.interestIn++;
    if (!this.#interestToken(st)) {
      this.stats.protocolErrors++;
      const { perSecond, burst } = ROUTER_LIMITS.interest;
      throw new ProtocolError(
        `INTEREST: more than ${burst} at once or ${perSecond} a second from one node`,
      );
    }
    const origin = f.origin as string;
    const version = f.version as number;
    const hops = f.hops as number;
    if (origin.length < SHORT_ID_CHARS) {
      this.stats.protocolErrors++;
      throw new ProtocolError(`INTEREST.origin: ${JSON.stringify(origin)} is not a node id`);
    }
    if (origin === this.#nodeId) {
      // Our own record, back from a peer. One newer than ours is an earlier process's (a clock
      // that went back): the next record of ours must outrank it.
      if (hops < WITHDRAW && version > this.#version) {
        this.#version = version;
        this.#reannounce = this.#own !== undefined;
        if (this.#reannounce) this.#changed();
      }
      return;
    }
    const short = shortId(origin);
    if (hops >= WITHDRAW) {
      if (this.#paths.withdraw(short, link.id)) this.#changedPath(short);
      return;
    }
    let o = this.#origins.get(short);
    if (o && o.id !== origin) {
      // Another node with the same 80-bit prefix: the one known first keeps it.
      this.stats.refusedRecords++;
      return;
    }
    const rtt = (f.rtt_us as number) / 1000 + Math.max(0, link.rtt?.() ?? 1);
    if (o && version <= o.version) {
      // A copy (or an older version) of what we hold: only the path it offers counts.
      if (this.#paths.offerTo(o.path, link.id, hops + 1, rtt)) this.#changedPath(short);
      return;
    }
    if (!o) {
      if (!this.#admit(origin)) {
        // Not a member (yet): held until membership says it is (`memberUp`), one per origin.
        this.stats.refusedRecords++;
        if (this.#pending.has(origin) || this.#pending.size < ROUTER_LIMITS.maxPending) {
          this.#pending.set(origin, { link: link.id, fields: f });
        }
        return;
      }
      if (this.#origins.size >= ROUTER_LIMITS.maxOrigins) {
        this.stats.refusedRecords++;
        return;
      }
    }
    let record: InterestRecord;
    try {
      record = checkRecord(f);
    } catch (e) {
      this.stats.protocolErrors++;
      throw e;
    }
    const bytes = interestBytes(this.#realm, origin, version, record.subs, record.procs);
    if (!this.#verify(origin, record.key, bytes, record.sig)) {
      this.stats.forgedRecords++;
      this.stats.protocolErrors++;
      throw new ProtocolError(
        `INTEREST: the record of ${origin} (version ${version}) is not signed by that node`,
      );
    }
    this.#pending.delete(origin);
    this.stats.records++;
    if (o) this.#uninstall(o, false);
    else {
      this.#origins.set(
        short,
        o = {
          short,
          id: origin,
          version,
          record,
          entries: [],
          path: this.#paths.slot(short),
        },
      );
    }
    o.record = record;
    o.version = version;
    this.#install(o);
    this.#paths.offerTo(o.path, link.id, hops + 1, rtt);
    this.#changedPath(short);
  }

  /**
   * `short`'s record or best path changed. No path left: forgotten now, peers told now. Else
   * passed on after `floodDelayMs`, with whatever else changed meanwhile (a record's first copy
   * is often followed by better paths within a few ms: they go out as one).
   */
  #changedPath(short: string): void {
    if (this.#floodDelay === 0 || !this.#paths.best(short)) return this.#flood(short);
    this.#dirty.add(short);
    if (this.#floodAt === Infinity) this.#floodAt = this.#now + this.#floodDelay;
  }

  #floodDirty(): void {
    this.#floodAt = Infinity;
    const dirty = [...this.#dirty];
    this.#dirty.clear();
    for (const short of dirty) this.#flood(short);
  }

  /**
   * Passes on what this node knows of `short`'s origin after its record or best path changed:
   * its best cost to every peer node, and a withdrawal to the next hop itself (poisoned reverse).
   * When no path is left the origin is forgotten and every peer node told.
   */
  #flood(short: string): void {
    const o = this.#origins.get(short);
    if (!o) return;
    const best = this.#paths.best(short);
    // One frame's fields for every peer that gets the same news (not one object per peer).
    let withdraw: Record<string, unknown> | undefined;
    if (!best) {
      this.#uninstall(o, true);
      for (const st of this.#links.values()) {
        if (st.link.kind === "node" && st.link.shortcut === undefined) {
          this.#sendInterest(st.link, withdraw ??= withdrawFields(o.record));
        }
      }
      return;
    }
    let offer: Record<string, unknown> | undefined;
    for (const st of this.#links.values()) {
      if (st.link.kind !== "node" || st.link.shortcut !== undefined) continue;
      if (st.link.id === best.link) {
        this.#sendInterest(st.link, withdraw ??= withdrawFields(o.record));
      } else this.#sendInterest(st.link, offer ??= recordFields(o.record, best.hops, best.rtt));
    }
  }

  /** Enters an origin's subscriptions and procedures into the tables publishes and calls read. */
  #install(o: Origin): void {
    const subs = o.record.subs;
    // A repeated entry is entered once (only a misbehaving origin repeats one).
    const seen = subs.length > 1 ? new Set<string>() : undefined;
    for (const s of subs) {
      if (seen) {
        const key = `${QUEUE_KEY(s.queue)} ${s.pattern}`;
        if (seen.has(key)) continue;
        seen.add(key);
      }
      const r: Remote = { origin: o, pattern: s.pattern, queue: s.queue };
      o.entries.push(r);
      this.#remote.add(s.pattern, r, s.queue);
    }
    for (const proc of o.record.procs) {
      this.#registry.register(proc, { id: REMOTE + o.short, local: false });
    }
  }

  /** Takes an origin out of those tables; `forget` drops it and its paths as well. */
  #uninstall(o: Origin, forget: boolean): void {
    for (const r of o.entries) this.#remote.remove(r.pattern, r, r.queue);
    o.entries.length = 0;
    this.#registry.unregisterProvider(REMOTE + o.short);
    if (forget) {
      this.#origins.delete(o.short);
      this.#paths.forget(o.short);
    }
  }

  /**
   * A member died or left: its record and paths are dropped now (not when withdrawals arrive),
   * and records of it are held back until it joins again (`admit`).
   */
  memberDown(origin: string, now: number = this.#now): void {
    this.#now = Math.max(this.#now, now);
    this.#pending.delete(origin);
    // A death is told to every node, of every node: this costs no allocation when it is not one
    // this node knows.
    const short = shortId(origin);
    if (this.#scLinks.size > 0) {
      for (const sc of [...this.#scLinks.values()]) {
        if (sc.short === short && origin.startsWith(short)) this.#letGo(sc);
      }
    }
    const o = this.#origins.get(short);
    if (!o || o.id !== origin) return;
    // No withdrawals: every node hears of the death from membership, and routes that led
    // through the dead node withdraw themselves when they close.
    this.#uninstall(o, true);
  }

  // ------------------------------------------------------------------ shortcuts

  /** Shortcuts this node may have in use or asked for at once (`ShortcutOptions.max`). */
  get shortcutLimit(): number {
    return this.#sc.max;
  }

  /**
   * What the driver should do about shortcuts since the last call (docs/routing.md,
   * "Shortcuts"): nodes to open one to, and shortcuts to let go. The driver reports what came
   * of it by attaching and detaching links; a dial that fails needs no answer (the node is not
   * asked for again within `retryMs`).
   */
  shortcutPlan(): ShortcutPlan<L> {
    if (this.#scOpen.length === 0 && this.#scClose.length === 0) return NO_PLAN; // most calls
    const plan = { open: this.#scOpen, close: this.#scClose };
    this.#scOpen = [];
    this.#scClose = [];
    return plan;
  }

  /** A shortcut link came up: this node's own traffic to its node takes it (unless another does). */
  #shortcutUp(link: Link): void {
    const short = link.shortcut!;
    const now = this.#now;
    const mine = this.#scAsked.delete(short);
    const sc: ShortcutLink = {
      link,
      short,
      usedAt: now,
      closing: false,
      mine,
      sentAt: -Infinity,
      slow: 0,
    };
    this.#scLinks.set(link.id, sc);
    this.stats.shortcutsOpened++;
    if (short !== this.#short && !this.#scTo.has(short)) this.#take(sc);
    this.#armSweep();
  }

  /**
   * Makes `sc` the way to its node. Messages sent the long way may still be on the path: new ones
   * wait until the path's RTT sum (and a margin) has passed since the last, so none overtakes them.
   */
  #take(sc: ShortcutLink): void {
    this.#scTo.set(sc.short, sc);
    if (sc.mine) this.#scOwn++;
    const d = this.#demand.get(sc.short);
    if (d) this.#waitUntil(sc.short, d.lastPathAt + d.pathRtt + this.#sc.holdMarginMs);
    else if (sc.mine) {
      // Asked for, so this node sent the long way lately, but its demand was forgotten since
      // (4,096 other far nodes sent to): as if the last went just now.
      const rtt = this.#paths.best(sc.short)?.rtt ?? 0;
      this.#waitUntil(sc.short, this.#now + rtt + this.#sc.holdMarginMs);
    }
  }

  /**
   * Stops using `sc` for this node's traffic. What went over it may still be on it when `drains`
   * (it was let go, not lost): messages sent from now on wait out its RTT (and a margin).
   */
  #untake(sc: ShortcutLink, drains: boolean): void {
    if (this.#scTo.get(sc.short) !== sc) return;
    this.#scTo.delete(sc.short);
    if (sc.mine) this.#scOwn--;
    if (drains && sc.sentAt > -Infinity) {
      this.#waitUntil(sc.short, sc.sentAt + (sc.link.rtt?.() ?? 0) + this.#sc.holdMarginMs);
    } else {
      const w = this.#waits.get(sc.short);
      if (w) w.readyAt = this.#now; // it held messages for `sc`: they go the long way now
    }
    for (const other of this.#scLinks.values()) {
      if (other !== sc && other.short === sc.short && !other.closing) {
        this.#take(other);
        break;
      }
    }
    const w = this.#waits.get(sc.short);
    if (w && w.readyAt <= this.#now) this.#releaseWait(w);
  }

  /** This node's messages to `short` wait until `readyAt` (the latest asked for wins; bounded). */
  #waitUntil(short: string, readyAt: number): void {
    readyAt = Math.min(readyAt, this.#now + this.#sc.maxHoldMs);
    const w = this.#waits.get(short);
    if (w) w.readyAt = Math.max(w.readyAt, readyAt);
    else if (readyAt > this.#now) this.#waits.set(short, { short, readyAt, held: [], bytes: 0 });
    else return;
    if (readyAt < this.#scReleaseAt) this.#scReleaseAt = readyAt;
  }

  /** A shortcut link left the router (its session or channel ended): its node is reached the long way. */
  #shortcutDown(sc: ShortcutLink): void {
    this.#scLinks.delete(sc.link.id);
    if (!sc.closing) this.stats.shortcutsClosed++;
    this.#untake(sc, false);
  }

  /**
   * Holds one of this node's messages while the way to its node changes; false if it must go now
   * (the hold is full: what it held goes first, in order, and so does this one).
   */
  #hold(w: Wait, m: HeldForward): boolean {
    const size = m.payload.length + m.topic.length + 64;
    if (w.held.length >= this.#sc.maxHeld || this.#heldBytes + size > this.#sc.maxHeldBytes) {
      this.stats.shortcutHoldOverflow += w.held.length + 1;
      this.#releaseWait(w);
      return false;
    }
    w.held.push(m);
    w.bytes += size;
    this.#heldBytes += size;
    this.stats.shortcutHeld++;
    return true;
  }

  /** What `w` held goes, in order, the way its node is reached now; flushes waiting on it go on. */
  #releaseWait(w: Wait): void {
    this.#waits.delete(w.short);
    this.#heldBytes -= w.bytes;
    for (const m of w.held) {
      const sc = this.#scTo.get(w.short);
      if (sc) {
        this.#sendShortcut(sc, m);
        continue;
      }
      const dests = new Map([[w.short, m.queues]]);
      this.#route(undefined, m.topic, m.payload, m.ttl, dests, m.tp, m.ts);
    }
    if (this.#parkedPings.length === 0) return;
    const still: ParkedPing[] = [];
    for (const p of this.#parkedPings) {
      p.waits.delete(w);
      if (p.waits.size > 0) still.push(p);
      else if (this.#links.has(p.link.id)) this.#pingNow(p.link, p.id);
    }
    this.#parkedPings = still;
  }

  #sendShortcut(sc: ShortcutLink, m: HeldForward): void {
    sc.usedAt = sc.sentAt = this.#now;
    const groups = m.queues.map((queue) => ({ node: sc.short, queue }));
    this.#sendForward(sc.link, m.topic, m.payload, m.ttl, [sc.short], groups, m.tp, m.ts);
    this.stats.viaShortcut++;
  }

  /**
   * One of this node's messages or calls went to `short` over a path of 2+ hops: past `after`
   * of them within `windowMs`, a shortcut is asked for (at most `max` of this node's own in use
   * or asked; the one used longest ago gives way when it has been idle for a second).
   */
  #demanded(short: string, pathRtt: number): void {
    if (this.#sc.max <= 0) return;
    const now = this.#now;
    let d = this.#demand.get(short);
    if (d === undefined) {
      if (this.#demand.size >= this.#sc.maxTracked) {
        this.#demand.delete(this.#demand.keys().next().value!);
      }
      d = { n: 0, since: now, lastPathAt: now, pathRtt };
    } else this.#demand.delete(short); // to the end: least recently used first
    this.#demand.set(short, d);
    d.lastPathAt = now;
    d.pathRtt = pathRtt;
    if (now - d.since > this.#sc.windowMs) {
      d.n = 0;
      d.since = now;
    }
    if (++d.n < this.#sc.after || this.#scAsked.has(short) || this.#scTo.has(short)) return;
    const rested = this.#scRested.get(short);
    if (rested !== undefined) {
      if (now - rested < this.#sc.retryMs) return;
      this.#scRested.delete(short); // looked at here, not swept: no timer runs for it
    }
    const o = this.#origins.get(short);
    if (!o) return;
    for (const sc of this.#scLinks.values()) if (sc.short === short) return; // one is going
    if (this.#scOwn + this.#scAsked.size >= this.#sc.max && !this.#evict(now)) return;
    this.#scAsked.set(short, now);
    this.#scOpen.push(o.record.origin);
    this.#armSweep();
  }

  /** Lets this node's least recently used shortcut go if idle for a second; true if one went. */
  #evict(now: number): boolean {
    let lru: ShortcutLink | undefined;
    for (const sc of this.#scTo.values()) {
      if (sc.mine && (!lru || sc.usedAt < lru.usedAt)) lru = sc;
    }
    if (!lru || now - lru.usedAt < 1000) return false;
    this.#letGo(lru);
    return true;
  }

  /** Stops using `sc` and asks the driver to let it go (`rest`: not asked for again within `retryMs`). */
  #letGo(sc: ShortcutLink, rest = false): void {
    if (rest) {
      if (this.#scRested.size >= this.#sc.maxTracked) {
        this.#scRested.delete(this.#scRested.keys().next().value!);
      }
      this.#scRested.set(sc.short, this.#now);
    }
    if (sc.closing) return;
    sc.closing = true;
    this.stats.shortcutsClosed++;
    this.#untake(sc, true);
    this.#scClose.push(sc.link as L);
  }

  #armSweep(): void {
    if (this.#scSweepAt !== Infinity) return;
    if (this.#scLinks.size === 0 && this.#scAsked.size === 0) return;
    this.#scSweepAt = this.#now + Math.max(1, Math.min(this.#sc.idleMs, this.#sc.retryMs) / 4);
  }

  /**
   * Held messages that are due go; idle shortcuts go, and so do those to nodes now one hop away
   * and those slower than twice the path (kept from being asked for again within `retryMs`).
   */
  #shortcutTick(now: number): void {
    this.#scReleaseAt = Infinity;
    for (const w of [...this.#waits.values()]) {
      if (w.readyAt <= now) this.#releaseWait(w);
      else if (w.readyAt < this.#scReleaseAt) this.#scReleaseAt = w.readyAt;
    }
    if (now < this.#scSweepAt) return;
    this.#scSweepAt = Infinity;
    for (const sc of [...this.#scLinks.values()]) {
      if (sc.closing) continue;
      // A call in flight over it is use: a long call must not lose its shortcut to the idle rule.
      const idle = now - sc.usedAt >= this.#sc.idleMs && !this.busy(sc.link);
      const path = this.#paths.best(sc.short);
      if (idle || path?.hops === 1) {
        this.#letGo(sc);
        continue;
      }
      // The path's cost is its forwarders' claim: never less than its first hop, measured here.
      // Slower than twice that on two sweeps in a row, the shortcut is let go.
      const first = path && this.#links.get(path.link)?.link.rtt?.();
      const pathRtt = path ? Math.max(path.rtt, first ?? 0) : Infinity;
      sc.slow = (sc.link.rtt?.() ?? 0) > 2 * pathRtt + this.#sc.holdMarginMs ? sc.slow + 1 : 0;
      if (sc.slow >= 2) this.#letGo(sc, true);
    }
    for (const [short, at] of this.#scAsked) {
      if (now - at >= this.#sc.retryMs) this.#scAsked.delete(short);
    }
    this.#armSweep();
  }

  // ------------------------------------------------------------------ flush

  /**
   * PING from a client: answered once every peer node has answered a PING of ours, so a PONG
   * means this node and its peers have processed everything the client sent before. PING from a
   * node is answered at once (it does not travel further).
   */
  #ping(link: Link, id: number): void {
    // Messages the client sent before, held while the way to their node changes, go first.
    if (link.kind === "client" && this.#waits.size > 0) {
      const holding = new Set<Wait>();
      for (const w of this.#waits.values()) if (w.held.length > 0) holding.add(w);
      // At most 16 parked per client: one that sends PINGs in a loop cannot crowd out others.
      let mine = 0;
      for (const p of this.#parkedPings) if (p.link === link) mine++;
      if (holding.size > 0 && mine < 16) {
        this.#parkedPings.push({
          link,
          id,
          waits: holding,
          deadline: this.#now + this.#opts.pingTimeoutMs,
        });
        return;
      }
    }
    this.#pingNow(link, id);
  }

  #pingNow(link: Link, id: number): void {
    // Interest changes the client made before its PING reach the peer nodes before our PINGs.
    if (this.#announceAt !== Infinity) this.#announce();
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
