/**
 * What an application can set on a client, and the defaults when it sets nothing: one object,
 * {@link DEFAULTS}, with the reason for each value. docs/client.md tabulates the options.
 */
import type { Tracer } from "@opentelemetry/api";
import type { Credentials } from "../identity/mod.ts";
import type { BufferOptions, SelectionStrategy } from "../messaging/mod.ts";
import { DEFAULT_PORT, formatUrl } from "../peer/mod.ts";
import type { ClientError } from "./errors.ts";
import type { Message } from "./message.ts";

/**
 * The client's defaults. Everything a client waits for or holds is bounded by one of these.
 *
 * @example
 * ```ts
 * import { DEFAULTS } from "./options.ts";
 * DEFAULTS.server; // "quic://127.0.0.1:4433"
 * DEFAULTS.callTimeoutMs; // 5000
 * ```
 */
export const DEFAULTS = {
  /**
   * The node: a node on this host at the default port, which is what `macula node up` starts
   * with no flags, so a first run needs no address.
   */
  server: formatUrl("127.0.0.1", DEFAULT_PORT),
  /**
   * The credentials directory, relative to the working directory: where a local `macula node up`
   * (data dir `./macula-data`) writes a client certificate for the clients of this host.
   */
  credsDir: "macula-data/client",
  /** Reconnect when the session drops: a node restart should not end every application. */
  reconnect: true,
  /**
   * The first reconnect delay's upper bound (full jitter, doubling per failed attempt): short,
   * because most drops are a node restarting and the first try is the likeliest to be late.
   */
  reconnectBaseMs: 100,
  /**
   * The cap of the reconnect delay: a client's node is usually near and back within seconds, so
   * waiting longer than this only adds to the gap; the jitter still spreads many clients out.
   */
  maxReconnectDelayMs: 5000,
  /**
   * How long one reconnect attempt may take before a fresh one starts: a node that is down gives
   * QUIC no refusal, only silence, and a fresh attempt every few seconds beats the handshake's
   * own doubling retransmission timer.
   */
  reconnectAttemptMs: 3000,
  /**
   * How long the first connection may take: a handshake on any working path is well under a
   * second; past 10 s the address or the node is wrong, and `connect` should say so.
   */
  connectTimeoutMs: 10_000,
  /**
   * A client's session is idle (so its node gone) after this much silence: QUIC uses the smaller
   * of both ends' idle timeouts, so the client's 6 s bounds how long it believes in a dead node
   * (nodes keep 30 s between themselves). With a keep-alive every second, a live but quiet
   * session never comes near it, and six lost keep-alives in a row mean the node is gone.
   */
  idleTimeoutMs: 6000,
  /** A QUIC PING this often keeps the session and NAT mappings alive (see `idleTimeoutMs`). */
  keepAliveMs: 1000,
  /** How long a new session may take to send its `INFO` (the node answers at once). */
  infoTimeoutMs: 5000,
  /**
   * Bytes of publishes held while reconnecting (then refused with `disconnected`): enough for a
   * few seconds of a busy publisher across a node restart, bounded so an absent node cannot grow
   * the application's memory without limit (nats.go holds the same 8 MiB).
   */
  reconnectBufferBytes: 8 * 1024 * 1024,
  /**
   * Bytes of publishes queued for the node on a live session (not yet taken by QUIC) past which
   * `publish` throws `backlog_full`: a loop that publishes faster than the node takes would
   * otherwise grow the application's memory without limit, and put a `flush` behind all of it.
   */
  maxPendingBytes: 64 * 1024 * 1024,
  /**
   * Buffered messages in one subscription past which the reader lets consumers run first (a
   * macrotask) before reading on: consumers take one message per microtask hop while the reader
   * takes a chunk, so without it a consumer that keeps up on average could overflow.
   */
  yieldAt: 256,
  /**
   * A call's deadline: a reply across the mesh takes milliseconds, so 5 s leaves a handler room
   * for real work and still tells a caller soon when its provider went silent.
   */
  callTimeoutMs: 5000,
  /**
   * `flush`'s deadline: it waits for the session first when reconnecting, then for the node and
   * every peer node of it to answer, so it allows a reconnect (`maxReconnectDelayMs` plus an
   * attempt) on top of a round trip.
   */
  flushTimeoutMs: 10_000,
  /** `inspect`'s deadline: the attached node answers from memory. */
  inspectTimeoutMs: 5000,
  /**
   * `ping`'s deadline: the node may have to open a path to the target first — hole punching,
   * then a relay (several seconds each) — before the round trip it measures.
   */
  pingTimeoutMs: 30_000,
  /**
   * On `close`, how long the frames already queued may take to leave (`closePolls` checks,
   * `closePollMs` apart): bounded, so a stuck connection cannot hold `close` up.
   */
  closePolls: 100,
  closePollMs: 10,
} as const;

/** PEM credentials of a client: the same kind as a node's (lib/identity/credentials.ts). */
export type ClientCredentials = Credentials;

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
  /**
   * Bytes of publishes queued for the node on a live session (QUIC has not taken them yet);
   * past them `publish` throws `backlog_full` (pace with `await c.writable()`). Default 64 MiB.
   */
  maxPendingBytes?: number;
  /** Status changes, with a reason. */
  onStatus?: (status: ClientStatus, detail: string) => void;
  /** Errors the node reported that belong to no call (e.g. a refused publish). */
  onError?: (error: ClientError) => void;
  /**
   * The OpenTelemetry tracer for this client's spans (docs/tracing.md). Default: the global
   * tracer of `@opentelemetry/api`, which makes nothing until the application registers an SDK;
   * null: never trace.
   */
  tracer?: Tracer | null;
}

/** Subscription options: a queue group and the buffer bounds and overflow policy. */
export interface SubscribeOptions extends Omit<BufferOptions<Message>, "sizeOf"> {
  /** Join this queue group: each message goes to one member of the group. */
  queue?: string;
}

/** Call options. */
export interface CallOptions {
  /** Deadline; default 5 000 ms. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** How the node picks among providers; default local-first. */
  strategy?: SelectionStrategy;
}
