/**
 * Send scheduling: when each connection is serviced and its packets leave. A connection that
 * has something to do (a packet came in, the application wrote, a timer fired) is marked dirty;
 * one flush services every dirty connection and sends what quiche built, batched into one socket
 * write (`sendmmsg` on Bun).
 *
 * - **When**: an idle endpoint flushes as soon as the current task is done (latency); a busy one
 *   (packets streaming in) once per event-loop turn, so a burst is batched.
 * - **Answers ride with ACKs**: when data reached the application, the flush waits a few
 *   microtask hops so an immediate answer leaves with the ACK in one packet; a lone ACK of one
 *   packet is held up to `TUNING.ackHoldMs` for data to ride with.
 * - **Fairness**: a connection emits at most `TUNING.sendBurst` packets per flush; packets for
 *   paths being probed or retired go first, so a busy active path starves neither.
 * - **Deadlines**: after sending, each connection's next deadline (quiche's timer or its
 *   keep-alive) is set in one timer heap for the endpoint; when it fires, the connection is
 *   serviced again.
 */
import { setImmediate } from "node:timers";
import { monoNow } from "../util/mod.ts";
import type { QuicConnection } from "./connection.ts";
import { TUNING } from "./defaults.ts";
import { maxSegments } from "./gso.ts";
import type { HostPort } from "./native.ts";
import type { EndpointSockets } from "./sockets.ts";
import { TimerHeap } from "./timers.ts";
import { TUNNEL_HOST, type Tunnels } from "./tunnels.ts";

const SLOTS = TUNING.sendSlots;
const SEND_BURST = TUNING.sendBurst;
const BUSY_MS = TUNING.busyMs;

/** What the sender needs from its endpoint. */
export interface SenderHost {
  /**
   * After a flush built packets for `c`: settles its state (closed, a dial failed). False when
   * the connection is gone, so no deadline is set for it.
   */
  sent(c: QuicConnection): boolean;
}

/** The dirty list, the flush, ACK holding, and the connections' deadlines. */
export class Sender {
  #dirty: QuicConnection[] = [];
  #flushScheduled = false;
  /** When the last flush ran (`monoNow()` ms; never: -Infinity). */
  #lastFlushAt = -Infinity;
  readonly #slots: Uint8Array[];
  readonly #flushBound = () => this.flush();
  /** Connections whose lone ACK is held back (`#holdAck`). */
  #held: QuicConnection[] = [];
  #ackTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #timers: TimerHeap<QuicConnection>;

  constructor(
    private readonly host: SenderHost,
    private readonly sockets: EndpointSockets,
    private readonly tunnels: Tunnels,
    maxUdpPayload: number,
    private readonly keepAliveMs: number,
  ) {
    this.#timers = new TimerHeap((due) => this.#onTimers(due));
    // Slots are exactly one packet long and back to back: full packets in consecutive slots
    // are one contiguous run, which a GSO socket sends as one datagram.
    const slotSize = maxUdpPayload;
    this.#slotSize = slotSize;
    this.#maxRun = Math.min(TUNING.gsoRun, maxSegments(slotSize));
    const arena = new Uint8Array(slotSize * SLOTS);
    this.#arena = arena;
    this.#slots = Array.from(
      { length: SLOTS },
      (_, i) => arena.subarray(i * slotSize, (i + 1) * slotSize),
    );
  }

  readonly #arena: Uint8Array;
  readonly #slotSize: number;
  readonly #maxRun: number;
  /** The run of packets being gathered for one GSO datagram: first slot, packets, bytes, peer. */
  #runSlot = 0;
  #runCount = 0;
  #runBytes = 0;
  #runTo: HostPort | null = null;
  /** The run's last packet was a full segment (only then may another join it). */
  #runFull = false;

  /** Puts the gathered run into the socket's batch (one datagram the kernel segments). */
  #endRun(): void {
    const to = this.#runTo;
    if (to === null) return;
    this.#runTo = null;
    const start = this.#runSlot * this.#slotSize;
    const data = this.#arena.subarray(start, start + this.#runBytes);
    if (this.#runCount === 1) this.sockets.sendFrom(data, this.sockets.local.port, to);
    else this.sockets.sendRun(data, to);
  }

  /** Hands the batch to the kernel (the gathered run first). */
  #flushSocket(): void {
    this.#endRun();
    this.sockets.active.flush();
  }

  /** Marks `c` for servicing and sending in the next flush, and schedules the flush. */
  dirty(c: QuicConnection): void {
    if (!c.inDirty) {
      c.inDirty = true;
      this.#dirty.push(c);
    }
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      // Idle (nothing flushed lately): flush as soon as the current task is done, for latency.
      // Busy (packets streaming in): flush once per event-loop turn, so a burst is batched.
      if (monoNow() - this.#lastFlushAt < BUSY_MS) setImmediate(this.#flushBound);
      else queueMicrotask(this.#flushBound);
    }
  }

  /** Sends one datagram now, from the active socket or into a tunnel. */
  sendNow(data: Uint8Array, port: number, host: string): void {
    if (host === TUNNEL_HOST) return this.tunnels.send(port, data);
    this.sockets.sendNow(data, port, host);
  }

  /** `c` has no deadline any more (it closed). */
  forget(c: QuicConnection): void {
    this.#timers.set(c, null);
  }

  /** Stops every timer (the endpoint is closing). */
  stop(): void {
    this.#timers.stop();
    clearTimeout(this.#ackTimer);
  }

  /**
   * Flushes after the application's pending microtasks ran (a short chain of microtask hops), so
   * an answer to what was just delivered joins the ACK in one packet.
   */
  #flushAfterApp(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    let hops = TUNING.appHops;
    const hop = () => {
      if (--hops > 0) queueMicrotask(hop);
      else this.flush();
    };
    queueMicrotask(hop);
  }

  /** Services every dirty connection and sends what quiche built for it. */
  flush(): void {
    this.#flushScheduled = false;
    this.#lastFlushAt = monoNow();
    const dirty = this.#dirty;
    if (dirty.length === 0) return;
    this.#dirty = [];
    let slot = 0;
    const again: QuicConnection[] = [];
    let deferredOnly = true;
    const sent: QuicConnection[] = [];
    for (const c of dirty) {
      c.inDirty = false;
      const woke = c.service();
      if (woke && !c.deferred) {
        // Data reached the application: let its microtasks run first (#flushAfterApp), so an
        // immediate answer leaves with the ACK in one packet instead of a lone ACK now.
        c.deferred = true;
        c.appWrote = false;
        again.push(c);
        continue;
      }
      if (
        c.deferred && !c.appWrote && !c.ackDue && c.recvSinceSend === 1 && c.state === "open" &&
        c.probing.length === 0
      ) {
        // The application did not answer: all quiche has to send is the ACK of one packet.
        c.deferred = false;
        this.#holdAck(c);
        continue;
      }
      c.deferred = false;
      c.ackDue = false;
      c.ackHeld = false;
      c.recvSinceSend = 0;
      sent.push(c);
      c.pushWrites();
      const n = c.native;
      if (c.probing.length > 0) slot = this.#sendProbes(c, slot);
      let i = 0;
      for (; i < SEND_BURST; i++) {
        if (slot === SLOTS) {
          this.#flushSocket();
          slot = 0;
        }
        const buf = this.#slots[slot]!;
        let r;
        try {
          r = n.send(buf);
        } catch {
          break;
        }
        if (r === null) break;
        if (this.#emit(slot, buf, r[0], r[1].from, r[1].to)) slot++;
      }
      if (i === SEND_BURST) {
        again.push(c);
        deferredOnly = false;
      }
    }
    this.#flushSocket();
    const now = monoNow();
    for (const c of sent) if (this.host.sent(c)) this.#arm(c, now);
    if (again.length > 0) {
      for (const c of again) {
        if (!c.inDirty) {
          c.inDirty = true;
          this.#dirty.push(c);
        }
      }
      if (deferredOnly) this.#flushAfterApp();
      else if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        setImmediate(this.#flushBound);
      }
    }
  }

  /**
   * Holds back the ACK of a single packet for up to `TUNING.ackHoldMs` (RFC 9000 §13.2.1 allows
   * up to max_ack_delay, 25 ms), so it rides with the application's next data to that peer
   * instead of waking the peer with a packet of its own. A relay (a node passing a request on)
   * answers on another connection, later: without the hold every hop costs a lone ACK. A second
   * packet from the peer ends the hold at once (§13.2.2: acknowledge every second packet).
   */
  #holdAck(c: QuicConnection): void {
    c.ackHeld = true;
    this.#held.push(c);
    this.#ackTimer ??= setTimeout(this.#releaseAcks, TUNING.ackHoldMs);
  }

  readonly #releaseAcks = () => {
    this.#ackTimer = undefined;
    const held = this.#held;
    this.#held = [];
    for (const c of held) {
      if (!c.ackHeld) continue;
      c.ackHeld = false;
      c.ackDue = true;
      this.dirty(c);
    }
  };

  /**
   * Sends a packet quiche built. True when it went into the current batch (its slot is used);
   * packets into a tunnel or for a socket left by `rebind` go out at once.
   */
  #emit(slot: number, buf: Uint8Array, len: number, from: HostPort, to: HostPort): boolean {
    if (to.host === TUNNEL_HOST) {
      this.tunnels.send(to.port, buf.subarray(0, len));
      return false;
    }
    const active = this.sockets.active;
    const gso = active.sendRun !== undefined ? active.gso ?? 0 : 0;
    if (gso === this.#slotSize && from.port === this.sockets.local.port) {
      // With GSO: a packet joins the run when the run's packets so far are full segments to
      // the same peer in the slots just before it; otherwise it starts a run of its own.
      const run = this.#runTo;
      if (
        run !== null && this.#runFull && this.#runCount < this.#maxRun &&
        slot === this.#runSlot + this.#runCount && run.port === to.port && run.host === to.host
      ) {
        this.#runCount++;
        this.#runBytes += len;
      } else {
        this.#endRun();
        this.#runSlot = slot;
        this.#runCount = 1;
        this.#runBytes = len;
        this.#runTo = to;
      }
      this.#runFull = len === gso;
      return true;
    }
    this.#endRun();
    return this.sockets.sendFrom(buf.subarray(0, len), from.port, to);
  }

  /**
   * Packets for paths other than the active one go first: probes of a new path, and loss
   * recovery of packets still in flight on the old one. `send()` serves only the active path
   * while it has data, which would starve both.
   */
  #sendProbes(c: QuicConnection, slot: number): number {
    const n = c.native;
    for (const [from, to] of c.probing) {
      for (let i = 0; i < 16; i++) {
        if (slot === SLOTS) {
          this.#flushSocket();
          slot = 0;
        }
        const buf = this.#slots[slot]!;
        let r;
        try {
          r = n.sendOnPath(buf, from, to);
        } catch {
          break;
        }
        if (r === null) break;
        if (this.#emit(slot, buf, r[0], r[1].from, r[1].to)) slot++;
      }
    }
    return slot;
  }

  /** Sets the next deadline of `c`: quiche's timer or the keep-alive, whichever is first. */
  #arm(c: QuicConnection, now: number): void {
    const t = c.native.timeout();
    let at = t === null ? Infinity : now + t;
    if (c.keepAliveAt > 0 && c.keepAliveAt < at) at = c.keepAliveAt;
    this.#timers.set(c, at === Infinity ? null : at);
  }

  #onTimers(due: QuicConnection[]): void {
    const now = monoNow();
    for (const c of due) {
      c.native.onTimeout();
      c.timerFired();
      if (c.keepAliveAt > 0 && now >= c.keepAliveAt && c.isOpen) {
        c.native.sendAckEliciting();
        c.keepAliveAt = now + this.keepAliveMs;
      }
      this.dirty(c);
    }
    this.flush();
  }
}
