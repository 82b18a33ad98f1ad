/**
 * The DHT on a real node (docs/dht.md, "On real nodes"): lib/mesh's sans-IO Kademlia core, its
 * messages carried as `dht.msg` requests between nodes (a request's answer is the answer message,
 * on the same stream), its timers driven by lib/util's `Driver`.
 *
 * Trust: a message's `from` must be the id of the session's certificate, or it is refused. The
 * core learns a contact's address only from membership, where the node signed it itself: a
 * request's sender enters the table at its membership address, or (not a member with one) is
 * answered without entering it; a query goes to a contact only when it is an alive member whose
 * own record has that address, over membership's bounded session pool, and only the answer to
 * that query (its request id and kind, from that node) is taken. Records are signed with the node's key and checked
 * on every store and read (node:crypto, synchronous, as interest records are).
 */
import { Buffer } from "node:buffer";
import { nodeIdText } from "../identity/mod.ts";
import {
  decodeDht,
  Dht,
  type DhtEvent,
  type DhtMsg,
  type DhtSigner,
  type DhtVerifier,
  encodeDht,
  type LookupResult,
  type Output,
  type WireContact,
} from "../mesh/mod.ts";
import {
  ask,
  defineRequest,
  type PeerSession,
  RequestError,
  type RequestRegistry,
} from "../peer/mod.ts";
import { Driver, type Log, monoNow } from "../util/mod.ts";
import { RUNTIME } from "./defaults.ts";

/** A DHT message to a node; the answer (when the core has one) is the answer message. */
export const DHT_MSG = defineRequest<Uint8Array, Uint8Array>("dht.msg", "bytes", "bytes");

/** What the DHT glue needs from its node. */
export interface DhtGlueOptions {
  id: Uint8Array;
  /** This node's address (its URL, as its membership record has it). */
  addr: string;
  realm: string;
  /** Server (reachable directly) or client (relayed only: stays out of other tables). */
  mode: "server" | "client";
  signer: DhtSigner;
  verify: DhtVerifier;
  /** The address of member `id` as it signed it, while alive; null otherwise. */
  addressOf(id: Uint8Array): string | null;
  /** Alive members to bootstrap from (id and signed address), at most `n`. */
  members(n: number): WireContact[];
  /** A pooled session to the node at `addr` (membership's pool), or null. */
  session(addr: string): Promise<PeerSession | null>;
  readonly log: Log;
}

/** The glue's own counters (the core's are `Dht.stats`). */
export interface DhtGlueStats {
  /**
   * Messages whose `from` was not their session's certificate, stores of a record another node
   * published, answers that do not answer the query (another request id or kind): refused.
   */
  forged: number;
  /** Queries not sent: the contact is no alive member at that address, or no session to it. */
  unsent: number;
  /** Answers that did not decode (dropped; the core times the query out). */
  malformedAnswers: number;
  /** Failures of a handler or a send, caught (the loop goes on). */
  handlerFailures: number;
  bootstraps: number;
}

/** The answer each query wants. */
const ANSWER_TO: Record<string, string> = {
  ping: "pong",
  find_node: "nodes",
  find_value: "value",
  store: "stored",
};
const ANSWERS = new Set(Object.values(ANSWER_TO));

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class DhtGlue {
  readonly core: Dht;
  readonly stats: DhtGlueStats = {
    forged: 0,
    unsent: 0,
    malformedAnswers: 0,
    handlerFailures: 0,
    bootstraps: 0,
  };
  readonly #driver: Driver<Output<DhtMsg, DhtEvent>>;
  readonly #waiting = new Map<
    number,
    { resolve: (r: LookupResult) => void; reject: (e: Error) => void }
  >();
  #lastBootstrap = -Infinity;
  /** The bootstrap under way, which lookups wait for. */
  #booting: Promise<void> | null = null;
  #stopped = false;
  /**
   * What the last reachability check found (docs/dht.md, "Client mode"): `unknown` until one
   * has answered, or when the mode is set by configuration (`fixed`).
   */
  reachability: "unknown" | "reachable" | "unreachable" | "fixed" = "unknown";
  /** Reachability checks this node made (each asks up to 3 neighbours). */
  reachChecks = 0;

  constructor(private readonly o: DhtGlueOptions) {
    this.core = new Dht({
      id: o.id,
      addr: o.addr,
      realm: o.realm,
      rng: Math.random,
      now: monoNow(),
      mode: o.mode,
      signer: o.signer,
      verify: o.verify,
    });
    this.#driver = new Driver(this.core, {
      act: (out) => this.#act(out),
      onError: (e) => this.#failed("timer", e),
    });
    this.#driver.poke();
  }

  /** Serves `dht.msg` (peer nodes only). */
  register(r: RequestRegistry): void {
    r.on(DHT_MSG, (payload, s) => this.#onRequest(payload, s));
  }

  /** A member is gone for good: out of the table. */
  memberGone(id: Uint8Array): void {
    this.core.forget(id);
  }

  /** The `k` nodes closest to `target` that answered. */
  async findNode(target: Uint8Array): Promise<LookupResult> {
    await this.#ready();
    return await this.#run(() => this.core.findNode(target, monoNow()));
  }

  /** The records under `key` (each checked), from the nodes closest to it. */
  async get(key: Uint8Array): Promise<LookupResult> {
    await this.#ready();
    return await this.#run(() => this.core.findValue(key, monoNow()));
  }

  /** Publishes `value` under `key`, signed by this node, at the `k` nodes closest to `key`. */
  async put(key: Uint8Array, value: Uint8Array): Promise<LookupResult> {
    await this.#ready();
    return await this.#run(() => this.core.put(key, value, monoNow()));
  }

  /**
   * A reachability check's finding: unreachable makes this node a client (it leaves every table
   * as it next speaks to each peer), reachable a server; unknown changes nothing.
   */
  reached(r: "reachable" | "unreachable" | "unknown"): void {
    this.reachChecks++;
    if (r === "unknown") return;
    const mode = r === "reachable" ? "server" : "client";
    if (mode !== this.core.mode) {
      this.o.log.info("dht.mode", `DHT mode ${mode}: ${r} at ${this.o.addr}`, { mode });
    }
    this.reachability = r;
    this.core.setMode(mode);
  }

  stop(): void {
    this.#stopped = true;
    this.#driver.stop();
    for (const w of this.#waiting.values()) w.reject(new Error("dht: the node is stopping"));
    this.#waiting.clear();
  }

  /** `macula inspect dht`: the table by bucket, records held and published, counters. */
  snapshot(): unknown {
    const now = monoNow();
    return {
      nodeId: nodeIdText(this.core.id),
      mode: this.core.mode,
      reachability: this.reachability,
      contacts: this.core.table.size,
      buckets: this.core.table.buckets().map((b) => ({
        index: b.index,
        contacts: b.contacts.map((c) => ({
          id: nodeIdText(c.id),
          addr: c.addr,
          lastSeenMs: Math.max(0, Math.round(now - c.lastSeen)),
        })),
      })),
      // Bounded, as any answer: the first 1,000 (the count says how many in all).
      held: this.core.store.list().slice(0, 1000).map((r) => ({
        key: r.key,
        publisher: nodeIdText(Buffer.from(r.publisher, "hex")),
        seq: r.seq,
        bytes: r.bytes,
        expiresInMs: Math.max(0, Math.round(r.expiresAt - now)),
      })),
      heldCount: this.core.store.size,
      published: this.core.published().map((r) => ({
        key: Buffer.from(r.key).toString("hex"),
        seq: r.seq,
        bytes: r.value.length,
      })),
      lookupsRunning: this.core.running,
      counters: { ...this.core.stats, ...this.stats },
    };
  }

  #run(start: () => number): Promise<LookupResult> {
    if (this.#stopped) return Promise.reject(new Error("dht: the node is stopping"));
    return new Promise((resolve, reject) => {
      const id = start();
      this.#waiting.set(id, { resolve, reject });
      this.#driver.poke();
    });
  }

  /**
   * Before a lookup of this node's own: while the table is small, bootstrap from up to `k` alive
   * members (the own-id lookup; the core then refreshes the farther buckets), at most once per
   * `dhtBootstrapEveryMs`; lookups meanwhile wait for the one under way. A node whose DHT is
   * never used sends nothing (it still answers others, and learns them as they ask).
   */
  #ready(): Promise<void> {
    if (this.#booting) return this.#booting;
    if (this.#stopped || this.core.table.size >= RUNTIME.dhtWantContacts) return Promise.resolve();
    if (monoNow() - this.#lastBootstrap < RUNTIME.dhtBootstrapEveryMs) return Promise.resolve();
    const contacts = this.o.members(this.core.cfg.k);
    if (contacts.length === 0) return Promise.resolve();
    this.#lastBootstrap = monoNow();
    this.stats.bootstraps++;
    this.#booting = this.#run(() => this.core.bootstrap(contacts, monoNow())).then(
      () => {},
      () => {}, // a failed bootstrap leaves the lookup to what the table has
    ).finally(() => (this.#booting = null));
    return this.#booting;
  }

  /** A request from a peer node: into the core; its answer, if any, is the request's answer. */
  #onRequest(payload: Uint8Array, s: PeerSession): Uint8Array {
    if (this.#stopped) throw new RequestError("dht.msg: the node is stopping");
    // Every refusal below is thrown: the registry counts it against the session's budget of
    // refused requests, and closes a session that keeps sending what is refused.
    const m = decodeDht(payload);
    if (!sameBytes(m.from, s.peer.nodeIdBytes)) {
      this.stats.forged++;
      throw new RequestError("dht.msg: from is not the id of this session's certificate");
    }
    if (!ANSWER_TO[m.t]) throw new RequestError(`dht.msg: ${m.t} is an answer, not a request`);
    // A record is stored only when its publisher sends it (the core republishes its own alone):
    // so one node cannot fill others' stores with records signed by keys it made up.
    if (m.t === "store" && !sameBytes(m.record.publisher, m.from)) {
      this.stats.forged++;
      throw new RequestError("dht.msg: store of a record this node did not publish");
    }
    const limited = this.core.stats.limited;
    // Its address only as it signed it: a sender that is no member with one is answered, not
    // entered into the table.
    const addr = this.o.addressOf(m.from);
    const from = addr ?? `peer:${s.peer.nodeId}`;
    this.core.receive(monoNow(), from, m, addr !== null);
    const out = this.core.drain();
    const i = out.send.findIndex((x) =>
      x.to === from && x.msg.rid === m.rid && ANSWERS.has(x.msg.t)
    );
    const answer = i < 0 ? null : out.send.splice(i, 1)[0]!.msg;
    this.#act(out);
    this.#driver.poke();
    if (this.core.stats.limited > limited) {
      throw new RequestError("dht.msg: over this sender's rate of DHT requests");
    }
    return answer ? encodeDht(answer) : new Uint8Array(0);
  }

  #act(out: Output<DhtMsg, DhtEvent>): void {
    if (this.#stopped) return;
    for (const o of out.send) {
      if (ANSWERS.has(o.msg.t)) continue; // answers go back on their request (above)
      void this.#query(o.to, o.msg).catch((e) => this.#failed("send", e));
    }
    for (const e of out.events) {
      const id = e.kind === "lookup" ? e.result.id : e.id;
      const w = this.#waiting.get(id);
      if (!w) continue;
      this.#waiting.delete(id);
      if (e.kind === "lookup") w.resolve(e.result);
      else w.reject(new Error(`dht: ${e.message}`));
    }
  }

  /**
   * Sends a query to the contact the core addressed it to, only when that contact is an alive
   * member whose own record has the address `to`; its answer goes into the core.
   */
  async #query(to: string, msg: DhtMsg): Promise<void> {
    if (this.#stopped) return;
    const id = this.core.queriedId(msg.rid);
    const s = id && this.o.addressOf(id) === to ? await this.o.session(to) : null;
    if (!id || !s || !sameBytes(s.peer.nodeIdBytes, id) || s.conn.closeInfo || !s.conn.isOpen) {
      this.stats.unsent++; // the core times the query out (slow after `slowMs`)
      return;
    }
    let bytes: Uint8Array;
    try {
      bytes = await ask(s, DHT_MSG, encodeDht(msg), { timeoutMs: this.core.cfg.rpcTimeoutMs });
    } catch {
      return; // no answer: the core's timeout says so
    }
    if (bytes.length === 0 || this.#stopped) return;
    let answer: DhtMsg;
    try {
      answer = decodeDht(bytes);
    } catch {
      this.stats.malformedAnswers++;
      return;
    }
    if (!sameBytes(answer.from, id) || answer.rid !== msg.rid || answer.t !== ANSWER_TO[msg.t]) {
      this.stats.forged++;
      return;
    }
    this.core.receive(monoNow(), to, answer);
    this.#driver.poke();
  }

  #failed(what: string, e: unknown): void {
    this.stats.handlerFailures++;
    this.o.log.warn("dht.failed", `dht: ${what} failed: ${(e as Error)?.message ?? e}`, {
      cause: what,
    });
  }
}
