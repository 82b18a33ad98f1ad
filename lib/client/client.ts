/**
 * The light client: one session to one node, over which an application publishes, subscribes,
 * calls and serves. It reconnects on its own (jittered exponential backoff) and restores its
 * subscriptions and procedures on the new session; the application sees no gap but the messages
 * published while it was away (at-most-once). docs/client.md is the guide.
 */
import { Verifier } from "../identity/verify.ts";
import { x509 } from "../identity/x509.ts";
import { type BufferOptions, type BufferStats, MessageBuffer } from "../messaging/buffer.ts";
import { busCodec, CLIENT_CHANNEL, DEFAULT_MAX_PAYLOAD } from "../messaging/frames.ts";
import { decodeJson, encodeJson } from "../messaging/json.ts";
import {
  checkPayloadSize,
  RPC_ERROR_NUMBERS,
  RpcError,
  rpcErrorCodeOf,
  type SelectionStrategy,
} from "../messaging/rpc.ts";
import { checkPattern, checkProcedure, checkTopic } from "../messaging/topics.ts";
import { checkQueueGroup } from "../messaging/trie.ts";
import { loadCredsDir } from "../node/credentials.ts";
import { backoffDelay } from "../peer/backoff.ts";
import { PeerSession } from "../peer/session.ts";
import { ChannelWriter } from "../peer/writer.ts";
import { QuicEndpoint } from "../quic/mod.ts";
import type { Frame } from "../wire/codec.ts";
import { parseUrl } from "./url.ts";
import { withTimeout as deadline } from "../util/timeout.ts";

/** PEM credentials: the realm CA, a certificate it issued, and that certificate's key. */
export interface ClientCredentials {
  ca: string;
  cert: string;
  key: string;
}

/** Where a client stands. */
export type ClientStatus = "connecting" | "connected" | "reconnecting" | "closed";

/** Options for `connect`. */
export interface ConnectOptions {
  /** The node, `quic://host:port`. Default `quic://127.0.0.1:4433`. */
  url?: string;
  /**
   * Credentials: a directory holding ca.pem, cert.pem and key.pem, or the PEM texts. Default
   * `./macula-data/client` (what a local `macula node up` writes).
   */
  creds?: string | ClientCredentials;
  /** Reconnect when the session drops. Default true. */
  reconnect?: boolean;
  /** Longest wait between reconnect attempts. Default 5 000 ms. */
  maxReconnectDelayMs?: number;
  /** How long the first connection may take. Default 10 000 ms. */
  connectTimeoutMs?: number;
  /** Bytes of publishes held while reconnecting; more are refused. Default 8 MiB. */
  reconnectBufferBytes?: number;
  /** Status changes, with a reason. */
  onStatus?: (status: ClientStatus, detail: string) => void;
  /** Errors the node reported that belong to no call (e.g. a refused publish). */
  onError?: (error: ClientError) => void;
}

/** A client-side failure: `code` is stable (`closed`, `disconnected`, `bad_topic`, …). */
export class ClientError extends Error {
  override name = "ClientError";
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

/** One received message. */
export class Message {
  constructor(readonly topic: string, readonly payload: Uint8Array) {}
  /** The payload as UTF-8 text. */
  text(): string {
    return new TextDecoder().decode(this.payload);
  }
  /** The payload parsed as JSON (`JsonError` when it is not). */
  json<T = unknown>(): T {
    return decodeJson(this.payload) as T;
  }
}

/** Subscription options: a queue group and the buffer bounds and overflow policy. */
export interface SubscribeOptions extends Omit<BufferOptions<Message>, "sizeOf"> {
  /** Join this queue group: each message goes to one member of the group. */
  queue?: string;
}

/** Counters of one subscription. */
export interface SubscriptionStats extends BufferStats {
  /** Messages the node dropped for this subscription because the connection was backed up. */
  droppedAtNode: number;
}

/** A subscription: iterate it for messages; `unsubscribe` (or `break`) ends it. */
export class Subscription implements AsyncIterable<Message> {
  /** @internal */ droppedAtNode = 0;
  /** @internal */ readonly buffer: MessageBuffer<Message>;

  /** @internal */
  constructor(
    readonly sid: number,
    readonly pattern: string,
    readonly queue: string | undefined,
    options: SubscribeOptions,
    private readonly client: Client,
  ) {
    this.buffer = new MessageBuffer<Message>({
      ...options,
      sizeOf: (m) => m.payload.length + m.topic.length,
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<Message> {
    const it = this.buffer[Symbol.asyncIterator]();
    return {
      next: () => it.next(),
      return: (v?: unknown) => {
        this.unsubscribe();
        return it.return ? it.return(v) : Promise.resolve({ done: true, value: undefined });
      },
    };
  }

  /** Stops the subscription; messages already buffered are still delivered to the iterator. */
  unsubscribe(): void {
    this.client.unsubscribeSid(this.sid);
    this.buffer.close();
  }

  /** True once unsubscribed or the client closed. */
  get closed(): boolean {
    return this.buffer.closed;
  }

  stats(): SubscriptionStats {
    return { ...this.buffer.stats(), droppedAtNode: this.droppedAtNode };
  }
}

/** What a procedure handler gets besides the payload. */
export interface CallContext {
  procedure: string;
  /** Aborted when the caller cancels or its deadline passes. */
  signal: AbortSignal;
}

/** A procedure handler: return the reply; throw to answer `handler_error` with the message. */
export type Handler = (payload: Uint8Array, ctx: CallContext) => Uint8Array | Promise<Uint8Array>;

/** A registered procedure; `stop()` unregisters it. */
export interface Registration {
  readonly procedure: string;
  /** Resolves once the node has the registration (and its peer nodes know). */
  readonly ready: Promise<void>;
  stop(): void;
}

/** Call options. */
export interface CallOptions {
  /** Deadline; default 5 000 ms. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** How the node picks among providers; default local-first. */
  strategy?: SelectionStrategy;
}

interface PendingCall {
  resolve: (v: Uint8Array) => void;
  reject: (e: Error) => void;
  done: () => void;
}

/** How long one reconnect attempt may take before a fresh one starts. */
const RECONNECT_ATTEMPT_MS = 3000;

/** Buffered messages in one subscription past which the reader lets consumers run first. */
const YIELD_AT = 256;

const enc = (name: string, fields: Record<string, unknown>) => busCodec.encode(name, fields);
const utf8 = new TextEncoder();

/** A connection to a node. Make one with `connect`. */
export class Client {
  #status: ClientStatus = "connecting";
  #session: PeerSession | null = null;
  #writer: ChannelWriter | null = null;
  #maxPayload = DEFAULT_MAX_PAYLOAD;
  #nodeId = "";
  readonly #subs = new Map<number, Subscription>();
  readonly #procs = new Map<string, Handler>();
  readonly #calls = new Map<number, PendingCall>();
  readonly #pings = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  readonly #serving = new Map<number, AbortController>();
  /** Frames written while disconnected, sent after the restore. */
  #held: Uint8Array[] = [];
  #heldBytes = 0;
  #ids = 1;
  #lastTopic = "";
  #connected: Promise<void>;
  #markConnected!: () => void;
  #closing = false;
  #attempt = 0;
  #wakeSleep: (() => void) | null = null;
  /** Connection attempts started; only the newest may become the session. */
  #dials = 0;

  private constructor(
    readonly url: string,
    private readonly target: { host: string; port: number },
    private readonly endpoint: QuicEndpoint,
    private readonly self: { nodeId: string; realm: string },
    private readonly opts: ConnectOptions,
  ) {
    this.#connected = new Promise((r) => (this.#markConnected = r));
  }

  /** @internal Use `connect`. */
  static async connect(opts: ConnectOptions = {}): Promise<Client> {
    const url = opts.url ?? "quic://127.0.0.1:4433";
    const target = parseUrl(url, "url");
    const creds = typeof opts.creds === "object"
      ? opts.creds
      : await loadCredsDir(opts.creds ?? "macula-data/client");
    const verifier = await Verifier.create({ ca: creds.ca });
    let me;
    try {
      me = await verifier.verify([new Uint8Array(new x509.X509Certificate(creds.cert).rawData)]);
    } catch (e) {
      throw new ClientError(
        "credentials",
        `credentials: this client's certificate: ${(e as Error).message}`,
      );
    }
    const endpoint = await QuicEndpoint.bind({
      host: target.host.includes(":") ? "::" : "0.0.0.0",
      port: 0,
      acceptIncoming: false,
      tls: { ca: creds.ca, cert: creds.cert, key: creds.key },
      checkPeer: verifier.checkPeer(),
    });
    const client = new Client(
      target.url,
      target,
      endpoint,
      { nodeId: me.nodeId, realm: me.realm },
      opts,
    );
    const timeoutMs = opts.connectTimeoutMs ?? 10_000;
    try {
      await withTimeout(client.#dial(), timeoutMs, `connecting to ${target.url}`);
    } catch (e) {
      await endpoint.close("connect failed");
      throw e instanceof ClientError
        ? e
        : new ClientError("connect", `cannot connect to ${target.url}: ${(e as Error).message}`);
    }
    return client;
  }

  /** This client's node id (from its certificate). */
  get id(): string {
    return this.self.nodeId;
  }

  /** The node this client is attached to (empty while connecting). */
  get nodeId(): string {
    return this.#nodeId;
  }

  get status(): ClientStatus {
    return this.#status;
  }

  /** Largest payload the node accepts. */
  get maxPayload(): number {
    return this.#maxPayload;
  }

  // ------------------------------------------------------------------ pub/sub

  /**
   * Publishes one message (at most once). Throws `TopicError` for a bad topic, `ClientError`
   * `payload_too_large`, `closed`, or `disconnected` when the reconnect buffer is full.
   */
  publish(topic: string, payload: Uint8Array | string = new Uint8Array(0)): void {
    if (topic !== this.#lastTopic) {
      checkTopic(topic);
      this.#lastTopic = topic;
    }
    const bytes = typeof payload === "string" ? utf8.encode(payload) : payload;
    if (bytes.length > this.#maxPayload) {
      throw new ClientError(
        "payload_too_large",
        `publish ${topic}: ${bytes.length} bytes, over the node's limit of ${this.#maxPayload}`,
      );
    }
    this.#send(enc("PUB", { topic, payload: bytes }), true);
  }

  /** Publishes `value` as JSON. */
  publishJson(topic: string, value: unknown): void {
    this.publish(topic, encodeJson(value));
  }

  /** Subscribes to a pattern (`*` one segment, `>` the rest). Throws `TopicError` when invalid. */
  subscribe(pattern: string, options: SubscribeOptions = {}): Subscription {
    this.#open();
    checkPattern(pattern);
    if (options.queue !== undefined) checkQueueGroup(options.queue);
    const sid = this.#ids++;
    const sub = new Subscription(sid, pattern, options.queue, options, this);
    this.#subs.set(sid, sub);
    this.#send(enc("SUB", { sid, pattern, queue: options.queue }), false);
    return sub;
  }

  /** @internal */
  unsubscribeSid(sid: number): void {
    if (!this.#subs.delete(sid)) return;
    if (!this.#closing) this.#send(enc("UNSUB", { sid }), false);
  }

  /**
   * Resolves once the node has processed everything this client sent before, and its peer nodes
   * have seen the resulting subscriptions and registrations.
   */
  async flush(timeoutMs = 10_000): Promise<void> {
    this.#open();
    const deadline = performance.now() + timeoutMs;
    if (this.#status !== "connected") {
      // While reconnecting: the flush is about the session the client gets back.
      await withTimeout(this.#connected, timeoutMs, `flush: waiting for ${this.url}`);
    }
    const id = this.#ids++;
    const pong = new Promise<void>((resolve, reject) => this.#pings.set(id, { resolve, reject }));
    this.#send(enc("PING", { id }), false);
    try {
      await withTimeout(pong, Math.max(0, deadline - performance.now()), "flush");
    } finally {
      this.#pings.delete(id);
    }
  }

  // ------------------------------------------------------------------ RPC

  /**
   * Calls a procedure. Rejects with `RpcError`: `no_provider`, `timeout`, `handler_error` (the
   * provider's message), `payload_too_large`, `cancelled`, `unavailable`, `bad_request`.
   */
  async call(
    procedure: string,
    payload: Uint8Array | string = new Uint8Array(0),
    o: CallOptions = {},
  ): Promise<Uint8Array> {
    const bytes = typeof payload === "string" ? utf8.encode(payload) : payload;
    try {
      checkProcedure(procedure);
    } catch (e) {
      throw new RpcError("bad_request", (e as Error).message);
    }
    checkPayloadSize(bytes, this.#maxPayload);
    if (this.#closing) throw new RpcError("unavailable", "the client is closed");
    const timeoutMs = o.timeoutMs ?? 5000;
    const deadline = performance.now() + timeoutMs;
    if (o.signal?.aborted) {
      throw new RpcError("cancelled", `${procedure}: cancelled before it was sent`);
    }
    if (this.#status !== "connected") {
      await withTimeout(this.#connected, timeoutMs, "waiting for the node").catch(() => {
        throw new RpcError(
          "timeout",
          `${procedure}: not connected to ${this.url} within ${timeoutMs} ms`,
        );
      });
    }
    const id = this.#ids++;
    return await new Promise<Uint8Array>((resolve, reject) => {
      const stop = (e: RpcError) => {
        if (!this.#calls.has(id)) return;
        call.done();
        this.#send(enc("CANCEL", { id }), false);
        reject(e);
      };
      const timer = setTimeout(
        () => stop(new RpcError("timeout", `${procedure}: no reply within ${timeoutMs} ms`)),
        Math.max(0, deadline - performance.now()),
      );
      const onAbort = () =>
        stop(new RpcError("cancelled", `${procedure}: cancelled by the caller`));
      o.signal?.addEventListener("abort", onAbort, { once: true });
      const call: PendingCall = {
        resolve,
        reject,
        done: () => {
          this.#calls.delete(id);
          clearTimeout(timer);
          o.signal?.removeEventListener("abort", onAbort);
        },
      };
      this.#calls.set(id, call);
      const remaining = Math.max(1, Math.round(deadline - performance.now()));
      this.#send(
        enc("CALL", {
          id,
          proc: procedure,
          payload: bytes,
          timeout_ms: remaining,
          strategy: o.strategy,
        }),
        false,
      );
    });
  }

  /** Alias of `call`. */
  request(procedure: string, payload?: Uint8Array | string, o?: CallOptions): Promise<Uint8Array> {
    return this.call(procedure, payload, o);
  }

  /** Calls with a JSON value and parses the JSON reply. */
  async callJson<T = unknown>(procedure: string, value: unknown, o?: CallOptions): Promise<T> {
    return decodeJson(await this.call(procedure, encodeJson(value), o)) as T;
  }

  /**
   * Serves a procedure until `stop()`. Several clients may serve the same procedure; the node
   * picks one per call. Throws when this client already serves it.
   */
  serve(procedure: string, handler: Handler): Registration {
    this.#open();
    checkProcedure(procedure);
    if (this.#procs.has(procedure)) {
      throw new ClientError("duplicate", `this client already serves ${procedure}`);
    }
    this.#procs.set(procedure, handler);
    this.#send(enc("REG", { proc: procedure }), false);
    const ready = this.flush();
    ready.catch(() => {});
    return {
      procedure,
      ready,
      stop: () => {
        if (this.#procs.get(procedure) !== handler) return;
        this.#procs.delete(procedure);
        if (!this.#closing) this.#send(enc("UNREG", { proc: procedure }), false);
      },
    };
  }

  /** Alias of `serve`. */
  register(procedure: string, handler: Handler): Registration {
    return this.serve(procedure, handler);
  }

  // ------------------------------------------------------------------ inspection

  /**
   * The attached node's view, for `macula inspect`: `"members"` (the realm's members it knows,
   * with state, incarnation and how long ago that last changed) or `"node"` (its snapshot).
   */
  async inspect(what: "members" | "node", timeoutMs = 5000): Promise<unknown> {
    this.#open();
    const s = this.#session;
    if (!s || this.#status !== "connected") {
      throw new ClientError("disconnected", `not connected to ${this.url}`);
    }
    const bytes = await s.request(`inspect.${what}`, new Uint8Array(0), { timeoutMs });
    return JSON.parse(new TextDecoder().decode(bytes));
  }

  /**
   * Asks the attached node to reach node `target` (by id) and ping it once: the path it took
   * (`direct`, `punched`, `relayed`), the round trip, and what it tried first. `relayOnly` goes
   * through a relay even when a direct path exists; `upgrade` first tries to move a relayed
   * session to a direct path (instead of waiting for the node's next scheduled try).
   */
  async ping(
    target: string,
    o: { relayOnly?: boolean; upgrade?: boolean; timeoutMs?: number } = {},
  ): Promise<{ path: string; rttMs: number; via?: string; tried: string[] }> {
    this.#open();
    const s = this.#session;
    if (!s || this.#status !== "connected") {
      throw new ClientError("disconnected", `not connected to ${this.url}`);
    }
    const bytes = await s.request(
      "nat.ping",
      new TextEncoder().encode(
        JSON.stringify({ target, relayOnly: o.relayOnly === true, upgrade: o.upgrade === true }),
      ),
      { timeoutMs: o.timeoutMs ?? 30_000 },
    );
    return JSON.parse(new TextDecoder().decode(bytes));
  }

  // ------------------------------------------------------------------ lifecycle

  /** Flushes what is queued (bounded), says goodbye, and closes. Subscriptions end. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    this.#wakeSleep?.();
    const w = this.#writer;
    for (let i = 0; w && i < 100 && w.backlog > 0 && !w.error; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    for (const c of [...this.#calls.values()]) {
      c.done();
      c.reject(new RpcError("unavailable", "the client closed"));
    }
    for (const ac of this.#serving.values()) ac.abort();
    for (const p of this.#pings.values()) p.reject(new ClientError("closed", "the client closed"));
    for (const s of this.#subs.values()) s.buffer.close();
    this.#subs.clear();
    this.#setStatus("closed", "closed by the application");
    await this.#session?.close("client closed").catch(() => {});
    await this.endpoint.close("client closed");
  }

  #open(): void {
    if (this.#closing) throw new ClientError("closed", "the client is closed");
  }

  #setStatus(s: ClientStatus, detail: string): void {
    if (this.#status === s || this.#status === "closed") return; // closed is final
    this.#status = s;
    this.opts.onStatus?.(s, detail);
  }

  /**
   * Sends a frame now, or holds it until the session is back. Publishes beyond the reconnect
   * buffer are refused; control frames are not held (the restore re-sends the state).
   */
  #send(frame: Uint8Array, isPublish: boolean): void {
    if (this.#closing && isPublish) throw new ClientError("closed", "the client is closed");
    const w = this.#writer;
    if (w && this.#status === "connected" && !w.error) {
      w.write(frame);
      return;
    }
    if (!isPublish) return; // SUB/REG are restored from state; CALL/PING wait for `#connected`
    const limit = this.opts.reconnectBufferBytes ?? 8 * 1024 * 1024;
    if (this.#heldBytes + frame.length > limit) {
      throw new ClientError(
        "disconnected",
        `not connected to ${this.url} and the reconnect buffer (${limit} bytes) is full`,
      );
    }
    this.#held.push(frame);
    this.#heldBytes += frame.length;
  }

  async #dial(): Promise<void> {
    const attempt = ++this.#dials;
    const conn = await this.endpoint.connect(this.target);
    let info: ((f: Frame) => void) | null = null;
    const gotInfo = new Promise<Frame>((r) => (info = r));
    const session = await PeerSession.dial(conn, {
      self: this.self,
      onChannel: (_name, bodies) => void this.#read(bodies, (f) => info?.(f)),
    });
    const stream = await session.openChannel(CLIENT_CHANNEL);
    const first = await withTimeout(gotInfo, 5000, "waiting for the node's INFO");
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
    for (const s of this.#subs.values()) {
      writer.write(enc("SUB", { sid: s.sid, pattern: s.pattern, queue: s.queue }));
    }
    for (const p of this.#procs.keys()) writer.write(enc("REG", { proc: p }));
    for (const h of this.#held) writer.write(h);
    this.#held = [];
    this.#heldBytes = 0;
    this.#writer = writer;
    this.#attempt = 0;
    this.#setStatus("connected", `attached to node ${f.node.slice(0, 12)}… at ${this.url}`);
    this.#markConnected();
    void session.closed.then((ci) => this.#lost(session, ci.reason || `code ${ci.code}`));
  }

  /** The session dropped: fail what was in flight, then reconnect (unless closing). */
  #lost(session: PeerSession, why: string): void {
    if (this.#session !== session) return;
    this.#session = null;
    this.#writer = null;
    for (const c of [...this.#calls.values()]) {
      c.done();
      c.reject(new RpcError("unavailable", `the connection to ${this.url} was lost: ${why}`));
    }
    for (const ac of this.#serving.values()) ac.abort();
    this.#serving.clear();
    for (const p of this.#pings.values()) {
      p.reject(
        new ClientError("disconnected", `flush: the connection to ${this.url} was lost (${why})`),
      );
    }
    this.#pings.clear();
    if (this.#closing) return;
    if (this.opts.reconnect === false) {
      this.#closing = true;
      for (const s of this.#subs.values()) s.buffer.close();
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
      const wait = backoffDelay(this.#attempt++, Math.random, {
        baseMs: 100,
        maxMs: this.opts.maxReconnectDelayMs ?? 5000,
      });
      await new Promise<void>((r) => {
        const t = setTimeout(r, wait);
        this.#wakeSleep = () => {
          clearTimeout(t);
          r();
        };
      });
      this.#wakeSleep = null;
      if (this.#closing) return;
      try {
        // A node that is down gives QUIC no refusal, only silence: a fresh attempt every few
        // seconds beats the handshake's own doubling retransmission timer.
        await withTimeout(this.#dial(), RECONNECT_ATTEMPT_MS, "reconnecting");
        return;
      } catch (e) {
        if (this.#closing) return;
        this.opts.onStatus?.(
          "reconnecting",
          `attempt ${this.#attempt} failed: ${(e as Error).message}`,
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
            const { sid, topic, payload } = f.fields as {
              sid: number;
              topic: string;
              payload: Uint8Array;
            };
            const sub = this.#subs.get(sid);
            if (!sub) continue; // unsubscribed meanwhile
            const m = new Message(topic, payload);
            let r = sub.buffer.push(m);
            // `block`: stop reading, so QUIC flow control pushes back on the node.
            for (let i = 0; r === "full" && i < 1_000_000; i++) {
              await sub.buffer.writable();
              r = sub.buffer.push(m);
            }
            if (sub.buffer.length > deepest) deepest = sub.buffer.length;
            continue;
          }
          this.#frame(f, info);
        }
        if (deepest >= YIELD_AT) await new Promise((r) => setImmediate(r));
      }
    } catch (e) {
      this.#session?.conn.close(0x12, `protocol: ${(e as Error).message}`.slice(0, 200));
    }
  }

  #frame(f: Frame, info: (f: Frame) => void): void {
    const x = f.fields as Record<string, unknown>;
    switch (f.name) {
      case "INFO":
        return info(f);
      case "REPLY": {
        const c = this.#calls.get(x.id as number);
        if (!c) return;
        c.done();
        return c.resolve(x.payload as Uint8Array);
      }
      case "FAIL": {
        const c = this.#calls.get(x.id as number);
        if (!c) return;
        c.done();
        return c.reject(
          new RpcError(rpcErrorCodeOf(x.code as number) ?? "handler_error", x.message as string),
        );
      }
      case "CALL":
        return void this.#serveCall(x.id as number, x.proc as string, x.payload as Uint8Array);
      case "CANCEL":
        this.#serving.get(x.id as number)?.abort();
        this.#serving.delete(x.id as number);
        return;
      case "PONG":
        return this.#pings.get(x.id as number)?.resolve();
      case "LOST": {
        const sub = this.#subs.get(x.sid as number);
        if (sub) sub.droppedAtNode += x.count as number;
        return;
      }
      case "ERROR": {
        const err = new ClientError(x.code as string, `node ${this.url}: ${x.message as string}`);
        if (this.opts.onError) this.opts.onError(err);
        else console.error(`macula client: ${err.message}`);
        return;
      }
      default:
        throw new Error(`${f.name}: not expected from a node`);
    }
  }

  async #serveCall(id: number, proc: string, payload: Uint8Array): Promise<void> {
    const w = this.#writer;
    const handler = this.#procs.get(proc);
    const fail = (code: keyof typeof RPC_ERROR_NUMBERS, message: string) =>
      w?.write(enc("FAIL", { id, code: RPC_ERROR_NUMBERS[code], message: message.slice(0, 4000) }));
    if (!handler) return void fail("no_provider", `this client does not serve ${proc}`);
    const ac = new AbortController();
    this.#serving.set(id, ac);
    let out: Uint8Array;
    try {
      out = await handler(payload, { procedure: proc, signal: ac.signal });
    } catch (e) {
      if (this.#serving.delete(id)) {
        fail("handler_error", e instanceof Error ? e.message : String(e));
      }
      return;
    }
    if (!this.#serving.delete(id)) return; // cancelled meanwhile
    if (!(out instanceof Uint8Array)) {
      return void fail("handler_error", `the handler of ${proc} returned ${typeof out}, not bytes`);
    }
    if (out.length > this.#maxPayload) {
      return void fail(
        "payload_too_large",
        `the reply of ${proc} is ${out.length} bytes, over the limit of ${this.#maxPayload}`,
      );
    }
    w?.write(enc("REPLY", { id, payload: out }));
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return deadline(p, ms, () => new ClientError("timeout", `${what}: no answer within ${ms} ms`));
}

/**
 * Connects to a node.
 *
 * @example
 * ```ts
 * import { connect } from "macula";
 * const c = await connect({ url: "quic://127.0.0.1:4433", creds: "macula-data/client" });
 * const sub = c.subscribe("greetings.*");
 * c.publish("greetings.en", "hello");
 * for await (const m of sub) { console.log(m.topic, m.text()); break; }
 * await c.close();
 * ```
 */
export function connect(options: ConnectOptions = {}): Promise<Client> {
  return Client.connect(options);
}
