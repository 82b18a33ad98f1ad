/** Toy sans-IO cores for the simulator's tests. */
import type { Addr, Core, Outgoing, Output, Rng } from "../../lib/mesh/types.ts";

export type ToyMsg =
  | { kind: "data"; n: number; sentAt: number }
  | { kind: "ping"; n: number; sentAt: number }
  | { kind: "pong"; n: number; sentAt: number };

export type ToyEvent =
  | { kind: "recv"; from: Addr; msg: ToyMsg; at: number }
  | { kind: "tick"; n: number; at: number; draw: number };

export interface ToyOptions {
  /** Peers to pick a random one from on every tick (none: no sends). */
  peers?: Addr[];
  /** Tick period (ms); undefined: no timer. */
  periodMs?: number;
  /** Time of the first tick (default: periodMs). */
  firstAt?: number;
  /** Answer a ping with a pong. */
  echo?: boolean;
  /** Emit events (off for the scale test). */
  events?: boolean;
  /** Message size in bytes (default 100). */
  size?: number;
}

const EMPTY: Output<never, never> = Object.freeze({ send: [], events: [] }) as never;

/** Sends `data` to a random peer every period; records what it receives; optionally echoes. */
export class Toy implements Core<ToyMsg, ToyEvent> {
  received: ToyMsg[] = [];
  receivedFrom: Addr[] = [];
  recvCount = 0;
  ticks = 0;
  sentCount = 0;
  #out: Outgoing<ToyMsg>[] = [];
  #events: ToyEvent[] = [];
  #next: number;
  readonly #o: ToyOptions;

  constructor(readonly addr: Addr, readonly rng: Rng, o: ToyOptions = {}) {
    this.#o = o;
    this.#next = o.periodMs === undefined ? Infinity : (o.firstAt ?? o.periodMs);
  }

  receive(now: number, from: Addr, msg: ToyMsg): void {
    this.recvCount++;
    if (this.#o.events !== false) {
      this.received.push(msg);
      this.receivedFrom.push(from);
      this.#events.push({ kind: "recv", from, msg, at: now });
    }
    if (this.#o.echo && msg.kind === "ping") {
      this.send(from, { kind: "pong", n: msg.n, sentAt: now });
    }
  }

  tick(now: number): void {
    const period = this.#o.periodMs;
    if (period === undefined) return;
    while (this.#next <= now) {
      this.ticks++;
      this.#next += period;
      const peers = this.#o.peers;
      const draw = this.rng();
      if (peers !== undefined && peers.length > 0) {
        const to = peers[Math.floor(draw * peers.length)]!;
        this.send(to, { kind: "data", n: this.sentCount, sentAt: now });
      }
      if (this.#o.events !== false) {
        this.#events.push({ kind: "tick", n: this.ticks, at: now, draw });
      }
    }
  }

  nextWake(): number {
    return this.#next;
  }

  /** Queues a message (tests call this through `sim.call`). */
  send(to: Addr, msg: ToyMsg): void {
    this.sentCount++;
    this.#out.push({ to, msg, size: this.#o.size ?? 100 });
  }

  drain(): Output<ToyMsg, ToyEvent> {
    if (this.#out.length === 0 && this.#events.length === 0) return EMPTY;
    const out = { send: this.#out, events: this.#events };
    this.#out = [];
    this.#events = [];
    return out;
  }
}

/** A core whose timer never advances: `nextWake()` is always 0 (a livelock). */
export class Stuck implements Core<ToyMsg, ToyEvent> {
  constructor(readonly addr: Addr) {}
  receive(): void {}
  tick(): void {}
  nextWake(): number {
    return 0;
  }
  drain(): Output<ToyMsg, ToyEvent> {
    return EMPTY;
  }
}
