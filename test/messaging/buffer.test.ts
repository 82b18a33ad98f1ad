import { describe, expect, test } from "bun:test";
import { MessageBuffer, OVERFLOW_POLICIES } from "../../lib/messaging/buffer.ts";

const bytes = (n: number, fill = 0) => new Uint8Array(n).fill(fill);
const drain = <T>(b: MessageBuffer<T>): T[] => {
  const out: T[] = [];
  for (let m = b.shift(); m !== undefined; m = b.shift()) out.push(m);
  return out;
};

describe("MessageBuffer overflow policies", () => {
  test("default is drop-oldest, with documented default bounds", () => {
    const b = new MessageBuffer<Uint8Array>();
    expect(b.policy).toBe("drop-oldest");
    expect(OVERFLOW_POLICIES[0]).toBe("drop-oldest");
    expect(b.maxMessages).toBe(65_536);
    expect(b.maxBytes).toBe(64 * 1024 * 1024);
  });

  test("drop-oldest by count: keeps the newest, counts the evicted", () => {
    const b = new MessageBuffer<number>({ maxMessages: 3, sizeOf: () => 10 });
    expect([1, 2, 3].map((n) => b.push(n))).toEqual(["queued", "queued", "queued"]);
    expect(b.push(4)).toBe("evicted");
    expect(b.push(5)).toBe("evicted");
    expect(b.stats()).toMatchObject({
      length: 3,
      bytes: 30,
      accepted: 5,
      dropped: 2,
      droppedBytes: 20,
      refused: 0,
      highWater: 3,
    });
    expect(drain(b)).toEqual([3, 4, 5]);
    expect(b.stats().delivered).toBe(3);
  });

  test("drop-oldest by bytes: evicts as many as needed", () => {
    const b = new MessageBuffer<Uint8Array>({ maxMessages: 100, maxBytes: 100 });
    for (let i = 0; i < 5; i++) b.push(bytes(20, i));
    expect(b.push(bytes(50, 9))).toBe("evicted"); // 100 + 50 → evict three of 20
    expect(b.stats()).toMatchObject({ length: 3, bytes: 90, dropped: 3, droppedBytes: 60 });
    expect(drain(b).map((m) => m[0])).toEqual([3, 4, 9]);
  });

  test("drop-newest: the queue is kept, the incoming message is counted", () => {
    const b = new MessageBuffer<number>({ maxMessages: 2, policy: "drop-newest" });
    b.push(1);
    b.push(2);
    expect(b.push(3)).toBe("dropped");
    expect(b.push(4)).toBe("dropped");
    expect(b.stats()).toMatchObject({ length: 2, accepted: 2, dropped: 2, refused: 0 });
    expect(drain(b)).toEqual([1, 2]);
  });

  test("drop-newest by bytes", () => {
    const b = new MessageBuffer<Uint8Array>({ maxBytes: 10, policy: "drop-newest" });
    expect(b.push(bytes(6))).toBe("queued");
    expect(b.push(bytes(6))).toBe("dropped");
    expect(b.push(bytes(4))).toBe("queued");
    expect(b.stats()).toMatchObject({ bytes: 10, dropped: 1, droppedBytes: 6 });
  });

  test("block: refuses with 'full' (counted as refused, not dropped) and signals writable", async () => {
    const b = new MessageBuffer<number>({ maxMessages: 2, policy: "block" });
    b.push(1);
    b.push(2);
    expect(b.push(3)).toBe("full");
    expect(b.stats()).toMatchObject({ dropped: 0, refused: 1, length: 2 });
    let woke = false;
    const w = b.writable().then(() => (woke = true));
    await Promise.resolve();
    expect(woke).toBe(false);
    expect(b.shift()).toBe(1);
    await w;
    expect(woke).toBe(true);
    expect(b.push(3)).toBe("queued");
    expect(drain(b)).toEqual([2, 3]);
    await b.writable(); // room now: resolves at once
  });

  test("block: a producer loop that honours backpressure loses nothing", async () => {
    const b = new MessageBuffer<number>({ maxMessages: 4, policy: "block" });
    const producer = (async () => {
      for (let i = 0; i < 100; i++) {
        while (b.push(i) === "full") await b.writable();
      }
      b.close();
    })();
    const got: number[] = [];
    for await (const m of b) got.push(m);
    await producer;
    expect(got).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(b.stats().dropped).toBe(0);
    expect(b.stats().highWater).toBeLessThanOrEqual(4);
  });

  for (const policy of OVERFLOW_POLICIES) {
    test(`${policy}: a message larger than maxBytes is dropped as oversize`, () => {
      const b = new MessageBuffer<Uint8Array>({ maxBytes: 8, policy });
      b.push(bytes(4));
      expect(b.push(bytes(9))).toBe("dropped");
      expect(b.stats()).toMatchObject({ length: 1, dropped: 1, droppedBytes: 9, oversize: 1 });
    });
  }

  test("bad options are refused", () => {
    expect(() => new MessageBuffer({ maxMessages: 0 })).toThrow(/maxMessages must be a positive/);
    expect(() => new MessageBuffer({ maxBytes: 1.5 })).toThrow(/maxBytes/);
    expect(() => new MessageBuffer({ policy: "explode" as "block" })).toThrow(
      /unknown overflow policy "explode"; use drop-oldest, drop-newest, block/,
    );
  });

  test("ring buffer stays in order across wrap-around and growth", () => {
    const b = new MessageBuffer<number>({ maxMessages: 1000 });
    const want: number[] = [];
    let next = 0;
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 13; i++) {
        b.push(next);
        want.push(next++);
      }
      for (let i = 0; i < 7; i++) expect(b.shift()).toBe(want.shift());
    }
    expect(drain(b)).toEqual(want);
  });
});

describe("MessageBuffer async iteration and close", () => {
  test("a waiting consumer receives pushes; the loop ends on close", async () => {
    const b = new MessageBuffer<string>();
    const got: string[] = [];
    const consumer = (async () => {
      for await (const m of b) got.push(m);
    })();
    b.push("a");
    await Promise.resolve();
    b.push("b");
    b.push("c");
    b.close();
    await consumer;
    expect(got).toEqual(["a", "b", "c"]);
    expect(b.stats()).toMatchObject({ accepted: 3, delivered: 3, closed: true, dropped: 0 });
  });

  test("close delivers what is queued, then ends; pushes after close are refused", async () => {
    const b = new MessageBuffer<number>();
    b.push(1);
    b.push(2);
    b.close();
    b.close(); // idempotent
    expect(b.push(3)).toBe("closed");
    const got: number[] = [];
    for await (const m of b) got.push(m);
    expect(got).toEqual([1, 2]);
    expect(b.stats()).toMatchObject({ refused: 1, dropped: 0 });
    expect(await b.next()).toEqual({ value: undefined, done: true });
  });

  test("close with discard drops (and counts) what is queued", async () => {
    const b = new MessageBuffer<Uint8Array>();
    b.push(bytes(3));
    b.push(bytes(5));
    b.close({ discard: true });
    expect(b.stats()).toMatchObject({ length: 0, dropped: 2, droppedBytes: 8 });
    expect(await b.next()).toEqual({ value: undefined, done: true });
  });

  test("pending next() calls are served in order and ended by close", async () => {
    const b = new MessageBuffer<number>();
    const p1 = b.next();
    const p2 = b.next();
    const p3 = b.next();
    b.push(10);
    b.push(20);
    b.close();
    expect(await p1).toEqual({ value: 10, done: false });
    expect(await p2).toEqual({ value: 20, done: false });
    expect(await p3).toEqual({ value: undefined, done: true });
  });

  test("leaving the loop early closes the buffer and discards the rest", async () => {
    const b = new MessageBuffer<number>();
    for (let i = 0; i < 5; i++) b.push(i);
    for await (const m of b) if (m === 1) break;
    expect(b.closed).toBe(true);
    expect(b.push(9)).toBe("closed");
    expect(b.stats()).toMatchObject({ delivered: 2, dropped: 3, length: 0 });
  });

  test("close wakes a blocked producer", async () => {
    const b = new MessageBuffer<number>({ maxMessages: 1, policy: "block" });
    b.push(1);
    expect(b.push(2)).toBe("full");
    const w = b.writable();
    b.close();
    await w;
    expect(b.push(2)).toBe("closed");
  });
});

describe("MessageBuffer closed with an error", () => {
  test("what was queued is delivered, then iteration throws the error (waiting readers too)", async () => {
    const buf = new MessageBuffer<string>();
    buf.push("a");
    const boom = new Error("permission_denied");
    buf.close({ error: boom });
    expect(await buf.next()).toEqual({ value: "a", done: false });
    await expect(buf.next()).rejects.toBe(boom);
    const waiting = new MessageBuffer<string>();
    const pending = waiting.next();
    waiting.close({ error: boom });
    await expect(pending).rejects.toBe(boom);
    const seen: string[] = [];
    const it = new MessageBuffer<string>();
    it.push("x");
    it.close({ error: boom });
    await expect((async () => {
      for await (const m of it) seen.push(m);
    })()).rejects.toBe(boom);
    expect(seen).toEqual(["x"]);
  });
});
