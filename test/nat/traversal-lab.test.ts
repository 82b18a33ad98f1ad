/**
 * Macula nodes behind real (namespaced) NATs: a rendezvous node on the lab's internet, one node
 * behind each NAT kind (two behind symmetric NATs). Every pair reaches each other by node id;
 * pairs the NATs allow are hole punched, the others relayed (docs/nat-traversal.md has the table);
 * the routers drop unsolicited inbound packets, as home routers do;
 * `macula netcheck` behind each NAT names its behaviour. Needs root, ip and iptables (.ci/run).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import process from "node:process";
import { createLab, type Host, type Lab } from "../helpers/natlab.ts";
import { Proc } from "../helpers/proc.ts";

const MAIN = resolve(import.meta.dir, "../../cli/main.ts");
const KINDS = ["eim-fc", "eim-pr", "sym", "sym"] as const;
let lab: Lab;
let dir: string;
const procs: Proc[] = [];
let creds = "";
let rendezvousId = "";
const nodes: { host: Host; id: string }[] = [];

async function start(
  ns: string,
  args: string[],
): Promise<{ nodeId: string; credsDir: string; caDir: string }> {
  const p = new Proc(
    ["node", "up", ...args],
    lab.spawn(ns, [process.execPath, MAIN, "node", "up", ...args, "--ready-json"]),
  );
  procs.push(p);
  await p.waitFor("out", "\n", 30_000);
  return JSON.parse(p.lines()[0]!);
}

/** Runs the CLI in `ns` against the node of that namespace. */
async function cli(
  ns: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return await lab.exec(ns, [
    process.execPath,
    MAIN,
    ...args,
    "--server",
    "quic://127.0.0.1:4433",
    "--creds",
    creds,
  ], { timeoutMs: 40_000 });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "macula-natlab-"));
  // Routers drop unsolicited inbound packets, as home routers do (without it, Linux confirms a
  // conntrack entry for an unsolicited packet, and that entry changes later mappings).
  lab = await createLab({ nats: KINDS.map((kind) => ({ kind, firewall: true })) });
  const r = await start(lab.internet.ns, [
    "--data-dir",
    join(dir, "r"),
    "--listen",
    `${lab.internet.addresses[0]}:4433`,
  ]);
  rendezvousId = r.nodeId;
  creds = r.credsDir;
  for (const host of lab.hosts) {
    const config = join(dir, `${host.name}.yaml`);
    // A node behind a NAT knows only its LAN address.
    writeFileSync(config, `advertise: quic://${host.address}:4433\n`);
    const n = await start(host.ns, [
      "--config",
      config,
      "--data-dir",
      join(dir, host.name),
      "--dev-ca-dir",
      r.caDir,
      "--listen",
      "0.0.0.0:4433",
      "--join",
      `quic://${lab.internet.addresses[0]}:4433`,
    ]);
    nodes.push({ host, id: n.nodeId });
  }
}, 120_000);

afterAll(async () => {
  for (const p of procs) p.p.kill("SIGKILL");
  await lab?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

const expected = (a: string, b: string): "punched" | "relayed" => {
  if (a === "eim-fc" || b === "eim-fc") return "punched";
  if (a === "sym" || b === "sym") return "relayed";
  return "punched";
};

describe("NAT traversal in the lab", () => {
  test("every node reaches the rendezvous directly", async () => {
    for (const n of nodes) {
      const r = await cli(n.host.ns, ["ping", rendezvousId, "--count", "1", "--json"]);
      expect(r.stderr).toBe("");
      expect(JSON.parse(r.stdout).path).toBe("direct");
    }
  }, 120_000);

  test("every pair connects: punched where the NATs allow it, relayed otherwise", async () => {
    const results: string[] = [];
    const got: [string, string][] = [];
    for (let i = 0; i < nodes.length; i++) {
      for (let j = 0; j < nodes.length; j++) {
        if (i === j) continue;
        const a = nodes[i]!, b = nodes[j]!;
        const r = await cli(a.host.ns, ["ping", b.id, "--count", "1", "--json"]);
        const o = JSON.parse(r.stdout.trim().split("\n")[0]!);
        results.push(
          `${a.host.kind}→${b.host.kind}: ${o.path ?? o.error} ${JSON.stringify(o.tried ?? [])}`,
        );
        got.push([o.path ?? o.error, expected(a.host.kind, b.host.kind)]);
      }
    }
    console.log(results.join("\n"));
    for (const [path, want] of got) expect(path).toBe(want);
    // The full-cone node's own view: its sessions to the other NATed nodes are punched, with an RTT.
    const fc = nodes.find((x) => x.host.kind === "eim-fc")!;
    const snap = JSON.parse((await cli(fc.host.ns, ["inspect", "node", "--json"])).stdout);
    const punched = snap.peers.filter((p: { path: string }) => p.path === "punched");
    expect(punched.length).toBeGreaterThanOrEqual(1);
    for (const p of punched) expect(p.rttMs).toBeGreaterThanOrEqual(0);
  }, 300_000);

  test("netcheck behind each NAT names its mapping and filtering (RFC 5780)", async () => {
    const [ip1, ip2] = lab.internet.addresses;
    const stun = new Proc(
      ["stun", "serve"],
      lab.spawn(lab.internet.ns, [
        process.execPath,
        MAIN,
        "stun",
        "serve",
        "--host",
        ip1!,
        "--port",
        "3478",
        "--alt-host",
        ip2!,
        "--alt-port",
        "3479",
        "--ready-json",
      ]),
    );
    procs.push(stun);
    await stun.waitFor("out", "\n", 30_000);
    const want: Record<string, [string, string]> = {
      "eim-fc": ["endpoint-independent", "endpoint-independent"],
      "eim-pr": ["endpoint-independent", "address-and-port-dependent"],
      "sym": ["address-and-port-dependent", "address-and-port-dependent"],
    };
    const seen: string[] = [];
    for (const n of nodes) {
      const r = await lab.exec(n.host.ns, [
        process.execPath,
        MAIN,
        "netcheck",
        "--stun",
        `${ip1}:3478`,
        "--rto",
        "200",
        "--json",
      ], { timeoutMs: 40_000 });
      expect(r.code).toBe(0);
      const rep = JSON.parse(r.stdout);
      seen.push(`${n.host.kind}: ${rep.mapping.behaviour}/${rep.filtering.behaviour}`);
      expect(rep.nat).toBe(true);
      expect(rep.mapped.host).toBe(n.host.publicAddress);
      expect([rep.mapping.behaviour, rep.filtering.behaviour]).toEqual(want[n.host.kind]!);
    }
    console.log(seen.join("\n"));
  }, 200_000);

  test(
    "a node whose NAT mapping changes keeps its session (QUIC follows the new address)",
    async () => {
      const n = nodes.find((x) => x.host.kind === "eim-pr")!;
      const router = n.host.router!;
      const proc = procs[1 + nodes.indexOf(n)]!; // the node's process (after the rendezvous)
      const before = await cli(n.host.ns, ["ping", rendezvousId, "--count", "1", "--json"]);
      expect(JSON.parse(before.stdout).path).toBe("direct");
      // The router forgets its mappings and will map to other ports from now on.
      const rule = ["-t", "nat", "-R", "POSTROUTING", "1", "-o", "wan", "-p", "udp", "-j"];
      let r = await lab.exec(router.ns, [
        "iptables",
        ...rule,
        "MASQUERADE",
        "--to-ports",
        "40000-40999",
      ]);
      expect(r.stderr).toBe("");
      r = await lab.exec(router.ns, ["conntrack", "-F"]);
      expect(r.code).toBe(0);
      const after = await cli(n.host.ns, ["ping", rendezvousId, "--count", "2", "--json"]);
      const attempts = after.stdout.trim().split("\n").map((l) => JSON.parse(l));
      expect(attempts.map((a) => a.path)).toEqual(["direct", "direct"]);
      // The rendezvous saw the node come from a new port on the same session: no route went down.
      expect(proc.err).not.toContain("route down");
      // …and the mapping did change: the router now maps the node's QUIC socket to 40000-40999.
      const table = await lab.exec(router.ns, ["conntrack", "-L", "-p", "udp"]);
      expect(table.stdout).toMatch(/dst=203\.0\.113\.\d+ sport=4433 dport=40\d\d\d/);
    },
    120_000,
  );
});
