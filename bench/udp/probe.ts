/**
 * bench/udp probe process: `bun run bench/udp/probe.ts [--rtts N]` answers, on this Bun, whether
 * a socket made through `bun:ffi` can be driven by Bun's event loop, and what a Worker round
 * trip costs (the alternative: a thread blocked in `recvmmsg` handing datagrams over). Prints
 * one JSON `ProbeResult` line. Every probe sends real datagrams on 127.0.0.1 and checks them.
 */
import net from "node:net";
import { flagMap, intFlag } from "../lib/flags.ts";
import { summarizeNs } from "../lib/stats.ts";
import {
  Arena,
  bunFd,
  check,
  EAGAIN,
  errno,
  F_GETFL,
  F_SETFL,
  F_SETOWN,
  libc,
  MSG_DONTWAIT,
  MsgVec,
  O_ASYNC,
  setIntOpt,
  SOL_UDP,
  UDP_SEGMENT,
  udpSocket,
} from "./libc.ts";
import { describeError, HOST } from "./protocol.ts";

export interface Probe {
  /** Did it deliver the datagrams, each as one message? */
  works: boolean;
  detail: string;
}

export interface Rtt {
  count: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  mean: number;
}

export interface ProbeResult {
  /** `Bun.udpSocket({ fd })` on a socket made with `bun:ffi` (undocumented option). */
  adoptFd: Probe;
  /** `setsockopt(UDP_SEGMENT)` on `Bun.udpSocket`'s own `fd`, then `send` of a super-datagram. */
  gsoOnBunSocket: Probe;
  /** `Bun.file(fd).stream()` on the socket. */
  fileStream: Probe;
  /** `new net.Socket({ fd })` on the socket. */
  netSocket: Probe;
  /** `O_ASYNC` + `process.on("SIGIO")`, then `recvmmsg` through `bun:ffi`. */
  sigio: Probe;
  /** Worker `postMessage` round trip (main → worker → main), back to back, microseconds. */
  workerRtt: Rtt;
  /** The same with 1 ms between round trips, so both threads go idle first (sporadic traffic). */
  workerRttIdle: Rtt;
}

const BURST = 10;
const DGRAM = 100;
const WAIT_MS = 500;

/** Resolves when `done()` is true, or after `ms` (bounded polling: there is no event to wait on). */
async function until(done: () => boolean, ms: number): Promise<void> {
  const end = performance.now() + ms;
  while (!done() && performance.now() < end) await Bun.sleep(5);
}

/** `BURST` datagrams of `DGRAM` bytes, byte 0 = index, to `port`, in one go. */
async function burst(port: number): Promise<void> {
  const tx = await Bun.udpSocket({ hostname: HOST, port: 0 });
  const out: (Uint8Array | number | string)[] = [];
  for (let i = 0; i < BURST; i++) out.push(new Uint8Array(DGRAM).fill(i), port, HOST);
  tx.sendMany(out);
  tx.close();
}

async function probeAdopt(a: Arena): Promise<Probe> {
  const { fd, port } = udpSocket(a, HOST, 0, { nonblocking: true });
  const sizes: number[] = [];
  const opts: Bun.udp.SocketOptions<"uint8array"> & { fd: number } = {
    fd,
    binaryType: "uint8array",
    socket: { data: (_s, d) => void sizes.push(d.byteLength) },
  };
  const sock = await Bun.udpSocket(opts);
  const reported = sock.port;
  await burst(port);
  await until(() => sizes.length >= BURST, WAIT_MS);
  sock.close();
  const ok = sizes.length === BURST && sizes.every((n) => n === DGRAM);
  return {
    works: ok,
    detail: `${sizes.length}/${BURST} datagrams, sizes ${[...new Set(sizes)].join(",")}; ` +
      `reported port ${reported} (bound ${port})`,
  };
}

async function probeGso(a: Arena): Promise<Probe> {
  const sizes: number[] = [];
  const rx = await Bun.udpSocket({
    hostname: HOST,
    port: 0,
    socket: { data: (_s, d) => void sizes.push(d.byteLength) },
  });
  const tx = await Bun.udpSocket({ hostname: HOST, port: 0 });
  setIntOpt(a, bunFd(tx), SOL_UDP, UDP_SEGMENT, 1350);
  tx.send(new Uint8Array(1350 * 31 + 500), rx.port, HOST);
  await until(() => sizes.length >= 32, WAIT_MS);
  tx.close();
  rx.close();
  const ok = sizes.length === 32 && sizes.slice(0, 31).every((n) => n === 1350) &&
    sizes[31] === 500;
  return { works: ok, detail: `one send of 42,350 B arrived as ${sizes.length} datagrams` };
}

async function probeFileStream(a: Arena): Promise<Probe> {
  const { fd, port } = udpSocket(a, HOST, 0, { nonblocking: true });
  const chunks: number[] = [];
  const reader = Bun.file(fd).stream().getReader();
  let failed = "";
  const reading = (async () => {
    for (;;) {
      const r = await reader.read();
      if (r.done) return;
      chunks.push(r.value.byteLength);
    }
  })().catch((e) => void (failed = describeError(e)));
  await burst(port);
  const bytes = (): number => chunks.reduce((s, n) => s + n, 0);
  await until(() => bytes() >= BURST * DGRAM || failed !== "", WAIT_MS);
  await reader.cancel().catch(() => {});
  await Promise.race([reading, Bun.sleep(100)]);
  libc().close(fd);
  return {
    works: chunks.length === BURST && chunks.every((n) => n === DGRAM),
    detail: failed !== ""
      ? `failed: ${failed}`
      : `${bytes()} of ${BURST * DGRAM} bytes in ${chunks.length} chunks (${BURST} datagrams sent)`,
  };
}

async function probeNetSocket(a: Arena): Promise<Probe> {
  const { fd, port } = udpSocket(a, HOST, 0, { nonblocking: true });
  const chunks: number[] = [];
  let failed = "";
  let s: net.Socket | undefined;
  try {
    s = new net.Socket({ fd, readable: true, writable: false });
    s.on("data", (d: Buffer) => void chunks.push(d.byteLength));
    s.on("error", (e) => void (failed = e.message));
  } catch (e) {
    failed = describeError(e);
  }
  if (failed === "") {
    await burst(port);
    await until(() => chunks.length >= BURST || failed !== "", WAIT_MS);
  }
  s?.destroy();
  return {
    works: chunks.length === BURST && chunks.every((n) => n === DGRAM),
    detail: failed !== ""
      ? `failed: ${failed}`
      : `${chunks.length} data events in ${WAIT_MS} ms (${BURST} datagrams sent)`,
  };
}

async function probeSigio(a: Arena): Promise<Probe> {
  const c = libc();
  const { fd, port } = udpSocket(a, HOST, 0, { nonblocking: true });
  const vec = new MsgVec(a, BURST, 2048);
  const sizes: number[] = [];
  let signals = 0;
  const onSig = (): void => {
    signals++;
    for (let spins = 0; spins < 1000; spins++) {
      vec.resetForRecv();
      const n = c.recvmmsg(fd, vec.addr(), BURST, MSG_DONTWAIT, null);
      if (n <= 0) {
        if (n < 0 && errno() !== EAGAIN) check(n, "recvmmsg");
        return;
      }
      for (let i = 0; i < n; i++) sizes.push(vec.received(i));
    }
  };
  process.on("SIGIO", onSig);
  check(c.fcntl(fd, F_SETOWN, c.getpid()), "fcntl(F_SETOWN)");
  check(c.fcntl(fd, F_SETFL, check(c.fcntl(fd, F_GETFL, 0), "fcntl") | O_ASYNC), "fcntl");
  await burst(port);
  await until(() => sizes.length >= BURST, WAIT_MS);
  check(c.fcntl(fd, F_SETFL, check(c.fcntl(fd, F_GETFL, 0), "fcntl") & ~O_ASYNC), "fcntl");
  c.close(fd);
  process.off("SIGIO", onSig);
  return {
    works: sizes.length === BURST && sizes.every((n) => n === DGRAM),
    detail: `${sizes.length}/${BURST} datagrams on ${signals} SIGIO`,
  };
}

async function workerRtt(count: number, gapMs: number): Promise<Rtt> {
  const w = new Worker(new URL("./echo-worker.ts", import.meta.url).href);
  let resolve: ((v: number) => void) | undefined;
  w.onmessage = (e: MessageEvent) => resolve?.(e.data as number);
  const once = (i: number): Promise<number> =>
    new Promise<number>((res) => {
      resolve = res;
      w.postMessage(i);
    });
  const warm = Math.min(1000, Math.ceil(count / 10));
  const ns: number[] = [];
  for (let i = 0; i < warm + count; i++) {
    if (gapMs > 0) await Bun.sleep(gapMs);
    const t0 = performance.now();
    const back = await once(i);
    const t1 = performance.now();
    if (back !== i) throw new Error(`worker echoed ${back} for ${i}`);
    if (i >= warm) ns.push(Math.max(1, Math.round((t1 - t0) * 1e6)));
  }
  w.terminate();
  const s = summarizeNs(ns);
  return { count, min: s.min, p50: s.p50, p90: s.p90, p99: s.p99, mean: s.mean };
}

async function guarded(f: () => Promise<Probe>): Promise<Probe> {
  try {
    return await f();
  } catch (e) {
    return { works: false, detail: `failed: ${describeError(e)}` };
  }
}

async function main(): Promise<void> {
  const m = flagMap(process.argv.slice(2));
  const rtts = intFlag(m, "rtts", 20_000);
  const a = new Arena(1 << 20);
  const out: ProbeResult = {
    adoptFd: await guarded(() => probeAdopt(a)),
    gsoOnBunSocket: await guarded(() => probeGso(a)),
    fileStream: await guarded(() => probeFileStream(a)),
    netSocket: await guarded(() => probeNetSocket(a)),
    sigio: await guarded(() => probeSigio(a)),
    workerRtt: await workerRtt(rtts, 0),
    workerRttIdle: await workerRtt(Math.max(100, Math.floor(rtts / 10)), 1),
  };
  await Bun.write(Bun.stdout, `${JSON.stringify(out)}\n`);
}

try {
  await main();
  process.exit(0);
} catch (e) {
  process.stderr.write(`udp probe: ${describeError(e)}\n`);
  process.exit(1);
}
