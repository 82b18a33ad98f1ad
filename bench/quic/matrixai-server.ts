/**
 * Baseline `matrixai-highlevel`, server end: @matrixai/quic's high-level QUICServer on Bun.
 * Protocol: bench/quic/README.md.
 */
import { events, type QUICConnection, QUICServer, type QUICStream } from "@matrixai/quic";
import Logger, { LogLevel, StreamHandler } from "@matrixai/logger";
import {
  ALPN,
  CERT_FILES,
  certPath,
  describeError,
  MAX_UDP_PAYLOAD,
  parseServerArgs,
  type ReadyLine,
  serveStream,
} from "./protocol.ts";

const args = parseServerArgs(process.argv.slice(2));
const logger = new Logger("matrixai-server", LogLevel.WARN, [new StreamHandler()]);

// Retry-token signing for the server: HMAC-SHA256 with WebCrypto.
const hmacKey = await crypto.subtle.generateKey({ name: "HMAC", hash: "SHA-256" }, true, [
  "sign",
  "verify",
]);
const rawKey = await crypto.subtle.exportKey("raw", hmacKey);
const importHmac = (key: ArrayBuffer): Promise<CryptoKey> =>
  crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);

const server = new QUICServer({
  crypto: {
    key: rawKey,
    ops: {
      sign: async (key, data) => crypto.subtle.sign("HMAC", await importHmac(key), data),
      verify: async (key, data, sig) =>
        crypto.subtle.verify("HMAC", await importHmac(key), sig, data),
    },
  },
  config: {
    key: await Bun.file(certPath(args.certDir, CERT_FILES.serverKey)).text(),
    cert: await Bun.file(certPath(args.certDir, CERT_FILES.serverCert)).text(),
    verifyPeer: false,
    applicationProtos: [ALPN],
    maxSendUdpPayloadSize: MAX_UDP_PAYLOAD,
    maxRecvUdpPayloadSize: MAX_UDP_PAYLOAD,
  },
  logger,
});

function onStream(stream: QUICStream): void {
  serveStream(args.mode, stream.writable.getWriter(), stream.readable.getReader()).catch(
    (e: unknown) => {
      process.stderr.write(`matrixai-server: stream ${stream.streamId}: ${describeError(e)}\n`);
    },
  );
}

server.addEventListener(events.EventQUICServerConnection.name, (evt: Event) => {
  const conn: QUICConnection = (evt as events.EventQUICServerConnection).detail;
  conn.addEventListener(events.EventQUICConnectionStream.name, (e: Event) => {
    onStream((e as events.EventQUICConnectionStream).detail);
  });
  // Every QUIC close arrives as an error event; a graceful close by the client is expected.
  conn.addEventListener(events.EventQUICConnectionError.name, () => {});
});

let stopping = false;
async function shutdown(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  const timer = setTimeout(() => process.exit(code), 2000);
  try {
    await server.stop({ force: true });
  } catch (e) {
    process.stderr.write(`matrixai-server: stop: ${describeError(e)}\n`);
  }
  clearTimeout(timer);
  process.exit(code);
}

// A client that has gone (e.g. ECONNREFUSED from the UDP socket after it exited) must not take the
// server down between runs; the client checks every result, so log and carry on.
const report = (e: unknown): void => {
  process.stderr.write(`matrixai-server: uncaught (ignored): ${describeError(e)}\n`);
};
process.on("uncaughtException", report);
process.on("unhandledRejection", report);
process.on("SIGTERM", () => void shutdown(0));
process.on("SIGINT", () => void shutdown(0));
process.stdin.on("end", () => void shutdown(0));
process.stdin.on("data", () => {});
process.stdin.resume();

await server.start({ host: args.host, port: args.port });
const ready: ReadyLine = { ready: true, port: server.port };
process.stdout.write(`${JSON.stringify(ready)}\n`);
