/**
 * netcheck: what sort of NAT is this socket behind? RFC 5780 behaviour discovery as a client,
 * run over the socket whose mapping matters (a node's QUIC endpoint: `setNonQuicHandler` +
 * `sendRaw`), plus hairpinning and the round trip to every configured STUN server.
 *
 * Two halves: `runNetcheck` sends the probes and collects raw results (`BehaviourTests`);
 * `classify` is a pure function of those results, so every NAT kind can be unit-tested with
 * synthetic results. A test the server cannot support (one IP, one port) is `not-tested` and
 * the verdict says which behaviours remain possible instead of guessing.
 */
import { networkInterfaces } from "node:os";
import type { PacketHandler } from "../quic/mod.ts";
import { monoNow } from "../util/mod.ts";
import type { Address, RawSocket } from "./stun-server.ts";
import {
  BINDING,
  decodeStun,
  encodeStun,
  isStun,
  newTransactionId,
  parseIp,
  StunError,
  type StunMessage,
} from "./stun.ts";

/** RFC 4787 / RFC 5780 mapping and filtering behaviours. */
export type Behaviour = "endpoint-independent" | "address-dependent" | "address-and-port-dependent";
export const BEHAVIOURS: readonly Behaviour[] = [
  "endpoint-independent",
  "address-dependent",
  "address-and-port-dependent",
];

/** The outcome of one probe. */
export type Probe<T> =
  | { status: "answered"; value: T }
  | { status: "timeout" }
  | { status: "not-tested"; why: string };

/** Everything the behaviour discovery observed; the input of `classify`. */
export interface BehaviourTests {
  /** The probing socket's own address. */
  local: Address;
  /** The machine's own IP addresses (to tell "no NAT" when `local` is a wildcard). */
  localIps: string[];
  /** Test I: mapped address seen by the primary server address A1:P1. */
  primary: Probe<Address>;
  /** Mapping test II: mapped address seen by A2:P1 (other IP). */
  mapAltIp: Probe<Address>;
  /** Mapping test III: mapped address seen by A2:P2 (other IP and port). */
  mapAltIpPort: Probe<Address>;
  /** Extra mapping test: mapped address seen by A1:P2 (other port, same IP). */
  mapAltPort: Probe<Address>;
  /** Filtering test II: an answer arrived from A2:P2 (CHANGE-REQUEST IP and port). */
  filterChangeIpPort: Probe<true>;
  /** Filtering test III: an answer arrived from A1:P2 (CHANGE-REQUEST port). */
  filterChangePort: Probe<true>;
  /** A request sent to our own mapped address came back to us. */
  hairpin: Probe<true>;
}

/** A verdict: one behaviour when the tests pin it down, else `unknown` and what remains. */
export interface Verdict {
  behaviour: Behaviour | "unknown";
  /** Behaviours consistent with the tests, in RFC order. */
  possible: Behaviour[];
  /** Why, in words. */
  note: string;
}

/** `classify`'s answer. */
export interface Classification {
  /** true: the mapped address is not ours; false: no NAT; null: no answer to tell. */
  nat: boolean | null;
  mapping: Verdict;
  filtering: Verdict;
  /** Hairpinning works (null when not tested or no answer to build on). */
  hairpinning: boolean | null;
}

const same = (a: Address, b: Address) => a.host === b.host && a.port === b.port;
const WILDCARD = new Set(["0.0.0.0", "::", "[::]"]);

function verdict(possible: Behaviour[], note: string): Verdict {
  const p = BEHAVIOURS.filter((b) => possible.includes(b));
  return { behaviour: p.length === 1 ? p[0]! : "unknown", possible: p, note };
}

/** Classifies mapping, filtering and hairpinning from probe results (RFC 5780 §4.3–4.5). */
export function classify(t: BehaviourTests): Classification {
  if (t.primary.status !== "answered") {
    const why = t.primary.status === "timeout"
      ? "no STUN server answered"
      : `not tested: ${t.primary.why}`;
    return {
      nat: null,
      mapping: verdict([...BEHAVIOURS], why),
      filtering: verdict([...BEHAVIOURS], why),
      hairpinning: null,
    };
  }
  const x1 = t.primary.value;
  const own = WILDCARD.has(t.local.host)
    ? x1.port === t.local.port && t.localIps.includes(x1.host)
    : same(x1, t.local);
  const nat = !own;

  // Mapping.
  let mapping: Verdict;
  if (!nat) {
    mapping = verdict(
      ["endpoint-independent"],
      "no NAT: the server saw the socket's own address",
    );
  } else {
    let possible = [...BEHAVIOURS];
    const notes: string[] = [];
    const keep = (bs: Behaviour[]) => (possible = possible.filter((b) => bs.includes(b)));
    const m2 = t.mapAltIp;
    if (m2.status === "answered") {
      if (same(m2.value, x1)) {
        keep(["endpoint-independent"]);
        notes.push("the other server IP saw the same mapping");
      } else {
        keep(["address-dependent", "address-and-port-dependent"]);
        notes.push("the other server IP saw a different mapping");
        const m3 = t.mapAltIpPort;
        if (m3.status === "answered") {
          if (same(m3.value, m2.value)) {
            keep(["address-dependent"]);
            notes.push("its other port saw the same one as its first");
          } else {
            keep(["address-and-port-dependent"]);
            notes.push("its other port saw another one");
          }
        } else notes.push(probeNote("the other IP and port", m3));
      }
    } else notes.push(probeNote("the other server IP", m2));
    const mp = t.mapAltPort;
    if (mp.status === "answered") {
      if (same(mp.value, x1)) {
        keep(["endpoint-independent", "address-dependent"]);
        notes.push("the other server port saw the same mapping");
      } else {
        keep(["address-and-port-dependent"]);
        notes.push("the other server port saw a different mapping");
      }
    } else if (m2.status !== "answered") notes.push(probeNote("the other server port", mp));
    mapping = possible.length === 0
      ? { behaviour: "unknown", possible: [], note: `inconsistent results: ${notes.join("; ")}` }
      : verdict(possible, notes.join("; "));
  }

  // Filtering: RFC 5780 §4.4. An answer from an address we never sent to passed the filter.
  let possible = [...BEHAVIOURS];
  const notes: string[] = [];
  const keep = (bs: Behaviour[]) => (possible = possible.filter((b) => bs.includes(b)));
  const f2 = t.filterChangeIpPort;
  if (f2.status === "answered") {
    keep(["endpoint-independent"]);
    notes.push("an answer from the other IP and port came in");
  } else if (f2.status === "timeout") {
    keep(["address-dependent", "address-and-port-dependent"]);
    notes.push("no answer from the other IP and port came in");
  } else notes.push(`other IP and port not tested: ${f2.why}`);
  const f3 = t.filterChangePort;
  if (f3.status === "answered") {
    keep(["endpoint-independent", "address-dependent"]);
    notes.push("an answer from the other port came in");
  } else if (f3.status === "timeout") {
    keep(["address-and-port-dependent"]);
    notes.push("no answer from the other port came in");
  } else notes.push(`other port not tested: ${f3.why}`);
  const filtering = possible.length === 0
    ? { behaviour: "unknown" as const, possible: [], note: `inconsistent: ${notes.join("; ")}` }
    : verdict(possible, notes.join("; "));

  const h = t.hairpin;
  const hairpinning = h.status === "answered" ? true : h.status === "timeout" ? false : null;
  return { nat, mapping, filtering, hairpinning };
}

function probeNote(what: string, p: Probe<unknown>): string {
  return p.status === "timeout"
    ? `no answer from ${what}`
    : p.status === "not-tested"
    ? `${what} not tested: ${p.why}`
    : "";
}

// ------------------------------------------------------------------ the client

/** Retransmission (RFC 8489 §6.2.1): send, wait RTO, send again with RTO doubled, … */
export interface Retransmit {
  /** First retransmission timeout. Default 500 ms (RFC 8489's recommendation). */
  rtoMs?: number;
  /** Requests sent at most. Default 3 (RFC 8489: 7; netcheck trades certainty for speed). */
  transmissions?: number;
  /** After the last request, wait this many RTOs. Default 4 (RFC 8489: 16). */
  lastWaitRtos?: number;
}

/**
 * One STUN transaction's sending: `bytes` to `to` on `rt`'s schedule (send, wait RTO, send again
 * with the RTO doubled, …, then `lastWaitRtos` RTOs after the last). `listen` is handed the
 * function that ends it with an answer; it resolves with that answer, or with `none` once the
 * last wait ran out.
 */
async function transact<T>(
  socket: RawSocket,
  bytes: Uint8Array,
  to: Address,
  rt: Retransmit,
  listen: (answer: (v: T) => void) => void,
  none: T,
): Promise<T> {
  const rto = rt.rtoMs ?? 500;
  const n = rt.transmissions ?? 3;
  const last = rt.lastWaitRtos ?? 4;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const answer = await new Promise<T>((resolve) => {
    listen(resolve);
    let sent = 0;
    let wait = rto;
    const send = () => {
      if (sent === n) return resolve(none);
      sent++;
      try {
        socket.sendRaw(bytes, to.host, to.port);
      } catch {
        // unreachable right now: the retransmission may get through
      }
      timer = setTimeout(send, sent === n ? rto * last : wait);
      wait *= 2;
    };
    send();
  });
  clearTimeout(timer);
  return answer;
}

/** A Binding response with where it came from and the round trip. */
export interface BindingResult {
  msg: StunMessage;
  from: Address;
  rttMs: number;
}

/**
 * Sends STUN Binding requests from a socket and matches the answers by transaction id.
 * Takes over the socket's non-QUIC handler; what it does not recognise goes to `onOther`.
 */
export class StunClient {
  readonly #socket: RawSocket;
  readonly #pending = new Map<string, (r: BindingResult | null) => void>();
  readonly #hairpins = new Map<string, () => void>();
  readonly #onOther: PacketHandler | undefined;
  /** Packets the client could not use (malformed, unmatched). */
  ignored = 0;

  constructor(socket: RawSocket, opts: { onOther?: PacketHandler } = {}) {
    this.#socket = socket;
    this.#onOther = opts.onOther;
    socket.setNonQuicHandler((d, h, p) => this.#onPacket(d, h, p));
  }

  /** The socket's address. */
  get local(): Address {
    return this.#socket.address;
  }

  /** Detaches from the socket, handing it back to `onOther` (or to nobody). */
  close(): void {
    this.#socket.setNonQuicHandler(this.#onOther ?? null);
    for (const r of this.#pending.values()) r(null);
    this.#pending.clear();
  }

  /**
   * One Binding transaction to `to`, retransmitted per `rt`. Resolves with the success or error
   * response, or null when nothing answered in time.
   */
  async binding(
    to: Address,
    opts: { changeIp?: boolean; changePort?: boolean; rt?: Retransmit } = {},
  ): Promise<BindingResult | null> {
    const tid = newTransactionId();
    const key = hexKey(tid);
    const msg: StunMessage = { cls: "request", method: BINDING, transactionId: tid };
    if (opts.changeIp || opts.changePort) {
      msg.changeRequest = { changeIp: !!opts.changeIp, changePort: !!opts.changePort };
    }
    const bytes = encodeStun(msg, { fingerprint: true });
    const started = monoNow();
    const r = await transact<BindingResult | null>(
      this.#socket,
      bytes,
      to,
      opts.rt ?? {},
      (answer) => this.#pending.set(key, answer),
      null,
    );
    this.#pending.delete(key);
    if (r) r.rttMs = Math.round((monoNow() - started) * 100) / 100;
    return r;
  }

  /**
   * Sends a Binding request to our own mapped address and reports whether it came back to this
   * socket (the NAT hairpins). True when it arrived within the retransmission schedule.
   */
  async hairpin(mapped: Address, rt: Retransmit = {}): Promise<boolean> {
    const tid = newTransactionId();
    const key = hexKey(tid);
    const bytes = encodeStun({ cls: "request", method: BINDING, transactionId: tid }, {
      fingerprint: true,
    });
    const ok = await transact(
      this.#socket,
      bytes,
      mapped,
      rt,
      (answer) => this.#hairpins.set(key, () => answer(true)),
      false,
    );
    this.#hairpins.delete(key);
    return ok;
  }

  #onPacket(data: Uint8Array, host: string, port: number): void {
    if (!isStun(data)) return this.#other(data, host, port);
    let msg: StunMessage;
    try {
      msg = decodeStun(data);
    } catch (e) {
      if (!(e instanceof StunError)) throw e;
      this.ignored++;
      return;
    }
    const key = hexKey(msg.transactionId);
    if (msg.cls === "request") {
      const h = this.#hairpins.get(key);
      if (h) return h();
      return this.#other(data, host, port);
    }
    const r = this.#pending.get(key);
    if (!r || (msg.cls !== "success" && msg.cls !== "error")) return this.#other(data, host, port);
    this.#pending.delete(key);
    r({ msg, from: { host: plainHost(host), port }, rttMs: 0 });
  }

  #other(data: Uint8Array, host: string, port: number): void {
    if (this.#onOther) this.#onOther(data, host, port);
    else this.ignored++;
  }
}

// ------------------------------------------------------------------ the run

/** Options of `runNetcheck`. */
export interface NetcheckOptions {
  /** STUN servers to ask; the first one that answers with an OTHER-ADDRESS runs the RFC 5780 tests. */
  servers: Address[];
  /** Retransmission schedule for every probe. */
  rt?: Retransmit;
  /** Skip the hairpinning test. */
  noHairpin?: boolean;
  /**
   * Packets that are not netcheck's own while it runs, and every non-QUIC packet after it (the
   * socket's handler is set to this at the end): e.g. `stunServer.handler()` to keep a STUN
   * server on the same socket answering.
   */
  onOther?: PacketHandler;
}

/** What one STUN server said. */
export interface ServerResult {
  /** `host:port` as configured. */
  server: string;
  /** Round trip of the first answered Binding request (including retransmission waits). */
  rttMs: number | null;
  mapped: Address | null;
  /** RFC 5780 OTHER-ADDRESS when it advertised one. */
  otherAddress: Address | null;
  software: string | null;
  /** Why there is no mapping: no answer, or the error response. */
  error: string | null;
}

/** The netcheck report. */
export interface NetcheckReport {
  /** The probing socket. */
  local: Address;
  /** The public address (from the first server that answered). */
  mapped: Address | null;
  nat: boolean | null;
  mapping: Verdict;
  filtering: Verdict;
  hairpinning: boolean | null;
  /**
   * Different servers (at different IPs) saw different mappings: the mapping depends on the
   * destination, whatever RFC 5780 says. Null with fewer than two answers from distinct IPs.
   */
  mappingVariesByServer: boolean | null;
  /** The server the RFC 5780 tests ran against (null: none answered). */
  behaviourServer: string | null;
  servers: ServerResult[];
  /** The raw probe results `classify` worked from. */
  tests: BehaviourTests;
  durationMs: number;
}

const fmt = (
  a: Address,
) => (a.host.includes(":") ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`);
const notTested = (why: string): Probe<never> => ({ status: "not-tested", why });

/** Runs the whole netcheck from `socket` (which must not be used for STUN meanwhile). */
export async function runNetcheck(
  socket: RawSocket,
  opts: NetcheckOptions,
): Promise<NetcheckReport> {
  const started = monoNow();
  const client = new StunClient(socket, opts.onOther ? { onOther: opts.onOther } : {});
  const rt = opts.rt ?? {};
  try {
    // Test I against every server at once: latency, mapping, OTHER-ADDRESS.
    const first = await Promise.all(opts.servers.map((s) => client.binding(s, { rt })));
    const servers: ServerResult[] = first.map((r, i) => {
      const s = opts.servers[i]!;
      const base = { server: fmt(s), rttMs: r?.rttMs ?? null, software: r?.msg.software ?? null };
      if (!r) return { ...base, mapped: null, otherAddress: null, error: "no answer" };
      if (r.msg.cls === "error") {
        const e = r.msg.errorCode;
        return {
          ...base,
          mapped: null,
          otherAddress: null,
          error: e ? `error ${e.code} ${e.reason}` : "error response",
        };
      }
      const m = r.msg.xorMappedAddress ?? r.msg.mappedAddress;
      const other = r.msg.otherAddress;
      return {
        ...base,
        mapped: m ? { host: m.host, port: m.port } : null,
        otherAddress: other ? { host: unwild(other.host, s.host), port: other.port } : null,
        error: m ? null : "the answer had no mapped address",
      };
    });
    const answered = servers.map((r, i) => ({ r, s: opts.servers[i]! })).filter((x) => x.r.mapped);
    const chosen = answered.find((x) => x.r.otherAddress) ?? answered[0];

    const local = socket.address;
    const tests: BehaviourTests = {
      local: { host: local.host, port: local.port },
      localIps: localIps(),
      primary: chosen ? { status: "answered", value: chosen.r.mapped! } : { status: "timeout" },
      mapAltIp: notTested("no answer from a STUN server"),
      mapAltIpPort: notTested("no answer from a STUN server"),
      mapAltPort: notTested("no answer from a STUN server"),
      filterChangeIpPort: notTested("no answer from a STUN server"),
      filterChangePort: notTested("no answer from a STUN server"),
      hairpin: notTested("no answer from a STUN server"),
    };
    if (opts.servers.length === 0) tests.primary = notTested("no STUN server configured");

    if (chosen) {
      const a1 = chosen.s;
      const other = chosen.r.otherAddress;
      const altIp = other !== null && other.host !== a1.host;
      const altPort = other !== null && other.port !== a1.port;
      const noOther = "the server sent no OTHER-ADDRESS, so it is not an RFC 5780 server";
      const oneIp = "the server has one IP";
      const onePort = "the server has one port";
      const why = (needIp: boolean, needPort: boolean) =>
        other === null ? noOther : needIp && !altIp ? oneIp : needPort && !altPort ? onePort : "";

      // Filtering first: a mapping test sends to the other addresses, which opens the filter
      // for them and would make the filtering tests pass regardless.
      const expectFrom = (changeIp: boolean, changePort: boolean): Address => ({
        host: changeIp ? other!.host : a1.host,
        port: changePort ? other!.port : a1.port,
      });
      const filterProbe = async (changeIp: boolean, changePort: boolean): Promise<Probe<true>> => {
        const w = why(changeIp, changePort);
        if (w) return notTested(w);
        const r = await client.binding(a1, { changeIp, changePort, rt });
        if (!r) return { status: "timeout" };
        if (r.msg.cls === "error") {
          return notTested(`the server refused: ${r.msg.errorCode?.reason ?? "error response"}`);
        }
        const exp = expectFrom(changeIp, changePort);
        if (!sameHostPort(r.from, exp)) {
          return notTested(
            `the server answered from ${fmt(r.from)}, not ${fmt(exp)} (CHANGE-REQUEST ignored)`,
          );
        }
        return { status: "answered", value: true };
      };
      const [fIpPort, fPort] = await Promise.all([
        filterProbe(true, true),
        filterProbe(false, true),
      ]);
      tests.filterChangeIpPort = fIpPort;
      tests.filterChangePort = fPort;

      const mapProbe = async (to: Address, w: string): Promise<Probe<Address>> => {
        if (w) return notTested(w);
        const r = await client.binding(to, { rt });
        if (!r) return { status: "timeout" };
        const m = r.msg.xorMappedAddress ?? r.msg.mappedAddress;
        if (r.msg.cls === "error" || !m) {
          return notTested(`the server refused: ${r.msg.errorCode?.reason ?? "no mapped address"}`);
        }
        return { status: "answered", value: { host: m.host, port: m.port } };
      };
      const [mIp, mIpPort, mPort] = await Promise.all([
        mapProbe({ host: other?.host ?? "", port: a1.port }, why(true, false)),
        mapProbe({ host: other?.host ?? "", port: other?.port ?? 0 }, why(true, true)),
        mapProbe({ host: a1.host, port: other?.port ?? 0 }, why(false, true)),
      ]);
      tests.mapAltIp = mIp;
      tests.mapAltIpPort = mIpPort;
      tests.mapAltPort = mPort;

      if (opts.noHairpin) tests.hairpin = notTested("skipped");
      else {
        const m = chosen.r.mapped!;
        tests.hairpin = (await client.hairpin(m, rt))
          ? { status: "answered", value: true }
          : { status: "timeout" };
      }
    }

    const c = classify(tests);
    const distinct = new Map<string, string>();
    for (const x of answered) {
      const ip = x.s.host;
      if (!distinct.has(ip)) distinct.set(ip, fmt(x.r.mapped!));
    }
    const maps = [...distinct.values()];
    return {
      local: tests.local,
      mapped: chosen?.r.mapped ?? null,
      nat: c.nat,
      mapping: c.mapping,
      filtering: c.filtering,
      hairpinning: c.hairpinning,
      mappingVariesByServer: maps.length < 2 ? null : maps.some((m) => m !== maps[0]),
      behaviourServer: chosen ? fmt(chosen.s) : null,
      servers,
      tests,
      durationMs: Math.round(monoNow() - started),
    };
  } finally {
    client.close();
  }
}

/** The machine's own IP addresses. */
function localIps(): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const i of list ?? []) out.push(i.address);
  }
  return out;
}

/** A wildcard host in an advertised address means "the host I asked". */
function unwild(host: string, asked: string): string {
  return WILDCARD.has(host) ? asked : host;
}

const plainHost = (h: string) => (/^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(h) ? h.slice(7) : h);

function sameHostPort(a: Address, b: Address): boolean {
  if (a.port !== b.port) return false;
  const x = parseIp(a.host);
  const y = parseIp(b.host);
  return x && y ? x.join(".") === y.join(".") : a.host === b.host;
}

const hexKey = (tid: Uint8Array) =>
  Array.from(tid, (b) => b.toString(16).padStart(2, "0")).join("");
