/**
 * The serving side of RPC: the procedures this client provides, and the calls the node hands it
 * to run. A handler's reply (or its failure) goes back on the session the call came on.
 */
import { RPC_ERROR_NUMBERS } from "../messaging/mod.ts";
import { encode } from "./protocol.ts";

/** What a procedure handler gets besides the payload. */
export interface CallContext {
  procedure: string;
  /** Aborted when the caller cancels or its deadline passes. */
  signal: AbortSignal;
  /**
   * The W3C trace context of this call (the client's `process` span when it traces, else the
   * one the call came with), when traced: for work the handler hands on outside OpenTelemetry.
   */
  traceparent?: string;
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

/** Where replies go: the writer of the session a call came on (none while disconnected). */
interface Replies {
  write(frame: Uint8Array): unknown;
}

/** Longest error message sent back to a caller. */
const MAX_MESSAGE = 4000;

/**
 * The procedures served, by name, and the calls running (each with the `AbortController` behind
 * its handler's `signal`).
 *
 * @example
 * ```ts
 * import { Procedures } from "./serve.ts";
 * const procs = new Procedures();
 * procs.add("math.double", (p) => new TextEncoder().encode(String(2 * Number(new TextDecoder().decode(p)))));
 * await procs.run(1, "math.double", new TextEncoder().encode("21"), { write: console.log }, () => 1024);
 * ```
 */
export class Procedures {
  readonly #handlers = new Map<string, Handler>();
  readonly #running = new Map<number, AbortController>();

  /** Whether `procedure` is served. */
  has(procedure: string): boolean {
    return this.#handlers.has(procedure);
  }

  /** Serves `procedure` with `handler` (replacing none: check `has` first). */
  add(procedure: string, handler: Handler): void {
    this.#handlers.set(procedure, handler);
  }

  /** Stops serving `procedure`, if `handler` still serves it; true when it did. */
  remove(procedure: string, handler: Handler): boolean {
    if (this.#handlers.get(procedure) !== handler) return false;
    this.#handlers.delete(procedure);
    return true;
  }

  /** Stops serving `procedure` whatever its handler (the node refused it); true when it did. */
  forget(procedure: string): boolean {
    return this.#handlers.delete(procedure);
  }

  /** The procedures served, to register again on a new session. */
  names(): IterableIterator<string> {
    return this.#handlers.keys();
  }

  /**
   * Runs call `id` of `procedure` and writes its `REPLY` or `FAIL` to `out` — unless the call was
   * cancelled meanwhile. A reply over `maxPayload()` bytes fails with `payload_too_large`.
   * Resolves with how it ended: `"ok"`, the error code answered, or `"cancelled"`.
   */
  async run(
    id: number,
    procedure: string,
    payload: Uint8Array,
    out: Replies | null,
    maxPayload: () => number,
    traceparent?: string,
  ): Promise<string> {
    const handler = this.#handlers.get(procedure);
    const fail = (code: keyof typeof RPC_ERROR_NUMBERS, message: string) => {
      out?.write(
        encode("FAIL", {
          id,
          code: RPC_ERROR_NUMBERS[code],
          message: message.slice(0, MAX_MESSAGE),
        }),
      );
      return code;
    };
    if (!handler) return fail("no_provider", `this client does not serve ${procedure}`);
    const ac = new AbortController();
    this.#running.set(id, ac);
    let reply: Uint8Array;
    try {
      const ctx: CallContext = { procedure, signal: ac.signal };
      if (traceparent !== undefined) ctx.traceparent = traceparent;
      reply = await handler(payload, ctx);
    } catch (e) {
      if (this.#running.delete(id)) {
        return fail("handler_error", e instanceof Error ? e.message : String(e));
      }
      return "cancelled";
    }
    if (!this.#running.delete(id)) return "cancelled"; // cancelled meanwhile
    if (!(reply instanceof Uint8Array)) {
      return fail(
        "handler_error",
        `the handler of ${procedure} returned ${typeof reply}, not bytes`,
      );
    }
    const max = maxPayload();
    if (reply.length > max) {
      return fail(
        "payload_too_large",
        `the reply of ${procedure} is ${reply.length} bytes, over the limit of ${max}`,
      );
    }
    out?.write(encode("REPLY", { id, payload: reply }));
    return "ok";
  }

  /** The caller cancelled call `id` (or its deadline passed): its handler's signal aborts. */
  cancel(id: number): void {
    this.#running.get(id)?.abort();
    this.#running.delete(id);
  }

  /**
   * Aborts every running handler. `forget`: they are forgotten too (the session they came on is
   * gone, so their replies have nowhere to go); else they may still answer.
   */
  abortAll(forget: boolean): void {
    for (const ac of this.#running.values()) ac.abort();
    if (forget) this.#running.clear();
  }
}
