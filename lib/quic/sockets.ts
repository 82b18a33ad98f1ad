/**
 * The sockets an endpoint owns: the active one, which every connection sends from and which
 * `address` names, and those left by `rebind`, kept open while packets in flight may still use
 * them (quiche recovers what was in flight on the old path there). Every socket tags its packets
 * with its own local address, so a connection knows the path a packet came on.
 */
import { monoNow } from "../util/mod.ts";
import { TUNING } from "./defaults.ts";
import type { HostPort } from "./native.ts";
import type { UdpSocket, UdpSocketFactory } from "./udp.ts";

/** Called for every datagram received on any of the sockets, with the address it came to. */
export type TaggedPacketHandler = (
  data: Uint8Array,
  host: string,
  port: number,
  local: HostPort,
) => void;

/** What decides when a retiring socket may close. */
export interface RetireWatch {
  /** True while a connection is still migrating off the old socket. */
  migrating(): boolean;
  /** True once the endpoint is closing (the socket goes at once). */
  closing(): boolean;
  /** Called just before the socket closes: migrations not finished by then are given up. */
  done(): void;
}

/** The active socket and the retiring ones. */
export class EndpointSockets {
  /** The socket connections send from. Set by `bind`. */
  active!: UdpSocket;
  /** The active socket's address (the host as bound, the port the kernel chose). */
  local!: HostPort;
  /** Sockets left by `rebind`, kept open briefly so packets already in flight still land. */
  readonly #retired: UdpSocket[] = [];
  /** Packets sent by sockets that have closed since. */
  #retiredSent = 0;

  constructor(
    private readonly factory: UdpSocketFactory,
    private readonly onPacket: TaggedPacketHandler,
    /** The largest datagram sent: the GSO segment size a socket may offer. */
    private readonly segment?: number,
  ) {}

  /** Opens the first socket. */
  async bind(host: string, port: number): Promise<HostPort> {
    this.active = await this.open(host, port);
    this.local = { host, port: this.active.port };
    return this.local;
  }

  /** Opens a socket whose packets are tagged with its own local address. */
  async open(host: string, port: number): Promise<UdpSocket> {
    const local: HostPort = { host, port };
    const sock = await this.factory({
      host,
      port,
      onPacket: (d, h, p) => this.onPacket(d, h, p, local),
      ...(this.segment !== undefined ? { segment: this.segment } : {}),
    });
    local.port = sock.port;
    return sock;
  }

  /** Makes `fresh` (bound on `host`) the active socket; returns the one it replaces. */
  switchTo(fresh: UdpSocket, host: string): UdpSocket {
    const old = this.active;
    this.active = fresh;
    this.local = { host, port: fresh.port };
    return old;
  }

  /**
   * Keeps `old` open, checked every `TUNING.rebindCheckMs`, until no migration is pending and it
   * has carried nothing for `graceMs`; `TUNING.rebindMaxMs` at most, and no longer than the
   * endpoint stays open.
   */
  retireWhenQuiet(old: UdpSocket, graceMs: number, watch: RetireWatch): void {
    this.#retired.push(old);
    const started = monoNow();
    let lastUse = started;
    let lastCount = old.stats.sent + old.stats.received;
    const timer = setInterval(() => {
      const now = monoNow();
      const migrating = watch.migrating();
      const count = old.stats.sent + old.stats.received;
      if (count !== lastCount) {
        lastCount = count;
        lastUse = now;
      }
      const idle = !migrating && now - lastUse >= graceMs;
      if (idle || watch.closing() || now - started >= TUNING.rebindMaxMs) {
        clearInterval(timer);
        watch.done();
        this.#retire(old);
      }
    }, TUNING.rebindCheckMs);
    timer.unref?.();
  }

  #retire(sock: UdpSocket): void {
    const i = this.#retired.indexOf(sock);
    if (i < 0) return;
    this.#retired.splice(i, 1);
    this.#retiredSent += sock.stats.sent;
    sock.close();
  }

  /**
   * Sends a packet from the socket bound at local port `fromPort`. True when it joined the
   * active socket's batch (sent at its next `flush()`); a packet for a retiring socket goes out
   * at once, one for a socket already closed is dropped (the path is gone).
   */
  sendFrom(data: Uint8Array, fromPort: number, to: HostPort): boolean {
    if (fromPort === this.local.port) {
      this.active.send(data, to.port, to.host);
      return true;
    }
    const old = this.#retired.find((s) => s.port === fromPort);
    if (old) {
      old.send(data, to.port, to.host);
      old.flush();
    }
    return false;
  }

  /** Queues a GSO run (lib/quic/sender.ts: only for a socket that has `sendRun`). */
  sendRun(data: Uint8Array, to: HostPort): void {
    this.active.sendRun!(data, to.port, to.host);
  }

  /** Sends one datagram from the active socket now. */
  sendNow(data: Uint8Array, port: number, host: string): void {
    this.active.send(data, port, host);
    this.active.flush();
  }

  /** Maps an IPv4 peer to its IPv4-mapped form when the socket is IPv6 (dual stack). */
  peerHost(host: string): string {
    const v6 = this.local !== undefined && this.local.host.includes(":");
    return v6 && !host.includes(":") ? `::ffff:${host}` : host;
  }

  /** Packets sent by every socket this endpoint had. */
  get packetsSent(): number {
    return this.active.stats.sent + this.#retiredSent +
      this.#retired.reduce((n, s) => n + s.stats.sent, 0);
  }

  /** Sockets left by `rebind` and still open. */
  get retiring(): number {
    return this.#retired.length;
  }

  /** Closes the active socket and every retiring one. */
  close(): void {
    this.active.close();
    for (const r of [...this.#retired]) this.#retire(r);
  }
}
