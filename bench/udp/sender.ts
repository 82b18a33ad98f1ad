/**
 * bench/udp sender process: `bun run bench/udp/sender.ts --sender NAME --port P --count N
 * --warmup W --size S --tag T [--rate R]` sends W + N datagrams to 127.0.0.1:P as fast as the
 * variant can (or at R datagrams/s, in 32s), 32 per call, and
 * prints one JSON `SendResult` line: the CPU (`process.cpuUsage`) and wall time of the last N.
 */
import dgram from "node:dgram";
import { flagMap, intFlag, strFlag } from "../lib/flags.ts";
import {
  Arena,
  bunFd,
  check,
  errno,
  libc,
  MsgVec,
  setIntOpt,
  SOL_UDP,
  UDP_SEGMENT,
  udpSocket,
  writeSockaddr,
} from "./libc.ts";
import {
  BATCH,
  describeError,
  HOST,
  MIN_SIZE,
  type Sender,
  SENDERS,
  type SendResult,
  stampDatagram,
} from "./protocol.ts";

interface Args {
  sender: Sender;
  port: number;
  count: number;
  warmup: number;
  size: number;
  tag: number;
  /** Datagrams per second (0 = as fast as possible). */
  rate: number;
}

/** Sends datagrams `from` … `to - 1`; resolves to [calls, partial calls]. */
type SendRange = (from: number, to: number) => Promise<[number, number]>;

/** Resolves on the socket's `drain`, or after 10 ms if none comes. */
function drainWaiter(): { wait(): Promise<void>; wake(): void } {
  let resolve: (() => void) | undefined;
  return {
    wait: () =>
      new Promise<void>((r) => {
        const t = setTimeout(() => {
          resolve = undefined;
          r();
        }, 10);
        resolve = () => {
          clearTimeout(t);
          r();
        };
      }),
    wake: () => {
      const r = resolve;
      resolve = undefined;
      r?.();
    },
  };
}

/**
 * `Bun.udpSocket` + `sendMany` of 32 datagrams per call; with `segs` > 1, `UDP_SEGMENT` is set
 * on the socket and each entry is a super-datagram of up to `segs` datagrams back to back.
 */
async function bunSender(a: Args, segs: number): Promise<SendRange> {
  const drain = drainWaiter();
  const sock = await Bun.udpSocket({
    hostname: HOST,
    port: 0,
    socket: { drain: () => drain.wake() },
  });
  if (segs > 1) setIntOpt(new Arena(0), bunFd(sock), SOL_UDP, UDP_SEGMENT, a.size);
  const n = Math.ceil(BATCH / segs);
  const bufs = Array.from(
    { length: n },
    (_, i) => new Uint8Array(Math.min(segs, BATCH - i * segs) * a.size),
  );
  const views = bufs.map((b) => new DataView(b.buffer));
  const full: (Uint8Array | number | string)[] = bufs.flatMap((b) => [b, a.port, HOST]);
  return async (from, to) => {
    let calls = 0;
    let partial = 0;
    for (let seq = from; seq < to; seq += BATCH) {
      const k = Math.min(BATCH, to - seq);
      for (let i = 0; i < k; i++) {
        stampDatagram(views[Math.floor(i / segs)]!, (i % segs) * a.size, a.size, seq + i, a.tag);
      }
      let batch = full;
      if (k < BATCH) {
        const e = Math.ceil(k / segs);
        batch = full.slice(0, e * 3);
        batch[(e - 1) * 3] = bufs[e - 1]!.subarray(0, (k - (e - 1) * segs) * a.size);
      }
      const entries = batch.length / 3;
      for (let done = 0, spins = 0; done < entries; spins++) {
        if (spins > 10_000) throw new Error("sendMany made no progress");
        const sent = sock.sendMany(done === 0 ? batch : batch.slice(done * 3));
        calls++;
        done += sent;
        if (done < entries) {
          partial++;
          await drain.wait();
        }
      }
    }
    return [calls, partial];
  };
}

/** `node:dgram` `send` per datagram; waits for the callback of the last of every 32. */
async function dgramSender(a: Args): Promise<SendRange> {
  const sock = dgram.createSocket("udp4");
  await new Promise<void>((res, rej) => {
    sock.once("error", rej);
    sock.bind(0, HOST, () => res());
  });
  const bufs = Array.from({ length: BATCH }, () => new Uint8Array(a.size));
  const views = bufs.map((b) => new DataView(b.buffer));
  let errors = 0;
  return async (from, to) => {
    let calls = 0;
    for (let seq = from; seq < to; seq += BATCH) {
      const k = Math.min(BATCH, to - seq);
      await new Promise<void>((res) => {
        for (let i = 0; i < k; i++) {
          stampDatagram(views[i]!, 0, a.size, seq + i, a.tag);
          const last = i === k - 1;
          sock.send(bufs[i]!, a.port, HOST, (err) => {
            if (err) errors++;
            if (last) res();
          });
          calls++;
        }
      });
    }
    if (errors > 0) throw new Error(`${errors} node:dgram sends failed`);
    return [calls, 0];
  };
}

/** Own socket through `bun:ffi`: `sendmmsg` of 32 datagrams, or of super-datagrams with GSO. */
function ffiSender(a: Args, gso: boolean): SendRange {
  const segs = gso ? BATCH : 1;
  const msgs = BATCH / segs;
  const arena = new Arena(msgs * segs * a.size + 64 * 1024);
  const { fd } = udpSocket(arena, HOST, 0);
  const dst = arena.alloc(16);
  writeSockaddr(arena, dst, HOST, a.port);
  const vec = new MsgVec(arena, msgs, segs * a.size);
  for (let i = 0; i < msgs; i++) {
    vec.setName(i, dst);
    vec.setLen(i, segs * a.size);
    vec.setSegment(i, gso ? a.size : 0);
  }
  const { sendmmsg } = libc();
  const dv = arena.dv;
  return (from, to) => {
    let calls = 0;
    let partial = 0;
    for (let seq = from; seq < to; seq += BATCH) {
      const k = Math.min(BATCH, to - seq);
      for (let i = 0; i < k; i++) {
        const m = Math.floor(i / segs);
        stampDatagram(dv, vec.buf(m) + (i % segs) * a.size, a.size, seq + i, a.tag);
      }
      let n = msgs;
      if (k < BATCH) {
        n = Math.ceil(k / segs);
        vec.setLen(n - 1, (k - (n - 1) * segs) * a.size);
      }
      for (let done = 0, spins = 0; done < n; spins++) {
        if (spins > 10_000) throw new Error("sendmmsg made no progress");
        const r = sendmmsg(fd, vec.addr(done), n - done, 0);
        calls++;
        if (r < 0) {
          const e = errno();
          if (e !== 11 && e !== 105) check(r, "sendmmsg"); // EAGAIN, ENOBUFS: try again
          partial++;
          continue;
        }
        done += r;
        if (done < n) partial++;
      }
      if (k < BATCH) vec.setLen(n - 1, segs * a.size);
    }
    return Promise.resolve([calls, partial]);
  };
}

/** `send` at `rate` datagrams/s: every millisecond or so, whatever is due, in 32s. */
function paced(send: SendRange, rate: number): SendRange {
  return async (from, to) => {
    const t0 = performance.now();
    let calls = 0;
    let partial = 0;
    for (let seq = from; seq < to;) {
      const due = from + Math.floor(((performance.now() - t0) / 1000) * rate);
      if (due >= seq + BATCH || due >= to) {
        const upTo = Math.min(to, seq + Math.max(1, Math.floor((due - seq) / BATCH)) * BATCH);
        const [c, p] = await send(seq, upTo);
        calls += c;
        partial += p;
        seq = upTo;
      } else await Bun.sleep(1);
    }
    return [calls, partial];
  };
}

function parse(argv: string[]): Args {
  const m = flagMap(argv);
  const sender = strFlag(m, "sender");
  if (!(sender in SENDERS)) throw new Error(`unknown --sender ${sender}`);
  const size = intFlag(m, "size", 1350);
  if (size < MIN_SIZE || size * BATCH > 65_000) {
    throw new Error(`--size must be ${MIN_SIZE}…${Math.floor(65_000 / BATCH)}`);
  }
  return {
    sender: sender as Sender,
    port: intFlag(m, "port"),
    count: intFlag(m, "count"),
    warmup: intFlag(m, "warmup", 0),
    size,
    tag: intFlag(m, "tag"),
    rate: intFlag(m, "rate", 0),
  };
}

async function main(): Promise<void> {
  const a = parse(process.argv.slice(2));
  const bunSegs = { "bun-sendmany": 1, "bun-gso": BATCH, "bun-gso10": 10 } as const;
  const send: SendRange = a.sender in bunSegs
    ? await bunSender(a, bunSegs[a.sender as keyof typeof bunSegs])
    : a.sender === "node-dgram"
    ? await dgramSender(a)
    : ffiSender(a, a.sender === "ffi-gso");
  const run = a.rate === 0 ? send : paced(send, a.rate);
  await run(0, a.warmup);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const [calls, partial] = await run(a.warmup, a.warmup + a.count);
  const t1 = performance.now();
  const c = process.cpuUsage(c0);
  const out: SendResult = {
    sender: a.sender,
    datagrams: a.count,
    bytes: a.count * a.size,
    calls,
    partial,
    userUs: c.user,
    sysUs: c.system,
    wallMs: t1 - t0,
  };
  await Bun.write(Bun.stdout, `${JSON.stringify(out)}\n`);
}

try {
  await main();
  process.exit(0);
} catch (e) {
  process.stderr.write(`udp sender: ${describeError(e)}\n`);
  process.exit(1);
}
