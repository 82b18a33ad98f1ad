/**
 * The first step of `npm test` (scripts/check.ts): makes sure the system tools the tests need,
 * beyond Node and npm, are installed.
 *
 *   openssl     test/certs checks Macula's certificates against `openssl verify`
 *   iproute2    `ip`: the NAT lab's network namespaces and links (test/nat, test/helpers/natlab)
 *   iptables    the NAT lab's routers (MASQUERADE, DNAT, filtering)
 *   conntrack   the NAT lab's mapping tests list and flush a router's NAT state
 *   jq          the docs/cli.md examples that pipe JSON into jq
 *   chromium    the admin listener's topology page, loaded in headless Chromium (test/observe)
 *   promtool    recipes/prometheus checked, and Prometheus scraping a node (test/recipes)
 *   systemd-analyze  recipes/systemd's unit verified
 *   curl        recipes/container's HEALTHCHECK command, run against a node
 *   unshare     recipes/systemd's ProcSubset=pid, tried in a mount namespace
 *
 * What it does, when something is missing:
 * - as root with apt-get (Debian and its derivatives, like CI): installs the missing packages
 *   (`apt-get update`, `apt-get install -y --no-install-recommends …`), saying so in one line;
 * - otherwise: fails at once, naming the packages and the exact command that installs them.
 * Nothing missing: it says so and does nothing.
 *
 * Usage: bun scripts/provision.ts     (or `bun run scripts/check.ts provision`)
 * Exit codes: 0 ready, 1 cannot provision (the message says why), or apt-get's own failure.
 */
import { spawn } from "node:child_process";
import { accessSync, constants, statSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";

/** A system tool the tests run, and the Debian package that has it. */
export interface Requirement {
  readonly tool: string;
  readonly pkg: string;
  readonly why: string;
}

export const REQUIREMENTS: readonly Requirement[] = [
  { tool: "openssl", pkg: "openssl", why: "test/certs cross-checks certificates" },
  { tool: "ip", pkg: "iproute2", why: "the NAT lab's network namespaces" },
  { tool: "iptables", pkg: "iptables", why: "the NAT lab's routers" },
  { tool: "conntrack", pkg: "conntrack", why: "the NAT lab's mapping tests" },
  { tool: "jq", pkg: "jq", why: "the docs/cli.md examples that pipe JSON into jq" },
  { tool: "chromium", pkg: "chromium", why: "the topology page's browser test" },
  { tool: "promtool", pkg: "prometheus", why: "the Prometheus recipe and scrape test" },
  { tool: "systemd-analyze", pkg: "systemd", why: "the systemd unit recipe's check" },
  { tool: "curl", pkg: "curl", why: "the container recipe's HEALTHCHECK, run against a node" },
  { tool: "unshare", pkg: "util-linux", why: "the systemd recipe's ProcSubset check" },
];

/** What provisioning needs to know about the machine. */
export interface Machine {
  /** The process's uid; undefined where there is none (not POSIX). */
  readonly uid: number | undefined;
  /** apt-get is on the PATH (Debian, Ubuntu and the like). */
  readonly aptGet: boolean;
  /** The requirements whose tool was not found. */
  readonly missing: readonly Requirement[];
}

export type Plan =
  | { readonly action: "none"; readonly message: string }
  | {
    readonly action: "install";
    readonly packages: readonly string[];
    /** Run in order, each with `DEBIAN_FRONTEND=noninteractive`. */
    readonly commands: readonly (readonly string[])[];
    readonly message: string;
  }
  | { readonly action: "fail"; readonly message: string };

function listing(missing: readonly Requirement[]): string {
  return missing.map((r) => `${r.pkg} (\`${r.tool}\`: ${r.why})`).join(", ");
}

/** The decision: what is missing on `machine` → what provisioning does. */
export function plan(machine: Machine): Plan {
  const all = REQUIREMENTS.map((r) => r.tool).join(", ");
  if (machine.missing.length === 0) {
    return { action: "none", message: `provision: ${all} present, nothing to install` };
  }
  const packages = [...new Set(machine.missing.map((r) => r.pkg))];
  const install = ["apt-get", "install", "-y", "--no-install-recommends", ...packages];
  const needs = `npm test needs ${listing(machine.missing)}, not installed here`;
  if (!machine.aptGet) {
    return {
      action: "fail",
      message: `provision: ${needs}. There is no apt-get on this machine: install the packages ` +
        `${packages.join(" ")} (Debian's names) with its package manager, then run npm test again.`,
    };
  }
  if (machine.uid !== 0) {
    const who = machine.uid === undefined ? "not root" : `uid ${machine.uid}, not root`;
    return {
      action: "fail",
      message: `provision: ${needs}. This process runs as ${who}, so it cannot install them; ` +
        `run\n\n  sudo ${install.join(" ")}\n\nthen npm test again (as root, npm test ` +
        "installs them itself).",
    };
  }
  return {
    action: "install",
    packages,
    commands: [["apt-get", "update", "-qq"], [...install, "-qq"]],
    message: `provision: installing ${packages.join(" ")} with apt-get (missing: ` +
      `${listing(machine.missing)})`,
  };
}

/** Directories searched besides PATH: a non-login root shell's PATH may lack the sbin ones. */
const SYSTEM_DIRS = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/** The path of executable `tool` in `path` (colon-separated) or the system directories. */
export function findTool(tool: string, path = process.env.PATH ?? ""): string | undefined {
  for (const dir of [...path.split(":"), ...SYSTEM_DIRS]) {
    if (dir === "") continue;
    const candidate = join(dir, tool);
    try {
      if (!statSync(candidate).isFile()) continue;
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** This machine, as `plan` sees it. */
export function inspectMachine(): Machine {
  return {
    uid: process.getuid?.(),
    aptGet: findTool("apt-get") !== undefined,
    missing: REQUIREMENTS.filter((r) => findTool(r.tool) === undefined),
  };
}

/** The side effects of provisioning, so tests can replace them. */
export interface ProvisionIO {
  machine(): Machine;
  /** Runs argv with its output shown; resolves to its exit code. */
  exec(argv: readonly string[], env: Record<string, string>): Promise<number>;
  out(line: string): void;
  err(line: string): void;
}

/** Inspects, plans, installs if so planned and checks the result; resolves to an exit code. */
export async function provision(io: ProvisionIO): Promise<number> {
  const p = plan(io.machine());
  if (p.action === "none") {
    io.out(p.message);
    return 0;
  }
  if (p.action === "fail") {
    io.err(p.message);
    return 1;
  }
  io.out(p.message);
  for (const argv of p.commands) {
    const code = await io.exec(argv, { DEBIAN_FRONTEND: "noninteractive" });
    if (code !== 0) {
      io.err(`provision: '${argv.join(" ")}' failed (exit ${code}); npm test cannot go on`);
      return code;
    }
  }
  const still = io.machine().missing;
  if (still.length > 0) {
    io.err(
      `provision: apt-get installed ${p.packages.join(" ")}, but ` +
        `${still.map((r) => `\`${r.tool}\``).join(", ")} is still not found on PATH or in ` +
        `${SYSTEM_DIRS.join(", ")}`,
    );
    return 1;
  }
  io.out(`provision: installed ${p.packages.join(" ")}`);
  return 0;
}

function exec(argv: readonly string[], env: Record<string, string>): Promise<number> {
  const [tool, ...args] = argv;
  return new Promise((resolvePromise) => {
    const child = spawn(findTool(tool!) ?? tool!, args, {
      stdio: ["ignore", "inherit", "inherit"],
      env: { ...process.env, ...env },
    });
    child.on("error", (error) => {
      process.stderr.write(`provision: cannot start '${tool}': ${error.message}\n`);
      resolvePromise(127);
    });
    child.on("close", (code, signal) => resolvePromise(code ?? (signal === null ? 1 : 128)));
  });
}

if (import.meta.main) {
  process.exitCode = await provision({
    machine: inspectMachine,
    exec,
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
  });
}
