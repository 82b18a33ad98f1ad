/** `macula ping <node-id>` and `macula relay ls` from source against nodes on 127.0.0.1. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { fileURLToPath } from "node:url";
import { type Mesh, mesh } from "../helpers/mesh.ts";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { Proc } from "../helpers/proc.ts";
import { run } from "../helpers/run.ts";

const MAIN = fileURLToPath(new URL("../../cli/main.ts", import.meta.url));
let m: Mesh;
beforeAll(async () => {
  m = await mesh(3);
});
afterAll(() => m.close());

const cli = (node: number, ...args: string[]) =>
  run([
    process.execPath,
    MAIN,
    ...args,
    "--server",
    m.nodes[node]!.url,
    "--creds",
    m.nodes[0]!.credsDir!,
  ]);
const ping = (...args: string[]) => cli(1, "ping", ...args, "--interval", "0");

describe("macula ping", () => {
  test("prints the path and round trip of each attempt", async () => {
    const r = await ping(m.nodes[2]!.nodeId, "--count", "2");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines.length).toBe(6); // 2 attempts, a blank line, the summary (ping-summary.test.ts)
    expect(lines[0]).toMatch(/attempt 1: direct, rtt \d+\.\d\d ms/);
  });

  test("--relay --json: one object per attempt, relayed via the rendezvous", async () => {
    const r = await ping(m.nodes[2]!.nodeId, "--relay", "--json", "--count", "1");
    expect(r.code).toBe(0);
    const o = JSON.parse(r.stdout.split("\n")[0]!); // then the summary object
    expect(o.path).toBe("relayed");
    expect(o.via).toBe(m.nodes[0]!.nodeId);
  });

  test("--until-direct stops at the first direct path", async () => {
    const r = await ping(m.nodes[2]!.nodeId, "--until-direct", "--count", "5");
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split("\n").filter((l) => l.includes(": attempt ")).length).toBe(1);
  });

  test("an id no member has exits 1 at once, saying so; a malformed id exits 2", async () => {
    let r = await ping("b".repeat(52), "--count", "3");
    expect(r.code).toBe(1);
    expect(r.stdout).toBe(""); // no attempt was made
    expect(r.stderr).toBe(
      `macula ping: ${"b".repeat(52)} is not a member the node knows\n` +
        `  ('macula inspect members' lists the members it knows)\n`,
    );
    r = await ping("not-an-id");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("give a node id");
  });
});

describe("macula relay ls", () => {
  test("the relay's quotas, the relayed sessions it carries, its counters; --json for scripts", async () => {
    const [r0, a, b] = m.nodes;
    await a!.traversal.connect(b!.nodeId, { relayOnly: true });
    let r = await cli(0, "relay", "ls");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      `node ${
        r0!.nodeId
      } relays: at most 1024 sessions, 16 per peer, 1.0 MiB/s per peer (burst 256.0 KiB)`,
    );
    expect(r.stdout).toContain("1 relayed session:");
    expect(r.stdout).toContain(`${a!.nodeId.slice(0, 12)}… <-> ${b!.nodeId.slice(0, 12)}…`);
    r = await cli(0, "relay", "ls", "--json");
    const o = JSON.parse(r.stdout);
    expect(o.sessions).toHaveLength(1);
    expect(o.sessions[0].packets).toBeGreaterThan(0);
    expect(o.limits.sessionsPerPeer).toBe(16);
  });

  test("macula node up --no-relay: the node says it does not relay", async () => {
    const dir = join(m.dir, "no-relay");
    const p = new Proc(
      ["node", "up"],
      Bun.spawn({
        cmd: [
          process.execPath,
          MAIN,
          "node",
          "up",
          "--no-relay",
          "--port",
          "0",
          "--data-dir",
          dir,
          "--dev-ca-dir",
          m.nodes[0]!.caDir!,
          "--ready-json",
        ],
        stdout: "pipe",
        stderr: "pipe",
        stdin: "ignore",
        timeout: 60_000,
        killSignal: "SIGKILL",
      }) as Subprocess<"ignore", "pipe", "pipe">,
    );
    try {
      await p.waitFor("out", "\n", 30_000);
      const url = JSON.parse(p.lines()[0]!).url as string;
      const r = await run([
        process.execPath,
        MAIN,
        "relay",
        "ls",
        "--server",
        url,
        "--creds",
        m.nodes[0]!.credsDir!,
      ]);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^node \w+ does not relay \(relay.enabled: false\)\n$/);
    } finally {
      p.p.kill("SIGTERM");
      await p.code();
    }
  });
});

describe("macula inspect", () => {
  test("node: text by default (who, routes with their paths, counters), JSON with --json", async () => {
    const r = await cli(0, "inspect", "node");
    expect(r.code).toBe(0);
    const lines = r.stdout.split("\n");
    expect(lines[0]).toBe(`node ${m.nodes[0]!.nodeId}  realm dev  ${m.nodes[0]!.url}`);
    expect(r.stdout).toMatch(/^\d+ routes?, \d+ clients?, \d+ sessions?$/m);
    expect(r.stdout).toMatch(/^routes:$/m);
    // Whole node ids (52 characters) on the route lines.
    expect(r.stdout).toMatch(
      /^ {4}[a-z2-7]{52} {2}(dialed {2}|accepted) {2}direct .* rtt \d+ ms$/m,
    );
    expect(r.stdout).toMatch(/^router: published \d+, delivered \d+,/m);
    expect(r.stdout).not.toContain("{");
    // The counter sections wrap at 100 columns (the session lines are as wide as their ids).
    expect(lines.filter((l) => !/^ {4}[a-z2-7]{52} /.test(l)).every((l) => l.length <= 100))
      .toBe(true);
    const j = await cli(0, "inspect", "node", "--json");
    expect(JSON.parse(j.stdout).nodeId).toBe(m.nodes[0]!.nodeId);
    expect(j.stdout.trim().split("\n")).toHaveLength(1); // one object, for jq
  });

  test("members --json: how long ago each state changed (sinceMs), no process-local clock", async () => {
    const r = await cli(0, "inspect", "members", "--json");
    expect(r.code).toBe(0);
    const rows = JSON.parse(r.stdout) as Record<string, unknown>[];
    expect(rows).toHaveLength(3);
    for (const row of rows) {
      expect(row).not.toHaveProperty("since");
      expect(typeof row.sinceMs).toBe("number");
    }
  });
});
