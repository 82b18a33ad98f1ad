/**
 * bench/udp receiver process: `bun run bench/udp/receiver.ts --receiver NAME --expect N --size S
 * --tag T [--idle-ms 300] [--deadline-ms 60000]` binds 127.0.0.1:0, prints `{"ready":true,
 * "port":N}`, counts and checks datagrams (protocol.ts `Tally`) until all N came, nothing came
 * for idle-ms after the first, or the deadline (`sink`: until stdin closes); then prints one JSON
 * `RecvResult` line and exits. Its CPU from ready to the result is spent on the datagrams: it
 * idles otherwise.
 */
import { flagMap, intFlag, strFlag } from "../lib/flags.ts";
import {
  Arena,
  check,
  EAGAIN,
  EINTR,
  errno,
  F_GETFL,
  F_SETFL,
  F_SETOWN,
  libc,
  MSG_DONTWAIT,
  MsgVec,
  O_ASYNC,
  setIntOpt,
  SO_RCVTIMEO,
  SOL_SOCKET,
  SOL_UDP,
  UDP_GRO,
  udpSocket,
} from "./libc.ts";
import {
  describeError,
  HOST,
  type Receiver,
  RECEIVERS,
  type RecvResult,
  socketDrops,
  Tally,
} from "./protocol.ts";

const MSG_WAITFORONE = 0x10000;

interface Ended {
  end: RecvResult["end"];
  drops: number;
}

interface Args {
  receiver: Receiver;
  expect: number;
  size: number;
  tag: number;
  idleMs: number;
  deadlineMs: number;
}

function parse(argv: string[]): Args {
  const m = flagMap(argv);
  const receiver = strFlag(m, "receiver");
  if (!(receiver in RECEIVERS)) throw new Error(`unknown --receiver ${receiver}`);
  return {
    receiver: receiver as Receiver,
    expect: intFlag(m, "expect"),
    size: intFlag(m, "size", 1350),
    tag: intFlag(m, "tag"),
    idleMs: intFlag(m, "idle-ms", 300),
    deadlineMs: intFlag(m, "deadline-ms", 60_000),
  };
}

/** CPU use when the receiver announced itself: measured from there (set-up excluded). */
let cpuAtReady: NodeJS.CpuUsage | undefined;

async function ready(port: number): Promise<void> {
  await Bun.write(Bun.stdout, `${JSON.stringify({ ready: true, port })}\n`);
  cpuAtReady = process.cpuUsage();
}

/** Checks every datagram of a received message: one, or a GRO train of `seg`-byte segments. */
function checkMessage(t: Tally, b: Uint8Array, off: number, len: number, seg: number): void {
  if (seg <= 0 || seg >= len) return t.check(b, off, len);
  for (let o = 0; o < len; o += seg) t.check(b, off + o, Math.min(seg, len - o));
}

/** Resolves when all arrived, nothing arrived for `idleMs` after the first, or the deadline. */
function endOnEventLoop(a: Args, t: Tally): Promise<RecvResult["end"]> {
  const start = performance.now();
  let last = -1;
  let lastAt = start;
  return new Promise((resolve) => {
    const iv = setInterval(() => {
      const now = performance.now();
      if (t.received !== last) {
        last = t.received;
        lastAt = now;
      }
      let end: RecvResult["end"] | undefined;
      if (t.received >= a.expect) end = "all";
      else if (t.received > 0 && now - lastAt >= a.idleMs) end = "idle";
      else if (now - start >= a.deadlineMs) end = "deadline";
      if (end) {
        clearInterval(iv);
        resolve(end);
      }
    }, 20);
  });
}

async function bunReceiver(a: Args, t: Tally): Promise<Ended> {
  const sock = await Bun.udpSocket({
    hostname: HOST,
    port: 0,
    binaryType: "uint8array",
    socket: {
      data(_s, d) {
        t.wakeups++;
        t.check(d, 0, d.byteLength);
      },
    },
  });
  await ready(sock.port);
  const end = await endOnEventLoop(a, t);
  const drops = socketDrops(sock.port);
  sock.close();
  return { end, drops };
}

/** Blocking `recvmmsg` loop (100 ms `SO_RCVTIMEO` so the end conditions are checked). */
async function ffiReceiver(a: Args, t: Tally, gro: boolean): Promise<Ended> {
  const vlen = gro ? 8 : 32;
  const bufSize = gro ? 65_536 : 2048;
  const arena = new Arena(vlen * (bufSize + 128) + 64 * 1024);
  const { fd, port } = udpSocket(arena, HOST, 0);
  if (gro) setIntOpt(arena, fd, SOL_UDP, UDP_GRO, 1);
  const tv = arena.alloc(16);
  arena.setU64(tv, 0);
  arena.setU64(tv + 8, 100_000); // struct timeval { 0 s, 100,000 µs }
  check(libc().setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, arena.addr(tv), 16), "SO_RCVTIMEO");
  const vec = new MsgVec(arena, vlen, bufSize);
  vec.resetForRecv();
  const { recvmmsg } = libc();
  await ready(port);
  const start = performance.now();
  let lastAt = start;
  for (;;) {
    const n = recvmmsg(fd, vec.addr(), vlen, MSG_WAITFORONE, null);
    const now = performance.now();
    if (n < 0) {
      const e = errno();
      if (e !== EAGAIN && e !== EINTR) check(n, "recvmmsg");
    } else {
      t.wakeups++;
      lastAt = now;
      for (let i = 0; i < n; i++) {
        checkMessage(t, arena.u8, vec.buf(i), vec.received(i), gro ? vec.groSize(i) : 0);
      }
      if (gro) vec.resetForRecv(n);
    }
    let end: RecvResult["end"] | undefined;
    if (t.received >= a.expect) end = "all";
    else if (t.received > 0 && now - lastAt >= a.idleMs) end = "idle";
    else if (now - start >= a.deadlineMs) end = "deadline";
    if (end) return { end, drops: socketDrops(port) };
  }
}

/**
 * Signal-driven: `O_ASYNC` + `F_SETOWN` make the kernel raise SIGIO when data arrives; the
 * handler, run by Bun's event loop, drains the socket with non-blocking `recvmmsg` until EAGAIN,
 * so a datagram arriving after that raises a new SIGIO and none is left behind.
 */
async function sigioReceiver(a: Args, t: Tally): Promise<Ended> {
  const vlen = 8;
  const bufSize = 65_536;
  const arena = new Arena(vlen * (bufSize + 128) + 64 * 1024);
  const { fd, port } = udpSocket(arena, HOST, 0, { nonblocking: true });
  setIntOpt(arena, fd, SOL_UDP, UDP_GRO, 1);
  const vec = new MsgVec(arena, vlen, bufSize);
  vec.resetForRecv();
  const c = libc();
  const drain = (): void => {
    for (let spins = 0; spins < 100_000; spins++) {
      const n = c.recvmmsg(fd, vec.addr(), vlen, MSG_DONTWAIT, null);
      if (n <= 0) {
        if (n < 0 && errno() !== EAGAIN && errno() !== EINTR) check(n, "recvmmsg");
        return;
      }
      t.wakeups++;
      for (let i = 0; i < n; i++) {
        checkMessage(t, arena.u8, vec.buf(i), vec.received(i), vec.groSize(i));
      }
      vec.resetForRecv(n);
    }
  };
  // The listener first: SIGIO's default action ends the process.
  process.on("SIGIO", drain);
  check(c.fcntl(fd, F_SETOWN, c.getpid()), "fcntl(F_SETOWN)");
  const fl = check(c.fcntl(fd, F_GETFL, 0), "fcntl(F_GETFL)");
  check(c.fcntl(fd, F_SETFL, fl | O_ASYNC), "fcntl(F_SETFL)");
  await ready(port);
  const end = await endOnEventLoop(a, t);
  drain();
  return { end, drops: socketDrops(port) };
}

/**
 * Reads nothing until stdin closes (the runner closes it when the sender has exited), then
 * drains and checks what the socket buffer kept; the kernel dropped the rest (`drops`).
 */
async function sinkReceiver(a: Args, t: Tally): Promise<Ended> {
  const vlen = 32;
  const arena = new Arena(vlen * 2048 + 64 * 1024);
  const { fd, port } = udpSocket(arena, HOST, 0, { nonblocking: true });
  const vec = new MsgVec(arena, vlen, 2048);
  vec.resetForRecv();
  await ready(port);
  const deadline = new Promise<"deadline">((res) => {
    setTimeout(() => res("deadline"), a.deadlineMs).unref();
  });
  const closed = (async () => {
    for await (const _ of Bun.stdin.stream()) {
      // the runner writes nothing; wait for the end
    }
    return "idle" as const;
  })();
  let end: RecvResult["end"] = await Promise.race([closed, deadline]);
  const drops = socketDrops(port);
  const { recvmmsg } = libc();
  for (let spins = 0; spins < 100_000; spins++) {
    const n = recvmmsg(fd, vec.addr(), vlen, MSG_DONTWAIT, null);
    if (n <= 0) break;
    t.wakeups++;
    for (let i = 0; i < n; i++) t.check(arena.u8, vec.buf(i), vec.received(i));
  }
  if (t.received + drops >= a.expect && end === "idle") end = "all";
  return { end, drops };
}

async function main(): Promise<void> {
  const a = parse(process.argv.slice(2));
  const t = new Tally(a.expect, a.size, a.tag);
  const { end, drops } = a.receiver === "bun"
    ? await bunReceiver(a, t)
    : a.receiver === "sigio-gro"
    ? await sigioReceiver(a, t)
    : a.receiver === "sink"
    ? await sinkReceiver(a, t)
    : await ffiReceiver(a, t, a.receiver === "ffi-gro");
  const c = process.cpuUsage(cpuAtReady);
  const out: RecvResult = {
    receiver: a.receiver,
    expect: a.expect,
    received: t.received,
    distinct: t.distinct,
    bad: t.bad,
    firstBad: t.firstBad,
    wakeups: t.wakeups,
    drops,
    userUs: c.user,
    sysUs: c.system,
    end,
  };
  await Bun.write(Bun.stdout, `${JSON.stringify(out)}\n`);
}

try {
  await main();
  process.exit(0);
} catch (e) {
  process.stderr.write(`udp receiver: ${describeError(e)}\n`);
  process.exit(1);
}
