/**
 * recipes/grafana/dashboard.json and recipes/prometheus against a real node. No Grafana runs
 * here (it is not in Debian), so the dashboard is checked as Grafana reads it (panels, grid,
 * variables, datasource) and its queries are checked where they run: every PromQL expression
 * (with the dashboard's variables filled in) passes `promtool check rules`; every metric name it
 * uses is in the /metrics of a real two-node mesh on 127.0.0.1 (admin listeners on, RPC calls
 * made so the latency histogram has series); and Debian's `prometheus`, started on 127.0.0.1 with
 * the recipe's scrape config pointed at the two admin listeners, scrapes them (`up == 1`),
 * answers every dashboard query, and has data for the node overview's panels.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { Node } from "../../lib/node/node.ts";
import { type Admin, startAdmin } from "../../lib/observe/admin.ts";
import { type Mesh, mesh } from "../helpers/mesh.ts";
import { RECIPES, tool } from "./helpers.ts";

// deno-lint-ignore no-explicit-any
type Obj = any;

const DASHBOARD = JSON.parse(readFileSync(join(RECIPES, "grafana", "dashboard.json"), "utf8"));
const panels: Obj[] = DASHBOARD.panels;
const graphs = panels.filter((p) => p.type !== "row");
const variables: Obj[] = DASHBOARD.templating.list;

/** The values the dashboard's variables take here (Grafana's `$__rate_interval` included). */
const FILL: Record<string, string> = {
  job: "macula",
  instance: ".+",
  __rate_interval: "15s",
};

/** `expr` with the dashboard's variables replaced; throws on a variable it does not know. */
function filled(expr: string): string {
  return expr.replace(/\$\{?(\w+)\}?/g, (_m, name: string) => {
    const v = FILL[name];
    if (v === undefined) throw new Error(`unknown variable $${name} in ${expr}`);
    return v;
  });
}

/** The selector a `label_values(<selector>, <label>)` variable query lists values of. */
function variableSelector(v: Obj): string {
  const m = /^label_values\((.+),\s*(\w+)\)$/.exec(v.definition);
  if (!m) throw new Error(`variable ${v.name}: not a label_values query: ${v.definition}`);
  return m[1]!;
}
const queryVariables = variables.filter((v) => v.type === "query");

/** Every PromQL expression of the dashboard: each panel's targets and each variable's selector. */
const EXPRS: string[] = [
  ...graphs.flatMap((p) => p.targets.map((t: Obj) => t.expr as string)),
  ...queryVariables.map(variableSelector),
];

/** The metric names the expressions use. */
const NAMES = [...new Set(EXPRS.flatMap((e) => e.match(/\bmacula_[a-z0-9_]+/g) ?? []))].sort();

let dir: string;

/** `promtool check rules` on a rule file recording each of `exprs`. */
async function checkRules(exprs: string[], name: string) {
  const file = join(dir, `${name}.rules.yml`);
  writeFileSync(
    file,
    stringify({
      groups: [{
        name: "dashboard",
        rules: exprs.map((e, i) => ({ record: `dashboard:expr_${i}`, expr: filled(e) })),
      }],
    }),
  );
  return await tool(["promtool", "check", "rules", file]);
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "macula-grafana-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("recipes/grafana/dashboard.json", () => {
  test("a dashboard Grafana can import or provision: uid, title, schema, a Prometheus datasource variable", () => {
    expect(DASHBOARD.uid).toBe("macula-node");
    expect(DASHBOARD.title).toBe("Macula node");
    expect(DASHBOARD.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(DASHBOARD.id).toBeUndefined(); // an id is the Grafana instance's own
    expect(variables.map((v) => [v.name, v.type])).toEqual([
      ["datasource", "datasource"],
      ["job", "query"],
      ["instance", "query"],
    ]);
    expect(variables[0].query).toBe("prometheus");
    const instance = variables.find((v) => v.name === "instance");
    expect(instance.multi && instance.includeAll).toBe(true);
    expect(instance.allValue).toBe(FILL.instance);
  });

  test("every panel queries the datasource variable; ids and refIds unique; the grid has no overlap", () => {
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const cells = new Set<string>();
    for (const p of panels) {
      const g = p.gridPos;
      expect(g.x >= 0 && g.w > 0 && g.x + g.w <= 24, `${p.title}: within 24 columns`).toBe(true);
      for (let x = g.x; x < g.x + g.w; x++) {
        for (let y = g.y; y < g.y + g.h; y++) {
          expect(cells.has(`${x},${y}`), `${p.title} overlaps at ${x},${y}`).toBe(false);
          cells.add(`${x},${y}`);
        }
      }
    }
    for (const p of graphs) {
      expect(p.datasource, p.title).toEqual({ type: "prometheus", uid: "${datasource}" });
      expect(p.targets.length, p.title).toBeGreaterThan(0);
      expect(typeof p.description, p.title).toBe("string");
      const refIds = p.targets.map((t: Obj) => t.refId);
      expect(new Set(refIds).size, p.title).toBe(refIds.length);
      for (const t of p.targets) {
        expect(t.datasource, p.title).toEqual(p.datasource);
        // Every series narrowed to the chosen job and nodes.
        expect(t.expr, p.title).toContain('job="$job", instance=~"$instance"');
      }
    }
  });

  test("the node overview: up, members, routes, messages, RPC latency, QUIC, relay, DHT", () => {
    expect(panels.filter((p) => p.type === "row").map((p) => p.title)).toEqual([
      "Node",
      "Membership",
      "Routes and sessions",
      "Messages",
      "RPC",
      "QUIC",
      "Relay and NAT traversal",
      "DHT",
    ]);
    const exprOf = (title: string) =>
      graphs.find((p) => p.title === title)!.targets.map((t: Obj) => t.expr).join("\n");
    expect(exprOf("Up")).toBe('up{job="$job", instance=~"$instance"}');
    expect(exprOf("Members by state")).toContain("by (instance, state) (macula_membership_members");
    expect(exprOf("Routes by path")).toContain("by (instance, path) (macula_routes{");
    expect(exprOf("Messages out")).toContain("rate(macula_messaging_client_sent_messages_total");
    expect(exprOf("Messages in")).toContain("rate(macula_messaging_client_consumed_messages_total");
    expect(exprOf("Messages dropped")).toContain("rate(macula_messaging_dropped_messages_total");
    const latency = exprOf("RPC latency by outcome");
    for (const q of ["0.5", "0.9", "0.99"]) {
      expect(latency).toContain(
        `histogram_quantile(${q}, sum by (le, outcome) (rate(macula_messaging_client_operation_duration_seconds_bucket`,
      );
    }
    expect(exprOf("Packets")).toContain("macula_quic_received_packets_total");
    expect(exprOf("Bytes")).toContain("macula_quic_sent_bytes_total");
    expect(exprOf("Losses")).toContain("macula_quic_lost_packets_total");
    expect(exprOf("RTT")).toContain("macula_quic_rtt_seconds");
    expect(exprOf("Relay")).toContain("macula_relay_sessions");
    expect(exprOf("DHT requests")).toContain("macula_dht_requests_total");
  });

  test("every expression is valid PromQL: promtool check rules", async () => {
    const r = await checkRules(EXPRS, "dashboard");
    expect(r.stderr).toBe("");
    expect(r.stdout).toContain(`SUCCESS: ${EXPRS.length} rules found`);
    expect(r.code).toBe(0);
  });

  test("the check catches an expression that is not PromQL", async () => {
    const r = await checkRules(["sum by (instance (macula_routes)"], "broken");
    expect(r.code).toBe(1);
    expect(r.stderr + r.stdout).toContain("parse error");
  });
});

// ---------------------------------------------------------------------------------------------
// A real mesh, its admin listeners, and Debian's prometheus scraping them

let m: Mesh;
let admins: Admin[] = [];
let metricsText = "";

describe("the dashboard against a real mesh", () => {
  beforeAll(async () => {
    m = await mesh(2, { admin: null });
    // mesh() waits for routes; "members alive" below also needs each member known alive.
    await Promise.all(m.nodes.map((n) => n.waitForMembers(2)));
    admins = await Promise.all(
      m.nodes.map((n) => startAdmin(n, { host: "127.0.0.1", port: 0 })),
    );
    // What the CLI's `node up` does: the router reports each settled call to the metrics.
    for (const [i, n] of m.nodes.entries()) n.router.observer = admins[i]!.metrics;
    const server = await m.client(1);
    const caller = await m.client(0);
    await server.serve("echo.upper", (p) => p).ready;
    // Bounded: the provider's interest reaches node 0 within a few gossip rounds.
    let answered = false;
    for (let i = 0; i < 100 && !answered; i++) {
      answered = await caller.call("echo.upper", "hi", { timeoutMs: 2_000 }).then(
        () => true,
        () => false,
      );
    }
    if (!answered) throw new Error("echo.upper was never answered");
    await caller.call("nobody.serves.this", "x", { timeoutMs: 2_000 }).catch(() => {});
    // A node of another realm's CA knocks: node 0 refuses it at the handshake (unknown-ca), so
    // the refusals by cause have a series.
    const stranger = await Node.start({
      dataDir: join(m.dir, "stranger"),
      listen: { host: "127.0.0.1", port: 0 },
      join: [{ host: "127.0.0.1", port: m.nodes[0]!.endpoint.address.port }],
      admin: null,
    });
    try {
      for (let i = 0; i < 100; i++) {
        metricsText = await (await fetch(`${admins[0]!.url}/metrics`)).text();
        if (metricsText.includes("macula_refused_peers_total{")) break;
        await Bun.sleep(100);
      }
    } finally {
      await stranger.stop();
    }
  }, 120_000);

  afterAll(async () => {
    await stopPrometheus();
    await Promise.allSettled(admins.map((a) => a.close()));
    await m?.close();
  });

  test("every metric name the dashboard uses is in a real node's /metrics", () => {
    const exposed = new Set(
      metricsText.split("\n").filter((l) => l !== "" && !l.startsWith("#"))
        .map((l) => /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(l)![0]),
    );
    expect(NAMES.length).toBeGreaterThan(40);
    const missing = NAMES.filter((n) => !exposed.has(n));
    expect(missing).toEqual([]);
    // The RPC histogram has both outcomes of the calls made.
    expect(metricsText).toMatch(
      /macula_messaging_client_operation_duration_seconds_count\{[^}]*outcome="ok"/,
    );
    expect(metricsText).toMatch(
      /macula_messaging_client_operation_duration_seconds_count\{[^}]*outcome="no_provider"/,
    );
  });

  test(
    "prometheus with the recipe's scrape config scrapes both nodes and answers every dashboard query",
    async () => {
      const api = await startPrometheus(admins.map((a) => `127.0.0.1:${a.port}`));
      // Bounded polls (Prometheus has no event to wait on): both targets up, then two scrapes of
      // each so that rate() has data.
      const up = await poll(api, 'up{job="macula"} == 1', (r) => r.length === 2);
      expect(up.map((s: Obj) => s.metric.instance).sort()).toEqual(
        admins.map((a) => `127.0.0.1:${a.port}`).sort(),
      );
      const info = await poll(api, 'macula_node_info{job="macula"}', (r) => r.length === 2);
      expect(info.map((s: Obj) => s.metric.node_id).sort()).toEqual(
        m.nodes.map((n) => n.nodeId).sort(),
      );
      expect(info.every((s: Obj) => s.metric.realm === m.nodes[0]!.realm)).toBe(true);
      const rate = filled(
        'sum by (instance) (rate(macula_quic_received_packets_total{job="$job"}[$__rate_interval]))',
      );
      await poll(api, rate, (r) => r.length === 2);
      for (const e of EXPRS) {
        const res = await query(api, filled(e));
        expect(res.status, e).toBe("success");
      }
      // The overview has data: members alive, a direct route each, QUIC packets, RPC latency.
      const members = await query(api, filled(exprOf("Members by state")));
      const alive = members.data.result.filter((s: Obj) => s.metric.state === "alive");
      expect(alive.map((s: Obj) => s.value[1])).toEqual(["2", "2"]);
      const routes = await query(api, filled(exprOf("Routes by path")));
      const direct = routes.data.result.filter((s: Obj) => s.metric.path === "direct");
      expect(direct.map((s: Obj) => s.value[1])).toEqual(["1", "1"]);
      const latency = await query(api, filled(exprOf("RPC latency by outcome")));
      expect(latency.data.result.map((s: Obj) => s.metric.outcome).sort()).toEqual([
        "no_provider",
        "ok",
      ]);
    },
    120_000,
  );
});

const exprOf = (title: string): string => graphs.find((p) => p.title === title)!.targets[0].expr;

let prometheus: ReturnType<typeof Bun.spawn> | null = null;

/** A port free on 127.0.0.1 now (the kernel's choice). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Starts /usr/bin/prometheus on 127.0.0.1 with the recipe's prometheus.yml (and rules), its
 * targets file pointed at `targets` and the intervals at 1 s; its API's base URL once ready.
 */
async function startPrometheus(targets: string[]): Promise<string> {
  const conf = join(dir, "prometheus");
  cpSync(join(RECIPES, "prometheus"), conf, { recursive: true });
  const yml = parse(readFileSync(join(conf, "prometheus.yml"), "utf8"));
  yml.global.scrape_interval = "1s";
  yml.global.evaluation_interval = "1s";
  for (const job of yml.scrape_configs) job.scrape_timeout = "1s";
  writeFileSync(join(conf, "prometheus.yml"), stringify(yml));
  writeFileSync(join(conf, "targets", "local.yml"), stringify([{ targets }]));
  let lastErr = "";
  // A free port may be taken between the look and prometheus's bind: a few tries, bounded.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const p = Bun.spawn({
      cmd: [
        "/usr/bin/prometheus",
        `--config.file=${join(conf, "prometheus.yml")}`,
        `--storage.tsdb.path=${join(dir, `tsdb-${attempt}`)}`,
        `--web.listen-address=127.0.0.1:${port}`,
        "--log.level=warn",
      ],
      cwd: conf,
      stdin: "ignore",
      stdout: "ignore",
      stderr: "pipe",
    });
    prometheus = p;
    const base = `http://127.0.0.1:${port}`;
    const stderr = new Response(p.stderr as ReadableStream).text();
    for (let i = 0; i < 200 && p.exitCode === null; i++) {
      const ready = await fetch(`${base}/-/ready`).then((r) => r.ok, () => false);
      if (ready) return base;
      await Bun.sleep(100);
    }
    await stopPrometheus();
    lastErr = await stderr;
  }
  throw new Error(`prometheus did not start: ${lastErr}`);
}

async function stopPrometheus(): Promise<void> {
  const p = prometheus;
  prometheus = null;
  if (!p || p.exitCode !== null) return;
  p.kill("SIGTERM");
  const exited = await Promise.race([
    p.exited.then(() => true),
    Bun.sleep(10_000).then(() => false),
  ]);
  if (!exited) {
    p.kill("SIGKILL");
    await p.exited;
  }
}

/** One instant query of Prometheus's HTTP API. */
async function query(api: string, q: string): Promise<Obj> {
  const r = await fetch(`${api}/api/v1/query?query=${encodeURIComponent(q)}`);
  return await r.json();
}

/** Polls `q` until `ok` holds for its result (bounded: 30 s); the result. */
async function poll(api: string, q: string, ok: (result: Obj[]) => boolean): Promise<Obj[]> {
  let last: Obj = null;
  for (let i = 0; i < 300; i++) {
    last = await query(api, q);
    if (last.status === "success" && ok(last.data.result)) return last.data.result;
    await Bun.sleep(100);
  }
  throw new Error(`${q}: never as expected; last answer ${JSON.stringify(last)}`);
}
