/**
 * A node's state as `macula inspect node` shows it (and tests read it): built from the plain
 * snapshots and counters of the layers the node composes.
 */
import type { HoldDownStats } from "./holddown.ts";
import type { MembershipCounters, MembershipGlue } from "./membership.ts";
import type {
  PathKind,
  RelayAllocationInfo,
  RelayServer,
  RelayStats,
  Traversal,
} from "../nat/mod.ts";
import type { OriginSnapshot, RouterStats } from "../messaging/mod.ts";
import { formatUrl, type PeerSession } from "../peer/mod.ts";
import type { TracingStats } from "../observe/mod.ts";
import { monoNow, VERSION } from "../util/mod.ts";
import type { NodeConfig } from "./config.ts";
import type { Bus, Dropped } from "./links.ts";
import type { Revocation } from "./revocation.ts";
import type { RouteTable } from "./routes.ts";

/** A node's state for `macula inspect` and tests. */
export interface NodeSnapshot {
  nodeId: string;
  realm: string;
  url: string;
  /** Macula's version on this node. */
  version: string;
  /** How long the node has run (ms). */
  uptimeMs: number;
  clients: number;
  /**
   * Every open session: a route, a client, a shortcut, or a plain session (membership, …); its path (for a
   * relayed one, `via` is the relay and `remote` the tunnel), where the peer is, the current RTT.
   */
  peers: {
    nodeId: string;
    role: "route" | "client" | "shortcut" | "session";
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
  /** Messages dropped: a link backed up, the node's budget, or a route that died (`lostInRoute`). */
  dropped: Dropped;
  /**
   * Routes this node let go (the overlay no longer wanted them): `clean` once both ends had
   * drained, `cut` at the bound (docs/routing.md, "Letting a route go"); `draining` now: the
   * peer has answered, calls over the route are still in flight.
   */
  retired: { clean: number; cut: number; draining: number };
  /**
   * Shortcuts (docs/routing.md, "Shortcuts"): attached now (this node's and its peers'), dials
   * made and failed (no session, or only a relayed one), and peers' past this node's bound (let
   * go at once). Opened, closed and FWDs over them: `router.shortcuts…`, `router.viaShortcut`.
   */
  shortcuts: { open: number; dialed: number; failed: number; refused: number };
  /**
   * Refusals of what a certificate does not allow (docs/security.md): bus operations refused by
   * the permissions (also `router.denied`), sessions closed for opening a channel of nodes,
   * requests refused by method.
   */
  refused: {
    operations: number;
    channels: number;
    requests: Record<string, number>;
    /** Sessions closed for a malformed or misplaced bus frame, by frame. */
    frames: Record<string, number>;
    /** Sessions closed for too many refused requests (lib/peer `RequestRegistry.REFUSALS`). */
    requestFloods: number;
    /**
     * Peers refused at the handshake, by cause: `unknown-ca`, `wrong-realm`, `revoked`,
     * `expired`, … (lib/identity `IdentityError` codes), `held-down`.
     */
    peers: Record<string, number>;
    /** Connections whose session handshake failed after TLS (not a Macula peer, or too slow). */
    sessions: number;
    /**
     * Client certificates held down after one of their sessions was closed for misbehaving
     * (lib/node/holddown.ts): held now, strikes so far, sessions refused meanwhile.
     */
    heldDown: HoldDownStats;
  };
  /** The CRLs held (per CA: number, how many revoked), where the latest came from, counters. */
  crl: ReturnType<Revocation["snapshot"]> & { closedExpired: number };
  /** Members of the realm this node knows, by state (itself included). */
  members: Record<"alive" | "suspect" | "dead" | "left", number>;
  /**
   * Membership's counters (docs/membership.md, "Counters"): what was refused and why (malformed,
   * forged, refused by a bound, stale and never-signed claims, ping-reqs toward nobody), handler
   * failures, signatures checked and made, and the protocol's own (probes, suspicions, …).
   */
  membership: MembershipCounters;
  /** The OTLP export of spans (`trace` configured), or null: spans exported, dropped, pending. */
  tracing: TracingStats | null;
}

/** What a snapshot is made of. */
export interface SnapshotParts {
  nodeId: string;
  url: string;
  config: NodeConfig;
  bus: Bus;
  routes: RouteTable;
  sessions: Iterable<PeerSession>;
  traversal: Traversal;
  relay: RelayServer | null;
  membership: MembershipGlue;
  /** Requests refused by the access check, by method. */
  refusedRequests: ReadonlyMap<string, number>;
  /** Sessions closed for too many refused requests. */
  requestFloods: number;
  /** Peers refused at the handshake, by cause. */
  refusedPeers: ReadonlyMap<string, number>;
  /** Session handshakes that failed after TLS. */
  refusedSessions: number;
  holdDowns: HoldDownStats;
  /** The realm's CRLs as this node holds them (revocation.ts). */
  crl: NodeSnapshot["crl"];
  /** When the node started (monotonic ms). */
  startedAt: number;
  tracing: NodeSnapshot["tracing"];
}

/** The node's snapshot now. */
export function snapshotOf(p: SnapshotParts): NodeSnapshot {
  const r = p.bus.router.snapshot();
  const pathInfo = (s: PeerSession) => {
    const via = p.traversal.viaOf(s);
    return {
      path: p.traversal.pathOf(s),
      ...(via ? { via } : {}),
      remote: formatUrl(s.conn.remote.host, s.conn.remote.port).replace("quic://", ""),
      rttMs: s.conn.stats().rttMs,
    };
  };
  const members = { alive: 0, suspect: 0, dead: 0, left: 0 };
  for (const m of p.membership.core.members()) if (m.state !== "unknown") members[m.state]++;
  const relay = p.config.relay;
  return {
    nodeId: p.nodeId,
    realm: p.config.realm,
    url: p.url,
    version: VERSION,
    uptimeMs: Math.round(monoNow() - p.startedAt),
    clients: r.links.clients,
    routes: [...p.routes.values()].map((l) => ({
      nodeId: l.session.peer.nodeId,
      name: l.session.peer.name,
      dialed: l.dialed,
      ...pathInfo(l.session),
    })),
    peers: [...p.sessions].filter((x) => x.conn.isOpen).map((x) => {
      const link = p.bus.linkOf(x);
      return {
        nodeId: x.peer.nodeId,
        role: link
          ? (link.kind === "client" ? "client" as const : "route" as const)
          : p.bus.shortcutOf(x)
          ? "shortcut" as const
          : "session" as const,
        ...pathInfo(x),
      };
    }),
    relay: p.relay
      ? {
        ...p.relay.stats,
        limits: {
          maxSessions: relay.maxSessions,
          sessionsPerPeer: relay.sessionsPerPeer,
          bytesPerSecond: relay.bytesPerSecond,
          burstBytes: relay.burstBytes,
        },
        sessions: p.relay.allocations(),
      }
      : null,
    traversal: { ...p.traversal.stats, tunnels: p.traversal.tunnels.size },
    subscriptions: r.subscriptions,
    remoteInterest: r.remoteInterest,
    procedures: r.procedures,
    pendingCalls: r.pendingCalls,
    router: r.stats,
    dropped: { ...p.bus.dropped },
    retired: { ...p.bus.retired, draining: p.bus.draining },
    shortcuts: {
      open: r.shortcuts,
      dialed: p.bus.shortcutDials.made,
      failed: p.bus.shortcutDials.failed,
      refused: p.bus.refusedShortcuts,
    },
    refused: {
      operations: r.stats.denied,
      channels: p.bus.refusedChannels,
      requests: Object.fromEntries(p.refusedRequests),
      frames: Object.fromEntries(p.bus.malformed),
      requestFloods: p.requestFloods,
      peers: Object.fromEntries(p.refusedPeers),
      sessions: p.refusedSessions,
      heldDown: p.holdDowns,
    },
    crl: p.crl,
    members,
    membership: p.membership.counters(),
    tracing: p.tracing,
  };
}

/** What `macula inspect interest` shows: this node's record and every origin's it holds. */
export interface InterestSnapshot {
  nodeId: string;
  /** Own record first, then the origins, nearest first (by RTT sum). */
  origins: OriginSnapshot[];
  /** Routing counters (also in `inspect node` → `router`). */
  counters: Pick<
    RouterStats,
    | "records"
    | "interestIn"
    | "interestOut"
    | "forgedRecords"
    | "refusedRecords"
    | "interestOverflow"
    | "noRoute"
    | "hopLimit"
  >;
}

/** The interest snapshot of `bus`'s router; a link's peer is named by its node id. */
export function interestOf(nodeId: string, bus: Bus): InterestSnapshot {
  const r = bus.router;
  const [own, ...rest] = r.interest((link) => link.session.peer.nodeId);
  rest.sort((a, b) => (a.path?.rttMs ?? Infinity) - (b.path?.rttMs ?? Infinity));
  const s = r.stats;
  return {
    nodeId,
    origins: [own!, ...rest],
    counters: {
      records: s.records,
      interestIn: s.interestIn,
      interestOut: s.interestOut,
      forgedRecords: s.forgedRecords,
      refusedRecords: s.refusedRecords,
      interestOverflow: s.interestOverflow,
      noRoute: s.noRoute,
      hopLimit: s.hopLimit,
    },
  };
}
