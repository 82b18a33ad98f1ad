/**
 * The UDP socket adapter: `Bun.udpSocket` with `sendMany` batching on Bun, `node:dgram` on Deno
 * and Node. One socket per endpoint; everything above speaks only this interface, so tests can
 * wrap it (a lossy adapter, for example).
 */
import dgram from "node:dgram";
import { TUNING } from "./defaults.ts";
import { disableGso, enableGso } from "./gso.ts";

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
   * The GSO segment size when the socket segments long datagrams itself (lib/quic/gso.ts): a
   * datagram passed to `send` may then be a run of packets of this size, the last one shorter.
   * Absent or 0: one datagram per `send`.
   */
  readonly gso?: number;
  /**
   * Queues one datagram. `data` must not change until the next `flush()` returns; adapters that
   * keep it longer copy it.
   */
  send(data: Uint8Array, port: number, host: string): void;
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

class BunUdp implements UdpSocket {
  readonly stats: UdpStats = { sent: 0, received: 0, sendDropped: 0, sendErrors: 0 };
  gso = 0;
  #batch: (Uint8Array | number | string)[] = [];
  #backlog: (Uint8Array | number | string)[] = [];
  constructor(
    private readonly sock: Bun.udp.Socket<"uint8array">,
    readonly host: string,
    readonly port: number,
    private readonly fd: number,
  ) {}

  /** Datagrams on the wire for the first `entries` of `batch` (a GSO run counts its segments). */
  #datagrams(batch: (Uint8Array | number | string)[], entries: number): number {
    const g = this.gso;
    if (g === 0) return entries;
    let n = 0;
    for (let i = 0; i < entries * 3; i += 3) {
      n += Math.ceil((batch[i] as Uint8Array).length / g) || 1;
    }
    return n;
  }

  /** A failed send with GSO runs in it: the device cannot segment, so stop asking it to. */
  #sendFailed(batch: (Uint8Array | number | string)[]): void {
    this.stats.sendErrors += this.#datagrams(batch, batch.length / 3);
    if (this.gso === 0) return;
    for (let i = 0; i < batch.length; i += 3) {
      if ((batch[i] as Uint8Array).length > this.gso) {
        disableGso(this.fd);
        this.gso = 0;
        return;
      }
    }
  }

  send(data: Uint8Array, port: number, host: string): void {
    this.#batch.push(data, port, host);
  }

  flush(): void {
    const batch = this.#batch;
    if (batch.length === 0) return;
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
  if (opts.segment !== undefined && (await enableGso(fd, opts.segment))) {
    adapter.gso = opts.segment;
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
