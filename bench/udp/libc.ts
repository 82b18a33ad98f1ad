/**
 * The few libc calls bench/udp needs, through `bun:ffi` (Linux, glibc, 64-bit: the struct layouts
 * below are x86-64 / aarch64 LP64). Everything a call reads or writes lives in one `Arena`, an
 * ArrayBuffer large enough that JavaScriptCore allocates it outside the moving heap, so the
 * addresses handed to the kernel stay valid while the arena is referenced.
 */
import { dlopen, FFIType, ptr, read } from "bun:ffi";

export const AF_INET = 2;
export const SOCK_DGRAM = 2;
export const SOCK_NONBLOCK = 0o4000;
export const SOL_SOCKET = 1;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
export const SO_RCVTIMEO = 20;
export const SOL_UDP = 17;
/** setsockopt / cmsg: segment size for UDP GSO (u16 in a cmsg, int in setsockopt). */
export const UDP_SEGMENT = 103;
/** setsockopt: coalesce received datagrams; the cmsg on receive carries the segment size (int). */
export const UDP_GRO = 104;
export const MSG_DONTWAIT = 0x40;
export const EAGAIN = 11;
export const EINTR = 4;
export const F_SETOWN = 8;
export const F_GETFL = 3;
export const F_SETFL = 4;
export const O_ASYNC = 0o20000;
export const O_NONBLOCK = 0o4000;
export const EPOLLIN = 1;
export const EPOLL_CTL_ADD = 1;

const { i32, i64, u32, u64, ptr: P } = FFIType;

function open() {
  if (process.platform !== "linux") throw new Error("bench/udp's ffi variants need Linux");
  return dlopen("libc.so.6", {
    socket: { args: [i32, i32, i32], returns: i32 },
    bind: { args: [i32, P, u32], returns: i32 },
    connect: { args: [i32, P, u32], returns: i32 },
    getsockname: { args: [i32, P, P], returns: i32 },
    setsockopt: { args: [i32, i32, i32, P, u32], returns: i32 },
    getsockopt: { args: [i32, i32, i32, P, P], returns: i32 },
    sendmmsg: { args: [i32, P, u32, i32], returns: i32 },
    sendmsg: { args: [i32, P, i32], returns: i64 },
    recvmmsg: { args: [i32, P, u32, i32, P], returns: i32 },
    close: { args: [i32], returns: i32 },
    fcntl: { args: [i32, i32, u64], returns: i32 },
    getpid: { args: [], returns: i32 },
    epoll_create1: { args: [i32], returns: i32 },
    epoll_ctl: { args: [i32, i32, i32, P], returns: i32 },
    __errno_location: { args: [], returns: P },
  });
}
let lib: ReturnType<typeof open> | undefined;
/** The libc symbols (opened on first use). */
export function libc(): ReturnType<typeof open>["symbols"] {
  lib ??= open();
  return lib.symbols;
}

/** errno of the last failed call (read right after it: nothing in between calls libc). */
export function errno(): number {
  const p = libc().__errno_location();
  return p === null ? -1 : read.i32(p, 0);
}

/** Throws with errno unless `r >= 0`. */
export function check(r: number | bigint, what: string): number {
  const n = Number(r);
  if (n < 0) throw new Error(`${what} failed: errno ${errno()}`);
  return n;
}

/** One ArrayBuffer carved into aligned regions; `addr(off)` is the address of byte `off`. */
export class Arena {
  readonly u8: Uint8Array;
  readonly dv: DataView;
  readonly base: number;
  #used = 0;
  constructor(bytes: number) {
    // At least 1 MiB: typed arrays this large are never moved by the garbage collector.
    this.u8 = new Uint8Array(Math.max(bytes, 1 << 20));
    this.dv = new DataView(this.u8.buffer);
    this.base = ptr(this.u8);
  }
  /** Reserves `n` bytes aligned to 16; returns the offset. */
  alloc(n: number): number {
    const off = (this.#used + 15) & ~15;
    if (off + n > this.u8.length) throw new Error("arena full");
    this.#used = off + n;
    return off;
  }
  addr(off: number): number {
    return this.base + off;
  }
  setPtr(off: number, addr: number): void {
    this.dv.setBigUint64(off, BigInt(addr), true);
  }
  setU64(off: number, v: number): void {
    this.dv.setBigUint64(off, BigInt(v), true);
  }
  getU64(off: number): number {
    return Number(this.dv.getBigUint64(off, true));
  }
}

/** `Bun.udpSocket`'s file descriptor (an undocumented property). */
export function bunFd(sock: object): number {
  const fd = (sock as { fd?: unknown }).fd;
  if (typeof fd !== "number") throw new Error("Bun.udpSocket has no fd property");
  return fd;
}

/** An IPv4 socket address (`struct sockaddr_in`, 16 bytes) at `off` in `a`. */
export function writeSockaddr(a: Arena, off: number, ip: string, port: number): void {
  const parts = ip.split(".").map(Number);
  if (parts.length !== 4 || parts.some((x) => !(x >= 0 && x <= 255))) {
    throw new Error(`not an IPv4 address: ${ip}`);
  }
  a.u8.fill(0, off, off + 16);
  a.dv.setUint16(off, AF_INET, true);
  a.dv.setUint16(off + 2, port, false);
  a.u8.set(parts, off + 4);
}

/** Sets an int socket option. */
export function setIntOpt(a: Arena, fd: number, level: number, name: number, v: number): void {
  const off = a.alloc(4);
  a.dv.setInt32(off, v, true);
  check(libc().setsockopt(fd, level, name, a.addr(off), 4), `setsockopt(${level}, ${name})`);
}

/** Reads an int socket option. */
export function getIntOpt(a: Arena, fd: number, level: number, name: number): number {
  const off = a.alloc(8);
  a.dv.setUint32(off + 4, 4, true);
  check(libc().getsockopt(fd, level, name, a.addr(off), a.addr(off + 4)), "getsockopt");
  return a.dv.getInt32(off, true);
}

/** A UDP/IPv4 socket bound to `ip:port` (0 = any), optionally connected; returns fd and port. */
export function udpSocket(
  a: Arena,
  ip: string,
  port: number,
  opts: { connect?: { ip: string; port: number }; nonblocking?: boolean } = {},
): { fd: number; port: number } {
  const c = libc();
  const fd = check(
    c.socket(AF_INET, SOCK_DGRAM | (opts.nonblocking ? SOCK_NONBLOCK : 0), 0),
    "socket",
  );
  const sa = a.alloc(16 + 8);
  writeSockaddr(a, sa, ip, port);
  check(c.bind(fd, a.addr(sa), 16), "bind");
  a.dv.setUint32(sa + 16, 16, true);
  check(c.getsockname(fd, a.addr(sa), a.addr(sa + 16)), "getsockname");
  const bound = a.dv.getUint16(sa + 2, false);
  if (opts.connect) {
    writeSockaddr(a, sa, opts.connect.ip, opts.connect.port);
    check(c.connect(fd, a.addr(sa), 16), "connect");
  }
  return { fd, port: bound };
}

const IOV = 16; // struct iovec { void *base; size_t len; }
const MMSG = 64; // struct mmsghdr { struct msghdr (56); unsigned msg_len; pad }
/** struct msghdr offsets. */
const M_NAME = 0, M_NAMELEN = 8, M_IOV = 16, M_IOVLEN = 24, M_CONTROL = 32, M_CONTROLLEN = 40;
const M_FLAGS = 48, MM_LEN = 56;
/** CMSG_SPACE(sizeof(int)) = CMSG_SPACE(sizeof(u16)) = 24 on LP64; CMSG_LEN(2) = 18, (4) = 20. */
const CMSG_SPACE = 24;

/**
 * `count` messages (a `struct mmsghdr` array) of one iovec each, over buffers of `bufSize`
 * bytes, each with room for one cmsg. For `sendmmsg`/`sendmsg` (`setName` for the address) and
 * `recvmmsg` (no address asked for).
 */
export class MsgVec {
  readonly hdrs: number;
  readonly bufs: number;
  readonly ctrl: number;
  constructor(readonly a: Arena, readonly count: number, readonly bufSize: number) {
    this.hdrs = a.alloc(count * MMSG);
    const iovs = a.alloc(count * IOV);
    this.ctrl = a.alloc(count * CMSG_SPACE);
    this.bufs = a.alloc(count * bufSize);
    a.u8.fill(0, this.hdrs, this.hdrs + count * MMSG);
    for (let i = 0; i < count; i++) {
      const h = this.hdrs + i * MMSG;
      a.setPtr(h + M_NAME, 0);
      a.dv.setUint32(h + M_NAMELEN, 0, true);
      a.setPtr(h + M_IOV, a.addr(iovs + i * IOV));
      a.setU64(h + M_IOVLEN, 1);
      a.setPtr(iovs + i * IOV, a.addr(this.bufs + i * bufSize));
      a.setU64(iovs + i * IOV + 8, bufSize);
    }
    this.#iovs = iovs;
  }
  readonly #iovs: number;
  /** Address of message `i`'s header (for `sendmsg`, or `sendmmsg` from `i`). */
  addr(i = 0): number {
    return this.a.addr(this.hdrs + i * MMSG);
  }
  /** Sends message `i` to the `struct sockaddr_in` at arena offset `sa` (unconnected socket). */
  setName(i: number, sa: number): void {
    const h = this.hdrs + i * MMSG;
    this.a.setPtr(h + M_NAME, this.a.addr(sa));
    this.a.dv.setUint32(h + M_NAMELEN, 16, true);
  }
  /** Offset in the arena of message `i`'s buffer. */
  buf(i: number): number {
    return this.bufs + i * this.bufSize;
  }
  setLen(i: number, len: number): void {
    this.a.setU64(this.#iovs + i * IOV + 8, len);
  }
  /** Attaches a `SOL_UDP`/`UDP_SEGMENT` cmsg to message `i` (0 = none). */
  setSegment(i: number, gsoSize: number): void {
    const h = this.hdrs + i * MMSG;
    if (gsoSize === 0) {
      this.a.setPtr(h + M_CONTROL, 0);
      this.a.setU64(h + M_CONTROLLEN, 0);
      return;
    }
    const c = this.ctrl + i * CMSG_SPACE;
    this.a.u8.fill(0, c, c + CMSG_SPACE);
    this.a.setU64(c, 18); // cmsg_len = CMSG_LEN(sizeof(u16))
    this.a.dv.setInt32(c + 8, SOL_UDP, true);
    this.a.dv.setInt32(c + 12, UDP_SEGMENT, true);
    this.a.dv.setUint16(c + 16, gsoSize, true);
    this.a.setPtr(h + M_CONTROL, this.a.addr(c));
    this.a.setU64(h + M_CONTROLLEN, CMSG_SPACE);
  }
  /** Before `recvmmsg`: every message gets the whole buffer and room for one cmsg. */
  resetForRecv(n = this.count): void {
    for (let i = 0; i < n; i++) {
      const h = this.hdrs + i * MMSG;
      this.setLen(i, this.bufSize);
      this.a.setPtr(h + M_CONTROL, this.a.addr(this.ctrl + i * CMSG_SPACE));
      this.a.setU64(h + M_CONTROLLEN, CMSG_SPACE);
      this.a.dv.setInt32(h + M_FLAGS, 0, true);
    }
  }
  /** After `recvmmsg`: bytes received in message `i`. */
  received(i: number): number {
    return this.a.dv.getUint32(this.hdrs + i * MMSG + MM_LEN, true);
  }
  /** After `recvmmsg` on a `UDP_GRO` socket: the segment size of message `i`, 0 if none. */
  groSize(i: number): number {
    const h = this.hdrs + i * MMSG;
    if (this.a.getU64(h + M_CONTROLLEN) < 20) return 0;
    const c = this.ctrl + i * CMSG_SPACE;
    const level = this.a.dv.getInt32(c + 8, true);
    const type = this.a.dv.getInt32(c + 12, true);
    return level === SOL_UDP && type === UDP_GRO ? this.a.dv.getInt32(c + 16, true) : 0;
  }
}
