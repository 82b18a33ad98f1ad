/**
 * Revocation on a node (docs/security.md, "Revocation and rotation"): the realm's CRLs, where
 * they come from, and what they do.
 *
 * - At start: `tls.crl` (if configured; unreadable or not the realm CA's → the node refuses to
 *   start) and the CRLs kept in the data directory (`crl.pem`: what the mesh told it before), the
 *   newest by CRL number per CA of the bundle. In the dev realm the CRL file is the dev CA's own
 *   (`<ca dir>/crl.pem`, where `macula certs revoke --ca-dir` writes it), taken once it exists.
 * - While running: the CRL file again when it changes (polled every second) or on `reload()`
 *   (SIGHUP); a CRL any peer pushes (`crl.push`: accepted only if signed by the realm CA and newer
 *   than the one held, so replaying an old one does nothing).
 * - A CRL taken: sessions whose peer it revokes are closed with the reason; new sessions are
 *   refused by the handshake (the same Verifier); it is kept in the data directory and pushed to
 *   every route, which do the same: it floods the mesh, and stops at nodes that hold it already.
 *   A route that comes up is sent the CRLs held (a node that was away catches up).
 */
import { existsSync, statSync } from "node:fs";
import process from "node:process";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  CRL_FILE,
  type CrlLoaded,
  fileProblem,
  IdentityError,
  type Verifier,
  x509,
} from "../identity/mod.ts";
import { ask, type PeerSession, type RequestRegistry } from "../peer/mod.ts";
import { CRL_PUSH, MAX_CRL_BYTES } from "../policy/mod.ts";
import { type Log, monoNow, RateLimiter } from "../util/mod.ts";
import { NodeError } from "./errors.ts";

/** The file in the data directory that keeps the newest CRL across restarts. */
export const CRL_KEPT = "crl.pem";

/**
 * Where a node's CRL file is: `tls.crl` (it must exist), else in the dev realm the dev CA's own
 * `crl.pem` (taken once `macula certs revoke --ca-dir` writes it), else none.
 */
export function crlSource(
  tlsCrl: string | undefined,
  devCaDir: string | null,
): { crlPath: string | null; crlRequired: boolean } {
  if (tlsCrl) return { crlPath: tlsCrl, crlRequired: true };
  if (devCaDir) return { crlPath: join(devCaDir, CRL_FILE), crlRequired: false };
  return { crlPath: null, crlRequired: false };
}

/** What revocation needs of the node. */
export interface RevocationHost {
  verifier: Verifier;
  dataDir: string;
  /** `tls.crl` (or the dev CA's `crl.pem`), or null. */
  crlPath: string | null;
  /** False when `crlPath` may not exist yet (the dev CA's, before anything was revoked). */
  crlRequired?: boolean;
  /** Every session (to close the revoked). */
  sessions(): Iterable<PeerSession>;
  /** Sessions to peer nodes with a route (to spread a CRL to). */
  routes(): PeerSession[];
  readonly log: Log;
}

/** Counters for `inspect node` → `crl`. */
export interface RevocationStats {
  /** CRLs taken: from the file, from peers. */
  accepted: number;
  /** CRLs that were not newer than the one held. */
  stale: number;
  /** Pushes refused: not the realm CA's, malformed, too large, too many. */
  refused: number;
  /** Sessions closed because their peer was revoked, or its certificate expired. */
  closedRevoked: number;
}

const pem = (der: Uint8Array) => x509.PemConverter.encode(Uint8Array.from(der).buffer, "X509 CRL");

/** The CRLs in a file or a push: PEM blocks (one or more), or one DER CRL. */
function dersOf(data: Uint8Array): Uint8Array[] {
  const head = new TextDecoder().decode(data.subarray(0, 64));
  if (!head.includes("-----BEGIN")) return [data];
  const blocks = x509.PemConverter.decode(new TextDecoder().decode(data));
  if (blocks.length === 0) throw new IdentityError("bad-certificate", "no CRL in the PEM text");
  return blocks.map((b) => new Uint8Array(b));
}

/** The CRLs of one node. */
export class Revocation {
  readonly stats: RevocationStats = { accepted: 0, stale: 0, refused: 0, closedRevoked: 0 };
  /** The newest CRL taken per CA key id (DER), to persist and to hand to new routes. */
  readonly #held = new Map<string, Uint8Array>();
  /** Where the CRL held now came from, for `inspect`. */
  #source = "none";
  #watch: ReturnType<typeof setInterval> | undefined;
  #fileStamp = "";
  /** Pushes per asking peer: 16 at once, then 2 a second. */
  readonly #pushes = new RateLimiter<string>({ perSecond: 2, burst: 16, maxKeys: 4096 });

  private constructor(private readonly h: RevocationHost) {}

  /**
   * Loads what a node starts with: the kept CRL, then `tls.crl` (which must be readable and the
   * realm CA's: a `NodeError` otherwise, before anything is bound).
   */
  static async start(h: RevocationHost): Promise<Revocation> {
    const r = new Revocation(h);
    const kept = join(h.dataDir, CRL_KEPT);
    if (existsSync(kept)) {
      let ders: Uint8Array[] = [];
      try {
        ders = dersOf(await readFile(kept));
      } catch (e) {
        h.log.warn("crl.ignored", `crl: ignoring ${kept}: ${(e as Error).message}`);
      }
      for (const der of ders) {
        try {
          await r.#take(der, `${kept} (kept from the mesh)`);
        } catch (e) {
          h.log.warn("crl.ignored", `crl: ignoring a CRL in ${kept}: ${(e as Error).message}`);
        }
      }
    }
    const path = h.crlPath;
    if (path) {
      r.#fileStamp = r.#stamp(path);
      if (h.crlRequired !== false || existsSync(path)) {
        const what = h.crlRequired === false ? "the dev CA's CRL" : "tls.crl";
        let bytes: Uint8Array;
        try {
          bytes = await readFile(path);
        } catch (e) {
          throw new NodeError(
            `${what}: cannot read ${path}: ${fileProblem(e)}`,
            { cause: e },
          );
        }
        try {
          for (const line of await r.#takeFile(bytes, path)) h.log.info("crl.loaded", line);
        } catch (e) {
          throw new NodeError(`${what}: ${path}: ${(e as Error).message}`, { cause: e });
        }
      }
    }
    return r;
  }

  /** Polls `tls.crl` for changes (every second; unref'd). */
  watch(): void {
    const path = this.h.crlPath;
    if (!path || this.#watch) return;
    this.#watch = setInterval(() => {
      const stamp = this.#stamp(path);
      if (stamp === this.#fileStamp) return;
      this.#fileStamp = stamp;
      void this.reload().then((l) => this.h.log.info("crl.reloaded", l));
    }, 1000);
    (this.#watch as { unref?: () => void }).unref?.();
  }

  stop(): void {
    clearInterval(this.#watch);
  }

  /**
   * Reads the CRL file again (SIGHUP, a change of the file): what it did, a line for the log. A
   * file that cannot be used is reported and the CRLs held are kept.
   */
  async reload(): Promise<string> {
    const path = this.h.crlPath;
    if (!path) return "crl: no tls.crl configured";
    if (this.h.crlRequired === false && !existsSync(path)) return `crl: none at ${path} yet`;
    try {
      return (await this.#takeFile(await readFile(path), path)).join("; ");
    } catch (e) {
      return `crl: ${path}: ${(e as Error).message} (keeping the CRL held)`;
    }
  }

  /**
   * Takes every CRL of a file (one per CA of the bundle), in order; a line for each. The first
   * that cannot be used stops the rest (with its error; those before it stay taken).
   */
  async #takeFile(bytes: Uint8Array, path: string): Promise<string[]> {
    const ders = dersOf(bytes);
    if (ders.length > 16) {
      throw new IdentityError("bad-certificate", `${ders.length} CRLs (at most 16)`);
    }
    const lines: string[] = [];
    for (const der of ders) {
      const got = await this.#take(der, path, undefined, true);
      lines.push(
        got.accepted
          ? `crl: loaded ${got.revoked} revoked from ${path} (number ${got.number ?? "none"})`
          : `crl: ${path}: ${got.reason}`,
      );
    }
    return lines;
  }

  /** Registers `crl.push`. */
  register(r: RequestRegistry): void {
    r.on(CRL_PUSH, async (bytes, s) => {
      if (!this.#pushes.take(s.peer.nodeId, 1, monoNow())) {
        this.stats.refused++;
        return { accepted: false, reason: "too many CRL pushes from this peer" };
      }
      if (bytes.length > MAX_CRL_BYTES) {
        this.stats.refused++;
        return { accepted: false, reason: `over ${MAX_CRL_BYTES} bytes` };
      }
      try {
        const got = await this.#take(bytes, `${s.peer.name} ${s.peer.nodeId.slice(0, 12)}…`, s);
        return got.accepted ? { accepted: true } : { accepted: false, reason: got.reason! };
      } catch (e) {
        this.stats.refused++;
        return { accepted: false, reason: (e as Error).message };
      }
    });
  }

  /** A route came up: hand it the CRLs held (it ignores what it has already). */
  routeUp(s: PeerSession): void {
    for (const der of this.#held.values()) this.#push(s, der);
  }

  /** What `inspect node` shows. */
  snapshot(): {
    held: { issuer: string; number: string | null; revoked: number }[];
    source: string;
  } & RevocationStats {
    return {
      held: this.h.verifier.crls().map((c) => ({ ...c, number: c.number?.toString() ?? null })),
      source: this.#source,
      ...this.stats,
    };
  }

  /** Closes `s` if its peer is revoked now; true when it did. */
  enforce(s: PeerSession): boolean {
    if (s.closing || !this.h.verifier.isRevoked(s.peer)) return false;
    this.stats.closedRevoked++;
    this.h.log.warn(
      "peer.revoked",
      `closing session with ${s.peer.name} ${s.peer.nodeId.slice(0, 12)}…: revoked`,
      { peer: s.peer.nodeId, cause: "revoked" },
    );
    void s.close("certificate revoked by the realm CRL");
    return true;
  }

  async #take(
    data: Uint8Array,
    from: string,
    via?: PeerSession,
    quiet = false,
  ): Promise<CrlLoaded> {
    const ders = dersOf(data);
    if (ders.length !== 1) {
      throw new IdentityError("bad-certificate", `one CRL at a time (got ${ders.length})`);
    }
    const der = ders[0]!;
    const got = await this.h.verifier.loadCrl(der);
    if (!got.accepted) {
      this.stats.stale++;
      return got;
    }
    this.stats.accepted++;
    this.#source = from;
    this.#held.set(got.ca, der);
    if (!quiet) {
      this.h.log.info(
        "crl.loaded",
        `crl: loaded ${got.revoked} revoked from ${from} (number ${got.number ?? "none"})`,
      );
    }
    for (const s of this.h.sessions()) this.enforce(s);
    await this.#keep();
    for (const s of this.h.routes()) if (s !== via) this.#push(s, der);
    return got;
  }

  #push(s: PeerSession, der: Uint8Array): void {
    ask(s, CRL_PUSH, der, { timeoutMs: 5000 }).catch(() => {});
  }

  /** Writes every CRL held (one per CA of the bundle) to the data directory, atomically. */
  async #keep(): Promise<void> {
    const path = join(this.h.dataDir, CRL_KEPT);
    const tmp = `${path}.tmp-${process.pid}`;
    try {
      await mkdir(this.h.dataDir, { recursive: true });
      await writeFile(tmp, [...this.#held.values()].map((d) => `${pem(d)}\n`).join(""));
      await rename(tmp, path);
    } catch (e) {
      this.h.log.warn("crl.keep_failed", `crl: cannot keep it in ${path}: ${(e as Error).message}`);
    }
  }

  #stamp(path: string): string {
    try {
      const st = statSync(path);
      return `${st.mtimeMs}:${st.size}`;
    } catch {
      return "missing";
    }
  }
}
