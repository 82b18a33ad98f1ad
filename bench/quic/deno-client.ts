/**
 * Baseline `deno-quic`, client end: Deno's built-in QUIC (quinn), `Deno.connectQuic`.
 * Run: deno run --no-config --unstable-net -A bench/quic/deno-client.ts --mode ... --port ...
 * Protocol: bench/quic/README.md.
 */
import { deno, type DenoApi, writeAll } from "./deno-api.ts";
import {
  ALPN,
  CERT_FILES,
  certPath,
  type ClientResult,
  describeError,
  parseClientArgs,
  runBulk,
  runPingpong,
} from "./protocol.ts";

const D: DenoApi = deno();

async function main(): Promise<void> {
  const args = parseClientArgs(D.args);
  const conn = await D.connectQuic({
    hostname: args.host,
    port: args.port,
    serverName: args.serverName,
    alpnProtocols: [ALPN],
    caCerts: [await D.readTextFile(certPath(args.certDir, CERT_FILES.ca))],
  });
  await conn.handshake;
  const stream = await conn.createBidirectionalStream();
  const writer = stream.writable.getWriter();
  const reader = stream.readable.getReader();
  const now = (): number => performance.now();
  const result: ClientResult = args.mode === "pingpong"
    ? await runPingpong(writer, reader, args, now)
    : await runBulk(writer, reader, args, now);
  await writeAll(D.stdout, `${JSON.stringify(result)}\n`);
  conn.close({ closeCode: 0, reason: "done" });
}

try {
  await main();
  D.exit(0);
} catch (e) {
  await writeAll(D.stderr, `deno-client: ${describeError(e)}\n`);
  D.exit(1);
}
