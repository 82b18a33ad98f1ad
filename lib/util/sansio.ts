/**
 * The one contract of every protocol core (membership, overlay, router, and the DHT to come), and
 * the one driver that runs a core on real time. docs/architecture.md, "The sans-IO contract".
 *
 * A core is a state machine with no clock, no socket, no timer and no `Math.random` inside:
 *
 * - **now passed in**: every input that can read or schedule time takes `now` (ms on any
 *   monotonic origin) as its first argument; so does `tick(now)`, which runs what is due.
 * - **actions drained**: what the core wants done (send this, connect there, report that) it
 *   queues; the driver takes the queue with `drain()` after each input and after each tick, and
 *   does it. A core never calls out.
 * - **next wake-up**: `nextWake()` says when `tick` must run next (same clock), or `Infinity`.
 * - randomness comes from an injected `Rng`.
 *
 * Drivers: `Driver` below runs a core on real time (one timer at `nextWake`); the simulator
 * (lib/sim) runs the same cores on virtual time, from its own event queue.
 */
import { monoNow } from "./clock.ts";

/**
 * The longest delay a timer takes (2^31 - 1 ms, about 24.8 days): longer ones fire at once in
 * every runtime. A wake-up further away fires early, finds nothing due, and re-arms.
 */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A source of numbers in [0, 1): `Math.random` on real nodes, a seeded stream in simulation. */
export type Rng = () => number;

/** What every core has: time goes in through `tick`, and it says when it next needs it. */
export interface Timed {
  /** Time passed: run whatever is due at `now`. */
  tick(now: number): void;
  /** The next time `tick` must run (ms, the clock of `now`), or `Infinity` when nothing waits. */
  nextWake(): number;
}

/** A protocol core: `Timed`, with its actions taken by `drain`. */
export interface SansIoCore<A> extends Timed {
  /** Takes the actions queued since the last call. */
  drain(): A;
}

/** Options of a `Driver`. */
export interface DriverOptions<A> {
  /** Does what the core asked for (called with every drain that is not empty of meaning). */
  act: (actions: A) => void;
  /**
   * Coalesce: `poke()` drains once the current burst of inputs is over (a zero-delay timer)
   * instead of at once. For cores whose actions are plans over all inputs (the overlay).
   */
  coalesce?: boolean;
  /** The clock; default `monoNow`. */
  now?: () => number;
  /** Let the process exit while only this timer is pending (default true). */
  unref?: boolean;
  /** Where a failing `tick` or `act` is reported; default: `console.error`. */
  onError?: (error: unknown) => void;
}

/**
 * Runs one core on real time: after every input to the core, call `poke()`; the driver drains the
 * core, acts, and keeps one timer at the core's `nextWake()`, which ticks the core and pokes again.
 * A `tick` or an `act` that throws does not stop the driver: the error goes to `onError` and the
 * timer is re-armed.
 */
export class Driver<A> {
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;
  #soon: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;
  readonly #now: () => number;

  constructor(
    private readonly core: SansIoCore<A>,
    private readonly o: DriverOptions<A>,
  ) {
    this.#now = o.now ?? monoNow;
  }

  /** The core was fed: drain and act (now, or once the burst is over), then re-arm the timer. */
  poke(): void {
    if (this.#stopped) return;
    if (!this.o.coalesce) return this.#run();
    if (this.#soon !== undefined) return;
    this.#soon = setTimeout(() => {
      this.#soon = undefined;
      this.#run();
    }, 0);
  }

  /** Drains and acts now, whatever `coalesce` says (a last plan before stopping, say). */
  flush(): void {
    if (this.#stopped) return;
    clearTimeout(this.#soon);
    this.#soon = undefined;
    this.#run();
  }

  /** No more drains or ticks; the timers are cleared. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#soon);
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  #run(): void {
    try {
      this.o.act(this.core.drain());
    } catch (e) {
      this.#failed(e);
    }
    this.#arm();
  }

  #failed(e: unknown): void {
    if (this.o.onError) this.o.onError(e);
    else console.error("macula: a protocol core's driver caught:", e);
  }

  #arm(): void {
    if (this.#stopped) return;
    const wake = this.core.nextWake();
    if (wake === Infinity || wake >= this.#timerAt) return;
    clearTimeout(this.#timer);
    this.#timerAt = wake;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      if (this.#stopped) return;
      try {
        this.core.tick(this.#now());
      } catch (e) {
        this.#failed(e);
      }
      this.#run();
    }, Math.min(MAX_TIMER_MS, Math.max(0, wake - this.#now())));
    if (this.o.unref ?? true) (this.#timer as { unref?: () => void }).unref?.();
  }
}
