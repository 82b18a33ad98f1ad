import { describe, expect, test } from "bun:test";
import {
  checkPayloadSize,
  checkProcedureName,
  isRpcErrorCode,
  PendingCalls,
  ProcedureRegistry,
  RPC_ERROR_CODES,
  RPC_ERROR_NUMBERS,
  RPC_ERROR_TEXT,
  RpcError,
  rpcErrorCodeOf,
} from "../../lib/messaging/mod.ts";
import { prng } from "../helpers/quic.ts";

const ids = (
  reg: ProcedureRegistry,
  proc: string,
  s: "round-robin" | "random" | "local-first",
  n: number,
) => Array.from({ length: n }, () => reg.choose(proc, s).id);

describe("ProcedureRegistry", () => {
  test("register, unregister, providers, counts", () => {
    const reg = new ProcedureRegistry();
    expect(reg.register("math.add", { id: "a", local: true })).toBe(true);
    expect(reg.register("math.add", { id: "a", local: true })).toBe(false);
    expect(reg.register("math.add", { id: "b", local: false })).toBe(true);
    expect(reg.register("math.mul", { id: "b", local: false })).toBe(true);
    expect(reg.providers("math.add").map((p) => p.id)).toEqual(["a", "b"]);
    expect(reg.procedures()).toEqual(["math.add", "math.mul"]);
    expect(reg.counts()).toEqual({ procedures: 2, providers: 2, registrations: 3 });
    expect(reg.unregister("math.add", "a")).toBe(true);
    expect(reg.unregister("math.add", "a")).toBe(false);
    expect(reg.unregisterProvider("b")).toEqual(["math.add", "math.mul"]);
    expect(reg.counts()).toEqual({ procedures: 0, providers: 0, registrations: 0 });
    expect(reg.providers("math.add")).toEqual([]);
  });

  test("invalid procedure names: bad_request naming the problem", () => {
    const reg = new ProcedureRegistry();
    for (const bad of ["", "math.*", "a..b", "a.>"]) {
      try {
        reg.register(bad, { id: "x", local: true });
        throw new Error("accepted");
      } catch (e) {
        expect(e).toBeInstanceOf(RpcError);
        expect((e as RpcError).code).toBe("bad_request");
        expect((e as RpcError).message).toMatch(/^bad_request: invalid procedure/);
      }
    }
    expect(() => checkProcedureName("math.*")).toThrow(/wildcard '\*'/);
  });

  test("no_provider when none is registered or all are excluded", () => {
    const reg = new ProcedureRegistry();
    expect(() => reg.choose("x")).toThrow(/^no_provider: no provider for "x"$/);
    reg.register("x", { id: "a", local: false });
    expect(() => reg.choose("x", "round-robin", { exclude: new Set(["a"]) })).toThrow(
      /all providers already tried/,
    );
    try {
      reg.choose("y");
    } catch (e) {
      expect((e as RpcError).code).toBe("no_provider");
    }
  });

  test("round-robin spreads evenly in registration order", () => {
    const reg = new ProcedureRegistry();
    for (const id of ["a", "b", "c"]) reg.register("p", { id, local: false });
    expect(ids(reg, "p", "round-robin", 6)).toEqual(["a", "b", "c", "a", "b", "c"]);
    const counts: Record<string, number> = {};
    for (const id of ids(reg, "p", "round-robin", 3000)) counts[id] = (counts[id] ?? 0) + 1;
    expect(counts).toEqual({ a: 1000, b: 1000, c: 1000 });
  });

  test("retry with exclude picks another provider", () => {
    const reg = new ProcedureRegistry();
    for (const id of ["a", "b"]) reg.register("p", { id, local: false });
    const first = reg.choose("p");
    const second = reg.choose("p", "round-robin", { exclude: new Set([first.id]) });
    expect(second.id).not.toBe(first.id);
  });

  test("random uses the injected generator: reproducible, roughly uniform", () => {
    const make = (seed: number) => {
      const reg = new ProcedureRegistry({ random: prng(seed) });
      for (const id of ["a", "b", "c", "d"]) reg.register("p", { id, local: false });
      return reg;
    };
    expect(ids(make(3), "p", "random", 40)).toEqual(ids(make(3), "p", "random", 40));
    const counts: Record<string, number> = {};
    for (const id of ids(make(9), "p", "random", 4000)) counts[id] = (counts[id] ?? 0) + 1;
    for (const id of ["a", "b", "c", "d"]) {
      expect(counts[id]).toBeGreaterThan(850);
      expect(counts[id]).toBeLessThan(1150);
    }
    const edge = new ProcedureRegistry({ random: () => 0.9999999999 });
    edge.register("p", { id: "only", local: false });
    expect(edge.choose("p", "random").id).toBe("only");
  });

  test("random without a generator is a programming error", () => {
    const reg = new ProcedureRegistry();
    reg.register("p", { id: "a", local: true });
    expect(() => reg.choose("p", "random")).toThrow(/needs a generator/);
  });

  test("local-first prefers local providers, falls back to remote", () => {
    const reg = new ProcedureRegistry();
    reg.register("p", { id: "r1", local: false });
    reg.register("p", { id: "l1", local: true });
    reg.register("p", { id: "r2", local: false });
    reg.register("p", { id: "l2", local: true });
    const got = ids(reg, "p", "local-first", 100);
    expect(new Set(got)).toEqual(new Set(["l1", "l2"]));
    expect(got.filter((x) => x === "l1").length).toBe(50);
    reg.unregister("p", "l1");
    reg.unregister("p", "l2");
    expect(new Set(ids(reg, "p", "local-first", 10))).toEqual(new Set(["r1", "r2"]));
  });

  test("unknown strategy", () => {
    const reg = new ProcedureRegistry();
    reg.register("p", { id: "a", local: true });
    expect(() => reg.choose("p", "fastest" as "random")).toThrow(/unknown selection strategy/);
  });
});

describe("PendingCalls (injected clock)", () => {
  test("tick returns calls whose deadline passed, earliest first, with timeout errors", () => {
    const calls = new PendingCalls<string>();
    const a = calls.start({ procedure: "p", provider: "x", now: 0, timeoutMs: 300, context: "a" });
    const b = calls.start({ procedure: "p", provider: "y", now: 0, timeoutMs: 100, context: "b" });
    const c = calls.start({ procedure: "q", provider: "x", now: 50, timeoutMs: 100, context: "c" });
    expect([a.id, b.id, c.id]).toEqual([1, 2, 3]);
    expect(calls.nextWake()).toBe(100);
    expect(calls.tick(99)).toEqual([]);
    const t1 = calls.tick(150);
    expect(t1.map((f) => f.call.context)).toEqual(["b", "c"]);
    for (const f of t1) {
      expect(f.error.code).toBe("timeout");
      expect(f.error).toBeInstanceOf(RpcError);
    }
    expect(t1[0]!.error.message).toBe("timeout: no reply from y for p within 100 ms");
    expect(calls.size).toBe(1);
    expect(calls.nextWake()).toBe(300);
    expect(calls.tick(1000).map((f) => f.call.id)).toEqual([a.id]);
    expect(calls.nextWake()).toBe(Infinity);
    expect(calls.tick(2000)).toEqual([]);
  });

  test("complete removes the call; a late reply after timeout is ignored", () => {
    const calls = new PendingCalls();
    const a = calls.start({ procedure: "p", provider: "x", now: 0, timeoutMs: 10 });
    const b = calls.start({ procedure: "p", provider: "x", now: 0, timeoutMs: 10 });
    expect(calls.complete(a.id)).toBe(a);
    expect(calls.complete(a.id)).toBeUndefined();
    expect(calls.tick(10).map((f) => f.call.id)).toEqual([b.id]);
    expect(calls.complete(b.id)).toBeUndefined();
    expect(calls.nextWake()).toBe(Infinity);
  });

  test("cancel: cancelled error; cancelled calls never time out", () => {
    const calls = new PendingCalls();
    const a = calls.start({ procedure: "p", provider: "x", now: 0, timeoutMs: 10 });
    const f = calls.cancel(a.id, "user pressed Ctrl-C");
    expect(f?.error.code).toBe("cancelled");
    expect(f?.error.message).toBe("cancelled: user pressed Ctrl-C");
    expect(calls.cancel(a.id)).toBeUndefined();
    expect(calls.tick(100)).toEqual([]);
    const b = calls.start({ procedure: "p", provider: "x", now: 0, timeoutMs: 10 });
    expect(calls.cancel(b.id)?.error.message).toBe(`cancelled: ${RPC_ERROR_TEXT.cancelled}`);
  });

  test("fail with handler_error carries the handler's message", () => {
    const calls = new PendingCalls();
    const a = calls.start({ procedure: "p", provider: "x", now: 0, timeoutMs: 10 });
    const f = calls.fail(a.id, new RpcError("handler_error", "division by zero"));
    expect(f?.error.code).toBe("handler_error");
    expect(f?.error.detail).toBe("division by zero");
    expect(f?.error.message).toBe("handler_error: division by zero");
    expect(calls.size).toBe(0);
  });

  test("failProvider fails that provider's calls with unavailable", () => {
    const calls = new PendingCalls();
    calls.start({ procedure: "p", provider: "x", now: 0, timeoutMs: 10 });
    const keep = calls.start({ procedure: "p", provider: "y", now: 0, timeoutMs: 10 });
    calls.start({ procedure: "q", provider: "x", now: 0, timeoutMs: 10 });
    const failed = calls.failProvider("x");
    expect(failed.map((f) => [f.call.id, f.error.code])).toEqual([[1, "unavailable"], [
      3,
      "unavailable",
    ]]);
    expect(calls.get(keep.id)).toBe(keep);
    expect(calls.tick(10).map((f) => f.call.id)).toEqual([keep.id]);
  });

  test("bad clock values are refused", () => {
    const calls = new PendingCalls();
    expect(() => calls.start({ procedure: "p", provider: "x", now: NaN, timeoutMs: 1 })).toThrow(
      /now/,
    );
    expect(() => calls.start({ procedure: "p", provider: "x", now: 0, timeoutMs: -1 })).toThrow(
      /timeoutMs/,
    );
  });

  test("many calls: heap order matches a sort, completed calls do not leak", () => {
    const r = prng(11);
    const calls = new PendingCalls<number>();
    const live = new Map<number, number>();
    for (let i = 0; i < 5000; i++) {
      const t = Math.floor(r() * 1000);
      const c = calls.start({ procedure: "p", provider: "x", now: 0, timeoutMs: t, context: t });
      if (r() < 0.5) calls.complete(c.id);
      else live.set(c.id, t);
    }
    const want = [...live].sort((a, b) => a[1] - b[1] || a[0] - b[0]).map(([id]) => id);
    const got: number[] = [];
    for (let now = 0; now <= 1000; now += 37) got.push(...calls.tick(now).map((f) => f.call.id));
    expect(got).toEqual(want);
    expect(calls.size).toBe(0);
  });
});

describe("RPC error codes", () => {
  test("a closed set with stable numbers and messages", () => {
    expect(RPC_ERROR_CODES).toEqual([
      "no_provider",
      "timeout",
      "handler_error",
      "payload_too_large",
      "cancelled",
      "unavailable",
      "bad_request",
      "permission_denied",
    ]);
    for (const code of RPC_ERROR_CODES) {
      const e = new RpcError(code);
      expect(e.code).toBe(code);
      expect(e.number).toBe(RPC_ERROR_NUMBERS[code]);
      expect(rpcErrorCodeOf(e.number)).toBe(code);
      expect(e.message).toBe(`${code}: ${RPC_ERROR_TEXT[code]}`);
      expect(e.name).toBe("RpcError");
      expect(isRpcErrorCode(code)).toBe(true);
    }
    expect(rpcErrorCodeOf(0)).toBeUndefined();
    expect(rpcErrorCodeOf(99)).toBeUndefined();
    expect(isRpcErrorCode("boom")).toBe(false);
    expect(() => new RpcError("boom" as "timeout")).toThrow(/unknown RPC error code boom/);
  });

  test("payload_too_large", () => {
    const p = new Uint8Array(10);
    expect(checkPayloadSize(p, 10)).toBe(p);
    try {
      checkPayloadSize(p, 9);
      throw new Error("accepted");
    } catch (e) {
      expect((e as RpcError).code).toBe("payload_too_large");
      expect((e as RpcError).message).toBe(
        "payload_too_large: payload is 10 bytes, the limit is 9",
      );
    }
  });
});
