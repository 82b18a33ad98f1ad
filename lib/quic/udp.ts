/**
 * The UDP socket adapter: `Bun.udpSocket` with `sendMany` batching on Bun, `node:dgram` on Deno
 * and Node. One socket per endpoint; everything above speaks only this interface, so tests can
 * wrap it (a lossy adapter, for example).
 */
import dgram from "node:dgram";
import { TUNING } from "./defaults.ts";
import { disableGso, enableGso, enableGsoNow, maxSegments } from "./gso.ts";

/** Two hosts are the same with or without the IPv4-mapped IPv6 prefix (dual-stack sockets). */
export function sameHost(a: string, b: string): boolean {
  return a === b || a === `::ffff:${b}` || b === `::ffff:${a}`;
}

/** Called for every datagram received. `data` is only valid during the call. */
export type PacketHandler = (data: Uint8Array, host: string, port: number) => void;

/** Counters kept by a socket adapter. */
export interface UdpStats {
  /** Datagrams handed to the kernel. */
  sent: number;
  /** Datagrams received. */
  received: number;
  /** Datagrams dropped because the kernel's send buffer stayed full past our queue bound. */
  sendDropped: number;
  /** Send errors reported by the kernel (e.g. unreachable). */
  sendErrors: number;
}

/** A bound UDP socket. */
export interface UdpSocket {
  /** The bound address (the host as given, the port the kernel chose when 0 was asked). */
  readonly host: string;
  readonly port: number;
  readonly stats: UdpStats;
  /**
   * The GSO segment size when the socket segments runs itself (lib/quic/gso.ts, `sendRun`).
   * Absent or 0: no GSO. Either way a datagram passed to `send` leaves as it is.
   */
  readonly gso?: number;
  /**
   * Queues one datagram. `data` must not change until the next `flush()` returns; adapters that
   * keep it longer copy it.
   */
  send(data: Uint8Array, port: number, host: string): void;
  /**
   * Queues a GSO run (`gso` set; the sender makes runs only for a socket that has this):
   * packets of `gso` bytes back to back, the last one shorter, which the kernel sends as
   * packets (cut here if GSO went off meanwhile). Same lifetime rule as `send`.
   */
  sendRun?(data: Uint8Array, port: number, host: string): void;
  /** Hands every queued datagram to the kernel (one `sendmmsg` on Bun). */
  flush(): void;
  /** Sets the IP TTL of datagrams sent from now on (NAT traversal probes use it). */
  setTTL(ttl: number): void;
  close(): void;
}

/** Options for opening a socket. */
export interface UdpSocketOptions {
  host: string;
  port: number;
  onPacket: PacketHandler;
  /** The largest datagram the endpoint sends: the segment size, if the socket can offer GSO. */
  segment?: number;
}

/** Opens a UDP socket; the endpoint's only way to reach the network. */
export type UdpSocketFactory = (opts: UdpSocketOptions) => Promise<UdpSocket>;

/** Bound on datagrams waiting for the kernel's send buffer to drain; QUIC recovers the rest. */
const MAX_BACKLOG = TUNING.udpBacklog;

const isIPv6 = (host: string) => host.includes(":");

type Batch = (Uint8Array | number | string)[];

/** `batch` with every datagram longer than `g` cut into datagrams of `g` bytes (the last shorter). */
function split(batch: Batch, g: number): Batch {
  const out: Batch = [];
  for (let i = 0; i < batch.length; i += 3) {
    const d = batch[i] as Uint8Array;
    if (g === 0 || d.length <= g) {
      out.push(d, batch[i + 1]!, batch[i + 2]!);
      continue;
    }
    for (let o = 0; o < d.length; o += g) {
      out.push(d.subarray(o, o + g), batch[i + 1]!, batch[i + 2]!);
    }
  }
  return out;
}

class BunUdp implements UdpSocket {
  readonly stats: UdpStats = { sent: 0, received: 0, sendDropped: 0, sendErrors: 0 };
  gso = 0;
  /** The segment size GSO had (runs queued after it went off are cut to it). */
  #lastGso = 0;
  #batch: Batch = [];
  #backlog: Batch = [];
  /** Datagrams longer than a segment that are not runs (`send` with GSO on). */
  #whole: Batch = [];
  constructor(
    private readonly sock: Bun.udp.Socket<"uint8array">,
    readonly host: string,
    readonly port: number,
    private readonly fd: number,
  ) {}

  /** GSO is on at segment size `g`. */
  useGso(g: number): void {
    this.gso = g;
    this.#lastGso = g;
  }

  /** Datagrams on the wire for the first `entries` of `batch` (a GSO run counts its segments). */
  #datagrams(batch: Batch, entries: number): number {
    const g = this.gso;
    if (g === 0) return entries;
    let n = 0;
    for (let i = 0; i < entries * 3; i += 3) {
      n += Math.ceil((batch[i] as Uint8Array).length / g) || 1;
    }
    return n;
  }

  /**
   * A send failed while GSO was on: the path or the device may not take segmented datagrams (a
   * low MTU refuses even single packets then), so GSO goes off for good and what failed is sent
   * again packet by packet, once. Errors are counted for what still fails.
   */
  #sendFailed(batch: Batch): void {
    const g = this.gso;
    if (g === 0) {
      this.stats.sendErrors += batch.length / 3;
      return;
    }
    disableGso(this.fd);
    this.gso = 0;
    const again = split(batch, g);
    this.#backlog = split(this.#backlog, g);
    try {
      const sent = this.sock.sendMany(again);
      this.stats.sent += sent;
      if (sent * 3 < again.length) this.#keep(again, sent * 3);
    } catch {
      this.stats.sendErrors += again.length / 3;
    }
  }

  send(data: Uint8Array, port: number, host: string): void {
    // With GSO on, a datagram longer than a segment that is not a run (a relayed packet with
    // its header) must not be cut: it goes in a batch of its own, with GSO off for it.
    if (this.gso > 0 && data.length > this.gso) this.#whole.push(data, port, host);
    else this.#batch.push(data, port, host);
  }

  sendRun(data: Uint8Array, port: number, host: string): void {
    if (this.gso > 0) this.#batch.push(data, port, host);
    else this.#batch.push(...split([data, port, host], this.#lastGso));
  }

  flush(): void {
    const batch = this.#batch;
    if (batch.length > 0) {
      // The batch array is reused: sendMany is synchronous and #keep copies what it keeps.
      if (this.#backlog.length > 0) {
        this.#keep(batch, 0);
      } else {
        let sent = 0;
        try {
          sent = this.sock.sendMany(batch);
          this.stats.sent += this.#datagrams(batch, sent);
          if (sent * 3 < batch.length) this.#keep(batch, sent * 3);
        } catch {
          this.#sendFailed(batch);
        }
      }
      batch.length = 0;
    }
    if (this.#whole.length > 0) this.#sendWhole();
  }

  /** Datagrams longer than a segment that are not runs: sent with GSO off for the call. */
  #sendWhole(): void {
    const whole = this.#whole;
    const g = this.gso;
    if (g > 0) disableGso(this.fd);
    try {
      const sent = this.sock.sendMany(whole);
      this.stats.sent += sent;
      // Not kept for `drain`: it would send them with GSO on. QUIC recovers what is dropped.
      this.stats.sendDropped += whole.length / 3 - sent;
    } catch {
      this.stats.sendErrors += whole.length / 3;
    }
    if (g > 0) enableGsoNow(this.fd, g);
    whole.length = 0;
  }

  /** Copies what the kernel did not take; sent again on `drain`. */
  #keep(batch: (Uint8Array | number | string)[], from: number): void {
    for (let i = from; i < batch.length; i += 3) {
      if (this.#backlog.length >= MAX_BACKLOG * 3) {
        this.stats.sendDropped++;
        continue;
      }
      this.#backlog.push((batch[i] as Uint8Array).slice(), batch[i + 1]!, batch[i + 2]!);
    }
  }

  drain(): void {
    const backlog = this.#backlog;
    if (backlog.length === 0) return;
    let sent = 0;
    try {
      sent = this.sock.sendMany(backlog);
    } catch {
      this.#sendFailed(backlog);
      this.#backlog = [];
      return;
    }
    this.stats.sent += this.#datagrams(backlog, sent);
    this.#backlog = backlog.slice(sent * 3);
  }

  setTTL(ttl: number): void {
    this.sock.setTTL(ttl);
  }

  close(): void {
    this.sock.close();
  }
}

async function bunSocket(opts: UdpSocketOptions): Promise<UdpSocket> {
  let adapter: BunUdp | null = null;
  const onPacket = opts.onPacket;
  const sock = await Bun.udpSocket({
    hostname: opts.host,
    port: opts.port,
    binaryType: "uint8array",
    socket: {
      data(_s, data, port, address) {
        adapter!.stats.received++;
        onPacket(data, address, port);
      },
      drain() {
        adapter?.drain();
      },
      error() {
        if (adapter) adapter.stats.sendErrors++;
      },
    },
  });
  // The descriptor is there at run time, not in Bun's types.
  const fd = (sock as unknown as { fd?: number }).fd ?? -1;
  adapter = new BunUdp(sock, opts.host, sock.port, fd);
  // GSO only when a run can hold two packets or more (a large maxUdpPayload leaves no room).
  if (
    opts.segment !== undefined && maxSegments(opts.segment) >= 2 &&
    (await enableGso(fd, opts.segment))
  ) {
    adapter.useGso(opts.segment);
  }
  return adapter;
}

class NodeUdp implements UdpSocket {
  readonly stats: UdpStats = { sent: 0, received: 0, sendDropped: 0, sendErrors: 0 };
  #onError = () => {
    this.stats.sendErrors++;
  };
  constructor(private readonly sock: dgram.Socket, readonly host: string, readonly port: number) {}

  send(data: Uint8Array, port: number, host: string): void {
    // node:dgram sends asynchronously: copy, the caller reuses its buffer after flush().
    this.sock.send(Buffer.from(data), port, host, (err) => {
      if (err) this.#onError();
    });
    this.stats.sent++;
  }

  flush(): void {}

  setTTL(ttl: number): void {
    this.sock.setTTL(ttl);
  }

  close(): void {
    try {
      this.sock.close();
    } catch {
      // already closed
    }
  }
}

async function nodeSocket(opts: UdpSocketOptions): Promise<UdpSocket> {
  const sock = dgram.createSocket({ type: isIPv6(opts.host) ? "udp6" : "udp4" });
  const onPacket = opts.onPacket;
  await new Promise<void>((resolve, reject) => {
    sock.once("error", reject);
    sock.bind(opts.port, opts.host, () => {
      sock.off("error", reject);
      resolve();
    });
  });
  const adapter = new NodeUdp(sock, opts.host, sock.address().port);
  sock.on("error", () => adapter.stats.sendErrors++);
  sock.on("message", (msg, rinfo) => {
    adapter.stats.received++;
    onPacket(msg, rinfo.address, rinfo.port);
  });
  return adapter;
}

/** The runtime's best socket: `Bun.udpSocket` on Bun, `node:dgram` elsewhere. */
export const openUdpSocket: UdpSocketFactory = typeof Bun !== "undefined" ? bunSocket : nodeSocket;

/** The `node:dgram` adapter, on any runtime (tests compare both). */
export const openNodeUdpSocket: UdpSocketFactory = nodeSocket;
