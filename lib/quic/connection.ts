/**
 * A QUIC connection: streams, datagrams, stats, close, migration. Created by `QuicEndpoint`;
 * all packet IO and timers are the endpoint's.
 */
import { randomBytes } from "node:crypto";
import { monoNow } from "../util/mod.ts";
import { TUNING } from "./defaults.ts";
import {
  type CloseInfo,
  type CloseInitiator,
  closeMessage,
  ConnectionClosedError,
  QuicError,
} from "./errors.ts";
import type { Connection, HostPort, PathStats } from "./native.ts";
import { QuicStream, type RecvSlab, type StreamOwner } from "./stream.ts";
import { sameHost } from "./udp.ts";

/** What a connection needs from its endpoint. */
export interface ConnectionHost {
  /** Marks the connection for servicing and sending in the next flush. */
  dirty(c: QuicConnection): void;
  /** Routes packets for `cid` to `c` (or stops routing with `null`). */
  route(cid: Uint8Array, c: QuicConnection | null): void;
  /** The handshake finished; the endpoint runs the peer check and hands the connection out. */
  established(c: QuicConnection): void;
  /** The dialing side learned that the server accepted it (see `confirmed`). */
  confirmed(c: QuicConnection): void;
  /** The connection is closed for good. */
  closed(c: QuicConnection): void;
  /** Where stream data is received (see `RecvSlab`). */
  readonly slab: RecvSlab;
}

/** Per-connection tunables (from the endpoint options). */
export interface ConnectionLimits {
  readBufferBytes: number;
  writeBufferBytes: number;
  datagramQueue: number;
  keepAliveMs: number;
}

/** Numbers about a connection, readable at any time. */
export interface ConnectionStats {
  /** Smoothed round-trip time of the active path, in milliseconds. */
  rttMs: number;
  /** Congestion window of the active path, in bytes. */
  cwnd: number;
  /** Packets sent, received, declared lost, and retransmitted. */
  packetsSent: number;
  packetsReceived: number;
  packetsLost: number;
  packetsRetransmitted: number;
  /** Bytes sent and received (UDP payloads), and bytes lost. */
  bytesSent: number;
  bytesReceived: number;
  bytesLost: number;
  /** Datagrams received but dropped because the application did not read them in time. */
  datagramsDropped: number;
  /** Streams currently open. */
  streams: number;
  /** The active path's local and remote addresses. */
  local: HostPort;
  remote: HostPort;
  /** Every path quiche knows, with its own numbers. */
  paths: PathStats[];
}

type State = "handshake" | "verifying" | "open" | "closing" | "closed";

/** Iterates what `next()` resolves to until it resolves to `null`. */
async function* untilNull<T>(next: () => Promise<T | null>): AsyncIterableIterator<T> {
  for (;;) {
    const v = await next();
    if (v === null) return;
    yield v;
  }
}

/** A QUIC connection. */
export class QuicConnection implements StreamOwner {
  /** Certificate chain the peer presented (DER, leaf first), set once the handshake completes. */
  peerCertificates: Uint8Array[] = [];
  /** The negotiated application protocol (ALPN). */
  alpn = "";
  /** The peer's current address. */
  remote: HostPort;
  /** This side's address for the connection. */
  local: HostPort;
  /** Resolves (never rejects) when the connection has ended, saying how. */
  readonly closed: Promise<CloseInfo>;
  /** Application data attached by the owner (e.g. the verified peer identity). */
  context: unknown = undefined;

  /** @internal timer bookkeeping for the endpoint's scheduler. */
  timerGen = 0;
  /** @internal */
  state: State = "handshake";
  /** @internal the close, once known. */
  closeInfo: CloseInfo | null = null;
  /**
   * @internal True once the peer is known to have accepted the handshake. A server knows at once;
   * in TLS 1.3 a client finishes before the server has checked the client's certificate, so the
   * client waits for the first packet the server sends after that (it carries HANDSHAKE_DONE, or
   * the server's refusal instead).
   */
  isConfirmed: boolean;
  /** @internal set by the endpoint once `checkPeer` passed. */
  checked = false;
  #recvAtEstablish = 0;
  /** Packets arrived (or a timer fired) since the last `service()`. */
  #received = true;
  /** A reader made room: look at readable streams even without new packets. */
  #pullAgain = false;
  /** When spare connection ids were last topped up (`monoNow()` ms; never yet: -Infinity). */
  #cidsCheckedAt = -Infinity;
  /** A packet came from an address other than `remote` since the last path check. */
  #addrSeen = true;
  /** When path events were last polled without a reason (`monoNow()` ms; never: -Infinity). */
  #pathsAt = -Infinity;
  /** @internal sending was put off by one turn so the application's answer joins the ACK. */
  deferred = false;
  /** @internal sent while dirty */
  inDirty = false;
  /** @internal packets received since quiche last built packets for this connection. */
  recvSinceSend = 0;
  /** @internal the application queued something (stream data, a datagram) since `deferred`. */
  appWrote = false;
  /** @internal a lone ACK is being held back (see the endpoint's `#holdAck`). */
  ackHeld = false;
  /** @internal the hold is over: send now. */
  ackDue = false;
  /** @internal next keepalive time, `monoNow()` ms (0 = off). */
  keepAliveAt = 0;
  /** @internal a close requested locally, kept until quiche has it. */
  #localClose: { initiator: CloseInitiator } | null = null;

  #streams = new Map<number, QuicStream>();
  #writeQueue = new Set<QuicStream>();
  #blocked = new Set<QuicStream>();
  #incoming: QuicStream[] = [];
  #incomingWaiter: ((s: QuicStream | null) => void) | null = null;
  #openWaiters: (() => void)[] = [];
  #nextBidi: number;
  #nextUni: number;
  #dgrams: Uint8Array[] = [];
  #dgramHead = 0;
  #dgramWaiter: ((d: Uint8Array | null) => void) | null = null;
  #dgramDropped = 0;
  #cids: Uint8Array[] = [];
  /** Peer-opened streams finished here, so late data on them is not taken for a new stream. */
  #finishedPeer = new Set<number>();
  #resolveClosed!: (i: CloseInfo) => void;
  #onPeerMigrated: ((from: HostPort, to: HostPort) => void) | null = null;
  /** A migration under way: the path being validated, and who waits for the outcome. */
  #migration: {
    local: HostPort;
    peer: HostPort;
    done: (e: Error | null) => void;
  } | null = null;
  #migrateAttempts = 0;
  /**
   * @internal Paths besides the active one, as (local, peer): new paths being validated, and old
   * ones that may still hold packets in flight. The endpoint sends on them first each flush so a
   * busy active path starves neither; quiche forgets a path with a `Closed` event.
   */
  probing: [HostPort, HostPort][] = [];
  /** @internal the client's new local address while its path is probed. */
  get migrating(): HostPort | null {
    return this.#migration?.local ?? null;
  }

  constructor(
    private readonly host: ConnectionHost,
    /** The quiche connection (exposed for the endpoint and diagnostics). */
    readonly native: Connection,
    /** True for the dialing side. */
    readonly isClient: boolean,
    local: HostPort,
    remote: HostPort,
    scid: Uint8Array,
    private readonly limits: ConnectionLimits,
  ) {
    this.local = local;
    this.remote = remote;
    this.isConfirmed = !isClient;
    this.#nextBidi = isClient ? 0 : 1;
    this.#nextUni = isClient ? 2 : 3;
    this.closed = new Promise((r) => (this.#resolveClosed = r));
    this.#cids.push(scid);
    host.route(scid, this);
  }

  /** True once the handshake and the peer check have passed and until the connection closes. */
  get isOpen(): boolean {
    return this.state === "open";
  }

  // ------------------------------------------------------------------ streams

  /** Opens a bidirectional stream, waiting for the peer's stream credit if none is left. */
  openStream(): Promise<QuicStream> {
    return this.#open(true);
  }

  /** Opens a unidirectional (send-only) stream. */
  openUniStream(): Promise<QuicStream> {
    return this.#open(false);
  }

  async #open(bidi: boolean): Promise<QuicStream> {
    // Waits for MAX_STREAMS from the peer while it allows no more streams; re-checked after each
    // received packet, and ended by the connection closing (#assertOpen throws then).
    for (;;) {
      this.#assertOpen();
      const left = bidi ? this.native.peerStreamsLeftBidi() : this.native.peerStreamsLeftUni();
      if (left > 0) break;
      await new Promise<void>((r) => this.#openWaiters.push(r));
    }
    const id = bidi ? this.#nextBidi : this.#nextUni;
    if (bidi) this.#nextBidi += 4;
    else this.#nextUni += 4;
    // A zero-length send makes quiche create the stream and count it against the peer's limit.
    this.native.streamSend(id, new Uint8Array(0), false);
    return this.#newStream(id);
  }

  #newStream(id: number): QuicStream {
    const l = this.limits;
    const s = new QuicStream(this, id, this.isClient, l.readBufferBytes, l.writeBufferBytes);
    this.#streams.set(id, s);
    return s;
  }

  /** The next stream the peer opens, or `null` once the connection has closed. */
  acceptStream(): Promise<QuicStream | null> {
    if (this.#incoming.length > 0) return Promise.resolve(this.#incoming.shift()!);
    if (this.state === "closed" || this.state === "closing") return Promise.resolve(null);
    return new Promise((r) => (this.#incomingWaiter = r));
  }

  /** Iterates the streams the peer opens until the connection closes. */
  streams(): AsyncIterableIterator<QuicStream> {
    return untilNull(() => this.acceptStream());
  }

  // ------------------------------------------------------------------ datagrams

  /**
   * Sends an unreliable datagram. Returns false (and sends nothing) when it is larger than the
   * path allows or the send queue is full; see `maxDatagramSize`.
   */
  sendDatagram(data: Uint8Array): boolean {
    this.#assertOpen();
    const max = this.native.dgramMaxWritableLen();
    if (max === null || data.length > max) return false;
    if (this.native.isDgramSendQueueFull()) return false;
    this.appWrote = true;
    try {
      this.native.dgramSend(data);
    } catch {
      return false;
    }
    this.host.dirty(this);
    return true;
  }

  /** Largest datagram payload the path takes now (0 when the peer does not accept datagrams). */
  get maxDatagramSize(): number {
    return this.native.dgramMaxWritableLen() ?? 0;
  }

  /** The next received datagram, or `null` once the connection has closed. */
  receiveDatagram(): Promise<Uint8Array | null> {
    if (this.#dgramHead < this.#dgrams.length) return Promise.resolve(this.#takeDgram());
    if (this.state === "closed" || this.state === "closing") return Promise.resolve(null);
    return new Promise((r) => (this.#dgramWaiter = r));
  }

  /** Iterates received datagrams until the connection closes. */
  datagrams(): AsyncIterableIterator<Uint8Array> {
    return untilNull(() => this.receiveDatagram());
  }

  #takeDgram(): Uint8Array {
    const d = this.#dgrams[this.#dgramHead++]!;
    if (this.#dgramHead === this.#dgrams.length) {
      this.#dgrams = [];
      this.#dgramHead = 0;
    }
    return d;
  }

  // ------------------------------------------------------------------ close, stats, migration

  /**
   * Closes the connection with an application code and reason. Resolves when it is fully closed
   * (after the draining period); unread stream data is dropped.
   */
  close(code = 0, reason = ""): Promise<CloseInfo> {
    if (this.state !== "closed" && this.state !== "closing") {
      this.#localClose = { initiator: "local" };
      try {
        this.native.close(true, code, new TextEncoder().encode(reason));
      } catch {
        // already closing in quiche
      }
      this.state = "closing";
      this.#failAll();
      this.host.dirty(this);
    }
    return this.closed;
  }

  /** Closes because the endpoint is shutting down. */
  closeForEndpoint(reason: string): void {
    if (this.state === "closed" || this.state === "closing") return;
    this.#localClose = { initiator: "endpoint" };
    try {
      this.native.close(true, 0, new TextEncoder().encode(reason));
    } catch {
      // already closing
    }
    this.state = "closing";
    this.#failAll();
  }

  /** RTT, congestion window, loss and byte counters, per path and in total. */
  stats(): ConnectionStats {
    const s = this.native.stats();
    const paths = this.native.pathStats();
    const active = paths.find((p) => p.active) ?? paths[0];
    return {
      rttMs: active ? active.rtt : 0,
      cwnd: active ? active.cwnd : 0,
      packetsSent: s.sent,
      packetsReceived: s.recv,
      packetsLost: s.lost,
      packetsRetransmitted: s.retrans,
      bytesSent: s.sentBytes,
      bytesReceived: s.recvBytes,
      bytesLost: s.lostBytes,
      datagramsDropped: this.#dgramDropped,
      streams: this.#streams.size,
      local: this.local,
      remote: this.remote,
      paths,
    };
  }

  /** @internal also route packets for `cid` here (the client's first dcid, before it learns ours). */
  addRoute(cid: Uint8Array): void {
    this.#cids.push(cid.slice());
    this.host.route(cid, this);
  }

  /** Called when the peer's address changes (the server side of a migration). */
  onPeerMigrated(fn: (from: HostPort, to: HostPort) => void): void {
    this.#onPeerMigrated = fn;
  }

  /** @internal the endpoint moved to `local`: migrate this (client) connection onto it. */
  migrateTo(local: HostPort): void {
    void this.#migrate(local, this.remote).catch(() => {});
  }

  /**
   * Moves this (dialing) connection to another address of the peer, on the same local socket:
   * the path is validated first (PATH_CHALLENGE, RFC 9000 §8.2; the peer follows, §9.3), and the
   * old one carries data meanwhile. A relayed connection moves to a punched path this way,
   * keeping its streams. Resolves once the connection uses the new path; rejects when the path
   * did not validate (4 probes) or the connection closed. Bound it: after a failed validation,
   * quiche may report nothing more for the re-probed path (seen with an unreachable address), so
   * the promise can stay pending.
   */
  moveTo(peer: HostPort): Promise<void> {
    return this.#migrate(this.local, peer);
  }

  #migrate(local: HostPort, peer: HostPort): Promise<void> {
    if (!this.isClient) {
      return Promise.reject(new QuicError("only the dialing side of a connection can migrate"));
    }
    if (this.state !== "open") {
      return Promise.reject(new QuicError("only an open connection can migrate"));
    }
    // Probe the new path first; switch to it once validated (see #paths). The old path keeps
    // carrying data meanwhile.
    try {
      this.native.probePath(local, peer);
    } catch (e) {
      return Promise.reject(
        new QuicError(`cannot probe ${peer.host}:${peer.port}: ${e}`, { cause: e }),
      );
    }
    this.#migration?.done(new QuicError("superseded by another migration"));
    const p = new Promise<void>((resolve, reject) => {
      this.#migration = {
        local,
        peer,
        done: (e) => {
          this.#migration = null;
          if (e) reject(e);
          else resolve();
        },
      };
    });
    this.#migrateAttempts = 0;
    this.#addPath(local, peer);
    this.host.dirty(this);
    return p;
  }

  /** @internal gives up a migration that did not validate in time. */
  abandonMigration(): void {
    this.#migration?.done(new QuicError("the new path did not validate in time"));
  }

  #assertOpen(): void {
    if (this.state === "open") return;
    if (this.state === "closing" || this.closeInfo) throw new ConnectionClosedError(this.#ending());
    throw new QuicError("connection is not established yet");
  }

  // ------------------------------------------------------------------ StreamOwner

  /** @internal */
  wantWrite(s: QuicStream): void {
    this.appWrote = true;
    this.#writeQueue.add(s);
    this.host.dirty(this);
  }

  /** @internal */
  wantRead(_s: QuicStream): void {
    this.#pullAgain = true;
    this.host.dirty(this);
  }

  /** @internal */
  streamDone(s: QuicStream): void {
    this.#streams.delete(s.id);
    if (!s.local) {
      this.#finishedPeer.add(s.id);
      // Bounded: forget the oldest (quiche stops reporting collected streams anyway).
      if (this.#finishedPeer.size > 4096) {
        this.#finishedPeer.delete(this.#finishedPeer.values().next().value!);
      }
    }
    this.#writeQueue.delete(s);
    this.#blocked.delete(s);
  }

  // ------------------------------------------------------------------ driven by the endpoint

  /** @internal feed one received packet. */
  recv(data: Uint8Array, from: HostPort, to: HostPort): void {
    this.#received = true;
    this.recvSinceSend++;
    // The endpoint passes `this.remote` itself when the address is unchanged.
    if (from !== this.remote) this.#addrSeen = true;
    try {
      this.native.recv(data, { from, to });
    } catch {
      // quiche rejected the packet (undecryptable, or a TLS failure it will report in the close).
    }
    if (this.limits.keepAliveMs > 0) this.keepAliveAt = monoNow() + this.limits.keepAliveMs;
  }

  /** @internal a timer fired: look at everything in the next `service()`, as after a packet. */
  timerFired(): void {
    this.#received = true;
  }

  /**
   * @internal Handle what recv and timers produced: handshake, streams, datagrams, paths. True
   * when something reached the application, which may answer at once.
   */
  service(): boolean {
    const n = this.native;
    let woke = false;
    if (this.state === "handshake" && n.isEstablished()) {
      this.state = "verifying";
      this.peerCertificates = n.peerCertChain() ?? [];
      this.alpn = new TextDecoder().decode(n.applicationProto());
      this.#issueCids();
      if (this.isClient) this.#recvAtEstablish = n.stats().recv;
      this.host.established(this);
    }
    if (this.state === "verifying" && !this.isConfirmed && n.stats().recv > this.#recvAtEstablish) {
      if (!n.isClosed() && !n.isDraining() && !n.peerError() && !n.localError()) {
        this.isConfirmed = true;
        this.host.confirmed(this);
      }
    }
    const received = this.#received;
    this.#received = false;
    if (this.state === "open" && (received || this.#pullAgain)) {
      this.#pullAgain = false;
      // Peer-opened streams and readable data.
      for (const id of n.readable()) {
        let s = this.#streams.get(id);
        if (!s) {
          const peerOpened = ((id & 1) === 1) === this.isClient;
          // (Stream data can arrive out of order after loss, so a peer stream with a lower id
          // than one already seen may well be new: ids cannot tell finished streams apart.)
          if (!peerOpened || this.#finishedPeer.has(id)) {
            this.#drop(id);
            continue;
          }
          s = this.#newStream(id);
          this.#deliverStream(s);
          woke = true;
        }
        if (s.pull(this.host.slab)) woke = true;
      }
    }
    if (this.state === "open" && received) {
      // Datagrams.
      for (let i = 0; i < 4096; i++) {
        const d = n.dgramRecvVec();
        if (d === null) break;
        this.#deliverDatagram(d);
        woke = true;
      }
      // Streams blocked on flow control or the congestion window: try them again (quiche's
      // writable() set was seen to miss a stream that had room, so every one is retried).
      for (const s of this.#blocked) this.#writeQueue.add(s);
      if (this.#openWaiters.length > 0) {
        const ws = this.#openWaiters;
        this.#openWaiters = [];
        for (const w of ws) w();
      }
    }
    if (this.state !== "closed" && received) {
      // Path events come from new peer addresses or our own probing; otherwise poll them (and
      // retired connection ids) at most every 100 ms rather than on every batch of packets.
      if (this.#addrSeen || this.probing.length > 0 || this.#migration !== null) {
        this.#addrSeen = false;
        this.#paths();
      } else {
        const now = monoNow();
        if (now - this.#pathsAt > 100) {
          this.#pathsAt = now;
          this.#paths();
        }
      }
    }
    return woke;
  }

  /** @internal push queued stream data into quiche. */
  pushWrites(): void {
    if (this.#writeQueue.size === 0) return;
    const q = this.#writeQueue;
    this.#writeQueue = new Set();
    for (const s of q) {
      if (s.push()) this.#blocked.delete(s);
      else this.#blocked.add(s);
    }
  }

  /** @internal the handshake and peer check passed. */
  open(): void {
    if (this.state !== "verifying") return;
    this.state = "open";
    // Streams and datagrams that arrived while the peer was being checked are read now.
    this.#received = true;
    if (this.limits.keepAliveMs > 0) this.keepAliveAt = monoNow() + this.limits.keepAliveMs;
    this.host.dirty(this);
  }

  /** @internal the peer check failed: close with an application error the peer can read. */
  reject(code: number, reason: string): void {
    this.#localClose = { initiator: "local" };
    try {
      this.native.close(true, code, new TextEncoder().encode(reason));
    } catch {
      // already closing
    }
    this.state = "closing";
    this.host.dirty(this);
  }

  /** @internal after sending: is quiche done with this connection? (`force`: done now.) */
  checkClosed(force = false): boolean {
    if (this.state === "closed") return true;
    const n = this.native;
    if (!n.isClosed() && !force) {
      // Open connections enter draining on any close; during the handshake an error may come
      // before that, and a pending dial wants to know at once.
      const early = this.state === "handshake" || this.state === "verifying";
      if (
        this.state !== "closing" && (n.isDraining() || (early && (n.localError() || n.peerError())))
      ) {
        this.state = "closing";
        this.#failAll();
      }
      return false;
    }
    this.state = "closed";
    this.closeInfo = this.describeClose();
    this.#failAll();
    this.#migration?.done(new QuicError(`connection closed: ${this.closeInfo.message}`));
    for (const cid of this.#cids) this.host.route(cid, null);
    this.#cids = [];
    this.host.closed(this);
    this.#resolveClosed(this.closeInfo);
    return true;
  }

  /** @internal how the connection is ending (valid once quiche has a close or a timeout). */
  describeClose(): CloseInfo {
    const n = this.native;
    const dec = new TextDecoder();
    const peer = n.peerError();
    const local = n.localError();
    let initiator: CloseInitiator;
    let err = null;
    if (n.isTimedOut() && !peer && !(local && this.#localClose)) {
      initiator = "idle";
    } else if (peer && !(this.#localClose && local)) {
      initiator = "peer";
      err = peer;
    } else {
      initiator = this.#localClose?.initiator ?? "local";
      err = local ?? peer;
    }
    const app = err?.isApp ?? false;
    const code = err?.errorCode ?? 0;
    const reason = err ? dec.decode(err.reason) : "";
    return { initiator, app, code, reason, message: closeMessage(initiator, app, code, reason) };
  }

  /**
   * How the connection is ending: its close once closed; while it drains, the close quiche holds
   * (the peer's code and reason, so a refusal reads as one), else only that it is closing.
   */
  #ending(): CloseInfo {
    if (this.closeInfo) return this.closeInfo;
    const n = this.native;
    if (n.peerError() || n.localError()) return this.describeClose();
    return {
      initiator: this.#localClose?.initiator ?? "peer",
      app: false,
      code: 0,
      reason: "",
      message: "connection is closing",
    };
  }

  /** Fails every waiter (streams, accept, datagrams) once the connection is going away. */
  #failAll(): void {
    const err = new ConnectionClosedError(this.#ending());
    for (const s of this.#streams.values()) s.abort(err);
    this.#streams.clear();
    this.#writeQueue.clear();
    this.#blocked.clear();
    const w = this.#incomingWaiter;
    this.#incomingWaiter = null;
    if (w) w(null);
    const d = this.#dgramWaiter;
    this.#dgramWaiter = null;
    if (d) d(null);
    const ow = this.#openWaiters;
    this.#openWaiters = [];
    for (const o of ow) o();
  }

  #deliverStream(s: QuicStream): void {
    const w = this.#incomingWaiter;
    if (w) {
      this.#incomingWaiter = null;
      w(s);
    } else this.#incoming.push(s);
  }

  #deliverDatagram(d: Uint8Array): void {
    const w = this.#dgramWaiter;
    if (w) {
      this.#dgramWaiter = null;
      w(d);
      return;
    }
    if (this.#dgrams.length - this.#dgramHead >= this.limits.datagramQueue) {
      // Unreliable by contract: drop the oldest, and count it.
      this.#dgramHead++;
      this.#dgramDropped++;
    }
    this.#dgrams.push(d);
  }

  /** Reads and drops data on a stream nobody holds any more. */
  #drop(id: number): void {
    const scratch = this.host.slab.area();
    for (let i = 0; i < 1024; i++) {
      try {
        if (this.native.streamRecv(id, scratch) === null) return;
      } catch {
        return;
      }
    }
  }

  /** Gives the peer spare connection ids (needed for migration) and routes them here. */
  #issueCids(): void {
    const n = this.native;
    for (let i = 0; i < 8 && n.sourceCidsLeft() > 0; i++) {
      const cid = randomBytes(TUNING.cidLength);
      const token = BigInt("0x" + randomBytes(16).toString("hex"));
      try {
        n.newSourceCid(cid, token, false);
      } catch {
        return;
      }
      this.#cids.push(cid);
      this.host.route(cid, this);
    }
  }

  #addPath(local: HostPort, peer: HostPort): void {
    this.#dropPath(local, peer);
    this.probing.push([local, peer]);
    if (this.probing.length > 4) this.probing.shift();
  }

  #dropPath(local: HostPort, peer: HostPort): void {
    const same = (a: HostPort, b: HostPort) => a.port === b.port && a.host === b.host;
    this.probing = this.probing.filter(([l, p]) => !same(l, local) || !same(p, peer));
  }

  #paths(): void {
    const n = this.native;
    for (let i = 0; i < 64; i++) {
      const ev = n.pathEventNext();
      if (!ev) break;
      const m = this.#migration;
      const ours = (e: { local: HostPort; peer: HostPort }) =>
        m !== null && samePath(e.local, e.peer, m.local, m.peer);
      if (ev.type === "Validated" && ours(ev)) {
        try {
          const old = [this.local, this.remote] as const;
          this.native.migrate(ev.local, ev.peer);
          this.local = m!.local;
          this.remote = m!.peer;
          this.#dropPath(ev.local, ev.peer);
          // After a rebind, packets still in flight on the old path are recovered there (quiche
          // keeps recovery per path), so it stays served until its socket retires. A move to
          // another peer address on the same socket leaves nothing to retire: the old path is
          // not served (what it lost is sent again on the new one).
          if (old[0].port !== m!.local.port) this.#addPath(old[0], old[1]);
          m!.done(null);
        } catch (e) {
          // the new path cannot carry the connection: stay on the old one
          m!.done(new QuicError(`cannot migrate: ${e}`, { cause: e }));
        }
      }
      if (ev.type === "New") this.#addPath(ev.local, ev.peer);
      if (ev.type === "Closed") this.#dropPath(ev.local, ev.peer);
      const failed = (ev as { type: string }).type === "FailedValidation" || ev.type === "Closed";
      if (failed && "local" in ev && ours(ev)) {
        // The new path did not validate (probes lost): try again, a bounded number of times.
        if (++this.#migrateAttempts < TUNING.migrationProbes) {
          try {
            this.native.probePath(m!.local, m!.peer);
            this.#addPath(m!.local, m!.peer);
          } catch {
            this.#migrateAttempts = TUNING.migrationProbes;
          }
        }
        if (this.#migrateAttempts >= TUNING.migrationProbes) {
          m!.done(new QuicError(`the path to ${m!.peer.host}:${m!.peer.port} did not validate`));
        }
      }
      if (ev.type === "PeerMigrated") {
        const from = this.remote;
        this.remote = ev.new;
        this.#onPeerMigrated?.(from, ev.new);
      }
    }
    for (let i = 0; i < 64; i++) {
      const cid = n.retiredScidNext();
      if (!cid) break;
      this.host.route(cid, null);
      const k = this.#cids.findIndex((c) =>
        c.length === cid.length && c.every((b, j) => b === cid[j])
      );
      if (k >= 0) this.#cids.splice(k, 1);
    }
    const now = monoNow();
    if (this.state === "open" && now - this.#cidsCheckedAt > 1000) {
      this.#cidsCheckedAt = now;
      if (n.sourceCidsLeft() > 0) this.#issueCids();
    }
  }
}

/** Same path: local ports and peer addresses equal (`sameHost`). */
function samePath(l1: HostPort, p1: HostPort, l2: HostPort, p2: HostPort): boolean {
  return l1.port === l2.port && p1.port === p2.port && sameHost(p1.host, p2.host);
}
