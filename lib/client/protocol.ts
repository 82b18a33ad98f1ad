/**
 * The client's side of the bus protocol (docs/wire-protocol.md) with one node: dialling (QUIC, the
 * peer session, the bus channel), the node's `INFO`, restoring the client's state on each new
 * session, holding publishes while there is none, the reconnect loop (jittered backoff), and
 * reading and dispatching the frames the node sends. What the frames mean to the application is
 * the client's business: `ProtocolHooks`.
 */
import { busCodec, CLIENT_CHANNEL, DEFAULT_MAX_PAYLOAD, ProtocolError } from "../messaging/mod.ts";
import { ChannelWriter, type NodeUrl, PeerSession } from "../peer/mod.ts";
import type { QuicEndpoint } from "../quic/mod.ts";
import { Backoff, Sleeper } from "../util/mod.ts";
import type { Frame } from "../wire/mod.ts";
import { ClientError, deadline } from "./errors.ts";
import { Message } from "./message.ts";
import { type ClientStatus, type ConnectOptions, DEFAULTS } from "./options.ts";
import type { Subscription } from "./subscription.ts";

/** Encodes one bus frame. */
export function encode(name: string, fields: Record<string, unknown>): Uint8Array {
  return busCodec.encode(name, fields);
}

/** What the protocol needs of the client: its state, and where the node's frames go. */
export interface ProtocolHooks {
  /** Writes what restores the client on a new session (its `SUB`s and `REG`s), before anything. */
  restore(write: (frame: Uint8Array) => void): void;
  /** The subscription a `MSG` or `LOST` is for (undefined once unsubscribed). */
  subscription(sid: number): Subscription | undefined;
  /** `REPLY` to call `id`. */
  reply(id: number, payload: Uint8Array): void;
  /** `FAIL` of call `id`: the error's wire number and message. */
  fail(id: number, code: number, message: string): void;
  /** `CALL`: run procedure `proc` for the node (with the caller's trace context, if traced). */
  call(
    id: number,
    proc: string,
    payload: Uint8Array,
    traceparent: unknown,
    tracestate: unknown,
  ): void;
  /**
   * A `MSG` that carried a trace context (checked: the valid part, or none), for `sub`; returns
   * the message to deliver and what to call once it is in the subscription's buffer.
   */
  traced(
    sub: Subscription,
    topic: string,
    payload: Uint8Array,
    traceparent: unknown,
    tracestate: unknown,
  ): { message: Message; done(result: string): void };
  /** `CANCEL` of a call the node handed this client. */
  cancel(id: number): void;
  /** `PONG` to `PING` `id`. */
  pong(id: number): void;
  /**
   * The node refused something on this session (`ERROR`): with `sid` a subscription, with `proc`
   * a registration, neither for a publish. `code` is the ERROR code (`permission_denied`,
   * `bad_topic`…), `error` the `ClientError` that says it. True when it reached what it was
   * about (the subscription's loop, the registration's `ready`); else it goes to `onError`.
   */
  refused(error: ClientError, at: { sid?: number; proc?: string }): boolean;
  /** The session dropped: fail what was in flight on it. */
  disconnected(why: string): void;
  /** The session dropped and the client will not reconnect: it is closed. */
  ended(): void;
}

/**
 * One client's protocol with its node: `dial` the first session, then it keeps one (reconnecting
 * until `beginClose`), and `send` writes a frame now or holds it for the next session.
 */
export class ProtocolHandler {
  #status: ClientStatus = "connecting";
  #session: PeerSession | null = null;
  #writer: ChannelWriter | null = null;
  #maxPayload = DEFAULT_MAX_PAYLOAD;
  #nodeId = "";
  /** Frames written while disconnected, sent after the restore. */
  #held: Uint8Array[] = [];
  #heldBytes = 0;
  #connected: Promise<void>;
  #markConnected!: () => void;
  #closing = false;
  readonly #backoff: Backoff;
  /** The reconnect loop sleeps here, so `beginClose` need not wait out a delay. */
  readonly #sleeper = new Sleeper();
  /** Connection attempts started; only the newest may become the session. */
  #dials = 0;
  /**
   * Publishes written on the current session, and how many of them a PONG has confirmed the
   * node processed (`mark`, `confirm`): the rest may be lost if the session drops.
   */
  #written = 0;
  #confirmed = 0;
  #epoch = 0;
  /** Publishes written on sessions that then dropped before a flush confirmed them. */
  maybeLost = 0;

  constructor(
    readonly url: string,
    private readonly target: NodeUrl,
    private readonly endpoint: QuicEndpoint,
    private readonly self: { nodeId: string; realm: string },
    private readonly opts: ConnectOptions,
    private readonly hooks: ProtocolHooks,
  ) {
    this.#connected = new Promise((r) => (this.#markConnected = r));
    this.#backoff = new Backoff(Math.random, {
      baseMs: DEFAULTS.reconnectBaseMs,
      maxMs: opts.maxReconnectDelayMs ?? DEFAULTS.maxReconnectDelayMs,
    });
  }

  get status(): ClientStatus {
    return this.#status;
  }

  /** The node attached to (empty while connecting). */
  get nodeId(): string {
    return this.#nodeId;
  }

  /** Largest payload the node accepts (from its `INFO`). */
  get maxPayload(): number {
    return this.#maxPayload;
  }

  /** The current session, or null while there is none. */
  get session(): PeerSession | null {
    return this.#session;
  }

  /** The current session's bus writer, or null while there is none. */
  get writer(): ChannelWriter | null {
    return this.#writer;
  }

  /**
   * Resolves once the session's queue to the node has drained (QUIC took what was published), at
   * once while there is no session (publishes are then held, up to the reconnect buffer).
   */
  writable(): Promise<void> {
    const w = this.#writer;
    if (!w || this.#status !== "connected" || w.error) return Promise.resolve();
    return w.drained();
  }

  /** Resolves once there is a session (the current one, or the next after a loss). */
  get connected(): Promise<void> {
    return this.#connected;
  }

  /** True from `beginClose` (or a loss without reconnecting) on. */
  get closing(): boolean {
    return this.#closing;
  }

  /**
   * Sends a frame now, or holds it until the session is back. Publishes beyond the reconnect
   * buffer are refused; control frames are not held (the restore re-sends the state).
   */
  send(frame: Uint8Array, isPublish: boolean): void {
    if (this.#closing && isPublish) throw new ClientError("closed", "the client is closed");
    const w = this.#writer;
    if (w && this.#status === "connected" && !w.error) {
      if (isPublish) {
        const max = this.opts.maxPendingBytes ?? DEFAULTS.maxPendingBytes;
        // (A frame alone may be larger than the bound: it goes once the queue is empty.)
        if (w.backlog > 0 && w.backlog + frame.length > max) {
          throw new ClientError(
            "backlog_full",
            `${w.backlog} bytes are waiting to go to ${this.url}, and maxPendingBytes is ${max}: a publish loop awaits c.writable() between bursts`,
          );
        }
      }
      w.write(frame);
      if (isPublish) this.#written++;
      return;
    }
    if (!isPublish) return; // SUB/REG are restored from state; CALL/PING wait for `connected`
    const limit = this.opts.reconnectBufferBytes ?? DEFAULTS.reconnectBufferBytes;
    if (this.#heldBytes + frame.length > limit) {
      throw new ClientError(
        "disconnected",
        `not connected to ${this.url} and the reconnect buffer (${limit} bytes) is full`,
      );
    }
    this.#held.push(frame);
    this.#heldBytes += frame.length;
  }

  /**
   * Opens a session: QUIC, the peer handshake, the bus channel, the node's `INFO`; then restores
   * the client's state on it and sends what was held. Resolves once connected.
   */
  async dial(): Promise<void> {
    const attempt = ++this.#dials;
    const conn = await this.endpoint.connect(this.target);
    let info: ((f: Frame) => void) | null = null;
    const gotInfo = new Promise<Frame>((r) => (info = r));
    let session: PeerSession;
    let stream: Awaited<ReturnType<PeerSession["openChannel"]>>;
    let first: Frame;
    try {
      session = await PeerSession.dial(conn, {
        self: this.self,
        onChannel: (_name, bodies) => void this.#read(bodies, (f) => info?.(f)),
      });
      stream = await session.openChannel(CLIENT_CHANNEL);
      first = await deadline(gotInfo, DEFAULTS.infoTimeoutMs, "waiting for the node's INFO");
    } catch (e) {
      // The node closed the connection (it refused this certificate: revoked, expired, another
      // realm): say what it said, not that the connection is closing.
      const why = await deadline(conn.closed, 1000, "close").catch(() => null);
      if (why && why.initiator === "peer" && why.reason) {
        throw new ClientError("refused", `the node refused this client: ${why.reason}`, {
          cause: e,
        });
      }
      throw e;
    }
    info = null;
    if (this.#closing || attempt !== this.#dials) {
      // close() ran, or this attempt timed out and a newer one started, while it was in flight.
      await session.close(this.#closing ? "client closed" : "superseded by a newer attempt");
      return;
    }
    const f = first.fields as { node: string; max_payload: number };
    this.#nodeId = f.node;
    this.#maxPayload = f.max_payload;
    this.#session = session;
    const writer = new ChannelWriter(stream, () => void session.conn.close(0, "bus stream failed"));
    // Restore: subscriptions, procedures, then what was published while away.
    this.hooks.restore((frame) => writer.write(frame));
    for (const h of this.#held) writer.write(h);
    this.#epoch++;
    this.#written = this.#held.length;
    this.#confirmed = 0;
    this.#held = [];
    this.#heldBytes = 0;
    this.#writer = writer;
    this.#backoff.reset();
    this.#setStatus("connected", `attached to node ${f.node.slice(0, 12)}… at ${this.url}`);
    this.#markConnected();
    void session.closed.then((ci) => this.#lost(session, ci.reason || `code ${ci.code}`));
  }

  /**
   * The first half of closing: no more reconnecting, and what is queued gets a bounded time to
   * leave. Then the client fails what is pending, and calls `finishClose`.
   */
  async beginClose(): Promise<void> {
    this.#closing = true;
    this.#sleeper.wakeAll();
    const w = this.#writer;
    for (let i = 0; w && i < DEFAULTS.closePolls && w.backlog > 0 && !w.error; i++) {
      await new Promise((r) => setTimeout(r, DEFAULTS.closePollMs));
    }
  }

  /** The second half: the status becomes `closed`, the session and the endpoint close. */
  async finishClose(why: string): Promise<void> {
    this.#setStatus("closed", why);
    await this.#session?.close("client closed").catch(() => {});
    await this.endpoint.close("client closed");
  }

  #setStatus(s: ClientStatus, detail: string): void {
    if (this.#status === s || this.#status === "closed") return; // closed is final
    this.#status = s;
    this.opts.onStatus?.(s, detail);
  }

  /** Where a flush's PING stands among the publishes of this session (`confirm` on its PONG). */
  mark(): { epoch: number; written: number } {
    return { epoch: this.#epoch, written: this.#written };
  }

  /** A PONG: the node processed every publish written before `m` (on that session). */
  confirm(m: { epoch: number; written: number }): void {
    if (m.epoch === this.#epoch) this.#confirmed = Math.max(this.#confirmed, m.written);
  }

  /** The session dropped: fail what was in flight, then reconnect (unless closing). */
  #lost(session: PeerSession, why: string): void {
    if (this.#session !== session) return;
    this.#session = null;
    this.#writer = null;
    // At most once: what the node did not confirm may be lost. Said, and counted, not silent.
    const unconfirmed = this.#written - this.#confirmed;
    this.#written = this.#confirmed = 0;
    this.maybeLost += unconfirmed;
    if (unconfirmed > 0) {
      why += `; ${unconfirmed} message${
        unconfirmed === 1 ? "" : "s"
      } published on it since the last flush may be lost`;
    }
    this.hooks.disconnected(why);
    if (this.#closing) return;
    if ((this.opts.reconnect ?? DEFAULTS.reconnect) === false) {
      this.#closing = true;
      this.hooks.ended();
      this.#setStatus("closed", `connection lost: ${why}`);
      void this.endpoint.close("connection lost");
      return;
    }
    this.#connected = new Promise((r) => (this.#markConnected = r));
    this.#setStatus("reconnecting", `connection lost: ${why}`);
    void this.#reconnect();
  }

  async #reconnect(): Promise<void> {
    while (!this.#closing) {
      await this.#sleeper.sleep(this.#backoff.next());
      if (this.#closing) return;
      try {
        // A node that is down gives QUIC no refusal, only silence: a fresh attempt every few
        // seconds beats the handshake's own doubling retransmission timer.
        await deadline(this.dial(), DEFAULTS.reconnectAttemptMs, "reconnecting");
        return;
      } catch (e) {
        if (this.#closing) return;
        this.opts.onStatus?.(
          "reconnecting",
          `attempt ${this.#backoff.attempts} failed: ${
            (e as Error).message.replace(/^reconnecting: /, "")
          }`,
        );
      }
    }
  }

  async #read(bodies: AsyncIterable<Uint8Array[]>, info: (f: Frame) => void): Promise<void> {
    try {
      for await (const batch of bodies) {
        // Consumers take one message per microtask hop while this loop takes a chunk: when a
        // buffer fills up, give them a macrotask to catch up before reading on, so a consumer
        // that keeps up on average never overflows just because of scheduling.
        let deepest = 0;
        for (const body of batch) {
          const f = busCodec.decodeBody(body);
          if ("unknown" in f) continue;
          if (f.name === "MSG") {
            const { sid, topic, payload, traceparent, tracestate } = f.fields as {
              sid: number;
              topic: string;
              payload: Uint8Array;
              traceparent: string | null;
              tracestate: string | null;
            };
            const sub = this.hooks.subscription(sid);
            if (!sub) continue; // unsubscribed meanwhile
            // A traced message (rare): its receive span is the client's business.
            const traced = traceparent === null && tracestate === null
              ? undefined
              : this.hooks.traced(sub, topic, payload, traceparent, tracestate);
            const m = traced === undefined ? new Message(topic, payload) : traced.message;
            let r = sub.buffer.push(m);
            // `block`: stop reading, so QUIC flow control pushes back on the node.
            for (let i = 0; r === "full" && i < 1_000_000; i++) {
              await sub.buffer.writable();
              r = sub.buffer.push(m);
            }
            traced?.done(r);
            if (sub.buffer.length > deepest) deepest = sub.buffer.length;
            continue;
          }
          this.#dispatch(f, info);
        }
        if (deepest >= DEFAULTS.yieldAt) await new Promise((r) => setImmediate(r));
      }
    } catch (e) {
      this.#session?.conn.close(0x12, `protocol: ${(e as Error).message}`.slice(0, 200));
    }
  }

  /** One frame from the node other than `MSG`. Throws on a frame a node must not send. */
  #dispatch(f: Frame, info: (f: Frame) => void): void {
    const x = f.fields as Record<string, unknown>;
    switch (f.name) {
      case "INFO":
        return info(f);
      case "REPLY":
        return this.hooks.reply(x.id as number, x.payload as Uint8Array);
      case "FAIL":
        return this.hooks.fail(x.id as number, x.code as number, x.message as string);
      case "CALL":
        return this.hooks.call(
          x.id as number,
          x.proc as string,
          x.payload as Uint8Array,
          x.traceparent,
          x.tracestate,
        );
      case "CANCEL":
        return this.hooks.cancel(x.id as number);
      case "PONG":
        return this.hooks.pong(x.id as number);
      case "LOST": {
        const sub = this.hooks.subscription(x.sid as number);
        if (sub) sub.droppedAtNode += x.count as number;
        return;
      }
      case "ERROR": {
        const err = new ClientError(
          x.code as string,
          `node ${this.url}: ${x.code as string}: ${x.message as string}`,
        );
        const at: { sid?: number; proc?: string } = {};
        if (typeof x.sid === "number") at.sid = x.sid;
        if (typeof x.proc === "string") at.proc = x.proc;
        if (this.hooks.refused(err, at)) return;
        if (this.opts.onError) this.opts.onError(err);
        else console.error(`macula client: ${err.message}`);
        return;
      }
      default:
        throw new ProtocolError(`${f.name}: not expected from a node`);
    }
  }
}
