/**
 * A NAT lab for tests: Linux network namespaces joined by veth pairs, with iptables NAT routers.
 * Built by the test process itself (it must run as root with `ip` and `iptables` installed) and
 * torn down by `lab.destroy()`. See recipes/nat-lab/README.md for the topology and the rules.
 *
 *                           ┌───────────────── inet ──────────────────┐
 *                           │ lo: 203.0.113.10, 203.0.113.11 (host)   │
 *                           │ forwards between its veths (one hop)    │
 *                           └──┬───────────┬───────────┬──────────┬───┘
 *                  203.0.113.101  203.0.113.102  203.0.113.103   203.0.113.21
 *                        r1 (eim-pr)  r2 (eim-fc)  r3 (sym)       p1 (public, no NAT)
 *                        10.1.0.1     10.2.0.1     10.3.0.1
 *                           │            │            │
 *                        h1 10.1.0.2  h2 10.2.0.2  h3 10.3.0.2
 *
 * Every address lives inside the lab's namespaces; nothing is added to the root namespace.
 * Namespace names are `mlab<pid>x<n>-<role>`; a lab's creation removes namespaces of that shape
 * whose <pid> no longer runs (left by a crashed run), and nothing else.
 */
import type { Subprocess } from "bun";
import process from "node:process";

/**
 * NAT behaviours (RFC 4787 terms):
 * - `eim-pr`: endpoint-independent mapping, address-and-port-dependent filtering (plain
 *   MASQUERADE; conntrack does the filtering). The usual Linux/home-router NAT.
 * - `eim-ar`: endpoint-independent mapping, address-dependent filtering (MASQUERADE, plus
 *   inbound UDP from an address the host has sent to is forwarded to the host, any port).
 * - `eim-fc`: endpoint-independent mapping and filtering ("full cone"): MASQUERADE, plus all
 *   inbound UDP not matching a connection goes to the host, to the same port.
 * - `sym`: symmetric, address-and-port-dependent mapping (MASQUERADE --random).
 */
export type NatKind = "eim-pr" | "eim-ar" | "eim-fc" | "sym";
export const NAT_KINDS: readonly NatKind[] = ["eim-pr", "eim-ar", "eim-fc", "sym"];

export interface NatSpec {
  readonly kind: NatKind;
  /** LAN hosts behind this router: 1 (default) or 2. eim-fc and eim-ar allow only 1. */
  readonly hosts?: 1 | 2;
  /**
   * Drop unsolicited inbound packets addressed to the router itself (NEW, on the WAN), as home
   * routers' default WAN input policy does. Side effect worth knowing: a dropped packet's
   * conntrack entry is never confirmed, so it cannot take the host's mapping (see README).
   * Default false: the router accepts them (and answers with ICMP port unreachable).
   */
  readonly firewall?: boolean;
}

export interface LabOptions {
  /** One NAT router (with its LAN) per entry, numbered from 1. Default eim-pr, eim-fc, sym. */
  readonly nats?: ReadonlyArray<NatKind | NatSpec>;
  /** Extra hosts directly on the internet (no NAT), each in its own namespace. Default 0. */
  readonly publicHosts?: number;
  /** Limit for each command the lab runs (setup script, exec). Default 15 s. */
  readonly timeoutMs?: number;
}

export interface Router {
  /** 1-based; the LAN is 10.<index>.0.0/24. */
  readonly index: number;
  readonly kind: NatKind;
  readonly ns: string;
  /** The router's WAN address, 203.0.113.(100 + index): what the outside sees. */
  readonly publicAddress: string;
  /** The router's LAN address, 10.<index>.0.1: the LAN hosts' default gateway. */
  readonly lanAddress: string;
  readonly lan: string;
}

export interface Host {
  /** `h<N>` (first host behind router N), `h<N>b` (second), or `p<i>` (public host). */
  readonly name: string;
  readonly ns: string;
  /** The NAT kind in front of the host, or "public" for a host directly on the internet. */
  readonly kind: NatKind | "public";
  /** The host's own address (10.N.0.2 / 10.N.0.3 behind a NAT; 203.0.113.(20 + i) if public). */
  readonly address: string;
  /** The address the internet sees for this host: its router's WAN address, or its own. */
  readonly publicAddress: string;
  readonly gateway: string;
  /** The router in front of it; undefined for a public host. */
  readonly router: Router | undefined;
}

export interface Internet {
  /** The "internet" namespace: it routes between all WAN links and is itself a host. */
  readonly ns: string;
  /** The internet host's two addresses (on its loopback), e.g. for an RFC 5780 STUN server. */
  readonly addresses: readonly [string, string];
  /** The next hop every router and public host uses (an address of the internet namespace). */
  readonly gateway: string;
}

export interface ExecResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface SpawnOptions {
  readonly stdin?: "pipe" | "ignore";
  readonly env?: Record<string, string | undefined>;
  readonly cwd?: string;
}

export interface Lab {
  /** Every namespace of this lab starts with this (`mlab<pid>x<n>-`). */
  readonly prefix: string;
  readonly internet: Internet;
  readonly routers: readonly Router[];
  /** Hosts behind NATs (router order, then a/b), then public hosts. */
  readonly hosts: readonly Host[];
  /** All namespaces this lab created. */
  readonly namespaces: readonly string[];
  /** The shell script that built the lab (for error messages and for building it by hand). */
  readonly script: string;
  /** A host by name (`h1`, `h1b`, `p1`) or the first host behind a NAT of that kind. */
  host(nameOrKind: string): Host;
  /** Runs argv inside namespace `ns` (a full name or a lab role like `h1`, `r1`, `inet`). */
  exec(ns: string, argv: readonly string[], opts?: { timeoutMs?: number }): Promise<ExecResult>;
  /** Starts argv inside namespace `ns`; stdout/stderr piped; killed by destroy(). */
  spawn(
    ns: string,
    argv: readonly string[],
    opts?: SpawnOptions,
  ): Subprocess<"pipe" | "ignore", "pipe", "pipe">;
  /** Kills what the lab spawned and everything still in its namespaces, deletes them. Idempotent. */
  destroy(): Promise<void>;
}

const NS_PATTERN = /^mlab(\d+)x(\d+)-[a-z0-9]+$/;
const DEFAULT_NATS: readonly NatKind[] = ["eim-pr", "eim-fc", "sym"];
const DEFAULT_TIMEOUT_MS = 15_000;
const GATEWAY = "203.0.113.1";
const INTERNET_ADDRESSES = ["203.0.113.10", "203.0.113.11"] as const;

let labCounter = 0;
/** Labs not yet destroyed: removed synchronously if the process exits without destroy(). */
const live = new Set<{ namespaces: readonly string[]; ip: string }>();
let exitHookInstalled = false;

/** Finds a system tool (`ip`, `iptables`), also in the sbin directories a PATH may lack. */
export function which(tool: string): string | undefined {
  const path = [process.env.PATH ?? "", "/usr/sbin", "/sbin", "/usr/bin", "/bin"].join(":");
  return Bun.which(tool, { PATH: path }) ?? undefined;
}

/** What is missing for a lab on this machine; empty when a lab can be built. */
export function labPrerequisites(): string[] {
  const missing: string[] = [];
  const uid = process.getuid?.();
  if (uid !== 0) {
    missing.push(`root (network namespaces need uid 0; this process runs as uid ${uid})`);
  }
  if (which("ip") === undefined) missing.push("`ip` (apt-get install iproute2)");
  if (which("iptables") === undefined) missing.push("`iptables` (apt-get install iptables)");
  return missing;
}

async function runBounded(cmd: string[], timeoutMs: number): Promise<ExecResult> {
  const proc = Bun.spawn({
    cmd,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    timeout: timeoutMs,
    killSignal: "SIGKILL",
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  if (proc.signalCode === "SIGKILL" && code !== 0) {
    return { code: 124, stdout, stderr: `${stderr}\n(killed after ${timeoutMs} ms)` };
  }
  return { code, stdout, stderr };
}

function quote(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === "EPERM";
  }
}

async function listNamespaces(ip: string, timeoutMs: number): Promise<string[]> {
  const r = await runBounded([ip, "netns", "list"], timeoutMs);
  if (r.code !== 0) throw new Error(`natlab: 'ip netns list' failed: ${r.stderr.trim()}`);
  return r.stdout.split("\n").map((l) => l.trim().split(/\s+/)[0] ?? "").filter((n) => n !== "");
}

/** Kills every process inside `ns` and deletes it; a missing namespace is not an error. */
async function removeNamespace(ip: string, ns: string, timeoutMs: number): Promise<void> {
  const pids = await runBounded([ip, "netns", "pids", ns], timeoutMs);
  for (const p of pids.stdout.split(/\s+/)) {
    const pid = Number(p);
    if (Number.isInteger(pid) && pid > 1 && pid !== process.pid) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
  await runBounded([ip, "netns", "delete", ns], timeoutMs);
}

function removeNamespaceSync(ip: string, ns: string): void {
  const pids = Bun.spawnSync({ cmd: [ip, "netns", "pids", ns], timeout: 5_000, stderr: "ignore" });
  for (const p of pids.stdout.toString().split(/\s+/)) {
    const pid = Number(p);
    if (Number.isInteger(pid) && pid > 1 && pid !== process.pid) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
  Bun.spawnSync({ cmd: [ip, "netns", "delete", ns], timeout: 5_000, stderr: "ignore" });
}

/**
 * Removes namespaces left by an earlier lab whose process is gone (`mlab<pid>x<n>-*` with a dead
 * <pid>). Namespaces of live processes (other test runs) and other names are left alone.
 * Returns the names removed.
 */
export async function removeStaleLabs(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<string[]> {
  const ip = which("ip");
  if (ip === undefined) return [];
  const stale = (await listNamespaces(ip, timeoutMs)).filter((ns) => {
    const m = NS_PATTERN.exec(ns);
    return m !== null && !pidAlive(Number(m[1]));
  });
  for (const ns of stale) await removeNamespace(ip, ns, timeoutMs);
  return stale;
}

interface Plan {
  readonly script: string;
  readonly namespaces: string[];
  readonly routers: Router[];
  readonly hosts: Host[];
  readonly internet: Internet;
}

/** The topology and the shell commands that build it (also what lab.sh does by hand). */
export function planLab(prefix: string, opts: LabOptions = {}): Plan {
  const specs: NatSpec[] = (opts.nats ?? DEFAULT_NATS).map((s) =>
    typeof s === "string" ? { kind: s } : s
  );
  const publicCount = opts.publicHosts ?? 0;
  if (specs.length > 99) throw new Error("natlab: at most 99 NAT routers");
  if (!Number.isInteger(publicCount) || publicCount < 0 || publicCount > 60) {
    throw new Error("natlab: publicHosts must be an integer from 0 to 60");
  }
  const lines: string[][] = [];
  const sh = (...argv: string[]) => lines.push(argv);
  const inNs = (ns: string, ...argv: string[]) => sh("ip", "netns", "exec", ns, ...argv);
  /** Sets /proc/sys/net values inside `ns` (no dependency on procps' sysctl). */
  const sysctl = (ns: string, ...kv: [string, number][]) =>
    inNs(ns, "sh", "-c", kv.map(([k, v]) => `echo ${v} > /proc/sys/net/${k}`).join(" && "));
  const nsOf = (role: string) => `${prefix}${role}`;
  const namespaces: string[] = [];
  const addNs = (role: string): string => {
    const ns = nsOf(role);
    namespaces.push(ns);
    sh("ip", "netns", "add", ns);
    sh("ip", "-n", ns, "link", "set", "lo", "up");
    // Loose or strict reverse-path filtering may be inherited from the root namespace.
    sysctl(ns, ["ipv4/conf/all/rp_filter", 0], ["ipv4/conf/default/rp_filter", 0]);
    return ns;
  };

  const inet = addNs("inet");
  sysctl(inet, ["ipv4/ip_forward", 1]);
  for (const a of INTERNET_ADDRESSES) sh("ip", "-n", inet, "addr", "add", `${a}/32`, "dev", "lo");
  /** A WAN link from the internet namespace to `ns` (interface `wan` there), address `addr`. */
  const wanLink = (ns: string, inetIf: string, wanIf: string, addr: string) => {
    sh("ip", "-n", inet, "link", "add", inetIf, "type", "veth", "peer", "name", wanIf, "netns", ns);
    sh("ip", "-n", inet, "addr", "add", `${GATEWAY}/32`, "dev", inetIf);
    sh("ip", "-n", inet, "link", "set", inetIf, "up");
    // Sourced from the internet host's first address, not from the gateway address.
    sh("ip", "-n", inet, "route", "add", `${addr}/32`, "dev", inetIf, "src", INTERNET_ADDRESSES[0]);
    sh("ip", "-n", ns, "addr", "add", `${addr}/32`, "dev", wanIf);
    sh("ip", "-n", ns, "link", "set", wanIf, "up");
    sh("ip", "-n", ns, "route", "add", `${GATEWAY}/32`, "dev", wanIf);
    sh("ip", "-n", ns, "route", "add", "default", "via", GATEWAY, "dev", wanIf);
  };

  const routers: Router[] = [];
  const hosts: Host[] = [];
  specs.forEach((spec, i) => {
    const n = i + 1;
    if (!NAT_KINDS.includes(spec.kind)) throw new Error(`natlab: unknown NAT kind ${spec.kind}`);
    const hostCount = spec.hosts ?? 1;
    if (hostCount !== 1 && hostCount !== 2) throw new Error("natlab: hosts must be 1 or 2");
    if (hostCount > 1 && (spec.kind === "eim-fc" || spec.kind === "eim-ar")) {
      throw new Error(
        `natlab: ${spec.kind} forwards unsolicited inbound UDP to one LAN host; use hosts: 1`,
      );
    }
    const r = addNs(`r${n}`);
    const router: Router = {
      index: n,
      kind: spec.kind,
      ns: r,
      publicAddress: `203.0.113.${100 + n}`,
      lanAddress: `10.${n}.0.1`,
      lan: `10.${n}.0.0/24`,
    };
    routers.push(router);
    sysctl(r, ["ipv4/ip_forward", 1]);
    wanLink(r, `r${n}`, "wan", router.publicAddress);
    // The LAN: a veth straight to the host, or a bridge when there are two hosts.
    const lanIf = hostCount === 1 ? "lan" : "br-lan";
    if (hostCount > 1) sh("ip", "-n", r, "link", "add", lanIf, "type", "bridge");
    const hostRoles = hostCount === 1 ? [`h${n}`] : [`h${n}`, `h${n}b`];
    hostRoles.forEach((role, j) => {
      const h = addNs(role);
      const address = `10.${n}.0.${2 + j}`;
      if (hostCount === 1) {
        sh("ip", "-n", r, "link", "add", "lan", "type", "veth", "peer", "name", "eth0", "netns", h);
      } else {
        const port = `lan${j}`;
        sh("ip", "-n", r, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", h);
        sh("ip", "-n", r, "link", "set", port, "master", lanIf);
        sh("ip", "-n", r, "link", "set", port, "up");
      }
      sh("ip", "-n", h, "addr", "add", `${address}/24`, "dev", "eth0");
      sh("ip", "-n", h, "link", "set", "eth0", "up");
      sh("ip", "-n", h, "route", "add", "default", "via", router.lanAddress);
      hosts.push({
        name: role,
        ns: h,
        kind: spec.kind,
        address,
        publicAddress: router.publicAddress,
        gateway: router.lanAddress,
        router,
      });
    });
    sh("ip", "-n", r, "addr", "add", `${router.lanAddress}/24`, "dev", lanIf);
    sh("ip", "-n", r, "link", "set", lanIf, "up");
    const ipt = (...args: string[]) => inNs(r, "iptables", "-w", "5", ...args);
    const host = `10.${n}.0.2`;
    switch (spec.kind) {
      case "eim-pr":
        ipt("-t", "nat", "-A", "POSTROUTING", "-o", "wan", "-j", "MASQUERADE");
        break;
      case "sym":
        ipt("-t", "nat", "-A", "POSTROUTING", "-o", "wan", "-j", "MASQUERADE", "--random");
        break;
      case "eim-fc":
        ipt("-t", "nat", "-A", "POSTROUTING", "-o", "wan", "-j", "MASQUERADE");
        // Inbound UDP that matches no connection goes to the host, same port. MASQUERADE keeps
        // the host's source port (nothing else on this router can hold it), so mapped port ==
        // host port and anyone can reach a mapping: endpoint-independent filtering.
        ipt("-t", "nat", "-A", "PREROUTING", "-i", "wan", "-p", "udp", "-j", "DNAT", "--to", host);
        break;
      case "eim-ar": {
        ipt("-t", "nat", "-A", "POSTROUTING", "-o", "wan", "-j", "MASQUERADE");
        // Remember every address the host sends to (xt_recent keys on the address only: the
        // memory is per host, not per mapping); inbound UDP from one of them, from any port,
        // goes to the host at the same port.
        const recent = ["-m", "recent", "--name", "ar"];
        ipt("-A", "FORWARD", "-i", "lan", "-o", "wan", "-p", "udp", ...recent, "--rdest", "--set");
        const known = [...recent, "--rsource", "--rcheck", "--seconds", "300"];
        const dnat = ["-j", "DNAT", "--to", host];
        ipt("-t", "nat", "-A", "PREROUTING", "-i", "wan", "-p", "udp", ...known, ...dnat);
        break;
      }
    }
    if (spec.firewall === true || spec.kind === "eim-ar") {
      // eim-ar always: a packet from an unknown address must not reach the router's own stack,
      // or its (confirmed) conntrack entry would take the port the host's mapping needs.
      ipt("-A", "INPUT", "-i", "wan", "-m", "conntrack", "--ctstate", "NEW", "-j", "DROP");
    }
  });

  for (let i = 1; i <= publicCount; i++) {
    const p = addNs(`p${i}`);
    const address = `203.0.113.${20 + i}`;
    wanLink(p, `p${i}`, "eth0", address);
    hosts.push({
      name: `p${i}`,
      ns: p,
      kind: "public",
      address,
      publicAddress: address,
      gateway: GATEWAY,
      router: undefined,
    });
  }

  const script = ["set -e", ...lines.map((l) => l.map(quote).join(" "))].join("\n") + "\n";
  return {
    script,
    namespaces,
    routers,
    hosts,
    internet: { ns: inet, addresses: INTERNET_ADDRESSES, gateway: GATEWAY },
  };
}

/** Builds a lab. Throws (with what is missing, or the failing command) if it cannot. */
export async function createLab(opts: LabOptions = {}): Promise<Lab> {
  const missing = labPrerequisites();
  if (missing.length > 0) {
    throw new Error(`natlab: cannot build a NAT lab here; missing: ${missing.join("; ")}`);
  }
  const ip = which("ip")!;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  await removeStaleLabs(timeoutMs);
  const prefix = `mlab${process.pid}x${labCounter++}-`;
  const plan = planLab(prefix, opts);
  const entry = { namespaces: plan.namespaces, ip };
  live.add(entry);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on("exit", () => {
      for (const l of live) for (const ns of l.namespaces) removeNamespaceSync(l.ip, ns);
    });
  }

  const spawned = new Set<Subprocess>();
  let destroyed: Promise<void> | undefined;
  const resolveNs = (ns: string): string => {
    if (plan.namespaces.includes(ns)) return ns;
    if (plan.namespaces.includes(prefix + ns)) return prefix + ns;
    throw new Error(`natlab: no namespace ${ns} in lab ${prefix} (${plan.namespaces.join(", ")})`);
  };
  const lab: Lab = {
    prefix,
    internet: plan.internet,
    routers: plan.routers,
    hosts: plan.hosts,
    namespaces: plan.namespaces,
    script: plan.script,
    host(nameOrKind) {
      const h = plan.hosts.find((x) => x.name === nameOrKind) ??
        plan.hosts.find((x) => x.kind === nameOrKind);
      if (h === undefined) throw new Error(`natlab: no host ${nameOrKind} in lab ${prefix}`);
      return h;
    },
    exec(ns, argv, o = {}) {
      if (destroyed) return Promise.reject(new Error(`natlab: lab ${prefix} is destroyed`));
      return runBounded([ip, "netns", "exec", resolveNs(ns), ...argv], o.timeoutMs ?? timeoutMs);
    },
    spawn(ns, argv, o = {}) {
      if (destroyed) throw new Error(`natlab: lab ${prefix} is destroyed`);
      const proc = Bun.spawn({
        cmd: [ip, "netns", "exec", resolveNs(ns), ...argv],
        stdin: o.stdin ?? "ignore",
        stdout: "pipe",
        stderr: "pipe",
        env: o.env ?? { ...process.env },
        cwd: o.cwd,
      });
      spawned.add(proc);
      void proc.exited.then(() => spawned.delete(proc));
      return proc;
    },
    destroy() {
      destroyed ??= (async () => {
        for (const p of spawned) p.kill("SIGKILL");
        await Promise.all([...spawned].map((p) => p.exited));
        const present = new Set(await listNamespaces(ip, timeoutMs));
        for (const ns of plan.namespaces) {
          if (present.has(ns)) await removeNamespace(ip, ns, timeoutMs);
        }
        const left = (await listNamespaces(ip, timeoutMs)).filter((n) => n.startsWith(prefix));
        live.delete(entry);
        if (left.length > 0) throw new Error(`natlab: could not delete ${left.join(", ")}`);
      })();
      return destroyed;
    },
  };

  const built = await runBounded(["sh", "-c", plan.script], Math.max(timeoutMs, 30_000));
  if (built.code !== 0) {
    await lab.destroy().catch(() => {});
    throw new Error(
      `natlab: building the lab failed (exit ${built.code}): ${built.stderr.trim()}\n` +
        `script:\n${plan.script}`,
    );
  }
  return lab;
}
