/**
 * A node's certificates. In a real realm they come from files the operator made with
 * `macula certs` (config `tls`). In the dev realm the node makes them itself, under its data
 * directory, the first time it starts, and reuses them afterwards:
 *
 * ```
 * <data_dir>/ca/ca.pem, ca.key         the dev realm CA (or dev_ca_dir: shared by local nodes)
 * <data_dir>/node/node.crt, node.key   this node's certificate
 * <data_dir>/client/ca.pem, cert.pem, key.pem
 *                                       credentials for `macula pub/sub/call/serve --creds`
 * ```
 *
 * A node or client certificate that has expired, expires within a day, or was issued by another
 * CA is replaced, and so is a client certificate that is not a client's of the operator group (the
 * dev realm's credentials may inspect their node). Lifetimes and that margin:
 * `IDENTITY_DEFAULTS.devRealm` (lib/identity). A `dev_ca_dir` must hold a CA already, unless
 * `dev_ca_create` asks for one: a typo must not make a new realm of one node.
 */
import { existsSync } from "node:fs";
import { chmod, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import {
  CA_CERT_FILE,
  type Credentials,
  CREDS_FILES,
  fileProblem,
  IDENTITY_DEFAULTS,
  initCa,
  issueCert,
  loadCa,
  Verifier,
  x509,
} from "../identity/mod.ts";
import type { NodeConfig } from "./config.ts";
import { NodeError, StartError } from "./errors.ts";

/** What `nodeCredentials` found or made. */
export interface NodeCredentials extends Credentials {
  /** Dev realm: the CA directory and the client credentials directory; null otherwise. */
  caDir: string | null;
  credsDir: string | null;
  /** What was created on this start, for the log. */
  created: string[];
}

const { devRealm, loopback } = IDENTITY_DEFAULTS;

async function writeAtomic(path: string, data: string, mode = 0o644): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, data, { mode });
  await chmod(tmp, mode);
  await rename(tmp, path);
}

/** The dev realm's client credentials: a client of the operator group. */
const DEV_CLIENT = { role: "client" as const, groups: ["operator"] };

/**
 * True when `certPem` is valid for another day, was issued by `caPem`, and (for the client
 * credentials) is a client of the operator group.
 */
async function stillGood(caPem: string, certPem: string, client = false): Promise<boolean> {
  try {
    const v = await Verifier.create({ ca: caPem });
    const der = new Uint8Array(new x509.X509Certificate(certPem).rawData);
    const id = await v.verify([der]);
    if (client && (id.role !== "client" || !id.groups.includes("operator"))) return false;
    return id.notAfter.getTime() - Date.now() > devRealm.renewWithinMs;
  } catch {
    return false;
  }
}

/**
 * The dev realm's CA directory (`dev_ca_dir`, else `<data_dir>/ca`), absolute. A `dev_ca_dir`
 * that holds no CA is refused unless `dev_ca_create`: a typo must not start a realm of one.
 */
export function devCaDir(config: NodeConfig): string {
  const caDir = resolve(config.devCaDir ?? join(config.dataDir, "ca"));
  if (config.devCaDir !== null && !config.devCaCreate && !existsSync(join(caDir, CA_CERT_FILE))) {
    throw new StartError(
      `dev_ca_dir ${caDir}: no CA there (no ${CA_CERT_FILE}): check the path (it is the other node's <data-dir>/ca), or pass --create-dev-ca to make a new one`,
    );
  }
  return caDir;
}

/** Loads (real realm) or makes and reuses (dev realm) the node's credentials. */
export async function nodeCredentials(config: NodeConfig): Promise<NodeCredentials> {
  if (config.tls) {
    const read = async (what: string, path: string) => {
      try {
        return await readFile(path, "utf8");
      } catch (e) {
        throw new NodeError(
          `tls.${what}: cannot read ${path}: ${fileProblem(e)}`,
          { cause: e },
        );
      }
    };
    return {
      ca: await read("ca", config.tls.ca),
      cert: await read("cert", config.tls.cert),
      key: await read("key", config.tls.key),
      caDir: null,
      credsDir: null,
      created: [],
    };
  }
  const created: string[] = [];
  const caDir = devCaDir(config);
  await mkdir(caDir, { recursive: true, mode: 0o700 });
  const ca = existsSync(join(caDir, CA_CERT_FILE))
    ? await loadCa(caDir)
    : (created.push(`dev realm CA in ${caDir}`),
      (await initCa({ realm: "dev", outDir: caDir, durationMs: devRealm.caLifetimeMs })).ca);
  if (ca.realm !== "dev") {
    throw new NodeError(`${caDir}: the CA there is for realm ${ca.realm}, not the dev realm`);
  }

  const nodeDir = resolve(join(config.dataDir, "node"));
  await mkdir(nodeDir, { recursive: true, mode: 0o700 });
  const certPath = join(nodeDir, "node.crt");
  const keyPath = join(nodeDir, "node.key");
  if (!existsSync(certPath) || !(await stillGood(ca.pem, await readFile(certPath, "utf8")))) {
    await issueCert({
      ca,
      name: "node",
      durationMs: devRealm.certLifetimeMs,
      outDir: nodeDir,
      force: true,
      dns: [...loopback.dns],
      ips: [...loopback.ips],
    });
    created.push(`node certificate in ${nodeDir}`);
  }

  const credsDir = resolve(join(config.dataDir, "client"));
  await mkdir(credsDir, { recursive: true, mode: 0o700 });
  const clientCert = join(credsDir, CREDS_FILES.cert);
  if (
    !existsSync(clientCert) ||
    !(await stillGood(ca.pem, await readFile(clientCert, "utf8"), true))
  ) {
    const c = await issueCert({
      ca,
      name: "client",
      durationMs: devRealm.certLifetimeMs,
      ...DEV_CLIENT,
    });
    await writeAtomic(join(credsDir, CREDS_FILES.key), `${c.keyPem}\n`, 0o600);
    await writeAtomic(clientCert, `${c.pem}\n`);
    created.push(`client credentials in ${credsDir}`);
  }
  await writeAtomic(join(credsDir, CREDS_FILES.ca), `${ca.pem}\n`);

  return {
    ca: ca.pem,
    cert: await readFile(certPath, "utf8"),
    key: await readFile(keyPath, "utf8"),
    caDir,
    credsDir,
    created,
  };
}
