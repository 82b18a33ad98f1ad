/**
 * `macula status` — a node and its peers at a glance, as `tailscale status` shows a tailnet:
 * this node (id, realm, url, version, uptime when the node says it, clients), one line per
 * member of the realm it knows (id, address, state, tags, and for the members it has a route or
 * session to: the certificate's name, the path and the round trip), and a summary. `--json`
 * prints the same as one document (`StatusDoc`, documented in docs/cli.md). Built from the
 * node's `inspect.members` and `inspect.node` answers.
 */
import { Command } from "@commander-js/extra-typings";
import { columns, type NodeDoc, TIMEOUT } from "./inspect.ts";
import {
  connectTo,
  guarded,
  type MemberRow,
  out,
  target,
  TARGET_HELP,
  withTarget,
} from "./shared.ts";

const STATES = ["alive", "suspect", "dead", "left"] as const;
const PATHS = ["direct", "punched", "relayed"] as const;

/** One member in `macula status --json`. */
export interface StatusMember {
  id: string;
  /** `quic://host:port`, as the member signed it. */
  addr: string;
  state: string;
  inc: number;
  tags: string[];
  /** The software version the member announces. */
  version: string;
  self: boolean;
  /** How long ago its state last changed, ms. */
  sinceMs: number;
  /** How long ago the node last heard from it, ms (null: never; 0 for itself). */
  lastSeenMs: number | null;
  /** What the node has to it: itself, a route (overlay), another session, or nothing. */
  conn: "self" | "route" | "session" | null;
  /** The common name of its certificate (known from a route's handshake), else null. */
  name: string | null;
  /** The path of that route or session: direct, punched or relayed; null without one. */
  path: string | null;
  /** The relay of a relayed path, else null. */
  via: string | null;
  /** Where the peer's packets come from (for a relayed path: the relay's tunnel), else null. */
  remote: string | null;
  /** The current round trip of that route or session, ms, else null. */
  rttMs: number | null;
}

/** What `macula status --json` prints: one object, these fields (docs/cli.md). */
export interface StatusDoc {
  node: {
    id: string;
    realm: string;
    url: string;
    /** The version it announces to the realm (null if it does not list itself). */
    version: string | null;
    /** How long it has been running, ms, when it says so (else null). */
    uptimeMs: number | null;
    clients: number;
  };
  /** Itself first, then by state (alive, suspect, dead, left), then by address. */
  members: StatusMember[];
  summary: {
    members: { total: number; alive: number; suspect: number; dead: number; left: number };
    routes: { total: number; direct: number; punched: number; relayed: number };
    /** Open sessions to other nodes that are not routes. */
    sessions: number;
    clients: number;
  };
}

const rank = (s: string) => {
  const i = (STATES as readonly string[]).indexOf(s);
  return i < 0 ? STATES.length : i;
};

/** The status document from the node's two answers. */
export function statusOf(rows: readonly MemberRow[], snap: NodeDoc): StatusDoc {
  const routes = new Map(snap.routes.map((r) => [r.nodeId, r]));
  const sessions = new Map<string, NodeDoc["peers"][number]>();
  for (const p of snap.peers) {
    if ((p.role === "session" || p.role === "shortcut") && !sessions.has(p.nodeId)) {
      sessions.set(p.nodeId, p);
    }
  }
  const self = rows.find((r) => r.self);
  const members = [...rows].sort((a, b) =>
    Number(b.self) - Number(a.self) || rank(a.state) - rank(b.state) ||
    a.addr.localeCompare(b.addr) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
  ).map((m): StatusMember => {
    const route = routes.get(m.id);
    const other = route ? undefined : sessions.get(m.id);
    const s = route ?? other;
    return {
      id: m.id,
      addr: m.addr,
      state: m.state,
      inc: m.inc,
      tags: [...m.meta.tags],
      version: m.meta.version,
      self: m.self,
      sinceMs: m.sinceMs,
      lastSeenMs: m.lastSeenMs,
      conn: m.self ? "self" : route ? "route" : other ? "session" : null,
      name: route?.name ?? null,
      path: s?.path ?? null,
      via: s?.via ?? null,
      remote: s?.remote ?? null,
      rttMs: s?.rttMs ?? null,
    };
  });
  const byState = { alive: 0, suspect: 0, dead: 0, left: 0 };
  for (const m of rows) if (m.state in byState) byState[m.state as keyof typeof byState]++;
  const byPath = { direct: 0, punched: 0, relayed: 0 };
  for (const r of snap.routes) if (r.path in byPath) byPath[r.path as keyof typeof byPath]++;
  const uptime = snap.uptimeMs;
  const version = snap.version;
  return {
    node: {
      id: snap.nodeId,
      realm: snap.realm,
      url: snap.url,
      version: typeof version === "string" ? version : self?.meta.version ?? null,
      uptimeMs: typeof uptime === "number" ? uptime : null,
      clients: snap.clients,
    },
    members,
    summary: {
      members: { total: rows.length, ...byState },
      routes: { total: snap.routes.length, ...byPath },
      sessions: snap.peers.filter((p) => p.role === "session" || p.role === "shortcut").length,
      clients: snap.clients,
    },
  };
}

/** `93784000` as `1d 2h`, `7380000` as `2h 3m`, `185000` as `3m 5s`, `4200` as `4s`. */
export function duration(ms: number): string {
  const s = Math.floor(ms / 1000);
  const [d, h, m] = [Math.floor(s / 86400), Math.floor(s / 3600) % 24, Math.floor(s / 60) % 60];
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

/**
 * The shortest prefix of `id` (8 characters at least) that no other of `ids` starts with, and
 * `…`: what the commands that take a node id accept for it.
 */
export function abbrev(id: string, ids: readonly string[]): string {
  let n = 8;
  while (n < id.length && ids.some((o) => o !== id && o.startsWith(id.slice(0, n)))) n++;
  return n >= id.length ? id : `${id.slice(0, n)}…`;
}

/** The status as text: this node, a table of the members, a summary line. */
export function statusText(d: StatusDoc): string {
  const n = d.node;
  const head = [
    ["node", n.id],
    ["realm", n.realm],
    ["url", n.url],
    ["version", n.version ?? "-"],
    ...(n.uptimeMs !== null ? [["uptime", duration(n.uptimeMs)]] : []),
    ["clients", String(n.clients)],
  ];
  const ids = d.members.map((m) => m.id);
  const table = [
    ["ID", "ADDRESS", "STATE", "TAGS", "NAME", "CONN", "PATH", "RTT"],
    ...d.members.map((m) => [
      m.id,
      m.addr.replace(/^quic:\/\//, ""),
      m.state,
      m.tags.length ? m.tags.join(",") : "-",
      m.name ?? "-",
      m.conn ?? "-",
      m.path === null ? "-" : m.via ? `${m.path} via ${abbrev(m.via, ids)}` : m.path,
      m.rttMs === null ? "-" : `${m.rttMs} ms`,
    ]),
  ];
  const s = d.summary;
  const summary = `${s.members.total} member${s.members.total === 1 ? "" : "s"}: ` +
    STATES.map((k) => `${s.members[k]} ${k}`).join(", ") +
    `; ${s.routes.total} route${s.routes.total === 1 ? "" : "s"}: ` +
    PATHS.map((k) => `${s.routes[k]} ${k}`).join(", ") +
    `; ${s.sessions} other session${s.sessions === 1 ? "" : "s"}, ` +
    `${s.clients} client${s.clients === 1 ? "" : "s"}`;
  return [...columns(head), "", ...columns(table), "", summary].join("\n");
}

/** Builds the `status` command. */
export function statusCommand() {
  return withTarget(
    new Command("status")
      .description("a node and its peers at a glance: members, states, paths, RTTs")
      .option("--json", "print one JSON object (for jq; its fields: macula docs cli)")
      .option(...TIMEOUT),
  )
    .addHelpText(
      "after",
      `${TARGET_HELP}

This node first (id, realm, url, version, uptime when the node reports it, clients), then one
line per member of the realm it knows, itself first: id, address, state (alive, suspect, dead,
left), tags, and for those it has a route (overlay) or another session to, the certificate's
name, the path (direct, punched, relayed via <relay>) and the round trip; then a summary of the
members by state and the routes by path. Needs the operator group, as 'macula inspect' does.

Examples:
  $ macula status
  $ macula status --json | jq -r '.members[] | select(.path == "relayed") | .id'
  $ macula status --json | jq .summary.members

Exit codes: 0 printed, 1 cannot connect or the node refused (permission_denied), 2 usage error.`,
    )
    .action(guarded("macula status", async (o) => {
      const client = await connectTo("macula status", target(o), o);
      try {
        const [rows, snap] = await Promise.all([
          client.inspect("members", o.timeout) as Promise<MemberRow[]>,
          client.inspect("node", o.timeout) as Promise<NodeDoc>,
        ]);
        const doc = statusOf(rows, snap);
        await out(o.json ? `${JSON.stringify(doc)}\n` : `${statusText(doc)}\n`);
      } finally {
        await client.close();
      }
    }));
}
