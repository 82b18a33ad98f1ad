/**
 * Tunnels: addresses on `TUNNEL_HOST` that an endpoint's connections dial or are accepted from
 * like any other, whose packets go to a function instead of the socket. A relay carries QUIC
 * this way (lib/nat/relay.ts): the connection inside stays end to end, with its own TLS, and the
 * relay only forwards packets. The endpoint opens them (`QuicEndpoint.openTunnel`) and hands
 * packets for a tunnel address to `send`.
 */
import { QuicError } from "./errors.ts";
import type { HostPort } from "./native.ts";

/**
 * The host of tunnel addresses (`openTunnel`): in the IPv6 discard-only prefix (RFC 6666), so a
 * packet that ever reached the socket by mistake would go nowhere. The port tells tunnels apart.
 */
export const TUNNEL_HOST = "100::1";

/** Ports a tunnel address can have (1 to 65 535): the most tunnels one endpoint holds at once. */
const MAX_PORT = 65_535;

/** An endpoint's open tunnels, by the port of their address on `TUNNEL_HOST`. */
export class Tunnels {
  readonly #byPort = new Map<number, (packet: Uint8Array) => void>();
  #next = 1;

  /** A fresh tunnel address whose packets go to `send`. Throws `QuicError` when all are taken. */
  open(send: (packet: Uint8Array) => void): HostPort {
    if (this.#byPort.size >= MAX_PORT) throw new QuicError("tunnel limit reached (65 535)");
    let port = this.#next;
    while (this.#byPort.has(port)) port = port === MAX_PORT ? 1 : port + 1;
    this.#next = port === MAX_PORT ? 1 : port + 1;
    this.#byPort.set(port, send);
    return { host: TUNNEL_HOST, port };
  }

  /** True while the tunnel with this port is open. */
  has(port: number): boolean {
    return this.#byPort.has(port);
  }

  /** Hands `packet` to the tunnel with this port (dropped when it is closed). */
  send(port: number, packet: Uint8Array): void {
    this.#byPort.get(port)?.(packet);
  }

  /** Closes the tunnel with this port: its packets are dropped from now on. */
  close(port: number): void {
    this.#byPort.delete(port);
  }
}
