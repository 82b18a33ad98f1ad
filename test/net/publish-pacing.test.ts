/**
 * A publisher faster than its node, over real QUIC on 127.0.0.1: the client's queue to the node
 * is bounded (`maxPendingBytes`: `publish` throws `backlog_full` past it, never grows memory
 * without limit), `writable()` paces a publish loop to the node, and a `flush` after a paced
 * burst is not stuck behind it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ClientError } from "../../lib/client/errors.ts";
import { type Mesh, mesh } from "../helpers/mesh.ts";

let m: Mesh;

beforeAll(async () => {
  m = await mesh(1);
});
afterAll(() => m.close());

const KIB = 1024;

describe("publish pacing", () => {
  test("past maxPendingBytes, publish throws backlog_full, naming the bound and the cure", async () => {
    const c = await m.client(0, { maxPendingBytes: 1024 * KIB });
    const payload = new Uint8Array(8 * KIB);
    let sent = 0;
    let refused: unknown;
    // One synchronous loop: nothing can leave until it yields, so the queue only grows.
    for (let i = 0; i < 1000; i++) {
      try {
        c.publish("pace.full", payload);
        sent++;
      } catch (e) {
        refused = e;
        break;
      }
    }
    expect(refused).toBeInstanceOf(ClientError);
    expect((refused as ClientError).code).toBe("backlog_full");
    expect((refused as Error).message).toMatch(
      /^\d+ bytes are waiting to go to quic:\/\/127\.0\.0\.1:\d+, and maxPendingBytes is 1048576: a publish loop awaits c\.writable\(\) between bursts$/,
    );
    // It took up to the bound, and no more (a frame is the payload and a few bytes of head).
    expect(sent).toBeGreaterThanOrEqual(124);
    expect(sent).toBeLessThanOrEqual(128);
    // Once drained, publishing goes on, and everything taken arrives at the node.
    await c.writable();
    c.publish("pace.full", payload);
    await c.flush();
    await c.close();
  });

  test("a loop that awaits writable() publishes far past the bound; every message arrives", async () => {
    // writable() waits until QUIC took all but the stream's write buffer (256 KiB): a bound of
    // 1 MiB leaves room for a burst of 128 KiB after each wait.
    const pub = await m.client(0, { maxPendingBytes: 1024 * KIB });
    const subc = await m.client(0);
    // All 4,000 (32 MiB) wait in the buffer until the loop below reads them.
    const sub = subc.subscribe("pace.loop", { maxMessages: 10_000, maxBytes: 64 * 1024 * KIB });
    await subc.flush();
    const count = 4000; // 32 MiB: 32 times the bound
    const payload = new Uint8Array(8 * KIB);
    for (let i = 0; i < count; i++) {
      payload[0] = i & 0xff;
      pub.publish("pace.loop", payload);
      if (i % 16 === 15) await pub.writable();
    }
    await pub.flush();
    let got = 0;
    for await (const msg of sub) {
      expect(msg.payload[0]).toBe(got & 0xff);
      if (++got === count) break;
    }
    expect(got).toBe(count);
    await pub.close();
    await subc.close();
  });

  test("writable() resolves at once on an idle client, and rejects once it is closed", async () => {
    const c = await m.client(0);
    await c.writable();
    await c.close();
    let e: unknown;
    try {
      await c.writable();
    } catch (x) {
      e = x;
    }
    expect((e as ClientError).code).toBe("closed");
  });
});
