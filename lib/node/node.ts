/**
 * The node: the composition root of the runtime. `Node.start` turns a configuration into
 * credentials, a QUIC endpoint and the parts below, wired together; `stop` drains and closes.
 *
 * | part | file | what it does |
 * |---|---|---|
 * | sessions | sessions.ts | every connection as a `PeerSession`, tracked until it closes |
 * | requests | requests.ts | the one registry of request methods the node answers |
 * | bus | links.ts | client and route links, the router (lib/messaging), backpressure |
 * | routes | routes.ts | one route per peer node, the duplicate-route rule |
 * | membership | membership.ts | SWIM + Lifeguard (lib/mesh) over datagrams and streams |
 * | overlay | overlay.ts | which peers to keep routes to (lib/mesh), carried out |
 * | dht | dht.ts | the realm's Kademlia DHT (lib/mesh) over `dht.msg` requests |
 * | hold-downs | holddown.ts | client certificates refused for a while after misbehaving |
 * | traversal | lib/nat | reaching a node by id: direct, punched, relayed; the relay role |
 * | seeds | seeds.ts | a pinned route to each `join` seed, redialed for as long as it runs |
 * | snapshot | snapshot.ts | what `macula inspect node` shows |
 */
import { existsSync, rmSync } from "node:fs";
import process from "node:process";
import {
  derChainOf,
  IdentityError,
  nodeIdFromText,
  nodeIdText,
  type PeerIdentity,
  Verifier,
} from "../identity/mod.ts";
import type { Overlay, RecordSigner } from "../mesh/mod.ts";
import type { InterestSigner, InterestVerifier, Router } from "../messaging/mod.ts";
import { interestSigner, interestVerifier } from "./interest.ts";
import {
  isPunch,
  isRelayPacket,
  relayOn,
  type RelayServer,
  StunServer,
  Traversal,
} from "../nat/mod.ts";
import { formatUrl, type PeerSession, RequestRegistry } from "../peer/mod.ts";
import { Permissions } from "../policy/mod.ts";
import { bindProblem, type CloseInfo, PEER_REJECTED, QuicEndpoint } from "../quic/mod.ts";
import { lineLog, type Log, monoNow, SILENT, VERSION, withTimeout } from "../util/mod.ts";
import { type NodeConfig, type NodeConfigInput, withDefaults } from "./config.ts";
import { nodeCredentials } from "./credentials.ts";
import { RUNTIME } from "./defaults.ts";
import { NodeError, StartError } from "./errors.ts";
import { DhtGlue } from "./dht.ts";
import { HoldDowns } from "./holddown.ts";
import { Bus, type BusLink, describe } from "./links.ts";
import { MembershipGlue, membershipSigner } from "./membership.ts";
import { OverlayGlue } from "./overlay.ts";
import { registerRequests } from "./requests.ts";
import { crlSource, Revocation, type RevocationHost } from "./revocation.ts";
import { RouteTable } from "./routes.ts";
import { Seeds } from "./seeds.ts";
import { Sessions } from "./sessions.ts";
import {
  aliveElsewhere,
  checkIdentity,
  checkListen,
  listenAddress,
  lockDataDir,
} from "./startup.ts";
import { interestOf, type NodeSnapshot, snapshotOf } from "./snapshot.ts";
import { type Admin, startAdmin, startTracing, type Tracing } from "../observe/mod.ts";

export { PROTOCOL_VIOLATION } from "./links.ts";
export { DUPLICATE_ROUTE } from "./routes.ts";
export type { InterestSnapshot, NodeSnapshot } from "./snapshot.ts";

/**
 * The endpoint's `checkPeer`: the certificate chain verified, then a client certificate that is
 * held down (lib/node/holddown.ts) refused with the time it has left, before it costs a session.
 */
function heldDownOrChecked(
  verifier: Verifier,
  holdDowns: HoldDowns,
  refused: RefusedPeers,
  log: Log,
): (
  chain: Uint8Array[],
  conn: { context: unknown; remote: { host: string; port: number } },
) => Promise<void> {
  const check = verifier.checkPeer();
  return async (chain, conn) => {
    try {
      await check(chain, conn);
      const peer = conn.context as PeerIdentity;
      if (peer.role !== "client") return;
      const why = holdDowns.check(peer.nodeId, monoNow());
      if (why !== null) throw new HeldDown(why);
    } catch (e) {
      // Why a peer was refused, counted by cause and logged once per cause per interval.
      const cause = e instanceof IdentityError
        ? e.code
        : e instanceof HeldDown
        ? "held-down"
        : "other";
      refused.set(cause, (refused.get(cause) ?? 0) + 1);
      log.warn(
        "peer.refused",
        `refused a peer at ${conn.remote.host}:${conn.remote.port}: ${(e as Error).message}`,
        { cause, remote: `${conn.remote.host}:${conn.remote.port}` },
      );
      throw e;
    }
  };
}

/**
 * An incoming handshake that did not finish: TLS refused the peer's certificate (an unknown CA:
 * `TLS alert unknown_ca`), or the peer went silent. Refusals by `checkPeer` are logged there.
 */
function handshakeFailed(
  remote: { host: string; port: number },
  info: CloseInfo,
  refused: RefusedPeers,
  log: Log,
): void {
  if (info.app && info.code === PEER_REJECTED) return;
  const alert = /TLS alert (\w+)/.exec(info.message)?.[1];
  const cause = alert
    ? alert.replaceAll("_", "-")
    : info.initiator === "idle"
    ? "handshake-timeout"
    : "handshake";
  refused.set(cause, (refused.get(cause) ?? 0) + 1);
  const text = `refused a peer at ${remote.host}:${remote.port}: ${info.message}`;
  const fields = { cause, remote: `${remote.host}:${remote.port}` };
  // A silent handshake is what any port scan makes: counted, logged only at debug.
  if (alert) log.warn("peer.refused", text, fields);
  else log.debug("handshake.failed", text, fields);
}

/** A client certificate refused while it is held down. */
class HeldDown extends NodeError {}

/** Peers refused at the handshake, by cause (`IdentityError` codes, `held-down`). */
export type RefusedPeers = Map<string, number>;

/** The address a node of `config` is reached at, listening on `port`. */
function urlOf(config: NodeConfig, port: number): string {
  if (config.advertise) return config.advertise;
  let host = config.listen.host;
  if (host === "0.0.0.0") host = "127.0.0.1";
  if (host === "::") host = "::1";
  return formatUrl(host, port);
}

/** What `Node.start` takes: a configuration (defaults for what is left out) and hooks. */
export interface NodeStartOptions extends NodeConfigInput {
  /**
   * Where the node reports what it does: a `Log` (lib/util/log.ts: levels, events, fields), or
   * a function taking each line's text. Default: nowhere.
   */
  log?: Log | ((line: string) => void);
  /** Outbound bytes queued per link before messages to it are dropped. Default 64 MiB (as NATS). */
  maxBacklog?: number;
}

/** A running node. */
export class Node {
  /** SWIM + Lifeguard membership of this node's realm (docs/membership.md). */
  readonly membership: MembershipGlue;
  /** The realm's Kademlia DHT on this node (dht.ts, docs/dht.md): `put`, `get`, `findNode`. */
  readonly dht: DhtGlue;
  /** Which members this node keeps routes to (docs/overlay.md). */
  readonly overlay: Overlay;
  /** Reaching nodes by id: direct, punched, relayed (docs/nat-traversal.md). */
  readonly traversal: Traversal;
  /** The relay role, when `relay.enabled` (docs/nat-traversal.md, "Relays"). */
  readonly relay: RelayServer | null;
  /** The STUN server on the QUIC port. */
  readonly stun: StunServer;
  /** Hole-punching probes that arrived (they open NAT state; nothing else to do with them). */
  punchProbesSeen = 0;
  /** The realm's CRLs: loaded, reloaded, spread, enforced (revocation.ts). */
  readonly revocation: Revocation;
  /** Releases the data directory's lock (at stop). */
  #release: () => void = () => {};
  /** What clients may do (config `permissions`; replaced by `reload`). */
  #permissions: Permissions;
  readonly #registry: RequestRegistry;
  readonly #bus: Bus;
  readonly #routes: RouteTable;
  readonly #sessions: Sessions;
  readonly #overlay: OverlayGlue;
  readonly #seeds: Seeds;
  readonly #relaySweep: ReturnType<typeof setInterval> | undefined;
  #reachTimer: ReturnType<typeof setTimeout> | undefined;
  #stopping = false;
  /** The admin listener, when `admin` is configured. */
  #admin: Admin | null = null;
  /** The OTLP export, when `trace` is configured. */
  #tracing: Tracing | null = null;
  /** When the node started (monotonic ms), for its uptime. */
  readonly #startedAt = monoNow();
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
    /** Where the node says what it does. */
    readonly log: Log,
    readonly maxBacklog: number,
    revocation: Revocation,
    revocationHost: RevocationHost,
    /** Signs this node's membership records (its node key). */
    signer: RecordSigner,
    /** This node's certificate chain (DER), shown to members that ask for it. */
    ownChain: Uint8Array[],
    /** Signs this node's interest records, and checks other nodes' (lib/node/interest.ts). */
    interest: { signer: InterestSigner; verify: InterestVerifier },
    /** Client certificates refused for a while after misbehaving (checked at the handshake). */
    readonly holdDowns: HoldDowns,
    /** Peers refused at the handshake, by cause. */
    private readonly refusedPeers: RefusedPeers,
  ) {
    this.revocation = revocation;
    revocationHost.sessions = () => this.#sessions.all();
    revocationHost.routes = () => this.#routes.sessions();
    const stopping = () => this.#stopping;
    this.#permissions = new Permissions(config.permissions);
    // Who may ask what (docs/security.md, "Requests"): nodes anything, operators the operators'
    // methods, every other client only what is open to anyone.
    const registry = new RequestRegistry((access, peer, method) => {
      if (access === "anyone" || peer.role === "node") return null;
      if (access === "operators" && this.#permissions.isOperator(peer)) return null;
      return access === "nodes"
        ? `${method} is for peer nodes only (this certificate is a ${peer.role}'s)`
        : `${method} is for operators only (this certificate is not in group ${this.#permissions.config.operatorGroup})`;
    }, (s, why) => this.#misbehaved(s, why));
    this.#registry = registry;
    this.#routes = new RouteTable({
      nodeId,
      relayed: (s) => this.traversal.pathOf(s) === "relayed",
      replace: (old) => this.#bus.detach(old, true),
    });
    this.#bus = new Bus(config.limits, maxBacklog, nodeId, {
      admit: (link) => this.#routes.admit(link),
      attached: (link) => this.#attached(link),
      detached: (link, replaced) => this.#detached(link, replaced),
      authorize: (link, op, subject, queue) => {
        const d = this.#permissions.check(link.session.peer, op, subject, queue);
        return d ? d.message : null;
      },
      misbehaved: (s, why) => this.#misbehaved(s, why),
      reach: async (id) => {
        const r = await this.traversal.connect(id);
        return r.path === "relayed" ? undefined : r.session;
      },
      log,
    }, {
      realm: config.realm,
      shortcuts: { max: config.overlay.shortcuts },
      signer: interest.signer,
      verify: interest.verify,
      // Records of members only: a node that is not (yet, or any more) one is not routed to.
      admit: (origin) => {
        const i = this.membership.dir.indexOf(origin);
        const st = i === undefined ? "unknown" : this.membership.core.stateOf(i);
        return st === "alive" || st === "suspect";
      },
    });
    this.#sessions = new Sessions({
      self: { nodeId, realm: config.realm },
      endpoint,
      registry,
      maxPayload: config.limits.maxPayload,
      stopping,
      opened: (s) => {
        // Verified before a CRL that arrived during its handshake: closed now.
        if (this.revocation.enforce(s)) return;
        // Membership and traversal are between nodes: a client's session takes no part.
        if (s.peer.role !== "node") return;
        this.membership.attach(s);
        this.traversal.sessionOpened(s);
      },
      closed: (s) => this.#bus.closed(s),
      onChannel: (name, bodies, s) => void this.#bus.onChannel(name, bodies, s),
      connect: (id) => this.traversal.connect(id),
      log,
    });
    const { maxSessions, ...swim } = config.membership;
    this.membership = new MembershipGlue({
      id: nodeId,
      addr: this.url,
      meta: { realm: config.realm, tags: config.tags, version: VERSION },
      seeds: config.join.map((s) => formatUrl(s.host, s.port)),
      config: swim,
      signer,
      certs: { own: ownChain, verify: (chain) => revocationHost.verifier.verify(chain) },
      maxSessions,
      log,
      // A member behind a NAT is reached over the session this node has with it (punched or
      // relayed), if any: its advertised address may be one only its LAN can dial. When the
      // address does not answer, the node reaches the member by id in the background, so later
      // messages have a session.
      dial: (addr) => {
        // Only when one member has that address (private addresses repeat across LANs).
        const at = this.membership.dir.entries.filter((x) => x.addr === addr);
        const e = at.length === 1 ? at[0] : undefined;
        const open = e ? this.traversal.openSessionTo(e.id) : undefined;
        if (open) return Promise.resolve(open);
        const p = this.#sessions.dial(addr);
        if (e) p.catch(() => this.#sessions.reachLater(e.id));
        return p;
      },
      // Routes, clients, and what traversal made (the pool did not dial those).
      isPinned: (s) =>
        this.#bus.linkOf(s) !== undefined || this.#bus.shortcutOf(s) !== undefined ||
        this.traversal.pathOf(s) !== "direct",
      onEvent: (e, m) => {
        this.#changed();
        if (e.kind === "alive" || e.kind === "dead" || e.kind === "left") {
          log.info(
            `member.${e.kind === "alive" ? "up" : e.kind}`,
            `member ${e.kind === "alive" ? "up" : e.kind}: ${m.id.slice(0, 12)}… ${m.addr}`,
            { peer: m.id, addr: m.addr },
          );
          this.#overlay.memberChanged(e.kind, m.id, m.addr);
          if (e.kind === "alive") this.#bus.router.memberUp(m.id);
          else this.#bus.router.memberDown(m.id, monoNow());
          if (e.kind !== "alive") this.dht.memberGone(nodeIdFromText(m.id));
          this.#bus.flush();
        }
      },
    });
    this.dht = new DhtGlue({
      id: nodeIdFromText(nodeId),
      addr: this.url,
      realm: config.realm,
      // `auto`: a server until a reachability check finds that others cannot dial this node
      // (#checkReach; docs/dht.md, "Client mode").
      mode: config.dht.mode === "client" ? "client" : "server",
      signer: interest.signer,
      verify: (publisher, pub, bytes, sig) =>
        interest.verify(nodeIdText(publisher), pub, bytes, sig),
      addressOf: (id) => {
        const i = this.membership.dir.indexOf(nodeIdText(id));
        if (i === undefined || this.membership.core.stateOf(i) !== "alive") return null;
        return this.membership.dir.entries[i]!.addr || null;
      },
      members: (n) => {
        const out: { id: Uint8Array; addr: string }[] = [];
        for (const e of this.membership.dir.entries) {
          if (out.length >= n) break;
          if (e.id === nodeId || e.addr === "") continue;
          const i = this.membership.dir.indexOf(e.id);
          if (i === undefined || this.membership.core.stateOf(i) !== "alive") continue;
          out.push({ id: nodeIdFromText(e.id), addr: e.addr });
        }
        return out;
      },
      session: (addr) => this.membership.sessionTo(addr),
      log,
    });
    this.relay = config.relay.enabled
      ? relayOn(endpoint, {
        ...config.relay,
        idleMs: RUNTIME.relayIdleMs,
        unusedMs: RUNTIME.relayUnusedMs,
      })
      : null;
    this.traversal = new Traversal({
      nodeId,
      endpoint,
      sessions: () => this.#sessions.all(),
      relay: this.relay,
      upgradeAfterMs: config.relay.upgradeAfterMs,
      log,
      rendezvous: () => this.#routes.sessions(),
      // A rendezvous introduces a new node before gossip brings it: learn it from the rendezvous
      // (1 s at most; the introduction's own deadline is 2 s).
      isMember: (id, via) => this.membership.learn(id, via, 1000),
      addressOf: (id) => {
        const i = this.membership.dir.indexOf(id);
        if (i === undefined || this.membership.core.stateOf(i) !== "alive") return undefined;
        return this.membership.dir.entries[i]!.addr;
      },
      dial: (addr, ms) => {
        const p = this.#sessions.dial(addr);
        return withTimeout(p, ms, () => new NodeError(`dialing ${addr}: no answer within ${ms} ms`))
          .catch((e) => {
            // Given up on: a session that comes up later is closed, not left open unused.
            p.then((s) => void s.close("dial gave up"), () => {});
            throw e;
          });
      },
      adopt: (conn) => this.#sessions.adopt(conn),
    });
    // The QUIC port also answers STUN Binding requests (RFC 8489: netcheck and peers learn their
    // public address from any node), takes hole-punching probes (counted, dropped), and carries
    // relayed packets: for the relay role, or for this node's own relayed sessions.
    this.stun = new StunServer({
      primary: endpoint,
      onOther: (data, host, port) => {
        if (isPunch(data)) this.punchProbesSeen++;
        else if (isRelayPacket(data)) {
          if (this.relay?.onPacket(data, host, port)) return;
          if (!this.traversal.tunnels.onPacket(data, host, port)) {
            this.traversal.stats.relayPacketsUnknown++;
          }
        }
      },
    });
    this.#overlay = new OverlayGlue({
      nodeId,
      routes: this.#routes,
      stopping,
      connect: (id) => this.traversal.connect(id),
      route: async (s) => this.#bus.linkOf(s) ?? await this.#bus.open(s, "node", true),
      retire: (link, reason) => this.#bus.retire(link, reason),
      gone: (id) => this.#gone(id),
      log,
    }, config.overlay.k);
    this.overlay = this.#overlay.core;
    revocation.register(registry);
    revocation.watch();
    registerRequests(registry, {
      traversal: this.traversal,
      membership: this.membership,
      snapshot: () => this.snapshot(),
      hasSession: (id) =>
        [...this.#sessions.all()].some((s) => s.conn.isOpen && s.peer.nodeId === id),
      interest: () => interestOf(this.nodeId, this.#bus),
      dht: this.dht,
    });
    if (this.relay) {
      const relay = this.relay;
      this.#relaySweep = setInterval(() => relay.sweep(), RUNTIME.relaySweepMs);
      (this.#relaySweep as { unref?: () => void }).unref?.();
    }
    // Spread over 3 s: nodes started together do not all ask their seed at once.
    if (config.dht.mode === "auto") {
      this.#reachLater(RUNTIME.reachCheckFirstMs + 3000 * Math.random());
    } else this.dht.reachability = "fixed";
    this.#sessions.acceptLoop();
    this.#seeds = new Seeds({
      routes: this.#routes,
      stopping,
      dial: (seed) => this.#sessions.dialAt(seed),
      route: (s) => this.#bus.open(s, "node", true, true),
      log,
    }, config.join);
  }

  /** The next reachability check in `ms` (dht.mode auto). */
  #reachLater(ms: number): void {
    if (this.#stopping) return;
    this.#reachTimer = setTimeout(() => void this.#checkReach(), ms);
    (this.#reachTimer as { unref?: () => void }).unref?.();
  }

  /**
   * Whether other nodes can dial this one at its address (peers dial it back on a new
   * connection): the DHT runs as a client when they cannot. Again every `reachCheckEveryMs`, sooner
   * while nothing is known (no peer yet, or none answered).
   */
  async #checkReach(): Promise<void> {
    let r: "reachable" | "unreachable" | "unknown" = "unknown";
    try {
      r = await this.traversal.reachability();
    } catch (e) {
      this.log.debug("dht.reach", `reachability check failed: ${(e as Error).message}`);
    }
    if (this.#stopping) return;
    this.dht.reached(r);
    this.#reachLater(r === "unknown" ? RUNTIME.reachCheckRetryMs : RUNTIME.reachCheckEveryMs);
  }

  /** Starts a node: credentials, endpoint, seeds. Resolves once it listens. */
  static async start(o: NodeStartOptions = {}): Promise<Node> {
    const config = withDefaults(o);
    const log = typeof o.log === "function" ? lineLog(o.log) : o.log ?? SILENT;
    // A start that fails leaves nothing behind: the lock goes, and a data directory this start
    // made goes with it (docs/security.md, "Starting a node").
    const existed = existsSync(config.dataDir);
    const release = lockDataDir(config.dataDir, log);
    const undo = () => {
      release();
      if (!existed) rmSync(config.dataDir, { recursive: true, force: true });
    };
    let endpoint: QuicEndpoint | undefined;
    let node: Node | undefined;
    try {
      const bindHost = await listenAddress(config.listen.host, config.listen.port);
      if (config.listen.port !== 0) await checkListen(bindHost, config.listen.port);
      const creds = await nodeCredentials(config);
      const where = config.tls ?? {
        ca: `${creds.caDir}/ca.pem`,
        cert: `${config.dataDir}/node/node.crt`,
        key: `${config.dataDir}/node/node.key`,
      };
      const me = await checkIdentity(creds, config.realm, where, log);
      for (const c of creds.created) log.info("credentials.created", `created ${c}`);
      const verifier = await Verifier.create({ ca: creds.ca, realm: config.realm });
      // The node's sessions and routes are filled in once it exists (nothing is open before).
      const revocationHost: RevocationHost = {
        verifier,
        dataDir: config.dataDir,
        ...crlSource(config.tls?.crl, creds.caDir),
        sessions: () => [],
        routes: () => [],
        log,
      };
      const revocation = await Revocation.start(revocationHost);
      const holdDowns = new HoldDowns();
      const refusedPeers: RefusedPeers = new Map();
      const nodeId = me.nodeId;
      try {
        endpoint = await QuicEndpoint.bind({
          host: bindHost,
          port: config.listen.port,
          tls: { ca: creds.ca, cert: creds.cert, key: creds.key },
          checkPeer: heldDownOrChecked(verifier, holdDowns, refusedPeers, log),
          onHandshakeFailed: (c, info) => handshakeFailed(c.remote, info, refusedPeers, log),
          idleTimeoutMs: config.quic.idleTimeoutMs,
          keepAliveMs: config.quic.keepAliveMs,
        });
      } catch (e) {
        const cause = (e as Error).cause ?? e;
        throw new NodeError(bindProblem(config.listen.host, config.listen.port, cause), {
          cause: e,
        });
      }
      const url = urlOf(config, endpoint.address.port);
      if (config.join.length > 0) {
        const other = await aliveElsewhere(
          endpoint,
          { nodeId, realm: config.realm },
          url,
          config.join,
        );
        if (other) {
          throw new StartError(
            `node ${nodeId} is already alive in the mesh at ${other} (this one would be ${url}): one certificate runs on one node; stop the other, or issue this node a certificate of its own`,
          );
        }
      }
      node = new Node(
        config,
        endpoint,
        nodeId,
        creds.caDir,
        creds.credsDir,
        log,
        o.maxBacklog ?? RUNTIME.maxBacklog,
        revocation,
        revocationHost,
        membershipSigner(creds.key),
        derChainOf(creds.cert),
        { signer: interestSigner(creds.key), verify: interestVerifier() },
        holdDowns,
        refusedPeers,
      );
      node.#release = release;
      if (config.admin) {
        // /metrics, /healthz, /readyz and the topology page (docs/operations.md).
        try {
          node.#admin = await startAdmin(node, config.admin);
        } catch (e) {
          throw new NodeError((e as Error).message, { cause: e });
        }
        node.router.observer = node.#admin.metrics;
      }
      if (config.trace) {
        // Spans of what arrives traced, exported over OTLP/HTTP (docs/tracing.md).
        node.#tracing = startTracing({ otlp: config.trace.otlp, nodeId, realm: config.realm });
        node.router.tracer = node.#tracing.tracer;
      }
      return node;
    } catch (e) {
      // A node that exists already runs timers and loops: its own stop ends them.
      if (node) await node.stop("start failed").catch(() => {});
      await endpoint?.close("start failed");
      undo();
      throw e;
    }
  }

  /**
   * The admin listener's address (`http://127.0.0.1:9433`), or null when `admin` is off.
   */
  get adminUrl(): string | null {
    return this.#admin?.url ?? null;
  }

  /**
   * The address clients and nodes dial: `advertise`, else `quic://host:port` of the listen
   * address (loopback when bound to any).
   */
  get url(): string {
    return urlOf(this.config, this.endpoint.address.port);
  }

  /** The message router (lib/messaging) of this node. */
  get router(): Router<BusLink> {
    return this.#bus.router;
  }

  /** Messages dropped because a link was backed up. */
  get dropped(): { messages: number; forwards: number; closedBackedUp: number; shed: number } {
    return this.#bus.dropped;
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
    return this.#routes.peers();
  }

  /**
   * Lets the route to `peer` go as the overlay does when it no longer wants it: without loss,
   * drained, then closed (docs/routing.md, "Letting a route go"). False when there is no route.
   */
  retireRoute(peer: string): boolean {
    const link = this.#routes.get(peer);
    if (!link) return false;
    this.#bus.retire(link, "let go by this node");
    return true;
  }

  snapshot(): NodeSnapshot {
    return snapshotOf({
      nodeId: this.nodeId,
      url: this.url,
      config: this.config,
      bus: this.#bus,
      routes: this.#routes,
      sessions: this.#sessions.all(),
      traversal: this.traversal,
      relay: this.relay,
      membership: this.membership,
      refusedRequests: this.#registry.refused,
      requestFloods: this.#registry.sessionsClosed,
      refusedPeers: this.refusedPeers,
      refusedSessions: this.#sessions.refused,
      startedAt: this.#startedAt,
      tracing: this.#tracing?.stats() ?? null,
      holdDowns: this.holdDowns.stats(monoNow()),
      crl: { ...this.revocation.snapshot(), closedExpired: this.#sessions.expired },
    });
  }

  /** This node closes `s` for misbehaving: a client's certificate is held down (holddown.ts). */
  #misbehaved(s: PeerSession, why: string): void {
    if (s.peer.role !== "client") return;
    this.holdDowns.strike(s.peer.nodeId, why.slice(0, 100), monoNow());
  }

  /** The permissions clients are held to now. */
  get permissions(): Permissions {
    return this.#permissions;
  }

  /**
   * Applies what can change while running (SIGHUP: `macula node up` reads its config file again):
   * the permissions — later operations follow them, and subscriptions and registrations they no
   * longer allow are withdrawn, their clients told; the tags, announced to the realm at a new
   * incarnation; the CRL (tls.crl) read again. Returns a line per change for the log; keys
   * that need a restart are named, not applied.
   */
  async reload(fresh: NodeConfig): Promise<string[]> {
    const lines: string[] = [];
    if (JSON.stringify(fresh.permissions) !== JSON.stringify(this.#permissions.config)) {
      this.#permissions = new Permissions(fresh.permissions);
      const withdrawn = this.router.reauthorize();
      this.#bus.flush();
      lines.push(
        `permissions reloaded: ${
          Object.keys(fresh.permissions.groups).length
        } groups, default ${fresh.permissions.default}; ${withdrawn} subscriptions or registrations withdrawn`,
      );
    }
    if (JSON.stringify(fresh.tags) !== JSON.stringify(this.config.tags)) {
      const meta = { realm: this.config.realm, tags: fresh.tags, version: VERSION };
      if (this.membership.setMeta(meta)) {
        this.config.tags = fresh.tags;
        lines.push(`tags reloaded: ${fresh.tags.length > 0 ? fresh.tags.join(", ") : "none"}`);
      }
    }
    // `log` is applied by whoever made the node's Log (macula node up); the rest needs a restart.
    const live: (keyof NodeConfig)[] = ["permissions", "tags", "log"];
    const restart = (Object.keys(fresh) as (keyof NodeConfig)[]).filter((k) =>
      !live.includes(k) && JSON.stringify(fresh[k]) !== JSON.stringify(this.config[k])
    );
    if (fresh.tls?.crl) lines.push(await this.revocation.reload());
    if (restart.length > 0) lines.push(`changed, needs a restart: ${restart.join(", ")}`);
    if (lines.length === 0) lines.push("reloaded: nothing changed");
    return lines;
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

  /** Drains and stops: GOAWAY to every peer, queued frames flushed (up to 2 s), endpoint closed. */
  async stop(reason = "node shutting down"): Promise<void> {
    if (this.#stopping) return;
    this.membership.leave(); // others learn "left" now, not by timing out
    this.#stopping = true;
    clearInterval(this.#relaySweep);
    clearTimeout(this.#reachTimer);
    this.revocation.stop();
    this.dht.stop();
    this.#overlay.stop();
    this.traversal.stop();
    this.#seeds.wake();
    this.#bus.stop();
    // Let queued frames reach QUIC, then say goodbye.
    const deadline = monoNow() + RUNTIME.drainMs;
    for (let i = 0; i < 200 && this.#bus.backlog() > 0 && monoNow() < deadline; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    await Promise.allSettled([...this.#sessions.all()].map((s) => s.close(reason)));
    await this.endpoint.close(reason);
    await this.#seeds.stop();
    await this.#tracing?.shutdown();
    await this.#admin?.close();
    this.#release();
    this.log.info("node.stopped", `stopped: ${reason}`);
  }

  /** Installs SIGINT/SIGTERM handlers that stop the node; returns a remover. */
  stopOnSignals(onStopped: () => void = () => process.exit(0)): () => void {
    const handler = (sig: string) => {
      this.log.info("node.draining", `${sig}: draining`);
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

  /** A link is on the bus: a route tells the overlay, the log and the waiters. */
  #attached(link: BusLink): void {
    if (link.kind !== "node") return;
    const s = link.session;
    this.#overlay.routeUp(s.peer.nodeId, link.dialed);
    this.revocation.routeUp(s);
    const via = this.traversal.viaOf(s);
    this.log.info(
      "route.up",
      `route up: ${describe(s)} (${link.dialed ? "dialed" : "accepted"}, ${
        this.traversal.pathOf(s)
      }${via ? ` via ${via.slice(0, 12)}…` : ""})`,
    );
    this.#changed();
  }

  /**
   * A link left the bus. A route `replaced` by another route to the same peer stays up as far as
   * the overlay is concerned (telling it "down" would make it avoid that peer).
   */
  #detached(link: BusLink, replaced: boolean): void {
    if (link.kind !== "node" || !this.#routes.remove(link)) return;
    if (!replaced) this.#overlay.routeDown(link.session.peer.nodeId);
    if (!this.#stopping) {
      const why = replaced
        ? "replaced by another route"
        : link.session.conn.closeInfo?.message ?? "detached";
      this.log.info("route.down", `route down: ${describe(link.session)} (${why})`, {
        peer: link.session.peer.nodeId,
        cause: why,
      });
    }
  }

  /** True when membership holds `id` dead or left. */
  #gone(id: string): boolean {
    const i = this.membership.dir.indexOf(id);
    const st = i === undefined ? "unknown" : this.membership.core.stateOf(i);
    return st === "dead" || st === "left";
  }

  /** A route or a member changed: the waiters check their conditions. */
  #changed(): void {
    for (const w of [...this.#watch]) w();
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
        reject(new NodeError(`node ${this.url}: ${state()} after ${timeoutMs} ms`));
      }, timeoutMs);
      this.#watch.add(check);
    });
  }
}
