/**
 * STUN messages (RFC 8489): the header, the attributes Macula uses, MESSAGE-INTEGRITY with
 * short-term credentials (HMAC-SHA1 keyed by the password) and FINGERPRINT (CRC-32 XOR
 * 0x5354554e), plus RFC 5780's CHANGE-REQUEST, RESPONSE-ORIGIN and OTHER-ADDRESS.
 *
 * `decodeStun` is strict: every length, the padding, the magic cookie, the attribute order after
 * MESSAGE-INTEGRITY and FINGERPRINT, and the fingerprint value are checked, and anything wrong
 * throws a `StunError` that names it. Unknown comprehension-required attributes (type below
 * 0x8000) do not throw: they are listed in `unknownRequired`, so a server can answer 420.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import zlib from "node:zlib";
import { StunError } from "./errors.ts";

/** RFC 8489 §5: the fixed magic cookie of every STUN message. */
export const MAGIC_COOKIE = 0x2112a442;
/** RFC 8489 §14.7: FINGERPRINT is the CRC-32 of the message XOR this. */
export const FINGERPRINT_XOR = 0x5354554e;
/** The STUN header is 20 bytes. */
export const HEADER_SIZE = 20;
/** The Binding method, the only one Macula speaks. */
export const BINDING = 0x001;

/** Attribute types (RFC 8489 §18.3, RFC 5780 §7, and the ICE ones RFC 8445 defines). */
export const ATTR = {
  MAPPED_ADDRESS: 0x0001,
  CHANGE_REQUEST: 0x0003,
  USERNAME: 0x0006,
  MESSAGE_INTEGRITY: 0x0008,
  MESSAGE_INTEGRITY_SHA256: 0x001c,
  ERROR_CODE: 0x0009,
  UNKNOWN_ATTRIBUTES: 0x000a,
  XOR_MAPPED_ADDRESS: 0x0020,
  PRIORITY: 0x0024,
  USE_CANDIDATE: 0x0025,
  PADDING: 0x0026,
  RESPONSE_PORT: 0x0027,
  SOFTWARE: 0x8022,
  FINGERPRINT: 0x8028,
  ICE_CONTROLLED: 0x8029,
  ICE_CONTROLLING: 0x802a,
  RESPONSE_ORIGIN: 0x802b,
  OTHER_ADDRESS: 0x802c,
} as const;

/** Comprehension-required types this codec understands (kept raw when it has no field). */
const KNOWN_REQUIRED = new Set<number>([
  ATTR.MAPPED_ADDRESS,
  ATTR.CHANGE_REQUEST,
  ATTR.USERNAME,
  ATTR.MESSAGE_INTEGRITY,
  ATTR.ERROR_CODE,
  ATTR.UNKNOWN_ATTRIBUTES,
  ATTR.XOR_MAPPED_ADDRESS,
  ATTR.PRIORITY,
  ATTR.USE_CANDIDATE,
  ATTR.PADDING,
  ATTR.RESPONSE_PORT,
]);

/** The class of a message (RFC 8489 §5). */
export type StunClass = "request" | "indication" | "success" | "error";

/** A transport address carried in an address attribute. */
export interface StunAddress {
  family: "IPv4" | "IPv6";
  host: string;
  port: number;
}

/** An attribute as it appeared on the wire (every attribute of a decoded message is listed). */
export interface RawAttribute {
  type: number;
  value: Uint8Array;
}

/** A STUN message. Only `cls`, `method` and `transactionId` are required to encode one. */
export interface StunMessage {
  cls: StunClass;
  /** 12-bit method; `BINDING` (1) for everything Macula does. */
  method: number;
  /** 96 bits (12 bytes); `newTransactionId()` makes one. */
  transactionId: Uint8Array;
  mappedAddress?: StunAddress;
  xorMappedAddress?: StunAddress;
  username?: string;
  software?: string;
  errorCode?: { code: number; reason: string };
  /** RFC 5780 §7.2: ask the server to answer from its other IP and/or port. */
  changeRequest?: { changeIp: boolean; changePort: boolean };
  /** RFC 5780 §7.3: the address the response was sent from. */
  responseOrigin?: StunAddress;
  /** RFC 5780 §7.4: the server's alternate address (other IP and port). */
  otherAddress?: StunAddress;
  /** UNKNOWN-ATTRIBUTES of a 420 error response. */
  unknownAttributes?: number[];
  /** Decoded only: every attribute in wire order, values as sent (padding excluded). */
  attributes?: RawAttribute[];
  /** Decoded only: comprehension-required attribute types this codec does not understand. */
  unknownRequired?: number[];
  /** Decoded only: MESSAGE-INTEGRITY was present (check it with `verifyIntegrity`). */
  hasIntegrity?: boolean;
  /** Decoded only: FINGERPRINT was present (and matched, or decoding would have thrown). */
  hasFingerprint?: boolean;
}

/** Options for `encodeStun`. */
export interface EncodeOptions {
  /** Adds MESSAGE-INTEGRITY keyed by this (short-term credential: the password). */
  integrityKey?: Uint8Array | string;
  /** Adds FINGERPRINT (last). */
  fingerprint?: boolean;
}

/** A message that is not valid STUN (errors.ts). */
export { StunError };

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

/** A fresh random 96-bit transaction id. */
export function newTransactionId(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(12));
}

/**
 * RFC 7983 / RFC 9443 demux: the first byte is 0–3 (STUN's two top bits are zero), the message
 * is long enough for a header and carries the magic cookie.
 */
export function isStun(bytes: Uint8Array): boolean {
  return bytes.length >= HEADER_SIZE && bytes[0]! <= 3 && (bytes.length & 3) === 0 &&
    view(bytes).getUint32(4) === MAGIC_COOKIE;
}

// ------------------------------------------------------------------ CRC-32

const zcrc = (zlib as unknown as { crc32?: (d: Uint8Array) => number }).crc32;
let table: Uint32Array | null = null;

/** CRC-32 (ISO-HDLC, as zlib): `zlib.crc32` where the runtime has it, else a table. */
export function crc32(data: Uint8Array): number {
  if (zcrc) return zcrc(data) >>> 0;
  if (!table) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = table[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// ------------------------------------------------------------------ addresses

/** Parses an IPv4 or IPv6 literal into 4 or 16 bytes; null when it is neither. */
export function parseIp(host: string): Uint8Array | null {
  const h = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(h);
  if (v4) {
    const b = v4.slice(1).map(Number);
    return b.every((x) => x <= 255) ? Uint8Array.from(b) : null;
  }
  if (!h.includes(":") || h.includes("%")) return null;
  let tail = h;
  let v4tail: Uint8Array | null = null;
  const lastColon = h.lastIndexOf(":");
  if (h.slice(lastColon + 1).includes(".")) {
    v4tail = parseIp(h.slice(lastColon + 1));
    if (!v4tail || v4tail.length !== 4) return null;
    tail = `${h.slice(0, lastColon + 1)}0:0`;
  }
  const halves = tail.split("::");
  if (halves.length > 2) return null;
  const groups = (s: string) => (s === "" ? [] : s.split(":"));
  const head = groups(halves[0]!);
  const rest = halves.length === 2 ? groups(halves[1]!) : [];
  const fill = 8 - head.length - rest.length;
  if (halves.length === 2 ? fill < 1 : fill !== 0) return null;
  const all = [...head, ...Array<string>(halves.length === 2 ? fill : 0).fill("0"), ...rest];
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(all[i]!)) return null;
    const v = parseInt(all[i]!, 16);
    out[2 * i] = v >> 8;
    out[2 * i + 1] = v & 0xff;
  }
  if (v4tail) out.set(v4tail, 12);
  return out;
}

/** Formats 4 or 16 address bytes (IPv6 in RFC 5952 form). */
export function formatIp(b: Uint8Array): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const g = Array.from({ length: 8 }, (_, i) => (b[2 * i]! << 8) | b[2 * i + 1]!);
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(":");
  if (best < 0) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

function encodeAddress(a: StunAddress, xorWith: Uint8Array | null, what: string): Uint8Array {
  const ip = parseIp(a.host);
  if (!ip) throw new StunError(`${what}: "${a.host}" is not an IP address`);
  if (!Number.isInteger(a.port) || a.port < 0 || a.port > 65535) {
    throw new StunError(`${what}: port ${a.port} is out of range`);
  }
  const out = new Uint8Array(4 + ip.length);
  out[1] = ip.length === 4 ? 0x01 : 0x02;
  let port = a.port;
  if (xorWith) {
    port ^= MAGIC_COOKIE >>> 16;
    for (let i = 0; i < ip.length; i++) ip[i]! ^= xorWith[i]!;
  }
  out[2] = port >> 8;
  out[3] = port & 0xff;
  out.set(ip, 4);
  return out;
}

function decodeAddress(v: Uint8Array, xorWith: Uint8Array | null, what: string): StunAddress {
  if (v.length < 4) throw new StunError(`${what}: ${v.length} bytes, too short for an address`);
  const family = v[1];
  const len = family === 0x01 ? 4 : family === 0x02 ? 16 : 0;
  if (len === 0) throw new StunError(`${what}: unknown address family 0x${hex2(family!)}`);
  if (v.length !== 4 + len) {
    throw new StunError(
      `${what}: length ${v.length}, an IPv${len === 4 ? 4 : 6} one has ${4 + len}`,
    );
  }
  let port = (v[2]! << 8) | v[3]!;
  const ip = v.slice(4);
  if (xorWith) {
    port ^= MAGIC_COOKIE >>> 16;
    for (let i = 0; i < len; i++) ip[i]! ^= xorWith[i]!;
  }
  return { family: len === 4 ? "IPv4" : "IPv6", host: formatIp(ip), port };
}

/** The XOR pad for X-addresses: cookie, then the transaction id (IPv6). */
function xorPad(tid: Uint8Array): Uint8Array {
  const pad = new Uint8Array(16);
  view(pad).setUint32(0, MAGIC_COOKIE);
  pad.set(tid, 4);
  return pad;
}

// ------------------------------------------------------------------ encode

const CLASS_BITS: Record<StunClass, number> = {
  request: 0x000,
  indication: 0x010,
  success: 0x100,
  error: 0x110,
};

function messageType(cls: StunClass, method: number): number {
  if (!Number.isInteger(method) || method < 0 || method > 0xfff) {
    throw new StunError(`method ${method} is not a 12-bit number`);
  }
  const m = (method & 0x00f) | ((method & 0x070) << 1) | ((method & 0xf80) << 2);
  return m | CLASS_BITS[cls];
}

const keyBytes = (k: Uint8Array | string) =>
  typeof k === "string" ? enc.encode(k.normalize("NFKC")) : k;

/** Encodes `msg`; MESSAGE-INTEGRITY and FINGERPRINT are added last, in that order, when asked. */
export function encodeStun(msg: StunMessage, opts: EncodeOptions = {}): Uint8Array {
  if (!(msg.transactionId instanceof Uint8Array) || msg.transactionId.length !== 12) {
    throw new StunError("the transaction id must be 12 bytes");
  }
  if (!(msg.cls in CLASS_BITS)) throw new StunError(`unknown message class "${msg.cls}"`);
  const attrs: RawAttribute[] = [];
  const add = (type: number, value: Uint8Array) => attrs.push({ type, value });
  const pad = xorPad(msg.transactionId);
  if (msg.mappedAddress) {
    add(ATTR.MAPPED_ADDRESS, encodeAddress(msg.mappedAddress, null, "MAPPED-ADDRESS"));
  }
  if (msg.xorMappedAddress) {
    add(ATTR.XOR_MAPPED_ADDRESS, encodeAddress(msg.xorMappedAddress, pad, "XOR-MAPPED-ADDRESS"));
  }
  if (msg.username !== undefined) {
    const u = enc.encode(msg.username);
    if (u.length > 512) throw new StunError("USERNAME is over 512 bytes");
    add(ATTR.USERNAME, u);
  }
  if (msg.changeRequest) {
    const v = new Uint8Array(4);
    v[3] = (msg.changeRequest.changeIp ? 4 : 0) | (msg.changeRequest.changePort ? 2 : 0);
    add(ATTR.CHANGE_REQUEST, v);
  }
  if (msg.errorCode) {
    const { code, reason } = msg.errorCode;
    if (!Number.isInteger(code) || code < 300 || code > 699) {
      throw new StunError(`ERROR-CODE ${code} is not from 300 to 699`);
    }
    const r = enc.encode(reason);
    if (r.length > 763) throw new StunError("ERROR-CODE reason is over 763 bytes");
    const v = new Uint8Array(4 + r.length);
    v[2] = Math.floor(code / 100);
    v[3] = code % 100;
    v.set(r, 4);
    add(ATTR.ERROR_CODE, v);
  }
  if (msg.unknownAttributes) {
    const v = new Uint8Array(2 * msg.unknownAttributes.length);
    msg.unknownAttributes.forEach((t, i) => view(v).setUint16(2 * i, t));
    add(ATTR.UNKNOWN_ATTRIBUTES, v);
  }
  if (msg.responseOrigin) {
    add(ATTR.RESPONSE_ORIGIN, encodeAddress(msg.responseOrigin, null, "RESPONSE-ORIGIN"));
  }
  if (msg.otherAddress) {
    add(ATTR.OTHER_ADDRESS, encodeAddress(msg.otherAddress, null, "OTHER-ADDRESS"));
  }
  if (msg.software !== undefined) {
    const s = enc.encode(msg.software);
    if (s.length > 763) throw new StunError("SOFTWARE is over 763 bytes");
    add(ATTR.SOFTWARE, s);
  }

  const body = attrs.reduce((n, a) => n + 4 + pad4(a.value.length), 0);
  const total = HEADER_SIZE + body + (opts.integrityKey !== undefined ? 24 : 0) +
    (opts.fingerprint ? 8 : 0);
  if (total - HEADER_SIZE > 0xffff) throw new StunError("the message is over 65535 bytes");
  const out = new Uint8Array(total);
  const dv = view(out);
  dv.setUint16(0, messageType(msg.cls, msg.method));
  dv.setUint32(4, MAGIC_COOKIE);
  out.set(msg.transactionId, 8);
  let at = HEADER_SIZE;
  for (const a of attrs) {
    dv.setUint16(at, a.type);
    dv.setUint16(at + 2, a.value.length);
    out.set(a.value, at + 4);
    at += 4 + pad4(a.value.length);
  }
  if (opts.integrityKey !== undefined) {
    dv.setUint16(2, at + 24 - HEADER_SIZE);
    const mac = hmac(keyBytes(opts.integrityKey), out.subarray(0, at));
    dv.setUint16(at, ATTR.MESSAGE_INTEGRITY);
    dv.setUint16(at + 2, 20);
    out.set(mac, at + 4);
    at += 24;
  }
  if (opts.fingerprint) {
    dv.setUint16(2, at + 8 - HEADER_SIZE);
    const crc = (crc32(out.subarray(0, at)) ^ FINGERPRINT_XOR) >>> 0;
    dv.setUint16(at, ATTR.FINGERPRINT);
    dv.setUint16(at + 2, 4);
    dv.setUint32(at + 4, crc);
    at += 8;
  }
  dv.setUint16(2, at - HEADER_SIZE);
  return out;
}

// ------------------------------------------------------------------ decode

/** Where MESSAGE-INTEGRITY sits in a message, found by `walk`. */
interface Layout {
  integrityAt: number;
}

/** Decodes a STUN message; throws `StunError` saying what was wrong. */
export function decodeStun(bytes: Uint8Array): StunMessage {
  return parse(bytes).msg;
}

/**
 * A plain Uint8Array over the same memory: a Node `Buffer`'s `slice` is a view, not a copy, and
 * decoding must never write into the caller's bytes.
 */
function plain(bytes: Uint8Array): Uint8Array {
  if (!(bytes instanceof Uint8Array)) throw new StunError("not a byte array");
  return bytes.constructor === Uint8Array
    ? bytes
    : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function parse(input: Uint8Array): { msg: StunMessage; layout: Layout } {
  const bytes = plain(input);
  if (bytes.length < HEADER_SIZE) {
    throw new StunError(`${bytes.length} bytes, shorter than the 20-byte header`);
  }
  const dv = view(bytes);
  const type = dv.getUint16(0);
  if (type & 0xc000) {
    throw new StunError(`first two bits are not zero (first byte 0x${hex2(bytes[0]!)})`);
  }
  const cookie = dv.getUint32(4);
  if (cookie !== MAGIC_COOKIE) {
    throw new StunError(
      `magic cookie is 0x${cookie.toString(16).padStart(8, "0")}, not 0x2112a442`,
    );
  }
  const length = dv.getUint16(2);
  if (length % 4 !== 0) throw new StunError(`message length ${length} is not a multiple of 4`);
  if (HEADER_SIZE + length !== bytes.length) {
    throw new StunError(
      `message length ${length} does not match the ${bytes.length - HEADER_SIZE} bytes after ` +
        `the header`,
    );
  }
  const c = ((type >> 4) & 1) | ((type >> 7) & 2);
  const cls = (["request", "indication", "success", "error"] as const)[c]!;
  const method = (type & 0x000f) | ((type >> 1) & 0x0070) | ((type >> 2) & 0x0f80);
  const transactionId = bytes.slice(8, 20);
  const pad = xorPad(transactionId);
  const msg: StunMessage = { cls, method, transactionId, attributes: [], unknownRequired: [] };
  const layout: Layout = { integrityAt: -1 };
  let at = HEADER_SIZE;
  while (at < bytes.length) {
    if (bytes.length - at < 4) {
      throw new StunError(`${bytes.length - at} stray bytes at offset ${at}, not an attribute`);
    }
    const aType = dv.getUint16(at);
    const aLen = dv.getUint16(at + 2);
    const name = attrName(aType);
    if (at + 4 + pad4(aLen) > bytes.length) {
      throw new StunError(
        `${name} at offset ${at}: length ${aLen} (padded ${pad4(aLen)}) runs past the end of ` +
          `the message`,
      );
    }
    const v = bytes.slice(at + 4, at + 4 + aLen);
    if (msg.hasFingerprint) {
      throw new StunError(`${name} after FINGERPRINT (FINGERPRINT must be last)`);
    }
    if (msg.hasIntegrity && aType !== ATTR.FINGERPRINT && aType !== ATTR.MESSAGE_INTEGRITY_SHA256) {
      throw new StunError(`${name} after MESSAGE-INTEGRITY (only FINGERPRINT may follow it)`);
    }
    msg.attributes!.push({ type: aType, value: v });
    const fixed = (n: number) => {
      if (aLen !== n) throw new StunError(`${name}: length ${aLen}, must be ${n}`);
    };
    switch (aType) {
      case ATTR.MAPPED_ADDRESS:
        msg.mappedAddress ??= decodeAddress(v, null, name);
        break;
      case ATTR.XOR_MAPPED_ADDRESS:
        msg.xorMappedAddress ??= decodeAddress(v, pad, name);
        break;
      case ATTR.RESPONSE_ORIGIN:
        msg.responseOrigin ??= decodeAddress(v, null, name);
        break;
      case ATTR.OTHER_ADDRESS:
        msg.otherAddress ??= decodeAddress(v, null, name);
        break;
      case ATTR.USERNAME:
        if (aLen > 512) throw new StunError(`USERNAME: length ${aLen}, over 512`);
        msg.username ??= text(v, name);
        break;
      case ATTR.SOFTWARE:
        if (aLen > 763) throw new StunError(`SOFTWARE: length ${aLen}, over 763`);
        msg.software ??= text(v, name);
        break;
      case ATTR.ERROR_CODE: {
        if (aLen < 4) throw new StunError(`ERROR-CODE: length ${aLen}, under 4`);
        const klass = v[2]! & 0x07;
        const num = v[3]!;
        if (klass < 3 || klass > 6 || num > 99) {
          throw new StunError(`ERROR-CODE: class ${klass} number ${num} is not a code 300–699`);
        }
        msg.errorCode ??= { code: klass * 100 + num, reason: text(v.subarray(4), name) };
        break;
      }
      case ATTR.CHANGE_REQUEST:
        fixed(4);
        msg.changeRequest ??= { changeIp: (v[3]! & 4) !== 0, changePort: (v[3]! & 2) !== 0 };
        break;
      case ATTR.UNKNOWN_ATTRIBUTES:
        if (aLen % 2 !== 0) throw new StunError(`UNKNOWN-ATTRIBUTES: odd length ${aLen}`);
        msg.unknownAttributes ??= Array.from(
          { length: aLen / 2 },
          (_, i) => view(v).getUint16(2 * i),
        );
        break;
      case ATTR.MESSAGE_INTEGRITY:
        fixed(20);
        msg.hasIntegrity = true;
        layout.integrityAt = at;
        break;
      case ATTR.FINGERPRINT: {
        fixed(4);
        const sum = view(bytes).getUint32(at + 4);
        const copy = bytes.slice(0, at);
        view(copy).setUint16(2, at + 8 - HEADER_SIZE);
        const want = (crc32(copy) ^ FINGERPRINT_XOR) >>> 0;
        if (sum !== want) {
          throw new StunError(
            `FINGERPRINT is 0x${sum.toString(16).padStart(8, "0")}, the message's is ` +
              `0x${want.toString(16).padStart(8, "0")}`,
          );
        }
        msg.hasFingerprint = true;
        break;
      }
      case ATTR.PRIORITY:
        fixed(4);
        break;
      case ATTR.USE_CANDIDATE:
        fixed(0);
        break;
      case ATTR.ICE_CONTROLLED:
      case ATTR.ICE_CONTROLLING:
        fixed(8);
        break;
      case ATTR.RESPONSE_PORT:
        fixed(4);
        break;
      default:
        if (aType < 0x8000 && !KNOWN_REQUIRED.has(aType)) {
          if (!msg.unknownRequired!.includes(aType)) msg.unknownRequired!.push(aType);
        }
    }
    at += 4 + pad4(aLen);
  }
  return { msg, layout };
}

/**
 * Checks MESSAGE-INTEGRITY (HMAC-SHA1) of an encoded message with `key` (short-term
 * credential: the password). False when it is absent or wrong; throws `StunError` when the bytes
 * are not a valid message.
 */
export function verifyIntegrity(input: Uint8Array, key: Uint8Array | string): boolean {
  const bytes = plain(input);
  const { layout } = parse(bytes);
  const at = layout.integrityAt;
  if (at < 0) return false;
  const copy = bytes.slice(0, at);
  view(copy).setUint16(2, at + 24 - HEADER_SIZE);
  const mac = hmac(keyBytes(key), copy);
  return timingSafeEqual(mac, bytes.subarray(at + 4, at + 24));
}

/** A name for an attribute type, for errors and displays. */
export function attrName(type: number): string {
  for (const [k, v] of Object.entries(ATTR)) if (v === type) return k.replaceAll("_", "-");
  return `attribute 0x${type.toString(16).padStart(4, "0")}`;
}

// ------------------------------------------------------------------ helpers

function hmac(key: Uint8Array, data: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac("sha1", key).update(data).digest());
}

function text(v: Uint8Array, what: string): string {
  try {
    return dec.decode(v);
  } catch (e) {
    throw new StunError(`${what}: not UTF-8`, { cause: e });
  }
}

const pad4 = (n: number) => (n + 3) & ~3;
const hex2 = (n: number) => n.toString(16).padStart(2, "0");
const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
