/**
 * Frames on the wire (docs/wire-protocol.md): a 4-byte big-endian length, then one CBOR array
 * `[type, field1, field2, …]` whose fields are positional and declared per frame type. Encoding
 * is deterministic (definite lengths, shortest integer forms, fields in declared order, no
 * floats); decoding is strict: a bad frame is a `WireError` naming the frame and the field.
 *
 * Rules for evolution: a decoder ignores fields past the ones it knows (a newer peer may append
 * fields); an unknown frame type below 0x40 is an error (the peer needs it understood), one at
 * 0x40 or above is skipped and reported as unknown.
 */
// cbor-x's encoder writes `encodeRaw`'s arbitrary arrays (tests of hostile and future peers); its
// pure-JavaScript build: the default entry loads the cbor-extract native addon, which aborted
// the whole process (not an exception) on fuzzed input here.
import { Encoder } from "cbor-x/encode";
import {
  encodeFrame,
  headSize,
  type Item,
  utf8Length,
  writeBytes,
  writeHead,
  writeText,
} from "./cbor.ts";
import { CborError, CborReader } from "./decode.ts";
import { WireError } from "./errors.ts";

export { WireError };

/**
 * Field kinds a frame may carry: unsigned integers, text, bytes, booleans, arrays of text, and
 * arrays of records (each record positional, by its own `fields`).
 */
export type FieldKind = "uint" | "str" | "bytes" | "bool" | "strs" | "records";

/**
 * One field of a frame type, or of a request payload (lib/peer/requests.ts): the one field
 * checker of the code base is `checkField` below, whatever carries the value.
 */
export interface FieldSpec {
  name: string;
  kind: FieldKind;
  /** Largest value (uint), length in bytes (str, bytes), or item count (strs, records). */
  max: number;
  /** May be null / absent (trailing). */
  optional?: boolean;
  /** For `strs`: largest length of each string. */
  itemMax?: number;
  /** For `records`: the fields of each record. */
  fields?: readonly FieldSpec[];
  /**
   * A check beyond the kind (a node id, an IP address, a port from 1): false makes the value
   * invalid, reported as "must be <want>".
   */
  valid?: (v: never) => boolean;
  /** What a valid value is, in words ("a node id"): the error for any invalid value says so. */
  want?: string;
}

/** A frame type. */
export interface FrameSpec {
  type: number;
  name: string;
  fields: readonly FieldSpec[];
}

/** A decoded frame of a known type. */
export interface Frame {
  type: number;
  name: string;
  fields: Record<string, unknown>;
}

/** First type number a decoder may skip when it does not know it. */
export const FIRST_IGNORABLE_TYPE = 0x40;
/** Default largest frame (header excluded). */
export const DEFAULT_MAX_FRAME = 1024 * 1024;

const encoder = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false });

/** UTF-8 bytes of `v` are over `max` (a string of n UTF-16 units has at most 3n bytes). */
function over(v: string, max: number): boolean {
  return v.length * 3 > max && utf8Length(v) > max;
}

/** Why `v` is not a valid value of `f` (its kind and limits), or null; `value` gets it normalized. */
function problem(f: FieldSpec, v: unknown, out: { value: unknown } | null): string | null {
  if (v === undefined || v === null) {
    if (out) out.value = null;
    return f.optional ? null : "missing";
  }
  switch (f.kind) {
    case "uint":
      // cbor-x decodes integers of 2^32 and more as bigint.
      if (typeof v === "bigint" && v >= 0n && v <= BigInt(Number.MAX_SAFE_INTEGER)) v = Number(v);
      if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
        return "not an unsigned integer";
      }
      if (v > f.max) return `${v} is over the limit of ${f.max}`;
      break;
    case "str":
      if (typeof v !== "string") return "not a text string";
      if (over(v, f.max)) return `longer than ${f.max} bytes`;
      break;
    case "bytes":
      if (!(v instanceof Uint8Array)) return "not a byte string";
      if (v.length > f.max) return `${v.length} bytes, over the limit of ${f.max}`;
      break;
    case "bool":
      if (typeof v !== "boolean") return "not a boolean";
      break;
    case "strs": {
      if (!Array.isArray(v)) return "not an array";
      if (v.length > f.max) return `${v.length} items, over the limit of ${f.max}`;
      const itemMax = f.itemMax ?? 1024;
      for (const s of v) {
        if (typeof s !== "string") return "an item is not a text string";
        if (over(s, itemMax)) return `an item is longer than ${itemMax} bytes`;
      }
      break;
    }
    case "records": {
      if (!Array.isArray(v)) return "not an array";
      if (v.length > f.max) return `${v.length} items, over the limit of ${f.max}`;
      // Records arrive in their wire form, arrays of fields; `out` gets them as objects.
      const fields = f.fields ?? [];
      const records: Record<string, unknown>[] | null = out ? new Array(v.length) : null;
      const item = out ? { value: undefined as unknown } : null;
      for (let i = 0; i < v.length; i++) {
        const r = v[i];
        if (!Array.isArray(r)) return `[${i}]: not an array`;
        if (r.length > fields.length) return `[${i}]: ${r.length} items, over ${fields.length}`;
        const rec: Record<string, unknown> | null = records ? {} : null;
        for (let j = 0; j < fields.length; j++) {
          const g = fields[j]!;
          const p = problem(g, r[j], item);
          if (p !== null) return `[${i}].${g.name}: ${g.want ? `must be ${g.want}` : p}`;
          if (rec) rec[g.name] = item!.value;
        }
        if (records) records[i] = rec!;
      }
      if (out) out.value = records;
      return null;
    }
  }
  if (f.valid && !(f.valid as (x: unknown) => boolean)(v)) return `must be ${f.want ?? "valid"}`;
  if (out) out.value = v;
  return null;
}

const scratch = { value: undefined as unknown };

/**
 * The one field checker: returns `v` as field `f` holds it (null for an absent optional, records
 * as objects) or throws a `WireError` naming `where` (the frame, or the request method) and the
 * field. With `want`, any invalid value is reported as "must be <want>".
 */
export function checkField(where: string, f: FieldSpec, v: unknown): unknown {
  const p = problem(f, v, scratch);
  if (p !== null) {
    throw new WireError(where, f.name, f.want && !p.startsWith("[") ? `must be ${f.want}` : p);
  }
  const value = scratch.value;
  scratch.value = undefined;
  return value;
}

/** The record's fields as an array in declared order, trailing absent optionals dropped. */
function toItems(fields: readonly FieldSpec[], o: Record<string, unknown>): Item[] {
  const arr: Item[] = [];
  for (const f of fields) {
    const v = o[f.name];
    if (f.kind === "records" && Array.isArray(v)) {
      const sub = f.fields ?? [];
      arr.push(v.map((r) => toItems(sub, r as Record<string, unknown>)));
    } else if (typeof v === "bigint") arr.push(Number(v)); // checked as a safe uint after
    else arr.push(v === undefined ? null : v as Item);
  }
  while (arr.length > 0 && arr[arr.length - 1] === null) arr.pop();
  return arr;
}

/** The body behind its 4-byte big-endian length (bytes set one by one: no ArrayBuffer access). */
function withLength(body: Uint8Array): Uint8Array {
  const n = body.length;
  const out = new Uint8Array(4 + n);
  out[0] = n >>> 24;
  out[1] = (n >>> 16) & 0xff;
  out[2] = (n >>> 8) & 0xff;
  out[3] = n & 0xff;
  out.set(body, 4);
  return out;
}

/**
 * Field kinds the hot paths take at a glance (the encoder writes them itself, the decoder checks
 * them inline); the rest go through `problem`.
 */
const FAST_UINT = 0;
const FAST_STR = 1;
const FAST_BYTES = 2;
const FAST_STRS = 3;
/** Records: fast only when there are none (an empty array); records go the general way. */
const FAST_NO_RECORDS = 4;
const SLOW = 5;

/** A frame type laid out for the hot paths: its fields' names, kinds and limits. */
interface Plan {
  spec: FrameSpec;
  names: string[];
  kinds: Uint8Array;
  max: number[];
  /** Largest length of each text of a `strs` field. */
  itemMax: number[];
  optional: boolean[];
}

function planOf(spec: FrameSpec): Plan {
  const f = spec.fields;
  return {
    spec,
    names: f.map((x) => x.name),
    kinds: Uint8Array.from(
      f,
      (x) =>
        x.valid !== undefined
          ? SLOW
          : x.kind === "uint"
          ? FAST_UINT
          : x.kind === "str"
          ? FAST_STR
          : x.kind === "bytes"
          ? FAST_BYTES
          : x.kind === "strs"
          ? FAST_STRS
          : x.kind === "records"
          ? FAST_NO_RECORDS
          : SLOW,
    ),
    max: f.map((x) => x.max),
    itemMax: f.map((x) => x.itemMax ?? 1024),
    optional: f.map((x) => x.optional === true),
  };
}

/** True when `v` is a list of at most `max` texts, each at most `itemMax` bytes at a glance. */
function shortTexts(v: unknown, max: number, itemMax: number): boolean {
  if (!Array.isArray(v) || v.length > max) return false;
  for (let i = 0; i < v.length; i++) {
    const t = v[i];
    if (typeof t !== "string" || t.length * 3 > itemMax) return false;
  }
  return true;
}

/** A set of frame types, encoding and decoding them. */
export class Codec {
  readonly #plans = new Map<string, Plan>();
  /** Plans by frame type, for the decoder (a sparse array: types are small numbers). */
  readonly #planOf: (Plan | undefined)[] = [];
  /** The values and text lengths of the frame being encoded (reused; emptied after each). */
  readonly #vals: unknown[] = [];
  readonly #lens: number[] = [];

  constructor(specs: readonly FrameSpec[], readonly maxFrame = DEFAULT_MAX_FRAME) {
    for (const s of specs) {
      if (!Number.isInteger(s.type) || s.type < 0 || s.type > 0xffff) {
        throw new TypeError(`frame ${s.name}: type ${s.type} is not 0-65535`);
      }
      if (this.#planOf[s.type] !== undefined || this.#plans.has(s.name)) {
        throw new TypeError(`frame ${s.name}: duplicate`);
      }
      const plan = planOf(s);
      this.#plans.set(s.name, plan);
      this.#planOf[s.type] = plan;
    }
  }

  /**
   * Encodes a frame (with its length prefix), validating every field first. Frames of numbers,
   * texts and bytes within their limits are sized and written in two passes over the fields;
   * anything else (records, text lists, booleans, a field with its own check, a bad value) goes
   * through the general path, which names what is wrong.
   */
  encode(name: string, fields: Record<string, unknown>): Uint8Array {
    const plan = this.#plans.get(name);
    if (plan === undefined) throw new WireError(name, null, "unknown frame type");
    const { names, kinds, max, itemMax, optional } = plan;
    const n = names.length;
    const vals = this.#vals;
    const lens = this.#lens;
    let body = 0;
    let count = 0; // fields up to the last present one (trailing optionals left out)
    let sized = 0; // body bytes of those
    for (let i = 0; i < n; i++) {
      const v = fields[names[i]!];
      vals[i] = v;
      if (v === undefined || v === null) {
        if (!optional[i]) return this.#encodeChecked(plan.spec, fields);
        vals[i] = null;
        body += 1;
        continue;
      }
      switch (kinds[i]) {
        case FAST_UINT:
          if (typeof v === "number" && v >= 0 && v <= max[i]! && Number.isSafeInteger(v)) {
            body += headSize(v);
            break;
          }
          return this.#encodeChecked(plan.spec, fields);
        case FAST_STR: {
          const len = typeof v === "string" ? utf8Length(v) : -1;
          if (len < 0 || len > max[i]!) return this.#encodeChecked(plan.spec, fields);
          lens[i] = len;
          body += headSize(len) + len;
          break;
        }
        case FAST_BYTES:
          if (v instanceof Uint8Array && v.length <= max[i]!) {
            body += headSize(v.length) + v.length;
            break;
          }
          return this.#encodeChecked(plan.spec, fields);
        case FAST_STRS: {
          if (!Array.isArray(v) || v.length > max[i]!) {
            return this.#encodeChecked(plan.spec, fields);
          }
          let bytes = headSize(v.length);
          for (let j = 0; j < v.length; j++) {
            const t = v[j];
            const len = typeof t === "string" ? utf8Length(t) : -1;
            if (len < 0 || len > itemMax[i]!) return this.#encodeChecked(plan.spec, fields);
            bytes += headSize(len) + len;
          }
          body += bytes;
          break;
        }
        case FAST_NO_RECORDS:
          if (Array.isArray(v) && v.length === 0) {
            body += 1;
            break;
          }
          return this.#encodeChecked(plan.spec, fields);
        default:
          return this.#encodeChecked(plan.spec, fields);
      }
      count = i + 1;
      sized = body;
    }
    const type = plan.spec.type;
    const size = headSize(count + 1) + headSize(type) + sized;
    if (size > this.maxFrame) {
      vals.fill(null, 0, n);
      throw new WireError(name, null, `${size} bytes, over the frame limit of ${this.maxFrame}`);
    }
    const out = new Uint8Array(4 + size);
    out[0] = size >>> 24;
    out[1] = (size >>> 16) & 0xff;
    out[2] = (size >>> 8) & 0xff;
    out[3] = size & 0xff;
    let off = writeHead(out, 4, 4, count + 1);
    off = writeHead(out, off, 0, type);
    for (let i = 0; i < count; i++) {
      const v = vals[i];
      if (v === null) out[off++] = 0xf6;
      else if (kinds[i] === FAST_UINT) off = writeHead(out, off, 0, v as number);
      else if (kinds[i] === FAST_STR) off = writeText(out, off, v as string, lens[i]!);
      else if (kinds[i] === FAST_BYTES) off = writeBytes(out, off, v as Uint8Array);
      else if (kinds[i] === FAST_NO_RECORDS) out[off++] = 0x80;
      else {
        const list = v as string[];
        off = writeHead(out, off, 4, list.length);
        for (let j = 0; j < list.length; j++) {
          const t = list[j]!;
          off = writeText(out, off, t, t.length === 0 ? 0 : utf8Length(t));
        }
      }
    }
    vals.fill(null, 0, n); // hold no payload past the call
    return out;
  }

  /** `encode`'s general path: every kind, and the error naming the field when a value is bad. */
  #encodeChecked(spec: FrameSpec, fields: Record<string, unknown>): Uint8Array {
    this.#vals.fill(null);
    const arr = this.#items;
    arr[0] = spec.type;
    const specs = spec.fields;
    let count = 1;
    for (let i = 0; i < specs.length; i++) {
      const f = specs[i]!;
      let v = fields[f.name];
      // Records go as arrays of their fields (checked in that form); the rest as they are.
      if (f.kind === "records" && Array.isArray(v)) {
        v = v.map((r) => toItems(f.fields ?? [], r as Record<string, unknown>));
      }
      const p = problem(f, v, null);
      if (p !== null) {
        arr.length = 0;
        throw new WireError(
          spec.name,
          f.name,
          f.want && !p.startsWith("[") ? `must be ${f.want}` : p,
        );
      }
      if (typeof v === "bigint") v = Number(v); // a checked uint: safe, written as a number
      if (v === undefined || v === null) arr[i + 1] = null;
      else {
        arr[i + 1] = v as Item;
        count = i + 2; // trailing optionals left out
      }
    }
    const frame = encodeFrame(arr, count);
    arr.length = 0;
    if (frame.length - 4 > this.maxFrame) {
      throw new WireError(
        spec.name,
        null,
        `${frame.length - 4} bytes, over the frame limit of ${this.maxFrame}`,
      );
    }
    return frame;
  }

  /** The items of the frame being encoded (reused; emptied after each frame). */
  readonly #items: Item[] = [];

  /**
   * Encodes a frame without its length prefix, for a carrier that delimits messages itself (a
   * QUIC datagram, a request payload). `decodeBody` reads it.
   */
  encodeBody(name: string, fields: Record<string, unknown>): Uint8Array {
    return this.encode(name, fields).subarray(4);
  }

  /** Encodes an arbitrary array as a frame, unchecked (tests of hostile and future peers). */
  encodeRaw(arr: unknown[]): Uint8Array {
    const body = encoder.encode(arr) as Uint8Array;
    return withLength(body);
  }

  /**
   * Decodes one frame body (without the length prefix), checking each field as it is read.
   * Byte fields are views of `body`: the caller must not change `body` while it holds them.
   */
  decodeBody(body: Uint8Array): Frame | { type: number; unknown: true } {
    const r = reader;
    r.reset(body);
    try {
      const n = r.arrayHead();
      if (n <= 0) {
        if (n < 0) r.item();
        end(r);
        throw new WireError("frame", null, "not a CBOR array [type, …]");
      }
      const type = r.item();
      if (typeof type !== "number" || !Number.isInteger(type) || type < 0 || type > 0xffff) {
        skip(r, n - 1);
        throw new WireError("frame", "type", "not an integer 0-65535");
      }
      const plan = this.#planOf[type];
      const spec = plan?.spec;
      if (!spec) {
        skip(r, n - 1);
        if (type >= FIRST_IGNORABLE_TYPE) {
          end(r); // one item, as any frame
          return { type, unknown: true };
        }
        throw new WireError(
          `frame type ${type}`,
          null,
          "unknown, and below 0x40 so it may not be ignored",
        );
      }
      const fields: Record<string, unknown> = {};
      const specs = spec.fields;
      const { names, kinds, max, itemMax, optional } = plan!;
      const known = Math.min(specs.length, n - 1);
      for (let i = 0; i < specs.length; i++) {
        const v = i < known ? r.item(1) : undefined;
        // The common kinds checked at a glance, here in the loop (a call costs ~10% of a decode);
        // anything else, or anything wrong, by the one checker.
        let ok = false;
        if (v === undefined || v === null) ok = optional[i]!;
        else {
          switch (kinds[i]) {
            case FAST_UINT:
              ok = typeof v === "number" && v >= 0 && v <= max[i]! && Number.isSafeInteger(v);
              break;
            case FAST_STR:
              ok = typeof v === "string" && v.length * 3 <= max[i]!;
              break;
            case FAST_BYTES:
              ok = v instanceof Uint8Array && v.length <= max[i]!;
              break;
            case FAST_STRS:
              ok = shortTexts(v, max[i]!, itemMax[i]!);
              break;
            case FAST_NO_RECORDS:
              ok = Array.isArray(v) && v.length === 0;
          }
        }
        fields[names[i]!] = ok ? v ?? null : checkField(spec.name, specs[i]!, v);
      }
      skip(r, n - 1 - known); // fields a newer peer appended
      end(r);
      return { type, name: spec.name, fields };
    } catch (e) {
      if (e instanceof CborError) {
        throw new WireError("frame", null, `not valid CBOR (${e.message})`, { cause: e });
      }
      throw e;
    }
  }
}

const reader = new CborReader();

/** Reads past `n` items (each still checked to be well-formed). */
function skip(r: CborReader, n: number): void {
  for (let i = 0; i < n; i++) r.item(1);
}

/** The body is exactly one item: nothing may follow it. */
function end(r: CborReader): void {
  if (r.left !== 0) throw new CborError(`${r.left} bytes after the frame's array`);
}

/**
 * Splits a byte stream into frame bodies. Rejects a length over the limit as soon as the
 * header arrives, so a hostile peer cannot make it buffer more than one frame's worth.
 *
 * Linear in the bytes pushed: a frame that fits in one chunk is a view of it; a frame that spans
 * chunks is copied once into a buffer of its own, which grows by doubling from what has arrived
 * (so memory held for a partial frame is at most twice the bytes the peer actually sent, not
 * what its header claims).
 */
export class FrameReader {
  /** A length header split across chunks. */
  readonly #head = new Uint8Array(4);
  #headLen = 0;
  /** The frame being assembled: its length, a buffer of its bytes so far, how many. */
  #want = 0;
  #body: Uint8Array | null = null;
  #filled = 0;
  /**
   * The largest frame accepted; a reader may lower it once it knows what the stream carries (a
   * session's channel, after its OPEN): a header claiming more is refused as it arrives.
   */
  constructor(public maxFrame = DEFAULT_MAX_FRAME) {}

  /**
   * Adds bytes; returns the complete frame bodies now available. Bodies are views of `chunk`
   * (or a buffer of their own when a frame spans chunks): the caller must not change `chunk`
   * afterwards.
   */
  push(chunk: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    let off = 0;
    while (off < chunk.length) {
      if (this.#body !== null) {
        off = this.#fill(chunk, off, out);
        continue;
      }
      if (this.#headLen === 0 && chunk.length - off >= 4) {
        const len = this.#check(
          ((chunk[off]! << 24) >>> 0) + (chunk[off + 1]! << 16) + (chunk[off + 2]! << 8) +
            chunk[off + 3]!,
        );
        off += 4;
        if (chunk.length - off >= len) {
          out.push(chunk.subarray(off, off + len));
          off += len;
        } else this.#start(len);
        continue;
      }
      this.#head[this.#headLen++] = chunk[off++]!;
      if (this.#headLen === 4) {
        this.#headLen = 0;
        const h = this.#head;
        const len = this.#check(((h[0]! << 24) >>> 0) + (h[1]! << 16) + (h[2]! << 8) + h[3]!);
        if (len === 0) out.push(new Uint8Array(0));
        else this.#start(len);
      }
    }
    return out;
  }

  #check(len: number): number {
    if (len > this.maxFrame) {
      throw new WireError(
        "frame",
        "length",
        `${len} bytes, over the frame limit of ${this.maxFrame}`,
      );
    }
    return len;
  }

  #start(len: number): void {
    this.#want = len;
    this.#body = new Uint8Array(Math.min(len, 64 * 1024));
    this.#filled = 0;
  }

  /** Copies what `chunk` has of the frame being assembled; returns the new offset. */
  #fill(chunk: Uint8Array, off: number, out: Uint8Array[]): number {
    const n = Math.min(this.#want - this.#filled, chunk.length - off);
    let body = this.#body!;
    if (this.#filled + n > body.length) {
      const grown = new Uint8Array(
        Math.min(this.#want, Math.max(body.length * 2, this.#filled + n)),
      );
      grown.set(body.subarray(0, this.#filled));
      this.#body = body = grown;
    }
    body.set(chunk.subarray(off, off + n), this.#filled);
    this.#filled += n;
    if (this.#filled === this.#want) {
      out.push(body.length === this.#want ? body : body.subarray(0, this.#want));
      this.#body = null;
    }
    return off + n;
  }

  /** Bytes of memory held for the frame being assembled (at most twice what arrived of it). */
  get held(): number {
    return this.#body?.length ?? 0;
  }

  /** Bytes held waiting for the rest of a frame. */
  get pending(): number {
    return this.#headLen + (this.#body === null ? 0 : 4 + this.#filled);
  }
}
