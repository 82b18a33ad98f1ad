/**
 * The client's calls in flight (lib/client/request.ts): settled by a reply, a failure, the
 * caller's signal, the loss of the session or the deadline — each exactly once, with a CANCEL
 * to the node when it ends without a reply. No node: `send` and `cancel` are recorded.
 */
import { describe, expect, test } from "bun:test";
import { RPC_ERROR_NUMBERS, RpcError } from "../../lib/messaging/mod.ts";
import { Caller } from "../../lib/client/request.ts";
import { DEFAULTS } from "../../lib/client/options.ts";
import { CREDS_FILES, DEFAULT_CREDS, DEFAULT_SERVER } from "../../lib/client/contexts.ts";
import { DEFAULT_PORT } from "../../lib/peer/mod.ts";
import { monoNow } from "../../lib/util/mod.ts";

function harness() {
  const sent: { id: number; remainingMs: number; procedure: string }[] = [];
  const cancelled: number[] = [];
  const caller = new Caller((id) => cancelled.push(id));
  const start = (procedure: string, timeoutMs: number, signal?: AbortSignal) =>
    caller.start({
      procedure,
      startedAt: monoNow(),
      timeoutMs,
      signal,
      send: (id, remainingMs) => sent.push({ id, remainingMs, procedure }),
    });
  return { caller, sent, cancelled, start };
}

async function rejection(p: Promise<unknown>): Promise<RpcError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof RpcError) return e;
    throw e;
  }
  throw new Error("expected a rejection");
}

describe("Caller", () => {
  test("a reply resolves the call; a late reply or failure is ignored", async () => {
    const { caller, sent, cancelled, start } = harness();
    const p = start("math.double", 1000);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.remainingMs).toBeGreaterThan(0);
    expect(sent[0]!.remainingMs).toBeLessThanOrEqual(1000);
    caller.reply(sent[0]!.id, new Uint8Array([4, 2]));
    expect([...await p]).toEqual([4, 2]);
    caller.reply(sent[0]!.id, new Uint8Array([1]));
    caller.fail(sent[0]!.id, RPC_ERROR_NUMBERS.timeout, "late");
    expect(caller.size).toBe(0);
    expect(cancelled).toEqual([]);
  });

  test("a FAIL rejects with the node's code and message; an unknown number is handler_error", async () => {
    const { caller, sent, start } = harness();
    const a = rejection(start("a.b", 1000));
    const b = rejection(start("a.b", 1000));
    caller.fail(sent[0]!.id, RPC_ERROR_NUMBERS.no_provider, "nobody");
    caller.fail(sent[1]!.id, 99, "strange");
    expect((await a).code).toBe("no_provider");
    expect((await a).detail).toBe("nobody");
    expect((await b).code).toBe("handler_error");
    expect((await b).detail).toBe("strange");
  });

  test("a node's timeout FAIL reads as the caller's own deadline (whichever timer fires first)", async () => {
    const { caller, sent, start } = harness();
    const p = rejection(start("slow.op", 300));
    caller.fail(
      sent[0]!.id,
      RPC_ERROR_NUMBERS.timeout,
      "no reply from client:1 for slow.op within 299 ms",
    );
    expect((await p).message).toBe("timeout: slow.op: no reply within 300 ms");
    expect(caller.size).toBe(0);
  });

  test("deadlines pass in deadline order, each with its own message and a CANCEL", async () => {
    const { caller, sent, cancelled, start } = harness();
    const order: string[] = [];
    const slow = rejection(start("slow", 120)).then((e) => (order.push("slow"), e));
    const fast = rejection(start("fast", 30)).then((e) => (order.push("fast"), e));
    const answered = start("answered", 60);
    caller.reply(sent[2]!.id, new Uint8Array(0));
    await answered;
    const t0 = monoNow();
    expect((await fast).message).toBe("timeout: fast: no reply within 30 ms");
    expect((await slow).message).toBe("timeout: slow: no reply within 120 ms");
    expect(monoNow() - t0).toBeGreaterThanOrEqual(60);
    expect(order).toEqual(["fast", "slow"]);
    expect(cancelled).toEqual([sent[1]!.id, sent[0]!.id]);
    expect(caller.size).toBe(0);
  });

  test("the caller's signal cancels (once), with a CANCEL to the node", async () => {
    const { caller, sent, cancelled, start } = harness();
    const ac = new AbortController();
    const p = rejection(start("long.job", 10_000, ac.signal));
    ac.abort();
    const e = await p;
    expect(e.code).toBe("cancelled");
    expect(e.message).toBe("cancelled: long.job: cancelled by the caller");
    expect(cancelled).toEqual([sent[0]!.id]);
    caller.reply(sent[0]!.id, new Uint8Array(0)); // too late: ignored
    expect(caller.size).toBe(0);
  });

  test("failAll fails every call in id order, without CANCELs (the session is gone)", async () => {
    const { caller, cancelled, start } = harness();
    const order: string[] = [];
    const calls = ["one", "two", "three"].map((p) =>
      rejection(start(p, 10_000)).then((e) => (order.push(p), e))
    );
    caller.failAll(() => new RpcError("unavailable", "the connection was lost"));
    for (const e of await Promise.all(calls)) expect(e.code).toBe("unavailable");
    expect(order).toEqual(["one", "two", "three"]);
    expect(cancelled).toEqual([]);
    expect(caller.size).toBe(0);
  });
});

describe("client defaults", () => {
  test("the server and credentials defaults are one, shared with the contexts", () => {
    expect(DEFAULTS.server).toBe(`quic://127.0.0.1:${DEFAULT_PORT}`);
    expect(DEFAULT_SERVER).toBe(DEFAULTS.server);
    expect(DEFAULT_CREDS).toBe(DEFAULTS.credsDir);
    expect([...CREDS_FILES]).toEqual(["ca.pem", "cert.pem", "key.pem"]);
  });
});
