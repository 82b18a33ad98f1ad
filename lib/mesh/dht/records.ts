/**
 * DHT records and the store that holds other nodes' (docs/dht.md). A record is a value under a
 * 32-byte key, published and signed by one node: several publishers may hold a record under the
 * same key (who serves a name, say), one each, the higher `seq` replacing the lower. The store
 * checks every record before it takes it, bounds what one publisher may hold and what it holds
 * in all, and forgets a record `ttlMs` after it took it (the publisher republishes before then).
 */
import { encodeFrame } from "../../wire/mod.ts";
import { idHex } from "../overlay/members.ts";

/** The domain of a DHT record's signature (no other signed object shares it). */
export const DHT_DOMAIN = "macula-dht-v1";

/** Bounds of one record and of the store (docs/dht.md has the reason for each). */
export const RECORD_LIMITS = {
  /** A value fits in one datagram-sized answer with room for contacts: names, addresses, small descriptors. */
  maxValueBytes: 4096,
  /** Records one publisher may have stored at one node: a node publishes a few names, not a database. */
  perPublisher: 64,
  /** Records one node stores for others in all: 64 Ki × ~4.3 KiB at most ≈ 280 MiB worst case, ~10 MiB typical. */
  maxRecords: 65_536,
  /** Records under one key handed out in one answer. */
  perKeyAnswer: 20,
  /** A record lives at most a day without being republished (Kademlia's tExpire, 86,400 s). */
  maxTtlMs: 86_400_000,
} as const;

/** Bounds a store applies (RECORD_LIMITS, or others in tests). */
export type RecordLimits = { readonly [K in keyof typeof RECORD_LIMITS]: number };

/** One record as it travels and is stored. */
export interface DhtRecord {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
  /** The publishing node's id (32 bytes). */
  readonly publisher: Uint8Array;
  /** Higher replaces lower, for one publisher and key. */
  readonly seq: number;
  /** How long a storing node keeps it, ms (≤ `maxTtlMs`). */
  readonly ttlMs: number;
  /** The publisher's public key (DER SPKI; its SHA-256 is the publisher's id) and signature. */
  readonly pub: Uint8Array;
  readonly sig: Uint8Array;
}

/** Checks a record's signature: the key must be the publisher's, the signature over `bytes` good. Synchronous. */
export type DhtVerifier = (
  publisher: Uint8Array,
  pub: Uint8Array,
  bytes: Uint8Array,
  sig: Uint8Array,
) => boolean;

/** Signs this node's records: its public key, and a signature over `bytes`. Synchronous. */
export interface DhtSigner {
  readonly key: Uint8Array;
  sign(bytes: Uint8Array): Uint8Array;
}

/** The bytes a record's signature covers (deterministic CBOR). */
export function recordBytes(
  realm: string,
  r: Pick<DhtRecord, "key" | "value" | "publisher" | "seq" | "ttlMs">,
): Uint8Array {
  return encodeFrame([DHT_DOMAIN, realm, r.key, r.value, r.publisher, r.seq, r.ttlMs]);
}

/** Why a record was refused (counted by reason). */
export type Refusal =
  | "malformed"
  | "too_large"
  | "bad_signature"
  | "stale"
  | "per_publisher"
  | "full";

/** A shape check of what a peer sent as a record: a reason, or null when it is well formed. */
export function malformed(r: unknown): string | null {
  if (typeof r !== "object" || r === null) return "not a record";
  const x = r as Record<string, unknown>;
  const bytes = (v: unknown, n?: number) =>
    v instanceof Uint8Array && (n === undefined || v.length === n);
  if (!bytes(x.key, 32)) return "key must be 32 bytes";
  if (!bytes(x.publisher, 32)) return "publisher must be 32 bytes";
  if (!bytes(x.value)) return "value must be bytes";
  if (!bytes(x.pub) || (x.pub as Uint8Array).length > 128) return "pub must be at most 128 bytes";
  if (!bytes(x.sig) || (x.sig as Uint8Array).length > 128) return "sig must be at most 128 bytes";
  if (typeof x.seq !== "number" || !Number.isSafeInteger(x.seq) || x.seq < 0) {
    return "seq must be a non-negative integer";
  }
  if (
    typeof x.ttlMs !== "number" || !Number.isInteger(x.ttlMs) || x.ttlMs < 1 ||
    x.ttlMs > RECORD_LIMITS.maxTtlMs
  ) return `ttlMs must be an integer from 1 to ${RECORD_LIMITS.maxTtlMs}`;
  return null;
}

interface Held {
  record: DhtRecord;
  expiresAt: number;
}

/** Other nodes' records this node stores. */
export class RecordStore {
  /** key hex → publisher hex → record. */
  readonly #byKey = new Map<string, Map<string, Held>>();
  readonly #perPublisher = new Map<string, number>();
  #count = 0;
  /** Refusals by reason. */
  readonly refused: Record<Refusal, number> = {
    malformed: 0,
    too_large: 0,
    bad_signature: 0,
    stale: 0,
    per_publisher: 0,
    full: 0,
  };

  constructor(
    private readonly realm: string,
    private readonly verify: DhtVerifier,
    private readonly limits: RecordLimits = RECORD_LIMITS,
  ) {}

  get size(): number {
    return this.#count;
  }

  /** Publishers with records here. */
  get publishers(): number {
    return this.#perPublisher.size;
  }

  /**
   * Checks and takes a record at `now`: null when taken (or already held at that seq), else why
   * not (counted).
   */
  put(r: DhtRecord, now: number): Refusal | null {
    const why = check(this.realm, r, this.verify, this.limits);
    if (why) {
      this.refused[why]++;
      return why;
    }
    const k = idHex(r.key), p = idHex(r.publisher);
    let m = this.#byKey.get(k);
    const old = m?.get(p);
    if (old && old.record.seq > r.seq) {
      this.refused.stale++;
      return "stale";
    }
    if (!old) {
      const n = this.#perPublisher.get(p) ?? 0;
      if (n >= this.limits.perPublisher) {
        this.refused.per_publisher++;
        return "per_publisher";
      }
      if (this.#count >= this.limits.maxRecords) {
        this.refused.full++;
        return "full";
      }
      this.#perPublisher.set(p, n + 1);
      this.#count++;
    }
    if (!m) this.#byKey.set(k, m = new Map());
    m.set(p, { record: r, expiresAt: now + r.ttlMs });
    return null;
  }

  /** The records held under `key` and not expired at `now` (at most `perKeyAnswer`). */
  get(key: Uint8Array, now: number): DhtRecord[] {
    const m = this.#byKey.get(idHex(key));
    if (!m) return [];
    const out: DhtRecord[] = [];
    for (const h of m.values()) {
      if (h.expiresAt > now) out.push(h.record);
      if (out.length >= this.limits.perKeyAnswer) break;
    }
    return out;
  }

  /** Forgets what expired by `now`; returns how many. */
  expire(now: number): number {
    let gone = 0;
    for (const [k, m] of this.#byKey) {
      for (const [p, h] of m) {
        if (h.expiresAt > now) continue;
        m.delete(p);
        gone++;
        this.#count--;
        const n = this.#perPublisher.get(p)! - 1;
        if (n === 0) this.#perPublisher.delete(p);
        else this.#perPublisher.set(p, n);
      }
      if (m.size === 0) this.#byKey.delete(k);
    }
    return gone;
  }

  /** Every record held, for inspection: key and publisher (hex), seq, size, expiry. */
  list(): { key: string; publisher: string; seq: number; bytes: number; expiresAt: number }[] {
    const out = [];
    for (const [key, m] of this.#byKey) {
      for (const [publisher, h] of m) {
        out.push({
          key,
          publisher,
          seq: h.record.seq,
          bytes: h.record.value.length,
          expiresAt: h.expiresAt,
        });
      }
    }
    return out;
  }
}

/** Whether a record may be believed: its shape, size and signature. */
export function check(
  realm: string,
  r: DhtRecord,
  verify: DhtVerifier,
  limits: RecordLimits = RECORD_LIMITS,
): Refusal | null {
  if (malformed(r)) return "malformed";
  if (r.value.length > limits.maxValueBytes) return "too_large";
  if (!verify(r.publisher, r.pub, recordBytes(realm, r), r.sig)) return "bad_signature";
  return null;
}
