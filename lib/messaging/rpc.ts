/**
 * RPC state: the procedure registry (who provides what, and which provider gets a call) and the
 * pending-call table (deadlines, cancellation, completion). Sans-IO: the clock is the `now`
 * handed to `start` and `tick`, randomness is an injected generator; no timers, no sockets.
 * docs/messaging.md lists the error codes.
 *
 * @example
 * ```ts
 * import { PendingCalls, ProcedureRegistry } from "./rpc.ts";
 * const registry = new ProcedureRegistry();
 * registry.register("math.add", { id: "local", local: true });
 * const provider = registry.choose("math.add", "local-first");
 * const calls = new PendingCalls<string>();
 * const call = calls.start({ procedure: "math.add", provider: provider.id, now: 0, timeoutMs: 500 });
 * calls.tick(600); // [{ call, error: RpcError timeout }]
 * ```
 */
import { RpcError } from "./errors.ts";
import { checkProcedure } from "./topics.ts";
import { MinHeap } from "../util/mod.ts";

/** Throws `RpcError("payload_too_large")` when `payload` is longer than `max` bytes. */
export function checkPayloadSize(payload: Uint8Array, max: number): Uint8Array {
  if (payload.byteLength > max) {
    throw new RpcError(
      "payload_too_large",
      `payload is ${payload.byteLength} bytes, the limit is ${max}`,
    );
  }
  return payload;
}

/** Validates a procedure name, throwing `RpcError("bad_request")` that names the problem. */
export function checkProcedureName(name: string): string {
  try {
    return checkProcedure(name);
  } catch (e) {
    throw new RpcError("bad_request", (e as Error).message, { cause: e });
  }
}

/** A provider: `local` when it runs in this process, else a remote node/session id. */
export interface Provider {
  readonly id: string;
  readonly local: boolean;
}

/** How `choose` picks among a procedure's providers. */
export type SelectionStrategy = "round-robin" | "random" | "local-first" | "nearest";

/** The strategies. */
export const SELECTION_STRATEGIES: readonly SelectionStrategy[] = [
  "round-robin",
  "random",
  "local-first",
  "nearest",
];

interface Entry {
  /** Providers in registration order. */
  readonly providers: Map<string, Provider>;
  /** Round-robin cursor. */
  cursor: number;
}

/**
 * Which providers serve which procedure. Several providers per procedure; each provider is
 * registered at most once per procedure (re-registering updates its `local` flag).
 */
export class ProcedureRegistry {
  private readonly procs = new Map<string, Entry>();
  private readonly byProvider = new Map<string, Set<string>>();
  private readonly random: (() => number) | undefined;

  /** `random` returns numbers in [0, 1); required only for the `"random"` strategy. */
  constructor(options: { random?: () => number } = {}) {
    this.random = options.random;
  }

  /**
   * Adds `provider` for `procedure` (validated: `RpcError("bad_request")` when invalid).
   * Returns false when it was already registered.
   */
  register(procedure: string, provider: Provider): boolean {
    checkProcedureName(procedure);
    let entry = this.procs.get(procedure);
    if (entry === undefined) {
      entry = { providers: new Map(), cursor: 0 };
      this.procs.set(procedure, entry);
    }
    const known = entry.providers.has(provider.id);
    entry.providers.set(provider.id, { id: provider.id, local: provider.local });
    let mine = this.byProvider.get(provider.id);
    if (mine === undefined) {
      mine = new Set();
      this.byProvider.set(provider.id, mine);
    }
    mine.add(procedure);
    return !known;
  }

  /** Removes one registration; returns false when it was not present. */
  unregister(procedure: string, providerId: string): boolean {
    const entry = this.procs.get(procedure);
    if (entry === undefined || !entry.providers.delete(providerId)) return false;
    if (entry.providers.size === 0) this.procs.delete(procedure);
    const mine = this.byProvider.get(providerId);
    mine?.delete(procedure);
    if (mine !== undefined && mine.size === 0) this.byProvider.delete(providerId);
    return true;
  }

  /** Removes every registration of a provider (its session closed); returns the procedures. */
  unregisterProvider(providerId: string): string[] {
    const procs = [...(this.byProvider.get(providerId) ?? [])];
    for (const p of procs) this.unregister(p, providerId);
    return procs;
  }

  /** The providers of `procedure`, in registration order. */
  providers(procedure: string): Provider[] {
    return [...(this.procs.get(procedure)?.providers.values() ?? [])];
  }

  /** The procedures with at least one provider, sorted. */
  procedures(): string[] {
    return [...this.procs.keys()].sort();
  }

  /** Counts for inspection. */
  counts(): { procedures: number; providers: number; registrations: number } {
    let registrations = 0;
    for (const e of this.procs.values()) registrations += e.providers.size;
    return { procedures: this.procs.size, providers: this.byProvider.size, registrations };
  }

  /**
   * Picks the provider for one call; throws `RpcError("no_provider")` when there is none (or
   * all are in `exclude`, e.g. providers already tried on a retry).
   *
   * - `"round-robin"`: a cursor per procedure over the providers in registration order.
   * - `"random"`: uniform, from the injected generator.
   * - `"local-first"`: round-robin over local providers; over remote ones only when no local
   *   provider is available.
   * - `"nearest"`: the lowest `cost` (the router's: 0 for a local provider, the path's RTT for a
   *   far one); round-robin among equal costs. Without `cost`, as `"local-first"`.
   */
  choose(
    procedure: string,
    strategy: SelectionStrategy = "round-robin",
    options: { exclude?: ReadonlySet<string>; cost?: (p: Provider) => number } = {},
  ): Provider {
    const entry = this.procs.get(procedure);
    let candidates = entry === undefined ? [] : [...entry.providers.values()];
    const exclude = options.exclude;
    if (exclude !== undefined && exclude.size > 0) {
      candidates = candidates.filter((p) => !exclude.has(p.id));
    }
    if (entry === undefined || candidates.length === 0) {
      throw new RpcError(
        "no_provider",
        `no provider for ${JSON.stringify(procedure)}` +
          (entry !== undefined ? " (all providers already tried)" : ""),
      );
    }
    switch (strategy) {
      case "round-robin":
        return roundRobin(entry, candidates);
      case "random": {
        if (this.random === undefined) {
          throw new TypeError(
            "the 'random' strategy needs a generator: new ProcedureRegistry({ random })",
          );
        }
        const i = Math.floor(this.random() * candidates.length);
        return candidates[Math.min(candidates.length - 1, Math.max(0, i))] as Provider;
      }
      case "local-first": {
        const local = candidates.filter((p) => p.local);
        return roundRobin(entry, local.length > 0 ? local : candidates);
      }
      case "nearest": {
        const cost = options.cost ?? ((p: Provider) => (p.local ? 0 : 1));
        let best = Infinity;
        let near: Provider[] = [];
        for (const p of candidates) {
          const c = cost(p);
          if (c < best) {
            best = c;
            near = [p];
          } else if (c === best) near.push(p);
        }
        return roundRobin(entry, near.length > 0 ? near : candidates);
      }
      default:
        throw new TypeError(
          `unknown selection strategy ${JSON.stringify(strategy)}; use ${
            SELECTION_STRATEGIES.join(", ")
          }`,
        );
    }
  }
}

function roundRobin(entry: Entry, candidates: readonly Provider[]): Provider {
  const p = candidates[entry.cursor % candidates.length] as Provider;
  entry.cursor = entry.cursor + 1 >= Number.MAX_SAFE_INTEGER ? 0 : entry.cursor + 1;
  return p;
}

/** One call in flight. `context` is whatever the driver needs to answer it (a resolver, …). */
export interface PendingCall<C> {
  readonly id: number;
  readonly procedure: string;
  readonly provider: string;
  /** When it was started (the injected clock's ms). */
  readonly startedAt: number;
  /** When it times out (ms, same clock). */
  readonly deadline: number;
  readonly context: C;
}

/** A call that ended without a reply, with the error to give its caller. */
export interface FailedCall<C> {
  readonly call: PendingCall<C>;
  readonly error: RpcError;
}

/**
 * The pending-call table. Ids are assigned 1, 2, 3… (deterministic). Every call leaves the table
 * exactly once: `complete`, `fail`, `cancel`, `failProvider` or `tick`; later attempts on the same
 * id return undefined (a late reply after a timeout is ignored, not an error).
 */
export class PendingCalls<C = undefined> {
  private readonly calls = new Map<number, PendingCall<C>>();
  /** Min-heap of (deadline, id); entries of calls already gone are skipped lazily. */
  private readonly heap = new MinHeap<[number, number]>(less);
  private nextId = 1;

  /** Registers a call with deadline `now + timeoutMs`; returns it. */
  start(options: {
    procedure: string;
    provider: string;
    now: number;
    timeoutMs: number;
    context?: C;
  }): PendingCall<C> {
    const { procedure, provider, now, timeoutMs } = options;
    if (!Number.isFinite(now)) throw new RangeError(`now must be a finite number, got ${now}`);
    if (!(timeoutMs >= 0) || !Number.isFinite(timeoutMs)) {
      throw new RangeError(`timeoutMs must be a finite number >= 0, got ${timeoutMs}`);
    }
    const call: PendingCall<C> = {
      id: this.nextId++,
      procedure,
      provider,
      startedAt: now,
      deadline: now + timeoutMs,
      context: options.context as C,
    };
    this.calls.set(call.id, call);
    this.heap.push([call.deadline, call.id]);
    // Compact when most heap entries belong to calls that already ended.
    if (this.heap.size > 64 && this.heap.size > 4 * this.calls.size) {
      this.heap.retain(([, id]) => this.calls.has(id));
    }
    return call;
  }

  /** The reply arrived: removes and returns the call, or undefined when it already ended. */
  complete(id: number): PendingCall<C> | undefined {
    const call = this.calls.get(id);
    if (call !== undefined) this.calls.delete(id);
    return call;
  }

  /**
   * The call failed with `error` (e.g. a `handler_error` reply); removes it and returns it with
   * the error, or undefined when it already ended.
   */
  fail(id: number, error: RpcError): FailedCall<C> | undefined {
    const call = this.complete(id);
    return call === undefined ? undefined : { call, error };
  }

  /** The caller cancelled: like `fail` with `RpcError("cancelled")`. */
  cancel(id: number, reason?: string): FailedCall<C> | undefined {
    return this.fail(id, new RpcError("cancelled", reason));
  }

  /** Whether any call is pending at `provider`. */
  hasProvider(provider: string): boolean {
    for (const call of this.calls.values()) if (call.provider === provider) return true;
    return false;
  }

  /** A provider went away: fails its calls with `unavailable`, in id order. */
  failProvider(provider: string): FailedCall<C>[] {
    const out: FailedCall<C>[] = [];
    for (const call of [...this.calls.values()]) {
      if (call.provider !== provider) continue;
      this.calls.delete(call.id);
      out.push({
        call,
        error: new RpcError("unavailable", `provider ${provider} went away before replying`),
      });
    }
    return out;
  }

  /**
   * Advances the clock to `now`: removes and returns the calls whose deadline is at or before
   * `now`, earliest first, each with `RpcError("timeout")`.
   */
  tick(now: number): FailedCall<C>[] {
    const out: FailedCall<C>[] = [];
    for (;;) {
      const top = this.heap.peek();
      if (top === undefined || top[0] > now) break;
      this.heap.pop();
      const call = this.calls.get(top[1]);
      if (call === undefined) continue;
      this.calls.delete(call.id);
      out.push({
        call,
        error: new RpcError(
          "timeout",
          `no reply from ${call.provider} for ${call.procedure} within ${
            call.deadline - call.startedAt
          } ms`,
        ),
      });
    }
    return out;
  }

  /**
   * The earliest deadline of a call still pending (when `tick` must next run, for the driver's one
   * timer), or `Infinity` (the sans-IO contract, lib/util/sansio.ts).
   */
  nextWake(): number {
    for (;;) {
      const top = this.heap.peek();
      if (top === undefined) return Infinity;
      if (this.calls.has(top[1])) return top[0];
      this.heap.pop();
    }
  }

  /** The call with `id`, if still pending. */
  get(id: number): PendingCall<C> | undefined {
    return this.calls.get(id);
  }

  /** Calls pending. */
  get size(): number {
    return this.calls.size;
  }
}

function less(a: readonly [number, number], b: readonly [number, number]): boolean {
  return a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);
}
