/**
 * What the Linux kernel says about UDP sockets, for bench/tuning: the `net.core` buffer
 * sysctls (read, set as root, restored), each socket's drop counter (`/proc/net/udp`), the
 * kernel-wide `Udp:` counters (`/proc/net/snmp`), and a socket's buffer sizes as `ss` reports
 * them (`skmem`: rb = receive buffer, tb = send buffer).
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";

/** The four `net.core` sysctls that size UDP socket buffers. */
export type BufferSysctl = "rmem_default" | "wmem_default" | "rmem_max" | "wmem_max";
export const BUFFER_SYSCTLS: readonly BufferSysctl[] = [
  "rmem_default",
  "wmem_default",
  "rmem_max",
  "wmem_max",
];

const path = (k: BufferSysctl) => `/proc/sys/net/core/${k}`;

export type BufferSettings = Record<BufferSysctl, number>;

/** The current values, or null when /proc/sys is not readable (not Linux). */
export function readBufferSysctls(): BufferSettings | null {
  try {
    const out = {} as BufferSettings;
    for (const k of BUFFER_SYSCTLS) out[k] = Number(readFileSync(path(k), "utf8").trim());
    return out;
  } catch {
    return null;
  }
}

/**
 * Whether this process may set them: root, and writing the value already there succeeds (a
 * read-only /proc/sys in a container fails here). Changes nothing.
 */
export function canSetBufferSysctls(): { ok: boolean; why: string } {
  if (typeof process.getuid === "function" && process.getuid() !== 0) {
    return { ok: false, why: "not root" };
  }
  const cur = readBufferSysctls();
  if (!cur) return { ok: false, why: "/proc/sys/net/core is not readable" };
  try {
    writeFileSync(path("rmem_default"), `${cur.rmem_default}\n`);
    return { ok: true, why: "" };
  } catch (e) {
    return { ok: false, why: `cannot write ${path("rmem_default")}: ${(e as Error).message}` };
  }
}

/** Sets the given sysctls (as `sysctl -w` does). */
export function writeBufferSysctls(v: Partial<BufferSettings>): void {
  for (const k of BUFFER_SYSCTLS) {
    const x = v[k];
    if (x !== undefined) writeFileSync(path(k), `${x}\n`);
  }
}

/**
 * Runs `fn` with `rmem_default` and `wmem_default` set (the maxima raised too when a default
 * would exceed them), and puts every value back afterwards, whatever happens.
 */
export async function withBufferDefaults<T>(
  saved: BufferSettings,
  rmem: number,
  wmem: number,
  fn: () => Promise<T>,
): Promise<T> {
  try {
    writeBufferSysctls({
      rmem_max: Math.max(saved.rmem_max, rmem),
      wmem_max: Math.max(saved.wmem_max, wmem),
      rmem_default: rmem,
      wmem_default: wmem,
    });
    return await fn();
  } finally {
    restoreBufferSysctls(saved);
  }
}

/** Puts every value back (the defaults first: they must never exceed the maxima). */
export function restoreBufferSysctls(saved: BufferSettings): void {
  writeBufferSysctls({ rmem_default: saved.rmem_default, wmem_default: saved.wmem_default });
  writeBufferSysctls({ rmem_max: saved.rmem_max, wmem_max: saved.wmem_max });
  writeBufferSysctls({ rmem_default: saved.rmem_default, wmem_default: saved.wmem_default });
}

/** The `drops` counter of every IPv4 UDP socket bound to `port` (`/proc/net/udp`), summed. */
export function udpSocketDrops(port: number): number | null {
  try {
    const hex = port.toString(16).toUpperCase().padStart(4, "0");
    let drops = 0, found = false;
    for (const line of readFileSync("/proc/net/udp", "utf8").split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 13) continue;
      if (f[1]!.split(":")[1] !== hex) continue;
      found = true;
      drops += Number(f[f.length - 1]);
    }
    return found ? drops : null;
  } catch {
    return null;
  }
}

/** The kernel's `Udp:` counters (`/proc/net/snmp`) by name, for this network namespace. */
export function udpSnmp(): Record<string, number> {
  try {
    const lines = readFileSync("/proc/net/snmp", "utf8").split("\n").filter((l) =>
      l.startsWith("Udp:")
    );
    const names = (lines[0] ?? "").split(/\s+/).slice(1);
    const values = (lines[1] ?? "").split(/\s+/).slice(1).map(Number);
    return Object.fromEntries(names.map((n, i) => [n, values[i] ?? 0]));
  } catch {
    return {};
  }
}

/** `after − before` for the counters that say the kernel dropped datagrams. */
export function snmpDelta(
  before: Record<string, number>,
  after: Record<string, number>,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of ["InErrors", "RcvbufErrors", "SndbufErrors", "InDatagrams", "OutDatagrams"]) {
    if (k in before && k in after) out[k] = after[k]! - before[k]!;
  }
  return out;
}

/** Receive and send buffer sizes of the UDP socket on local `port`, from `ss -uamn`. */
export function socketBuffers(port: number): { rb: number; tb: number } | null {
  const r = spawnSync("ss", ["-uamnH", "sport", "=", `:${port}`], {
    encoding: "utf8",
    timeout: 5000,
  });
  if (r.status !== 0) return null;
  const m = /rb(\d+),t\d+,tb(\d+)/.exec(r.stdout);
  return m ? { rb: Number(m[1]), tb: Number(m[2]) } : null;
}
