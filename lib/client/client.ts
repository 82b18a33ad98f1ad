/**
 * The light client: one session to one node, over which an application publishes, subscribes,
 * calls and serves. It reconnects on its own (jittered exponential backoff) and restores its
 * subscriptions and procedures on the new session; the application sees no gap but the messages
 * published while it was away (at-most-once). docs/client.md is the guide.
 *
 * This file composes the parts, one concept per file: options.ts (options and `DEFAULTS`),
 * errors.ts, message.ts, subscription.ts, request.ts (calls in flight), serve.ts (procedures
 * served), protocol.ts (the session with the node: dial, restore, reconnect, frame dispatch).
 * lib/client/mod.ts is the layer's public API.
 */
import { Buffer } from "node:buffer";
import { createPrivateKey, type KeyObject } from "node:crypto";
import { join } from "node:path";
import { CREDS_FILES, loadCredsDir, spkiOf, Verifier, x509 } from "../identity/mod.ts";
import {
  checkPattern,
  checkPayloadSize,
  checkProcedure,
  checkQueueGroup,
  checkTopic,
  decodeJson,
  encodeJson,
  RpcError,
} from "../messaging/mod.ts";
import { NAT_PING } from "../nat/mod.ts";
import { CRL_PUSH } from "../policy/mod.ts";
import { INSPECT_DHT, INSPECT_INTEREST, INSPECT_MEMBERS, INSPECT_NODE } from "../observe/mod.ts";
import { ask, type NodeUrl, parseUrl } from "../peer/mod.ts";
import { QuicEndpoint } from "../quic/mod.ts";
import { monoNow, withTimeout } from "../util/mod.ts";
import { context as otelContext, trace as otelTrace } from "@opentelemetry/api";
import { ClientError, deadline } from "./errors.ts";
import { Message } from "./message.ts";
import {
  type CallOptions,
  type ClientCredentials,
  type ClientStatus,
  type ConnectOptions,
  DEFAULTS,
  type SubscribeOptions,
} from "./options.ts";
import { encode, ProtocolHandler } from "./protocol.ts";
import { Caller } from "./request.ts";
import { type Handler, Procedures, type Registration } from "./serve.ts";
import { Subscription } from "./subscription.ts";
import { ClientTracing, failSpan, remoteParent, SpanKind, type WireContext } from "./tracing.ts";

export { ClientError } from "./errors.ts";
export { Message } from "./message.ts";
export {
  type CallOptions,
  type ClientCredentials,
  type ClientStatus,
  type ConnectOptions,
  DEFAULTS,
  type SubscribeOptions,
} from "./options.ts";
export { Subscription, type SubscriptionStats } from "./subscription.ts";
export type { CallContext, Handler, Registration } from "./serve.ts";

const utf8 = new TextEncoder();

/** A connection to a node. Make one with `connect`. */
export class Client {
  readonly #protocol: ProtocolHandler;
  readonly #calls: Caller;
  readonly #procs = new Procedures();
  /** Registrations waiting for `ready`: null, or the node's refusal for `ready` to throw. */
  readonly #refusedProcs = new Map<string, ClientError | null>();
  readonly #subs = new Map<number, Subscription>();
  readonly #pings = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  /** Subscription and ping ids (calls have theirs from the pending-call table). */
  #ids = 1;
  #lastTopic = "";
  readonly #tracing: ClientTracing;

  private constructor(
    readonly url: string,
    target: NodeUrl,
    /** @internal The QUIC endpoint the sessions run on. */
    private readonly endpoint: QuicEndpoint,
    private readonly self: { nodeId: string; realm: string },
    opts: ConnectOptions,
  ) {
    this.#tracing = new ClientTracing(opts.tracer, () => this.self.nodeId);
    this.#calls = new Caller((id, expired) =>
      this.#protocol.send(encode("CANCEL", expired ? { id, expired } : { id }), false)
    );
    this.#protocol = new ProtocolHandler(url, target, endpoint, self, opts, {
      restore: (write) => {
        for (const s of this.#subs.values()) {
          write(encode("SUB", { sid: s.sid, pattern: s.pattern, queue: s.queue }));
        }
        for (const p of this.#procs.names()) write(encode("REG", { proc: p }));
      },
      subscription: (sid) => this.#subs.get(sid),
      refused: (err, at) => {
        const sub = at.sid !== undefined ? this.#subs.get(at.sid) : undefined;
        if (sub) {
          this.#subs.delete(sub.sid); // the node holds nothing for it: no UNSUB
          sub.buffer.close({ error: err });
          return true;
        }
        if (at.proc === undefined || !this.#procs.forget(at.proc)) return false;
        // A registration still waiting for `ready` hears it there; a later withdrawal (the
        // node's rules were reloaded) goes to onError.
        if (!this.#refusedProcs.has(at.proc)) return false;
        this.#refusedProcs.set(at.proc, err);
        return true;
      },
      reply: (id, payload) => this.#calls.reply(id, payload),
      fail: (id, code, message) => this.#calls.fail(id, code, message),
      call: (id, proc, payload, tp, ts) => {
        if (tp == null && ts == null) {
          void this.#procs.run(id, proc, payload, this.#protocol.writer, () => this.maxPayload);
        } else this.#serveTraced(id, proc, payload, tp, ts);
      },
      traced: (sub, topic, payload, tp, ts) => this.#received(sub, topic, payload, tp, ts),
      cancel: (id) => this.#procs.cancel(id),
      pong: (id) => this.#pings.get(id)?.resolve(),
      disconnected: (why) => {
        this.#calls.failAll(() =>
          new RpcError("unavailable", `the connection to ${this.url} was lost: ${why}`)
        );
        this.#procs.abortAll(true);
        for (const p of this.#pings.values()) {
          p.reject(
            new ClientError(
              "disconnected",
              `flush: the connection to ${this.url} was lost (${why})`,
            ),
          );
        }
        this.#pings.clear();
      },
      ended: () => {
        for (const s of this.#subs.values()) s.buffer.close();
      },
    });
  }

  /** @internal Use `connect`. */
  static async connect(opts: ConnectOptions = {}): Promise<Client> {
    const target = parseUrl(opts.url ?? DEFAULTS.server, "url");
    const dir = typeof opts.creds === "object" ? null : opts.creds ?? DEFAULTS.credsDir;
    const creds = typeof opts.creds === "object" ? opts.creds : await loadCredsDir(dir!);
    const cert = checkCredentials(creds, dir);
    const verifier = await Verifier.create({ ca: creds.ca });
    let me;
    try {
      me = await verifier.verify([new Uint8Array(cert.rawData)]);
    } catch (e) {
      throw new ClientError(
        "credentials",
        `credentials: this client's certificate: ${(e as Error).message}`,
        { cause: e },
      );
    }
    const endpoint = await QuicEndpoint.bind({
      host: target.host.includes(":") ? "::" : "0.0.0.0",
      port: 0,
      acceptIncoming: false,
      idleTimeoutMs: DEFAULTS.idleTimeoutMs,
      keepAliveMs: DEFAULTS.keepAliveMs,
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
    const timeoutMs = opts.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs;
    try {
      await deadline(client.#protocol.dial(), timeoutMs, `connecting to ${target.url}`);
    } catch (e) {
      await endpoint.close("connect failed");
      throw e instanceof ClientError ? e : new ClientError(
        "connect",
        `cannot connect to ${target.url}: ${(e as Error).message}`,
        { cause: e },
      );
    }
    return client;
  }

  /** This client's node id (from its certificate). */
  get id(): string {
    return this.self.nodeId;
  }

  /** The node this client is attached to (empty while connecting). */
  get nodeId(): string {
    return this.#protocol.nodeId;
  }

  /**
   * Messages published on sessions that dropped before a `flush` confirmed the node had them:
   * they may be lost (delivery is at most once). The `reconnecting` or `closed` status says how
   * many each time (docs/client.md, "Reconnecting").
   */
  get publishesMaybeLost(): number {
    return this.#protocol.maybeLost;
  }

  get status(): ClientStatus {
    return this.#protocol.status;
  }

  /** Largest payload the node accepts. */
  get maxPayload(): number {
    return this.#protocol.maxPayload;
  }

  /**
   * Trace contexts the node sent that were not W3C (`traceparent`, `tracestate`): dropped, the
   * message or call taken without them (docs/tracing.md).
   */
  get badTraceContexts(): number {
    return this.#tracing.bad;
  }

  // ------------------------------------------------------------------ pub/sub

  /**
   * Publishes one message (at most once). Throws `TopicError` for a bad topic, `ClientError`
   * `payload_too_large`, `closed`, `disconnected` when the reconnect buffer is full, or
   * `backlog_full` when `maxPendingBytes` wait to go to the node (pace with `writable()`).
   */
  publish(topic: string, payload: Uint8Array | string = new Uint8Array(0)): void {
    if (topic !== this.#lastTopic) {
      checkTopic(topic);
      this.#lastTopic = topic;
    }
    const bytes = typeof payload === "string" ? utf8.encode(payload) : payload;
    const max = this.maxPayload;
    if (bytes.length > max) {
      throw new ClientError(
        "payload_too_large",
        `publish ${topic}: ${bytes.length} bytes, over the node's limit of ${max}`,
      );
    }
    const tracer = this.#tracing.tracer();
    if (tracer === null) {
      this.#protocol.send(encode("PUB", { topic, payload: bytes }), true);
      return;
    }
    const span = this.#tracing.start(tracer, `publish ${topic}`, SpanKind.PRODUCER, {
      "messaging.operation.type": "send",
      "messaging.operation.name": "publish",
      "messaging.destination.name": topic,
      "messaging.message.body.size": bytes.length,
    });
    try {
      const w = this.#tracing.wire(span);
      this.#protocol.send(encode("PUB", { topic, payload: bytes, ...w }), true);
    } catch (e) {
      failSpan(span, e instanceof ClientError ? e.code : (e as Error).name, (e as Error).message);
      throw e;
    } finally {
      span.end();
    }
  }

  /**
   * Resolves once this client's queue to the node has drained: QUIC took what was published (at
   * once while reconnecting). A loop that publishes as fast as it can awaits it every few hundred
   * messages, so it goes at the node's pace instead of filling memory (`maxPendingBytes`).
   *
   * @example
   * ```ts
   * for (let i = 0; i < 1_000_000; i++) {
   *   c.publish("sensors.t1", `${i}`);
   *   if (i % 256 === 255) await c.writable();
   * }
   * ```
   */
  async writable(): Promise<void> {
    this.#open();
    await this.#protocol.writable();
  }

  /**
   * A traced message for `sub`: its `receive` span (a child of the producer's context, linked
   * to it), ended once the message is in the subscription's buffer.
   */
  #received(
    sub: Subscription,
    topic: string,
    payload: Uint8Array,
    tp: unknown,
    ts: unknown,
  ): { message: Message; done(result: string): void } {
    const { traceparent, tracestate } = this.#tracing.check(tp, ts);
    const message = new Message(topic, payload, traceparent, tracestate);
    const tracer = traceparent === undefined ? null : this.#tracing.tracer();
    if (tracer === null) return { message, done: () => {} };
    const parent = remoteParent(traceparent, tracestate);
    const span = this.#tracing.start(
      tracer,
      `receive ${topic}`,
      SpanKind.CONSUMER,
      {
        "messaging.operation.type": "receive",
        "messaging.operation.name": "receive",
        "messaging.destination.name": topic,
        "messaging.destination.subscription.name": sub.pattern,
        "messaging.message.body.size": payload.length,
      },
      parent,
      otelTrace.getSpanContext(parent),
    );
    return {
      message,
      done: (result) => {
        if (result === "dropped" || result === "closed") failSpan(span, result);
        else span.setAttribute("macula.buffer", result);
        span.end();
      },
    };
  }

  /** A traced call to serve: its `process` span (a child of the caller's) around the handler. */
  #serveTraced(id: number, proc: string, payload: Uint8Array, tp: unknown, ts: unknown): void {
    const { traceparent, tracestate } = this.#tracing.check(tp, ts);
    const tracer = traceparent === undefined ? null : this.#tracing.tracer();
    const run = (ctxTp: string | undefined) =>
      this.#procs.run(id, proc, payload, this.#protocol.writer, () => this.maxPayload, ctxTp);
    if (tracer === null) return void run(traceparent);
    const span = this.#tracing.start(
      tracer,
      `process ${proc}`,
      SpanKind.SERVER,
      {
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": proc,
        "messaging.message.body.size": payload.length,
      },
      remoteParent(traceparent, tracestate),
    );
    const own = this.#tracing.wire(span).traceparent ?? traceparent;
    void otelContext.with(otelTrace.setSpan(otelContext.active(), span), () => run(own)).then(
      (outcome) => {
        if (outcome !== "ok") failSpan(span, outcome);
        span.end();
      },
    );
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
    this.#protocol.send(encode("SUB", { sid, pattern, queue: options.queue }), false);
    return sub;
  }

  /** @internal */
  unsubscribeSid(sid: number): void {
    if (!this.#subs.delete(sid)) return;
    if (!this.#protocol.closing) this.#protocol.send(encode("UNSUB", { sid }), false);
  }

  /**
   * Resolves once the node has processed everything this client sent before, and its peer nodes
   * have seen the resulting subscriptions and registrations.
   */
  async flush(timeoutMs: number = DEFAULTS.flushTimeoutMs): Promise<void> {
    this.#open();
    const end = monoNow() + timeoutMs;
    if (this.status !== "connected") {
      // While reconnecting: the flush is about the session the client gets back.
      await deadline(this.#protocol.connected, timeoutMs, `flush: waiting for ${this.url}`);
    }
    const id = this.#ids++;
    const pong = new Promise<void>((resolve, reject) => this.#pings.set(id, { resolve, reject }));
    const mark = this.#protocol.mark();
    this.#protocol.send(encode("PING", { id }), false);
    try {
      await withTimeout(
        pong,
        Math.max(0, end - monoNow()),
        () => new ClientError("timeout", `flush: no answer within ${timeoutMs} ms`),
      );
      this.#protocol.confirm(mark);
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
      throw new RpcError("bad_request", (e as Error).message, { cause: e });
    }
    checkPayloadSize(bytes, this.maxPayload);
    if (this.#protocol.closing) throw new RpcError("unavailable", "the client is closed");
    const timeoutMs = o.timeoutMs ?? DEFAULTS.callTimeoutMs;
    const startedAt = monoNow();
    if (o.signal?.aborted) {
      throw new RpcError("cancelled", `${procedure}: cancelled before it was sent`);
    }
    if (this.status !== "connected") {
      await deadline(this.#protocol.connected, timeoutMs, "waiting for the node").catch((e) => {
        throw new RpcError(
          "timeout",
          `${procedure}: not connected to ${this.url} within ${timeoutMs} ms`,
          { cause: e },
        );
      });
    }
    // The CALL, with the span's trace context when traced (none on the wire otherwise).
    const start = (w?: WireContext) =>
      this.#calls.start({
        procedure,
        startedAt,
        timeoutMs,
        signal: o.signal,
        send: (id, remainingMs) =>
          this.#protocol.send(
            encode("CALL", {
              id,
              proc: procedure,
              payload: bytes,
              timeout_ms: remainingMs,
              strategy: o.strategy,
              ...w,
            }),
            false,
          ),
      });
    const tracer = this.#tracing.tracer();
    if (tracer === null) return await start();
    const span = this.#tracing.start(tracer, `call ${procedure}`, SpanKind.CLIENT, {
      "messaging.operation.type": "send",
      "messaging.operation.name": "call",
      "messaging.destination.name": procedure,
      "messaging.message.body.size": bytes.length,
    });
    try {
      return await start(this.#tracing.wire(span));
    } catch (e) {
      failSpan(span, e instanceof RpcError ? e.code : (e as Error).name, (e as Error).message);
      throw e;
    } finally {
      span.end();
    }
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
    this.#procs.add(procedure, handler);
    this.#refusedProcs.set(procedure, null);
    this.#protocol.send(encode("REG", { proc: procedure }), false);
    // The node answers a refused REG before the flush's PONG (one ordered stream).
    const ready = this.flush().finally(() => {
      const refused = this.#refusedProcs.get(procedure);
      this.#refusedProcs.delete(procedure);
      if (refused) throw refused;
    });
    ready.catch(() => {});
    return {
      procedure,
      ready,
      stop: () => {
        if (!this.#procs.remove(procedure, handler)) return;
        if (!this.#protocol.closing) {
          this.#protocol.send(encode("UNREG", { proc: procedure }), false);
        }
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
   * with state, incarnation and how long ago that last changed), `"node"` (its snapshot) or
   * `"interest"` (who subscribes to and serves what, mesh-wide, and the path to each node) or
   * `"dht"` (its DHT table by bucket, the records it holds and publishes).
   */
  async inspect(
    what: "members" | "node" | "interest" | "dht",
    timeoutMs: number = DEFAULTS.inspectTimeoutMs,
  ): Promise<unknown> {
    const req = what === "node"
      ? INSPECT_NODE
      : what === "interest"
      ? INSPECT_INTEREST
      : what === "dht"
      ? INSPECT_DHT
      : INSPECT_MEMBERS;
    return await ask(this.#attached(), req, {}, { timeoutMs });
  }

  /**
   * Hands a CRL (PEM or DER) to the attached node: it takes it if the realm CA signed it and it is
   * newer than the one held, and then spreads it to the whole mesh. Answers whether it took it,
   * and why not (`macula certs revoke --publish`).
   */
  async pushCrl(
    crl: Uint8Array | string,
    timeoutMs: number = DEFAULTS.inspectTimeoutMs,
  ): Promise<{ accepted: boolean; reason?: string }> {
    const bytes = typeof crl === "string" ? new TextEncoder().encode(crl) : crl;
    return await ask(this.#attached(), CRL_PUSH, bytes, { timeoutMs });
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
    const r = await ask(
      this.#attached(),
      NAT_PING,
      { target, relayOnly: o.relayOnly === true, upgrade: o.upgrade === true },
      { timeoutMs: o.timeoutMs ?? DEFAULTS.pingTimeoutMs },
    );
    return r as { path: string; rttMs: number; via?: string; tried: string[] };
  }

  // ------------------------------------------------------------------ lifecycle

  /** Flushes what is queued (bounded), says goodbye, and closes. Subscriptions end. */
  async close(): Promise<void> {
    if (this.#protocol.closing) return;
    await this.#protocol.beginClose();
    this.#calls.failAll(() => new RpcError("unavailable", "the client closed"));
    this.#procs.abortAll(false);
    for (const p of this.#pings.values()) p.reject(new ClientError("closed", "the client closed"));
    for (const s of this.#subs.values()) s.buffer.close();
    this.#subs.clear();
    await this.#protocol.finishClose("closed by the application");
  }

  #open(): void {
    if (this.#protocol.closing) throw new ClientError("closed", "the client is closed");
  }

  /** The session, for a request to the node itself; throws when there is none. */
  #attached() {
    this.#open();
    const s = this.#protocol.session;
    if (!s || this.status !== "connected") {
      throw new ClientError("disconnected", `not connected to ${this.url}`);
    }
    return s;
  }
}

/**
 * Checks the client's certificate and key before anything is dialed: the certificate is one,
 * the key is a PEM private key, and it is the certificate's (a node would only answer
 * "no client certificate" to a TLS stack that refused the pair). `dir` names the files.
 */
function checkCredentials(creds: ClientCredentials, dir: string | null): x509.X509Certificate {
  const certFile = dir === null ? "the certificate" : join(dir, CREDS_FILES.cert);
  const keyFile = dir === null ? "the key" : join(dir, CREDS_FILES.key);
  const fail = (message: string, cause?: unknown): never => {
    throw new ClientError("credentials", `credentials: ${message}`, { cause });
  };
  let cert: x509.X509Certificate;
  try {
    cert = new x509.X509Certificate(creds.cert);
  } catch (e) {
    return fail(`${certFile} is not a PEM certificate`, e);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(creds.key);
  } catch (e) {
    return fail(`${keyFile} is not a PEM private key`, e);
  }
  if (!Buffer.from(spkiOf(key)).equals(Buffer.from(cert.publicKey.rawData))) {
    fail(
      `${keyFile} is not the key of ${certFile} (use the key the certificate was issued for)`,
    );
  }
  return cert;
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
