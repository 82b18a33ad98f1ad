/**
 * The `macula` system's pieces shared by its two scripts: a `QuicStream` seen through the
 * harness's reader/writer shapes (so every system runs the same client and server loops), and
 * the endpoint options.
 */
import { readFileSync } from "node:fs";
import type { QuicEndpointOptions, QuicStream } from "../../lib/quic/mod.ts";
import {
  CERT_FILES,
  certPath,
  type ChunkReader,
  type ChunkWriter,
  MAX_UDP_PAYLOAD,
} from "./protocol.ts";

export function chunkIO(s: QuicStream): { writer: ChunkWriter; reader: ChunkReader } {
  let last: Promise<void> = Promise.resolve();
  return {
    writer: {
      write: (c) => (last = s.write(c)),
      close: () => s.end(),
      get ready() {
        return last;
      },
    },
    reader: {
      read: async () => {
        const value = await s.read();
        return value === null ? { done: true } : { done: false, value };
      },
    },
  };
}

/** Mutual TLS, as Macula always runs (the baselines authenticate only the server). */
export function endpointOptions(
  certDir: string,
  role: "server" | "client",
): Pick<QuicEndpointOptions, "tls" | "maxUdpPayload"> {
  const pem = (f: string) => readFileSync(certPath(certDir, f), "utf8");
  const [cert, key] = role === "server"
    ? [CERT_FILES.serverCert, CERT_FILES.serverKey]
    : [CERT_FILES.clientCert, CERT_FILES.clientKey];
  return {
    maxUdpPayload: MAX_UDP_PAYLOAD,
    tls: { ca: pem(CERT_FILES.ca), cert: pem(cert), key: pem(key) },
  };
}
