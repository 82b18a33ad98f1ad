/**
 * Membership on real nodes over QUIC on 127.0.0.1: 24 nodes in this process and one `macula node
 * up` process form a mesh; the process is killed with SIGKILL (no goodbye) and everyone declares
 * it dead; restarted on its data directory it rejoins with a higher incarnation. A node that stops
 * gracefully is "left", not dead. Every wait is bounded.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Subprocess } from "bun";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { issueCert, loadCa, Verifier } from "../../lib/identity/mod.ts";
import { PeerSession } from "../../lib/peer/mod.ts";
import { QuicEndpoint } from "../../lib/quic/mod.ts";
import { Node } from "../../lib/node/node.ts";
import { Proc } from "../helpers/proc.ts";
import { until } from "../helpers/quic.ts";
import { run } from "../helpers/run.ts";

const MAIN = fileURLToPath(new URL("../../cli/main.ts", import.meta.url));
let dir: string;
const nodes: Node[] = [];
let child: Proc | undefined;

function spawnNode(args: string[]): Proc {
  const p = Bun.spawn({
    cmd: [process.execPath, MAIN, "node", "up", ...args],
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    timeout: 120_000,
    killSignal: "SIGKILL",
  }) as Subprocess<"pipe" | "ignore", "pipe", "pipe">;
  return new Proc(["node", "up", ...args], p);
}

/** The state `node` holds for member `id` (or undefined). */
const stateAt = (node: Node, id: string) => node.membership.core.members().find((m) => m.id === id);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "macula-members-"));
  const first = await Node.start({
    dataDir: join(dir, "n0"),
    listen: { host: "127.0.0.1", port: 0 },
  });
  nodes.push(first);
  const seed = [{ host: "127.0.0.1", port: first.endpoint.address.port }];
  for (let i = 1; i < 24; i++) {
    nodes.push(
      await Node.start({
        dataDir: join(dir, `n${i}`),
        devCaDir: first.caDir!,
        listen: { host: "127.0.0.1", port: 0 },
        join: seed,
      }),
    );
  }
});

afterAll(async () => {
  if (child) {
    child.p.kill("SIGKILL");
    await child.code().catch(() => {});
  }
  await Promise.allSettled(nodes.map((n) => n.stop()));
  rmSync(dir, { recursive: true, force: true });
});

describe("membership over QUIC, 25 nodes", () => {
  let childId = "";
  let childPort = 0;
  let childInc = 0;
  const childArgs = (port: number) => [
    "--data-dir",
    join(dir, "child"),
    "--dev-ca-dir",
    nodes[0]!.caDir!,
    "--listen",
    `127.0.0.1:${port}`,
    "--join",
    nodes[0]!.url,
    "--ready-json",
  ];

  test("24 nodes here and one process form a mesh: everyone knows all 25", async () => {
    child = spawnNode(childArgs(0));
    await child.waitFor("out", "\n");
    const ready = JSON.parse(child.lines()[0]!);
    childId = ready.nodeId;
    childPort = ready.port;
    await Promise.all(nodes.map((n) => n.waitForMembers(25, 30_000)));
    for (const n of nodes) expect(stateAt(n, childId)?.state).toBe("alive");
    // The process's own view, through `macula inspect members --json`. Under load a member may
    // be suspected for a moment (a late ack) and refute it within a probe period or two, and the
    // process may still be learning the last members by gossip (nodes here knowing it says
    // nothing of its own view): the view is read again, every 200 ms for at most 15 s (another
    // process raises no event here), until every member is alive.
    const inspect = async () => {
      const r = await run([
        process.execPath,
        MAIN,
        "inspect",
        "members",
        "--json",
        "--server",
        `quic://127.0.0.1:${childPort}`,
        "--creds",
        nodes[0]!.credsDir!,
      ]);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      return JSON.parse(r.stdout) as { id: string; state: string; inc: number; self: boolean }[];
    };
    let rows = await inspect();
    for (let i = 0; i < 75 && rows.filter((x) => x.state === "alive").length < 25; i++) {
      await new Promise((r) => setTimeout(r, 200));
      rows = await inspect();
    }
    expect(rows.length).toBe(25);
    expect(rows.filter((x) => x.state === "alive").length).toBe(25);
    expect(rows.find((x) => x.self)?.id).toBe(childId);
    // Last heard: a number of ms for members it has heard from (the seed at least), 0 for itself.
    const heard = rows as unknown as { self: boolean; lastSeenMs: number | null }[];
    expect(heard.find((x) => x.self)!.lastSeenMs).toBe(0);
    expect(heard.some((x) => !x.self && typeof x.lastSeenMs === "number")).toBe(true);
    childInc = stateAt(nodes[3]!, childId)!.inc;
  }, 60_000);

  test("kill -9 of the process: detected and known to every node", async () => {
    child!.p.kill("SIGKILL");
    expect(await child!.code()).not.toBe(0);
    await until(
      () => nodes.every((n) => stateAt(n, childId)?.state === "dead"),
      "every node holds the killed process dead",
      30_000,
    );
    expect(nodes[0]!.snapshot().members.dead).toBe(1);
  }, 60_000);

  test("restarted on its data directory, it rejoins with a higher incarnation", async () => {
    child = spawnNode(childArgs(childPort));
    await child.waitFor("out", "\n");
    expect(JSON.parse(child.lines()[0]!).nodeId).toBe(childId); // same identity
    await until(
      () => nodes.every((n) => stateAt(n, childId)?.state === "alive"),
      "every node holds the restarted process alive",
      30_000,
    );
    expect(stateAt(nodes[5]!, childId)!.inc).toBeGreaterThan(childInc);
  }, 60_000);

  test("a node that stops gracefully is 'left' everywhere, not dead", async () => {
    const leaving = nodes.pop()!;
    await leaving.stop();
    await until(
      () => nodes.every((n) => stateAt(n, leaving.nodeId)?.state === "left"),
      "every node holds the stopped node left",
      30_000,
    );
  }, 60_000);

  test("a malformed or forged membership datagram is dropped and counted", async () => {
    const target = nodes[1]!;
    const before = { ...target.membership.stats };
    // Membership is between nodes: a session with a node's certificate (a client's datagrams
    // are not read at all, docs/security.md).
    const ca = await loadCa(nodes[0]!.caDir!);
    const cert = await issueCert({ ca, name: "prober", role: "node", durationMs: 3_600_000 });
    const tls = { ca: ca.pem, cert: cert.pem, key: cert.keyPem! };
    const verifier = await Verifier.create({ ca: ca.pem });
    const ep = await QuicEndpoint.bind({ host: "127.0.0.1", tls, checkPeer: verifier.checkPeer() });
    try {
      const conn = await ep.connect(target.endpoint.address);
      await PeerSession.dial(conn, { self: { nodeId: cert.nodeId, realm: "dev" } });
      conn.sendDatagram(new Uint8Array([0xff, 0x00, 0x13]));
      await until(() => target.membership.stats.malformed > before.malformed, "malformed counted");
    } finally {
      await ep.close();
    }
    expect(target.running).toBe(true);
  });
});
