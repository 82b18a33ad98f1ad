/**
 * A peer session: one QUIC connection between two identities of the same realm, with a version
 * handshake that binds the TLS identity, request/response multiplexed one QUIC stream per
 * request, deadlines, cancellation and a graceful close. docs/wire-protocol.md, "Session".
 *
 * Streams: the dialer's first bidirectional stream is the control stream (HELLO → HELLO_ACK).
 * Every other bidirectional stream, opened by either side, carries one request: `REQ` with FIN,
 * answered by `RES` or `ERR` with FIN. A unidirectional stream starts with `GOAWAY` (alone) or
 * with `OPEN <channel>`: a long-lived one-way channel whose frames belong to the layer above
 * (the messaging bus).
 */
import type { PeerIdentity } from "../identity/mod.ts";
import type { CloseInfo, QuicConnection, QuicStream } from "../quic/mod.ts";
import { type Frame, FrameReader, WireError } from "../wire/mod.ts";
import { RequestError, SessionError, type SessionErrorCode } from "./errors.ts";
import { sessionCodec, VERSIONS } from "./frames.ts";
import { withTimeout as deadline } from "../util/mod.ts";

export { SessionError, type SessionErrorCode };

/** Handles one request from the peer; throw to answer with an error (its message is sent). */
export type RequestHandler = (
  method: string,
  payload: Uint8Array,
  ctx: { peer: PeerIdentity; signal: AbortSignal; session: PeerSession },
) => Uint8Array | Promise<Uint8Array>;

/** Session options. */
export interface SessionOptions {
  /** This side's identity (from its own certificate). */
  self: { nodeId: string; realm: string };
  /** Serves the peer's requests; without one, requests are answered `no_handler`. */
  onRequest?: RequestHandler;
  /** How long the version handshake may take. Default 5 000 ms. */
  helloTimeoutMs?: number;
  /**
   * The peer opened a channel: `bodies` yields its frame bodies (length prefixes removed), in
   * batches as they arrive, and ends when the peer ends the channel or the session closes (it
   * throws `WireError` on broken framing). Without a handler, channels are refused (the stream
   * is stopped).
   */
  onChannel?: (name: string, bodies: AsyncIterable<Uint8Array[]>, session: PeerSession) => void;
  /**
   * The largest frame the peer may send on channel `name` (default: the protocol's 16 MiB and a
   * little). A header claiming more ends the channel with a `WireError` as soon as it arrives,
   * before any of the frame is held: a node sets its payload limit and room for the other fields.
   */
  channelFrameLimit?: (name: string) => number;
  /** The peer sent GOAWAY: it is about to close the session. */
  onGoaway?: (reason: string, session: PeerSession) => void;
}

/** Application close code for a session the peer refused (handshake failure). */
export const SESSION_REFUSED = 0x10;
/** Stream error code used when a request is cancelled or timed out. */
export const REQUEST_CANCELLED = 0x11;

const enc = (name: string, fields: Record<string, unknown>) => sessionCodec.encode(name, fields);

/** Reads the frame bodies of a stream, a batch per chunk, until its end. */
async function* bodies(
  stream: QuicStream,
  reader = new FrameReader(sessionCodec.maxFrame),
): AsyncGenerator<Uint8Array[]> {
  for await (const chunk of stream) {
    const batch = reader.push(chunk);
    if (batch.length > 0) yield batch;
  }
  if (reader.pending > 0) {
    throw new WireError("frame", null, `stream ended inside a frame (${reader.pending} bytes)`);
  }
}

/** Reads the frames of a stream, in order, until its end. */
async function* frames(stream: QuicStream): AsyncGenerator<Frame> {
  for await (const batch of bodies(stream)) {
    for (const body of batch) {
      const f = sessionCodec.decodeBody(body);
      if ("unknown" in f) continue; // an ignorable frame from a newer peer
      yield f;
    }
  }
}

/** The first frame of a stream, or an error naming what came instead. */
async function firstFrame(stream: QuicStream, want: string[]): Promise<Frame> {
  for await (const f of frames(stream)) {
    if (!want.includes(f.name)) {
      throw new WireError(f.name, null, `unexpected here (wanted ${want.join(" or ")})`);
    }
    return f;
  }
  throw new WireError(want.join("|"), null, "stream ended before the frame");
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return deadline(p, ms, () => new SessionError("timeout", `${what} took longer than ${ms} ms`));
}

/** How long `close` tries to send its GOAWAY before closing the connection anyway. */
const GOAWAY_MS = 250;

/** One authenticated session with a peer. */
export class PeerSession {
  #closing = false;
  readonly #abort = new AbortController();

  private constructor(
    /** The QUIC connection underneath. */
    readonly conn: QuicConnection,
    /** Who the peer is (from its certificate, confirmed by its HELLO). */
    readonly peer: PeerIdentity,
    /** The protocol version both sides speak. */
    readonly version: string,
    private readonly opts: SessionOptions,
  ) {
    void conn.closed.then(() => this.#abort.abort());
    this.#serve();
  }

  /** Resolves when the underlying connection has closed. */
  get closed(): Promise<CloseInfo> {
    return this.conn.closed;
  }

  /** Opens a session on a connection this side dialed. */
  static async dial(conn: QuicConnection, opts: SessionOptions): Promise<PeerSession> {
    const peer = PeerSession.#identity(conn);
    const control = await conn.openStream();
    await control.write(
      enc("HELLO", { versions: [...VERSIONS], node: opts.self.nodeId, realm: opts.self.realm }),
    );
    try {
      const f = await withTimeout(
        firstFrame(control, ["HELLO_ACK", "ERR"]),
        opts.helloTimeoutMs ?? 5000,
        "the session handshake",
      );
      if (f.name === "ERR") {
        const { code, message } = f.fields as { code: string; message: string };
        throw new SessionError(
          code === "version" ? "version" : "identity",
          `peer refused the session: ${message}`,
          code,
        );
      }
      const ack = f.fields as { version: string; node: string; realm: string };
      if (!VERSIONS.includes(ack.version as (typeof VERSIONS)[number])) {
        throw new SessionError(
          "version",
          `peer chose version ${ack.version}, which this node does not speak`,
        );
      }
      PeerSession.#bind(peer, ack.node, ack.realm);
      return new PeerSession(conn, peer, ack.version, opts);
    } catch (e) {
      await conn.close(SESSION_REFUSED, (e as Error).message.slice(0, 200));
      throw e instanceof SessionError
        ? e
        : new SessionError("protocol", (e as Error).message, undefined, { cause: e });
    }
  }

  /** Accepts a session on a connection this side accepted. */
  static async accept(conn: QuicConnection, opts: SessionOptions): Promise<PeerSession> {
    const peer = PeerSession.#identity(conn);
    const control = await withTimeout(
      conn.acceptStream(),
      opts.helloTimeoutMs ?? 5000,
      "waiting for HELLO",
    );
    if (!control) {
      throw new SessionError("closed", "the connection closed before the session handshake");
    }
    const refuse = async (code: string, message: string, as: SessionErrorCode, cause?: unknown) => {
      await control.end(enc("ERR", { code, message })).catch(() => {});
      await conn.close(SESSION_REFUSED, message.slice(0, 200));
      return new SessionError(as, message, undefined, cause === undefined ? undefined : { cause });
    };
    let hello: Frame;
    try {
      hello = await withTimeout(
        firstFrame(control, ["HELLO"]),
        opts.helloTimeoutMs ?? 5000,
        "the session handshake",
      );
    } catch (e) {
      throw await refuse(
        "protocol",
        (e as Error).message,
        e instanceof SessionError ? e.code : "protocol",
        e,
      );
    }
    const h = hello.fields as { versions: string[]; node: string; realm: string };
    const version = VERSIONS.find((v) => h.versions.includes(v));
    if (!version) {
      throw await refuse(
        "version",
        `no common version: peer speaks ${h.versions.join(", ")}, this node ${VERSIONS.join(", ")}`,
        "version",
      );
    }
    try {
      PeerSession.#bind(peer, h.node, h.realm);
    } catch (e) {
      throw await refuse("identity", (e as Error).message, "identity", e);
    }
    await control.write(
      enc("HELLO_ACK", { version, node: opts.self.nodeId, realm: opts.self.realm }),
    );
    return new PeerSession(conn, peer, version, opts);
  }

  static #identity(conn: QuicConnection): PeerIdentity {
    const peer = conn.context as PeerIdentity | undefined;
    if (!peer || typeof peer.nodeId !== "string") {
      throw new SessionError(
        "identity",
        "the connection has no verified peer identity (use Verifier.checkPeer)",
      );
    }
    return peer;
  }

  /** The HELLO must name the identity the certificate proved. */
  static #bind(peer: PeerIdentity, node: string, realm: string): void {
    if (node !== peer.nodeId || realm !== peer.realm) {
      throw new SessionError(
        "identity",
        `HELLO names node ${node} in realm ${realm}, but the certificate is node ${peer.nodeId} in realm ${peer.realm}`,
      );
    }
  }

  /**
   * Sends a request and resolves with the answer. Rejects with `SessionError`: `remote` (the
   * peer's handler failed; `remoteCode` and its message), `timeout`, `cancelled`, `closed`.
   */
  async request(
    method: string,
    payload: Uint8Array,
    o: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<Uint8Array> {
    if (this.#closing) throw new SessionError("closed", "the session is closing");
    const timeoutMs = o.timeoutMs ?? 30_000;
    const frame = enc("REQ", { method, payload, timeout_ms: timeoutMs });
    let stream: QuicStream;
    try {
      stream = await this.conn.openStream();
    } catch (e) {
      throw new SessionError("closed", (e as Error).message, undefined, { cause: e });
    }
    let settle!: (e: SessionError) => void;
    const stopped = new Promise<never>((_, reject) => (settle = reject));
    const stop = (e: SessionError) => {
      stream.stopSending(REQUEST_CANCELLED);
      stream.reset(REQUEST_CANCELLED);
      settle(e);
    };
    const timer = setTimeout(
      () => stop(new SessionError("timeout", `${method}: no answer in ${timeoutMs} ms`)),
      timeoutMs,
    );
    const onAbort = () => stop(new SessionError("cancelled", `${method}: cancelled`));
    if (o.signal?.aborted) onAbort();
    o.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      const answer = (async () => {
        await stream.end(frame);
        return await firstFrame(stream, ["RES", "ERR"]);
      })();
      const f = await Promise.race([answer, stopped]);
      if (f.name === "ERR") {
        const { code, message } = f.fields as { code: string; message: string };
        throw new SessionError("remote", `${method}: ${message}`, code);
      }
      return (f.fields as { payload: Uint8Array }).payload;
    } catch (e) {
      if (e instanceof SessionError) throw e;
      if (this.conn.closeInfo || !this.conn.isOpen) {
        throw new SessionError("closed", (e as Error).message, undefined, { cause: e });
      }
      throw new SessionError("protocol", (e as Error).message, undefined, { cause: e });
    } finally {
      clearTimeout(timer);
      o.signal?.removeEventListener("abort", onAbort);
    }
  }

  /**
   * Opens a one-way channel to the peer (its `onChannel` handler gets the frames). Write whole
   * frames to the returned stream; it lives as long as the session.
   */
  async openChannel(name: string): Promise<QuicStream> {
    if (this.#closing) throw new SessionError("closed", "the session is closing");
    let s: QuicStream;
    try {
      s = await this.conn.openUniStream();
    } catch (e) {
      throw new SessionError("closed", (e as Error).message, undefined, { cause: e });
    }
    void s.write(enc("OPEN", { channel: name })).catch(() => {});
    return s;
  }

  /** True once either side said GOAWAY or `close` was called. */
  get closing(): boolean {
    return this.#closing;
  }

  /** Says goodbye (GOAWAY with the reason) and closes the connection. */
  async close(reason = "session closed"): Promise<CloseInfo> {
    this.#closing = true;
    try {
      // The goodbye is a courtesy: a peer that stopped reading (or died), whose flow control
      // window is full, must not hold the close until the idle timeout.
      await withTimeout(
        (async () => {
          const s = await this.conn.openUniStream();
          await s.end(enc("GOAWAY", { reason }));
        })(),
        GOAWAY_MS,
        "sending GOAWAY",
      );
    } catch {
      // already closing, or the peer takes nothing more
    }
    return this.conn.close(0, reason);
  }

  /** Serves the peer's requests until the connection closes. */
  #serve(): void {
    void (async () => {
      for await (const s of this.conn.streams()) {
        if (!s.bidi) {
          void this.#control(s);
          continue;
        }
        void this.#answer(s).catch(() => {});
      }
    })();
  }

  /** A uni stream from the peer: GOAWAY alone, or OPEN and then the channel's frames. */
  async #control(s: QuicStream): Promise<void> {
    const reader = new FrameReader(sessionCodec.maxFrame);
    const it = bodies(s, reader)[Symbol.asyncIterator]();
    let first: Frame;
    let rest: Uint8Array[];
    try {
      const r = await it.next();
      if (r.done) return;
      const [head, ...tail] = r.value;
      const f = sessionCodec.decodeBody(head!);
      if ("unknown" in f || (f.name !== "GOAWAY" && f.name !== "OPEN")) {
        throw new WireError(
          "frame",
          null,
          "a unidirectional stream must start with GOAWAY or OPEN",
        );
      }
      first = f;
      rest = tail;
    } catch (e) {
      // A malformed start: this peer breaks the protocol.
      void this.conn.close(SESSION_REFUSED, `protocol: ${(e as Error).message}`.slice(0, 200));
      return;
    }
    if (first.name === "GOAWAY") {
      this.#closing = true;
      this.opts.onGoaway?.((first.fields as { reason: string }).reason, this);
      return;
    }
    const name = (first.fields as { channel: string }).channel;
    const limit = this.opts.channelFrameLimit?.(name);
    if (limit !== undefined) reader.maxFrame = Math.min(reader.maxFrame, limit);
    if (!this.opts.onChannel) {
      s.stopSending(0);
      return;
    }
    const all = async function* (): AsyncGenerator<Uint8Array[]> {
      if (rest.length > 0) yield rest;
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        yield r.value;
      }
    };
    this.opts.onChannel(name, all(), this);
  }

  async #answer(s: QuicStream): Promise<void> {
    let req: Frame;
    try {
      req = await firstFrame(s, ["REQ"]);
    } catch (e) {
      await s.end(enc("ERR", { code: "protocol", message: (e as Error).message.slice(0, 4000) }));
      return;
    }
    const { method, payload } = req.fields as { method: string; payload: Uint8Array };
    const handler = this.opts.onRequest;
    if (!handler) {
      await s.end(
        enc("ERR", {
          code: "no_handler",
          message: `no handler for requests on this node (${method})`,
        }),
      );
      return;
    }
    let out: Uint8Array;
    try {
      out = await handler(method, payload, {
        peer: this.peer,
        signal: this.#abort.signal,
        session: this,
      });
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      const code = e instanceof RequestError ? e.wireCode : "handler_error";
      await s.end(enc("ERR", { code, message: message.slice(0, 4000) }));
      return;
    }
    await s.end(enc("RES", { payload: out }));
  }
}
