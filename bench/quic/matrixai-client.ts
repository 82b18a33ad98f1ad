/**
 * Baseline `matrixai-highlevel`, client end: @matrixai/quic's high-level QUICClient on Bun.
 * Protocol: bench/quic/README.md.
 */
import { events, QUICClient } from "@matrixai/quic";
import Logger, { LogLevel, StreamHandler } from "@matrixai/logger";
import {
  ALPN,
  CERT_FILES,
  certPath,
  type ClientResult,
  describeError,
  MAX_UDP_PAYLOAD,
  parseClientArgs,
  runBulk,
  runPingpong,
} from "./protocol.ts";

async function main(): Promise<void> {
  const args = parseClientArgs(process.argv.slice(2));
  const logger = new Logger("matrixai-client", LogLevel.WARN, [new StreamHandler()]);
  const client = await QUICClient.createQUICClient({
    host: args.host,
    port: args.port,
    serverName: args.serverName,
    localHost: args.host,
    crypto: {
      ops: {
        randomBytes: (data: ArrayBuffer): Promise<void> => {
          crypto.getRandomValues(new Uint8Array(data));
          return Promise.resolve();
        },
      },
    },
    config: {
      ca: await Bun.file(certPath(args.certDir, CERT_FILES.ca)).text(),
      verifyPeer: true,
      applicationProtos: [ALPN],
      maxSendUdpPayloadSize: MAX_UDP_PAYLOAD,
      maxRecvUdpPayloadSize: MAX_UDP_PAYLOAD,
    },
    logger,
  });
  client.addEventListener(events.EventQUICClientError.name, () => {});

  const stream = client.connection.newStream("bidi");
  const writer = stream.writable.getWriter();
  const reader = stream.readable.getReader();
  const now = (): number => performance.now();
  const result: ClientResult = args.mode === "pingpong"
    ? await runPingpong(writer, reader, args, now)
    : await runBulk(writer, reader, args, now);

  await Bun.write(Bun.stdout, `${JSON.stringify(result)}\n`);
  // Close politely but do not let a slow close hold up the run.
  await Promise.race([client.destroy({ force: true }), Bun.sleep(1000)]);
}

// Errors thrown inside @matrixai's event handlers surface here, not in main(): fail fast.
const die = (e: unknown): void => {
  process.stderr.write(`matrixai-client: uncaught: ${describeError(e)}\n`);
  process.exit(1);
};
process.on("uncaughtException", die);
process.on("unhandledRejection", die);

try {
  await main();
  process.exit(0);
} catch (e) {
  process.stderr.write(`matrixai-client: ${describeError(e)}\n`);
  process.exit(1);
}
