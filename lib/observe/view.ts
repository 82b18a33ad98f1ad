/**
 * What the admin listener reads of a running node. lib/observe sits below lib/node in the layer
 * order (docs/architecture.md), so it cannot name the `Node` class, not even as a type: this is
 * the part of a node's public surface it uses, written out structurally. A `Node` is an
 * `AdminNode` as it stands (the compiler checks it where the node starts its admin listener).
 */
import type { MembershipStats, OverlaySnapshot } from "../mesh/mod.ts";
import type { RouterStats } from "../messaging/mod.ts";
import type { PathKind, RelayStats, StunServerStats, Traversal } from "../nat/mod.ts";
import type { EndpointStats, EndpointTraffic } from "../quic/mod.ts";
import type { TracingStats } from "./trace.ts";

/** A member as the node's membership lists it (`macula inspect members`). */
export interface MemberRow {
  id: string;
  addr: string;
  state: "alive" | "suspect" | "dead" | "left" | "unknown";
  inc: number;
  meta: { tags: string[]; version: string };
  self: boolean;
  sinceMs: number;
  lastSeenMs: number | null;
}

/** The membership counters of `inspect node` (the glue's and the SWIM core's). */
export type MembershipCountersView = MembershipStats & {
  datagramsIn: number;
  datagramsOut: number;
  streamsIn: number;
  streamsOut: number;
  malformed: number;
  forged: number;
  forgedRecords: number;
  sessionsClosedForged: number;
  signaturesChecked: number;
  signaturesMade: number;
  handlerFailures: number;
  uncertified: number;
  certificatesChecked: number;
  unsent: number;
  sessionsClosedByPool: number;
  incarnation: number;
  awareness: number;
  directory: number;
};

/** An open session or a route as the snapshot lists it. */
export interface PathRow {
  nodeId: string;
  path: PathKind;
  via?: string;
  remote: string;
  rttMs: number;
}

/** The parts of `node.snapshot()` (lib/node/snapshot.ts) the admin listener reads. */
export interface SnapshotView {
  nodeId: string;
  realm: string;
  url: string;
  version?: string;
  uptimeMs?: number;
  clients: number;
  peers: (PathRow & { role: "route" | "client" | "shortcut" | "session" })[];
  routes: (PathRow & { name: string; dialed: boolean })[];
  relay: (RelayStats & { sessions: readonly unknown[] }) | null;
  traversal: Traversal["stats"] & { tunnels: number };
  subscriptions: number;
  remoteInterest: number;
  procedures: readonly string[];
  pendingCalls: number;
  router: RouterStats;
  dropped: {
    messages: number;
    forwards: number;
    closedBackedUp: number;
    shed: number;
    lostInRoute?: number;
  };
  retired: { clean: number; cut: number; draining: number };
  shortcuts: { open: number; dialed: number; failed: number; refused: number };
  refused: {
    operations: number;
    channels: number;
    requests: Record<string, number>;
    frames: Record<string, number>;
    requestFloods: number;
    peers: Record<string, number>;
    sessions: number;
    heldDown: { held: number; strikes: number; refused: number };
  };
  crl: {
    held: readonly { issuer: string; revoked: number }[];
    accepted: number;
    stale: number;
    refused: number;
    closedRevoked: number;
    closedExpired: number;
  };
  members: Record<"alive" | "suspect" | "dead" | "left", number>;
  membership: MembershipCountersView;
  tracing?: TracingStats | null;
}

/** The DHT's counters and sizes (lib/node/dht.ts `DhtGlue`, lib/mesh `Dht`). */
export interface DhtView {
  readonly stats: {
    forged: number;
    unsent: number;
    malformedAnswers: number;
    handlerFailures: number;
    bootstraps: number;
  };
  readonly core: {
    readonly stats: {
      requestsIn: number;
      requestsOut: number;
      answersIn: number;
      timeouts: number;
      limited: number;
      otherRealm: number;
      malformed: number;
      refusedRecords: Record<string, number>;
      badRecordsRead: number;
      lookups: number;
      refreshes: number;
      republishes: number;
      expired: number;
      leftAsClients: number;
    };
    readonly mode: "server" | "client";
    readonly table: { readonly size: number };
    readonly store: { readonly size: number };
    readonly running: number;
    published(): readonly unknown[];
  };
}

/** A QUIC connection as the admin listener reads it. */
export interface ConnectionView {
  readonly isOpen: boolean;
  readonly remote: { host: string; port: number };
  stats(): {
    rttMs: number;
    bytesSent: number;
    bytesReceived: number;
    packetsSent: number;
    packetsReceived: number;
  };
}

/** What the admin listener reads of a running node (a lib/node `Node` is one). */
export interface AdminNode {
  readonly nodeId: string;
  readonly realm: string;
  readonly url: string;
  /** False once the node is stopping. */
  readonly running: boolean;
  readonly config: {
    readonly realm: string;
    readonly dataDir: string;
    readonly join: readonly { host: string; port: number }[];
    readonly tls: { readonly cert: string } | null;
    readonly tags: readonly string[];
  };
  readonly endpoint: {
    readonly stats: EndpointStats;
    readonly traffic: EndpointTraffic;
    readonly connections: readonly ConnectionView[];
    readonly address: { host: string; port: number };
  };
  readonly membership: {
    members(): MemberRow[];
    readonly core: { readonly liveCount: number };
  };
  readonly dht: DhtView;
  readonly overlay: { snapshot(): OverlaySnapshot };
  readonly stun: { readonly stats: StunServerStats };
  /** Hole-punching probes that arrived. */
  readonly punchProbesSeen: number;
  /** Peer node ids with a live route. */
  readonly routes: readonly string[];
  snapshot(): SnapshotView;
}
