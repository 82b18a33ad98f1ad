/**
 * The admin HTTP listener (lib/observe/admin.ts, docs/operations.md "Admin listener"): metrics in
 * the Prometheus text format (parsed back, and checked by `promtool check metrics`), every
 * numeric leaf of a real node's snapshot covered by a metric, the realm label and per-node
 * registries, the RPC latency histogram, /healthz and /readyz (ready, and not ready for a seed
 * that never answers, a stopped node and an expired certificate), 404, 405, HEAD, the
 * connection cap and a port in use. Real nodes on 127.0.0.1.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import dgram from "node:dgram";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect as tcpConnect, createServer as createTcpServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Admin, ADMIN_LIMITS, ADMIN_PATHS, startAdmin } from "../../lib/observe/admin.ts";
import { AdminError } from "../../lib/observe/errors.ts";
import { readiness } from "../../lib/observe/health.ts";
import { bounded, CALL_BUCKETS, MAX_LABEL_VALUES, METRICS } from "../../lib/observe/metrics.ts";
import { Node } from "../../lib/node/node.ts";
import { type Mesh, mesh, take } from "../helpers/mesh.ts";
import { type OtlpReceiver, otlpReceiver } from "../helpers/otlp.ts";

// ---------------------------------------------------------------------------------------------
// The Prometheus text format, parsed back

interface Family {
  name: string;
  type: string;
  help: string;
  samples: { name: string; labels: Record<string, string>; value: number }[];
}

/** Parses the text exposition format (0.0.4); throws naming the line on anything malformed. */
function parseMetrics(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const sampleRe = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/;
  const labelRe = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/y;
  let current: Family | undefined;
  for (const [i, line] of text.split("\n").entries()) {
    if (line === "") continue;
    const help = /^# HELP (\S+) (.*)$/.exec(line);
    const type = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (help) {
      current = { name: help[1]!, type: "", help: help[2]!, samples: [] };
      if (families.has(current.name)) throw new Error(`line ${i + 1}: ${current.name} twice`);
      families.set(current.name, current);
      continue;
    }
    if (type) {
      if (!current || current.name !== type[1]) throw new Error(`line ${i + 1}: TYPE without HELP`);
      current.type = type[2]!;
      continue;
    }
    const m = sampleRe.exec(line);
    if (!m || !current) throw new Error(`line ${i + 1}: not a sample: ${line}`);
    const labels: Record<string, string> = {};
    if (m[3]) {
      labelRe.lastIndex = 0;
      let pos = 0;
      while (pos < m[3].length) {
        labelRe.lastIndex = pos;
        const l = labelRe.exec(m[3]);
        if (!l) throw new Error(`line ${i + 1}: bad labels: ${m[3]}`);
        labels[l[1]!] = l[2]!;
        pos = labelRe.lastIndex;
      }
    }
    const value = Number(m[4] === "+Inf" ? Infinity : m[4]);
    if (Number.isNaN(value)) throw new Error(`line ${i + 1}: bad value ${m[4]}`);
    const base = current.type === "histogram" ? m[1]!.replace(/_(bucket|sum|count)$/, "") : m[1]!;
    if (base !== current.name) throw new Error(`line ${i + 1}: ${m[1]} under ${current.name}`);
    current.samples.push({ name: m[1]!, labels, value });
  }
  return families;
}

/** The value of the one sample of `family` whose labels include `labels`. */
function valueOf(
  fams: Map<string, Family>,
  family: string,
  labels: Record<string, string> = {},
  sample = family,
): number {
  const f = fams.get(family);
  if (!f) throw new Error(`no metric ${family}`);
  const hits = f.samples.filter((s) =>
    s.name === sample && Object.entries(labels).every(([k, v]) => s.labels[k] === v)
  );
  if (hits.length !== 1) {
    throw new Error(`${sample}${JSON.stringify(labels)}: ${hits.length} samples`);
  }
  return hits[0]!.value;
}

async function scrape(admin: Admin): Promise<{ text: string; fams: Map<string, Family> }> {
  const r = await fetch(`${admin.url}/metrics`);
  expect(r.status).toBe(200);
  expect(r.headers.get("content-type")).toContain("text/plain; version=0.0.4");
  const text = await r.text();
  return { text, fams: parseMetrics(text) };
}

// ---------------------------------------------------------------------------------------------
// Every numeric leaf of `node.snapshot()` and the metric that holds it

/**
 * Snapshot leaf → metric family. A leaf is written as its path; `*` stands for any key of a map
 * (by method, by cause, …), `[]` for any element of a list.
 */
const LEAF_METRICS: Record<string, string> = {
  uptimeMs: "macula_node_uptime_seconds",
  clients: "macula_node_clients",
  // Sessions and routes: counted by path and role; each route's RTT; RTT over every connection.
  "peers[].rttMs": "macula_quic_rtt_seconds",
  "routes[].rttMs": "macula_route_rtt_seconds",
  // The relay role.
  "relay.allocations": "macula_relay_allocations_total",
  "relay.refused": "macula_relay_refused_total",
  "relay.packets": "macula_relay_packets_total",
  "relay.bytes": "macula_relay_bytes_total",
  "relay.droppedWrongSource": "macula_relay_dropped_packets_total",
  "relay.droppedRate": "macula_relay_dropped_packets_total",
  "relay.droppedGone": "macula_relay_dropped_packets_total",
  // Traversal.
  "traversal.introductions": "macula_traversal_introductions_total",
  "traversal.punchRequests": "macula_traversal_punch_requests_total",
  "traversal.punchedOk": "macula_traversal_punches_total",
  "traversal.punchFailed": "macula_traversal_punches_total",
  "traversal.dialbacks": "macula_traversal_dialbacks_total",
  "traversal.reachChecks.reached": "macula_traversal_reach_checks_total",
  "traversal.reachChecks.unreached": "macula_traversal_reach_checks_total",
  "traversal.relayedSessions": "macula_traversal_relayed_sessions_total",
  "traversal.upgraded": "macula_traversal_upgrades_total",
  "traversal.upgradeFailed": "macula_traversal_upgrades_total",
  "traversal.relayPacketsUnknown": "macula_traversal_relay_packets_unknown_total",
  "traversal.refused": "macula_traversal_refused_total",
  "traversal.tunnels": "macula_traversal_tunnels",
  // Messaging.
  subscriptions: "macula_messaging_subscriptions",
  remoteInterest: "macula_messaging_remote_interest",
  pendingCalls: "macula_messaging_pending_calls",
  "router.published": "macula_messaging_client_sent_messages_total",
  "router.forwarded": "macula_messaging_client_sent_messages_total",
  "router.calls": "macula_messaging_client_sent_messages_total",
  "router.replies": "macula_messaging_client_sent_messages_total",
  "router.delivered": "macula_messaging_client_consumed_messages_total",
  "router.failures": "macula_messaging_rpc_failures_total",
  "router.unrouted": "macula_messaging_dropped_messages_total",
  "router.noRoute": "macula_messaging_dropped_messages_total",
  "router.hopLimit": "macula_messaging_dropped_messages_total",
  "router.protocolErrors": "macula_messaging_refused_operations_total",
  "router.denied": "macula_messaging_refused_operations_total",
  "router.limited": "macula_messaging_refused_operations_total",
  "router.records": "macula_messaging_interest_records_total",
  "router.interestIn": "macula_messaging_interest_frames_total",
  "router.interestOut": "macula_messaging_interest_frames_total",
  "router.forgedRecords": "macula_messaging_interest_refused_records_total",
  "router.refusedRecords": "macula_messaging_interest_refused_records_total",
  "router.interestOverflow": "macula_messaging_interest_overflow_total",
  "router.badTraceContext": "macula_messaging_bad_trace_context_total",
  "dropped.messages": "macula_messaging_dropped_messages_total",
  "dropped.forwards": "macula_messaging_dropped_messages_total",
  "dropped.shed": "macula_messaging_dropped_messages_total",
  "dropped.lostInRoute": "macula_messaging_dropped_messages_total",
  "dropped.closedBackedUp": "macula_sessions_closed_total",
  // Routes let go.
  "retired.clean": "macula_routes_retired_total",
  "retired.cut": "macula_routes_retired_total",
  "retired.draining": "macula_routes_draining",
  "shortcuts.open": "macula_shortcuts_open",
  "shortcuts.dialed": "macula_shortcuts_total",
  "shortcuts.failed": "macula_shortcuts_total",
  "shortcuts.refused": "macula_shortcuts_total",
  "router.shortcutsOpened": "macula_shortcuts_total",
  "router.shortcutsClosed": "macula_shortcuts_total",
  "router.shortcutHeld": "macula_shortcuts_total",
  "router.shortcutHoldOverflow": "macula_shortcuts_total",
  "router.viaShortcut": "macula_messaging_client_sent_messages_total",
  // Refusals.
  "refused.operations": "macula_messaging_refused_operations_total", // = router.denied
  "refused.channels": "macula_refused_channels_total",
  "refused.requests.*": "macula_refused_requests_total",
  "refused.frames.*": "macula_refused_frames_total",
  "refused.requestFloods": "macula_sessions_closed_total",
  "refused.peers.*": "macula_refused_peers_total",
  "refused.sessions": "macula_refused_sessions_total",
  "refused.heldDown.held": "macula_held_down_certificates",
  "refused.heldDown.strikes": "macula_held_down_strikes_total",
  "refused.heldDown.refused": "macula_held_down_refused_total",
  // CRLs.
  "crl.held[].revoked": "macula_crl_revoked_certificates",
  "crl.accepted": "macula_crl_received_total",
  "crl.stale": "macula_crl_received_total",
  "crl.refused": "macula_crl_received_total",
  "crl.closedRevoked": "macula_sessions_closed_total",
  "crl.closedExpired": "macula_sessions_closed_total",
  // Membership.
  "members.alive": "macula_membership_members",
  "members.suspect": "macula_membership_members",
  "members.dead": "macula_membership_members",
  "members.left": "macula_membership_members",
  "membership.datagramsIn": "macula_membership_messages_total",
  "membership.datagramsOut": "macula_membership_messages_total",
  "membership.streamsIn": "macula_membership_messages_total",
  "membership.streamsOut": "macula_membership_messages_total",
  "membership.malformed": "macula_membership_dropped_total",
  "membership.forged": "macula_membership_dropped_total",
  "membership.forgedRecords": "macula_membership_dropped_total",
  "membership.uncertified": "macula_membership_dropped_total",
  "membership.droppedOtherRealm": "macula_membership_dropped_total",
  "membership.refusedByBound": "macula_membership_dropped_total",
  "membership.staleClaims": "macula_membership_dropped_total",
  "membership.claimsAhead": "macula_membership_dropped_total",
  "membership.claimsUnknownAccuser": "macula_membership_dropped_total",
  "membership.refusedPingReqs": "macula_membership_dropped_total",
  "membership.refusedAcks": "macula_membership_dropped_total",
  "membership.unsent": "macula_membership_dropped_total",
  "membership.sessionsClosedForged": "macula_membership_sessions_closed_total",
  "membership.sessionsClosedByPool": "macula_membership_sessions_closed_total",
  "membership.signaturesChecked": "macula_membership_signatures_total",
  "membership.signaturesMade": "macula_membership_signatures_total",
  "membership.handlerFailures": "macula_membership_handler_failures_total",
  "membership.certificatesChecked": "macula_membership_certificates_checked_total",
  "membership.probes": "macula_membership_probes_total",
  "membership.probesFailed": "macula_membership_probes_failed_total",
  "membership.indirectProbes": "macula_membership_indirect_probes_total",
  "membership.suspicions": "macula_membership_suspicions_total",
  "membership.refutations": "macula_membership_refutations_total",
  "membership.refutationsDeferred": "macula_membership_refutations_deferred_total",
  "membership.settleSyncs": "macula_membership_settle_syncs_total",
  "membership.pulls": "macula_membership_pulls_total",
  "membership.pullsHeldBack": "macula_membership_pulls_held_back_total",
  "membership.deaths": "macula_membership_deaths_total",
  "membership.records": "macula_membership_records_total",
  "membership.forgotten": "macula_membership_forgotten_total",
  "membership.incarnation": "macula_membership_incarnation",
  "membership.awareness": "macula_membership_awareness",
  "membership.directory": "macula_membership_directory_entries",
  // Tracing (when `trace.otlp` is set).
  "tracing.exported": "macula_tracing_spans_total",
  "tracing.dropped": "macula_tracing_spans_total",
  "tracing.pending": "macula_tracing_spans_pending",
  "tracing.failedExports": "macula_tracing_failed_exports_total",
};

/** Numeric leaves that are not a counter or gauge of the node's activity, and why. */
const NOT_METRICS: Record<string, string> = {
  // Configuration, not activity: the relay's limits as configured.
  "relay.limits.maxSessions": "configuration",
  "relay.limits.sessionsPerPeer": "configuration",
  "relay.limits.bytesPerSecond": "configuration",
  "relay.limits.burstBytes": "configuration",
  // Per relayed session (up to 1,024 of them): the totals are macula_relay_packets_total and
  // macula_relay_bytes_total, the count macula_relay_sessions; ages are not counters.
  "relay.sessions[].packets": "per allocation; totals in macula_relay_*",
  "relay.sessions[].bytes": "per allocation; totals in macula_relay_*",
  "relay.sessions[].ageMs": "per allocation; an age",
  "relay.sessions[].idleMs": "per allocation; an age",
};

/** Every numeric leaf of `v`, as `a.b`, `a.*` (map keys) and `a[].b` (list elements). */
function numericLeaves(v: unknown, path = "", mapsAt: ReadonlySet<string>): Set<string> {
  const out = new Set<string>();
  const walk = (x: unknown, p: string) => {
    if (typeof x === "number") out.add(p);
    else if (Array.isArray(x)) { for (const e of x) walk(e, `${p}[]`); }
    else if (x !== null && typeof x === "object") {
      for (const [k, e] of Object.entries(x)) {
        walk(e, mapsAt.has(p) ? `${p}.*` : p === "" ? k : `${p}.${k}`);
      }
    }
  };
  walk(v, path);
  return out;
}

/** Snapshot fields that are maps keyed by data (method, cause, frame): their keys are `*`. */
const MAPS = new Set(
  Object.keys(LEAF_METRICS).filter((k) => k.endsWith(".*")).map((k) => k.slice(0, -2)),
);

// ---------------------------------------------------------------------------------------------

let m: Mesh;
let admin: Admin;
let admin1: Admin;
let otlp: OtlpReceiver;

beforeAll(async () => {
  otlp = await otlpReceiver();
  m = await mesh(3, { admin: null, trace: { otlp: otlp.url } });
  // mesh() waits for routes; the counts below also need every member known alive.
  await Promise.all(m.nodes.map((n) => n.waitForMembers(3)));
  admin = await startAdmin(m.nodes[0]!, { host: "127.0.0.1", port: 0 });
  admin1 = await startAdmin(m.nodes[1]!, { host: "127.0.0.1", port: 0 });
}, 60_000);

afterAll(async () => {
  await admin?.close();
  await admin1?.close();
  await m?.close();
  await otlp?.close();
});

test("every metric has its row in docs/operations.md, with its type and help", () => {
  const doc = readFileSync(new URL("../../docs/operations.md", import.meta.url), "utf8");
  const rows = new Map<string, string[]>();
  for (const line of doc.split("\n")) {
    const m = /^\| `(macula_[a-z_]+)` +\|(.*)\|$/.exec(line);
    if (m) rows.set(m[1]!, m[2]!.split("|").map((c) => c.trim()));
  }
  const wrong = METRICS.filter((m) => {
    const r = rows.get(m.name);
    return !r || r[0] !== m.type || r[2] !== m.help;
  }).map((m) => m.name);
  expect(wrong, "metrics without a matching row in docs/operations.md").toEqual([]);
});

describe("/metrics", () => {
  test("parses back as the Prometheus text format: typed, macula_ names, base units, realm on every series", async () => {
    const { fams } = await scrape(admin);
    expect(fams.size).toBeGreaterThan(80);
    for (const f of fams.values()) {
      expect(f.name.startsWith("macula_"), f.name).toBe(true);
      expect(["counter", "gauge", "histogram"], f.name).toContain(f.type);
      expect(f.help.length, `${f.name} has help`).toBeGreaterThan(5);
      if (f.type === "counter") expect(f.name.endsWith("_total"), f.name).toBe(true);
      else expect(f.name.endsWith("_total"), f.name).toBe(false);
      // Base units only: seconds and bytes, never ms or KiB.
      expect(/_(ms|milliseconds|kib|kb|mib)(_|$)/.test(f.name), f.name).toBe(false);
      for (const s of f.samples) {
        expect(s.labels.realm, `${s.name} ${JSON.stringify(s.labels)}`).toBe("dev");
        expect(Number.isFinite(s.value) || s.labels.le === "+Inf", s.name).toBe(true);
      }
    }
    expect(valueOf(fams, "macula_node_info", { node_id: m.nodes[0]!.nodeId })).toBe(1);
    // Sessions by path and membership by state, as the node sees them.
    expect(valueOf(fams, "macula_routes", { path: "direct" })).toBe(2);
    expect(valueOf(fams, "macula_membership_members", { state: "alive" })).toBe(3);
    expect(valueOf(fams, "macula_quic_sent_bytes_total")).toBeGreaterThan(0);
    expect(valueOf(fams, "macula_quic_rtt_seconds", { stat: "max" })).toBeGreaterThanOrEqual(0);
    expect(fams.get("macula_route_rtt_seconds")!.samples.map((s) => s.labels.peer).sort())
      .toEqual([m.nodes[1]!.nodeId, m.nodes[2]!.nodeId].sort());
  });

  test("promtool check metrics passes", async () => {
    const { text } = await scrape(admin);
    const p = Bun.spawn(["promtool", "check", "metrics"], {
      stdin: new TextEncoder().encode(text),
      stdout: "pipe",
      stderr: "pipe",
    });
    const [code, out, err] = await Promise.all([
      p.exited,
      new Response(p.stdout).text(),
      new Response(p.stderr).text(),
    ]);
    expect(`${out}${err}`).toBe("");
    expect(code).toBe(0);
  });

  test("every numeric leaf of a real node's snapshot is a metric (or excluded, with a reason)", async () => {
    const snap = m.nodes[0]!.snapshot();
    expect(snap.tracing, "tracing on, so its leaves are seen").not.toBeNull();
    const leaves = numericLeaves(snap, "", MAPS);
    const { fams } = await scrape(admin);
    const missing = [...leaves].filter((l) => !(l in LEAF_METRICS) && !(l in NOT_METRICS));
    expect(missing, "snapshot leaves with no metric: map them in LEAF_METRICS").toEqual([]);
    const unknown = Object.entries(LEAF_METRICS).filter(([, name]) => !fams.has(name));
    expect(unknown, "mapped to a metric /metrics does not have").toEqual([]);
    // The mapping names leaves that exist (a renamed field is caught, not silently mapped).
    const stale = Object.keys(LEAF_METRICS).filter((k) =>
      !k.includes("*") && !k.includes("[]") && !leaves.has(k)
    );
    expect(stale, "mapped leaves the snapshot does not have").toEqual([]);
  });

  test("counters follow the node: publishes, deliveries and forwards", async () => {
    const sub = await m.client(1);
    const s = sub.subscribe("admin.test.>");
    await sub.flush();
    const pub = await m.client(0);
    await m.nodes[0]!.waitForRoutes(2);
    // The subscription's interest reaches node 0 before its publishes count as forwarded.
    for (let i = 0; i < 200 && m.nodes[0]!.snapshot().remoteInterest === 0; i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
    const before = (await scrape(admin)).fams;
    const sent = (op: string, f = before) =>
      valueOf(f, "macula_messaging_client_sent_messages_total", {
        messaging_system: "macula",
        messaging_operation_name: op,
      });
    for (let i = 0; i < 5; i++) pub.publish(`admin.test.${i}`, "x");
    await pub.flush();
    expect((await take(s, 5)).length).toBe(5);
    const after = (await scrape(admin)).fams;
    expect(sent("publish", after) - sent("publish")).toBe(5);
    expect(sent("forward", after) - sent("forward")).toBe(5);
    const delivered1 = (await scrape(admin1)).fams;
    expect(
      valueOf(delivered1, "macula_messaging_client_consumed_messages_total", {
        messaging_operation_name: "deliver",
      }),
    ).toBe(m.nodes[1]!.snapshot().router.delivered);
    expect(m.nodes[1]!.snapshot().router.delivered).toBeGreaterThanOrEqual(5);
  });

  test("one registry per node: each node's own values, its own id", async () => {
    const a = (await scrape(admin)).fams;
    const b = (await scrape(admin1)).fams;
    expect(a.get("macula_node_info")!.samples.map((s) => s.labels.node_id)).toEqual([
      m.nodes[0]!.nodeId,
    ]);
    expect(b.get("macula_node_info")!.samples.map((s) => s.labels.node_id)).toEqual([
      m.nodes[1]!.nodeId,
    ]);
    expect(admin.metrics.registry).not.toBe(admin1.metrics.registry);
  });

  test("the RPC latency histogram counts calls by outcome; unknown outcomes are `other`", async () => {
    admin1.metrics.callSettled("ok", 0.003);
    admin1.metrics.callSettled("ok", 0.0001);
    admin1.metrics.callSettled("timeout", 2);
    admin1.metrics.callSettled("no_provider", Number.NaN);
    admin1.metrics.callSettled('made"up\nby a peer', 0.5);
    const { fams } = await scrape(admin1);
    const f = "macula_messaging_client_operation_duration_seconds";
    expect(fams.get(f)!.type).toBe("histogram");
    const at = (outcome: string, le: string) =>
      valueOf(fams, f, { outcome, le, messaging_operation_name: "call" }, `${f}_bucket`);
    expect(at("ok", "0.0005")).toBe(1);
    expect(at("ok", "0.0025")).toBe(1);
    expect(at("ok", "0.005")).toBe(2);
    expect(at("timeout", "1")).toBe(0);
    expect(at("timeout", "2.5")).toBe(1);
    expect(at("no_provider", String(CALL_BUCKETS[0]))).toBe(1); // NaN counted as 0 s
    expect(at("other", "0.5")).toBe(1);
    expect(valueOf(fams, f, { outcome: "ok" }, `${f}_count`)).toBe(2);
    expect(valueOf(fams, f, { outcome: "timeout" }, `${f}_sum`)).toBe(2);
    const outcomes = new Set(fams.get(f)!.samples.map((s) => s.labels.outcome));
    expect([...outcomes].sort()).toEqual(["no_provider", "ok", "other", "timeout"]);
  });

  test("label values from peers are bounded: the rest are summed as `other`", () => {
    const many = Object.fromEntries(
      Array.from(
        { length: MAX_LABEL_VALUES + 10 },
        (_, i) => [`m${String(i).padStart(3, "0")}`, 1],
      ),
    );
    const out = bounded("method", many);
    expect(out.length).toBe(MAX_LABEL_VALUES);
    expect(out.at(-1)).toEqual([{ method: "other" }, 11]);
    expect(out.reduce((a, [, v]) => a + v, 0)).toBe(MAX_LABEL_VALUES + 10);
    expect(bounded("cause", { a: 2, b: 3 })).toEqual([[{ cause: "a" }, 2], [{ cause: "b" }, 3]]);
  });

  test("QUIC byte counters do not go back when a connection closes", async () => {
    const ep = m.nodes[0]!.endpoint;
    const c = await m.client(0);
    await c.flush();
    const before = ep.traffic.bytesReceived;
    const open = ep.connections.length;
    await c.close();
    for (let i = 0; i < 200 && ep.connections.length >= open; i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(ep.connections.length).toBeLessThan(open);
    expect(ep.traffic.bytesReceived).toBeGreaterThanOrEqual(before);
  });
});

describe("/healthz and /readyz", () => {
  test("healthz: 200 {status: ok}; readyz: 200 with every check passing for a joined node", async () => {
    const h = await fetch(`${admin.url}/healthz`);
    expect(h.status).toBe(200);
    expect(await h.json()).toEqual({ status: "ok" });
    const r = await fetch(`${admin1.url}/readyz`);
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({
      ready: true,
      checks: [
        { name: "listening", ok: true },
        { name: "certificate", ok: true },
        { name: "joined", ok: true },
      ],
    });
  });

  test("a seed that never answers: 503 saying why; after stop, not listening either", async () => {
    const silent = dgram.createSocket("udp4");
    await new Promise<void>((r) => silent.bind(0, "127.0.0.1", () => r()));
    const seedPort = silent.address().port;
    const dir = mkdtempSync(join(tmpdir(), "macula-admin-"));
    const node = await Node.start({
      dataDir: join(dir, "n"),
      listen: { host: "127.0.0.1", port: 0 },
      devCaDir: m.nodes[0]!.caDir!,
      join: [{ host: "127.0.0.1", port: seedPort }],
      admin: null,
    });
    const a = await startAdmin(node, { host: "127.0.0.1", port: 0 });
    try {
      const r = await fetch(`${a.url}/readyz`);
      expect(r.status).toBe(503);
      expect(r.headers.get("content-type")).toBe("application/json; charset=utf-8");
      const body = await r.json() as {
        ready: boolean;
        checks: { name: string; ok: boolean; why?: string }[];
      };
      expect(body.ready).toBe(false);
      const joined = body.checks.find((c) => c.name === "joined")!;
      expect(joined.ok).toBe(false);
      expect(joined.why).toContain(`127.0.0.1:${seedPort}`);
      expect(body.checks.find((c) => c.name === "certificate")).toEqual({
        name: "certificate",
        ok: true,
      });
      // The process still serves.
      expect((await fetch(`${a.url}/healthz`)).status).toBe(200);
      await node.stop();
      const after = await (await fetch(`${a.url}/readyz`)).json() as typeof body;
      expect(after.checks.find((c) => c.name === "listening")).toEqual({
        name: "listening",
        ok: false,
        why: "the node is stopping",
      });
    } finally {
      await a.close();
      await node.stop();
      silent.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  test("a certificate not valid now is not ready, with its dates", () => {
    const node = m.nodes[0]!;
    const past = { notBefore: new Date("2020-01-01"), notAfter: new Date("2021-01-01") };
    const r = readiness(node, past);
    expect(r.ready).toBe(false);
    expect(r.checks.find((c) => c.name === "certificate")!.why).toBe(
      "the node's certificate expired on 2021-01-01T00:00:00.000Z",
    );
    const future = { notBefore: new Date("2999-01-01"), notAfter: new Date("3000-01-01") };
    expect(readiness(node, future).checks.find((c) => c.name === "certificate")!.why).toContain(
      "valid from 2999-01-01",
    );
    expect(readiness(node, { problem: "cannot read x" }).checks[1]).toEqual({
      name: "certificate",
      ok: false,
      why: "cannot read x",
    });
  });
});

describe("the listener's bounds", () => {
  test("an unknown path is 404 listing the paths", async () => {
    const r = await fetch(`${admin.url}/nope?x=1`);
    expect(r.status).toBe(404);
    const t = await r.text();
    for (const p of Object.keys(ADMIN_PATHS)) expect(t).toContain(`  ${p} `);
  });

  test("only GET and HEAD: anything else is 405 with Allow", async () => {
    for (const method of ["POST", "PUT", "DELETE", "PATCH"]) {
      const r = await fetch(`${admin.url}/metrics`, { method, body: "x" });
      expect(r.status, method).toBe(405);
      expect(r.headers.get("allow")).toBe("GET, HEAD");
      await r.text();
    }
    const h = await fetch(`${admin.url}/healthz`, { method: "HEAD" });
    expect(h.status).toBe(200);
    expect(h.headers.get("content-length")).toBe(String('{"status":"ok"}\n'.length));
    expect(await h.text()).toBe("");
  });

  test("the page and its data: HTML with a CSP, JSON with the members", async () => {
    const p = await fetch(`${admin.url}/`);
    expect(p.status).toBe(200);
    expect(p.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(p.headers.get("content-security-policy")).toContain("default-src 'none'");
    expect(await p.text()).toContain("<title>Macula node</title>");
    const t = await (await fetch(`${admin.url}/api/topology`)).json() as {
      node: { id: string };
      members: { id: string; state: string }[];
      routes: { nodeId: string; path: string }[];
    };
    expect(t.node.id).toBe(m.nodes[0]!.nodeId);
    expect(t.members.map((x) => x.state)).toEqual(["alive", "alive", "alive"]);
    expect(t.routes.map((x) => x.path)).toEqual(["direct", "direct"]);
  });

  test(`more than ${ADMIN_LIMITS.maxConnections} open connections: the extra are closed unanswered`, async () => {
    const url = new URL(admin.url);
    const socks: Socket[] = [];
    let answered = 0;
    let refused = 0;
    try {
      // Each connection makes a request and stays open (keep-alive), one after the other.
      for (let i = 0; i < ADMIN_LIMITS.maxConnections + 4; i++) {
        const s = tcpConnect(Number(url.port), "127.0.0.1");
        s.on("error", () => {});
        socks.push(s);
        const got = new Promise<string>((r) => {
          s.once("data", () => r("answered"));
          s.once("close", () => r("closed"));
        });
        await new Promise((r) => s.once("connect", r));
        s.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        if (await got === "answered") answered++;
        else refused++;
      }
      expect(answered).toBeLessThanOrEqual(ADMIN_LIMITS.maxConnections);
      expect(refused).toBeGreaterThanOrEqual(4);
    } finally {
      for (const s of socks) s.destroy();
    }
    // Room again once they are gone.
    for (let i = 0; i < 200; i++) {
      const r = await fetch(`${admin.url}/healthz`).catch(() => null);
      if (r?.status === 200) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    expect((await fetch(`${admin.url}/healthz`)).status).toBe(200);
  });

  test("headers trickled forever: the connection is cut at the headers' bound", async () => {
    const url = new URL(admin.url);
    const s = tcpConnect(Number(url.port), "127.0.0.1");
    s.on("error", () => {});
    await new Promise((r) => s.once("connect", r));
    const closed = new Promise<string>((r) => {
      s.once("close", () => r("closed"));
      s.once("data", () => r("answered"));
    });
    s.write("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    // A header line every half second: never idle, never done.
    const drip = setInterval(() => s.writable && s.write("X-Slow: 1\r\n"), 500);
    const bound = new Promise<string>((r) =>
      setTimeout(() => r("still open"), ADMIN_LIMITS.headersTimeoutMs + 3000)
    );
    try {
      expect(await Promise.race([closed, bound])).toBe("closed");
    } finally {
      clearInterval(drip);
      s.destroy();
    }
  }, 60_000);

  test("a port in use: an AdminError naming the address", async () => {
    const busy = createTcpServer();
    await new Promise<void>((r) => busy.listen(0, "127.0.0.1", () => r()));
    const port = (busy.address() as { port: number }).port;
    try {
      const e = await startAdmin(m.nodes[0]!, { host: "127.0.0.1", port }).catch((x) => x);
      expect(e).toBeInstanceOf(AdminError);
      expect((e as Error).message).toBe(
        `admin listener: cannot listen on tcp 127.0.0.1:${port}: the port is in use (another ` +
          `node or program has it; choose another with admin.listen or --admin, or port 0 for a ` +
          `free one, or off to turn it off)`,
      );
    } finally {
      busy.close();
    }
  });
});
