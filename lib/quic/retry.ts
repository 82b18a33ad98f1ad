/**
 * Stateless retry tokens (RFC 9000 §8.1.2): an HMAC over the client's address, the original
 * destination connection id and an issue time, so the server validates a client's address
 * without keeping state per handshake.
 *
 * Layout: `issued (u32 seconds, big endian) | odcid length (u8) | odcid | tag (16 bytes)`.
 *
 * `issued` is on the runtime's monotonic clock (`monoNow`), not the calendar: a token is only
 * ever checked by the endpoint that issued it (the key is per endpoint and never leaves it), so
 * no other clock has to agree, and a wall-clock step can neither expire nor revive a token.
 */
import { createHmac, randomBytes } from "node:crypto";
import { monoNow } from "../util/mod.ts";

const TAG_LEN = 16;

/** Issues and checks retry tokens with a per-endpoint random key. */
export class RetryTokens {
  readonly #key: Uint8Array;
  constructor(readonly lifetimeMs: number, key: Uint8Array = randomBytes(32)) {
    this.#key = key;
  }

  #tag(issued: number, odcid: Uint8Array, host: string, port: number): Uint8Array {
    const h = createHmac("sha256", this.#key);
    const head = new Uint8Array(5);
    new DataView(head.buffer).setUint32(0, issued);
    head[4] = odcid.length;
    h.update(head).update(odcid).update(`${host}|${port}`);
    return h.digest().subarray(0, TAG_LEN);
  }

  /** A token for a client at `host:port` whose first Initial used `odcid`. */
  issue(odcid: Uint8Array, host: string, port: number, nowMs = monoNow()): Uint8Array {
    const issued = Math.floor(nowMs / 1000);
    const out = new Uint8Array(5 + odcid.length + TAG_LEN);
    new DataView(out.buffer).setUint32(0, issued);
    out[4] = odcid.length;
    out.set(odcid, 5);
    out.set(this.#tag(issued, odcid, host, port), 5 + odcid.length);
    return out;
  }

  /** The original destination connection id, or null when the token is forged, foreign or expired. */
  check(token: Uint8Array, host: string, port: number, nowMs = monoNow()): Uint8Array | null {
    if (token.length < 5 + TAG_LEN) return null;
    const view = new DataView(token.buffer, token.byteOffset, token.byteLength);
    const issued = view.getUint32(0);
    const len = token[4]!;
    if (len > 20 || token.length !== 5 + len + TAG_LEN) return null;
    const ageMs = nowMs - issued * 1000;
    if (ageMs < -1000 || ageMs > this.lifetimeMs + 1000) return null;
    const odcid = token.subarray(5, 5 + len);
    const tag = this.#tag(issued, odcid, host, port);
    const got = token.subarray(5 + len);
    let diff = 0;
    for (let i = 0; i < TAG_LEN; i++) diff |= tag[i]! ^ got[i]!;
    return diff === 0 ? odcid.slice() : null;
  }
}
