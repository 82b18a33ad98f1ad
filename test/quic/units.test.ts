import { describe, expect, test } from "bun:test";
import { RetryTokens } from "../../lib/quic/retry.ts";
import { type Timed, TimerHeap } from "../../lib/quic/timers.ts";
import { monoNow } from "../../lib/util/mod.ts";
import { endpoint, serveEcho } from "../helpers/quic.ts";

describe("retry tokens", () => {
  const odcid = new Uint8Array(16).map((_, i) => i);
  const now = 1_800_000_000_000;

  test("a token checks out for the same address within its lifetime and yields the odcid", () => {
    const t = new RetryTokens(10_000);
    const tok = t.issue(odcid, "127.0.0.1", 4000, now);
    expect([...t.check(tok, "127.0.0.1", 4000, now + 9_000)!]).toEqual([...odcid]);
  });

  test("another address or port, expiry, tampering and another key are all refused", () => {
    const t = new RetryTokens(10_000);
    const tok = t.issue(odcid, "127.0.0.1", 4000, now);
    expect(t.check(tok, "127.0.0.2", 4000, now)).toBeNull();
    expect(t.check(tok, "127.0.0.1", 4001, now)).toBeNull();
    expect(t.check(tok, "127.0.0.1", 4000, now + 12_000)).toBeNull();
    for (let i = 0; i < tok.length; i++) {
      const bad = tok.slice();
      bad[i]! ^= 1;
      expect(t.check(bad, "127.0.0.1", 4000, now)).toBeNull();
    }
    expect(new RetryTokens(10_000).check(tok, "127.0.0.1", 4000, now)).toBeNull();
    expect(t.check(tok.subarray(0, 10), "127.0.0.1", 4000, now)).toBeNull();
  });
});

describe("timer heap", () => {
  interface Item extends Timed {
    name: string;
  }
  const item = (name: string): Item => ({ name, timerGen: 0 });

  test("fires items in deadline order; a new deadline replaces the old; null cancels", async () => {
    const fired: string[] = [];
    let done!: () => void;
    const all = new Promise<void>((r) => (done = r));
    const heap = new TimerHeap<Item>((due) => {
      for (const d of due) fired.push(d.name);
      if (fired.length === 2) done();
    });
    const a = item("a"), b = item("b"), c = item("c");
    const t = monoNow(); // the clock of lib/quic
    heap.set(a, t + 30);
    heap.set(b, t + 10);
    heap.set(c, t + 20);
    heap.set(a, t + 5); // replaces a's deadline
    heap.set(c, null); // cancels c
    await all;
    expect(fired).toEqual(["a", "b"]);
    heap.stop();
  });

  test("stale entries are compacted: the heap stays bounded under constant re-arming", () => {
    const heap = new TimerHeap<Item>(() => {});
    const items = Array.from({ length: 10 }, (_, i) => item(`i${i}`));
    const far = monoNow() + 60_000;
    for (let k = 0; k < 100_000; k++) heap.set(items[k % 10]!, far + k);
    expect(heap.size).toBeLessThanOrEqual(1024 + 10);
    heap.stop();
  });
});

describe("dual stack", () => {
  test("an endpoint bound to :: accepts an IPv4 client", async () => {
    const server = await endpoint({ host: "::" });
    const client = await endpoint({ acceptIncoming: false });
    serveEcho(server);
    try {
      const conn = await client.connect({ host: "127.0.0.1", port: server.address.port });
      const s = await conn.openStream();
      const back = s.readAll();
      await s.end(new TextEncoder().encode("v4 to v6"));
      expect(new TextDecoder().decode(await back)).toBe("v4 to v6");
    } finally {
      await client.close();
      await server.close();
    }
  });
});
