/** RPC across three nodes over real QUIC on 127.0.0.1: providers, strategies, every error code. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Client } from "../../lib/client/client.ts";
import { RpcError } from "../../lib/messaging/mod.ts";
import { type Mesh, mesh } from "../helpers/mesh.ts";

let m: Mesh;
let c0: Client;
let c1: Client;
let c2: Client;
const text = (b: Uint8Array) => new TextDecoder().decode(b);
const bytes = (s: string) => new TextEncoder().encode(s);

beforeAll(async () => {
  m = await mesh(3, { limits: { maxPayload: 64 * 1024 } });
  [c0, c1, c2] = await Promise.all([m.client(0), m.client(1), m.client(2)]);
});
afterAll(() => m.close());

/** The RpcError a promise rejects with. */
async function rpcError(p: Promise<unknown>): Promise<RpcError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof RpcError) return e;
    throw e;
  }
  throw new Error("the call succeeded");
}

describe("RPC across three nodes", () => {
  test("a call crosses nodes and comes back", async () => {
    const r = c2.serve("math.double", (p) => bytes(String(2 * Number(text(p)))));
    await r.ready;
    expect(text(await c0.call("math.double", "21"))).toBe("42");
    expect(await c0.callJson("math.double", 4)).toBe(8);
    r.stop();
  });

  test("several providers: round-robin spreads, local-first stays local", async () => {
    const regs = [
      c1.serve("who.am", () => bytes("one")),
      c2.serve("who.am", () => bytes("two")),
    ];
    await Promise.all(regs.map((r) => r.ready));
    const rr = new Set<string>();
    for (let i = 0; i < 6; i++) {
      rr.add(text(await c0.call("who.am", "", { strategy: "round-robin" })));
    }
    expect([...rr].sort()).toEqual(["one", "two"]);
    // A provider on the caller's node wins under local-first (the default).
    const local = c0.serve("who.am", () => bytes("zero"));
    await local.ready;
    for (let i = 0; i < 5; i++) expect(text(await c0.call("who.am"))).toBe("zero");
    // random picks only among the providers.
    for (let i = 0; i < 10; i++) {
      expect(["zero", "one", "two"]).toContain(
        text(await c0.call("who.am", "", { strategy: "random" })),
      );
    }
    for (const r of [...regs, local]) r.stop();
  });

  test("a provider that stops serving is no longer chosen", async () => {
    const gone = c1.serve("flaky.svc", () => bytes("one"));
    const stays = c2.serve("flaky.svc", () => bytes("two"));
    await Promise.all([gone.ready, stays.ready]);
    gone.stop();
    await c1.flush();
    for (let i = 0; i < 4; i++) {
      expect(text(await c0.call("flaky.svc", "", { strategy: "round-robin" }))).toBe("two");
    }
    stays.stop();
  });

  test("no_provider", async () => {
    const e = await rpcError(c0.call("nobody.home", "x"));
    expect(e.code).toBe("no_provider");
    expect(e.message).toContain("nobody.home");
  });

  test("timeout: the deadline passes, and the provider's handler is told", async () => {
    let aborted!: () => void;
    const sawAbort = new Promise<void>((r) => (aborted = r));
    const r = c2.serve("slow.svc", (_p, ctx) =>
      new Promise<Uint8Array>((_, reject) => {
        ctx.signal.addEventListener("abort", () => {
          aborted();
          reject(new Error("aborted"));
        });
      }));
    await r.ready;
    const e = await rpcError(c0.call("slow.svc", "x", { timeoutMs: 150 }));
    expect(e.code).toBe("timeout");
    await sawAbort; // the CANCEL travelled to the provider
    r.stop();
  });

  test("handler_error carries the handler's message", async () => {
    const r = c1.serve("fail.svc", () => {
      throw new Error("disk on fire");
    });
    await r.ready;
    const e = await rpcError(c0.call("fail.svc", "x"));
    expect(e.code).toBe("handler_error");
    expect(e.message).toContain("disk on fire");
    r.stop();
  });

  test("payload_too_large: for a request, and for a reply", async () => {
    const big = new Uint8Array(64 * 1024 + 1);
    expect((await rpcError(c0.call("math.double", big))).code).toBe("payload_too_large");
    const r = c1.serve("big.reply", () => big);
    await r.ready;
    const e = await rpcError(c0.call("big.reply", "x"));
    expect(e.code).toBe("payload_too_large");
    expect(e.message).toContain("big.reply");
    r.stop();
  });

  test("cancelled: the caller aborts, the provider's signal fires", async () => {
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    let aborted!: () => void;
    const sawAbort = new Promise<void>((r) => (aborted = r));
    const r = c2.serve("long.job", (_p, ctx) =>
      new Promise<Uint8Array>(() => {
        started();
        ctx.signal.addEventListener("abort", () => aborted());
      }));
    await r.ready;
    const ac = new AbortController();
    const call = rpcError(c0.call("long.job", "x", { signal: ac.signal, timeoutMs: 10_000 }));
    await running;
    ac.abort();
    expect((await call).code).toBe("cancelled");
    await sawAbort;
    r.stop();
  });

  test("unavailable: the provider's connection drops mid-call", async () => {
    const p = await m.client(2);
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const r = p.serve("dies.svc", () =>
      new Promise<Uint8Array>(() => {
        started();
      }));
    await r.ready;
    const call = rpcError(c0.call("dies.svc", "x", { timeoutMs: 10_000 }));
    await running;
    await p.close();
    const e = await call;
    expect(e.code).toBe("unavailable");
  });

  test("bad_request: an invalid procedure name", async () => {
    const e = await rpcError(c0.call("bad..name", "x"));
    expect(e.code).toBe("bad_request");
    expect(() => c0.serve("no.*", () => bytes(""))).toThrow(/wildcard/);
  });

  test("many concurrent calls each get their own answer", async () => {
    const r = c1.serve("echo.svc", (p) => p);
    await r.ready;
    const n = 300;
    const answers = await Promise.all(
      Array.from({ length: n }, (_, i) => c0.call("echo.svc", `#${i}`).then(text)),
    );
    expect(answers).toEqual(Array.from({ length: n }, (_, i) => `#${i}`));
    r.stop();
  });
});
