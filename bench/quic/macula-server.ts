/**
 * `macula` server end: lib/quic on Bun. Ping-pong: echo every stream; bulk: count bytes until
 * FIN, then answer the count (8 bytes, u64 big-endian) and FIN. Protocol: bench/quic/README.md.
 */
import { readFileSync } from "node:fs";
import { QuicEndpoint, type QuicStream } from "../../lib/quic/mod.ts";
import {
  CERT_FILES,
  certPath,
  describeError,
  encodeAck,
  MAX_UDP_PAYLOAD,
  parseServerArgs,
  type ReadyLine,
} from "./protocol.ts";

const args = parseServerArgs(process.argv.slice(2));
const pem = (f: string) => readFileSync(certPath(args.certDir, f), "utf8");
const ep = await QuicEndpoint.bind({
  host: args.host,
  port: args.port,
  maxUdpPayload: MAX_UDP_PAYLOAD,
  tls: { ca: pem(CERT_FILES.ca), cert: pem(CERT_FILES.serverCert), key: pem(CERT_FILES.serverKey) },
});

async function echo(s: QuicStream): Promise<void> {
  for (;;) {
    const c = await s.read();
    if (c === null) break;
    await s.write(c);
  }
  await s.end();
}

async function count(s: QuicStream): Promise<void> {
  let n = 0;
  for (;;) {
    const c = await s.read();
    if (c === null) break;
    n += c.length;
  }
  await s.end(encodeAck(n));
}

void (async () => {
  for await (const conn of ep) {
    void (async () => {
      for await (const s of conn.streams()) {
        (args.mode === "pingpong" ? echo(s) : count(s)).catch((e) =>
          process.stderr.write(`macula-server: stream: ${describeError(e)}\n`)
        );
      }
    })();
  }
})();

const shutdown = async () => {
  await ep.close("bench done");
  process.exit(0);
};
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
process.stdin.on("end", shutdown);
process.stdin.on("data", () => {});
process.stdin.resume();

const ready: ReadyLine = { ready: true, port: ep.address.port };
process.stdout.write(`${JSON.stringify(ready)}\n`);
