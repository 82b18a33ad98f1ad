/** What the numbers were measured on. */
import { existsSync, readFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { runProcess } from "./spawn.ts";

export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  bun: string;
  deno: string;
  node: string;
  date: string;
  /** 1-minute load average when the bench started: other work on the box skews results. */
  load1: number;
}

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"));
    if (m?.[1]) return m[1].trim();
  } catch {
    // not Linux
  }
  return os.cpus()[0]?.model ?? "unknown";
}

async function version(argv: readonly string[]): Promise<string> {
  const r = await runProcess(argv, 10_000);
  if (r.code !== 0) return "not found";
  return (r.stdout.split("\n")[0] ?? "").trim() || "unknown";
}

/** The Deno binary the project installs (node_modules/.bin/deno), else `deno` on PATH. */
export function denoPath(repoRoot: string): string {
  const local = join(repoRoot, "node_modules", ".bin", "deno");
  return existsSync(local) ? local : "deno";
}

export async function machineInfo(repoRoot: string): Promise<MachineInfo> {
  const [deno, node] = await Promise.all([
    version([denoPath(repoRoot), "--version"]),
    version(["node", "--version"]),
  ]);
  return {
    cpu: cpuModel(),
    cores: os.cpus().length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    bun: typeof Bun !== "undefined" ? Bun.version : "not running on Bun",
    deno: deno.replace(/^deno\s+/, ""),
    node: node.replace(/^v/, ""),
    date: new Date().toISOString(),
    load1: Math.round((os.loadavg()[0] ?? 0) * 100) / 100,
  };
}

export function machineMarkdown(m: MachineInfo): string {
  return [
    `- Date: ${m.date} (1-min load average at start: ${m.load1})`,
    `- CPU: ${m.cpu}, ${m.cores} cores; memory ${m.memoryGiB} GiB`,
    `- Kernel: ${m.kernel}`,
    `- Bun ${m.bun}; Deno ${m.deno}; Node ${m.node}`,
  ].join("\n");
}
