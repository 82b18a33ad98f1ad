/**
 * What bench/udp's sender and receiver processes agree on: the datagram layout, the result
 * lines, the variants. Every datagram is `size` bytes: its sequence number (u32 LE) at 0, the
 * run's tag (u32 LE) at 4, `seq ^ tag` (u32 LE) in its last 4 bytes, zeros between. The receiver
 * checks the length, the tag and the sequence range of every datagram, and the tail of every
 * 64th, and counts distinct sequence numbers, so a datagram that was not sent as such (or a
 * super-datagram the kernel did not split) cannot be counted.
 */
import { readFileSync } from "node:fs";

/** How each sender variant hands datagrams to the kernel. */
export const SENDERS = {
  "bun-sendmany": "`Bun.udpSocket` `sendMany`, 32 datagrams per call (lib/quic/udp.ts without GSO)",
  "node-dgram": "`node:dgram` `send` per datagram, on Bun; the callback of each 32nd awaited",
  "ffi-sendmmsg": "`bun:ffi` to libc: own socket, `sendmmsg` of 32 datagrams per call",
  "ffi-gso":
    "`bun:ffi`: own socket, `sendmmsg` of super-datagrams with a `UDP_SEGMENT` cmsg (1350), 32 segments per call",
  "bun-gso":
    "`Bun.udpSocket` with `setsockopt(UDP_SEGMENT, 1350)` on its `fd` (through `bun:ffi`), `sendMany` of super-datagrams, 32 segments per call",
  "bun-gso10":
    "as `bun-gso`, super-datagrams of 10 segments (quinn's batch), 4 per `sendMany` (10 + 10 + 10 + 2)",
} as const;
export type Sender = keyof typeof SENDERS;

/** How each receiver variant takes datagrams from the kernel. */
export const RECEIVERS = {
  bun: "`Bun.udpSocket` `data` callback per datagram",
  ffi: "`bun:ffi` `recvmmsg` (32 per call, `MSG_WAITFORONE`) in a blocking loop, no GRO",
  "ffi-gro": "`bun:ffi` `recvmmsg` of `UDP_GRO` super-datagrams (8 per call) in a blocking loop",
  "sigio-gro":
    "`UDP_GRO` socket with `O_ASYNC`: each `SIGIO` (`process.on`) drains it with non-blocking `recvmmsg`; on Bun's event loop",
  sink:
    "a socket nobody reads until the sender is done: the kernel drops nearly every datagram at the socket, so no receiver wake-ups",
} as const;
export type Receiver = keyof typeof RECEIVERS;

export const HOST = "127.0.0.1";
export const MIN_SIZE = 12;
/** Datagrams per send call (per syscall for every variant but node-dgram). */
export const BATCH = 32;

/** Writes datagram `seq`'s header and tail into `u8` at `off`. */
export function stampDatagram(
  dv: DataView,
  off: number,
  size: number,
  seq: number,
  tag: number,
): void {
  dv.setUint32(off, seq, true);
  dv.setUint32(off + 4, tag, true);
  dv.setUint32(off + size - 4, (seq ^ tag) >>> 0, true);
}

const u32 = (b: Uint8Array, o: number): number =>
  (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;

/** Counts and checks received datagrams. */
export class Tally {
  received = 0;
  distinct = 0;
  bad = 0;
  /** Super-datagrams (GRO) or recvmmsg calls, whichever the receiver counts as a wake-up. */
  wakeups = 0;
  firstBad = "";
  readonly #seen: Uint8Array;
  constructor(readonly expect: number, readonly size: number, readonly tag: number) {
    this.#seen = new Uint8Array(expect);
  }
  #fail(why: string): void {
    this.bad++;
    if (this.firstBad === "") this.firstBad = why;
  }
  /** One datagram of `len` bytes at `off` in `b`. */
  check(b: Uint8Array, off: number, len: number): void {
    this.received++;
    if (len !== this.size) return this.#fail(`length ${len}, want ${this.size}`);
    const seq = u32(b, off);
    if (u32(b, off + 4) !== this.tag) return this.#fail(`seq ${seq}: wrong tag`);
    if (seq >= this.expect) return this.#fail(`seq ${seq} out of range`);
    if ((seq & 63) === 0 && u32(b, off + len - 4) !== ((seq ^ this.tag) >>> 0)) {
      return this.#fail(`seq ${seq}: wrong tail`);
    }
    if (this.#seen[seq] === 0) {
      this.#seen[seq] = 1;
      this.distinct++;
    }
  }
}

/** The sender's result line. */
export interface SendResult {
  sender: Sender;
  /** Datagrams measured (after the warm-up) and their payload bytes. */
  datagrams: number;
  bytes: number;
  /** API calls (syscalls for the ffi variants) in the measured part. */
  calls: number;
  /** Calls that took fewer datagrams than offered (then the sender waited or retried). */
  partial: number;
  userUs: number;
  sysUs: number;
  wallMs: number;
}

/** The receiver's result line. */
export interface RecvResult {
  receiver: Receiver;
  expect: number;
  received: number;
  distinct: number;
  bad: number;
  firstBad: string;
  wakeups: number;
  /** The receiving socket's `drops` in /proc/net/udp (its buffer was full), -1 if not found. */
  drops: number;
  /** CPU from ready to the result, all of it spent on the datagrams (the process idles else). */
  userUs: number;
  sysUs: number;
  /** Why it stopped: `all` received, `idle` (nothing for a while), or `deadline`. */
  end: "all" | "idle" | "deadline";
}

/** `drops` of the IPv4 UDP socket bound to 127.0.0.1:`port` (/proc/net/udp), -1 if none. */
export function socketDrops(port: number): number {
  let text = "";
  try {
    text = readFileSync("/proc/net/udp", "utf8");
  } catch {
    return -1;
  }
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1] === local && f.length >= 13) return Number(f[12]);
  }
  return -1;
}

export function describeError(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
