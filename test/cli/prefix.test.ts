/**
 * Node ids given as a prefix, from source against three nodes on 127.0.0.1, two of whose ids
 * start with the same character (test/cli/twins.ts draws their keys): a unique prefix is the
 * whole id, an ambiguous one fails naming the candidates (exit 2), one no member has is not a
 * member the node knows (exit 1). Every command argument that is a node id goes through the
 * one helper that does it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import type { CommandUnknownOpts } from "@commander-js/extra-typings";
import { buildProgram } from "../../cli/main.ts";
import {
  matchNodeId,
  MAX_CANDIDATES,
  type MemberRow,
  nodeIdArg,
} from "../../cli/commands/shared.ts";
import type { Node } from "../../lib/node/node.ts";
import { type Mesh, mesh } from "../helpers/mesh.ts";
import { spawnMacula } from "../helpers/proc.ts";
import { prepareNodeId } from "./twins.ts";

let m: Mesh;
let a: Node, twin: Node, c: Node;
beforeAll(async () => {
  m = await mesh(1);
  a = m.nodes[0]!;
  const first = a.nodeId[0]!;
  // The twin shares a's first character only; c shares none.
  const twinDir = join(m.dir, "twin");
  await prepareNodeId(twinDir, a.caDir!, (id) => id[0] === first && id[1] !== a.nodeId[1]);
  const cDir = join(m.dir, "c");
  await prepareNodeId(cDir, a.caDir!, (id) => id[0] !== first);
  twin = await m.add({ dataDir: twinDir });
  c = await m.add({ dataDir: cDir });
  await Promise.all(m.nodes.map((x) => x.waitForRoutes(2)));
  await Promise.all(m.nodes.map((x) => x.waitForMembers(3)));
});
afterAll(() => m.close());

async function ping(...args: string[]) {
  const p = spawnMacula(["ping", ...args, "--server", a.url, "--creds", a.credsDir!]);
  const code = await p.code();
  return { code, stdout: p.out, stderr: p.err };
}

const HINT = "  ('macula inspect members' lists the members it knows)\n";

describe("a node id given as a prefix", () => {
  test("a unique prefix is the whole id: ping reaches that node, the summary names it", async () => {
    const r = await ping(twin.nodeId.slice(0, 2), "--count", "1");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const lines = r.stdout.split("\n");
    expect(lines[0]).toMatch(
      new RegExp(`^ping ${twin.nodeId.slice(0, 12)}…: attempt 1: direct, rtt \\d+\\.\\d\\d ms$`),
    );
    expect(lines.slice(1, 4)).toEqual([
      "",
      `--- ${twin.nodeId} ping statistics ---`,
      "1 attempt, 1 reached, 0% loss, paths: 1 direct",
    ]);
  });

  test("in upper case too (base32 has one case)", async () => {
    const r = await ping(c.nodeId.slice(0, 3).toUpperCase(), "--count", "1", "--json");
    expect(r.code).toBe(0);
    const last = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
    expect(last.summary.target).toBe(c.nodeId);
  });

  test("an ambiguous prefix fails naming the candidates, exit 2, before any ping", async () => {
    const p = a.nodeId[0]!;
    const r = await ping(p);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    const [x, y] = [a, twin].sort((u, v) => (u.nodeId < v.nodeId ? -1 : 1));
    expect(r.stderr).toBe(
      `macula ping: node id prefix "${p}" is ambiguous: 2 members the node knows start with it\n` +
        `  ${x!.nodeId}  127.0.0.1:${x!.endpoint.address.port}  alive\n` +
        `  ${y!.nodeId}  127.0.0.1:${y!.endpoint.address.port}  alive\n` +
        "  give more characters of the id\n",
    );
  });

  test("a prefix no member has: not a member the node knows, exit 1", async () => {
    const taken = new Set([a.nodeId[0], c.nodeId[0]]);
    const none = [..."abcdefghijklmnopqrstuvwxyz234567"].find((ch) => !taken.has(ch))!;
    const r = await ping(none);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(`macula ping: ${none} is not a member the node knows\n${HINT}`);
  });

  test("what is not a prefix of an id is a usage error, without connecting", async () => {
    for (const bad of ["ab!", "a".repeat(53), "0", ""]) {
      const p = spawnMacula(["ping", bad, "--server", "quic://127.0.0.1:1", "--creds", "nowhere"]);
      expect([bad, await p.code()]).toEqual([bad, 2]);
      // (An empty value is not named: there is nothing to show.)
      expect(p.err).toBe(
        `macula ping: ${
          bad === "" ? "" : `node-id '${bad}': `
        }give a node id or a unique prefix of one: up to 52 ` +
          "characters of a-z and 2-7 (see 'macula inspect members')\n" +
          "(run 'macula ping --help' for usage)\n",
      );
    }
  });
});

describe("the one helper", () => {
  const row = (id: string, port: number): MemberRow => ({
    id,
    addr: `quic://127.0.0.1:${port}`,
    state: "alive",
    inc: 0,
    sinceMs: 0,
    lastSeenMs: 0,
    self: false,
    meta: { tags: [], version: "0" },
  });

  test("names the first candidates by id, and counts the rest", () => {
    const ids = Array.from(
      { length: MAX_CANDIDATES + 2 },
      (_, i) => `k${String.fromCharCode(97 + i)}${"a".repeat(50)}`,
    );
    const rows = ids.map((id, i) => row(id, 5000 + i)).reverse();
    let message = "";
    try {
      matchNodeId("k", rows);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message.split("\n")).toEqual([
      `node id prefix "k" is ambiguous: ${ids.length} members the node knows start with it`,
      ...ids.slice(0, MAX_CANDIDATES).map((id, i) => `  ${id}  127.0.0.1:${5000 + i}  alive`),
      "  … and 2 more",
      "  give more characters of the id",
    ]);
    // A whole id is a prefix of itself; a longer prefix tells the candidates apart.
    expect(matchNodeId(ids[3]!, rows)).toBe(ids[3]!);
    expect(matchNodeId("kc", rows)).toBe(ids[2]!);
  });

  test("every <node-id> argument of the command tree goes through it", () => {
    const found: string[] = [];
    const walk = (cmd: CommandUnknownOpts, path: string) => {
      for (const arg of cmd.registeredArguments) {
        if (/node/i.test(arg.name())) {
          found.push(path);
          expect([path, arg.parseArg as unknown]).toEqual([path, nodeIdArg]);
        }
      }
      for (const s of cmd.commands) walk(s, `${path} ${s.name()}`);
    };
    walk(buildProgram(), "macula");
    expect(found).toContain("macula ping");
  });
});
