/**
 * Reference floor `udp-raw`, client end: one 64-byte datagram out, wait for its echo, repeat.
 * What two processes on this machine cost before any QUIC work. Ping-pong only.
 */
import {
  assertEcho,
  describeError,
  fillPing,
  parseClientArgs,
  type PingpongResult,
} from "./protocol.ts";

const LOSS_TIMEOUT_MS = 1000;

async function main(): Promise<void> {
  const args = parseClientArgs(process.argv.slice(2));
  if (args.mode !== "pingpong") throw new Error("only --mode pingpong is meaningful for raw UDP");
  let waiting: ((b: Uint8Array) => void) | undefined;
  const sock = await Bun.udpSocket({
    hostname: args.host,
    port: 0,
    socket: {
      data(_s, buf) {
        const w = waiting;
        waiting = undefined;
        w?.(new Uint8Array(buf));
      },
    },
  });
  const total = args.warmup + args.count;
  const rtt: number[] = new Array<number>(args.count);
  const want = new Uint8Array(args.size);
  for (let i = 0; i < total; i++) {
    const msg = new Uint8Array(args.size);
    fillPing(msg, i);
    let timer: Timer | undefined;
    const echo = new Promise<Uint8Array>((resolve, reject) => {
      waiting = resolve;
      timer = setTimeout(
        () => reject(new Error(`datagram ${i} lost (no echo in ${LOSS_TIMEOUT_MS} ms)`)),
        LOSS_TIMEOUT_MS,
      );
    });
    const t0 = performance.now();
    if (!sock.send(msg, args.port, args.host)) throw new Error(`send ${i} failed`);
    const got = await echo;
    const t1 = performance.now();
    clearTimeout(timer);
    fillPing(want, i);
    assertEcho(want, got, i);
    if (i >= args.warmup) rtt[i - args.warmup] = Math.max(1, Math.round((t1 - t0) * 1e6));
  }
  sock.close();
  const result: PingpongResult = {
    mode: "pingpong",
    size: args.size,
    warmup: args.warmup,
    count: args.count,
    rtt_ns: rtt,
  };
  await Bun.write(Bun.stdout, `${JSON.stringify(result)}\n`);
}

try {
  await main();
  process.exit(0);
} catch (e) {
  process.stderr.write(`udp-client: ${describeError(e)}\n`);
  process.exit(1);
}
