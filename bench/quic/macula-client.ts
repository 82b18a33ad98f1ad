/**
 * `macula` client end: lib/quic on Bun. One connection, one bidirectional stream; ping-pong
 * (one message in flight) or bulk (write `--bytes`, FIN, read the 8-byte ack).
 */
import { readFileSync } from "node:fs";
import { QuicEndpoint } from "../../lib/quic/mod.ts";
import {
  ACK_BYTES,
  assertEcho,
  type BulkResult,
  CERT_FILES,
  certPath,
  decodeAck,
  describeError,
  fillPing,
  MAX_UDP_PAYLOAD,
  parseClientArgs,
  type PingpongResult,
} from "./protocol.ts";

async function main(): Promise<void> {
  const args = parseClientArgs(process.argv.slice(2));
  const ep = await QuicEndpoint.bind({
    host: args.host,
    acceptIncoming: false,
    maxUdpPayload: MAX_UDP_PAYLOAD,
    // Mutual TLS, as Macula always runs (the baselines authenticate only the server).
    tls: {
      ca: readFileSync(certPath(args.certDir, CERT_FILES.ca), "utf8"),
      cert: readFileSync(certPath(args.certDir, CERT_FILES.clientCert), "utf8"),
      key: readFileSync(certPath(args.certDir, CERT_FILES.clientKey), "utf8"),
    },
  });
  const conn = await ep.connect({ host: args.host, port: args.port }, {
    serverName: args.serverName,
  });
  const s = await conn.openStream();
  let line: string;
  if (args.mode === "pingpong") {
    const total = args.warmup + args.count;
    const rtt = new Array<number>(args.count);
    const msg = new Uint8Array(args.size);
    const got = new Uint8Array(args.size);
    for (let i = 0; i < total; i++) {
      fillPing(msg, i);
      const t0 = performance.now();
      await s.write(msg.slice());
      let have = 0;
      while (have < args.size) {
        const c = await s.read();
        if (c === null) throw new Error(`stream ended after ${have} bytes of echo ${i}`);
        got.set(c, have);
        have += c.length;
      }
      const t1 = performance.now();
      assertEcho(msg, got, i);
      if (i >= args.warmup) rtt[i - args.warmup] = Math.max(1, Math.round((t1 - t0) * 1e6));
    }
    await s.end();
    const result: PingpongResult = {
      mode: "pingpong",
      size: args.size,
      warmup: args.warmup,
      count: args.count,
      rtt_ns: rtt,
    };
    line = JSON.stringify(result);
  } else {
    const chunk = new Uint8Array(args.chunk).map((_, i) => (i * 13) & 0xff);
    const t0 = performance.now();
    for (let sent = 0; sent < args.bytes; sent += chunk.length) {
      await s.write(chunk.subarray(0, Math.min(chunk.length, args.bytes - sent)));
    }
    await s.end();
    const ack = await s.readAll(ACK_BYTES);
    const t1 = performance.now();
    const result: BulkResult = {
      mode: "bulk",
      bytes: args.bytes,
      acked: decodeAck(ack),
      elapsed_ns: Math.round((t1 - t0) * 1e6),
    };
    line = JSON.stringify(result);
  }
  await ep.close("bench done");
  await Bun.write(Bun.stdout, `${line}\n`);
}

try {
  await main();
  process.exit(0);
} catch (e) {
  process.stderr.write(`macula-client: ${describeError(e)}\n`);
  process.exit(1);
}
