/** The one driver of sans-IO cores (lib/util/sansio.ts) on real time. */
import { describe, expect, test } from "bun:test";
import { Driver, type SansIoCore } from "../../lib/util/mod.ts";

/** A core with a queue of numbers and one deadline: at `due`, it queues "tick". */
class Toy implements SansIoCore<string[]> {
  out: string[] = [];
  due = Infinity;
  ticks: number[] = [];
  failTick = false;
  tick(now: number): void {
    this.ticks.push(now);
    if (this.failTick) throw new Error("tick failed");
    if (now >= this.due) {
      this.due = Infinity;
      this.out.push("tick");
    }
  }
  nextWake(): number {
    return this.due;
  }
  drain(): string[] {
    const o = this.out;
    this.out = [];
    return o;
  }
}

describe("Driver", () => {
  test("poke drains and acts at once; the timer ticks the core at nextWake and drains again", async () => {
    const core = new Toy();
    const acted: string[][] = [];
    let ticked!: () => void;
    const tickedP = new Promise<void>((r) => (ticked = r));
    const d = new Driver(core, {
      act: (a) => {
        acted.push(a);
        if (a.includes("tick")) ticked();
      },
    });
    core.out.push("a", "b");
    d.poke();
    expect(acted).toEqual([["a", "b"]]);
    const due = performance.now() + 5;
    core.due = due;
    d.poke();
    await tickedP;
    expect(acted.at(-1)).toEqual(["tick"]);
    // Ticked with the clock's time, not before the deadline.
    expect(core.ticks.at(-1)!).toBeGreaterThanOrEqual(due);
    d.stop();
  });

  test("coalesce: a burst of pokes is one drain, once the burst is over", async () => {
    const core = new Toy();
    let drains = 0;
    let done!: () => void;
    const once = new Promise<void>((r) => (done = r));
    const d = new Driver(core, {
      coalesce: true,
      act: () => {
        drains++;
        done();
      },
    });
    for (let i = 0; i < 10; i++) {
      core.out.push(String(i));
      d.poke();
    }
    expect(drains).toBe(0);
    await once;
    expect(drains).toBe(1);
    d.stop();
  });

  test("a failing act or tick is reported and the driver carries on", async () => {
    const core = new Toy();
    const errors: string[] = [];
    let tickFailed!: () => void;
    const tickFailedP = new Promise<void>((r) => (tickFailed = r));
    let acts = 0;
    let recovered!: () => void;
    const recoveredP = new Promise<void>((r) => (recovered = r));
    const d = new Driver(core, {
      act: (a) => {
        acts++;
        if (a.includes("boom")) throw new Error("act failed");
        if (a.includes("tick")) recovered();
      },
      onError: (e) => {
        errors.push((e as Error).message);
        if ((e as Error).message === "tick failed") tickFailed();
      },
    });
    core.out.push("boom");
    d.poke();
    expect(errors).toEqual(["act failed"]);
    // A tick that throws once: the error is reported, and the core is still driven after.
    core.failTick = true;
    core.due = performance.now() + 2;
    d.poke();
    await tickFailedP;
    core.failTick = false;
    core.due = performance.now() + 2;
    d.poke();
    await recoveredP;
    expect(acts).toBeGreaterThanOrEqual(3);
    d.stop();
  });

  test("stop: no more drains, the timer is cleared; flush drains at once even when coalescing", () => {
    const core = new Toy();
    const acted: string[][] = [];
    const d = new Driver(core, { coalesce: true, act: (a) => acted.push(a) });
    core.out.push("x");
    d.poke();
    d.flush();
    expect(acted).toEqual([["x"]]);
    d.stop();
    core.out.push("y");
    d.poke();
    d.flush();
    expect(acted).toEqual([["x"]]);
    expect(d.stopped).toBe(true);
  });

  test("a wake-up beyond the longest timer does not spin: it is clamped, not fired at once", async () => {
    const core = new Toy();
    core.due = performance.now() + 2 ** 40;
    const d = new Driver(core, { act: () => {} });
    d.poke();
    // Let the event loop run a few turns: a timer set past 2^31-1 ms would fire now, over and over.
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    expect(core.ticks).toEqual([]);
    d.stop();
  });
});
