/**
 * Macula nodes behind real (namespaced) NATs: a rendezvous node on the lab's internet, one node
 * behind each NAT kind (two behind symmetric NATs). Every pair reaches each other by node id;
 * pairs the NATs allow are hole punched, the others relayed (docs/nat-traversal.md has the table);
 * the routers drop unsolicited inbound packets, as home routers do;
 * `macula netcheck` behind each NAT names its behaviour. Needs root, ip and iptables (.ci/run).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { type LabNodes, MAIN, startLabNodes } from "../helpers/labnodes.ts";
import { createLab, type Lab } from "../helpers/natlab.ts";
import { Proc } from "../helpers/proc.ts";

const KINDS = ["eim-fc", "eim-pr", "sym", "sym"] as const;
let lab: Lab;
let dir: string;
let ln: LabNodes;
let rendezvousId = "";
let nodes: LabNodes["nodes"] = [];
const procs: Proc[] = [];
const cli = (ns: string, args: string[]) => ln.cli(ns, args);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "macula-natlab-"));
  // Routers drop unsolicited inbound packets, as home routers do (without it, Linux confirms a
  // conntrack entry for an unsolicited packet, and that entry changes later mappings).
  lab = await createLab({ nats: KINDS.map((kind) => ({ kind, firewall: true })) });
  ln = await startLabNodes(lab, dir);
  rendezvousId = ln.rendezvous.nodeId;
  nodes = ln.nodes;
}, 120_000);

afterAll(async () => {
  ln?.kill();
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
      const proc = n.proc;
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
