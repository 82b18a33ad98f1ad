/**
 * Macula nodes behind real (namespaced) NATs: a rendezvous node on the lab's internet, one node
 * behind each NAT kind (two behind port-restricted, two behind symmetric NATs). Every pair reaches
 * each other by node id; pairs the NATs allow are hole punched, the others relayed
 * (docs/nat-traversal.md has the table), and messages and calls go over relayed routes; a relayed
 * pair moves to a punched path once the network lets it; the routers drop unsolicited inbound
 * packets, as home routers do; `macula netcheck` behind each NAT names its behaviour. Needs root,
 * ip and iptables (.ci/run).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { type LabNodes, MAIN, startLabNodes } from "../helpers/labnodes.ts";
import { createLab, type Lab } from "../helpers/natlab.ts";
import { Proc } from "../helpers/proc.ts";

const KINDS = ["eim-fc", "eim-pr", "eim-pr", "sym", "sym"] as const;
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
  // Until the upgrade test lifts it, the internet drops what the two port-restricted NATs send
  // each other: their nodes can only be relayed.
  const [p1, p2] = prs();
  for (const [a, b] of [[p1, p2], [p2, p1]]) {
    const r = await lab.exec(lab.internet.ns, dropRule("-I", a!, b!));
    if (r.code !== 0) throw new Error(`iptables: ${r.stderr}`);
  }
  ln = await startLabNodes(lab, dir);
  rendezvousId = ln.rendezvous.nodeId;
  nodes = ln.nodes;
}, 120_000);

afterAll(async () => {
  if (process.env.LAB_LOGS) {
    for (const p of ln.procs) console.log("DEBUG", p.args.join(" "), "\n", p.err);
  }
  ln?.kill();
  for (const p of procs) p.p.kill("SIGKILL");
  await lab?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

/** The public addresses of the two port-restricted NATs. */
const prs = () => lab.hosts.filter((h) => h.kind === "eim-pr").map((h) => h.publicAddress);
const dropRule = (op: "-I" | "-D", from: string, to: string) => [
  "iptables",
  op,
  "FORWARD",
  "-s",
  from,
  "-d",
  to,
  "-p",
  "udp",
  "-j",
  "DROP",
];

interface Snap {
  routes: { nodeId: string; path: string; via?: string }[];
  traversal: { upgraded: number };
}

/** Waits (bounded) for node `n` to log a route to node `peer` with `path`. */
const routeUp = (n: LabNodes["nodes"][number], peer: string, path: string) =>
  n.proc.waitFor(
    "err",
    new RegExp(`route up: node ${peer.slice(0, 12)}… \\(\\w+, ${path}`),
    90_000,
  );

const expected = (a: string, b: string): "punched" | "relayed" => {
  if (a === "eim-fc" || b === "eim-fc") return "punched";
  if (a === "sym" || b === "sym") return "relayed";
  return "punched";
};

describe("NAT traversal in the lab", () => {
  test(
    "a relayed pair moves to a punched path once the network lets it: same session, routes stay",
    async () => {
      const [a, b] = nodes.filter((n) => n.host.kind === "eim-pr");
      // The overlay wants a route between them; nothing but a relay can carry it.
      await routeUp(a!, b!.id, "relayed");
      const relayed = await cli(a!.host.ns, ["ping", b!.id, "--count", "1", "--json"]);
      expect(JSON.parse(relayed.stdout.split("\n")[0]!)).toMatchObject({
        path: "relayed",
        via: rendezvousId,
      });
      const [p1, p2] = prs();
      for (const [x, y] of [[p1, p2], [p2, p1]]) {
        expect((await lab.exec(lab.internet.ns, dropRule("-D", x!, y!))).code).toBe(0);
      }
      const logged = [a!.proc.err.length, b!.proc.err.length];
      // --until-direct asks for the move now (the node would try on its own within a minute).
      const r = await cli(a!.host.ns, ["ping", b!.id, "--until-direct", "--count", "3", "--json"]);
      const last = JSON.parse(r.stdout.trim().split("\n").at(-2)!); // the last attempt, then the summary
      expect(last.path).toBe("punched");
      expect(r.code).toBe(0);
      // Both ends saw the same session move (the dialer moves it, the other follows).
      for (const n of [a!, b!]) {
        await n.proc.waitFor("err", /relayed session with \w+… moved to a punched path/, 30_000);
      }
      const snap = JSON.parse(
        (await cli(a!.host.ns, ["inspect", "node", "--json"])).stdout,
      ) as Snap;
      expect(snap.routes.filter((x) => x.nodeId === b!.id).map((x) => x.path)).toEqual(["punched"]);
      const bSnap = JSON.parse(
        (await cli(b!.host.ns, ["inspect", "node", "--json"])).stdout,
      ) as Snap;
      expect(snap.traversal.upgraded + bSnap.traversal.upgraded).toBeGreaterThanOrEqual(1);
      // The route moved with its session: neither node logged it going down (or up again).
      expect(a!.proc.err.slice(logged[0])).not.toMatch(
        new RegExp(`route (down|up): node ${b!.id.slice(0, 12)}`),
      );
      expect(b!.proc.err.slice(logged[1])).not.toMatch(
        new RegExp(`route (down|up): node ${a!.id.slice(0, 12)}`),
      );
    },
    180_000,
  );

  test("every node reaches the rendezvous directly", async () => {
    for (const n of nodes) {
      const r = await cli(n.host.ns, ["ping", rendezvousId, "--count", "1", "--json"]);
      expect(r.stderr).toBe("");
      expect(JSON.parse(r.stdout.split("\n")[0]!).path).toBe("direct");
    }
  }, 120_000);

  test(
    "behind a NAT a node's DHT runs as a client; the rendezvous, on the internet, stays a server",
    async () => {
      const dhtIn = async (ns: string) => {
        // The rendezvous listens on the lab internet's address, the others on every interface.
        const r = ns === lab.internet.ns
          ? await lab.exec(ns, [
            process.execPath,
            MAIN,
            "inspect",
            "dht",
            "--json",
            "--server",
            `quic://${lab.internet.addresses[0]}:4433`,
            "--creds",
            ln.rendezvous.credsDir,
          ], { timeoutMs: 60_000 })
          : await cli(ns, ["inspect", "dht", "--json"]);
        if (r.code !== 0) throw new Error(`inspect dht in ${ns}: ${r.code} ${r.stderr}`);
        return JSON.parse(r.stdout) as { mode: string; reachability: string };
      };
      const all = [lab.internet.ns, ...nodes.map((n) => n.host.ns)];
      // Each node checks 2–5 s after its start, again every 15 s while nothing is known.
      for (let i = 0; i < 60; i++) {
        const views = await Promise.all(all.map(dhtIn));
        if (views.every((v) => v.reachability !== "unknown")) break;
        await new Promise((r) => setTimeout(r, 1000)); // no event crosses the process boundary
      }
      expect(await dhtIn(lab.internet.ns)).toEqual(
        expect.objectContaining({ mode: "server", reachability: "reachable" }),
      );
      for (const n of nodes) {
        expect({ kind: n.host.kind, ...(await dhtIn(n.host.ns)) }).toEqual(
          expect.objectContaining({
            kind: n.host.kind,
            mode: "client",
            reachability: "unreachable",
          }),
        );
      }
    },
    120_000,
  );

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

  test(
    "messages and calls between the two symmetric-NAT nodes go over their relayed route",
    async () => {
      const [a, b] = nodes.filter((n) => n.host.kind === "sym");
      await routeUp(a!, b!.id, "relayed");
      const creds = ["--server", "quic://127.0.0.1:4433", "--creds", ln.rendezvous.credsDir];
      const spawn = (ns: string, args: string[]) => {
        const p = new Proc(args, lab.spawn(ns, [process.execPath, MAIN, ...args, ...creds]));
        procs.push(p);
        return p;
      };
      /**
       * Packets relayed between the two, by every node (the relay may be the rendezvous or a node
       * that reached both, like the full-cone one), all their relayed sessions together.
       */
      const relayed = async () => {
        const where = [
          { ns: lab.internet.ns, server: `quic://${lab.internet.addresses[0]}:4433` },
          ...nodes.map((n) => ({ ns: n.host.ns, server: "quic://127.0.0.1:4433" })),
        ];
        let total = 0;
        for (const w of where) {
          const ls = await lab.exec(w.ns, [
            process.execPath,
            MAIN,
            "relay",
            "ls",
            "--json",
            "--server",
            w.server,
            "--creds",
            ln.rendezvous.credsDir,
          ]);
          const r = JSON.parse(ls.stdout) as {
            sessions: { a: string; b: string; packets: number }[];
          } | null;
          for (const x of r?.sessions ?? []) {
            if ([x.a, x.b].sort().join() === [a!.id, b!.id].sort().join()) total += x.packets;
          }
        }
        return total;
      };
      const sub = spawn(a!.host.ns, ["sub", "lab.relayed", "--count", "3"]);
      await sub.waitFor("err", "subscribed to lab.relayed", 30_000);
      const serve = spawn(a!.host.ns, ["serve", "lab.echo", "--echo"]);
      await serve.waitFor("err", "serving lab.echo on ", 30_000);
      const before = await relayed();
      // Interest and the procedure reach b's node over the relayed route (flush waits for peers).
      // Published for a few seconds: a route that flaps meanwhile (a member briefly declared dead
      // while SWIM has no direct path to it yet, docs/nat-traversal.md) loses what it was sent
      // then, and the subscriber still gets its three.
      const pub = await cli(b!.host.ns, [
        "pub",
        "lab.relayed",
        "one",
        "--count",
        "20",
        "--rate",
        "4",
      ]);
      expect(pub.code).toBe(0);
      expect(await sub.code()).toBe(0);
      expect(sub.lines()).toEqual(Array(3).fill("[lab.relayed] one"));
      const call = await cli(b!.host.ns, ["call", "lab.echo", "ping-over-relay", "--raw"]);
      expect(call.stderr).toBe("");
      expect(call.stdout).toBe("ping-over-relay\n");
      serve.p.kill("SIGTERM");
      // A relay carried it (one-hop routing over their route, and no other path exists between
      // two symmetric NATs): at least a packet per message and two for the call.
      expect(await relayed() - before).toBeGreaterThanOrEqual(5);
    },
    180_000,
  );

  test("netcheck behind each NAT names its mapping and filtering (RFC 5780)", async () => {
    const [ip1, ip2] = lab.internet.addresses;
    const stun = new Proc(
      ["stun", "serve"],
      lab.spawn(lab.internet.ns, [
        process.execPath,
        MAIN,
        "stun",
        "serve",
        "--listen",
        `${ip1!}:3478`,
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
      const logged = proc.err.length;
      expect(JSON.parse(before.stdout.split("\n")[0]!).path).toBe("direct");
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
      const attempts = after.stdout.trim().split("\n").map((l) => JSON.parse(l)).filter((o) =>
        o.attempt !== undefined
      );
      expect(attempts.map((a) => a.path)).toEqual(["direct", "direct"]);
      // The rendezvous saw the node come from a new port on the same session: its route to the
      // rendezvous did not go down.
      expect(proc.err.slice(logged)).not.toContain(`route down: node ${rendezvousId.slice(0, 12)}`);
      // …and the mapping did change: the router now maps the node's QUIC socket to 40000-40999.
      const table = await lab.exec(router.ns, ["conntrack", "-L", "-p", "udp"]);
      expect(table.stdout).toMatch(/dst=203\.0\.113\.\d+ sport=4433 dport=40\d\d\d/);
    },
    120_000,
  );
});
