/**
 * The process protocol shared by every QUIC benchmark system (see bench/quic/README.md).
 *
 * This file is imported by scripts that run on Bun *and* on Deno (`deno run --no-config`), so it
 * uses only standard JavaScript: no `node:` modules, no `Bun`/`Deno` globals, no npm packages.
 */
import { flagMap, intFlag, strFlag } from "../lib/flags.ts";

/** ALPN the baseline systems agree on. A system may use its own ALPN between its own ends. */
export const ALPN = "macula-bench";
/** Largest UDP payload every system is asked to send and accept, where the stack allows it. */
export const MAX_UDP_PAYLOAD = 1350;
/** Name in the server certificate's SAN (it also carries IP 127.0.0.1); clients verify it. */
export const SERVER_NAME = "localhost";
/** Bulk mode: the server answers FIN with this many bytes: the byte count, u64 big-endian. */
export const ACK_BYTES = 8;
/** Bulk mode: default size of each write on the client. */
export const DEFAULT_CHUNK = 64 * 1024;

/** Files the runner writes into `--cert-dir` (all PEM; keys are PKCS#8 ECDSA P-256). */
export const CERT_FILES = {
  ca: "ca.pem",
  serverCert: "server-cert.pem",
  serverKey: "server-key.pem",
  clientCert: "client-cert.pem",
  clientKey: "client-key.pem",
} as const;

export type Mode = "pingpong" | "bulk";

/** The line a server prints on stdout once it listens. */
export interface ReadyLine {
  ready: true;
  port: number;
}

/** The client's result line in ping-pong mode: one round-trip time per measured round trip. */
export interface PingpongResult {
  mode: "pingpong";
  size: number;
  warmup: number;
  count: number;
  /** Length `count`, integer nanoseconds, in the order measured (warm-up excluded). */
  rtt_ns: number[];
}

/** The client's result line in bulk mode. */
export interface BulkResult {
  mode: "bulk";
  /** Bytes the client wrote. */
  bytes: number;
  /** Bytes the server said it received (from the ack). */
  acked: number;
  /** From just before the first write to the last byte of the ack, integer nanoseconds. */
  elapsed_ns: number;
}

export type ClientResult = PingpongResult | BulkResult;

export interface ServerArgs {
  mode: Mode;
  host: string;
  port: number;
  certDir: string;
}

export interface ClientArgs {
  mode: Mode;
  host: string;
  port: number;
  serverName: string;
  certDir: string;
  warmup: number;
  count: number;
  size: number;
  bytes: number;
  chunk: number;
}

function mode(m: Map<string, string>): Mode {
  const v = strFlag(m, "mode");
  if (v !== "pingpong" && v !== "bulk") {
    throw new Error(`--mode must be pingpong or bulk, got ${v}`);
  }
  return v;
}

/** `--mode pingpong|bulk --cert-dir DIR [--host 127.0.0.1] [--port 0]` */
export function parseServerArgs(argv: readonly string[]): ServerArgs {
  const m = flagMap(argv);
  return {
    mode: mode(m),
    host: strFlag(m, "host", "127.0.0.1"),
    port: intFlag(m, "port", 0),
    certDir: strFlag(m, "cert-dir"),
  };
}

/**
 * `--mode pingpong|bulk --port N --cert-dir DIR [--host 127.0.0.1] [--server-name localhost]
 *  [--warmup 500] [--count 10000] [--size 64] [--bytes 67108864] [--chunk 65536]`
 */
export function parseClientArgs(argv: readonly string[]): ClientArgs {
  const m = flagMap(argv);
  const a: ClientArgs = {
    mode: mode(m),
    host: strFlag(m, "host", "127.0.0.1"),
    port: intFlag(m, "port"),
    serverName: strFlag(m, "server-name", SERVER_NAME),
    certDir: strFlag(m, "cert-dir"),
    warmup: intFlag(m, "warmup", 500),
    count: intFlag(m, "count", 10_000),
    size: intFlag(m, "size", 64),
    bytes: intFlag(m, "bytes", 64 * 1024 * 1024),
    chunk: intFlag(m, "chunk", DEFAULT_CHUNK),
  };
  if (a.size < 4) throw new Error("--size must be at least 4");
  if (a.chunk < 1) throw new Error("--chunk must be at least 1");
  return a;
}

/** Joins a directory and a file name with `/` (Linux only benchmark). */
export function certPath(dir: string, file: string): string {
  return dir.endsWith("/") ? dir + file : `${dir}/${file}`;
}

/**
 * Fills `buf` with ping number `i`: bytes 0..3 hold `i` (u32 big-endian), byte j ≥ 4 holds
 * `(i * 31 + j * 7) & 0xff`, so a stale, shifted or mixed-up echo never matches.
 */
export function fillPing(buf: Uint8Array, i: number): void {
  buf[0] = (i >>> 24) & 0xff;
  buf[1] = (i >>> 16) & 0xff;
  buf[2] = (i >>> 8) & 0xff;
  buf[3] = i & 0xff;
  for (let j = 4; j < buf.length; j++) buf[j] = (i * 31 + j * 7) & 0xff;
}

/** Throws unless `got` equals `want` byte for byte. */
export function assertEcho(want: Uint8Array, got: Uint8Array, i: number): void {
  if (want.length !== got.length) {
    throw new Error(`echo ${i}: length ${got.length}, expected ${want.length}`);
  }
  for (let j = 0; j < want.length; j++) {
    if (want[j] !== got[j]) {
      throw new Error(`echo ${i}: byte ${j} is ${got[j]}, expected ${want[j]}`);
    }
  }
}

export function encodeAck(count: number): Uint8Array {
  const out = new Uint8Array(ACK_BYTES);
  new DataView(out.buffer).setBigUint64(0, BigInt(count), false);
  return out;
}

export function decodeAck(buf: Uint8Array): number {
  if (buf.length !== ACK_BYTES) {
    throw new Error(`ack is ${buf.length} bytes, expected ${ACK_BYTES}`);
  }
  return Number(new DataView(buf.buffer, buf.byteOffset, ACK_BYTES).getBigUint64(0, false));
}

/** A deterministic, non-constant chunk for bulk writes. */
export function bulkPattern(size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let j = 0; j < size; j++) out[j] = (j * 131 + 17) & 0xff;
  return out;
}

/** Minimal reader shape shared by WHATWG readers on Bun and Deno. */
export interface ChunkReader {
  read(): Promise<
    { done: true; value?: Uint8Array | undefined } | { done: false; value: Uint8Array }
  >;
}

/** Reads exact byte counts out of a chunked stream, keeping any leftover for the next call. */
export class ExactReader {
  private pending: Uint8Array = new Uint8Array(0);
  constructor(private readonly reader: ChunkReader) {}

  /** Fills `out` completely; throws if the stream ends first. */
  async readExact(out: Uint8Array): Promise<void> {
    let filled = 0;
    while (filled < out.length) {
      if (this.pending.length === 0) {
        const r = await this.reader.read();
        if (r.done) throw new Error(`stream ended after ${filled} of ${out.length} bytes`);
        this.pending = r.value;
        continue;
      }
      const n = Math.min(this.pending.length, out.length - filled);
      out.set(this.pending.subarray(0, n), filled);
      filled += n;
      this.pending = this.pending.subarray(n);
    }
  }

  /** Resolves when the stream ends; throws if any more bytes arrive. */
  async expectEnd(): Promise<void> {
    if (this.pending.length > 0) throw new Error(`${this.pending.length} unexpected extra bytes`);
    for (;;) {
      const r = await this.reader.read();
      if (r.done) return;
      if (r.value.length > 0) throw new Error(`${r.value.length} unexpected extra bytes`);
    }
  }
}

/** Minimal writer shape shared by WHATWG writers on Bun and Deno. */
export interface ChunkWriter {
  write(chunk: Uint8Array): Promise<void>;
  close(): Promise<void>;
  readonly ready: Promise<undefined> | Promise<void>;
}

/**
 * The ping-pong client loop, given an opened bidirectional stream: `warmup + count` round trips
 * of `size` bytes, each one verified, then FIN and wait for the server's FIN.
 * `now` returns milliseconds (performance.now).
 */
export async function runPingpong(
  writer: ChunkWriter,
  reader: ChunkReader,
  a: Pick<ClientArgs, "warmup" | "count" | "size">,
  now: () => number,
): Promise<PingpongResult> {
  const rx = new ExactReader(reader);
  const rtt: number[] = new Array<number>(a.count);
  const got = new Uint8Array(a.size);
  const total = a.warmup + a.count;
  for (let i = 0; i < total; i++) {
    const msg = new Uint8Array(a.size);
    fillPing(msg, i);
    const t0 = now();
    await writer.write(msg);
    await rx.readExact(got);
    const t1 = now();
    // Rebuild the expected bytes rather than trusting `msg`, which the stack may have consumed.
    const want = new Uint8Array(a.size);
    fillPing(want, i);
    assertEcho(want, got, i);
    if (i >= a.warmup) rtt[i - a.warmup] = Math.max(1, Math.round((t1 - t0) * 1e6));
  }
  await writer.close();
  await rx.expectEnd();
  return { mode: "pingpong", size: a.size, warmup: a.warmup, count: a.count, rtt_ns: rtt };
}

/**
 * The bulk client loop: `bytes` bytes in `chunk`-sized writes (pipelined through the writer's
 * backpressure), FIN, then the 8-byte ack and the server's FIN.
 */
export async function runBulk(
  writer: ChunkWriter,
  reader: ChunkReader,
  a: Pick<ClientArgs, "bytes" | "chunk">,
  now: () => number,
): Promise<BulkResult> {
  const rx = new ExactReader(reader);
  const pattern = bulkPattern(a.chunk);
  const ackBuf = new Uint8Array(ACK_BYTES);
  let writeError: unknown = undefined;
  const t0 = now();
  let sent = 0;
  while (sent < a.bytes) {
    const n = Math.min(a.chunk, a.bytes - sent);
    await writer.ready;
    if (writeError !== undefined) throw writeError;
    // A fresh copy per write: a stack may keep the buffer after the write promise settles.
    writer.write(pattern.slice(0, n)).catch((e: unknown) => {
      writeError ??= e;
    });
    sent += n;
  }
  await writer.close();
  if (writeError !== undefined) throw writeError;
  await rx.readExact(ackBuf);
  const t1 = now();
  const acked = decodeAck(ackBuf);
  if (acked !== a.bytes) throw new Error(`server acked ${acked} bytes, client sent ${a.bytes}`);
  await rx.expectEnd();
  return { mode: "bulk", bytes: a.bytes, acked, elapsed_ns: Math.round((t1 - t0) * 1e6) };
}

/**
 * Server side of one stream. Ping-pong mode writes every chunk back as it arrives and finishes
 * after the client's FIN; bulk mode counts bytes until FIN, then writes the 8-byte ack and FIN.
 * (A stack whose reader reuses its buffers must copy before writing back.)
 */
export async function serveStream(
  mode: Mode,
  writer: ChunkWriter,
  reader: ChunkReader,
): Promise<void> {
  if (mode === "pingpong") {
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      await writer.write(r.value);
    }
    await writer.close();
    return;
  }
  let count = 0;
  for (;;) {
    const r = await reader.read();
    if (r.done) break;
    count += r.value.length;
  }
  await writer.write(encodeAck(count));
  await writer.close();
}

/** Formats an error (with cause chain) for stderr. */
export function describeError(e: unknown): string {
  if (e instanceof Error) {
    const cause = e.cause !== undefined ? `\ncaused by: ${describeError(e.cause)}` : "";
    return `${e.stack ?? `${e.name}: ${e.message}`}${cause}`;
  }
  return String(e);
}
