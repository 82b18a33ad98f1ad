/**
 * Membership at scale, on the deterministic simulator, with fixed seeds: each scenario's report
 * is reproducible from its seed (`macula sim membership --seed S` reruns it).
 */
import { describe, expect, test } from "bun:test";
import { runMembershipSim } from "../../lib/sim/membership.ts";

describe("membership simulations (fixed seeds)", () => {
  test("1,000 nodes at 1% loss: a join everywhere within 3 s, a crash within 10 s, no false death", () => {
    const r = runMembershipSim({ nodes: 1000, seed: 1, loss: 0.01 });
    expect(r.joinKnownMs).not.toBeNull();
    expect(r.joinKnownMs!).toBeLessThan(3000);
    expect(r.crashKnownMs).not.toBeNull();
    expect(r.crashKnownMs!).toBeLessThan(10_000);
    expect(r.falsePositives).toBe(0);
    expect(r.viewAlive).toEqual({ min: 1000, max: 1000 }); // 1,001 − the crashed one
  });

  test("the same seed gives the same run; another seed another", () => {
    const a = runMembershipSim({ nodes: 200, seed: 7, loss: 0.02 });
    const b = runMembershipSim({ nodes: 200, seed: 7, loss: 0.02 });
    const c = runMembershipSim({ nodes: 200, seed: 8, loss: 0.02 });
    const strip = ({ wallMs: _, ...rest }: typeof a) => rest;
    expect(strip(b)).toEqual(strip(a));
    expect(strip(c)).not.toEqual(strip(a));
  });

  test("a node paused 2 s every 10 s at 5% loss is never declared dead (Lifeguard), 10 minutes", () => {
    const r = runMembershipSim({
      nodes: 200,
      seed: 3,
      loss: 0.05,
      pause: { everyMs: 10_000, forMs: 2000 },
      durationMs: 600_000,
    });
    expect(r.falsePositives).toBe(0);
    expect(r.falseSuspicions).toBeGreaterThan(0); // it was suspected, and refuted every time
    expect(r.crashKnownMs).not.toBeNull(); // real failures are still found
  });

  test("a partition that heals: both sides declare the other dead, then the views are whole", () => {
    const r = runMembershipSim({
      nodes: 60,
      seed: 5,
      loss: 0.01,
      partition: { atMs: 12_000, forMs: 20_000 },
      durationMs: 90_000,
    });
    expect(r.partitionDeaths).toBeGreaterThan(0);
    expect(r.healedMs).not.toBeNull();
    expect(r.healedMs!).toBeLessThan(30_000);
    expect(r.falsePositives).toBe(0);
  });

  test("a crashed node restarts, refutes its death with a higher incarnation, and is back", () => {
    const r = runMembershipSim({ nodes: 100, seed: 11, loss: 0.01, restartAfterMs: 20_000 });
    expect(r.crashKnownMs).not.toBeNull();
    expect(r.restartKnownMs).not.toBeNull();
    expect(r.restartKnownMs!).toBeLessThan(3000);
    expect(r.viewAlive).toEqual({ min: 101, max: 101 });
  });

  test("a cluster grown by joining through one seed converges", () => {
    const r = runMembershipSim({
      nodes: 150,
      seed: 2,
      loss: 0.01,
      warm: false,
      joinAtMs: 30_000,
      crashAtMs: 40_000,
    });
    expect(r.joinKnownMs!).toBeLessThan(3000);
    expect(r.crashKnownMs!).toBeLessThan(10_000);
    expect(r.viewAlive).toEqual({ min: 150, max: 150 });
    expect(r.falsePositives).toBe(0);
  });
});
