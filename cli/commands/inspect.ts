/**
 * `macula inspect` — what a running node sees, as text or JSON for scripts (`--json | jq`).
 */
import { Command } from "@commander-js/extra-typings";
import process from "node:process";
import {
  connectTo,
  guarded,
  intArg,
  target,
  TARGET_HELP,
  type TargetOptions,
  withTarget,
} from "./shared.ts";

interface MemberRow {
  id: string;
  addr: string;
  state: string;
  inc: number;
  sinceMs: number;
  lastSeenMs: number | null;
  self: boolean;
  meta: { tags: string[]; version: string };
}

function ago(ms: number): string {
  return ms < 1000
    ? `${ms} ms`
    : ms < 120_000
    ? `${(ms / 1000).toFixed(1)} s`
    : `${Math.round(ms / 60_000)} min`;
}

interface InterestDoc {
  nodeId: string;
  origins: {
    node: string;
    version: number;
    subs: { pattern: string; queue?: string }[];
    procs: string[];
    path?: { via?: string; hops: number; rttMs: number };
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
        o.path.via ? `${o.path.via.slice(0, 16)}…` : "?"
      }`
      : "(no path)";
    lines.push(`${o.node.slice(0, 16)}…  v${o.version}  ${where}`);
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
  contacts: number;
  buckets: { index: number; contacts: { id: string; addr: string; lastSeenMs: number }[] }[];
  held: { key: string; publisher: string; seq: number; bytes: number; expiresInMs: number }[];
  heldCount: number;
  published: { key: string; seq: number; bytes: number }[];
  lookupsRunning: number;
  counters: Record<string, number>;
}

function dhtText(d: DhtDoc): string {
  const lines = [
    `${
      d.nodeId.slice(0, 16)
    }…  ${d.mode} mode, ${d.contacts} contacts in ${d.buckets.length} buckets; ` +
    `holds ${d.heldCount} records, publishes ${d.published.length}`,
  ];
  for (const b of d.buckets) {
    lines.push(`bucket ${b.index}  (${b.contacts.length})`);
    for (const c of b.contacts) {
      lines.push(`    ${c.id.slice(0, 16)}…  ${c.addr.padEnd(28)} heard ${ago(c.lastSeenMs)} ago`);
    }
  }
  if (d.held.length > 0) {
    lines.push(`held for others${d.held.length < d.heldCount ? ` (first ${d.held.length})` : ""}:`);
  }
  for (const r of d.held) {
    lines.push(
      `    key ${r.key.slice(0, 16)}…  from ${r.publisher.slice(0, 16)}…  seq ${r.seq}  ` +
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

interface NodeDoc {
  nodeId: string;
  realm: string;
  url: string;
  clients: number;
  routes: {
    nodeId: string;
    dialed: boolean;
    path: string;
    via?: string;
    remote: string;
    rttMs: number;
  }[];
  peers: {
    nodeId: string;
    role: string;
    path: string;
    via?: string;
    remote: string;
    rttMs: number;
  }[];
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

/** `macula inspect node` as text: who, the routes and sessions, then each counter section. */
export function nodeText(d: NodeDoc): string {
  const path = (p: { path: string; via?: string }) =>
    p.via ? `${p.path} via ${p.via.slice(0, 12)}…` : p.path;
  const lines = [
    `node ${d.nodeId}  realm ${d.realm}  ${d.url}`,
    `${d.routes.length} route${d.routes.length === 1 ? "" : "s"}, ${d.clients} client${
      d.clients === 1 ? "" : "s"
    }, ${d.peers.length} session${d.peers.length === 1 ? "" : "s"}`,
  ];
  if (d.routes.length > 0) lines.push("routes:");
  for (const r of d.routes) {
    lines.push(
      `    ${r.nodeId.slice(0, 16)}…  ${r.dialed ? "dialed  " : "accepted"}  ${
        path(r).padEnd(10)
      }  ${r.remote.padEnd(24)} rtt ${r.rttMs} ms`,
    );
  }
  const others = d.peers.filter((p) => p.role !== "route");
  if (others.length > 0) lines.push("other sessions:");
  for (const p of others) {
    lines.push(
      `    ${p.nodeId.slice(0, 16)}…  ${p.role.padEnd(8)}  ${path(p).padEnd(10)}  ${
        p.remote.padEnd(24)
      } rtt ${p.rttMs} ms`,
    );
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

async function fetch(
  what: "members" | "node" | "interest" | "dht",
  o: TargetOptions & { timeout: number },
): Promise<unknown> {
  const client = await connectTo(`macula inspect ${what}`, target(o), o);
  try {
    return await client.inspect(what, o.timeout);
  } finally {
    await client.close();
  }
}

/** Builds `macula inspect`. */
export function inspectCommand(): Command {
  const inspect = new Command("inspect").description(
    "show what a running node sees (text or --json)",
  ).addHelpText(
    "after",
    `
For operators: the client certificate needs the operator group (the dev realm's client
credentials have it), or the node answers permission_denied (macula docs security).`,
  );
  inspect.addCommand(
    withTarget(
      new Command("members")
        .description(
          "the realm's members the node knows: state, incarnation, last change, last heard",
        )
        .option("--json", "print one JSON array (for jq)")
        .option(...TIMEOUT),
    )
      .addHelpText(
        "after",
        `${TARGET_HELP}

States: alive, suspect (failed a probe; refuted or declared dead soon), dead, left. The
incarnation is raised only by the member itself, to refute a suspicion or after a restart.

Examples:
  $ macula inspect members
  $ macula inspect members --json | jq -r '.[] | select(.state != "alive") | .addr'`,
      )
      .action(guarded("macula inspect members", async (o) => {
        const rows = (await fetch("members", o)) as MemberRow[];
        if (o.json) {
          process.stdout.write(`${JSON.stringify(rows)}\n`);
          return;
        }
        rows.sort((a, b) => a.addr.localeCompare(b.addr));
        const lines = rows.map((r) =>
          `${r.id.slice(0, 16)}…  ${r.addr.padEnd(28)} ${r.state.padEnd(8)} inc ${
            String(r.inc).padEnd(4)
          } ` +
          `since ${ago(r.sinceMs).padStart(8)}  ` +
          `heard ${
            r.self
              ? "-".padStart(8)
              : r.lastSeenMs === null
              ? "never".padStart(8)
              : `${ago(r.lastSeenMs)} ago`
          }` +
          `${r.meta.tags.length ? `  [${r.meta.tags.join(",")}]` : ""}${
            r.self ? "  (this node)" : ""
          }`
        );
        process.stdout.write(`${lines.join("\n")}\n${rows.length} members\n`);
      })),
  );
  inspect.addCommand(
    withTarget(
      new Command("node")
        .description("the node's snapshot: id, url, routes, clients, members, router counters")
        .option("--json", "print one JSON object (for jq)")
        .option(...TIMEOUT),
    )
      .addHelpText(
        "after",
        `${TARGET_HELP}

Examples:
  $ macula inspect node
  $ macula inspect node --json | jq .router.published`,
      )
      .action(guarded("macula inspect node", async (o) => {
        const snap = await fetch("node", o);
        process.stdout.write(`${o.json ? JSON.stringify(snap) : nodeText(snap as NodeDoc)}\n`);
      })),
  );
  inspect.addCommand(
    withTarget(
      new Command("interest")
        .description(
          "who subscribes to and serves what, mesh-wide, as this node knows it, and its path to each",
        )
        .option("--json", "print one JSON object (for jq)")
        .option(...TIMEOUT),
    )
      .addHelpText(
        "after",
        `${TARGET_HELP}

Each node with subscribing or serving clients signs one interest record (its patterns, queue
groups and procedures); records flood over the overlay's routes. This lists the node's own
record first, then every other node's it holds, nearest first: the version, the path (hops, RTT
sum, next hop), and what it lists. A node missing here gets no messages from this node.
Guide: macula docs routing.

Examples:
  $ macula inspect interest
  $ macula inspect interest --json | jq '.origins[] | select(.procs | index("svc.echo")) | .node'`,
      )
      .action(guarded("macula inspect interest", async (o) => {
        const doc = (await fetch("interest", o)) as InterestDoc;
        process.stdout.write(o.json ? `${JSON.stringify(doc)}\n` : `${interestText(doc)}\n`);
      })),
  );
  inspect.addCommand(
    withTarget(
      new Command("dht")
        .description("the node's DHT: its contacts by bucket, records held and published, counters")
        .option("--json", "print one JSON object (for jq)")
        .option(...TIMEOUT),
    )
      .addHelpText(
        "after",
        `${TARGET_HELP}

The realm's Kademlia table as this node holds it: contacts by bucket (the bucket is the length
of the id prefix a contact shares with this node), each with its address (as membership has it,
signed by that node) and when it last spoke; the records this node stores for others (key,
publisher, sequence, size, time left) and those it publishes itself; and what it counted
(requests, lookups, refusals). Guide: macula docs dht.

Examples:
  $ macula inspect dht
  $ macula inspect dht --json | jq '.buckets[].contacts[].addr'
  $ macula inspect dht --json | jq .counters.limited`,
      )
      .action(guarded("macula inspect dht", async (o) => {
        const doc = (await fetch("dht", o)) as DhtDoc;
        process.stdout.write(o.json ? `${JSON.stringify(doc)}\n` : `${dhtText(doc)}\n`);
      })),
  );
  for (const c of inspect.commands) {
    c.addHelpText(
      "after",
      `
Exit codes: 0 printed, 1 cannot connect or the node refused (permission_denied), 2 usage error.`,
    );
  }
  return inspect;
}
