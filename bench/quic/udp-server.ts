/**
 * Reference floor `udp-raw`, server end: plain `Bun.udpSocket` echo, no QUIC, no TLS. Ping-pong
 * only (there is no reliable bulk over bare UDP). Same process protocol as the QUIC systems.
 */
import { describeError, parseServerArgs, type ReadyLine } from "./protocol.ts";

const args = parseServerArgs(process.argv.slice(2));
if (args.mode !== "pingpong") {
  process.stderr.write("udp-server: only --mode pingpong is meaningful for raw UDP\n");
  process.exit(2);
}

const sock = await Bun.udpSocket({
  hostname: args.host,
  port: args.port,
  socket: {
    data(s, buf, port, addr) {
      s.send(buf, port, addr);
    },
    error(_s, e) {
      process.stderr.write(`udp-server: ${describeError(e)}\n`);
    },
  },
});

const shutdown = (): never => {
  sock.close();
  process.exit(0);
};
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
process.stdin.on("end", shutdown);
process.stdin.on("data", () => {});
process.stdin.resume();

const ready: ReadyLine = { ready: true, port: sock.port };
process.stdout.write(`${JSON.stringify(ready)}\n`);
