/**
 * The calling side of RPC: the calls this client has sent and waits for. The table is the sans-IO
 * `PendingCalls` of lib/messaging (ids, deadlines, every call leaving exactly once); one `Driver`
 * (lib/util/sansio.ts) keeps one timer at the earliest deadline and times calls out when it
 * passes — not one timer per call.
 */
import {
  type FailedCall,
  type PendingCall,
  PendingCalls,
  RpcError,
  rpcErrorCodeOf,
} from "../messaging/mod.ts";
import { Driver, monoNow, type SansIoCore } from "../util/mod.ts";

/** How a pending call is answered. */
interface Waiter {
  resolve(payload: Uint8Array): void;
  reject(error: RpcError): void;
  /** The deadline the caller asked for, for the timeout's message. */
  readonly timeoutMs: number;
  /** Removes the caller's abort listener. */
  detach(): void;
}

/** Every call of a client goes to its node, which picks the provider. */
const NODE = "node";

/** The longest delay a timer takes (2^31 - 1 ms); longer ones fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** One call to start. */
export interface CallStart {
  procedure: string;
  /** When the caller called (`monoNow`): the deadline is `startedAt + timeoutMs`. */
  startedAt: number;
  timeoutMs: number;
  signal?: AbortSignal | undefined;
  /** Writes the `CALL` frame: the call's id, and the milliseconds left of its deadline. */
  send(id: number, remainingMs: number): void;
}

/**
 * The calls in flight: `start` one, then the frames the node sends back settle it (`reply`,
 * `fail`), or its deadline, its caller's signal, or the loss of the session (`failAll`) does.
 * A call that ends here without a reply has its `CANCEL` sent through `cancel`.
 *
 * @example
 * ```ts
 * import { Caller } from "./request.ts";
 * import { monoNow } from "../util/mod.ts";
 * const caller = new Caller((id) => console.log("CANCEL", id));
 * const reply = caller.start({
 *   procedure: "math.double",
 *   startedAt: monoNow(),
 *   timeoutMs: 1000,
 *   send: (id) => caller.reply(id, new TextEncoder().encode("42")), // the node answering
 * });
 * console.log(new TextDecoder().decode(await reply)); // 42
 * ```
 */
export class Caller {
  readonly #table = new PendingCalls<Waiter>();
  #expired: FailedCall<Waiter>[] = [];
  readonly #driver: Driver<FailedCall<Waiter>[]>;

  /** `cancel`: sends the `CANCEL` of call `id`; `expired` when its deadline passed. */
  constructor(private readonly cancel: (id: number, expired: boolean) => void) {
    const core: SansIoCore<FailedCall<Waiter>[]> = {
      tick: (now) => {
        for (const f of this.#table.tick(now)) this.#expired.push(f);
      },
      nextWake: () => this.#table.nextWake(),
      drain: () => {
        const expired = this.#expired;
        this.#expired = [];
        return expired;
      },
    };
    // Unref'd: a call is pending only while there is a session, whose socket keeps the process.
    this.#driver = new Driver(core, {
      act: (expired) => {
        for (const { call } of expired) this.#timedOut(call);
      },
    });
  }

  /**
   * Sends a call and resolves with the reply's payload. Rejects with `RpcError`: `timeout` when
   * no reply came by the deadline, `cancelled` when `signal` aborts, or what the node answered.
   */
  start(o: CallStart): Promise<Uint8Array> {
    const { procedure, startedAt, timeoutMs, signal } = o;
    return new Promise<Uint8Array>((resolve, reject) => {
      const onAbort = () => {
        const call = this.#table.complete(id);
        if (!call) return;
        this.#end(call, false);
        reject(new RpcError("cancelled", `${procedure}: cancelled by the caller`));
      };
      const waiter: Waiter = {
        resolve,
        reject,
        timeoutMs,
        detach: () => signal?.removeEventListener("abort", onAbort),
      };
      // A timeout no timer can wait for (negative, not finite, over 2^31 - 1 ms) passes at once,
      // as it did when each call had its own setTimeout.
      const span = timeoutMs >= 0 && timeoutMs <= MAX_TIMER_MS ? timeoutMs : 0;
      const { id } = this.#table.start({
        procedure,
        provider: NODE,
        now: startedAt,
        timeoutMs: span,
        context: waiter,
      });
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#driver.poke();
      o.send(id, Math.max(1, Math.round(startedAt + timeoutMs - monoNow())));
    });
  }

  /** A `REPLY` arrived (ignored when the call already ended). */
  reply(id: number, payload: Uint8Array): void {
    const call = this.#table.complete(id);
    if (!call) return;
    call.context.detach();
    call.context.resolve(payload);
  }

  /** A `FAIL` arrived: the node's error code (wire number) and message. */
  fail(id: number, code: number, message: string): void {
    const call = this.#table.complete(id);
    if (!call) return;
    call.context.detach();
    const name = rpcErrorCodeOf(code) ?? "handler_error";
    // The deadline is this client's: whichever of its timer and the node's (which runs on the
    // time remaining, so a hair earlier) fires first, the caller reads one message.
    if (name === "timeout") call.context.reject(this.#timeout(call));
    else call.context.reject(new RpcError(name, message));
  }

  /** The session is gone (or the client closed): every call fails, in id order, with `error()`. */
  failAll(error: () => RpcError): void {
    for (const { call } of this.#table.failProvider(NODE)) {
      call.context.detach();
      call.context.reject(error());
    }
  }

  /** Calls in flight. */
  get size(): number {
    return this.#table.size;
  }

  #timedOut(call: PendingCall<Waiter>): void {
    this.#end(call, true);
    call.context.reject(this.#timeout(call));
  }

  #timeout({ procedure, context }: PendingCall<Waiter>): RpcError {
    return new RpcError("timeout", `${procedure}: no reply within ${context.timeoutMs} ms`);
  }

  /** A call left the table without a reply: the node may still be working on it. */
  #end(call: PendingCall<Waiter>, expired: boolean): void {
    call.context.detach();
    this.cancel(call.id, expired);
  }
}
