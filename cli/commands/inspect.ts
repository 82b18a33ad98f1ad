/**
 * `macula inspect` — what a running node sees, as text or JSON for scripts (`--json | jq`), once
 * or redrawn with `--watch`. Node ids are shown whole everywhere (any unique prefix of one is
 * accepted where a command takes an id).
 */
import { Command, Option } from "@commander-js/extra-typings";
import process from "node:process";
import {
  connectTo,
  guarded,
  intArg,
  type MemberRow,
  out,
  target,
  TARGET_HELP,
  type TargetOptions,
  usage,
  watch,
  withTarget,
} from "./shared.ts";

/** `1234 ms` as `1.2 s`, `3 min`, … */
export function ago(ms: number): string {
  return ms < 1000
    ? `${ms} ms`
    : ms < 120_000
    ? `${(ms / 1000).toFixed(1)} s`
    : `${Math.round(ms / 60_000)} min`;
}

/** `macula inspect members` as text: one line per member (by address), then the count. */
export function membersText(members: readonly MemberRow[]): string {
  const rows = [...members].sort((a, b) => a.addr.localeCompare(b.addr));
  const lines = rows.map((r) =>
    `${r.id}  ${r.addr.padEnd(28)} ${r.state.padEnd(8)} inc ${String(r.inc).padEnd(4)} ` +
    `since ${ago(r.sinceMs).padStart(8)}  ` +
    `heard ${
      r.self
        ? "-".padStart(8)
        : r.lastSeenMs === null
        ? "never".padStart(8)
        : `${ago(r.lastSeenMs)} ago`
    }` +
    `${r.meta.tags.length ? `  [${r.meta.tags.join(",")}]` : ""}${r.self ? "  (this node)" : ""}`
  );
  return `${lines.join("\n")}${lines.length ? "\n" : ""}${rows.length} members`;
}

interface InterestDoc {
  nodeId: string;
  origins: {
    node: string;
    version: number;
    subs: { pattern: string; queue?: string }[];
    procs: string[];
    path?: { via?: string; hops: number; rttMs: number };
    shortcut?: boolean;
  }[];
  counters: Record<string, number>;
}

function interestText(d: InterestDoc): string {
  const lines: string[] = [];
  for (const o of d.origins) {
    const where = o.node === d.nodeId
      ? "(this node)"
      : o.path
      ? `${o.path.hops} hop${o.path.hops === 1 ? "" : "s"}, ${o.path.rttMs.toFixed(1)} ms, via ${
        o.path.via ?? "?"
      }`
      : "(no path)";
    const direct = o.shortcut ? "; this node's traffic to it: over a shortcut" : "";
    lines.push(`${o.node}  v${o.version}  ${where}${direct}`);
    for (const s of o.subs) {
      lines.push(`    sub   ${s.pattern}${s.queue ? `  (queue ${s.queue})` : ""}`);
    }
    for (const p of o.procs) lines.push(`    serve ${p}`);
    if (o.subs.length === 0 && o.procs.length === 0) lines.push("    (nothing)");
  }
  const c = d.counters;
  lines.push(
    `${d.origins.length - 1} other nodes with interest; records taken ${c.records}, ` +
      `INTEREST in/out ${c.interestIn}/${c.interestOut}, forged ${c.forgedRecords}, ` +
      `refused ${c.refusedRecords}, left out ${c.interestOverflow}; ` +
      `undeliverable: ${c.noRoute} no route, ${c.hopLimit} hop limit`,
  );
  return lines.join("\n");
}

interface DhtDoc {
  nodeId: string;
  mode: string;
  reachability: string;
  contacts: number;
  buckets: { index: number; contacts: { id: string; addr: string; lastSeenMs: number }[] }[];
  held: { key: string; publisher: string; seq: number; bytes: number; expiresInMs: number }[];
  heldCount: number;
  published: { key: string; seq: number; bytes: number }[];
  lookupsRunning: number;
  counters: Record<string, number>;
}

/** `inspect dht`'s reachability, in words (docs/dht.md, "Client mode, on real nodes"). */
const REACH_TEXT: Record<string, string> = {
  unknown: "reachability not checked yet",
  reachable: "others can dial it",
  unreachable: "others cannot dial it",
  fixed: "set by dht.mode",
};

function dhtText(d: DhtDoc): string {
  const lines = [
    `${d.nodeId}  ${d.mode} mode (${REACH_TEXT[d.reachability] ?? d.reachability}), ` +
    `${d.contacts} contacts in ${d.buckets.length} buckets; ` +
    `holds ${d.heldCount} records, publishes ${d.published.length}`,
  ];
  for (const b of d.buckets) {
    lines.push(`bucket ${b.index}  (${b.contacts.length})`);
    for (const c of b.contacts) {
      lines.push(`    ${c.id}  ${c.addr.padEnd(28)} heard ${ago(c.lastSeenMs)} ago`);
    }
  }
  if (d.held.length > 0) {
    lines.push(`held for others${d.held.length < d.heldCount ? ` (first ${d.held.length})` : ""}:`);
  }
  // Record keys are hashes, not node ids: their first 16 characters tell them apart.
  for (const r of d.held) {
    lines.push(
      `    key ${r.key.slice(0, 16)}…  from ${r.publisher}  seq ${r.seq}  ` +
        `${r.bytes} B  expires in ${ago(r.expiresInMs)}`,
    );
  }
  if (d.published.length > 0) lines.push("published by this node:");
  for (const r of d.published) {
    lines.push(`    key ${r.key.slice(0, 16)}…  seq ${r.seq}  ${r.bytes} B`);
  }
  const c = d.counters;
  lines.push(
    `requests in/out ${c.requestsIn}/${c.requestsOut}, answers ${c.answersIn}, timeouts ${c.timeouts}, ` +
      `lookups ${c.lookups} (${d.lookupsRunning} running); refused: ${c.limited} over rate, ` +
      `${c.forged} forged, ${c.malformed} malformed, ${c.otherRealm} other realm; unsent ${c.unsent}`,
  );
  return lines.join("\n");
}

/** A session or route as `inspect node` has it. */
export interface SessionRow {
  nodeId: string;
  path: string;
  via?: string;
  remote: string;
  rttMs: number;
}

/** What `inspect node` answers (the text view reads these; the rest are counter sections). */
export interface NodeDoc {
  nodeId: string;
  realm: string;
  url: string;
  clients: number;
  routes: (SessionRow & { name?: string; dialed: boolean })[];
  peers: (SessionRow & { role: string })[];
  procedures: string[];
  [section: string]: unknown;
}

/** `{a: 1, b: {c: 2}}` as `a 1, b.c 2`; arrays as their length. */
function flat(o: Record<string, unknown>, prefix = ""): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(o)) {
    if (v !== null && typeof v === "object" && !Array.isArray(v)) {
      out.push(...flat(v as Record<string, unknown>, `${prefix}${k}.`));
    } else out.push(`${prefix}${k} ${Array.isArray(v) ? v.length : String(v)}`);
  }
  return out;
}

/** `head item, item, …` in lines of at most 100 characters, continued with an indent. */
function wrapped(head: string, items: string[]): string[] {
  const lines: string[] = [];
  let line = head;
  items.forEach((item, i) => {
    const piece = `${item}${i < items.length - 1 ? "," : ""}`;
    if (line.length + 1 + piece.length > 100 && line.trim() !== head) {
      lines.push(line);
      line = `   `;
    }
    line += ` ${piece}`;
  });
  lines.push(line);
  return lines;
}

/** A path as text: `direct`, `punched`, `relayed via <relay id>`. */
export const pathText = (p: { path: string; via?: string }) =>
  p.via ? `${p.path} via ${p.via}` : p.path;

/** Rows of cells as lines, each column as wide as its widest cell (the last one unpadded). */
export function columns(rows: readonly string[][], indent = ""): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) =>
    indent + r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ")
  );
}

/** `macula inspect node` as text: who, the routes and sessions, then each counter section. */
export function nodeText(d: NodeDoc): string {
  const lines = [
    `node ${d.nodeId}  realm ${d.realm}  ${d.url}`,
    `${d.routes.length} route${d.routes.length === 1 ? "" : "s"}, ${d.clients} client${
      d.clients === 1 ? "" : "s"
    }, ${d.peers.length} session${d.peers.length === 1 ? "" : "s"}`,
  ];
  const row = (s: SessionRow, kind: string) => [
    s.nodeId,
    kind,
    pathText(s),
    s.remote,
    `rtt ${s.rttMs} ms`,
  ];
  if (d.routes.length > 0) {
    lines.push("routes:");
    lines.push(...columns(d.routes.map((r) => row(r, r.dialed ? "dialed" : "accepted")), "    "));
  }
  const others = d.peers.filter((p) => p.role !== "route");
  if (others.length > 0) {
    lines.push("other sessions:");
    lines.push(...columns(others.map((p) => row(p, p.role)), "    "));
  }
  if (d.procedures.length > 0) lines.push(`serves: ${d.procedures.join(", ")}`);
  const shown = new Set(["nodeId", "realm", "url", "clients", "routes", "peers", "procedures"]);
  for (const [k, v] of Object.entries(d)) {
    if (shown.has(k)) continue;
    if (v === null) lines.push(`${k}: off`);
    else if (typeof v === "object" && !Array.isArray(v)) {
      lines.push(...wrapped(`${k}:`, flat(v as Record<string, unknown>)));
    } else lines.push(`${k}: ${Array.isArray(v) ? v.length : String(v)}`);
  }
  return lines.join("\n");
}

/** `-t, --timeout <ms>`: how long to wait for the node's answer. */
export const TIMEOUT = [
  "-t, --timeout <ms>",
  "wait this long for the node's answer",
  intArg(1, 600_000),
  5000,
] as const;

/** The options of every inspect subcommand. */
interface ViewOptions extends TargetOptions {
  json?: true;
  timeout: number;
  watch?: true;
  interval: number;
  count?: number;
}

/** Adds --json, --timeout and the --watch options to an inspect subcommand. */
function viewOptions(c: Command, json: string) {
  return withTarget(
    c
      .option("--json", json)
      .option(...TIMEOUT)
      .option("--watch", "take the view again every --interval until Ctrl-C")
      .addOption(
        new Option("--interval <ms>", "with --watch: time between views").argParser(
          intArg(100, 3_600_000),
        ).default(1000),
      )
      .addOption(
        new Option("-n, --count <n>", "with --watch: stop after n views (default: Ctrl-C)")
          .argParser(intArg(1, 1_000_000)),
      ),
  );
}

const WATCH_HELP = `
--watch takes the view again every --interval ms (default 1000) over one connection, until
Ctrl-C (exit 130) or --count views. On a terminal the screen is cleared and redrawn; otherwise
each view follows the last after a line '--- <ISO time>', and with --json each is one JSON
document on its own line. A view that fails is said on stderr and the watch goes on.`;

/** The action of `inspect <what>`: one view, or `--watch`. */
function view<T>(what: "members" | "node" | "interest" | "dht", text: (doc: T) => string) {
  const prefix = `macula inspect ${what}`;
  return guarded(prefix, async (o: ViewOptions) => {
    if (o.count !== undefined && !o.watch) throw usage("--count is for --watch");
    const client = await connectTo(prefix, target(o), o);
    try {
      const take = async () => {
        const doc = (await client.inspect(what, o.timeout)) as T;
        return o.json ? JSON.stringify(doc) : text(doc);
      };
      if (!o.watch) {
        await out(`${await take()}\n`);
        return;
      }
      await watch({
        prefix,
        intervalMs: o.interval,
        ...(o.count !== undefined ? { count: o.count } : {}),
        json: o.json === true,
        tty: process.stdout.isTTY === true,
      }, take);
    } finally {
      await client.close();
    }
  });
}

/** Builds `macula inspect`. */
export function inspectCommand(): Command {
  const inspect = new Command("inspect").description(
    "show what a running node sees (text or --json, once or --watch)",
  ).addHelpText(
    "after",
    `
For operators: the client certificate needs the operator group (the dev realm's client
credentials have it), or the node answers permission_denied (macula docs security).
'macula status' puts the node, its members and its paths on one page.`,
  );
  inspect.addCommand(
    viewOptions(
      new Command("members")
        .description(
          "the realm's members the node knows: state, incarnation, last change, last heard",
        ),
      "print one JSON array (for jq; with --watch, one per line)",
    )
      .addHelpText(
        "after",
        `${TARGET_HELP}

States: alive, suspect (failed a probe; refuted or declared dead soon), dead, left. The
incarnation is raised only by the member itself, to refute a suspicion or after a restart.
${WATCH_HELP}

Examples:
  $ macula inspect members
  $ macula inspect members --watch
  $ macula inspect members --json | jq -r '.[] | select(.state != "alive") | .addr'`,
      )
      .action(view("members", membersText)),
  );
  inspect.addCommand(
    viewOptions(
      new Command("node")
        .description("the node's snapshot: id, url, routes, clients, members, router counters"),
      "print one JSON object (for jq; with --watch, one per line)",
    )
      .addHelpText(
        "after",
        `${TARGET_HELP}
${WATCH_HELP}

Examples:
  $ macula inspect node
  $ macula inspect node --watch --interval 500
  $ macula inspect node --json | jq .router.published`,
      )
      .action(view("node", nodeText)),
  );
  inspect.addCommand(
    viewOptions(
      new Command("interest")
        .description(
          "who subscribes to and serves what, mesh-wide, as this node knows it, and its path to each",
        ),
      "print one JSON object (for jq; with --watch, one per line)",
    )
      .addHelpText(
        "after",
        `${TARGET_HELP}

Each node with subscribing or serving clients signs one interest record (its patterns, queue
groups and procedures); records flood over the overlay's routes. This lists the node's own
record first, then every other node's it holds, nearest first: the version, the path (hops, RTT
sum, next hop), and what it lists. A node missing here gets no messages from this node.
Guide: macula docs routing.
${WATCH_HELP}

Examples:
  $ macula inspect interest
  $ macula inspect interest --json | jq '.origins[] | select(.procs | index("svc.echo")) | .node'`,
      )
      .action(view("interest", interestText)),
  );
  inspect.addCommand(
    viewOptions(
      new Command("dht")
        .description(
          "the node's DHT: its contacts by bucket, records held and published, counters",
        ),
      "print one JSON object (for jq; with --watch, one per line)",
    )
      .addHelpText(
        "after",
        `${TARGET_HELP}

The realm's Kademlia table as this node holds it: contacts by bucket (the bucket is the length
of the id prefix a contact shares with this node), each with its address (as membership has it,
signed by that node) and when it last spoke; the records this node stores for others (key,
publisher, sequence, size, time left) and those it publishes itself; and what it counted
(requests, lookups, refusals). Guide: macula docs dht.
${WATCH_HELP}

Examples:
  $ macula inspect dht
  $ macula inspect dht --json | jq '.buckets[].contacts[].addr'
  $ macula inspect dht --json --watch --count 10 | jq -c .counters`,
      )
      .action(view("dht", dhtText)),
  );
  for (const c of inspect.commands) {
    c.addHelpText(
      "after",
      `
Exit codes: 0 printed (--watch: --count views, the last one taken), 1 cannot connect or the
node refused (permission_denied; --watch: the last view failed), 2 usage error, 130 --watch
stopped by Ctrl-C.`,
    );
  }
  return inspect;
}
