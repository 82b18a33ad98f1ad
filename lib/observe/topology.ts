/**
 * `/api/topology`: what the topology page (page.ts) draws, as one JSON document read from the
 * node's own state: this node, the members it knows with their state and tags, its routes with
 * their path, relay, RTT and QUIC traffic, and the message counters the page turns into rates.
 * Bounded: at most `MAX_MEMBERS` members (the count says how many in all).
 */
import { monoNow } from "../util/mod.ts";
import type { AdminNode } from "./view.ts";

/** Members listed at most (the page is for people; the count gives the rest). */
export const MAX_MEMBERS = 500;

/** One member as the page shows it. */
export interface TopologyMember {
  id: string;
  addr: string;
  state: string;
  tags: string[];
  version: string;
  self: boolean;
  /** Time since its state changed, and since this node last heard from it (null: never). */
  sinceMs: number;
  lastSeenMs: number | null;
  /** This node has a route to it. */
  routed: boolean;
}

/** One route as the page shows it, with the QUIC traffic to the peer's address. */
export interface TopologyRoute {
  nodeId: string;
  name: string;
  dialed: boolean;
  path: string;
  via: string | null;
  remote: string;
  rttMs: number;
  /** Over every open QUIC connection to the peer's address (the route's and membership's). */
  bytesSent: number;
  bytesReceived: number;
  packetsSent: number;
  packetsReceived: number;
}

/** The document of `/api/topology`. */
export interface Topology {
  node: {
    id: string;
    realm: string;
    url: string;
    version: string;
    uptimeMs: number;
    tags: string[];
    clients: number;
  };
  /** This process's monotonic clock at the reading, in ms (rates are counter deltas over it). */
  at: number;
  /**
   * Message counters: `in` what this node took from its clients (publishes, calls), `out` what
   * it handed on (deliveries to subscribers, forwards to peer nodes, replies); the router's own.
   */
  messages: {
    in: number;
    out: number;
    published: number;
    delivered: number;
    forwarded: number;
    calls: number;
    replies: number;
    failures: number;
  };
  /** Messages not delivered, by reason (the metric `macula_messaging_dropped_messages_total`). */
  drops: Record<string, number>;
  /** Open sessions by path. */
  sessions: Record<"direct" | "punched" | "relayed", number>;
  membersTotal: number;
  members: TopologyMember[];
  routes: TopologyRoute[];
}

/** `host:port` as the snapshot writes a remote (brackets around an IPv6 address). */
export function remoteKey(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The topology of `node` now. */
export function topologyOf(node: AdminNode): Topology {
  const s = node.snapshot();
  const traffic = new Map<string, TopologyRoute>();
  for (const c of node.endpoint.connections) {
    if (!c.isOpen) continue;
    let st;
    try {
      st = c.stats();
    } catch {
      continue;
    }
    const k = remoteKey(c.remote.host, c.remote.port);
    const t = traffic.get(k) ??
      { bytesSent: 0, bytesReceived: 0, packetsSent: 0, packetsReceived: 0 } as TopologyRoute;
    t.bytesSent += st.bytesSent;
    t.bytesReceived += st.bytesReceived;
    t.packetsSent += st.packetsSent;
    t.packetsReceived += st.packetsReceived;
    traffic.set(k, t);
  }
  const routed = new Set(s.routes.map((r) => r.nodeId));
  const all = node.membership.members();
  // Itself first, then the others by state (alive, suspect, dead, left), then id.
  const order: Record<string, number> = { alive: 0, suspect: 1, dead: 2, left: 3 };
  all.sort((a, b) =>
    Number(b.self) - Number(a.self) || (order[a.state] ?? 9) - (order[b.state] ?? 9) ||
    (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
  );
  const r = s.router;
  const d = s.dropped;
  const sessions = { direct: 0, punched: 0, relayed: 0 };
  for (const p of s.peers) sessions[p.path]++;
  return {
    node: {
      id: s.nodeId,
      realm: s.realm,
      url: s.url,
      version: s.version ?? "",
      uptimeMs: s.uptimeMs ?? 0,
      tags: [...node.config.tags],
      clients: s.clients,
    },
    at: monoNow(),
    messages: {
      in: r.published + r.calls,
      out: r.delivered + r.forwarded + r.replies,
      published: r.published,
      delivered: r.delivered,
      forwarded: r.forwarded,
      calls: r.calls,
      replies: r.replies,
      failures: r.failures,
    },
    drops: {
      no_subscriber: r.unrouted,
      no_route: r.noRoute,
      hop_limit: r.hopLimit,
      backed_up: d.messages,
      forward_backed_up: d.forwards,
      shed: d.shed,
      lost_in_route: d.lostInRoute ?? 0,
    },
    sessions,
    membersTotal: all.length,
    members: all.slice(0, MAX_MEMBERS).map((m) => ({
      id: m.id,
      addr: m.addr,
      state: m.state,
      tags: [...(m.meta?.tags ?? [])],
      version: m.meta?.version ?? "",
      self: m.self,
      sinceMs: m.sinceMs,
      lastSeenMs: m.lastSeenMs,
      routed: routed.has(m.id),
    })),
    routes: s.routes.map((x) => {
      const t = traffic.get(x.remote);
      return {
        nodeId: x.nodeId,
        name: x.name,
        dialed: x.dialed,
        path: x.path,
        via: x.via ?? null,
        remote: x.remote,
        rttMs: x.rttMs,
        bytesSent: t?.bytesSent ?? 0,
        bytesReceived: t?.bytesReceived ?? 0,
        packetsSent: t?.packetsSent ?? 0,
        packetsReceived: t?.packetsReceived ?? 0,
      };
    }),
  };
}
