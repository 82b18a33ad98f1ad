/**
 * The summary `macula ping` ends with, as ping(8)'s: from source against nodes on 127.0.0.1,
 * after --count attempts, after --until-direct, through a relay, to a node that is gone (100%
 * loss, exit 1), and on Ctrl-C (exit 130); with --json, a summary object as the last line.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { pingSummary, summaryText } from "../../cli/commands/ping.ts";
import type { Node } from "../../lib/node/node.ts";
import { type Mesh, mesh } from "../helpers/mesh.ts";
import { spawnMacula } from "../helpers/proc.ts";

let m: Mesh;
let to: Node; // the node pinged (from node 1, with node 0 as rendezvous and relay)
let gone: Node; // a member that stopped
beforeAll(async () => {
  m = await mesh(3);
  to = m.nodes[2]!;
  gone = await m.add();
  await Promise.all(m.nodes.map((x) => x.waitForMembers(4)));
  await gone.stop();
});
afterAll(() => m.close());

function ping(...args: string[]) {
  return spawnMacula(
    ["ping", ...args, "--server", m.nodes[1]!.url, "--creds", m.nodes[0]!.credsDir!],
  );
}

const RTT = /^rtt min\/avg\/max = (\d+\.\d\d)\/(\d+\.\d\d)\/(\d+\.\d\d) ms$/;
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const attemptLine = (id: string, i: number, rest: string) =>
  new RegExp(`^ping ${esc(id.slice(0, 12))}…: attempt ${i}: ${rest}$`);
/** `{min, avg, max}` of round trips as the summary has them (to the microsecond). */
const stats = (rtts: number[]) => {
  const r = (n: number) => Math.round(n * 1000) / 1000;
  return {
    min: r(Math.min(...rtts)),
    avg: r(rtts.reduce((a, b) => a + b, 0) / rtts.length),
    max: r(Math.max(...rtts)),
  };
};

describe("macula ping: the summary", () => {
  test("after --count attempts: a blank line, the header, the counts, min/avg/max", async () => {
    const p = ping(to.nodeId, "--count", "3", "--interval", "0");
    expect(await p.code()).toBe(0);
    expect(p.err).toBe("");
    const lines = p.out.split("\n");
    expect(lines).toHaveLength(8); // 3 attempts, blank, 3 summary lines, the final line break
    const rtts = [1, 2, 3].map((i) => {
      expect(lines[i - 1]).toMatch(attemptLine(to.nodeId, i, "direct, rtt \\d+\\.\\d\\d ms"));
      return Number(/rtt (\d+\.\d\d) ms/.exec(lines[i - 1]!)![1]);
    });
    expect(lines.slice(3, 6)).toEqual([
      "",
      `--- ${to.nodeId} ping statistics ---`,
      "3 attempts, 3 reached, 0% loss, paths: 3 direct",
    ]);
    const [, min, avg, max] = RTT.exec(lines[6]!)!.map(Number);
    // The attempts' round trips are rounded to 0.01 ms on their lines: the summary's bounds
    // are theirs within that rounding.
    expect(Math.abs(min! - Math.min(...rtts))).toBeLessThanOrEqual(0.011);
    expect(Math.abs(max! - Math.max(...rtts))).toBeLessThanOrEqual(0.011);
    expect(min! <= avg! && avg! <= max!).toBe(true);
    expect(lines[7]).toBe("");
  });

  test("--json: one object per attempt, then {summary} from exactly those", async () => {
    const p = ping(to.nodeId, "--count", "2", "--interval", "0", "--json");
    expect(await p.code()).toBe(0);
    const docs = p.lines().map((l) => JSON.parse(l));
    expect(docs).toHaveLength(3);
    expect(docs.slice(0, 2).map((d) => d.attempt)).toEqual([1, 2]);
    expect(docs[2]).toEqual({
      summary: {
        target: to.nodeId,
        attempts: 2,
        reached: 2,
        lossPercent: 0,
        paths: { direct: 2 },
        rttMs: stats(docs.slice(0, 2).map((d) => d.rttMs)),
        interrupted: false,
      },
    });
  });

  test("--relay: the paths say relayed", async () => {
    const p = ping(to.nodeId, "--count", "2", "--interval", "0", "--relay");
    expect(await p.code()).toBe(0);
    expect(p.out).toContain("\n2 attempts, 2 reached, 0% loss, paths: 2 relayed\n");
  });

  test("--until-direct: the attempts made, not --count", async () => {
    const p = ping(to.nodeId, "--count", "5", "--interval", "0", "--until-direct");
    expect(await p.code()).toBe(0);
    const lines = p.lines();
    expect(lines).toHaveLength(4); // one attempt, the summary (lines() leaves out the blank one)
    expect(lines[2]).toBe("1 attempt, 1 reached, 0% loss, paths: 1 direct");
    expect(lines[3]).toMatch(RTT);
  });

  test("a node that is gone: every attempt lost, no round trip, exit 1", async () => {
    const p = ping(gone.nodeId, "--count", "2", "--interval", "0", "--timeout", "1500");
    expect(await p.code()).toBe(1);
    const lines = p.out.split("\n");
    expect(lines[0]).toMatch(attemptLine(gone.nodeId, 1, ".+"));
    expect(lines[1]).toMatch(attemptLine(gone.nodeId, 2, ".+"));
    expect(lines.slice(2)).toEqual([
      "",
      `--- ${gone.nodeId} ping statistics ---`,
      "2 attempts, 0 reached, 100% loss",
      "",
    ]);
    expect(p.err).toBe(`macula ping: ${gone.nodeId} could not be reached\n`);
    const j = ping(gone.nodeId, "--count", "1", "--timeout", "1500", "--json");
    expect(await j.code()).toBe(1);
    const docs = j.lines().map((l) => JSON.parse(l));
    expect(docs[0]).toEqual({ attempt: 1, error: expect.any(String) });
    expect(docs[1]).toEqual({
      summary: {
        target: gone.nodeId,
        attempts: 1,
        reached: 0,
        lossPercent: 100,
        paths: {},
        rttMs: null,
        interrupted: false,
      },
    });
  });

  test("Ctrl-C: the summary of the attempts made, exit 130, nothing on stderr", async () => {
    const p = ping(to.nodeId, "--count", "100", "--interval", "60000");
    await p.waitFor("out", "attempt 1: ");
    p.p.kill("SIGINT");
    expect(await p.code()).toBe(130);
    expect(p.err).toBe("");
    const lines = p.lines();
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(attemptLine(to.nodeId, 1, "direct, rtt \\d+\\.\\d\\d ms"));
    expect(lines.slice(1, 3)).toEqual([
      `--- ${to.nodeId} ping statistics ---`,
      "1 attempt, 1 reached, 0% loss, paths: 1 direct",
    ]);
    const rtt = /rtt (\d+\.\d\d) ms/.exec(lines[0]!)![1];
    expect(lines[3]).toBe(`rtt min/avg/max = ${rtt}/${rtt}/${rtt} ms`);
  });

  test("Ctrl-C with --json: the summary says it was interrupted", async () => {
    const p = ping(to.nodeId, "--count", "100", "--interval", "60000", "--json");
    await p.waitFor("out", "\n");
    p.p.kill("SIGINT");
    expect(await p.code()).toBe(130);
    const docs = p.lines().map((l) => JSON.parse(l));
    expect(docs).toHaveLength(2);
    expect(docs[1].summary).toMatchObject({ attempts: 1, reached: 1, interrupted: true });
  });
});

describe("the summary of mixed attempts", () => {
  const ok = (path: string, rttMs: number) => ({ path, rttMs, tried: [] });
  test("loss rounded to a whole percent, paths counted, min/avg/max of those that reached", () => {
    const s = pingSummary("x", [ok("direct", 1.5), "no answer", ok("relayed", 4.25)], false);
    expect(s).toEqual({
      target: "x",
      attempts: 3,
      reached: 2,
      lossPercent: 33,
      paths: { direct: 1, relayed: 1 },
      rttMs: { min: 1.5, avg: 2.875, max: 4.25 },
      interrupted: false,
    });
    expect(summaryText(s)).toBe(
      "--- x ping statistics ---\n" +
        "3 attempts, 2 reached, 33% loss, paths: 1 direct, 1 relayed\n" +
        "rtt min/avg/max = 1.50/2.88/4.25 ms\n",
    );
    expect(pingSummary("x", ["a", "b", ok("direct", 1)], true).lossPercent).toBe(67);
    expect(summaryText(pingSummary("x", [], true))).toBe(
      "--- x ping statistics ---\n0 attempts, 0 reached, 0% loss\n",
    );
  });
});
