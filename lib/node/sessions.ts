/**
 * A node's sessions: every accepted connection and every dial becomes a `PeerSession`, tracked
 * until it closes. A tracked session takes part in membership (its datagrams), in traversal (a
 * session through a relay tunnel is checked against what the relay announced), answers requests
 * through the node's one registry, and carries the bus when the peer opens a channel.
 *
 * Members whose advertised address does not answer are reached by id in the background
 * (punched or relayed), a few at a time, so later membership messages have a session.
 */
import { parseUrl, PeerSession, type RequestRegistry, type SessionOptions } from "../peer/mod.ts";
import type { QuicConnection, QuicEndpoint } from "../quic/mod.ts";
import { type Log, monoNow } from "../util/mod.ts";
import { RUNTIME } from "./defaults.ts";
import { NodeError } from "./errors.ts";

/** What sessions are handed to. */
export interface SessionsHost {
  readonly self: { nodeId: string; realm: string };
  readonly endpoint: QuicEndpoint;
  readonly registry: RequestRegistry;
  /** The node's payload limit (limits.max_payload): bounds the frames a bus channel may carry. */
  readonly maxPayload: number;
  stopping(): boolean;
  /** A new tracked session (membership, traversal). */
  opened(s: PeerSession): void;
  /** A tracked session closed (its link, if any, leaves the bus). */
  closed(s: PeerSession): void;
  /** The peer opened a bus channel. */
  onChannel(name: string, bodies: AsyncIterable<Uint8Array[]>, s: PeerSession): void;
  /** Reaches a node by id (traversal). */
  connect(id: string): Promise<{ path: string }>;
  readonly log: Log;
}

/** The sessions of one node. */
export class Sessions {
  readonly #all = new Set<PeerSession>();
  /** Members being reached in the background, and when each was last tried. */
  readonly #reaching = new Set<string>();
  readonly #reachedAt = new Map<string, number>();

  constructor(private readonly h: SessionsHost) {}

  /** Every tracked session (open or closing). */
  all(): Set<PeerSession> {
    return this.#all;
  }

  /** Options of every session this node makes or accepts. */
  options(): SessionOptions {
    return {
      self: this.h.self,
      onChannel: (name, bodies, s) => this.h.onChannel(name, bodies, s),
      // A bus frame is a payload (at most limits.max_payload) and its other fields.
      channelFrameLimit: () => this.h.maxPayload + 64 * 1024,
      onRequest: this.h.registry.handle,
    };
  }

  /** Accepts connections until the endpoint closes. */
  acceptLoop(): void {
    void (async () => {
      for await (const conn of this.h.endpoint) void this.#accept(conn);
    })();
  }

  /** A session to a node's address (tracked like any other). */
  async dial(addr: string): Promise<PeerSession> {
    if (this.h.stopping()) throw new NodeError("node stopping");
    const { host, port } = parseUrl(addr, "member address");
    return await this.dialAt({ host, port });
  }

  /** A session to host:port (tracked). */
  async dialAt(at: { host: string; port: number }): Promise<PeerSession> {
    const conn = await this.h.endpoint.connect(at);
    return this.adopt(conn);
  }

  /** A session on a connection this node dialed (tracked). */
  async adopt(conn: QuicConnection): Promise<PeerSession> {
    const s = await PeerSession.dial(conn, this.options());
    this.track(s);
    return s;
  }

  /** Tracks `s` until it closes (refused when the node is stopping). */
  track(s: PeerSession): void {
    if (this.h.stopping()) {
      void s.close("node shutting down");
      return;
    }
    this.#all.add(s);
    this.h.opened(s);
    const expiry = this.#closeAtExpiry(s);
    void s.closed.then(() => {
      clearTimeout(expiry.timer);
      this.#all.delete(s);
      this.h.closed(s);
    });
  }

  /**
   * Reaches a member whose address did not answer, by id (punched or relayed), in the
   * background: a few at a time, each member at most once a minute.
   */
  reachLater(id: string): void {
    const now = monoNow();
    if (this.h.stopping() || this.#reaching.size >= RUNTIME.reachConcurrency) return;
    if (this.#reaching.has(id)) return;
    if (now - (this.#reachedAt.get(id) ?? -Infinity) < RUNTIME.reachEveryMs) return;
    this.#reachedAt.set(id, now);
    if (this.#reachedAt.size > RUNTIME.reachMemory) {
      this.#reachedAt.delete(this.#reachedAt.keys().next().value!);
    }
    this.#reaching.add(id);
    this.h.connect(id).then(
      (r) =>
        this.h.log.info("member.reached", `member ${id.slice(0, 12)}… reached ${r.path}`, {
          peer: id,
          path: r.path,
        }),
      (e) =>
        this.h.log.info(
          "member.unreachable",
          `member ${id.slice(0, 12)}… unreachable: ${(e as Error).message}`,
          { peer: id },
        ),
    ).finally(() => this.#reaching.delete(id));
  }

  /**
   * Closes `s` when its peer's certificate expires ("certificate expired", the reason its peer
   * sees): a certificate is checked at the handshake, and a session must not outlive it.
   */
  #closeAtExpiry(s: PeerSession): { timer: ReturnType<typeof setTimeout> | undefined } {
    const handle: { timer: ReturnType<typeof setTimeout> | undefined } = { timer: undefined };
    const arm = () => {
      const left = s.peer.notAfter.getTime() - Date.now(); // certificate time is calendar time
      if (left <= 0) {
        this.expired++;
        this.h.log.warn(
          "session.expired",
          `closing session with ${s.peer.name} ${
            s.peer.nodeId.slice(0, 12)
          }…: its certificate expired`,
          { peer: s.peer.nodeId, cause: "expired" },
        );
        void s.close("certificate expired");
        return;
      }
      handle.timer = setTimeout(arm, Math.min(left + 1, 2 ** 31 - 1));
      (handle.timer as { unref?: () => void }).unref?.();
    };
    arm();
    return handle;
  }

  /** Sessions closed because the peer's certificate expired. */
  expired = 0;
  /** Connections whose session handshake failed (after TLS): a peer that is not one. */
  refused = 0;

  async #accept(conn: QuicConnection): Promise<void> {
    let s: PeerSession;
    try {
      s = await PeerSession.accept(conn, this.options());
    } catch (e) {
      this.refused++;
      this.h.log.warn(
        "session.refused",
        `refused a session from ${conn.remote.host}:${conn.remote.port}: ${(e as Error).message}`,
        { remote: `${conn.remote.host}:${conn.remote.port}`, cause: (e as Error).message },
      );
      return;
    }
    this.track(s);
  }
}
