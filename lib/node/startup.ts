/**
 * What `Node.start` checks before it runs (docs/security.md, "Starting a node"): every failure
 * is a `StartError` naming what is wrong (`macula node up` exits 2), and nothing is left
 * written by a start that failed.
 *
 * - The identity (`checkIdentity`): the key is the certificate's, the certificate chains to the
 *   CA, is for this realm, is a node's, and is within its validity (a warning within 30 days of
 *   its end).
 * - The data directory (`lockDataDir`): one node per directory, by a lock file holding its pid.
 * - The mesh (`aliveElsewhere`): a node whose id is alive at another address (a copied
 *   certificate, or the same directory on two machines) is not started a second time.
 * - The listen address (`checkListen`), before anything is written: a port in use, a host name
 *   that does not resolve, an address this machine does not have (those are `NodeError`s:
 *   exit 1, the same start may work later).
 */
import { createPrivateKey, createPublicKey } from "node:crypto";
import dgram from "node:dgram";
import { lookup } from "node:dns/promises";
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  writeSync,
} from "node:fs";
import { readFile } from "node:fs/promises";
import { isIP } from "node:net";
import { dirname, join, resolve } from "node:path";
import process from "node:process";
import {
  CA_CERT_FILE,
  type Credentials,
  expiryWarnings,
  fileProblem,
  type PeerIdentity,
  Verifier,
  x509,
} from "../identity/mod.ts";
import { INSPECT_MEMBERS } from "../observe/mod.ts";
import { ask, PeerSession } from "../peer/mod.ts";
import { bindProblem, type QuicEndpoint } from "../quic/mod.ts";
import { type Log, withTimeout } from "../util/mod.ts";
import type { NodeConfig } from "./config.ts";
import { devCaDir, nodeCredentials } from "./credentials.ts";
import { NodeError, StartError } from "./errors.ts";

/** The node's own certificate, checked as its peers will check it; its identity. */
export async function checkIdentity(
  creds: Credentials,
  realm: string,
  where: { cert: string; key: string; ca: string },
  log: Log,
  now = new Date(),
): Promise<PeerIdentity> {
  let cert: x509.X509Certificate;
  try {
    cert = new x509.X509Certificate(creds.cert);
  } catch (e) {
    throw new StartError(`${where.cert}: not a certificate: ${(e as Error).message}`, { cause: e });
  }
  let keySpki: Uint8Array;
  try {
    keySpki = new Uint8Array(
      createPublicKey(createPrivateKey(creds.key)).export({ type: "spki", format: "der" }),
    );
  } catch (e) {
    throw new StartError(`${where.key}: not a private key: ${(e as Error).message}`, { cause: e });
  }
  const certSpki = new Uint8Array(cert.publicKey.rawData);
  if (keySpki.length !== certSpki.length || keySpki.some((b, i) => b !== certSpki[i])) {
    throw new StartError(
      `${where.key} is not the key of ${where.cert}: this certificate belongs to another node (use the key it was issued for)`,
    );
  }
  let id: PeerIdentity;
  try {
    const v = await Verifier.create({ ca: creds.ca, realm });
    id = await v.verify([new Uint8Array(cert.rawData)], now);
  } catch (e) {
    throw new StartError(`${where.cert} (against ${where.ca}): ${(e as Error).message}`, {
      cause: e,
    });
  }
  if (id.role !== "node") {
    throw new StartError(
      `${where.cert} is a client's certificate: a node needs one issued with --role node`,
    );
  }
  for (const w of expiryWarnings(`this node's certificate ${where.cert}`, cert, now)) {
    log.warn("cert.expiring", w);
  }
  return id;
}

/** Data directories this process holds (a node started twice in one process is refused too). */
const held = new Set<string>();

/** The lock file in a data directory. */
export const LOCK_FILE = "macula.lock";

/**
 * Takes `dir`'s lock (creating the directory): refuses when a running process holds it, naming
 * its pid; takes over a lock whose process is gone. Returns the release.
 */
export function lockDataDir(dir: string, log: Log): () => void {
  const abs = resolve(dir);
  const path = join(abs, LOCK_FILE);
  if (held.has(abs)) {
    throw new StartError(`data directory ${abs} is in use by a node of this process`);
  }
  try {
    mkdirSync(abs, { recursive: true });
  } catch (e) {
    throw new StartError(`cannot make the data directory ${abs}: ${fileProblem(e)}`, { cause: e });
  }
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, "wx", 0o644);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      held.add(abs);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        held.delete(abs);
        rmSync(path, { force: true });
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") {
        throw new StartError(`cannot lock ${abs}: ${fileProblem(e)}`, { cause: e });
      }
    }
    const pid = Number(readFileSync(path, "utf8").trim());
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
      throw new StartError(
        `data directory ${abs} is in use by process ${pid} (${path}): stop that node, or give another --data-dir`,
      );
    }
    log.info(
      "datadir.taken_over",
      `taking over ${path}: process ${pid || "?"} that held it is gone`,
    );
    rmSync(path, { force: true });
  }
  throw new StartError(`cannot lock ${abs}: ${path} keeps coming back`);
}

/** True when process `pid` runs (a zombie, dead but not yet reaped, does not). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8"); // Linux: "pid (comm) S ..."
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    if (state === "Z" || state === "X") return false;
  } catch {
    // no /proc (macOS) or it just went: kill(0) said it runs
  }
  return true;
}

/**
 * Asks the seeds whether `nodeId` is alive in the mesh at an address other than `self`, and if a
 * seed says so, whether that address answers as `nodeId` (a stale entry of a crashed earlier run
 * does not count). Null when not; else that address. Bounded by `timeoutMs`; a seed that does
 * not answer does not hold the start.
 */
export async function aliveElsewhere(
  endpoint: QuicEndpoint,
  me: { nodeId: string; realm: string },
  self: string,
  seeds: { host: string; port: number }[],
  timeoutMs = 3000,
): Promise<string | null> {
  const sessions: PeerSession[] = [];
  // Once the check is over (answered or timed out), a dial that completes late is closed at
  // once: no session outlives the check (keep-alives would hold an untracked one open).
  let over = false;
  const open = async (at: { host: string; port: number }) => {
    const conn = await endpoint.connect(at);
    if (over) {
      await conn.close(0, "start-up check done");
      throw new Error("the start-up check is over");
    }
    const s = await PeerSession.dial(conn, { self: me });
    if (over) {
      await s.close("start-up check done");
      throw new Error("the start-up check is over");
    }
    sessions.push(s);
    return s;
  };
  const look = async (): Promise<string | null> => {
    for (const seed of seeds.slice(0, 3)) {
      let members: { id: string; addr: string; state: string }[];
      try {
        members = await ask(await open(seed), INSPECT_MEMBERS, {}, { timeoutMs }) as typeof members;
      } catch {
        continue;
      }
      if (!Array.isArray(members)) continue;
      const other = members.find((m) =>
        m?.id === me.nodeId && m.state === "alive" && typeof m.addr === "string" && m.addr !== self
      );
      if (!other) return null;
      const u = /^quic:\/\/\[?([^\]]+?)\]?:(\d+)$/.exec(other.addr);
      if (!u) return null;
      try {
        const s = await open({ host: u[1]!, port: Number(u[2]) });
        return s.peer.nodeId === me.nodeId ? other.addr : null;
      } catch {
        return null; // it does not answer: a stale entry
      }
    }
    return null;
  };
  try {
    return await withTimeout(look(), timeoutMs, () => new Error("timeout")).catch(() => null);
  } finally {
    over = true;
    await Promise.allSettled(sessions.map((s) => s.close("start-up check done")));
  }
}

/**
 * The listen address as an IP: a host name (`localhost`) is resolved once, here, and the node
 * binds to its address (the socket layer takes IPs only). IPv4 first, as clients dial a name
 * from an IPv4 socket (lib/quic `connect`): a node on `localhost` must be on 127.0.0.1, not ::1.
 */
export async function listenAddress(host: string, port: number): Promise<string> {
  if (isIP(host) !== 0) return host;
  try {
    const all = await lookup(host, { all: true });
    return (all.find((a) => a.family === 4) ?? all[0]!).address;
  } catch (e) {
    throw new NodeError(bindProblem(host, port, e), { cause: e });
  }
}

/**
 * Binds and closes a plain UDP socket on the listen address (an IP), so that a port in use
 * fails the start before credentials are made or files written. Port 0 always binds.
 */
export async function checkListen(address: string, port: number): Promise<void> {
  const host = address;
  const socket = dgram.createSocket({ type: isIP(address) === 6 ? "udp6" : "udp4" });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind({ port, address, exclusive: true }, () => resolve());
    });
  } catch (e) {
    throw new NodeError(bindProblem(host, port, e), { cause: e });
  } finally {
    try {
      socket.close();
    } catch { /* never bound */ }
  }
}

/**
 * `macula node up --check`: what a start would check of the configuration's credentials,
 * without binding, locking or writing anything. Returns a line per finding (warnings
 * included); throws a StartError or NodeError naming what is wrong.
 */
export async function checkNode(config: NodeConfig, now = new Date()): Promise<string[]> {
  const lines: string[] = [];
  const log: Log = {
    debug() {},
    info: (_e, t) => lines.push(t),
    warn: (_e, t) => lines.push(`warning: ${t}`),
    error: (_e, t) => lines.push(`error: ${t}`),
  };
  let where = config.tls;
  if (where === null) {
    const caDir = devCaDir(config);
    const cert = join(resolve(config.dataDir), "node", "node.crt");
    const ca = join(caDir, CA_CERT_FILE);
    if (!existsSync(cert) || !existsSync(ca)) {
      lines.push(
        `credentials: dev realm; the CA and the node's certificate are made on first start (${caDir}, ${
          dirname(cert)
        })`,
      );
      return lines;
    }
    where = { ca, cert, key: join(dirname(cert), "node.key") };
  }
  const creds = await nodeCredentials({ ...config, tls: where });
  const id = await checkIdentity(creds, config.realm, where, log, now);
  lines.push(
    `credentials: ${where.cert} is node ${id.nodeId} (${id.name}) of realm ${id.realm}, valid until ${id.notAfter.toISOString()}, issued by ${where.ca}`,
  );
  if (config.tls?.crl !== undefined) {
    try {
      await readFile(config.tls.crl);
      lines.push(`crl: ${config.tls.crl} is readable`);
    } catch (e) {
      throw new StartError(`tls.crl: cannot read ${config.tls.crl}: ${fileProblem(e)}`, {
        cause: e,
      });
    }
  }
  return lines;
}
