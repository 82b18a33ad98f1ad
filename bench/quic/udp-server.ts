/**
 * Reference floor `udp-raw`, server end: plain `Bun.udpSocket` echo, no QUIC, no TLS. Ping-pong
 * only (there is no reliable bulk over bare UDP). Same process protocol as the QUIC systems.
 */
import { describeError, parseServerArgs } from "./protocol.ts";
import { announceAndServe } from "../lib/serve.ts";

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

announceAndServe(sock.port, () => sock.close());
