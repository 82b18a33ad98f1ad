/**
 * Membership on real nodes: the sans-IO `Membership` core driven by a timer and QUIC, and the
 * edge where what members say is checked (docs/membership.md, "On real nodes" and "What a member
 * can and cannot make others believe").
 *
 * - Small messages (ping, ack, nack, ping-req, gossip) travel as QUIC DATAGRAMs: unreliable like
 *   the UDP memberlist uses, and inside mutual TLS. Full-state syncs (and anything larger than a
 *   datagram) travel as a one-way request on a stream of the same session.
 * - A message names its sender's node id, which must be the id the session's certificate proved
 *   (else it is dropped and counted as forged). Answers go back on the session the message came
 *   on: the core is handed a reply address bound to that session (`peer:<id>`), never the address
 *   a message names; a session is pooled under an address only when the sender's own signed
 *   record says it answers there.
 * - Records: every member's own state (alive, address, metadata, left, incarnation) travels
 *   signed by its node key. A message is screened by the core (`Membership.screen`: what would
 *   change the view, what a bound refuses); only the records that would change it are checked,
 *   once each (SHA-256 of the key is the member's id, then the signature, WebCrypto), and the
 *   message is received once they are. One bad record drops its message (an honest node never
 *   passes on one it did not check): counted as forged, and a session that sends
 *   `FORGED_LIMIT` of them is closed. This node's own records are signed when sent.
 * - Nothing a peer sends stops a loop: decoding, screening, the core, each send and each event
 *   handler run under their own guard; a failure is counted (`handlerFailures`) and logged.
 * - Sessions used for membership are pooled by address, at most `maxSessions` (least recently
 *   used closed first; routes and clients are never closed by the pool), so a node's connection
 *   count stays bounded whatever the mesh size.
 */
import { Buffer } from "node:buffer";
import { createHash, createPrivateKey, createPublicKey } from "node:crypto";
import { KEY_ALGORITHMS, keyTypeOf, nodeIdFromSpki, nodeIdText } from "../identity/mod.ts";
import {
  decodeMembership,
  Directory,
  encodeMembership,
  hasRecord,
  type MemberEvent,
  type MemberMeta,
  Membership,
  type MembershipConfig,
  type MembershipStats,
  type MemberView,
  type Msg,
  type Output,
  type Proof,
  recordBytes,
  recordKeyType,
  type RecordSigner,
  SCREEN_CHECK,
  SCREEN_PASS,
  type ScreenItem,
  toMsg,
  U_ALIVE,
  U_LEFT,
  type Update,
  type WireMessage,
  type WireUpdate,
} from "../mesh/mod.ts";
import { ask, defineRequest, type PeerSession, type RequestRegistry } from "../peer/mod.ts";
import type { PeerIdentity } from "../identity/mod.ts";
import { Driver, type Log, monoNow, withTimeout } from "../util/mod.ts";
import { RUNTIME } from "./defaults.ts";
import { NodeError } from "./errors.ts";

/** A membership message on a stream of a session (syncs, and what a datagram cannot hold). */
/** Certificates asked for in one `membership.certs` (a message introduces at most 64 members). */
const MAX_CERTS_ASKED = 64;

export const MEMBERSHIP_MSG = defineRequest<Uint8Array, Uint8Array>(
  "membership.msg",
  "bytes",
  "bytes",
);

/**
 * "Send me the certificates of these members": a node admits a member it did not know only once
 * the member's certificate chain (from the realm CA) verifies, fetched from whoever told it of
 * the member. Each answer is the chain as base64 DER certificates joined by `,`, or "" for one
 * the asked node has none of.
 */
export const MEMBERSHIP_CERTS = defineRequest<{ ids: string[] }, { certs: string[] }>(
  "membership.certs",
  [{ name: "ids", kind: "strs", max: MAX_CERTS_ASKED, itemMax: 52 }],
  [{ name: "certs", kind: "strs", max: MAX_CERTS_ASKED, itemMax: 64 * 1024 }],
);

/**
 * Forged messages (a record whose key or signature is wrong) a session may send before it is
 * closed: an honest node never sends one (it passes on only records it checked), so a few allow
 * for a bug, not for an attack.
 */
export const FORGED_LIMIT = 8;

/** Members `learn` may wait for at once. */
export const MAX_LEARNING = 64;

/** Counters of the glue. */
export interface MembershipGlueStats {
  datagramsIn: number;
  datagramsOut: number;
  streamsIn: number;
  streamsOut: number;
  /** Messages that did not decode (a bad id, field, or record form included). */
  malformed: number;
  /** Messages dropped as forged: sender id not the session's certificate, or a bad record. */
  forged: number;
  /** Records whose key is not the member's id, or whose signature does not verify. */
  forgedRecords: number;
  /** Sessions closed for sending `FORGED_LIMIT` forged messages. */
  sessionsClosedForged: number;
  /** Signatures checked (each record once) and made (this node's own records). */
  signaturesChecked: number;
  signaturesMade: number;
  /** Failures caught in the receive path, a send, the timer or an event handler. */
  handlerFailures: number;
  /** New members refused: no certificate of the realm could be had for them (made-up ids). */
  uncertified: number;
  /** Member certificates checked (each new member's once). */
  certificatesChecked: number;
  /** Sends dropped: no session could be had, or the datagram queue was full. */
  unsent: number;
  sessionsClosedByPool: number;
}

/** What `macula inspect node` shows of membership: the glue's and the core's counters. */
export type MembershipCounters =
  & MembershipGlueStats
  & MembershipStats
  & { incarnation: number; awareness: number; directory: number };

export interface MembershipGlueOptions {
  id: string;
  /** Where others reach this node (`quic://host:port`). */
  addr: string;
  meta: MemberMeta;
  seeds: string[];
  config?: Partial<MembershipConfig>;
  /** Signs this node's own records (`membershipSigner` over the node's key). */
  signer: RecordSigner;
  /**
   * What makes a member one of the realm: this node's own certificate chain (DER, leaf first),
   * and the check of another's (the node's `Verifier`: CA path, validity, CRL).
   */
  certs: { own: Uint8Array[]; verify: (chain: Uint8Array[]) => Promise<PeerIdentity> };
  /** Opens a session to a node's address (the node runtime dials and tracks it). */
  dial: (addr: string) => Promise<PeerSession>;
  /** Sessions the pool must not close (routes, clients). */
  isPinned: (s: PeerSession) => boolean;
  onEvent?: (e: MemberEvent, view: { id: string; addr: string }) => void;
  /** Sessions kept for membership traffic (default 64). */
  maxSessions?: number;
  /** Where a failure inside the glue is reported. */
  log?: Log;
}

/** A signer of this node's records with its key (PKCS#8 PEM, Ed25519 or P-256), over WebCrypto. */
export function membershipSigner(keyPem: string): RecordSigner {
  const priv = createPrivateKey(keyPem);
  const type = keyTypeOf(priv);
  const spki = new Uint8Array(createPublicKey(priv).export({ type: "spki", format: "der" }));
  const pkcs8 = new Uint8Array(priv.export({ type: "pkcs8", format: "der" }));
  let key: Promise<CryptoKey> | undefined;
  return {
    spki,
    async sign(bytes: Uint8Array): Promise<Uint8Array> {
      key ??= crypto.subtle.importKey("pkcs8", pkcs8, KEY_ALGORITHMS[type].gen, false, ["sign"]);
      const sig = await crypto.subtle.sign(
        KEY_ALGORITHMS[type].sign,
        await key,
        bytes as Uint8Array<ArrayBuffer>,
      );
      return new Uint8Array(sig);
    },
  };
}

/**
 * Checks members' records: the key's SHA-256 is the member's id, and the signature verifies
 * (WebCrypto). Imported keys are kept per member (bounded), and one record arriving in several
 * messages at once is checked once.
 */
export class RecordChecker {
  readonly #keys = new Map<string, { spki: Uint8Array; key: Promise<CryptoKey> }>();
  readonly #inflight = new Map<string, Promise<boolean>>();
  checked = 0;

  constructor(private readonly maxKeys: number) {}

  /** Whether `u`'s record is its member's own (false for any error). */
  check(u: WireUpdate): Promise<boolean> {
    const r = u.record;
    if (!r) return Promise.resolve(false);
    const bytes = recordBytes(u.kind === U_LEFT ? U_LEFT : U_ALIVE, u.id, u.inc, r.addr, r.meta);
    const digest = createHash("sha256").update(bytes).update(r.proof.sig).update(r.proof.key)
      .digest("base64");
    const pending = this.#inflight.get(digest);
    if (pending) return pending;
    const p = this.#check(u.id, r.proof, bytes).catch(() => false);
    if (this.#inflight.size < 4096) {
      this.#inflight.set(digest, p);
      void p.then(() => this.#inflight.delete(digest));
    }
    return p;
  }

  async #check(id: string, proof: Proof, bytes: Uint8Array): Promise<boolean> {
    const type = recordKeyType(proof.key);
    if (!type) return false;
    let k = this.#keys.get(id);
    if (!k || !equal(k.spki, proof.key)) {
      if (nodeIdText(nodeIdFromSpki(proof.key)) !== id) return false; // not this member's key
      const spki = proof.key.slice();
      k = {
        spki,
        key: crypto.subtle.importKey("spki", spki, KEY_ALGORITHMS[type].gen, false, ["verify"]),
      };
      if (this.#keys.size >= this.maxKeys) this.#keys.delete(this.#keys.keys().next().value!);
      this.#keys.set(id, k);
    }
    this.checked++;
    return await crypto.subtle.verify(
      KEY_ALGORITHMS[type].sign,
      await k.key,
      proof.sig as Uint8Array<ArrayBuffer>,
      bytes as Uint8Array<ArrayBuffer>,
    );
  }
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The membership of one running node. */
export class MembershipGlue {
  /** This node's directory: indices of forgotten members are reused (bounded memory). */
  readonly dir = new Directory({ recycle: true });
  readonly core: Membership;
  readonly stats: MembershipGlueStats = {
    datagramsIn: 0,
    datagramsOut: 0,
    streamsIn: 0,
    streamsOut: 0,
    malformed: 0,
    forged: 0,
    forgedRecords: 0,
    sessionsClosedForged: 0,
    signaturesChecked: 0,
    signaturesMade: 0,
    handlerFailures: 0,
    uncertified: 0,
    certificatesChecked: 0,
    unsent: 0,
    sessionsClosedByPool: 0,
  };
  /** Sessions by the address their peer answers at; Map order = least recently used first. */
  readonly #byAddr = new Map<string, PeerSession>();
  /** The session each member last spoke on, by reply address (`peer:<id>`). */
  readonly #replies = new Map<string, PeerSession>();
  readonly #dialing = new Map<string, Promise<PeerSession | null>>();
  readonly #driver: Driver<Output<Msg, MemberEvent>>;
  readonly #checker: RecordChecker;
  /** Forged messages per session. */
  readonly #strikes = new WeakMap<PeerSession, number>();
  /** This node's own records' signatures, by `kind:inc` (the latest few), and those made. */
  readonly #ownProofs = new Map<string, Promise<Proof>>();
  readonly #ownReady = new Map<string, Proof>();
  #stopped = false;
  /** Members being learned (`learn`): what to wake when an event names them. */
  readonly #learning = new Map<string, Set<() => void>>();
  /** Verified certificate chains of members (by node id), to admit them and to hand on; bounded. */
  readonly #chains = new Map<string, Uint8Array[]>();
  #logged = { at: 0, n: 0 };
  /** Work under way: checks, signatures, sends (`settled` waits for it). */
  readonly #work = new Set<Promise<unknown>>();
  /** When a message last came from each member (by node id), for inspection; bounded. */
  readonly #lastSeen = new Map<string, number>();

  /** This node's metadata as it announces it now (`setMeta` replaces it). */
  #meta: MemberMeta;

  constructor(private readonly o: MembershipGlueOptions) {
    this.#meta = o.meta;
    this.core = new Membership({
      id: o.id,
      addr: o.addr,
      meta: o.meta,
      rng: Math.random,
      directory: this.dir,
      config: o.config,
      seeds: o.seeds,
      now: monoNow(),
      proofBytes: 4 + o.signer.spki.length + 64,
    });
    this.#checker = new RecordChecker(this.core.cfg.maxMembers);
    this.#driver = new Driver(this.core, {
      act: (out) => this.#act(out),
      onError: (e) => this.#failed("timer", e),
    });
    this.#presign();
    this.#driver.poke();
  }

  /**
   * Signs ahead what this node may send next: its alive at its incarnation and its goodbye at the
   * next, so a refutation goes out at once and the goodbye of `leave` before the sessions close.
   */
  #presign(): void {
    const self = this.core.self;
    const inc = this.core.incarnation;
    const rec = { member: self, from: self, addr: this.o.addr, meta: this.#meta };
    void this.#sign({ ...rec, kind: U_ALIVE, inc }).catch((e) => this.#failed("sign", e));
    void this.#sign({ ...rec, kind: U_LEFT, inc: inc + 1 }).catch((e) => this.#failed("sign", e));
  }

  /** Serves membership messages that come on streams. */
  register(r: RequestRegistry): void {
    r.on(MEMBERSHIP_MSG, (payload, s) => this.onStream(s, payload));
    r.on(MEMBERSHIP_CERTS, (q) => ({
      certs: q.ids.map((id) => {
        const chain = id === this.o.id ? this.o.certs.own : this.#chains.get(id);
        return chain ? chain.map((c) => Buffer.from(c).toString("base64")).join(",") : "";
      }),
    }));
  }

  /** Keeps a member's verified chain (bounded: the oldest goes first). */
  #keepChain(id: string, chain: Uint8Array[]): void {
    this.#chains.delete(id);
    this.#chains.set(id, chain);
    if (this.#chains.size > this.core.cfg.maxMembers + 64) {
      this.#chains.delete(this.#chains.keys().next().value!);
    }
  }

  /**
   * The records in `keep` of members this node does not know yet, without a certificate here,
   * get theirs from `s` (whoever told us of them) and are kept only if it verifies: a member of
   * the realm, a node, this very id. The others are left out and counted (`uncertified`).
   */
  async #certify(s: PeerSession, keep: WireUpdate[]): Promise<WireUpdate[]> {
    const need = [
      ...new Set(
        keep.filter((u) =>
          u.record !== undefined && u.id !== this.o.id && !this.#chains.has(u.id) &&
          !this.knows(u.id)
        ).map((u) => u.id),
      ),
    ];
    if (need.length === 0) return keep;
    const ok = new Set<string>();
    // In batches (a joiner's first full view names every member), one at a time.
    for (let at = 0; at < need.length && !this.#stopped; at += MAX_CERTS_ASKED) {
      const batch = need.slice(at, at + MAX_CERTS_ASKED);
      if (!(await this.#certifyBatch(s, batch, ok))) break;
    }
    return keep.filter((u) => {
      if (u.record === undefined || u.id === this.o.id || this.#chains.has(u.id)) return true;
      if (this.knows(u.id)) return true;
      if (!ok.has(u.id)) {
        this.stats.uncertified++;
        return false;
      }
      return true;
    });
  }

  /** Fetches and checks the chains of `need` from `s`; false when `s` did not answer. */
  async #certifyBatch(s: PeerSession, need: string[], ok: Set<string>): Promise<boolean> {
    try {
      const { certs } = await ask(s, MEMBERSHIP_CERTS, { ids: need }, { timeoutMs: 5000 });
      await Promise.all(need.map(async (id, i) => {
        const text = certs[i] ?? "";
        if (text === "") return;
        try {
          const chain = text.split(",").slice(0, 4).map((b) =>
            new Uint8Array(Buffer.from(b, "base64"))
          );
          this.stats.certificatesChecked++;
          const who = await this.o.certs.verify(chain);
          if (who.nodeId !== id || who.role !== "node" || who.realm !== this.o.meta.realm) return;
          this.#keepChain(id, chain);
          ok.add(id);
        } catch {
          // not a certificate of this realm's CA (or revoked, expired, malformed): refused
        }
      }));
      return true;
    } catch {
      return false; // it did not answer: its members stay out (counted as uncertified)
    }
  }

  /** A session opened (either way): its datagrams feed the core. */
  attach(s: PeerSession): void {
    void (async () => {
      for await (const d of s.conn.datagrams()) {
        this.stats.datagramsIn++;
        this.#receive(s, d); // never throws: every step is guarded
      }
    })().catch((e) => this.#failed("datagrams", e));
    void s.closed.then(() => {
      for (const [addr, x] of this.#byAddr) if (x === s) this.#byAddr.delete(addr);
      const reply = `peer:${s.peer.nodeId}`;
      if (this.#replies.get(reply) === s) this.#replies.delete(reply);
    });
  }

  /** A membership message that came on a stream (`membership.msg`). */
  onStream(s: PeerSession, payload: Uint8Array): Uint8Array {
    this.stats.streamsIn++;
    this.#receive(s, payload);
    return new Uint8Array(0);
  }

  /** What this node knows of the members, for `macula inspect members`. */
  members(): (Omit<MemberView, "since"> & {
    self: boolean;
    sinceMs: number;
    lastSeenMs: number | null;
  })[] {
    const now = monoNow();
    // `since` is a reading of this process's monotonic clock, meaningless elsewhere: it goes
    // out as `sinceMs`, how long ago the member's state changed.
    return this.core.members().map(({ since, ...m }) => {
      const seen = this.#lastSeen.get(m.id);
      return {
        ...m,
        self: m.id === this.o.id,
        sinceMs: Math.round(now - since),
        lastSeenMs: m.id === this.o.id ? 0 : seen === undefined ? null : Math.round(now - seen),
      };
    });
  }

  /** The glue's and the core's counters, for `macula inspect node`. */
  counters(): MembershipCounters {
    this.stats.signaturesChecked = this.#checker.checked;
    return {
      ...this.stats,
      ...this.core.stats,
      incarnation: this.core.incarnation,
      awareness: this.core.awareness,
      directory: this.dir.count,
    };
  }

  /** Resolves once the checks, signatures and sends under way now (and what they start) are done. */
  async settled(): Promise<void> {
    while (this.#work.size > 0) await Promise.allSettled([...this.#work]);
  }

  #track<T>(p: Promise<T>): Promise<T> {
    this.#work.add(p);
    void p.finally(() => this.#work.delete(p)).catch(() => {});
    return p;
  }

  /** Announces new metadata (tags) to the realm: signed and gossiped at a new incarnation. */
  setMeta(meta: MemberMeta): boolean {
    if (this.#stopped || !this.core.setMeta(meta, monoNow())) return false;
    this.#meta = meta;
    this.#driver.poke();
    return true;
  }

  /** Leaves (gossips `left`), then stops the timer; resolves once the goodbye is sent. */
  leave(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    this.core.leave(monoNow());
    this.#driver.flush();
    this.#stopped = true;
    this.#driver.stop();
    return this.settled();
  }

  /** True when this node's view holds `id` (in any state but unknown). */
  knows(id: string): boolean {
    const i = this.dir.indexOf(id);
    return i !== undefined && this.core.stateOf(i) !== "unknown";
  }

  /**
   * Whether this node knows `id`, after asking `via` (a node's session) for its view when it does
   * not yet: a NAT traversal can introduce a member before gossip has brought it here. Waits at
   * most `timeoutMs` for the answer (its records checked like any others); at most
   * `MAX_LEARNING` members are being learned at once (past it, false at once).
   */
  async learn(id: string, via: PeerSession, timeoutMs: number): Promise<boolean> {
    if (this.knows(id)) return true;
    if (this.#stopped || via.peer.nodeId === this.o.id) return false;
    let waiting = this.#learning.get(id);
    if (!waiting) {
      if (this.#learning.size >= MAX_LEARNING) return false;
      waiting = new Set();
      this.#learning.set(id, waiting);
    }
    let wake = () => {};
    const known = new Promise<void>((resolve) => (wake = resolve));
    const check = () => {
      if (this.knows(id)) wake();
    };
    waiting.add(check);
    try {
      const reply = `peer:${via.peer.nodeId}`;
      this.#replies.set(reply, via);
      this.core.syncWith(monoNow(), this.dir.intern(via.peer.nodeId), reply);
      this.#driver.poke();
      await withTimeout(known, timeoutMs, () => new Error("not learned in time")).catch(() => {});
    } finally {
      waiting.delete(check);
      if (waiting.size === 0) this.#learning.delete(id);
    }
    return this.knows(id);
  }

  /** A failure caught at `where`: counted, and logged (at most 10 lines a minute). */
  #failed(where: string, e: unknown): void {
    this.stats.handlerFailures++;
    const now = monoNow();
    if (now - this.#logged.at > 60_000) this.#logged = { at: now, n: 0 };
    if (this.#logged.n++ < 10) {
      this.o.log?.error(
        "membership.error",
        `membership: ${where}: ${(e as Error)?.message ?? String(e)}`,
        { cause: where },
      );
    }
  }

  #receive(s: PeerSession, bytes: Uint8Array): void {
    if (this.#stopped) return;
    let d: WireMessage;
    try {
      d = decodeMembership(bytes);
    } catch {
      this.stats.malformed++;
      return;
    }
    if (d.fromId !== s.peer.nodeId) {
      this.stats.forged++;
      return;
    }
    try {
      this.#screen(s, d);
    } catch (e) {
      this.#failed("receive", e);
    }
  }

  /** Keeps what would change the view, checks its records, then hands the message over. */
  #screen(s: PeerSession, d: WireMessage): void {
    const now = monoNow();
    this.#lastSeen.delete(d.fromId);
    this.#lastSeen.set(d.fromId, now);
    if (this.#lastSeen.size > this.core.cfg.maxMembers) {
      this.#lastSeen.delete(this.#lastSeen.keys().next().value!);
    }
    const sender = this.dir.intern(d.fromId); // it proved its id with its certificate
    if (s.peer.role === "node" && !this.#chains.has(d.fromId) && s.conn.peerCertificates.length) {
      this.#keepChain(d.fromId, s.conn.peerCertificates);
    }
    const items = d.updates.map((u): ScreenItem => ({
      member: this.dir.indexOf(u.id) ?? -1,
      kind: u.kind,
      inc: u.inc,
      record: u.record !== undefined,
      realm: u.record?.meta.realm,
    }));
    const verdicts = this.core.screen(now, sender, d.t, items);
    const keep: WireUpdate[] = [];
    const checks: Promise<boolean>[] = [];
    for (let i = 0; i < verdicts.length; i++) {
      const u = d.updates[i]!;
      if (verdicts[i] === SCREEN_CHECK) {
        keep.push(u);
        checks.push(this.#checker.check(u));
      } else if (verdicts[i] === SCREEN_PASS) {
        keep.push({ kind: u.kind, id: u.id, inc: u.inc, from: u.from });
      }
    }
    if (checks.length === 0) return this.#deliver(s, d, keep);
    void this.#track(
      Promise.all(checks).then(async (ok) => {
        const bad = ok.filter((x) => !x).length;
        if (bad > 0) return this.#forged(s, bad);
        this.#deliver(s, d, await this.#certify(s, keep));
      }),
    ).catch((e) => this.#failed("receive", e));
  }

  #forged(s: PeerSession, records: number): void {
    this.stats.forged++;
    this.stats.forgedRecords += records;
    const n = (this.#strikes.get(s) ?? 0) + 1;
    this.#strikes.set(s, n);
    if (n === FORGED_LIMIT) {
      this.stats.sessionsClosedForged++;
      this.o.log?.warn(
        "membership.forged",
        `membership: closing the session of ${s.peer.nodeId}: forged records`,
        { peer: s.peer.nodeId, cause: "forged" },
      );
      void s.close("membership: forged records").catch(() => {});
    }
  }

  #deliver(s: PeerSession, d: WireMessage, keep: WireUpdate[]): void {
    if (this.#stopped) return;
    try {
      const msg = toMsg(d, keep, this.dir);
      const reply = `peer:${d.fromId}`;
      this.#replies.set(reply, s);
      this.core.receive(monoNow(), reply, msg);
      // The session is this member's at the address its own record names (and only then).
      const e = this.dir.entries[msg.from];
      if (e && e.id === d.fromId && e.addr !== "" && e.addr === d.fromAddr) {
        this.#byAddr.delete(e.addr);
        this.#byAddr.set(e.addr, s);
      }
    } catch (e) {
      this.#failed("receive", e);
    }
    this.#driver.poke();
  }

  /** Sends what the core queued and reports its events, each under its own guard. */
  #act(out: Output<Msg, MemberEvent>): void {
    for (const o of out.send) {
      try {
        this.#send(o.to, o.msg);
      } catch (e) {
        this.#failed("send", e);
      }
    }
    if (out.events.some((e) => e.kind === "refute")) this.#presign();
    if (this.#learning.size > 0) {
      for (const e of out.events) {
        const id = this.dir.entries[e.member]?.id;
        const wake = id === undefined ? undefined : this.#learning.get(id);
        if (wake) { for (const f of wake) f(); }
      }
    }
    if (this.o.onEvent) {
      for (const e of out.events) {
        try {
          const entry = this.dir.entries[e.member]!;
          this.o.onEvent(e, { id: entry.id, addr: entry.addr });
        } catch (err) {
          this.#failed(`event ${e.kind}`, err);
        }
      }
    }
  }

  /** This node's own records in `msg` still to sign. */
  #ownRecords(msg: Msg): Update[] {
    const us = "piggy" in msg ? msg.piggy : "members" in msg ? msg.members : [];
    return us.filter((u) => u.member === this.core.self && hasRecord(u));
  }

  #ownKey(u: Update): string {
    return `${u.kind === U_LEFT ? U_LEFT : U_ALIVE}:${u.inc}`;
  }

  /** The signature of this node's own record `u` (made once per kind and incarnation). */
  #sign(u: Update): Promise<Proof> {
    const k = this.#ownKey(u);
    let p = this.#ownProofs.get(k);
    if (!p) {
      const bytes = recordBytes(u.kind, this.o.id, u.inc, u.addr!, u.meta!);
      p = this.o.signer.sign(bytes).then((sig) => {
        const proof = { key: this.o.signer.spki, sig };
        if (this.#ownProofs.has(k)) this.#ownReady.set(k, proof);
        return proof;
      });
      this.stats.signaturesMade++;
      this.#ownProofs.set(k, p);
      if (this.#ownProofs.size > 4) {
        const oldest = this.#ownProofs.keys().next().value!;
        this.#ownProofs.delete(oldest);
        this.#ownReady.delete(oldest);
      }
    }
    return p;
  }

  #send(to: string, msg: Msg): void {
    const own = this.#ownRecords(msg);
    if (own.every((u) => this.#ownReady.has(this.#ownKey(u)))) {
      return this.#transmit(to, msg, this.#ownReady);
    }
    void this.#track(
      Promise.all(own.map((u) => this.#sign(u))).then((proofs) => {
        const m = new Map<string, Proof>();
        own.forEach((u, i) => m.set(this.#ownKey(u), proofs[i]!));
        this.#transmit(to, msg, m);
      }),
    ).catch((e) => this.#failed("sign", e));
  }

  #transmit(to: string, msg: Msg, own: Map<string, Proof>): void {
    const bytes = encodeMembership(
      msg,
      this.dir,
      this.o.addr,
      (u) => u.member === this.core.self ? own.get(this.#ownKey(u)) : undefined,
    );
    const big = msg.t === "sync" || msg.t === "sync-reply";
    void this.#track(
      this.#session(to).then((s) => {
        if (!s || s.conn.closeInfo || !s.conn.isOpen) {
          this.stats.unsent++;
          return;
        }
        try {
          if (!big && bytes.length <= s.conn.maxDatagramSize && s.conn.sendDatagram(bytes)) {
            this.stats.datagramsOut++;
            return;
          }
        } catch {
          this.stats.unsent++; // closing meanwhile
          return;
        }
        this.stats.streamsOut++;
        ask(s, MEMBERSHIP_MSG, bytes, { timeoutMs: 10_000 }).catch(() => {
          this.stats.unsent++;
        });
      }),
    ).catch((e) => this.#failed("send", e));
  }

  /** A session to the member at `addr`, from this pool (the DHT's queries share it). */
  sessionTo(addr: string): Promise<PeerSession | null> {
    return this.#session(addr);
  }

  /**
   * A session to `addr`: for a reply address (`peer:<id>`), the session that member last spoke
   * on, else its own record's address; pooled, or dialed (once, however many sends wait for it).
   */
  #session(addr: string): Promise<PeerSession | null> {
    if (addr.startsWith("peer:")) {
      const s = this.#replies.get(addr);
      if (s && s.conn.isOpen && !s.closing) return Promise.resolve(s);
      const i = this.dir.indexOf(addr.slice(5));
      addr = i === undefined ? "" : this.dir.entries[i]!.addr;
      if (addr === "") return Promise.resolve(null);
    }
    const have = this.#byAddr.get(addr);
    if (have && have.conn.isOpen && !have.closing) {
      this.#byAddr.delete(addr);
      this.#byAddr.set(addr, have);
      return Promise.resolve(have);
    }
    const pending = this.#dialing.get(addr);
    if (pending) return pending;
    // Bounded: a dial that hangs (no answer: QUIC gets no refusal) must not hold every later
    // message to that address; the next send dials afresh.
    const dial = withTimeout(
      this.o.dial(addr),
      RUNTIME.dialTimeoutMs,
      () => new NodeError("dial timed out"),
    );
    const p = dial.then(
      (s) => {
        this.#dialing.delete(addr);
        this.#byAddr.set(addr, s);
        this.#trim();
        return s;
      },
      () => {
        this.#dialing.delete(addr);
        return null;
      },
    );
    this.#dialing.set(addr, p);
    return p;
  }

  /** Closes the least recently used unpinned sessions past the bound. */
  #trim(): void {
    const max = this.o.maxSessions ?? 64;
    if (this.#byAddr.size <= max) return;
    for (const [addr, s] of this.#byAddr) {
      if (this.#byAddr.size <= max) break;
      if (this.o.isPinned(s)) continue;
      this.#byAddr.delete(addr);
      this.stats.sessionsClosedByPool++;
      void s.close("membership pool full");
    }
  }
}
