/**
 * A STUN Binding server (RFC 8489) with RFC 5780's NAT behaviour discovery support.
 *
 * It runs on sockets that also carry QUIC: a `QuicEndpoint` hands it the packets whose first
 * byte is 0–3 (`setNonQuicHandler`) and it answers with `sendRaw`, so a node's STUN server
 * listens on the node's own UDP port. Anything with the same three members works too
 * (`openRawSocket` is a plain UDP socket for a STUN-only server).
 *
 * RFC 5780 wants four sockets: the primary address A1:P1, A1:P2 (other port), A2:P1 (other IP)
 * and A2:P2. A request's CHANGE-REQUEST picks the socket the answer leaves from; when that socket
 * does not exist the answer is a 400 error saying so (never an answer from the wrong address).
 * Every success response carries XOR-MAPPED-ADDRESS, MAPPED-ADDRESS, RESPONSE-ORIGIN, OTHER-ADDRESS
 * (the socket differing in IP and port; with one IP, the socket differing in port) and
 * FINGERPRINT.
 */
import { bindProblem, openUdpSocket, type PacketHandler, type UdpSocket } from "../quic/mod.ts";
import {
  BINDING,
  decodeStun,
  encodeStun,
  isStun,
  type StunAddress,
  StunError,
  type StunMessage,
  verifyIntegrity,
} from "./stun.ts";

/** Host and port. */
export interface Address {
  host: string;
  port: number;
}

/** What the STUN code needs of a socket; a `QuicEndpoint` has it. */
export interface RawSocket {
  readonly address: Address;
  setNonQuicHandler(handler: PacketHandler | null): void;
  sendRaw(data: Uint8Array, host: string, port: number): void;
}

/** A plain UDP socket speaking only STUN (no QUIC), for standalone servers and tools. */
export interface OwnedRawSocket extends RawSocket {
  close(): void;
}

/** Opens a plain UDP socket as a `RawSocket`. Rejects with the address when it cannot bind. */
export async function openRawSocket(host: string, port: number): Promise<OwnedRawSocket> {
  let handler: PacketHandler | null = null;
  let sock: UdpSocket;
  try {
    sock = await openUdpSocket({
      host,
      port,
      onPacket: (d, h, p) => {
        try {
          handler?.(d, h, p);
        } catch {
          // a handler's bug must not take the socket down
        }
      },
    });
  } catch (e) {
    throw new Error(bindProblem(host, port, (e as Error).cause ?? e), { cause: e });
  }
  const address = { host, port: sock.port };
  return {
    address,
    setNonQuicHandler: (h) => (handler = h),
    sendRaw: (data, h, p) => {
      sock.send(data, p, h);
      sock.flush();
    },
    close: () => sock.close(),
  };
}

/** Server options. Only `primary` is required. */
export interface StunServerOptions {
  /** A1:P1, the address clients are given. */
  primary: RawSocket;
  /** A1:P2: same IP, other port (answers change-port requests). */
  altPort?: RawSocket;
  /** A2:P1: other IP, same port as `primary`. */
  altIp?: RawSocket;
  /** A2:P2: other IP and other port. */
  altIpPort?: RawSocket;
  /**
   * Addresses to advertise (RESPONSE-ORIGIN, OTHER-ADDRESS) instead of the bound hosts, which
   * matters when a socket is bound to 0.0.0.0 or sits behind a 1:1 NAT: `{ primary, alt }` IPs.
   */
  advertise?: { primary?: string; alt?: string };
  /** SOFTWARE sent in responses. Default `macula`. */
  software?: string;
  /** Short-term credential: when set, requests must carry MESSAGE-INTEGRITY keyed by it. */
  password?: string;
  /** Packets on these sockets that are not STUN requests (e.g. a STUN client's responses). */
  onOther?: (data: Uint8Array, host: string, port: number, socket: RawSocket) => void;
}

/** Counters of a server. */
export interface StunServerStats {
  /** Binding requests answered with a success response. */
  requests: number;
  /** Error responses sent (400 bad request / cannot change address, 401, 420). */
  errors: number;
  /** Packets ignored: not STUN, malformed, or STUN that is not a request (and no `onOther`). */
  ignored: number;
  /** Of `ignored`, the packets that failed to decode. */
  malformed: number;
  /** Answers by socket: which of the four addresses sent them. */
  sentFrom: { primary: number; altPort: number; altIp: number; altIpPort: number };
}

/** One of the four RFC 5780 addresses. */
export type Slot = "primary" | "altPort" | "altIp" | "altIpPort";
const SLOTS: Slot[] = ["primary", "altPort", "altIp", "altIpPort"];
/** [ip index, port index] of each slot. */
const POS: Record<Slot, [number, number]> = {
  primary: [0, 0],
  altPort: [0, 1],
  altIp: [1, 0],
  altIpPort: [1, 1],
};

/** A running STUN server. `close()` detaches it from the sockets (it does not close them). */
export class StunServer {
  readonly stats: StunServerStats = {
    requests: 0,
    errors: 0,
    ignored: 0,
    malformed: 0,
    sentFrom: { primary: 0, altPort: 0, altIp: 0, altIpPort: 0 },
  };
  readonly #opts: StunServerOptions;
  readonly #sockets = new Map<Slot, RawSocket>();

  /** Attaches a server to the sockets (their non-QUIC handler is taken over). */
  constructor(opts: StunServerOptions) {
    this.#opts = opts;
    for (const slot of SLOTS) {
      const s = opts[slot];
      if (!s) continue;
      this.#sockets.set(slot, s);
      s.setNonQuicHandler(this.handler(slot));
    }
  }

  /** The advertised address of each socket. */
  addresses(): Partial<Record<Slot, Address>> {
    const out: Partial<Record<Slot, Address>> = {};
    for (const slot of this.#sockets.keys()) out[slot] = this.#advertised(slot);
    return out;
  }

  /**
   * The packet handler of one socket (what the constructor gave `setNonQuicHandler`), to hand
   * the socket back after something else borrowed it (e.g. `runNetcheck`'s `onOther`).
   */
  handler(slot: Slot = "primary"): PacketHandler {
    return (d, h, p) => {
      if (this.#sockets.has(slot)) this.#onPacket(slot, d, h, p);
    };
  }

  /** Detaches from every socket. */
  close(): void {
    for (const s of this.#sockets.values()) s.setNonQuicHandler(null);
    this.#sockets.clear();
  }

  #advertised(slot: Slot): Address {
    const a = this.#sockets.get(slot)!.address;
    const adv = POS[slot][0] === 0 ? this.#opts.advertise?.primary : this.#opts.advertise?.alt;
    return { host: adv ?? a.host, port: a.port };
  }

  #slotAt(ip: number, port: number): Slot | undefined {
    return SLOTS.find((s) => POS[s][0] === ip && POS[s][1] === port && this.#sockets.has(s));
  }

  #onPacket(slot: Slot, data: Uint8Array, host: string, port: number): void {
    const other = () => {
      if (this.#opts.onOther) this.#opts.onOther(data, host, port, this.#sockets.get(slot)!);
      else this.stats.ignored++;
    };
    if (!isStun(data)) return other();
    let req: StunMessage;
    try {
      req = decodeStun(data);
    } catch (e) {
      if (!(e instanceof StunError)) throw e;
      this.stats.ignored++;
      this.stats.malformed++;
      return;
    }
    if (req.cls !== "request") return other();
    if (port === 0) {
      this.stats.ignored++;
      return;
    }
    const from = this.#sockets.get(slot)!;
    const fail = (code: number, reason: string, extra: Partial<StunMessage> = {}) => {
      this.stats.errors++;
      from.sendRaw(
        encodeStun(
          {
            cls: "error",
            method: req.method,
            transactionId: req.transactionId,
            ...extra,
            errorCode: { code, reason },
            software: this.#opts.software ?? "macula",
          },
          { fingerprint: true },
        ),
        host,
        port,
      );
    };
    if (req.method !== BINDING) return fail(400, `method 0x${req.method.toString(16)} unsupported`);
    if (req.unknownRequired!.length > 0) {
      return fail(420, "Unknown Attribute", { unknownAttributes: req.unknownRequired! });
    }
    const pw = this.#opts.password;
    if (pw !== undefined) {
      if (!req.hasIntegrity || req.username === undefined) {
        return fail(400, "MESSAGE-INTEGRITY and USERNAME required");
      }
      if (!verifyIntegrity(data, pw)) return fail(401, "Unauthenticated");
    }
    const [ip0, port0] = POS[slot];
    const ch = req.changeRequest;
    const target = this.#slotAt(ch?.changeIp ? 1 - ip0 : ip0, ch?.changePort ? 1 - port0 : port0);
    if (target === undefined) {
      const what = ch?.changeIp && ch.changePort ? "IP and port" : ch?.changeIp ? "IP" : "port";
      return fail(400, `cannot answer from another ${what}: this server has no such address`);
    }
    const otherSlot = this.#slotAt(1 - ip0, 1 - port0) ?? this.#slotAt(ip0, 1 - port0) ??
      this.#slotAt(1 - ip0, port0);
    const plain = /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(host) ? host.slice(7) : host;
    const mapped: StunAddress = { family: fam(plain), host: plain, port };
    const origin = this.#advertised(target);
    const res: StunMessage = {
      cls: "success",
      method: BINDING,
      transactionId: req.transactionId,
      xorMappedAddress: mapped,
      mappedAddress: mapped,
      responseOrigin: { family: fam(origin.host), ...origin },
      ...(otherSlot !== undefined
        ? {
          otherAddress: {
            family: fam(this.#advertised(otherSlot).host),
            ...this.#advertised(otherSlot),
          },
        }
        : {}),
      software: this.#opts.software ?? "macula",
    };
    let bytes: Uint8Array;
    try {
      bytes = encodeStun(res, {
        fingerprint: true,
        ...(pw !== undefined ? { integrityKey: pw } : {}),
      });
    } catch (e) {
      // An address that cannot be encoded (a host name advertised): answer without it.
      if (!(e instanceof StunError)) throw e;
      delete res.responseOrigin;
      delete res.otherAddress;
      bytes = encodeStun(res, { fingerprint: true });
    }
    this.stats.requests++;
    this.stats.sentFrom[target]++;
    this.#sockets.get(target)!.sendRaw(bytes, host, port);
  }
}

const fam = (host: string): "IPv4" | "IPv6" => (host.includes(":") ? "IPv6" : "IPv4");
