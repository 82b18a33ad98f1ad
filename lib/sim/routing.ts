/**
 * Mesh-wide routing on the simulator (docs/routing.md): real `Router`s (lib/messaging), one per
 * node, joined by the routes of the k-regular overlay (lib/sim/overlay.ts), each route a link
 * with its own fixed latency (so frames on it stay in order, as on a QUIC stream). Clients are
 * in-process links of a node's router. `macula sim routing` runs `runRoutingSim`; tests drive
 * `RoutedMesh` directly.
 *
 * Records are not signed here (the unsigned check of lib/messaging/interest.ts, as
 * `spellsOrigin`): what a signature costs a real node is one Ed25519 check per new record
 * version it takes, counted as `records` per node. Frame sizes are estimated from their fields,
 * not encoded.
 */
import type { Addr, Core, Outgoing, Output, Rng } from "../mesh/mod.ts";
import { seededRng } from "../mesh/mod.ts";
import {
  type InterestVerifier,
  type Link,
  ProtocolError,
  Router,
  type RouterOptions,
  type RouterStats,
  unsignedVerifier,
} from "../messaging/mod.ts";
import { nodeIdText } from "../identity/mod.ts";
import type { Frame } from "../wire/mod.ts";
import { SHORT_ID_CHARS } from "../messaging/mod.ts";
import { OverlayMesh, randomId } from "./overlay.ts";
import { Simulator } from "./sim.ts";
import { SimError } from "./errors.ts";

/**
 * What one node hands its route to a peer at once (one stream write): frames in order, as their
 * names and fields (two arrays, so that a frame in flight is no object of its own), and whether
 * they go over the pair's shortcut rather than their route.
 */
export interface RouterMsg {
  readonly names: readonly string[];
  readonly fields: readonly Record<string, unknown>[];
  readonly shortcut: boolean;
}

/**
 * A route to a peer node, as the router sees it: its id is the peer's address; a shortcut's is
 * `sc:` and the address, and it names the peer's short id.
 */
class RouteLink implements Link {
  readonly kind = "node" as const;
  readonly id: string;
  /** Frames to it from the flush under way, and their size (its next message). */
  names: string[] = [];
  fields: Record<string, unknown>[] = [];
  size = 0;
  constructor(readonly peer: Addr, readonly rttMs: number, readonly shortcut?: string) {
    this.id = shortcut === undefined ? peer : `sc:${peer}`;
  }
  rtt(): number {
    return this.rttMs;
  }
}

/** A frame a simulated client got, with the time it got it. */
export interface ClientFrame {
  readonly at: number;
  readonly name: string;
  readonly fields: Record<string, unknown>;
}

/** An application attached to one simulated node: what it sends goes to that node's router. */
export class SimClient implements Link {
  readonly kind = "client" as const;
  /** Every frame its node sent it, in order. */
  readonly frames: ClientFrame[] = [];
  /** Called per frame (a provider answering calls, say), once its node has sent all it had to send. */
  onFrame: ((f: ClientFrame) => void) | undefined;
  constructor(readonly id: string, readonly node: RouterNode) {}
  /** Frames received named `name`. */
  got(name: string): ClientFrame[] {
    return this.frames.filter((f) => f.name === name);
  }
}

/**
 * `unsignedVerifier`'s check (key and signature spell the origin) without decoding the key: a
 * node takes a million records in a 10,000-node run. Ids that are not ASCII go to it as they are.
 */
const spellsOrigin: InterestVerifier = (origin, key, bytes, sig) => {
  if (key.length !== origin.length || sig.length !== key.length) {
    return unsignedVerifier(origin, key, bytes, sig);
  }
  for (let i = 0; i < key.length; i++) {
    const c = origin.charCodeAt(i);
    if (c > 0x7f) return unsignedVerifier(origin, key, bytes, sig);
    if (key[i] !== c || sig[i] !== c) return false;
  }
  return true;
};

/** A drain with nothing in it (shared: read, never changed). */
const NO_EVENTS = Object.freeze([]) as never[];
const NOTHING: Output<RouterMsg, never> = Object.freeze({ send: NO_EVENTS, events: NO_EVENTS });

function estimateSize(name: string, f: Record<string, unknown>): number {
  let n = 8 + name.length;
  for (const k in f) {
    const v = f[k];
    if (typeof v === "string") n += v.length + 1;
    else if (v instanceof Uint8Array) n += v.length + 2;
    else if (Array.isArray(v)) {
      for (const x of v) n += typeof x === "string" ? x.length + 1 : jsonLength(x);
    } else n += 5;
  }
  return n;
}

/** Whether `s` is written by JSON.stringify as itself between quotes (no escapes). */
function plainJson(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return false;
  }
  return true;
}

/**
 * `JSON.stringify(x).length` without building the text, for a plain object of string fields (a
 * record's subscription, a FWD's group); anything else is stringified.
 */
function jsonLength(x: unknown): number {
  if (x === null || typeof x !== "object" || Object.getPrototypeOf(x) !== Object.prototype) {
    return JSON.stringify(x).length;
  }
  const o = x as Record<string, unknown>;
  let n = 2;
  let fields = 0;
  for (const k in o) {
    if (!Object.hasOwn(o, k)) return JSON.stringify(x).length;
    const v = o[k];
    if (v === undefined) continue;
    if (typeof v !== "string" || !plainJson(k) || !plainJson(v)) return JSON.stringify(x).length;
    n += k.length + v.length + 5 + (fields++ > 0 ? 1 : 0);
  }
  return n;
}

/** One simulated node: a router, its routes (by peer address) and its clients. */
export class RouterNode implements Core<RouterMsg, never> {
  readonly router: Router<Link>;
  readonly #routes = new Map<Addr, RouteLink>();
  readonly #shortcuts = new Map<Addr, RouteLink>();
  /** The frame handed to the router, refilled per frame (it keeps no frame object, only fields). */
  readonly #frame: Frame = { type: 0, name: "", fields: {} };
  /** Links with frames in the flush under way, and that flush's time. */
  readonly #batch: RouteLink[] = [];
  #flushAt = 0;
  /** Frames of the flush under way to clients that listen (`SimClient.onFrame`). */
  #heard: [SimClient, ClientFrame][] = [];
  /** The fields whose size was estimated last, and that size. */
  #sized: Record<string, unknown> | undefined;
  #size = 0;
  #out: Outgoing<RouterMsg>[] = [];
  /** What to do about the router's shortcut plan (the mesh dials and lets go). */
  onShortcuts: ((now: number, open: string[], close: Addr[]) => void) | undefined;
  #clients = 0;
  /** Frames from addresses it holds no route to (a route closed while they were in flight). */
  strays = 0;
  /** Routes it closed on a protocol error, with the error. */
  readonly closed: { peer: Addr; error: string }[] = [];
  /** Called for every INTEREST it receives (visibility measurements). */
  onInterest: ((now: number, fields: Record<string, unknown>) => void) | undefined;

  constructor(
    readonly addr: Addr,
    readonly nodeId: string,
    rng: Rng,
    options: Partial<RouterOptions<Link>> = {},
  ) {
    this.router = new Router<Link>({ random: rng, nodeId, verify: spellsOrigin, ...options });
  }

  /** The peers it holds a route to. */
  peers(): Addr[] {
    return [...this.#routes.keys()];
  }

  /** A route to `peer` came up, with that RTT (ms). */
  connect(peer: Addr, rttMs: number): void {
    if (this.#routes.has(peer)) return;
    const l = new RouteLink(peer, rttMs);
    this.#routes.set(peer, l);
    this.router.attach(l);
    this.#flush();
  }

  /** The route to `peer` went down. */
  disconnect(peer: Addr): void {
    const l = this.#routes.get(peer);
    if (!l) return;
    this.#routes.delete(peer);
    this.router.detach(l);
    this.#flush();
  }

  /** This node lets its route to `peer` go: its paths become a last resort (`Router.retire`). */
  retire(peer: Addr): void {
    const l = this.#routes.get(peer);
    if (!l) return;
    this.router.retire(l);
    this.#flush();
  }

  /** A shortcut to `peer` (whose short id is `short`) came up at `now`. */
  shortcutUp(now: number, peer: Addr, short: string, rttMs: number): void {
    if (this.#shortcuts.has(peer)) return;
    const l = new RouteLink(peer, rttMs, short);
    this.#shortcuts.set(peer, l);
    this.router.attach(l, now);
    this.#flush(now);
  }

  /** `peer` lets its shortcut to this node go (its RETIRE arrived): not used from now on. */
  shortcutRetire(now: number, peer: Addr): void {
    const l = this.#shortcuts.get(peer);
    if (!l) return;
    this.router.retire(l, now);
    this.#flush(now);
  }

  /** The shortcut to `peer` is gone. */
  shortcutDown(now: number, peer: Addr): void {
    const l = this.#shortcuts.get(peer);
    if (!l) return;
    this.#shortcuts.delete(peer);
    this.router.detach(l);
    this.#flush(now);
  }

  /** Peers it holds a shortcut to. */
  shortcutPeers(): Addr[] {
    return [...this.#shortcuts.keys()];
  }

  /** Whether calls are in flight over the route to `peer` (`Router.busy`). */
  busy(peer: Addr): boolean {
    const l = this.#routes.get(peer);
    return l !== undefined && this.router.busy(l);
  }

  /** Attaches a new client. */
  client(): SimClient {
    const c = new SimClient(`${this.addr}/c${++this.#clients}`, this);
    this.router.attach(c);
    this.#flush();
    return c;
  }

  /** `client` sends a frame to this node at `now`. */
  fromClient(now: number, c: SimClient, name: string, fields: Record<string, unknown>): void {
    this.router.receive(now, c, { type: 0, name, fields });
    this.#flush(now);
  }

  receive(now: number, from: Addr, msg: RouterMsg): void {
    const l = msg.shortcut ? this.#shortcuts.get(from) : this.#routes.get(from);
    if (!l) {
      this.strays++;
      return;
    }
    const frame = this.#frame;
    for (let i = 0; i < msg.names.length; i++) {
      frame.name = msg.names[i]!;
      frame.fields = msg.fields[i]!;
      if (frame.name === "INTEREST") this.onInterest?.(now, frame.fields);
      try {
        this.router.receive(now, l, frame);
      } catch (e) {
        if (!(e instanceof ProtocolError)) throw e;
        this.closed.push({ peer: from, error: e.message });
        if (l.shortcut === undefined) this.disconnect(from);
        else this.shortcutDown(now, from);
        break;
      }
    }
    this.#flush(now);
  }

  tick(now: number): void {
    this.router.tick(now);
    this.#flush(now);
  }

  nextWake(): number {
    return this.router.nextWake();
  }

  drain(): Output<RouterMsg, never> {
    if (this.#out.length === 0) return NOTHING; // most drains: no allocation
    const send = this.#out;
    this.#out = [];
    return { send, events: NO_EVENTS };
  }

  #flush(now = 0): void {
    if (this.onShortcuts) {
      const plan = this.router.shortcutPlan();
      if (plan.open.length > 0 || plan.close.length > 0) {
        this.onShortcuts(now, plan.open, plan.close.map((l) => (l as RouteLink).peer));
      }
    }
    this.#flushAt = now;
    this.#sized = undefined;
    this.router.drainEach(this.#take);
    // Frames to one peer go as one message, in order (one stream write): one per link, in the
    // order of their first frames.
    const batch = this.#batch;
    for (const to of batch) {
      this.#out.push({
        to: to.peer,
        msg: { names: to.names, fields: to.fields, shortcut: to.shortcut !== undefined },
        size: to.size,
      });
      to.names = [];
      to.fields = [];
      to.size = 0;
    }
    batch.length = 0;
    // Clients hear their frames once the flush is done: what one answers at once is a flush of
    // its own, after this one.
    if (this.#heard.length > 0) {
      const heard = this.#heard;
      this.#heard = [];
      for (const [c, f] of heard) c.onFrame?.(f);
    }
  }

  /** One frame the router sends: to a client at once, to a peer onto its link's next message. */
  readonly #take = (l: Link, name: string, fields: Record<string, unknown>): void => {
    if (l.kind === "client") {
      const c = l as SimClient;
      const f = { at: this.#flushAt, name, fields };
      c.frames.push(f);
      if (c.onFrame) this.#heard.push([c, f]);
      return;
    }
    const to = l as RouteLink;
    if (to.names.length === 0) this.#batch.push(to);
    to.names.push(name);
    to.fields.push(fields);
    // The router sends one fields object to several peers (a flood): its size is estimated once.
    if (fields !== this.#sized) {
      this.#sized = fields;
      this.#size = estimateSize(name, fields);
    }
    to.size += this.#size;
  };
}

/** Options of a routed mesh. */
export interface RoutedMeshOptions {
  seed: number;
  /** One-way latency of each route, ms, drawn once per route: `min + (max - min) · rng()`. */
  latencyMs?: { min: number; max: number };
  router?: Partial<RouterOptions<Link>>;
}

/**
 * Nodes with routers on the simulator. Routes are explicit (`link`, `unlink`) or those of the
 * overlay (`runRoutingSim`).
 */
export class RoutedMesh {
  readonly sim: Simulator<RouterMsg, never>;
  readonly nodes: RouterNode[] = [];
  readonly #rng: Rng;
  readonly #lat: { min: number; max: number };
  readonly #opts: RoutedMeshOptions;
  /** Short id → node index (where a shortcut asked for goes). */
  readonly #byShort = new Map<string, number>();
  /** One-way latency between two nodes that have a route or a shortcut, by `a b` (a < b). */
  readonly #oneWay = new Map<string, number>();
  /** Shortcuts dialed, and dials that found their node down. */
  readonly shortcutDials = { made: 0, failed: 0 };

  constructor(o: RoutedMeshOptions) {
    this.#opts = o;
    this.sim = new Simulator<RouterMsg, never>({ seed: o.seed, inboxLimit: 1 << 20 });
    this.#rng = seededRng(o.seed, "routes");
    this.#lat = o.latencyMs ?? { min: 0.5, max: 5 };
  }

  /** Adds a node; its id is random from the seed unless given. Returns its index. */
  add(nodeId?: string): number {
    const i = this.nodes.length;
    const addr = `n${i}`;
    const id = nodeId ?? nodeIdText(randomId(seededRng(this.#opts.seed, "id", i)));
    this.#byShort.set(id.slice(0, SHORT_ID_CHARS), i);
    this.sim.add(addr, (a, rng) => {
      const n = new RouterNode(a, id, rng, { epochMs: 1, ...this.#opts.router });
      n.onShortcuts = (_now, open, close) => {
        for (const peer of open) this.#dialShortcut(i, peer);
        for (const peer of close) this.#closeShortcut(i, Number(peer.slice(1)));
      };
      this.nodes[i] = n;
      return n;
    });
    return i;
  }

  /** Sets the one-way latency between `a` and `b` (ms), for a route or shortcut made after. */
  setLatency(a: number, b: number, oneWayMs: number): void {
    this.#oneWay.set(a < b ? `${a} ${b}` : `${b} ${a}`, oneWayMs);
    this.sim.setLinkLatency(`n${a}`, `n${b}`, { baseMs: oneWayMs });
    this.sim.setLinkLatency(`n${b}`, `n${a}`, { baseMs: oneWayMs });
  }

  /** The one-way latency between `a` and `b` (drawn once per pair, ms). */
  #latency(a: number, b: number): number {
    let oneWay = this.#oneWay.get(a < b ? `${a} ${b}` : `${b} ${a}`);
    if (oneWay === undefined) {
      const { min, max } = this.#lat;
      oneWay = min + (max - min) * this.#rng();
      this.setLatency(a, b, oneWay);
    }
    return oneWay;
  }

  /** A route between nodes `a` and `b` comes up now. */
  link(a: number, b: number): void {
    const oneWay = this.#latency(a, b);
    const [x, y] = [`n${a}`, `n${b}`];
    this.sim.call(x, (c) => (c as RouterNode).connect(y, 2 * oneWay));
    this.sim.call(y, (c) => (c as RouterNode).connect(x, 2 * oneWay));
  }

  /**
   * Node `a` asked for a shortcut to the node with id `peer`: a QUIC handshake (one round trip)
   * later it has one; the peer once the channel's opening frame arrives (one way more).
   */
  #dialShortcut(a: number, peer: string): void {
    const b = this.#byShort.get(peer.slice(0, SHORT_ID_CHARS));
    if (b === undefined || b === a) return;
    const oneWay = this.#latency(a, b);
    const [x, y] = [`n${a}`, `n${b}`];
    const shortOf = (i: number) => this.nodes[i]!.nodeId.slice(0, SHORT_ID_CHARS);
    this.sim.after(2 * oneWay, () => {
      if (!this.sim.isUp(x)) return;
      if (!this.sim.isUp(y)) {
        this.shortcutDials.failed++;
        return;
      }
      this.shortcutDials.made++;
      // The peer takes the channel just before the dialer's first frames can reach it.
      this.sim.after(oneWay * 0.999, () => {
        if (this.sim.isUp(y) && this.sim.isUp(x)) {
          this.sim.call(
            y,
            (c, now) => (c as RouterNode).shortcutUp(now, x, shortOf(a), 2 * oneWay),
          );
        }
      });
      this.sim.call(x, (c, now) => (c as RouterNode).shortcutUp(now, y, shortOf(b), 2 * oneWay));
    });
  }

  /**
   * Node `a` lets its shortcut to `b` go: `b` hears it one way later and stops sending on it (as
   * a RETIRE would: what it sends from then on waits out what it sent on it), and drops it once
   * what `a` sent before has arrived; `a` drops it once what `b` sent before that has arrived.
   */
  #closeShortcut(a: number, b: number): void {
    const oneWay = this.#latency(a, b);
    const [x, y] = [`n${a}`, `n${b}`];
    this.sim.after(oneWay, () => {
      if (this.sim.isUp(y)) this.sim.call(y, (c, now) => (c as RouterNode).shortcutRetire(now, x));
    });
    this.sim.after(oneWay * 1.001, () => {
      if (this.sim.isUp(y)) this.sim.call(y, (c, now) => (c as RouterNode).shortcutDown(now, x));
    });
    this.sim.after(2 * oneWay * 1.001, () => {
      if (this.sim.isUp(x)) this.sim.call(x, (c, now) => (c as RouterNode).shortcutDown(now, y));
    });
  }

  /** The route between `a` and `b` goes down now (both ends notice). */
  unlink(a: number, b: number): void {
    for (const [x, y] of [[a, b], [b, a]] as const) {
      if (this.sim.isUp(`n${x}`)) {
        this.sim.call(`n${x}`, (c) => (c as RouterNode).disconnect(`n${y}`));
      }
    }
  }

  /** Node `i` crashes: nothing of it runs any more (its neighbours notice only when told). */
  crash(i: number): void {
    this.sim.crash(`n${i}`);
  }

  /** A new client on node `i`. */
  client(i: number): SimClient {
    return this.sim.call(`n${i}`, (c) => (c as RouterNode).client());
  }

  /** `c` sends a frame to its node now. */
  send(c: SimClient, name: string, fields: Record<string, unknown>): void {
    this.sim.call(
      c.node.addr,
      (core, now) => (core as RouterNode).fromClient(now, c, name, fields),
    );
  }

  /** Runs until no event is left (bounded: `limitMs` of simulated time). True when quiet. */
  settle(limitMs = 60_000): boolean {
    const end = this.sim.now + limitMs;
    while (this.sim.pending > 0) {
      if (!this.sim.step()) break;
      if (this.sim.now > end) return false;
    }
    return true;
  }

  /** Sum of every live node's router counters. */
  stats(): RouterStats {
    const sum = {} as Record<string, number>;
    this.nodes.forEach((n, i) => {
      if (!this.sim.isUp(`n${i}`)) return;
      for (const [k, v] of Object.entries(n.router.stats)) sum[k] = (sum[k] ?? 0) + v;
    });
    return sum as unknown as RouterStats;
  }
}

/** What `macula sim routing` simulates. */
export interface RoutingSimOptions {
  nodes: number;
  seed: number;
  /** Nodes with a subscribing client (one plain subscription, some with a queue group too). */
  subscribers?: number;
  /** Overlay degree (`overlay.k`). Default 8. */
  k?: number;
  /** Publishes measured, each from a random node. Default 50. */
  publishes?: number;
  /** Calls measured, each from a random node to the one provider. Default 50. */
  calls?: number;
  /** Publishers of a stream each (10 ms apart, `streamLength` messages): shortcuts at work. Default 10. */
  streams?: number;
  /** Shortcuts a node may hold (`overlay.shortcuts`; 0: none). Default `SHORTCUTS.max`. */
  shortcuts?: number;
  /** Messages per stream: the first half warms up, the second is measured alone. Default 20. */
  streamLength?: number;
  /** Fraction of nodes crashed at once after the steady phase (0: none). Default 0.1. */
  churn?: number;
  /** How long a crashed node's neighbours take to notice, ms (route idle timeout). Default 1500. */
  detectMs?: number;
}

/** Distribution of a per-node figure. */
export interface Spread {
  p50: number;
  p99: number;
  max: number;
}

/** What `macula sim routing` reports. */
export interface RoutingReport {
  nodes: number;
  k: number;
  seed: number;
  subscribers: number;
  /** Mean hops between nodes over the overlay (sampled). */
  meanPathHops: number;
  /** Simulated time for every record to reach every node at the start, ms. */
  convergeMs: number;
  /** A new subscription's record reaching the other nodes, ms after the subscribe. */
  visibilityMs: Spread;
  delivery: {
    publishes: number;
    /** Deliveries expected (subscriptions × publishes) and made. */
    expected: number;
    delivered: number;
    duplicates: number;
    completeness: number;
    /** FWD frames sent per delivery to a subscription on another node. */
    transmissionsPerDelivery: number;
    /** Nodes that got a FWD without a subscription of their own (forwarders on a path). */
    forwarderShare: number;
  };
  /**
   * Streams: each of `publishers` nodes publishes `length` messages 10 ms apart. A node asks for
   * a shortcut to a far subscriber's node on its third message (docs/routing.md, "Shortcuts").
   */
  streams: {
    publishers: number;
    length: number;
    expected: number;
    delivered: number;
    duplicates: number;
    /** Messages a subscription got after a later one of the same stream. */
    outOfOrder: number;
    /** FWD frames per delivery to another node: the whole streams, and their second halves alone. */
    transmissionsPerDelivery: number;
    steadyTransmissionsPerDelivery: number;
    /** Shortcuts dialed, and the most one node held at once. */
    shortcuts: number;
    maxShortcutsPerNode: number;
  };
  queue: { publishes: number; delivered: number; duplicates: number };
  rpc: { calls: number; ok: number; failed: number };
  churn?: {
    crashed: number;
    /** Publishes after the crash that reached every live subscription, of those made. */
    completeAfterDetect: number;
    probes: number;
    /** From the crash until every probe publish is complete again, ms (detection included). */
    recoveredMs: number | null;
    undeliverable: { noRoute: number; hopLimit: number };
  };
  perNode: {
    /** Origins whose record a node holds. */
    origins: Spread;
    /** INTEREST frames a node sent over the whole run; messages (one per flush per route) and bytes. */
    interestSent: Spread;
    messagesSent: Spread;
    bytesSent: Spread;
  };
  /** Routes closed on a protocol error (should be 0). */
  protocolErrors: number;
  simulatedMs: number;
  wallMs: number;
}

function spread(xs: number[]): Spread {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0;
  return { p50: at(0.5), p99: at(0.99), max: s[s.length - 1] ?? 0 };
}

const enc = new TextEncoder();

/** The routing scenario behind `macula sim routing` (docs/routing.md, "What was simulated"). */
export function runRoutingSim(o: RoutingSimOptions): RoutingReport {
  const t0 = performance.now();
  const n = o.nodes;
  if (!Number.isInteger(n) || n < 2) throw new SimError(`--nodes must be an integer ≥ 2, got ${n}`);
  const subscribers = Math.min(n, o.subscribers ?? Math.min(n, 100));
  const k = o.k ?? 8;
  const rng = seededRng(o.seed, "routing-scenario");
  const pick = (m: number) => Math.floor(rng() * m);

  // The overlay over all nodes, then a router per node with a route per overlay link.
  const ids = Array.from({ length: n }, (_, i) => randomId(seededRng(o.seed, "id", i)));
  const overlay = new OverlayMesh(ids, o.seed, true, { k });
  overlay.settle();
  const mesh = new RoutedMesh({
    seed: o.seed,
    router: o.shortcuts === undefined ? {} : { shortcuts: { max: o.shortcuts } },
  });
  for (let i = 0; i < n; i++) mesh.add(nodeIdText(ids[i]!));
  for (let i = 0; i < n; i++) for (const j of overlay.adj[i]!) if (j > i) mesh.link(i, j);
  const meanPathHops = overlay.graph().diameter({ samples: 16 }).meanDistance;

  // Subscribers: distinct random nodes, one client each, "sim.t" plain; every third also in
  // queue group "g" on "sim.q". One provider of "sim.p".
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = pick(i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const subs = order.slice(0, subscribers).map((i) => ({ node: i, c: mesh.client(i) }));
  subs.forEach((s, x) => {
    mesh.send(s.c, "SUB", { sid: 1, pattern: "sim.>" });
    if (x % 3 === 0) mesh.send(s.c, "SUB", { sid: 2, pattern: "sim.q", queue: "g" });
  });
  const providerNode = order[subscribers % n]!;
  const provider = mesh.client(providerNode);
  mesh.send(provider, "REG", { proc: "sim.p" });
  provider.onFrame = (f) => {
    if (f.name !== "CALL") return;
    mesh.sim.after(
      0.1,
      () => mesh.send(provider, "REPLY", { id: f.fields.id, payload: f.fields.payload }),
    );
  };
  const start = mesh.sim.now;
  mesh.settle();
  const convergeMs = mesh.sim.now - start;

  // Visibility: a new subscription on a node not subscribed yet; when does each other node take
  // its record?
  const late = order[(subscribers + 1) % n]!;
  const lateId = mesh.nodes[late]!.nodeId;
  const seen = new Map<number, number>();
  let subAt = 0;
  mesh.nodes.forEach((node, i) => {
    node.onInterest = (now, f) => {
      if (f.origin === lateId && (f.hops as number) < 255 && !seen.has(i)) seen.set(i, now - subAt);
    };
  });
  const lateClient = mesh.client(late);
  subAt = mesh.sim.now;
  mesh.send(lateClient, "SUB", { sid: 1, pattern: "late.x" });
  mesh.settle();
  for (const node of mesh.nodes) node.onInterest = undefined;
  const vis = [...seen.values()];
  while (vis.length < n - 1) vis.push(Infinity); // nodes never reached

  // Publishes from random nodes: every subscription once.
  const before = mesh.stats();
  const counts = new Map<string, number>();
  const publishers = Array.from(
    { length: n },
    () => undefined as ReturnType<RoutedMesh["client"]> | undefined,
  );
  const publisher = (i: number) => (publishers[i] ??= mesh.client(i));
  const publishes = o.publishes ?? 50;
  const tally = (from: number, prefix: string) => {
    for (const s of subs) {
      for (const f of s.c.frames) {
        if (f.name !== "MSG") continue;
        const m = new TextDecoder().decode(f.fields.payload as Uint8Array);
        if (!m.startsWith(prefix)) continue;
        const key = `${m} ${s.node} ${f.fields.sid}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      void from;
    }
  };
  let remoteExpected = 0;
  for (let p = 0; p < publishes; p++) {
    const from = pick(n);
    mesh.send(publisher(from), "PUB", { topic: "sim.t", payload: enc.encode(`m${p}`) });
    remoteExpected += subs.filter((s) => s.node !== from).length;
  }
  mesh.settle();
  tally(0, "m");
  let delivered = 0;
  let duplicates = 0;
  for (const v of counts.values()) {
    delivered++;
    duplicates += v - 1;
  }
  const mid = mesh.stats();
  const fwd = mid.forwarded - before.forwarded;
  // Nodes that took a FWD for others only.
  let forwarders = 0;
  const subNodes = new Set(subs.map((s) => s.node));
  mesh.nodes.forEach((node, i) => {
    if (!subNodes.has(i) && node.router.stats.forwarded > 0) forwarders++;
  });

  // Queue group: each publish to exactly one member.
  counts.clear();
  for (const s of subs) s.c.frames.length = 0;
  const qPublishes = Math.max(1, Math.floor(publishes / 2));
  for (let p = 0; p < qPublishes; p++) {
    mesh.send(publisher(pick(n)), "PUB", { topic: "sim.q", payload: enc.encode(`q${p}`) });
  }
  mesh.settle();
  const perMsg = new Map<string, number>();
  for (const s of subs) {
    for (const f of s.c.frames) {
      if (f.name !== "MSG" || f.fields.sid !== 2) continue;
      const m = new TextDecoder().decode(f.fields.payload as Uint8Array);
      perMsg.set(m, (perMsg.get(m) ?? 0) + 1);
    }
  }
  let qDelivered = 0;
  let qDup = 0;
  for (const v of perMsg.values()) {
    qDelivered++;
    qDup += v - 1;
  }
  for (const s of subs) s.c.frames.length = 0;

  // Calls from random nodes to the one provider.
  const ncalls = o.calls ?? 50;
  const callers: SimClient[] = [];
  for (let c = 0; c < ncalls; c++) {
    const caller = publisher(pick(n));
    callers.push(caller);
    mesh.send(caller, "CALL", {
      id: c + 1,
      proc: "sim.p",
      payload: enc.encode(`c${c}`),
      timeout_ms: 10_000,
    });
  }
  mesh.settle();
  let ok = 0;
  let failed = 0;
  for (const c of new Set(callers)) {
    ok += c.got("REPLY").length;
    failed += c.got("FAIL").length;
    c.frames.length = 0;
  }

  // Streams: shortcuts at work. Each publisher sends `length` messages 10 ms apart; the second
  // halves are measured alone (the shortcuts are up by then).
  const nStreams = Math.min(n, o.streams ?? 10);
  const streamLength = Math.max(2, o.streamLength ?? 20);
  const streamFrom = Array.from({ length: nStreams }, () => pick(n));
  const half = Math.floor(streamLength / 2);
  let remoteStream = 0;
  let remoteSteady = 0;
  for (const s of subs) s.c.frames.length = 0;
  let maxShortcuts = 0;
  const publishStream = (from: number, p: number, first: number, last: number) => {
    for (let m = first; m < last; m++) {
      mesh.sim.after((m - first) * 10, () => {
        mesh.send(publisher(from), "PUB", { topic: "sim.t", payload: enc.encode(`s${p}.${m}`) });
      });
    }
  };
  const dialsBefore = mesh.shortcutDials.made;
  const streamStart = mesh.stats().forwarded;
  streamFrom.forEach((from, p) => publishStream(from, p, 0, half));
  mesh.sim.runFor(half * 10 + 1000);
  const steadyStart = mesh.stats().forwarded;
  streamFrom.forEach((from, p) => publishStream(from, p, half, streamLength));
  mesh.sim.runFor((streamLength - half) * 10 + 1000);
  const streamEnd = mesh.stats().forwarded;
  for (const node of mesh.nodes) {
    maxShortcuts = Math.max(maxShortcuts, node.router.snapshot().shortcuts);
  }
  for (const from of streamFrom) {
    const far = subs.filter((s) => s.node !== from).length;
    remoteStream += far * streamLength;
    remoteSteady += far * (streamLength - half);
  }
  let sDelivered = 0;
  let sDup = 0;
  let outOfOrder = 0;
  for (const s of subs) {
    const last = new Map<number, number>();
    const seenHere = new Set<string>();
    for (const f of s.c.frames) {
      if (f.name !== "MSG" || f.fields.sid !== 1) continue;
      const m = new TextDecoder().decode(f.fields.payload as Uint8Array);
      if (!m.startsWith("s")) continue;
      if (seenHere.has(m)) {
        sDup++;
        continue;
      }
      seenHere.add(m);
      sDelivered++;
      const [p, i] = m.slice(1).split(".").map(Number) as [number, number];
      if ((last.get(p) ?? -1) > i) outOfOrder++;
      else last.set(p, i);
    }
    s.c.frames.length = 0;
  }
  mesh.settle();
  const streams: RoutingReport["streams"] = {
    publishers: nStreams,
    length: streamLength,
    expected: subscribers * nStreams * streamLength,
    delivered: sDelivered,
    duplicates: sDup,
    outOfOrder,
    transmissionsPerDelivery: remoteStream === 0 ? 0 : (streamEnd - streamStart) / remoteStream,
    steadyTransmissionsPerDelivery: remoteSteady === 0
      ? 0
      : (streamEnd - steadyStart) / remoteSteady,
    shortcuts: mesh.shortcutDials.made - dialsBefore,
    maxShortcutsPerNode: maxShortcuts,
  };

  // Churn: crash a fraction at once; neighbours notice after detectMs, membership tells every
  // node, the overlay replaces the lost routes.
  let churn: RoutingReport["churn"];
  const frac = o.churn ?? 0.1;
  if (frac > 0) {
    const detect = o.detectMs ?? 1500;
    const alive = new Set(order);
    const victims = order.slice(n - Math.floor(n * frac)).filter((v) => v !== providerNode);
    const victimSet = new Set(victims);
    for (const v of victims) {
      mesh.crash(v);
      alive.delete(v);
    }
    const crashAt = mesh.sim.now;
    const beforeChurn = mesh.stats();
    mesh.sim.after(detect, () => {
      for (const v of victims) {
        for (const j of overlay.adj[v]!) if (!victimSet.has(j)) mesh.unlink(v, j);
      }
      for (const i of alive) {
        mesh.sim.call(`n${i}`, (c, now) => {
          for (const v of victims) (c as RouterNode).router.memberDown(mesh.nodes[v]!.nodeId, now);
        });
      }
      const old = overlay.adj.map((s) => new Set(s));
      overlay.kill(victims, true);
      overlay.settle();
      for (const i of alive) {
        for (const j of overlay.adj[i]!) if (j > i && !old[i]!.has(j)) mesh.link(i, j);
      }
    });
    // Probes: a publish every 100 ms from a random live node, until 5 s after detection.
    const liveSubs = subs.filter((s) => alive.has(s.node));
    const probes: { at: number; tag: string }[] = [];
    const probeEnd = detect + 5000;
    for (let t = 100, p = 0; t <= probeEnd; t += 100, p++) {
      const tag = `p${p}`;
      probes.push({ at: t, tag });
      mesh.sim.after(t, () => {
        const live = [...alive];
        mesh.send(publisher(live[pick(live.length)]!), "PUB", {
          topic: "sim.t",
          payload: enc.encode(tag),
        });
      });
    }
    mesh.settle();
    const got = new Map<string, number>();
    for (const s of liveSubs) {
      for (const f of s.c.frames) {
        if (f.name !== "MSG" || f.fields.sid !== 1) continue;
        const m = new TextDecoder().decode(f.fields.payload as Uint8Array);
        got.set(m, (got.get(m) ?? 0) + 1);
      }
    }
    const complete = probes.map((p) => (got.get(p.tag) ?? 0) >= liveSubs.length);
    let lastIncomplete = -1;
    complete.forEach((c, i) => {
      if (!c) lastIncomplete = i;
    });
    const after = probes.filter((p, i) => p.at > detect && complete[i]).length;
    const afterN = probes.filter((p) => p.at > detect).length;
    const end = mesh.stats();
    churn = {
      crashed: victims.length,
      completeAfterDetect: afterN === 0 ? 1 : after / afterN,
      probes: probes.length,
      recoveredMs: lastIncomplete === probes.length - 1
        ? null
        : lastIncomplete < 0
        ? 0
        : probes[lastIncomplete + 1]!.at,
      undeliverable: {
        noRoute: end.noRoute - beforeChurn.noRoute,
        hopLimit: end.hopLimit - beforeChurn.hopLimit,
      },
    };
    void crashAt;
  }

  const live = mesh.nodes.filter((_, i) => mesh.sim.isUp(`n${i}`));
  const simStats = mesh.sim.stats();
  const expected = subscribers * publishes;
  const protocolErrors = mesh.nodes.reduce((a, x) => a + x.closed.length, 0);
  return {
    nodes: n,
    k,
    seed: o.seed,
    subscribers,
    meanPathHops,
    convergeMs,
    visibilityMs: spread(vis),
    delivery: {
      publishes,
      expected,
      delivered,
      duplicates,
      completeness: expected === 0 ? 1 : delivered / expected,
      transmissionsPerDelivery: remoteExpected === 0 ? 0 : fwd / remoteExpected,
      forwarderShare: forwarders / n,
    },
    streams,
    queue: { publishes: qPublishes, delivered: qDelivered, duplicates: qDup },
    rpc: { calls: ncalls, ok, failed },
    churn,
    perNode: {
      origins: spread(live.map((x) => x.router.snapshot().origins)),
      interestSent: spread(live.map((x) => x.router.stats.interestOut)),
      messagesSent: spread(live.map((x) => simStats.nodes[x.addr]!.sent)),
      bytesSent: spread(live.map((x) => simStats.nodes[x.addr]!.bytesSent)),
    },
    protocolErrors,
    simulatedMs: mesh.sim.now,
    wallMs: Math.round(performance.now() - t0),
  };
}
