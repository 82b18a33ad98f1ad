/**
 * Revocation on a node (docs/security.md, "Revocation and rotation"): the realm's CRLs, where
 * they come from, and what they do.
 *
 * - At start: `tls.crl` (if configured; unreadable or not the realm CA's → the node refuses to
 *   start) and the CRL kept in the data directory (`crl.pem`: what the mesh told it before), the
 *   newest by CRL number.
 * - While running: `tls.crl` again when the file changes (polled every second) or on `reload()`
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
import { type CrlLoaded, IdentityError, type Verifier, x509 } from "../identity/mod.ts";
import { ask, type PeerSession, type RequestRegistry } from "../peer/mod.ts";
import { CRL_PUSH, MAX_CRL_BYTES } from "../policy/mod.ts";
import { monoNow, RateLimiter } from "../util/mod.ts";
import { NodeError } from "./errors.ts";

/** The file in the data directory that keeps the newest CRL across restarts. */
export const CRL_KEPT = "crl.pem";

/** What revocation needs of the node. */
export interface RevocationHost {
  verifier: Verifier;
  dataDir: string;
  /** `tls.crl`, or null. */
  crlPath: string | null;
  /** Every session (to close the revoked). */
  sessions(): Iterable<PeerSession>;
  /** Sessions to peer nodes with a route (to spread a CRL to). */
  routes(): PeerSession[];
  log(line: string): void;
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

function derOf(data: Uint8Array | string): Uint8Array {
  const text = typeof data === "string" ? data : new TextDecoder().decode(data.subarray(0, 32));
  if (text.includes("-----BEGIN")) {
    const s = typeof data === "string" ? data : new TextDecoder().decode(data);
    const blocks = x509.PemConverter.decode(s);
    if (blocks.length !== 1) throw new IdentityError("bad-certificate", "want one CRL");
    return new Uint8Array(blocks[0]!);
  }
  return typeof data === "string" ? new TextEncoder().encode(data) : data;
}

/** The CRLs of one node. */
export class Revocation {
  readonly stats: RevocationStats = { accepted: 0, stale: 0, refused: 0, closedRevoked: 0 };
  /** The newest CRL taken per CA (DER), to persist and to hand to new routes. */
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
      try {
        for (const der of x509.PemConverter.decode(await readFile(kept, "utf8"))) {
          await r.#take(new Uint8Array(der), `${kept} (kept from the mesh)`);
        }
      } catch (e) {
        h.log(`crl: ignoring ${kept}: ${(e as Error).message}`);
      }
    }
    if (h.crlPath) {
      const path = h.crlPath;
      let bytes: Uint8Array;
      try {
        bytes = await readFile(path);
      } catch (e) {
        throw new NodeError(
          `tls.crl: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? e})`,
          { cause: e },
        );
      }
      try {
        const got = await r.#take(bytes, path);
        if (!got.accepted) h.log(`crl: ${path}: ${got.reason}`);
      } catch (e) {
        throw new NodeError(`tls.crl: ${path}: ${(e as Error).message}`, { cause: e });
      }
      r.#fileStamp = r.#stamp(path);
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
      void this.reload().then((l) => this.h.log(l));
    }, 1000);
    (this.#watch as { unref?: () => void }).unref?.();
  }

  stop(): void {
    clearInterval(this.#watch);
  }

  /** Reads `tls.crl` again (SIGHUP, a change of the file); a line for the log. */
  async reload(): Promise<string> {
    const path = this.h.crlPath;
    if (!path) return "crl: no tls.crl configured";
    try {
      const got = await this.#take(await readFile(path), path);
      return got.accepted
        ? `crl: loaded ${got.revoked} revoked from ${path} (number ${got.number ?? "none"})`
        : `crl: ${path}: ${got.reason}`;
    } catch (e) {
      return `crl: ${path}: ${(e as Error).message} (keeping the CRL held)`;
    }
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
    this.h.log(`closing session with ${s.peer.name} ${s.peer.nodeId.slice(0, 12)}…: revoked`);
    void s.close("certificate revoked by the realm CRL");
    return true;
  }

  async #take(data: Uint8Array, from: string, via?: PeerSession): Promise<CrlLoaded> {
    const der = derOf(data);
    const got = await this.h.verifier.loadCrl(der);
    if (!got.accepted) {
      this.stats.stale++;
      return got;
    }
    this.stats.accepted++;
    this.#source = from;
    this.#held.set(got.issuer, der);
    this.h.log(`crl: took ${got.revoked} revoked from ${from} (number ${got.number ?? "none"})`);
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
      this.h.log(`crl: cannot keep it in ${path}: ${(e as Error).message}`);
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
