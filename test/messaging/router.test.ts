/** The router, sans-IO: fake links record frames; time is a variable. */
import { describe, expect, test } from "bun:test";
import {
  type Link,
  ProtocolError,
  Router,
  type RouterOptions,
} from "../../lib/messaging/router.ts";
import { busCodec, RPC_ERROR_NUMBERS } from "../../lib/messaging/mod.ts";
import type { Frame } from "../../lib/wire/codec.ts";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { Decoder } from "cbor-x/decode";

type Sent = [string, Record<string, unknown>];

class FakeLink implements Link {
  sent: Sent[] = [];
  /** What the driver would say is queued to this link. */
  queued = 0;
  backlog(): number {
    return this.queued;
  }
  constructor(readonly id: string, readonly kind: "client" | "node") {}
  send(name: string, fields: Record<string, unknown>): void {
    this.sent.push([name, { ...fields }]);
  }
  /** The frames sent since the last call, as `NAME {fields}` without undefined fields. */
  take(): string[] {
    const out = this.sent.map(([n, f]) =>
      `${n} ${
        JSON.stringify(f, (_, v) => (v instanceof Uint8Array ? new TextDecoder().decode(v) : v))
      }`
    );
    this.sent = [];
    return out;
  }
}

const b = (s: string) => new TextEncoder().encode(s);
const frame = (name: string, fields: Record<string, unknown>): Frame => ({ type: 0, name, fields });

/** Far nodes' ids (the router names them by their first 16 characters). */
const A = "nodeAAAAAAAAAAAAxxxx";
const B = "nodeBBBBBBBBBBBBxxxx";
const C = "nodeCCCCCCCCCCCCxxxx";
const short = (id: string) => id.slice(0, 16);
/** An INTEREST a peer sends: `origin`'s record (unsigned: key and sig spell the origin). */
const record = (
  origin: string,
  o: {
    version?: number;
    hops?: number;
    subs?: { pattern: string; queue?: string }[];
    procs?: string[];
  } = {},
) => ({
  origin,
  version: o.version ?? 1,
  hops: o.hops ?? 0,
  rtt_us: 0,
  subs: o.subs ?? [],
  procs: o.procs ?? [],
  key: b(origin),
  sig: b(origin),
});
/** FWD fields naming nodes `ids`, with the queue groups of each (`[id, [queue…]]`). */
const to = (...ids: (string | [string, string[]])[]) => ({
  dests: ids.map((d) => short(typeof d === "string" ? d : d[0])),
  groups: ids.flatMap((d) =>
    typeof d === "string" ? [] : d[1].map((queue) => ({ node: short(d[0]), queue }))
  ),
});

function setup(o: Partial<RouterOptions<FakeLink>> = {}) {
  let now = 1000;
  const r = new Router<FakeLink>({ random: () => 0.5, maxPayload: 100, floodDelayMs: 0, ...o });
  // The driver's part: what the router queued goes to its links.
  const deliver = () => {
    for (const a of r.drain()) a.to.send(a.name, a.fields);
  };
  const link = (id: string, kind: "client" | "node") => {
    const l = new FakeLink(id, kind);
    r.attach(l);
    deliver();
    return l;
  };
  return {
    r,
    link,
    detach: (l: FakeLink) => {
      r.detach(l);
      deliver();
    },
    advance: (ms: number) => {
      now += ms;
      r.tick(now);
      deliver();
    },
    rx: (l: Link, name: string, fields: Record<string, unknown>) => {
      try {
        r.receive(now, l, frame(name, fields));
      } finally {
        deliver();
      }
    },
  };
}

describe("router: interest and forwarding", () => {
  test("a node's interest goes to every peer node as one record, again only when it changes", () => {
    const { link, rx, advance } = setup();
    const n1 = link("n1", "node");
    const a = link("a", "client");
    const c = link("c", "client");
    rx(a, "SUB", { sid: 1, pattern: "x.>" });
    rx(c, "SUB", { sid: 7, pattern: "x.>" }); // same pattern: one entry
    rx(c, "SUB", { sid: 8, pattern: "x.>", queue: "q" }); // with a queue group: a distinct one
    expect(n1.take()).toEqual([]); // changes are gathered for announceDelayMs
    advance(5);
    expect(n1.take()).toEqual([
      'INTEREST {"origin":"local","version":1,"hops":0,"rtt_us":0,"subs":[{"pattern":"x.>"},{"pattern":"x.>","queue":"q"}],"procs":[],"key":"local","sig":"local"}',
    ]);
    rx(a, "UNSUB", { sid: 1 });
    advance(5);
    expect(n1.take()).toEqual([]); // sid 7 still holds x.>
    rx(c, "UNSUB", { sid: 7 });
    rx(a, "REG", { proc: "svc.a" });
    advance(5);
    const v2 =
      'INTEREST {"origin":"local","version":2,"hops":0,"rtt_us":0,"subs":[{"pattern":"x.>","queue":"q"}],"procs":["svc.a"],"key":"local","sig":"local"}';
    expect(n1.take()).toEqual([v2]);
    // A node attached later learns what is current.
    const n2 = link("n2", "node");
    expect(n2.take()).toEqual([v2]);
  });

  test("a record is passed on once per version, with this node's cost; its next hop hears a withdrawal", () => {
    const { r, link, rx } = setup();
    const n1 = link("n1", "node");
    const n2 = link("n2", "node");
    rx(n1, "INTEREST", record(A, { hops: 1, subs: [{ pattern: "t.>" }] }));
    expect(n2.take()).toEqual([
      `INTEREST {"origin":"${A}","version":1,"hops":2,"rtt_us":1000,"subs":[{"pattern":"t.>"}],"procs":[],"key":"${A}","sig":"${A}"}`,
    ]);
    expect(n1.take()).toEqual([
      `INTEREST {"origin":"${A}","version":1,"hops":255,"rtt_us":0,"subs":[],"procs":[],"key":"","sig":""}`,
    ]);
    // The same version again, over a worse path: nothing to pass on.
    rx(n2, "INTEREST", record(A, { hops: 5, subs: [{ pattern: "t.>" }] }));
    expect([...n1.take(), ...n2.take()]).toEqual([]);
    expect(r.stats.records).toBe(1);
    // The best path goes: the other one takes over, and its peer hears the new cost.
    rx(n1, "INTEREST", { ...record(A), hops: 255 });
    expect(n1.take()[0]).toContain('"hops":6');
    expect(n2.take()[0]).toContain('"hops":255');
    // No path left: the origin is forgotten, and every peer told.
    rx(n2, "INTEREST", { ...record(A), hops: 255 });
    expect(r.interest().map((o) => o.node)).toEqual(["local"]);
  });

  test("a record's subscriptions are passed on in record form: no null queue, no other field", () => {
    const { link, rx } = setup();
    const n1 = link("n1", "node");
    const n2 = link("n2", "node");
    const subs = [
      { pattern: "t.a", queue: null },
      { pattern: "t.b", queue: "w", extra: 1 },
      { queue: "w", pattern: "t.c" },
    ];
    rx(n1, "INTEREST", { ...record(A, { hops: 1 }), subs });
    expect(n2.take()).toEqual([
      `INTEREST {"origin":"${A}","version":1,"hops":2,"rtt_us":1000,"subs":[{"pattern":"t.a"},{"pattern":"t.b","queue":"w"},{"pattern":"t.c","queue":"w"}],"procs":[],"key":"${A}","sig":"${A}"}`,
    ]);
    // Already in record form: passed on as it came.
    const clean = [{ pattern: "u.a" }, { pattern: "u.b", queue: "w" }];
    rx(n1, "INTEREST", { ...record(B, { hops: 1 }), subs: clean });
    expect(n2.take()).toEqual([
      `INTEREST {"origin":"${B}","version":1,"hops":2,"rtt_us":1000,"subs":[{"pattern":"u.a"},{"pattern":"u.b","queue":"w"}],"procs":[],"key":"${B}","sig":"${B}"}`,
    ]);
  });

  test("a record that repeats a subscription is entered once, and all of it goes with its next version", () => {
    const { r, link, rx } = setup();
    const n1 = link("n1", "node");
    const a = link("a", "client");
    const subs = [{ pattern: "t.x" }, { pattern: "t.x", queue: "w" }, { pattern: "t.x" }];
    rx(n1, "INTEREST", record(A, { subs }));
    expect(r.snapshot().remoteInterest).toBe(2);
    n1.take();
    rx(a, "PUB", { topic: "t.x", payload: b("1") });
    expect(n1.take()).toEqual([
      `FWD {"topic":"t.x","payload":"1","ttl":32,"dests":["${short(A)}"],"groups":[{"node":"${
        short(A)
      }","queue":"w"}]}`,
    ]);
    rx(n1, "INTEREST", record(A, { version: 2, subs: [{ pattern: "u" }] }));
    expect(r.snapshot().remoteInterest).toBe(1);
    n1.take();
    rx(a, "PUB", { topic: "t.x", payload: b("2") });
    expect(n1.take()).toEqual([]);
  });

  test("a publish goes once to each interested node, one FWD per next hop, on and on", () => {
    const { r, link, rx } = setup();
    const n1 = link("n1", "node");
    const n2 = link("n2", "node");
    const a = link("a", "client");
    rx(a, "SUB", { sid: 1, pattern: "t.*" });
    rx(n1, "INTEREST", record(A, { subs: [{ pattern: "t.>" }, { pattern: "t.x" }] }));
    rx(n1, "INTEREST", record(B, { hops: 1, subs: [{ pattern: "t.x" }] }));
    rx(n2, "INTEREST", record(C, { subs: [{ pattern: "t.x", queue: "w" }] }));
    n1.take();
    n2.take();
    rx(a, "PUB", { topic: "t.x", payload: b("hi") });
    expect(a.take()).toEqual(['MSG {"sid":1,"topic":"t.x","payload":"hi"}']);
    expect(n1.take()).toEqual([
      `FWD {"topic":"t.x","payload":"hi","ttl":32,"dests":["${short(A)}","${
        short(B)
      }"],"groups":[]}`,
    ]);
    expect(n2.take()).toEqual([
      `FWD {"topic":"t.x","payload":"hi","ttl":32,"dests":["${short(C)}"],"groups":[{"node":"${
        short(C)
      }","queue":"w"}]}`,
    ]);
    // A FWD naming this node and another: delivered here, the rest passed on, one hop less.
    rx(n2, "FWD", { topic: "t.y", payload: b("on"), ttl: 9, ...to("local", A) });
    expect(a.take()).toEqual(['MSG {"sid":1,"topic":"t.y","payload":"on"}']);
    expect(n1.take()).toEqual([
      `FWD {"topic":"t.y","payload":"on","ttl":8,"dests":["${short(A)}"],"groups":[]}`,
    ]);
    // The hop limit, and a node with no path: dropped and counted.
    rx(n2, "FWD", { topic: "t.y", payload: b("x"), ttl: 1, ...to(A) });
    rx(n1, "FWD", { topic: "t.y", payload: b("x"), ttl: 9, ...to("nodeZZZZZZZZZZZZ") });
    expect([...n1.take(), ...n2.take()]).toEqual([]);
    expect(r.stats.hopLimit).toBe(1);
    expect(r.stats.noRoute).toBe(1);
    // The only path leads back where it came from (paths settling): back it goes, one hop less.
    rx(n1, "FWD", { topic: "t.y", payload: b("x"), ttl: 9, ...to(A) });
    expect(n1.take()).toEqual([
      `FWD {"topic":"t.y","payload":"x","ttl":8,"dests":["${short(A)}"],"groups":[]}`,
    ]);
  });

  test("a FWD or CALL whose best path leads back goes by the next best path (paths settling)", () => {
    const { r, link, rx } = setup();
    const n1 = link("n1", "node");
    const n2 = link("n2", "node");
    rx(n1, "INTEREST", record(A, { hops: 1, subs: [{ pattern: "t" }], procs: ["p"] }));
    rx(n2, "INTEREST", record(A, { hops: 3, subs: [{ pattern: "t" }], procs: ["p"] }));
    n1.take();
    n2.take();
    // n1 is the best hop toward A, but n1 sent this: n2 takes it, and nothing goes back.
    rx(n1, "FWD", { topic: "t", payload: b("x"), ttl: 9, ...to(A) });
    expect(n1.take()).toEqual([]);
    expect(n2.take()).toEqual([
      `FWD {"topic":"t","payload":"x","ttl":8,"dests":["${short(A)}"],"groups":[]}`,
    ]);
    rx(n1, "CALL", { id: 4, proc: "p", payload: b("q"), timeout_ms: 500, to: short(A), ttl: 9 });
    expect(n1.take()).toEqual([]);
    expect(n2.take().map((f) => f.split(" ")[0])).toEqual(["CALL"]);
    expect(r.stats.noRoute).toBe(0);
  });

  test("queue groups: a local member wins; a FWD delivers only to the groups it names", () => {
    const { link, rx } = setup();
    const n1 = link("n1", "node");
    const a = link("a", "client");
    rx(n1, "INTEREST", record(A, { subs: [{ pattern: "j", queue: "w" }] }));
    rx(a, "SUB", { sid: 5, pattern: "j", queue: "w" });
    rx(a, "SUB", { sid: 6, pattern: "j", queue: "other" });
    n1.take();
    rx(a, "PUB", { topic: "j", payload: b("1") });
    expect(a.take().sort()).toEqual([
      'MSG {"sid":5,"topic":"j","payload":"1"}',
      'MSG {"sid":6,"topic":"j","payload":"1"}',
    ]);
    expect(n1.take()).toEqual([]);
    rx(n1, "FWD", { topic: "j", payload: b("2"), ttl: 5, ...to(["local", ["w"]]) });
    expect(a.take()).toEqual(['MSG {"sid":5,"topic":"j","payload":"2"}']);
  });

  test("bad input from a client is answered with ERROR; from a node it closes the session", () => {
    const { link, rx, r } = setup();
    const a = link("a", "client");
    const n1 = link("n1", "node");
    rx(a, "PUB", { topic: "a..b", payload: b("") });
    rx(a, "PUB", { topic: "big", payload: new Uint8Array(101) });
    rx(a, "SUB", { sid: 1, pattern: "a.>.b" });
    rx(a, "SUB", { sid: 2, pattern: "ok" });
    rx(a, "SUB", { sid: 2, pattern: "ok2" });
    rx(a, "REG", { proc: "x.*" });
    expect(a.take().map((s) => JSON.parse(s.slice(6)).code)).toEqual([
      "bad_topic",
      "payload_too_large",
      "bad_pattern",
      "duplicate_sid",
      "bad_procedure",
    ]);
    expect(() => rx(n1, "PUB", { topic: "x", payload: b("") })).toThrow(ProtocolError);
    expect(() => rx(a, "FWD", { topic: "x", payload: b(""), ttl: 1, dests: [], groups: [] }))
      .toThrow(
        "FWD: not allowed from a client on the bus",
      );
    expect(() => rx(n1, "SUB", { sid: 1, pattern: "a" })).toThrow(
      "SUB: not allowed from a node on the bus",
    );
    expect(() => rx(n1, "INTEREST", record(A, { subs: [{ pattern: "a.>.b" }] }))).toThrow(
      /^INTEREST.subs: /,
    );
    expect(() => rx(n1, "INTEREST", record(A, { procs: ["x.*"] }))).toThrow(/^INTEREST.procs: /);
    expect(() => rx(n1, "INTEREST", { ...record(A), sig: b("forged") })).toThrow(
      `INTEREST: the record of ${A} (version 1) is not signed by that node`,
    );
    expect(r.stats.forgedRecords).toBe(1);
    expect(r.stats.protocolErrors).toBe(6);
  });

  test("a record of a non-member is held until membership admits it; a newer version replaces the old", () => {
    const members = new Set<string>();
    const { r, link, rx } = setup({ admit: (o) => members.has(o) });
    const n1 = link("n1", "node");
    const a = link("a", "client");
    rx(n1, "INTEREST", record(A, { subs: [{ pattern: "x" }, { pattern: "x" }] }));
    rx(a, "PUB", { topic: "x", payload: b("1") });
    expect(n1.take()).toEqual([]);
    expect(r.stats.refusedRecords).toBe(1);
    members.add(A);
    r.memberUp(A);
    rx(a, "PUB", { topic: "x", payload: b("2") }); // the repeated entry counts once
    expect(n1.take().filter((f) => f.startsWith("FWD"))).toHaveLength(1);
    rx(n1, "INTEREST", record(A, { version: 2, subs: [{ pattern: "y" }] }));
    rx(a, "PUB", { topic: "x", payload: b("3") });
    rx(a, "PUB", { topic: "y", payload: b("4") });
    expect(n1.take().filter((f) => f.startsWith("FWD"))).toHaveLength(1);
    // An older version no longer changes what is held; a dead member's record goes at once.
    rx(n1, "INTEREST", record(A, { version: 1, subs: [{ pattern: "x" }] }));
    expect(r.interest()[1]!.subs).toEqual([{ pattern: "y" }]);
    r.memberDown(A);
    expect(r.interest()).toHaveLength(1);
  });
});

describe("router: calls", () => {
  const n = RPC_ERROR_NUMBERS;

  test("a call reaches a provider and its reply the caller, ids mapped per hop", () => {
    const { link, rx } = setup();
    const caller = link("c", "client");
    const prov = link("p", "client");
    rx(prov, "REG", { proc: "svc" });
    rx(caller, "CALL", { id: 77, proc: "svc", payload: b("q"), timeout_ms: 500 });
    expect(prov.take()).toEqual([
      'CALL {"id":1,"proc":"svc","payload":"q","timeout_ms":500,"strategy":"local-first"}',
    ]);
    rx(prov, "REPLY", { id: 1, payload: b("a") });
    expect(caller.take()).toEqual(['REPLY {"id":77,"payload":"a"}']);
    rx(prov, "REPLY", { id: 1, payload: b("late") }); // already answered: ignored
    expect(caller.take()).toEqual([]);
  });

  test("a far provider answering no_provider makes the router try the next one", () => {
    const { link, rx } = setup();
    const caller = link("c", "client");
    const n1 = link("n1", "node");
    const n2 = link("n2", "node");
    rx(n1, "INTEREST", record(A, { hops: 2, procs: ["svc"] }));
    rx(n2, "INTEREST", record(B, { procs: ["svc"] }));
    n1.take();
    n2.take();
    rx(caller, "CALL", {
      id: 1,
      proc: "svc",
      payload: b(""),
      timeout_ms: 500,
      strategy: "round-robin",
    });
    expect(n1.take()).toEqual([
      `CALL {"id":1,"proc":"svc","payload":"","timeout_ms":500,"strategy":"round-robin","to":"${
        short(A)
      }","ttl":32}`,
    ]);
    rx(n1, "FAIL", { id: 1, code: n.no_provider, message: "gone" });
    expect(n2.take()[0]).toContain(`"to":"${short(B)}"`);
    rx(n2, "FAIL", { id: 2, code: n.no_provider, message: "gone too" });
    const [fail] = caller.take();
    expect(fail).toContain(`"code":${n.no_provider}`);
    expect(fail).toContain("all providers already tried");
  });

  test("nearest: the provider with the lowest RTT sum; a local one first", () => {
    const { link, rx } = setup();
    const caller = link("c", "client");
    const n1 = link("n1", "node");
    const n2 = link("n2", "node");
    rx(n1, "INTEREST", { ...record(A, { procs: ["svc"] }), rtt_us: 9000 });
    rx(n2, "INTEREST", { ...record(B, { procs: ["svc"] }), hops: 3, rtt_us: 1000 });
    n1.take();
    n2.take();
    for (let id = 1; id <= 2; id++) {
      rx(caller, "CALL", { id, proc: "svc", payload: b(""), timeout_ms: 50, strategy: "nearest" });
    }
    expect(n1.take()).toEqual([]);
    expect(n2.take()).toHaveLength(2);
    const p = link("p", "client");
    rx(p, "REG", { proc: "svc" });
    rx(caller, "CALL", { id: 3, proc: "svc", payload: b(""), timeout_ms: 50, strategy: "nearest" });
    expect(p.take()).toHaveLength(1);
  });

  test("a call from a peer node: served here when it is for this node, else passed on, hop-limited", () => {
    const { link, rx } = setup();
    const n1 = link("n1", "node");
    const n2 = link("n2", "node");
    rx(n2, "INTEREST", record(B, { procs: ["svc"] }));
    n1.take();
    n2.take();
    // For this node: its own clients only (it has none), never a far provider.
    rx(n1, "CALL", { id: 9, proc: "svc", payload: b(""), timeout_ms: 100, to: "local", ttl: 5 });
    expect(n2.take()).toEqual([]);
    expect(n1.take()[0]).toContain(`"code":${n.no_provider}`);
    // For B: on toward it, one hop less; the reply comes back the same way.
    rx(n1, "CALL", { id: 10, proc: "svc", payload: b("q"), timeout_ms: 100, to: short(B), ttl: 5 });
    const [call] = n2.take();
    expect(call).toContain(`"to":"${short(B)}","ttl":4`);
    rx(n2, "REPLY", { id: JSON.parse(call!.slice(5)).id, payload: b("a") });
    expect(n1.take()).toEqual(['REPLY {"id":10,"payload":"a"}']);
    // At the hop limit: unavailable, counted. With no path: no_provider (the chooser tries another).
    rx(n1, "CALL", { id: 11, proc: "svc", payload: b(""), timeout_ms: 100, to: short(B), ttl: 1 });
    expect(n1.take()[0]).toContain(`"code":${n.unavailable}`);
    rx(n1, "CALL", { id: 12, proc: "svc", payload: b(""), timeout_ms: 100, to: short(C), ttl: 5 });
    expect(n1.take()[0]).toContain(`"code":${n.no_provider}`);
    expect(() => rx(n1, "CALL", { id: 13, proc: "svc", payload: b(""), timeout_ms: 100 })).not
      .toThrow();
    expect(n1.take()[0]).toContain("no destination");
  });

  test("deadlines: a timeout fails the caller and cancels at the provider", () => {
    const { link, rx, advance, r } = setup();
    const caller = link("c", "client");
    const prov = link("p", "client");
    rx(prov, "REG", { proc: "svc" });
    expect(r.nextWake()).toBe(1005); // its record goes out then
    advance(5);
    rx(caller, "CALL", { id: 3, proc: "svc", payload: b(""), timeout_ms: 250 });
    prov.take();
    expect(r.nextWake()).toBe(1255);
    advance(249);
    expect(caller.take()).toEqual([]);
    advance(1);
    expect(caller.take()[0]).toContain(`"code":${n.timeout}`);
    // The provider's handler is told the deadline passed (a timeout, not a cancel).
    expect(prov.take()).toEqual(['CANCEL {"id":1,"expired":true}']);
  });

  test("cancel, provider loss and caller loss each end the call once", () => {
    const { link, rx, r, detach } = setup();
    const caller = link("c", "client");
    const prov = link("p", "client");
    rx(prov, "REG", { proc: "svc" });
    rx(caller, "CALL", { id: 1, proc: "svc", payload: b(""), timeout_ms: 1000 });
    rx(caller, "CANCEL", { id: 1 });
    expect(prov.take()).toEqual([
      'CALL {"id":1,"proc":"svc","payload":"","timeout_ms":1000,"strategy":"local-first"}',
      'CANCEL {"id":1}',
    ]);
    rx(caller, "CALL", { id: 2, proc: "svc", payload: b(""), timeout_ms: 1000 });
    detach(prov);
    expect(caller.take()[0]).toContain(`"code":${n.unavailable}`);
    const prov2 = link("p2", "client");
    rx(prov2, "REG", { proc: "svc" });
    rx(caller, "CALL", { id: 3, proc: "svc", payload: b(""), timeout_ms: 1000 });
    prov2.take();
    detach(caller);
    expect(prov2.take()).toEqual(['CANCEL {"id":3}']);
    expect(r.snapshot().pendingCalls).toBe(0);
  });

  test("bad calls: unknown strategy, duplicate id, bad name, too large", () => {
    const { link, rx } = setup();
    const caller = link("c", "client");
    const prov = link("p", "client");
    rx(prov, "REG", { proc: "svc" });
    rx(caller, "CALL", { id: 1, proc: "svc", payload: b(""), timeout_ms: 9, strategy: "best" });
    rx(caller, "CALL", { id: 2, proc: "svc", payload: b(""), timeout_ms: 9 });
    rx(caller, "CALL", { id: 2, proc: "svc", payload: b(""), timeout_ms: 9 });
    rx(caller, "CALL", { id: 3, proc: "a..b", payload: b(""), timeout_ms: 9 });
    rx(caller, "CALL", { id: 4, proc: "svc", payload: new Uint8Array(101), timeout_ms: 9 });
    expect(caller.take().map((s) => JSON.parse(s.slice(5)).code)).toEqual([
      n.bad_request,
      n.bad_request,
      n.bad_request,
      n.payload_too_large,
    ]);
  });
});

describe("router: flush", () => {
  test("a client's PING is answered once every peer node answered ours", () => {
    const { link, rx } = setup();
    const a = link("a", "client");
    const n1 = link("n1", "node");
    const n2 = link("n2", "node");
    rx(a, "PING", { id: 5 });
    expect(n1.take()).toEqual(['PING {"id":1}']);
    expect(n2.take()).toEqual(['PING {"id":1}']);
    rx(n1, "PONG", { id: 1 });
    expect(a.take()).toEqual([]);
    rx(n2, "PONG", { id: 1 });
    expect(a.take()).toEqual(['PONG {"id":5}']);
    // A node's PING is answered at once and goes no further.
    rx(n1, "PING", { id: 9 });
    expect(n1.take()).toEqual(['PONG {"id":9}']);
    expect(n2.take()).toEqual([]);
  });

  test("a peer that leaves or never answers does not hold a flush forever", () => {
    const { link, rx, detach, advance } = setup();
    const a = link("a", "client");
    const n1 = link("n1", "node");
    const n2 = link("n2", "node");
    rx(a, "PING", { id: 1 });
    rx(n1, "PONG", { id: 1 });
    detach(n2);
    expect(a.take()).toEqual(['PONG {"id":1}']);
    rx(a, "PING", { id: 2 });
    advance(5000);
    expect(a.take()).toEqual(['PONG {"id":2}']);
    void n1;
  });
});

describe("router: authorize", () => {
  /** Clients whose id starts with "ok" may do anything; others nothing under "secret". */
  const rules = () => {
    const asked: string[] = [];
    const authorize = (l: FakeLink, op: string, subject: string, queue?: string) => {
      asked.push(`${l.id} ${op} ${subject}${queue ? ` ${queue}` : ""}`);
      return l.id.startsWith("ok") || !subject.startsWith("secret") ? null : `${op} ${subject}: no`;
    };
    return { asked, authorize };
  };

  test("a refused publish, subscribe, registration and call reach the client and are counted", () => {
    const { asked, authorize } = rules();
    const { r, link, rx } = setup({ authorize });
    const n1 = link("n1", "node");
    const ok = link("ok", "client");
    const bad = link("bad", "client");
    rx(ok, "SUB", { sid: 1, pattern: "secret.>" });
    rx(bad, "SUB", { sid: 2, pattern: "secret.>" });
    expect(bad.take()).toEqual([
      'ERROR {"code":"permission_denied","message":"subscribe secret.>: no","sid":2}',
    ]);
    rx(bad, "PUB", { topic: "secret.x", payload: b("p") });
    expect(bad.take()).toEqual([
      'ERROR {"code":"permission_denied","message":"publish secret.x: no"}',
    ]);
    expect(ok.take()).toEqual([]); // nothing was published
    rx(bad, "REG", { proc: "secret.proc" });
    expect(bad.take()).toEqual([
      'ERROR {"code":"permission_denied","message":"serve secret.proc: no","proc":"secret.proc"}',
    ]);
    rx(ok, "REG", { proc: "secret.proc" });
    rx(bad, "CALL", { id: 5, proc: "secret.proc", payload: b(""), timeout_ms: 100 });
    expect(bad.take()).toEqual([
      `FAIL {"id":5,"code":${RPC_ERROR_NUMBERS.permission_denied},"message":"call secret.proc: no"}`,
    ]);
    expect(ok.take()).toEqual([]); // the provider never saw the call
    expect(r.stats.denied).toBe(4);
    // Peer nodes are not asked: what they forward was checked where it entered the mesh.
    n1.take();
    rx(n1, "FWD", { topic: "secret.x", payload: b("p"), ttl: 5, ...to("local") });
    expect(ok.take()).toEqual(['MSG {"sid":1,"topic":"secret.x","payload":"p"}']);
    expect(asked.every((a) => !a.startsWith("n1"))).toBe(true);
  });

  test("a reply to a permitted call is always let through", () => {
    const { authorize } = rules();
    const { link, rx } = setup({ authorize });
    const caller = link("ok-caller", "client");
    const provider = link("p", "client"); // may not touch secret.*, but serves public.proc
    rx(provider, "REG", { proc: "public.proc" });
    rx(caller, "CALL", { id: 1, proc: "public.proc", payload: b("q"), timeout_ms: 100 });
    const call = provider.take()[0]!;
    const id = JSON.parse(call.slice(5)).id;
    rx(provider, "REPLY", { id, payload: b("secret answer") });
    expect(caller.take()).toEqual(['REPLY {"id":1,"payload":"secret answer"}']);
  });

  test("reauthorize withdraws what the rules no longer allow, and tells the clients", () => {
    let strict = false;
    const authorize = (_l: FakeLink, op: string, subject: string) =>
      strict && subject.startsWith("secret") ? `${op} ${subject}: withdrawn` : null;
    const { r, link, rx, advance } = setup({ authorize });
    const n1 = link("n1", "node");
    const c = link("c", "client");
    rx(c, "SUB", { sid: 1, pattern: "secret.>" });
    rx(c, "SUB", { sid: 2, pattern: "public.>" });
    rx(c, "REG", { proc: "secret.p" });
    advance(5);
    n1.take();
    strict = true;
    expect(r.reauthorize()).toBe(2);
    for (const a of r.drain()) a.to.send(a.name, a.fields);
    expect(c.take()).toEqual([
      'ERROR {"code":"permission_denied","message":"subscribe secret.>: withdrawn","sid":1}',
      'ERROR {"code":"permission_denied","message":"serve secret.p: withdrawn","proc":"secret.p"}',
    ]);
    // The peer nodes hear the interest and the procedure go.
    advance(5);
    expect(n1.take()).toEqual([
      'INTEREST {"origin":"local","version":2,"hops":0,"rtt_us":0,"subs":[{"pattern":"public.>"}],"procs":[],"key":"local","sig":"local"}',
    ]);
    rx(n1, "FWD", { topic: "secret.x", payload: b("p"), ttl: 5, ...to("local") });
    rx(n1, "FWD", { topic: "public.x", payload: b("p"), ttl: 5, ...to("local") });
    expect(c.take()).toEqual(['MSG {"sid":2,"topic":"public.x","payload":"p"}']);
  });
});

describe("router: limits per link", () => {
  test("subscriptions, procedures and pending calls per client are bounded, refused by name and counted", () => {
    const { r, link, rx } = setup({ maxSubscriptions: 2, maxProcedures: 1, maxPendingCalls: 1 });
    const p = link("p", "client");
    const c = link("c", "client");
    rx(c, "SUB", { sid: 1, pattern: "a" });
    rx(c, "SUB", { sid: 2, pattern: "b" });
    rx(c, "SUB", { sid: 3, pattern: "c" });
    expect(c.take()).toEqual([
      'ERROR {"code":"limit","message":"SUB c: this client holds 2 subscriptions, the node\'s limit (limits.max_subscriptions)","sid":3}',
    ]);
    rx(c, "UNSUB", { sid: 1 });
    rx(c, "SUB", { sid: 3, pattern: "c" }); // room again
    expect(c.take()).toEqual([]);
    rx(p, "REG", { proc: "x.one" });
    rx(p, "REG", { proc: "x.two" });
    expect(p.take()).toEqual([
      'ERROR {"code":"limit","message":"REG x.two: this client serves 1 procedures, the node\'s limit (limits.max_procedures)","proc":"x.two"}',
    ]);
    rx(c, "CALL", { id: 1, proc: "x.one", payload: b(""), timeout_ms: 100 });
    rx(c, "CALL", { id: 2, proc: "x.one", payload: b(""), timeout_ms: 100 });
    expect(c.take()).toEqual([
      `FAIL {"id":2,"code":${RPC_ERROR_NUMBERS.bad_request},"message":"CALL x.one: 1 calls of this session are in flight, the node's limit (limits.max_pending_calls)"}`,
    ]);
    expect(r.stats.limited).toBe(3);
  });

  test("a caller that does not read its replies gets no more calls served, by name, counted", () => {
    const { r, link, rx } = setup({ maxUnreadBytes: 1000 });
    const p = link("p", "client");
    const c = link("c", "client");
    rx(p, "REG", { proc: "x.big" });
    p.take();
    rx(c, "CALL", { id: 1, proc: "x.big", payload: b(""), timeout_ms: 100 });
    expect(p.take().length).toBe(1); // served
    c.queued = 1001; // its replies pile up unread
    rx(c, "CALL", { id: 2, proc: "x.big", payload: b(""), timeout_ms: 100 });
    expect(p.take()).toEqual([]); // the provider does no work nobody reads
    expect(c.take()).toEqual([
      `FAIL {"id":2,"code":${RPC_ERROR_NUMBERS.unavailable},"message":"CALL x.big: this session does not read its replies (over 1000 bytes queued to it, limits.max_unread_bytes)"}`,
    ]);
    expect(r.stats.limited).toBe(1);
    c.queued = 0; // it reads again
    rx(c, "CALL", { id: 3, proc: "x.big", payload: b(""), timeout_ms: 100 });
    expect(p.take().length).toBe(1);
  });

  test("a call's deadline is cut to maxCallTimeoutMs", () => {
    const { link, rx, advance } = setup({ maxCallTimeoutMs: 50 });
    const p = link("p", "client");
    const c = link("c", "client");
    rx(p, "REG", { proc: "slow" });
    rx(c, "CALL", { id: 1, proc: "slow", payload: b(""), timeout_ms: 86_400_000 });
    expect(p.take()[0]).toContain('"timeout_ms":50');
    advance(51);
    expect(c.take()[0]).toStartWith(`FAIL {"id":1,"code":${RPC_ERROR_NUMBERS.timeout}`);
  });
});

describe("router: backed-up providers", () => {
  test("a call goes to a provider whose link is not backed up; with none, unavailable", () => {
    const { r, link, rx } = setup();
    const busy = link("busy", "client");
    const free = link("free", "client");
    const c = link("c", "client");
    let jammed = true;
    (busy as FakeLink & { congested(): boolean }).congested = () => jammed;
    rx(busy, "REG", { proc: "p" });
    rx(free, "REG", { proc: "p" });
    for (let i = 1; i <= 4; i++) {
      rx(c, "CALL", { id: i, proc: "p", payload: b(""), timeout_ms: 100, strategy: "round-robin" });
    }
    expect(busy.take()).toEqual([]);
    expect(free.take().filter((f) => f.startsWith("CALL"))).toHaveLength(4);
    (free as FakeLink & { congested(): boolean }).congested = () => true;
    rx(c, "CALL", { id: 9, proc: "p", payload: b(""), timeout_ms: 100 });
    expect(c.take().at(-1)).toBe(
      `FAIL {"id":9,"code":${RPC_ERROR_NUMBERS.unavailable},"message":"every provider of p is backed up (its node's queue to it is full)"}`,
    );
    expect(r.stats.limited).toBe(1);
    jammed = false; // busy drained: it takes calls again
    rx(c, "CALL", { id: 10, proc: "p", payload: b(""), timeout_ms: 100 });
    expect(busy.take().filter((f) => f.startsWith("CALL"))).toHaveLength(1);
  });
});

describe("router: refusal and churn budgets", () => {
  test("a client refused past its budget is closed (ProtocolError); churn past its rate is refused", () => {
    const { r, link, rx } = setup();
    const c = link("c", "client");
    let thrown: unknown;
    for (let i = 0; i < 1100 && !thrown; i++) {
      try {
        rx(c, "PUB", { topic: "x", payload: new Uint8Array(101) }); // over maxPayload 100
      } catch (e) {
        thrown = e;
      }
    }
    expect(thrown).toBeInstanceOf(ProtocolError);
    expect((thrown as Error).message).toBe(
      "too many refused operations (more than 1000 at once or 100 a second)",
    );
    expect(c.take().filter((f) => f.includes("payload_too_large"))).toHaveLength(1000);
    // Churn: 10,000 changes at once, then 1,000 a second.
    const d = link("d", "client");
    for (let i = 1; i <= 10_000; i++) rx(d, i % 2 ? "SUB" : "UNSUB", { sid: i, pattern: "y" });
    expect(d.take()).toEqual([]);
    rx(d, "SUB", { sid: 99_999, pattern: "z" });
    expect(d.take()).toEqual([
      'ERROR {"code":"limit","message":"SUB z: too many subscription or registration changes (10000 at once, then 1000 a second)","sid":99999}',
    ]);
    expect(r.stats.limited).toBe(1);
  });

  test("a peer node past its INTEREST rate is closed (ProtocolError); each route has its own budget, refilled with time", () => {
    const { r, link, rx, advance, detach } = setup();
    const n1 = link("n1", "node");
    const n2 = link("n2", "node");
    const copy = record(A, { hops: 1, subs: [{ pattern: "t" }] });
    for (let i = 0; i < 20_000; i++) rx(n1, "INTEREST", copy); // the burst, at once
    expect(() => rx(n1, "INTEREST", copy)).toThrow(
      "INTEREST: more than 20000 at once or 2000 a second from one node",
    );
    expect(r.stats.protocolErrors).toBe(1);
    rx(n2, "INTEREST", copy); // another route: its own budget
    advance(1); // 2,000 a second: two more
    rx(n1, "INTEREST", copy);
    rx(n1, "INTEREST", copy);
    expect(() => rx(n1, "INTEREST", copy)).toThrow(ProtocolError);
    // A route that closes and comes up again starts with a full budget.
    detach(n1);
    const again = link("n1", "node");
    for (let i = 0; i < 20_000; i++) rx(again, "INTEREST", copy);
    expect(() => rx(again, "INTEREST", copy)).toThrow(ProtocolError);
    expect(r.stats.protocolErrors).toBe(3);
    expect(r.stats.interestIn).toBe(40_006);
  });
});

describe("router: trace context (docs/tracing.md)", () => {
  const TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  const TS = "congo=t61rcWkgMzE";
  /** The items a drained frame has on the wire (type included). */
  const wireItems = (name: string, fields: Record<string, unknown>) =>
    (new Decoder({ useRecords: false, mapsAsObjects: true }).decode(
      busCodec.encode(name, fields).subarray(4),
    ) as unknown[]).length;

  /** A router with a local subscriber, a far subscriber (node A behind n1) and a local provider. */
  function traced() {
    const s = setup();
    const n1 = s.link("n1", "node");
    const sub = s.link("sub", "client");
    const prov = s.link("prov", "client");
    const pub = s.link("pub", "client");
    s.rx(sub, "SUB", { sid: 1, pattern: "t.>" });
    s.rx(prov, "REG", { proc: "svc" });
    s.rx(n1, "INTEREST", record(A, { subs: [{ pattern: "t.>" }], procs: ["far"] }));
    n1.sent = [];
    return { ...s, n1, sub, prov, pub };
  }

  test("untraced: no trace field on the wire, in MSG, FWD, CALL or CANCEL", () => {
    const { rx, n1, sub, prov, pub, advance } = traced();
    rx(pub, "PUB", { topic: "t.x", payload: b("hi") });
    rx(n1, "FWD", { topic: "t.y", payload: b("on"), ttl: 9, ...to("local") });
    rx(pub, "CALL", { id: 1, proc: "svc", payload: b(""), timeout_ms: 10 });
    rx(pub, "CALL", { id: 2, proc: "far", payload: b(""), timeout_ms: 10 });
    advance(20);
    const frames = [...sub.sent, ...n1.sent, ...prov.sent].filter(([n]) => n !== "INTEREST");
    expect(frames.map(([name]) => name).sort()).toEqual(
      ["CALL", "CALL", "CANCEL", "CANCEL", "FWD", "MSG", "MSG"],
    );
    for (const [name, fields] of frames) {
      expect(fields.traceparent ?? null).toBeNull();
      expect(fields.tracestate ?? null).toBeNull();
      // What the codec writes: only the fields that were there before trace context existed.
      // (The CANCELs here are deadlines passing: they say so, `expired`.)
      const before: Record<string, number> = { MSG: 4, FWD: 6, CANCEL: 3 };
      const call = fields.to === undefined ? 6 : 8;
      expect(wireItems(name, fields)).toBe(name === "CALL" ? call : before[name]!);
    }
  });

  test("without a tracer, a traced message or call keeps its context on every frame", () => {
    const { r, rx, n1, sub, prov, pub } = traced();
    rx(pub, "PUB", { topic: "t.x", payload: b("hi"), traceparent: TP, tracestate: TS });
    expect(sub.sent.map(([, f]) => [f.traceparent, f.tracestate])).toEqual([[TP, TS]]);
    expect(n1.sent.map(([, f]) => [f.traceparent, f.tracestate])).toEqual([[TP, TS]]);
    rx(n1, "FWD", { topic: "t.y", payload: b("on"), ttl: 9, ...to("local"), traceparent: TP });
    expect(sub.sent[1]![1].traceparent).toBe(TP);
    rx(pub, "CALL", { id: 1, proc: "svc", payload: b(""), timeout_ms: 10, traceparent: TP });
    rx(pub, "CALL", { id: 2, proc: "far", payload: b(""), timeout_ms: 10, traceparent: TP });
    expect(prov.sent.find(([n]) => n === "CALL")![1].traceparent).toBe(TP);
    expect(n1.sent.find(([n]) => n === "CALL")![1].traceparent).toBe(TP);
    expect(r.stats.badTraceContext).toBe(0);
  });

  test("a trace context that is not W3C is dropped and counted; the message or call goes on", () => {
    const { r, rx, n1, sub, prov, pub } = traced();
    const bad = [
      "garbage",
      TP.toUpperCase(),
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01", // zero trace id
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", // zero parent id
      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // version ff
      `${TP}-extra`, // version 00 is exactly 55 characters
    ];
    for (const tp of bad) {
      rx(pub, "PUB", { topic: "t.x", payload: b("m"), traceparent: tp, tracestate: TS });
    }
    expect(r.stats.badTraceContext).toBe(bad.length);
    expect(sub.sent).toHaveLength(bad.length);
    expect(n1.sent).toHaveLength(bad.length);
    for (const [, f] of [...sub.sent, ...n1.sent]) {
      expect([f.traceparent, f.tracestate]).toEqual([undefined, undefined]);
    }
    // A later version's traceparent (longer, `-` after the flags) is valid and kept.
    const v1 = `01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-later`;
    rx(pub, "PUB", { topic: "t.x", payload: b("m"), traceparent: v1 });
    expect(sub.sent.at(-1)![1].traceparent).toBe(v1);
    // A bad tracestate goes alone (the traceparent stays); a tracestate alone means nothing.
    rx(pub, "PUB", { topic: "t.x", payload: b("m"), traceparent: TP, tracestate: "A=1" });
    expect([sub.sent.at(-1)![1].traceparent, sub.sent.at(-1)![1].tracestate]).toEqual([
      TP,
      undefined,
    ]);
    rx(pub, "PUB", { topic: "t.x", payload: b("m"), tracestate: TS });
    expect(sub.sent.at(-1)![1].tracestate).toBeUndefined();
    // From a peer node: dropped and counted too, never a protocol error.
    rx(n1, "FWD", { topic: "t.y", payload: b("on"), ttl: 9, ...to("local"), traceparent: "x" });
    rx(n1, "CALL", {
      id: 5,
      proc: "svc",
      payload: b(""),
      timeout_ms: 10,
      to: "local",
      ttl: 3,
      traceparent: "00-zz",
    });
    expect(sub.sent.at(-1)![1].payload).toEqual(b("on"));
    expect(prov.sent.filter(([n]) => n === "CALL")).toHaveLength(1);
    expect(r.stats.badTraceContext).toBe(bad.length + 4);
    expect(r.stats.protocolErrors).toBe(0);
  });

  test("with a tracer: a span per hop, parented on the context each frame came with", () => {
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({
      spanProcessors: [new SimpleSpanProcessor(exporter)],
    });
    const { r, rx, n1, sub, prov, pub, advance } = traced();
    r.tracer = provider.getTracer("test");
    const spans = () => exporter.getFinishedSpans();
    // Untraced traffic makes no span.
    rx(pub, "PUB", { topic: "t.x", payload: b("m") });
    expect(spans()).toHaveLength(0);
    // A message: one span; the context it came with goes on unchanged (the creation context).
    rx(pub, "PUB", { topic: "t.x", payload: b("m"), traceparent: TP, tracestate: TS });
    const [pubSpan] = spans();
    expect(pubSpan!.name).toBe("send t.x");
    expect(pubSpan!.kind).toBe(SpanKind.PRODUCER);
    expect(pubSpan!.spanContext().traceId).toBe(TP.slice(3, 35));
    expect(pubSpan!.parentSpanContext?.spanId).toBe(TP.slice(36, 52));
    expect(pubSpan!.attributes).toMatchObject({
      "messaging.system": "macula",
      "messaging.destination.name": "t.x",
      "messaging.operation.type": "send",
      "macula.node.id": "local",
      "macula.hop": 0,
      "macula.deliveries": 1,
      "macula.forwards": 1,
    });
    expect(sub.sent.at(-1)![1].traceparent).toBe(TP);
    expect(n1.sent.at(-1)![1].traceparent).toBe(TP);
    // A FWD from a peer: the hop it is at.
    rx(n1, "FWD", { topic: "t.y", payload: b("on"), ttl: 30, ...to("local"), traceparent: TP });
    expect(spans()[1]!.attributes["macula.hop"]).toBe(3);
    // A call: the hop's own span goes on as the CALL's parent, and ends when the call does.
    rx(pub, "CALL", { id: 1, proc: "svc", payload: b(""), timeout_ms: 50, traceparent: TP });
    const call = prov.sent.find(([n]) => n === "CALL")![1];
    expect(spans()).toHaveLength(2); // still open
    rx(prov, "REPLY", { id: call.id, payload: b("ok") });
    const callSpan = spans()[2]!;
    expect([callSpan.name, callSpan.kind]).toEqual(["send svc", SpanKind.CLIENT]);
    expect(callSpan.parentSpanContext?.spanId).toBe(TP.slice(36, 52));
    expect(call.traceparent).toBe(
      `00-${TP.slice(3, 35)}-${callSpan.spanContext().spanId}-01`,
    );
    expect(callSpan.status.code).toBe(SpanStatusCode.UNSET);
    // A call that times out: its span ends failed.
    rx(pub, "CALL", { id: 2, proc: "far", payload: b(""), timeout_ms: 50, traceparent: TP });
    advance(60);
    const failed = spans()[3]!;
    expect(failed.status.code).toBe(SpanStatusCode.ERROR);
    expect(failed.attributes["error.type"]).toBe("timeout");
    expect(n1.sent.filter(([n]) => n === "CANCEL").map(([, f]) => f.expired)).toEqual([true]);
  });
});

describe("router: observer (callSettled)", () => {
  const n = RPC_ERROR_NUMBERS;
  test("once per call of a client, at its node, with the outcome and the time it took", () => {
    const { r, link, rx, advance, detach } = setup();
    const got: [string, number][] = [];
    r.observer = { callSettled: (outcome, seconds) => got.push([outcome, seconds]) };
    const caller = link("c", "client");
    const prov = link("p", "client");
    const n1 = link("n1", "node");
    rx(prov, "REG", { proc: "svc" });
    const callTo = (id: number, proc = "svc", timeout_ms = 1000) =>
      rx(caller, "CALL", { id, proc, payload: b(""), timeout_ms });
    const lastCall = () => prov.sent.filter(([n]) => n === "CALL").at(-1)![1].id as number;
    // ok, after 25 ms.
    callTo(1);
    advance(25);
    rx(prov, "REPLY", { id: lastCall(), payload: b("") });
    // The provider's error.
    callTo(2);
    rx(prov, "FAIL", { id: lastCall(), code: n.handler_error, message: "boom" });
    // The node's deadline.
    callTo(3, "svc", 100);
    advance(100);
    // The caller cancels; the caller's deadline passed (CANCEL expired).
    callTo(4);
    rx(caller, "CANCEL", { id: 4 });
    callTo(5);
    advance(10);
    rx(caller, "CANCEL", { id: 5, expired: true });
    // Refused at once, and no provider at all.
    callTo(6, "BAD NAME");
    callTo(7, "nobody");
    // The provider goes away.
    callTo(8);
    detach(prov);
    expect(got).toEqual([
      ["ok", 0.025],
      ["handler_error", 0],
      ["timeout", 0.1],
      ["cancelled", 0],
      ["timeout", 0.01],
      ["bad_request", 0],
      ["no_provider", 0],
      ["unavailable", 0],
    ]);
    // The caller going away settles its calls as cancelled.
    const prov2 = link("p2", "client");
    rx(prov2, "REG", { proc: "svc" });
    callTo(9);
    detach(caller);
    expect(got.at(-1)).toEqual(["cancelled", 0]);
    // A call from a peer node is settled at the caller's node, not here.
    const before = got.length;
    rx(n1, "CALL", { id: 1, proc: "svc", payload: b(""), timeout_ms: 100, to: "local", ttl: 3 });
    rx(prov2, "REPLY", {
      id: prov2.sent.filter(([n]) => n === "CALL").at(-1)![1].id,
      payload: b(""),
    });
    rx(n1, "CALL", { id: 2, proc: "nope", payload: b(""), timeout_ms: 100, to: "local", ttl: 3 });
    expect(n1.sent.filter(([name]) => name === "REPLY" || name === "FAIL")).toHaveLength(2);
    expect(got.length).toBe(before);
  });
});

describe("router: draining", () => {
  test("drainEach hands on what drain would, in order; what is queued meanwhile waits for the next", () => {
    const r = new Router<FakeLink>({ random: () => 0.5, floodDelayMs: 0 });
    const n1 = new FakeLink("n1", "node");
    const n2 = new FakeLink("n2", "node");
    const c = new FakeLink("c", "client");
    for (const l of [n1, n2, c]) r.attach(l);
    r.receive(1000, n1, frame("INTEREST", record(A, { hops: 1, subs: [{ pattern: "t" }] })));
    r.receive(1000, c, frame("SUB", { sid: 1, pattern: "t" }));
    r.receive(1000, c, frame("PUB", { topic: "t", payload: b("x") }));
    const seen: string[] = [];
    let inner: string[] = [];
    r.drainEach((to, name) => {
      seen.push(`${to.id} ${name}`);
      if (seen.length === 1) {
        // Queued while draining (a client answering at once): not in this drain.
        r.receive(1000, c, frame("PUB", { topic: "t", payload: b("y") }));
        r.drainEach((to2, name2) => inner.push(`${to2.id} ${name2}`)); // a drain within a drain
      }
    });
    expect(seen).toEqual(["n1 INTEREST", "n2 INTEREST", "c MSG", "n1 FWD"]);
    expect(inner).toEqual(["c MSG", "n1 FWD"]);
    inner = [];
    r.receive(1000, c, frame("PUB", { topic: "t", payload: b("z") }));
    const text = (u: unknown) => new TextDecoder().decode(u as Uint8Array);
    expect(r.drain().map((s) => `${s.to.id} ${s.name} ${text(s.fields.payload)}`)).toEqual([
      "c MSG z",
      "n1 FWD z",
    ]);
    r.drainEach(() => inner.push("nothing left"));
    expect(inner).toEqual([]);
  });
});
