/**
 * Requests between peers, by method: one registry of every method a node answers, each declared
 * once as a `RequestSpec` — its name, what its payload holds and what its answer holds — and
 * checked by lib/wire's one field checker on both sides (the asker checks the answer too: every
 * peer is hostile until checked). docs/wire-protocol.md, "Requests".
 *
 * A body is one of:
 * - a list of fields: a JSON object, each field checked by `checkField` (kind, limits, and a
 *   `valid` predicate with `want` words: "target must be a node id (got 5)");
 * - `"bytes"`: raw bytes, a frame of the layer's own (membership messages);
 * - `"document"`: a JSON document shown to people and scripts (`macula inspect`), not checked
 *   field by field (only a node's own client asks for one).
 *
 * Each method also says who may ask it (`Access`): peer nodes only (the default: routes,
 * membership, traversal, relaying on others' behalf), operators (nodes, and clients the node's
 * policy calls operators: `inspect`, control requests, relay use), or anyone of the realm. The
 * registry asks its `allowed` hook before it reads the payload, so a refused peer costs nothing
 * more than the refusal (docs/security.md, "Requests").
 *
 * @example
 * ```ts
 * const PING = defineRequest<Record<never, never>, { node: string }>("ping", [], [NODE_ID("node")]);
 * registry.on(PING, () => ({ node: myId }));
 * const { node } = await ask(session, PING, {}, { timeoutMs: 2000 });
 * ```
 */
import { checkField, type FieldSpec, WireError } from "../wire/mod.ts";
import { PermissionError, RequestError } from "./errors.ts";
import type { PeerIdentity } from "../identity/mod.ts";
import type { PeerSession, RequestHandler } from "./session.ts";
import { monoNow } from "../util/mod.ts";

/** What a request or an answer carries. */
export type Body = readonly FieldSpec[] | "bytes" | "document";

/** Who may ask a method: peer nodes only, operators (nodes and operator clients), or anyone. */
export type Access = "nodes" | "operators" | "anyone";

/** One request method: its name, the shapes of its payload and answer, and who may ask it. */
export interface RequestSpec<Q, R> {
  readonly method: string;
  readonly request: Body;
  readonly reply: Body;
  readonly access: Access;
  /** Type carriers only (never set): the payload and answer types. */
  readonly __types?: [Q, R];
}

/**
 * Declares a request method. `Q` and `R` are the payload and answer types the bodies describe;
 * `access` says who may ask it (default: peer nodes only).
 */
export function defineRequest<Q, R>(
  method: string,
  request: Body,
  reply: Body,
  access: Access = "nodes",
): RequestSpec<Q, R> {
  return { method, request, reply, access };
}

/**
 * Decides whether `peer` may ask a method of `access`: null when it may, else the reason it may
 * not (sent to the peer as the error's message, with the code `permission_denied`).
 */
export type AccessCheck = (access: Access, peer: PeerIdentity, method: string) => string | null;

/** The default check: nodes may ask anything, clients only methods open to anyone. */
export const rolesOnly: AccessCheck = (access, peer, method) =>
  access === "anyone" || peer.role === "node"
    ? null
    : `${method} is for ${access === "nodes" ? "peer nodes" : "operators"} only`;

const utf8 = new TextEncoder();
const EMPTY = new Uint8Array(0);

/** Encodes a body (bytes as they are, anything else as JSON). */
export function encodeBody(body: Body, value: unknown): Uint8Array {
  if (body === "bytes") return value as Uint8Array;
  if (Array.isArray(body) && body.length === 0) return EMPTY; // nothing to carry
  return utf8.encode(JSON.stringify(value ?? {}));
}

/**
 * Decodes and checks a body; throws `RequestError` naming `where` (the method, or "<method>
 * answer") and the field. An empty payload is an empty object (a request with no fields).
 */
export function decodeBody<T>(body: Body, bytes: Uint8Array, where: string): T {
  if (body === "bytes") return bytes as T;
  let v: unknown;
  try {
    v = bytes.length === 0 && body !== "document"
      ? {}
      : JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new RequestError(`${where}: the payload is not JSON`, { cause: e });
  }
  if (body === "document") return v as T;
  if (typeof v !== "object" || v === null) {
    throw new RequestError(`${where}: the payload is not an object`);
  }
  const o = v as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const f of body) {
    const x = o[f.name];
    try {
      const checked = checkField(where, f, x);
      if (checked !== null) out[f.name] = checked;
    } catch (e) {
      if (!(e instanceof WireError)) throw e;
      throw new RequestError(
        `${where}: ${f.name} ${e.detail} (got ${JSON.stringify(x) ?? "nothing"})`,
        { cause: e },
      );
    }
  }
  return out as T;
}

/** Serves one method: gets the checked payload and the session it came on. */
export type MethodHandler<Q, R> = (req: Q, session: PeerSession) => R | Promise<R>;

/**
 * Every method a node answers. `handle` is the session's `onRequest`: it finds the method,
 * checks the payload, runs the handler and encodes the answer; an unknown method or a bad payload
 * is answered with an error naming it, and the session carries on.
 */
export class RequestRegistry {
  /** Refusals by the access check, by method (for `inspect` and metrics). */
  readonly refused = new Map<string, number>();

  /**
   * `allowed` decides who may ask what (default `rolesOnly`); `onFlood` hears of each session
   * closed for too many refused requests (a node holds its certificate down: lib/node/holddown.ts).
   */
  constructor(
    private readonly allowed: AccessCheck = rolesOnly,
    private readonly onFlood: (s: PeerSession, why: string) => void = () => {},
  ) {}

  readonly #methods = new Map<
    string,
    { spec: RequestSpec<unknown, unknown>; handler: MethodHandler<unknown, unknown> }
  >();

  /** Registers `spec` with its handler. A method is registered once. */
  on<Q, R>(spec: RequestSpec<Q, R>, handler: MethodHandler<Q, R>): void {
    if (this.#methods.has(spec.method)) {
      throw new RangeError(`request ${spec.method} is already registered`);
    }
    this.#methods.set(spec.method, {
      spec: spec as RequestSpec<unknown, unknown>,
      handler: handler as MethodHandler<unknown, unknown>,
    });
  }

  /** The registered methods, sorted. */
  methods(): string[] {
    return [...this.#methods.keys()].sort();
  }

  /**
   * Refused requests per session (unknown method, bad payload, no access, a handler's error):
   * 200 at once, then 20 a second; past that the session is closed, so a flood of requests that
   * fail anyway cannot take the node's time from others. Counted in `sessionsClosed`.
   */
  static readonly REFUSALS = { perSecond: 20, burst: 200 } as const;
  /** Sessions closed for too many refused requests. */
  sessionsClosed = 0;
  readonly #refusals = new WeakMap<PeerSession, { tokens: number; at: number }>();

  /** For `SessionOptions.onRequest`. */
  readonly handle: RequestHandler = async (method, payload, ctx) => {
    try {
      return await this.#handle(method, payload, ctx);
    } catch (e) {
      this.#refused(ctx.session);
      throw e;
    }
  };

  #refused(s: PeerSession): void {
    const { perSecond, burst } = RequestRegistry.REFUSALS;
    const now = monoNow();
    const b = this.#refusals.get(s) ?? { tokens: burst, at: now };
    b.tokens = Math.min(burst, b.tokens + (now - b.at) * perSecond / 1000) - 1;
    b.at = now;
    this.#refusals.set(s, b);
    if (b.tokens >= 0 || s.closing) return;
    this.sessionsClosed++;
    const why = `too many refused requests (${burst} at once, then ${perSecond} a second)`;
    this.onFlood(s, why);
    void s.close(why);
  }

  async #handle(...[method, payload, ctx]: Parameters<RequestHandler>): Promise<Uint8Array> {
    const m = this.#methods.get(method);
    if (!m) throw new RequestError(`unknown request ${JSON.stringify(method)}`);
    const why = this.allowed(m.spec.access, ctx.peer, method);
    if (why !== null) {
      if (this.refused.size < 1024 || this.refused.has(method)) {
        this.refused.set(method, (this.refused.get(method) ?? 0) + 1);
      }
      throw new PermissionError(why);
    }
    const req = decodeBody(m.spec.request, payload, method);
    const answer = await m.handler(req, ctx.session);
    return encodeBody(m.spec.reply, answer);
  }
}

/**
 * Asks `session` for `spec` with `req`; resolves with the checked answer. Rejects with the
 * session's `SessionError` (remote, timeout, closed…) or a `RequestError` for a malformed answer.
 */
export async function ask<Q, R>(
  session: PeerSession,
  spec: RequestSpec<Q, R>,
  req: Q,
  o: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<R> {
  const bytes = await session.request(spec.method, encodeBody(spec.request, req), o);
  return decodeBody<R>(spec.reply, bytes, `${spec.method} answer`);
}
