/**
 * The node runtime: configuration → credentials → QUIC endpoint → sessions → the message router.
 *
 * - Every accepted connection becomes a `PeerSession`; the peer then opens a bus channel:
 *   `client` (an application or CLI attaching) or `route` (a peer node). The node answers with
 *   its own channel of the same name, and the router takes the link.
 * - `join` seeds are dialed and redialed with jittered exponential backoff for as long as the node
 *   runs. Two nodes that dial each other keep one route: the one dialed by the smaller node id.
 * - Outbound messages to a link whose stream is backed up past `maxBacklog` are dropped and
 *   counted per subscription; the client is told how many (`LOST`) once the backlog drains.
 * - `stop()` drains: GOAWAY to every peer, queued frames flushed (bounded), then close.
 */
import process from "node:process";
import type { PeerIdentity } from "../identity/verify.ts";
import { Verifier } from "../identity/verify.ts";
import { busCodec, CLIENT_CHANNEL, ROUTE_CHANNEL } from "../messaging/frames.ts";
import { type Link, ProtocolError, Router, type RouterStats } from "../messaging/router.ts";
import { backoffDelay } from "../peer/backoff.ts";
import { PeerSession } from "../peer/session.ts";
import { ChannelWriter } from "../peer/writer.ts";
import { type QuicConnection, QuicEndpoint } from "../quic/mod.ts";
import { DEFAULTS, type NodeConfig, parseSeed } from "./config.ts";
import { MEMBERSHIP_METHOD, MembershipGlue } from "./membership.ts";
import { VERSION } from "../version.ts";
import { nodeCredentials } from "./credentials.ts";
import { nodeIdFromSpki, nodeIdFromText, nodeIdText } from "../identity/names.ts";
import { Overlay } from "../mesh/overlay/overlay.ts";
import { isPunch } from "../nat/punch.ts";
import { StunServer } from "../nat/stun-server.ts";
import { type PathKind, Traversal } from "./traversal.ts";
import {
  isRelayPacket,
  type RelayAllocationInfo,
  relayOn,
  type RelayServer,
  type RelayStats,
} from "../nat/relay.ts";
import { x509 } from "../identity/x509.ts";
import { formatUrl } from "../client/url.ts";
import { withTimeout } from "../util/timeout.ts";

/** Application close code for a session closed because the peer broke the protocol. */
export const PROTOCOL_VIOLATION = 0x12;
/** Application close code for a duplicate route between two nodes. */
export const DUPLICATE_ROUTE = 0x13;

/** What `Node.start` takes: a configuration (defaults for what is left out) and hooks. */
export interface NodeStartOptions
  extends Partial<Omit<NodeConfig, "listen" | "quic" | "limits" | "relay">> {
  listen?: Partial<NodeConfig["listen"]>;
  relay?: Partial<NodeConfig["relay"]>;
  quic?: Partial<NodeConfig["quic"]>;
  limits?: Partial<NodeConfig["limits"]>;
  /** Where the node reports what it does, a line at a time. Default: nowhere. */
  log?: (line: string) => void;
  /** Outbound bytes queued per link before messages to it are dropped. Default 64 MiB (as NATS). */
  maxBacklog?: number;
}

/** A node's state for `macula inspect` and tests. */
export interface NodeSnapshot {
  nodeId: string;
  realm: string;
  url: string;
  clients: number;
  /**
   * Every open session: a route, a client, or a plain session (membership, …); its path (for a
   * relayed one, `via` is the relay and `remote` the tunnel), where the peer is, the current RTT.
   */
  peers: {
    nodeId: string;
    role: "route" | "client" | "session";
    path: PathKind;
    via?: string;
    remote: string;
    rttMs: number;
  }[];
  /** Routes to peer nodes: how each was made, its path, where the peer is, the current RTT. */
  routes: {
    nodeId: string;
    name: string;
    dialed: boolean;
    path: PathKind;
    via?: string;
    remote: string;
    rttMs: number;
  }[];
  /**
   * The relay role (null when `relay.enabled` is false): counters and the relayed sessions it
   * carries; and this node's own traversal counters.
   */
  relay:
    | (RelayStats & {
      limits: Omit<NodeConfig["relay"], "enabled" | "upgradeAfterMs">;
      sessions: RelayAllocationInfo[];
    })
    | null;
  traversal: Traversal["stats"] & { tunnels: number };
  subscriptions: number;
  remoteInterest: number;
  procedures: string[];
  pendingCalls: number;
  router: RouterStats;
  /** Messages dropped because a link was backed up. */
  dropped: { messages: number; forwards: number };
  /** Members of the realm this node knows, by state (itself included). */
  members: Record<"alive" | "suspect" | "dead" | "left", number>;
}

const MONO = () => performance.now();

class BusLink implements Link {
  writer: ChannelWriter | null = null;
  /** A route to a configured seed (`join`): kept whatever the overlay prefers. */
  seed = false;
  /** Resolves once the router has the link (frames are read only after that). */
  readonly attached: Promise<void>;
  markAttached!: () => void;
  /** Messages dropped per subscription id since the last LOST. */
  readonly lost = new Map<number, number>();
  #lostTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    readonly id: string,
    readonly kind: "client" | "node",
    readonly session: PeerSession,
    readonly dialed: boolean,
    private readonly node: Node,
  ) {
    this.attached = new Promise((r) => (this.markAttached = r));
  }

  send(name: string, fields: Record<string, unknown>): void {
    const w = this.writer;
    if (!w) return;
    if (name === "MSG" || name === "FWD") {
      if (w.backlog > this.node.maxBacklog) {
        if (name === "MSG") {
          const sid = fields.sid as number;
          this.lost.set(sid, (this.lost.get(sid) ?? 0) + 1);
          this.node.dropped.messages++;
          this.#reportLost();
        } else this.node.dropped.forwards++;
        return;
      }
    }
    w.write(busCodec.encode(name, fields));
  }

  /** Tells the client about drops once its backlog has room again. */
  #reportLost(): void {
    if (this.#lostTimer) return;
    this.#lostTimer = setTimeout(() => {
      this.#lostTimer = undefined;
      if (!this.writer || this.session.conn.closeInfo) return;
      if (this.writer.backlog > this.node.maxBacklog / 2) return this.#reportLost();
      for (const [sid, count] of this.lost) {
        this.writer.write(busCodec.encode("LOST", { sid, count }));
      }
      this.lost.clear();
    }, 50);
  }

  stop(): void {
    clearTimeout(this.#lostTimer);
  }
}

/** A running node. */
export class Node {
  readonly dropped = { messages: 0, forwards: 0 };
  readonly maxBacklog: number;
  readonly router: Router;
  readonly #links = new Map<PeerSession, BusLink>();
  /** Peer node id → its route link. */
  readonly #routes = new Map<string, BusLink>();
  readonly #sessions = new Set<PeerSession>();
  #linkIds = 1;
  #stopping = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;
  readonly #dialers: Promise<void>[] = [];
  /** SWIM + Lifeguard membership of this node's realm (docs/membership.md). */
  membership!: MembershipGlue;
  /** Which members this node keeps routes to (docs/overlay.md). */
  overlay!: Overlay;
  /** Reaching nodes by id: direct, punched, relayed (docs/nat-traversal.md). */
  traversal!: Traversal;
  /** Hole-punching probes that arrived (they open NAT state; nothing else to do with them). */
  punchProbesSeen = 0;
  /** The relay role, when `relay.enabled` (docs/nat-traversal.md, "Relays"). */
  relay: RelayServer | null = null;
  /** The STUN server on the QUIC port. */
  stun!: StunServer;
  #housekeeping: ReturnType<typeof setInterval> | undefined;
  #relaySweep: ReturnType<typeof setInterval> | undefined;
  #planScheduled = false;
  /** Members being reached in the background, and when each was last tried. */
  readonly #reaching = new Set<string>();
  readonly #reachedAt = new Map<string, number>();
  /** Peer node ids an overlay dial is in flight to. */
  readonly #overlayDialing = new Set<string>();
  /** Sleeping dial loops, woken by stop. */
  readonly #wake = new Set<() => void>();
  /** `waitForRoutes`/`waitForMembers` callers, told when a route or a member changes. */
  readonly #watch = new Set<() => void>();

  private constructor(
    readonly config: NodeConfig,
    readonly endpoint: QuicEndpoint,
    readonly nodeId: string,
    /** Dev realm: the CA directory (share it with `devCaDir` to run more local nodes). */
    readonly caDir: string | null,
    /** Dev realm: client credentials (`--creds`). */
    readonly credsDir: string | null,
    private readonly log: (line: string) => void,
    maxBacklog: number,
  ) {
    this.maxBacklog = maxBacklog;
    this.router = new Router({
      now: MONO,
      random: Math.random,
      maxPayload: config.limits.maxPayload,
    });
  }

  /** Starts a node: credentials, endpoint, seeds. Resolves once it listens. */
  static async start(o: NodeStartOptions = {}): Promise<Node> {
    const config: NodeConfig = {
      ...structuredClone(DEFAULTS),
      ...Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)),
      listen: { ...DEFAULTS.listen, ...o.listen },
      quic: { ...DEFAULTS.quic, ...o.quic },
      limits: { ...DEFAULTS.limits, ...o.limits },
      overlay: { ...DEFAULTS.overlay, ...o.overlay },
      relay: { ...DEFAULTS.relay, ...o.relay },
      tags: o.tags ?? [],
      join: o.join ?? [],
      tls: o.tls ?? null,
      devCaDir: o.devCaDir ?? null,
    };
    const log = o.log ?? (() => {});
    const creds = await nodeCredentials(config);
    for (const c of creds.created) log(`created ${c}`);
    const verifier = await Verifier.create({ ca: creds.ca, realm: config.realm });
    const spki = new Uint8Array(new x509.X509Certificate(creds.cert).publicKey.rawData);
    const nodeId = nodeIdText(nodeIdFromSpki(spki));
    let endpoint: QuicEndpoint;
    try {
      endpoint = await QuicEndpoint.bind({
        host: config.listen.host,
        port: config.listen.port,
        tls: { ca: creds.ca, cert: creds.cert, key: creds.key },
        checkPeer: verifier.checkPeer(),
        idleTimeoutMs: config.quic.idleTimeoutMs,
        keepAliveMs: config.quic.keepAliveMs,
      });
    } catch (e) {
      throw new Error(
        `cannot listen on udp ${config.listen.host}:${config.listen.port}: ${(e as Error).message}`,
      );
    }
    const node = new Node(
      config,
      endpoint,
      nodeId,
      creds.caDir,
      creds.credsDir,
      log,
      o.maxBacklog ?? 64 * 1024 * 1024,
    );
    node.#acceptLoop();
    node.membership = new MembershipGlue({
      id: nodeId,
      addr: node.url,
      meta: { realm: config.realm, tags: config.tags, version: VERSION },
      seeds: config.join.map((s) => formatUrl(s.host, s.port)),
      // A member behind a NAT is reached over the session this node has with it (punched or
      // relayed), if any: its advertised address may be one only its LAN can dial.
      // When the address does not answer, the node reaches the member by id in the background
      // (punched or relayed), so later messages have a session.
      dial: (addr) => {
        // Only when one member has that address (private addresses repeat across LANs).
        const at = node.membership.dir.entries.filter((x) => x.addr === addr);
        const e = at.length === 1 ? at[0] : undefined;
        const open = e ? node.traversal.openSessionTo(e.id) : undefined;
        if (open) return Promise.resolve(open);
        const p = node.#dialSession(addr);
        if (e) p.catch(() => node.#reachLater(e.id));
        return p;
      },
      // Routes, clients, and what traversal made (the pool did not dial those).
      isPinned: (s) => node.#links.has(s) || node.traversal.pathOf(s) !== "direct",
      onEvent: (e, m) => {
        for (const w of [...node.#watch]) w();
        if (e.kind === "alive" || e.kind === "dead" || e.kind === "left") {
          log(`member ${e.kind === "alive" ? "up" : e.kind}: ${m.id.slice(0, 12)}… ${m.addr}`);
          node.#memberChanged(e.kind, m.id, m.addr);
        }
      },
    });
    if (config.relay.enabled) {
      node.relay = relayOn(endpoint, { ...config.relay, idleMs: 60_000, unusedMs: 10_000 });
    }
    node.traversal = new Traversal({
      nodeId,
      endpoint,
      sessions: () => node.#sessions,
      relay: node.relay,
      upgradeAfterMs: config.relay.upgradeAfterMs,
      log,
      rendezvous: () => [...node.#routes.values()].map((l) => l.session),
      addressOf: (id) => {
        const i = node.membership.dir.indexOf(id);
        if (i === undefined || node.membership.core.stateOf(i) !== "alive") return undefined;
        return node.membership.dir.entries[i]!.addr;
      },
      dial: (addr, ms) =>
        withTimeout(
          node.#dialSession(addr),
          ms,
          () => new Error(`dialing ${addr}: no answer within ${ms} ms`),
        ),
      adopt: async (conn) => {
        const s = await PeerSession.dial(conn, node.#sessionOptions());
        node.#track(s);
        return s;
      },
    });
    // The QUIC port also answers STUN Binding requests (RFC 8489: netcheck and peers learn their
    // public address from any node), takes hole-punching probes (counted, dropped), and carries
    // relayed packets: for the relay role, or for this node's own relayed sessions.
    node.stun = new StunServer({
      primary: endpoint,
      onOther: (data, host, port) => {
        if (isPunch(data)) node.punchProbesSeen++;
        else if (isRelayPacket(data)) {
          if (node.relay?.onPacket(data, host, port)) return;
          if (!node.traversal.tunnels.onPacket(data, host, port)) {
            node.traversal.stats.relayPacketsUnknown++;
          }
        }
      },
    });
    node.overlay = new Overlay({
      self: nodeIdFromText(nodeId),
      k: config.overlay.k,
      // Two XOR-nearest neighbours, or k of them when k is smaller (overlay.k may be 1).
      near: Math.min(2, config.overlay.k),
      rng: Math.random,
    });
    node.#housekeeping = setInterval(() => {
      node.overlay.clearAvoided();
      node.#schedulePlan();
    }, 30_000);
    (node.#housekeeping as { unref?: () => void }).unref?.();
    if (node.relay) {
      // Unused allocations go after 10 s, idle ones after 60 s: sweep often enough for both.
      node.#relaySweep = setInterval(() => node.relay?.sweep(), 5_000);
      (node.#relaySweep as { unref?: () => void }).unref?.();
    }
    for (const seed of config.join) node.#dialers.push(node.#dialLoop(seed));
    return node;
  }

  /**
   * The address clients and nodes dial: `advertise`, else `quic://host:port` of the listen
   * address (loopback when bound to any).
   */
  get url(): string {
    if (this.config.advertise) return this.config.advertise;
    const { port } = this.endpoint.address;
    let host = this.config.listen.host;
    if (host === "0.0.0.0") host = "127.0.0.1";
    if (host === "::") host = "::1";
    return formatUrl(host, port);
  }

  /** False once `stop` was called. */
  get running(): boolean {
    return !this.#stopping;
  }

  get realm(): string {
    return this.config.realm;
  }

  /** The data directory (absolute where it was given absolute). */
  get dataDir(): string {
    return this.config.dataDir;
  }

  /** Peer node ids with a live route. */
  get routes(): string[] {
    return [...this.#routes.keys()];
  }

  snapshot(): NodeSnapshot {
    const r = this.router.snapshot();
    return {
      nodeId: this.nodeId,
      realm: this.realm,
      url: this.url,
      clients: r.links.clients,
      routes: [...this.#routes.values()].map((l) => ({
        nodeId: l.session.peer.nodeId,
        name: l.session.peer.name,
        dialed: l.dialed,
        ...this.#pathInfo(l.session),
      })),
      peers: [...this.#sessions].filter((x) => x.conn.isOpen).map((x) => {
        const link = this.#links.get(x);
        return {
          nodeId: x.peer.nodeId,
          role: link
            ? (link.kind === "client" ? "client" as const : "route" as const)
            : "session" as const,
          ...this.#pathInfo(x),
        };
      }),
      relay: this.relay
        ? {
          ...this.relay.stats,
          limits: {
            maxSessions: this.config.relay.maxSessions,
            sessionsPerPeer: this.config.relay.sessionsPerPeer,
            bytesPerSecond: this.config.relay.bytesPerSecond,
            burstBytes: this.config.relay.burstBytes,
          },
          sessions: this.relay.allocations(),
        }
        : null,
      traversal: { ...this.traversal.stats, tunnels: this.traversal.tunnels.size },
      subscriptions: r.subscriptions,
      remoteInterest: r.remoteInterest,
      procedures: r.procedures,
      pendingCalls: r.pendingCalls,
      router: r.stats,
      dropped: { ...this.dropped },
      members: this.#memberCounts(),
    };
  }

  #pathInfo(s: PeerSession) {
    const via = this.traversal.viaOf(s);
    return {
      path: this.traversal.pathOf(s),
      ...(via ? { via } : {}),
      remote: formatUrl(s.conn.remote.host, s.conn.remote.port).replace("quic://", ""),
      rttMs: s.conn.stats().rttMs,
    };
  }

  #memberCounts(): NodeSnapshot["members"] {
    const c = { alive: 0, suspect: 0, dead: 0, left: 0 };
    for (const m of this.membership.core.members()) {
      if (m.state !== "unknown") c[m.state]++;
    }
    return c;
  }

  /** Resolves once this node knows `count` members alive (itself included), or rejects. */
  waitForMembers(count: number, timeoutMs = 10_000): Promise<void> {
    return this.#waitFor(
      () => this.membership.core.liveCount >= count,
      () => `${this.membership.core.liveCount} of ${count} members`,
      timeoutMs,
    );
  }

  /**
   * Resolves once this node has at least `count` routes to peer nodes (for scripts and tests);
   * rejects after `timeoutMs`.
   */
  waitForRoutes(count: number, timeoutMs = 10_000): Promise<void> {
    return this.#waitFor(
      () => this.#routes.size >= count,
      () => `${this.#routes.size} of ${count} routes`,
      timeoutMs,
    );
  }

  /** Waits for `cond`, checked whenever a route or member changes; bounded by `timeoutMs`. */
  #waitFor(cond: () => boolean, state: () => string, timeoutMs: number): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!cond()) return;
        clearTimeout(t);
        this.#watch.delete(check);
        resolve();
      };
      const t = setTimeout(() => {
        this.#watch.delete(check);
        reject(new Error(`node ${this.url}: ${state()} after ${timeoutMs} ms`));
      }, timeoutMs);
      this.#watch.add(check);
    });
  }

  /** Drains and stops: GOAWAY to every peer, queued frames flushed (up to 2 s), endpoint closed. */
  async stop(reason = "node shutting down"): Promise<void> {
    if (this.#stopping) return;
    this.membership.leave(); // others learn "left" now, not by timing out
    this.#stopping = true;
    clearInterval(this.#housekeeping);
    clearInterval(this.#relaySweep);
    this.traversal.stop();
    for (const w of this.#wake) w();
    clearTimeout(this.#timer);
    const deadline = performance.now() + 2000;
    for (const link of this.#links.values()) link.stop();
    // Let queued frames reach QUIC, then say goodbye.
    for (let i = 0; i < 200 && performance.now() < deadline; i++) {
      let backlog = 0;
      for (const l of this.#links.values()) backlog += l.writer?.backlog ?? 0;
      if (backlog === 0) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    await Promise.allSettled([...this.#sessions].map((s) => s.close(reason)));
    await this.endpoint.close(reason);
    await Promise.allSettled(this.#dialers);
    this.log(`stopped: ${reason}`);
  }

  // ------------------------------------------------------------------ sessions

  #sessionOptions() {
    return {
      self: { nodeId: this.nodeId, realm: this.realm },
      onChannel: (name: string, bodies: AsyncIterable<Uint8Array[]>, s: PeerSession) =>
        void this.#onChannel(name, bodies, s),
      onRequest: (method: string, payload: Uint8Array, ctx: { session: PeerSession }) =>
        this.#request(method, payload, ctx.session),
    };
  }

  /** Requests on a session's own streams: membership messages, and inspection. */
  #request(
    method: string,
    payload: Uint8Array,
    s: PeerSession,
  ): Uint8Array | Promise<Uint8Array> {
    const t = this.traversal.handle(method, payload, s);
    if (t) return t;
    switch (method) {
      case "nat.ping": {
        // From a client: reach the node named and ping it once, saying how.
        const { target, relayOnly, upgrade } = JSON.parse(new TextDecoder().decode(payload)) as {
          target: string;
          relayOnly?: boolean;
          upgrade?: boolean;
        };
        return this.traversal.reach(target, {
          relayOnly: relayOnly === true,
          upgrade: upgrade === true,
        }).then((r) => new TextEncoder().encode(JSON.stringify(r)));
      }
      case MEMBERSHIP_METHOD:
        return this.membership.onStream(s, payload);
      case "inspect.members":
        return new TextEncoder().encode(JSON.stringify(this.membership.members()));
      case "inspect.node":
        return new TextEncoder().encode(JSON.stringify(this.snapshot()));
      default:
        throw new Error(`unknown request ${JSON.stringify(method)}`);
    }
  }

  /** A session to a node's address, for membership (tracked like any other). */
  async #dialSession(addr: string): Promise<PeerSession> {
    if (this.#stopping) throw new Error("node stopping");
    const { host, port } = parseSeed(addr, "member address");
    const conn = await this.endpoint.connect({ host, port });
    const s = await PeerSession.dial(conn, this.#sessionOptions());
    this.#track(s);
    return s;
  }

  #acceptLoop(): void {
    void (async () => {
      for await (const conn of this.endpoint) {
        void this.#accept(conn);
      }
    })();
  }

  async #accept(conn: QuicConnection): Promise<void> {
    let s: PeerSession;
    try {
      s = await PeerSession.accept(conn, this.#sessionOptions());
    } catch (e) {
      this.log(
        `refused a session from ${conn.remote.host}:${conn.remote.port}: ${(e as Error).message}`,
      );
      return;
    }
    this.#track(s);
  }

  #track(s: PeerSession): void {
    if (this.#stopping) {
      void s.close("node shutting down");
      return;
    }
    this.#sessions.add(s);
    this.membership.attach(s);
    this.traversal.sessionOpened(s);
    void s.closed.then(() => {
      this.#sessions.delete(s);
      const link = this.#links.get(s);
      if (link) this.#detach(link);
    });
  }

  /** The peer opened its bus channel. A dialer has already opened ours. */
  async #onChannel(
    name: string,
    bodies: AsyncIterable<Uint8Array[]>,
    s: PeerSession,
  ): Promise<void> {
    let link = this.#links.get(s);
    if (!link) {
      if (name !== CLIENT_CHANNEL && name !== ROUTE_CHANNEL) {
        void s.conn.close(PROTOCOL_VIOLATION, `unknown channel ${name}`);
        return;
      }
      const kind = name === CLIENT_CHANNEL ? "client" : "node";
      link = await this.#open(s, kind, false);
      if (!link) return;
    }
    await link.attached;
    await this.#read(link, bodies);
  }

  /** Opens our channel on `s` and attaches the link to the router. */
  async #open(
    s: PeerSession,
    kind: "client" | "node",
    dialed: boolean,
    seed = false,
  ): Promise<BusLink | undefined> {
    const link = new BusLink(`${kind}:${this.#linkIds++}`, kind, s, dialed, this);
    link.seed = seed;
    if (kind === "node") {
      const peer = s.peer.nodeId;
      if (peer === this.nodeId) {
        void s.conn.close(DUPLICATE_ROUTE, "a node does not route to itself");
        return undefined;
      }
      const old = this.#routes.get(peer);
      if (old) {
        // Keep a route that is not relayed over one that is, else the one whose QUIC connection
        // the smaller node id dialed; both ends decide the same way. (Not who opened the route
        // channel: on a session both sides use, both may open one.)
        const dialerOf = (l: BusLink) => (l.session.conn.isClient ? this.nodeId : peer);
        const relayed = (l: BusLink) => this.traversal.pathOf(l.session) === "relayed";
        const keepNew = relayed(old) !== relayed(link)
          ? relayed(old)
          : dialerOf(link) < dialerOf(old);
        // A route to a configured seed stays pinned whichever session carries it.
        if (keepNew) link.seed ||= old.seed;
        else old.seed ||= link.seed;
        const loser = keepNew ? old.session : s;
        void loser.conn.close(DUPLICATE_ROUTE, "duplicate route");
        if (!keepNew) return undefined;
        this.#detach(old, true);
      }
    }
    this.#links.set(s, link);
    if (kind === "node") this.#routes.set(s.peer.nodeId, link);
    let stream;
    try {
      stream = await s.openChannel(kind === "client" ? CLIENT_CHANNEL : ROUTE_CHANNEL);
    } catch {
      this.#detach(link);
      return undefined;
    }
    link.writer = new ChannelWriter(stream, () => void s.conn.close(0, "bus stream failed"));
    if (kind === "client") {
      link.send("INFO", { node: this.nodeId, max_payload: this.router.maxPayload });
    }
    this.router.attach(link);
    link.markAttached();
    if (kind === "node") {
      this.overlay.linkUp(nodeIdFromText(s.peer.nodeId), dialed ? "out" : "in");
      this.#schedulePlan();
      const via = this.traversal.viaOf(s);
      this.log(
        `route up: ${describe(s.peer)} (${dialed ? "dialed" : "accepted"}, ${
          this.traversal.pathOf(s)
        }${via ? ` via ${via.slice(0, 12)}…` : ""})`,
      );
      for (const w of [...this.#watch]) w();
    }
    return link;
  }

  /**
   * Takes a link from the router. A route `replaced` by another route to the same peer stays up
   * as far as the overlay is concerned (telling it "down" would make it avoid that peer).
   */
  #detach(link: BusLink, replaced = false): void {
    if (this.#links.get(link.session) !== link) return;
    this.#links.delete(link.session);
    link.stop();
    if (link.kind === "node" && this.#routes.get(link.session.peer.nodeId) === link) {
      this.#routes.delete(link.session.peer.nodeId);
      if (!replaced) {
        const peer = link.session.peer.nodeId;
        this.overlay.linkDown(nodeIdFromText(peer));
        // A member kept after a "dead" (it answered on this route) goes once the route does.
        if (this.#gone(peer)) this.overlay.memberDown(nodeIdFromText(peer));
        this.#schedulePlan();
      }
      if (!this.#stopping) {
        const why = replaced
          ? "replaced by another route"
          : link.session.conn.closeInfo?.message ?? "detached";
        this.log(`route down: ${describe(link.session.peer)} (${why})`);
      }
    }
    this.router.detach(link);
    this.#arm();
  }

  async #read(link: BusLink, bodies: AsyncIterable<Uint8Array[]>): Promise<void> {
    try {
      for await (const batch of bodies) {
        if (this.#links.get(link.session) !== link) return;
        for (const body of batch) {
          const f = busCodec.decodeBody(body);
          if ("unknown" in f) continue;
          this.router.receive(link, f);
        }
        this.#arm();
      }
    } catch (e) {
      if (link.session.conn.closeInfo || !link.session.conn.isOpen) return;
      const why = e instanceof ProtocolError ? e.message : `protocol: ${(e as Error).message}`;
      this.log(`closing session with ${describe(link.session.peer)}: ${why}`);
      void link.session.conn.close(PROTOCOL_VIOLATION, why.slice(0, 200));
    }
  }

  // ------------------------------------------------------------------ overlay

  #memberChanged(kind: string, id: string, addr: string): void {
    if (id === this.nodeId) return;
    const bytes = nodeIdFromText(id);
    const route = this.#routes.get(id);
    if (kind === "dead" && route && route.session.conn.isOpen && !route.session.closing) {
      // A second opinion over the route before dropping it: a member declared dead while it
      // still answers here is alive (behind a NAT, SWIM may not reach it yet; it will refute).
      // If it does not answer, or its route goes down later, the overlay lets it go.
      route.session.request("ping", new Uint8Array(0), { timeoutMs: 2000 }).then(
        () => this.log(`member ${id.slice(0, 12)}… declared dead answers on its route: kept`),
        () => {
          this.overlay.memberDown(bytes);
          this.#schedulePlan();
        },
      );
      return;
    }
    if (kind === "alive") this.overlay.memberUp(bytes, addr);
    else this.overlay.memberDown(bytes);
    this.#schedulePlan();
  }

  /** True when membership holds `id` dead or left. */
  #gone(id: string): boolean {
    const i = this.membership.dir.indexOf(id);
    const st = i === undefined ? "unknown" : this.membership.core.stateOf(i);
    return st === "dead" || st === "left";
  }

  /** Applies the overlay's plan once the current burst of changes is over. */
  #schedulePlan(): void {
    if (this.#planScheduled || this.#stopping) return;
    this.#planScheduled = true;
    setTimeout(() => {
      this.#planScheduled = false;
      if (this.#stopping) return;
      const plan = this.overlay.plan();
      for (const c of plan.connect) void this.#overlayDial(nodeIdText(c.id), c.addr);
      for (const id of plan.disconnect) {
        const link = this.#routes.get(nodeIdText(id));
        if (link && !link.seed) void link.session.close("overlay: no longer a neighbour");
      }
    }, 0);
  }

  /**
   * Reaches a member whose address did not answer, by id (punched or relayed), in the background:
   * at most 2 at a time, each member at most once a minute.
   */
  #reachLater(id: string): void {
    const now = performance.now();
    if (this.#stopping || this.#reaching.size >= 2 || this.#reaching.has(id)) return;
    if (now - (this.#reachedAt.get(id) ?? -Infinity) < 60_000) return;
    this.#reachedAt.set(id, now);
    if (this.#reachedAt.size > 4096) this.#reachedAt.delete(this.#reachedAt.keys().next().value!);
    this.#reaching.add(id);
    this.traversal.connect(id).then(
      (r) => this.log(`member ${id.slice(0, 12)}… reached ${r.path}`),
      (e) => this.log(`member ${id.slice(0, 12)}… unreachable: ${(e as Error).message}`),
    ).finally(() => this.#reaching.delete(id));
  }

  /**
   * One attempt at a route to an overlay neighbour: over a session to it, direct, punched or
   * relayed (lib/node/traversal.ts); a failure is reported to the overlay.
   */
  async #overlayDial(id: string, addr: string): Promise<void> {
    if (this.#routes.has(id) || this.#overlayDialing.has(id) || this.#stopping) return;
    this.#overlayDialing.add(id);
    try {
      const { session: s } = await this.traversal.connect(id);
      const link = this.#links.get(s) ?? await this.#open(s, "node", true);
      if (!link && !this.#routes.has(id)) this.overlay.linkDown(nodeIdFromText(id));
    } catch (e) {
      if (!this.#stopping) {
        this.log(`overlay: no route to ${id.slice(0, 12)}… ${addr}: ${(e as Error).message}`);
        this.overlay.linkDown(nodeIdFromText(id));
      }
    } finally {
      this.#overlayDialing.delete(id);
    }
  }

  /** Keeps one timer at the router's next deadline. */
  #arm(): void {
    const d = this.router.nextDeadline();
    if (d === undefined || d >= this.#timerAt || this.#stopping) return;
    clearTimeout(this.#timer);
    this.#timerAt = d;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      this.router.tick();
      this.#arm();
    }, Math.max(0, d - MONO()));
  }

  /** Keeps a route to one seed for as long as the node runs. */
  async #dialLoop(seed: { host: string; port: number }): Promise<void> {
    const where = formatUrl(seed.host, seed.port);
    let attempt = 0;
    while (!this.#stopping) {
      let s: PeerSession | undefined;
      try {
        const conn = await this.endpoint.connect(seed);
        s = await PeerSession.dial(conn, this.#sessionOptions());
      } catch (e) {
        if (this.#stopping) return;
        const wait = backoffDelay(attempt++, Math.random, { baseMs: 200, maxMs: 10_000 });
        this.log(`join ${where}: ${(e as Error).message}; retrying in ${wait} ms`);
        await this.#sleep(wait);
        continue;
      }
      attempt = 0;
      this.#track(s);
      await this.#open(s, "node", true, true);
      await s.closed;
      // A duplicate route closed this one: wait for the kept route to go before redialing.
      for (let kept = this.#routes.get(s.peer.nodeId); kept && !this.#stopping;) {
        await kept.session.closed;
        kept = this.#routes.get(s.peer.nodeId);
      }
      if (this.#stopping) return;
      await this.#sleep(backoffDelay(0, Math.random, { baseMs: 200 }));
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.#wake.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      if (this.#stopping) done();
      else this.#wake.add(done);
    });
  }

  /** Installs SIGINT/SIGTERM handlers that stop the node; returns a remover. */
  stopOnSignals(onStopped: () => void = () => process.exit(0)): () => void {
    const handler = (sig: string) => {
      this.log(`${sig}: draining`);
      void this.stop(`node shutting down (${sig})`).then(onStopped);
    };
    const int = () => handler("SIGINT");
    const term = () => handler("SIGTERM");
    process.once("SIGINT", int);
    process.once("SIGTERM", term);
    return () => {
      process.off("SIGINT", int);
      process.off("SIGTERM", term);
    };
  }
}

function describe(p: PeerIdentity): string {
  return `${p.name} ${p.nodeId.slice(0, 12)}…`;
}
