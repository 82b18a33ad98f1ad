/**
 * Interest records (docs/routing.md): what one node's clients subscribe to and serve, as that node
 * signs it for the whole realm. The router floods a node's record over the overlay; every node
 * keeps the latest record of every reachable node and routes publishes and calls by them.
 *
 * The signed bytes are one deterministic CBOR array (lib/wire's encoder):
 *
 * ```
 * ["macula-interest-v1", realm, origin, version, [[pattern, queue | null], …], [proc, …]]
 * ```
 *
 * Versions grow: a node's first version is its start time in ms × 1000, so a restarted node's
 * records replace its earlier process's.
 */
import { encodeFrame } from "../wire/mod.ts";
import { MAX_GROUPS, MAX_RECORD_PROCS, MAX_RECORD_SUBS } from "./frames.ts";

/** The domain of an interest record's signature (no other signed object shares it). */
export const INTEREST_DOMAIN = "macula-interest-v1";

/** One subscription of a record: a pattern, with the queue group if it has one. */
export interface InterestSub {
  readonly pattern: string;
  readonly queue?: string;
}

/** A node's interest as it travels. */
export interface InterestRecord {
  readonly origin: string;
  readonly version: number;
  readonly subs: readonly InterestSub[];
  readonly procs: readonly string[];
  /** The origin's public key, DER SPKI (its SHA-256 is the origin's id). */
  readonly key: Uint8Array;
  readonly sig: Uint8Array;
}

/** The bytes an origin signs for its record. */
export function interestBytes(
  realm: string,
  origin: string,
  version: number,
  subs: readonly InterestSub[],
  procs: readonly string[],
): Uint8Array {
  return encodeFrame([
    INTEREST_DOMAIN,
    realm,
    origin,
    version,
    subs.map((s) => [s.pattern, s.queue ?? null]),
    [...procs],
  ]);
}

/** Signs this node's records (the edge supplies it: the node key). Synchronous. */
export interface InterestSigner {
  /** This node's public key, DER SPKI. */
  readonly key: Uint8Array;
  sign(bytes: Uint8Array): Uint8Array;
}

/** Checks that `key` is `origin`'s (its SHA-256) and `sig` is its signature over `bytes`. */
export type InterestVerifier = (
  origin: string,
  key: Uint8Array,
  bytes: Uint8Array,
  sig: Uint8Array,
) => boolean;

/** Bytes of pattern and queue text one record's subscriptions may take (its frame fits any route). */
export const RECORD_SUBS_BYTES = 32 * 1024;
/** Bytes of procedure names one record may take. */
export const RECORD_PROCS_BYTES = 16 * 1024;

const subBytes = (s: InterestSub) => s.pattern.length + (s.queue?.length ?? 0) + 4;

/**
 * What a node announces for its own interest, bounded: at most `MAX_RECORD_SUBS` subscriptions
 * in `RECORD_SUBS_BYTES` (of at most `MAX_GROUPS` distinct queue groups: what one FWD can name
 * for one node), and `MAX_RECORD_PROCS` procedures in `RECORD_PROCS_BYTES` (so a record
 * always fits in one frame, whatever `max_payload` is). Past the first bound the plain patterns
 * are summarised as `>` (the node gets more messages than it needs and delivers only what
 * matches); queue groups past it go unannounced. Procedures past the second are not announced
 * mesh-wide (still served to this node's own clients). `overflow` counts what was left out.
 */
export function ownInterest(
  subs: Iterable<InterestSub>,
  procs: Iterable<string>,
): { subs: InterestSub[]; procs: string[]; overflow: number } {
  const plain: InterestSub[] = [];
  let queued: InterestSub[] = [];
  let bytes = 0;
  for (const s of subs) {
    (s.queue === undefined ? plain : queued).push(s);
    bytes += subBytes(s);
  }
  const sortKey = (s: InterestSub) => `${s.queue ?? ""} ${s.pattern}`;
  plain.sort((a, b) => (a.pattern < b.pattern ? -1 : a.pattern > b.pattern ? 1 : 0));
  queued.sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : 1));
  let overflow = 0;
  // At most MAX_GROUPS distinct queue groups (what one FWD can name for one node).
  const groups = new Set<string>();
  queued = queued.filter((s) => {
    if (groups.has(s.queue!) || groups.size < MAX_GROUPS) {
      groups.add(s.queue!);
      return true;
    }
    overflow++;
    bytes -= subBytes(s);
    return false;
  });
  let out: InterestSub[];
  if (plain.length + queued.length <= MAX_RECORD_SUBS && bytes <= RECORD_SUBS_BYTES) {
    out = [...plain, ...queued];
  } else {
    out = plain.length > 0 ? [{ pattern: ">" }] : [];
    let used = out.length > 0 ? subBytes(out[0]!) : 0;
    for (const s of queued) {
      if (out.length >= MAX_RECORD_SUBS || used + subBytes(s) > RECORD_SUBS_BYTES) overflow++;
      else {
        out.push(s);
        used += subBytes(s);
      }
    }
  }
  const p: string[] = [];
  let used = 0;
  for (const name of [...procs].sort()) {
    if (p.length >= MAX_RECORD_PROCS || used + name.length + 2 > RECORD_PROCS_BYTES) overflow++;
    else {
      p.push(name);
      used += name.length + 2;
    }
  }
  return { subs: out, procs: p, overflow };
}

/** Signer and verifier for tests and the simulator: the "signature" is the origin's id. */
export function unsignedInterest(origin: string): InterestSigner {
  const key = new TextEncoder().encode(origin);
  return { key, sign: () => key };
}

/** Verifier matching `unsignedInterest`: the key and signature spell the origin. */
export const unsignedVerifier: InterestVerifier = (origin, key, _bytes, sig) => {
  const text = new TextDecoder().decode(key);
  return text === origin && sig.length === key.length && sig.every((b, i) => b === key[i]);
};
