import { expect, test } from "bun:test";
import { Simulator } from "../../lib/sim/mod.ts";
import { Toy, type ToyEvent, type ToyMsg } from "./toy.ts";

test("scale smoke: 10,000 nodes, one message each per 100 ms, for 5 simulated seconds", () => {
  const N = 10_000;
  const sim = new Simulator<ToyMsg, ToyEvent>({
    seed: 1,
    latency: { baseMs: 1, jitterMs: 4 },
    loss: 0.01,
  });
  const addrs = Array.from({ length: N }, (_, i) => `n${i}`);
  const phase = sim.rng;
  const t0 = performance.now();
  for (const a of addrs) {
    sim.add(a, (addr, rng) =>
      new Toy(addr, rng, {
        peers: addrs,
        periodMs: 100,
        firstAt: Math.floor(phase() * 100),
        events: false,
      }));
  }
  sim.runUntil(5_000);
  const wallMs = performance.now() - t0;
  const s = sim.stats();
  const rate = Math.round(s.events / (wallMs / 1000));
  console.log(
    `sim scale: ${N} nodes, ${s.events} events (${s.sent} sent, ${s.received} delivered, ` +
      `${s.ticks} ticks) in ${wallMs.toFixed(0)} ms wall: ${rate} events/s`,
  );
  // Each node ticks at firstAt, firstAt + 100, ... ≤ 5000: 50 or 51 times.
  expect(s.ticks).toBeGreaterThanOrEqual(N * 50);
  expect(s.ticks).toBeLessThanOrEqual(N * 51);
  expect(s.sent).toBe(s.ticks);
  expect(s.received + s.dropped.loss).toBeLessThanOrEqual(s.sent);
  expect(s.dropped.loss / s.sent).toBeGreaterThan(0.008);
  expect(s.dropped.loss / s.sent).toBeLessThan(0.012);
}, 120_000);
