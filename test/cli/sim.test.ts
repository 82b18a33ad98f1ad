/** `macula sim membership` from source: the report, JSON, reproducibility, bad arguments. */
import { describe, expect, test } from "bun:test";
import { fileURLToPath } from "node:url";
import { run } from "../helpers/run.ts";

const MAIN = fileURLToPath(new URL("../../cli/main.ts", import.meta.url));
const sim = (...args: string[]) => run([process.execPath, MAIN, "sim", "membership", ...args]);

describe("macula sim membership", () => {
  test("prints the report with the seed and the command that reruns it", async () => {
    const r = await sim("--nodes", "120", "--loss", "0.02", "--seed", "9");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("membership: 120 nodes, loss 2.0%, seed 9");
    expect(r.stdout).toContain(
      "rerun:                macula sim membership --nodes 120 --loss 0.02 --seed 9",
    );
    expect(r.stdout).toMatch(/join known to all: +\d+\.\d\d s/);
    expect(r.stdout).toMatch(/false positives: +0 /);
  });

  test("--json is one object; the same seed gives the same report", async () => {
    const a = await sim("--nodes", "80", "--seed", "4", "--json");
    const b = await sim("--nodes", "80", "--seed", "4", "--json");
    expect(a.code).toBe(0);
    const strip = (s: string) => {
      const { wallMs: _, ...rest } = JSON.parse(s);
      return rest;
    };
    expect(strip(b.stdout)).toEqual(strip(a.stdout));
    expect(JSON.parse(a.stdout).nodes).toBe(80);
  });

  test("a partition scenario reports the heal", async () => {
    const r = await sim(
      "--nodes",
      "40",
      "--partition",
      "12000,15000",
      "--duration",
      "80000",
      "--json",
    );
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.healedMs).toBeGreaterThan(0);
    expect(j.partitionDeaths).toBeGreaterThan(0);
  });

  test("bad arguments: exit 2 with what to give", async () => {
    let r = await sim("--nodes", "1");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("give a whole number from 2 to 100000");
    r = await sim("--loss", "1.5");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("give a loss probability from 0 to below 1");
    r = await sim("--pause", "10s");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("give --pause as two whole numbers of ms");
  });
});

const simOf = (what: string) => (...args: string[]) =>
  run([process.execPath, MAIN, "sim", what, ...args]);

describe("macula sim routing", () => {
  test("the report: complete delivery, no duplicates, the command that reruns it", async () => {
    const r = await simOf("routing")("--nodes", "150", "--subscribers", "30", "--seed", "3");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      "rerun:                   macula sim routing --nodes 150 --subscribers 30 --k 8 --shortcuts 128 --churn 0.1 --seed 3",
    );
    expect(r.stdout).toMatch(/delivery: +\d+ of \d+ \(100%\), 0 duplicates/);
    expect(r.stdout).toMatch(/calls to a far provider: 50 of 50 answered, 0 failed/);
    expect(r.stdout).toMatch(
      /streams \(shortcuts\): +6000 of 6000 delivered, 0 duplicates, 0 out of order/,
    );
    expect(r.stdout).toMatch(/FWDs per delivery \(1\.00 once warm\)/);
  });

  test("--k 1 is refused: one neighbour each splits the mesh", async () => {
    const r = await simOf("routing")("--k", "1");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--k");
  });
});

describe("macula sim dht", () => {
  test("the report, and --json: the same seed gives the same report", async () => {
    const r = await simOf("dht")("--nodes", "150", "--seed", "5");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      "rerun:                   macula sim dht --nodes 150 --churn 0.1 --seed 5",
    );
    expect(r.stdout).toMatch(/lookups: +200 of 200 found their target \(100%\)/);
    expect(r.stdout).toContain("client-mode nodes in server tables: 0");
    const a = await simOf("dht")("--nodes", "100", "--seed", "5", "--json");
    const b = await simOf("dht")("--nodes", "100", "--seed", "5", "--json");
    const strip = (s: string) => {
      const { wallMs: _, ...rest } = JSON.parse(s);
      return rest;
    };
    expect(strip(b.stdout)).toEqual(strip(a.stdout));
    expect(strip(a.stdout).steady.getSuccess).toBe(1);
  });

  test("bad arguments: exit 2 with what to give", async () => {
    const r = await simOf("dht")("--churn", "1.5");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("give a fraction of nodes from 0 to below 1");
  });
});
