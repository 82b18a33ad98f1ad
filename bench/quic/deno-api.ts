/**
 * The slice of Deno 2.9.6's runtime API that the `deno-quic` baseline uses (QUIC is unstable:
 * run with `deno run --unstable-net`). Declared here, copied from `deno types --unstable-net`,
 * so that these scripts type-check under the repo's Bun-typed tsconfig as well; reached through
 * `globalThis` so that it does not collide with the real `Deno` declaration under `deno check`.
 *
 * Note: QuicEndpointOptions / QuicTransportOptions have no MTU or UDP-payload setting; quinn
 * picks its own (initial 1200, path-MTU discovery upward).
 */

export interface NetAddr {
  transport: string;
  hostname: string;
  port: number;
}

export interface QuicCloseInfo {
  closeCode: number;
  reason: string;
}

export interface QuicBidirectionalStream {
  readonly readable: ReadableStream<Uint8Array>;
  readonly writable: WritableStream<Uint8Array>;
}

export interface QuicConn {
  close(info?: QuicCloseInfo): void;
  createBidirectionalStream(): Promise<QuicBidirectionalStream>;
  readonly handshake: Promise<void>;
  readonly closed: Promise<QuicCloseInfo>;
  readonly incomingBidirectionalStreams: ReadableStream<QuicBidirectionalStream>;
}

export interface QuicIncoming {
  accept(): Promise<QuicConn>;
}

export interface QuicListener extends AsyncIterable<QuicIncoming> {
  stop(): void;
}

export interface QuicEndpoint {
  readonly addr: NetAddr;
  listen(options: { alpnProtocols: string[]; key: string; cert: string }): QuicListener;
  close(info?: QuicCloseInfo): void;
}

export interface DenoApi {
  readonly args: string[];
  readonly stdin: { readonly readable: ReadableStream<Uint8Array> };
  readonly stdout: { write(p: Uint8Array): Promise<number> };
  readonly stderr: { write(p: Uint8Array): Promise<number> };
  readTextFile(path: string): Promise<string>;
  exit(code?: number): never;
  addSignalListener(signal: "SIGTERM" | "SIGINT", handler: () => void): void;
  QuicEndpoint: new (options?: { hostname?: string; port?: number }) => QuicEndpoint;
  connectQuic(options: {
    hostname: string;
    port: number;
    serverName?: string;
    alpnProtocols: string[];
    caCerts?: string[];
    endpoint?: QuicEndpoint;
  }): Promise<QuicConn>;
}

export function deno(): DenoApi {
  const d = (globalThis as unknown as { Deno?: DenoApi }).Deno;
  if (d === undefined) {
    throw new Error("this script runs on Deno: deno run --unstable-net -A <script>");
  }
  return d;
}

const enc = new TextEncoder();

/** Writes all of `text` to stdout (Deno's write may be partial). */
export async function writeAll(
  w: { write(p: Uint8Array): Promise<number> },
  text: string,
): Promise<void> {
  let buf = enc.encode(text);
  while (buf.length > 0) buf = buf.subarray(await w.write(buf));
}
