/**
 * Throw-away TLS material for benchmarks: one CA and two leaves (server, client), ECDSA P-256,
 * written as PEM (keys PKCS#8) into a fresh temp dir. Made by the development CA in lib/identity.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { issue, makeCa } from "../../lib/identity/devca.ts";
import { CERT_FILES } from "../quic/protocol.ts";

export interface CertDir {
  dir: string;
  remove(): Promise<void>;
}

/**
 * Creates a temp dir holding `ca.pem`, `server-cert.pem`, `server-key.pem`, `client-cert.pem`,
 * `client-key.pem`. The server leaf names `localhost` and IP 127.0.0.1 (and ::1).
 */
export async function makeCertDir(prefix = "macula-bench-certs-"): Promise<CertDir> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const ca = await makeCa("p256", "Macula bench CA");
  const server = await issue(ca, { name: "localhost" });
  const client = await issue(ca, { name: "bench-client", dns: ["bench-client"], ips: [] });
  await Promise.all([
    writeFile(join(dir, CERT_FILES.ca), ca.pem),
    writeFile(join(dir, CERT_FILES.serverCert), server.cert),
    writeFile(join(dir, CERT_FILES.serverKey), server.key, { mode: 0o600 }),
    writeFile(join(dir, CERT_FILES.clientCert), client.cert),
    writeFile(join(dir, CERT_FILES.clientKey), client.key, { mode: 0o600 }),
  ]);
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}
