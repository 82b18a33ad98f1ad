/**
 * The node layer's defaults, in one place, each with its reason (as memberlist's
 * DefaultLANConfig does). `DEFAULTS` is the configuration a node runs on when nothing is set
 * (config file keys in docs/cli.md, "node up"); `RUNTIME` holds what is not configurable.
 * Defaults of the layers below are theirs: membership timing (lib/mesh `DEFAULT_CONFIG`), relay
 * quotas (lib/nat `RELAY_DEFAULTS`), QUIC (lib/quic).
 */
import { DEFAULT_CONFIG as MEMBERSHIP_DEFAULTS } from "../mesh/mod.ts";
import { DEFAULT_MAX_PAYLOAD, ROUTER_LIMITS } from "../messaging/mod.ts";
import { RELAY_DEFAULTS } from "../nat/mod.ts";
import { DEFAULT_PORT } from "../peer/mod.ts";
import { OPEN } from "../policy/mod.ts";
import type { NodeConfig } from "./config.ts";

/** The configuration of a node that was told nothing. */
export const DEFAULTS: NodeConfig = {
  // A development realm whose CA the node makes itself: `macula node up` works with no setup.
  realm: "dev",
  // Relative, so a node started in a fresh folder keeps its state there.
  dataDir: "./macula-data",
  // Every interface (reachable from the LAN), on Macula's port.
  listen: { host: "0.0.0.0", port: DEFAULT_PORT },
  join: [],
  tls: null,
  quic: {
    // A peer silent for 30 s is gone (three missed keep-alives).
    idleTimeoutMs: 30_000,
    // Keep NAT mappings open: most NATs drop idle UDP mappings after 30-60 s.
    keepAliveMs: 10_000,
  },
  // 1 MiB, as NATS: large enough for documents, small enough that one message never hogs a link.
  // Bounds per client of what it may hold on this node: the router's (lib/messaging
  // `ROUTER_LIMITS`, each with its reason).
  limits: {
    maxPayload: DEFAULT_MAX_PAYLOAD,
    maxSubscriptions: ROUTER_LIMITS.maxSubscriptions,
    maxProcedures: ROUTER_LIMITS.maxProcedures,
    maxPendingCalls: ROUTER_LIMITS.maxPendingCalls,
    maxCallTimeoutMs: ROUTER_LIMITS.maxCallTimeoutMs,
    maxUnreadBytes: ROUTER_LIMITS.maxUnreadBytes,
    // What all links together may hold queued: 8 slow consumers at their full 64 MiB bound, a
    // few hundred MiB that any machine running a node has; past it, the biggest go first.
    maxQueuedBytes: 512 * 1024 * 1024,
  },
  devCaDir: null,
  // A dev_ca_dir that holds no CA is an error (a typo must not start a realm of one node).
  devCaCreate: false,
  advertise: null,
  // 8 long-lived routes: a diameter of about log_8(N) hops with a bounded session count
  // (docs/overlay.md has the simulations). Up to 128 shortcuts: direct links to far nodes this
  // node's clients keep sending to, each only while used (docs/routing.md, "Shortcuts").
  overlay: { k: 8, shortcuts: 128 },
  // The DHT finds out whether others can dial this node, and is a client if not (docs/dht.md).
  dht: { mode: "auto" },
  tags: [],
  relay: {
    // Every node relays, so two NATed peers always find a relay in common (their rendezvous).
    enabled: true,
    maxSessions: RELAY_DEFAULTS.maxSessions,
    sessionsPerPeer: RELAY_DEFAULTS.sessionsPerPeer,
    bytesPerSecond: RELAY_DEFAULTS.bytesPerSecond,
    burstBytes: RELAY_DEFAULTS.burstBytes,
    // A relayed session first tries to move to a direct path after 30 s (then doubling): soon
    // enough to save the relay's bandwidth, late enough not to punch during a join storm.
    upgradeAfterMs: 30_000,
  },
  membership: {
    ...MEMBERSHIP_DEFAULTS,
    // Sessions kept for membership traffic: bounded whatever the mesh size (routes and clients
    // are not counted). SWIM probes every member in turn, so a pool smaller than the mesh opens
    // a session (a handshake) per probe: 100 nodes in one process with 64 never converged
    // (1.2% of a core per node, members seen alive 71–83), with 256 they did in 1.3 s at 0.34%.
    // 1024 keeps meshes of up to a thousand nodes handshake-free; beyond, a probe may cost one.
    maxSessions: 1024,
  },
  // Clients may publish, subscribe, serve and call anything until the operator writes rules (as
  // NATS without an authorization block); inspection, control requests and relays are for nodes
  // and the `operator` group whatever the rules (docs/security.md).
  permissions: OPEN,
  // The admin listener (docs/operations.md): off for a node started from code (the application
  // has its own HTTP); a config file or `macula node up` turns it on at 127.0.0.1, port = the
  // QUIC port + ADMIN_PORT_OFFSET (4433 → 9433), so local nodes on adjacent ports do not collide.
  admin: null,
  // `macula node up` logs info and above as text lines on stderr.
  log: { level: "info", format: "text" },
  trace: null,
};

/** The admin port of a node whose config does not set one: its QUIC port plus this. */
export const ADMIN_PORT_OFFSET = 5000;

/** What the node runtime does not let you configure, and why each value. */
export const RUNTIME = {
  /**
   * Outbound bytes queued per link before messages to it are dropped and counted (NATS's
   * default max pending is 64 MiB too): a slow consumer costs bounded memory.
   */
  maxBacklog: 64 * 1024 * 1024,
  /** How soon a client hears of drops (LOST), and how often it is retried while backed up. */
  lostReportMs: 50,
  /**
   * A route let go (the overlay no longer wants it) closes once both ends have drained, or after
   * this long whatever is left (calls over it still in flight then fail `unavailable`).
   */
  retireMs: 5000,
  /** `stop()` gives queued frames this long to reach QUIC before saying goodbye. */
  drainMs: 2000,
  /** Seeds are redialed with jittered backoff from 200 ms up to 10 s. */
  seedBackoff: { baseMs: 200, maxMs: 10_000 },
  // A seed that has not answered in 3 s is logged as silent (still tried): a QUIC handshake to
  // a healthy node on one network takes milliseconds, so 3 s means a wrong address or a
  // firewall, and the operator hears of it long before the handshake gives up.
  seedSilentMs: 3000,
  /** A member declared dead that still has a route is pinged over it first, answering within. */
  secondOpinionMs: 2000,
  /** Members whose address did not answer are reached by id: at most this many at a time, */
  reachConcurrency: 2,
  /** each at most once per this long, */
  reachEveryMs: 60_000,
  /** remembering this many (the oldest forgotten first). */
  reachMemory: 4096,
  /** How long a dial to a member's address may take before traversal tries other paths. */
  dialTimeoutMs: 3000,
  /** A relay allocation never used goes after 10 s, an idle one after 60 s; swept every 5 s. */
  relayUnusedMs: 10_000,
  relayIdleMs: 60_000,
  relaySweepMs: 5_000,
  /**
   * dht.mode auto (docs/dht.md, "Client mode"): the first reachability check 2 s after the start
   * (routes are up by then on a LAN), again every 10 min (an address or a NAT can change), and
   * every 15 s while nothing is known (no peer yet, or none answered).
   */
  reachCheckFirstMs: 2_000,
  reachCheckEveryMs: 600_000,
  reachCheckRetryMs: 15_000,
  /**
   * Before its first lookups the DHT bootstraps from membership, while its table holds fewer
   * contacts than this (a lookup needs a few to start from; the table fills itself from then
   * on, by who speaks to it). Not at start: measured on 100 real nodes (bench/mesh), bootstrapping
   * every node as members came up made the start 31 s instead of 23 s and added 0.9 MiB a node,
   * for a DHT nothing had used yet.
   */
  dhtWantContacts: 8,
  /** At most once per this long (a mesh of fewer members bootstraps again, not at every lookup). */
  dhtBootstrapEveryMs: 5000,
} as const;
