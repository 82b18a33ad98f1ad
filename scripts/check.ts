/**
 * `npm test` — the whole gate, in order, failing fast:
 *
 *   1. provision scripts/provision.ts: the system tools the tests need (openssl, iproute2,
 *                iptables, conntrack); installed with apt-get when missing and running as root,
 *                else a message naming the packages and the command
 *   2. types     tsc --noEmit -p tsconfig.json
 *   3. fmt       deno fmt --check
 *   4. lint      deno lint
 *   5. deno      deno check mod.ts, and test/deno/smoke.ts under the permissions docs/client.md
 *                documents for a node in-process (each if present): the library runs on Deno
 *   6. build     npm run build (the tests run the compiled dist/macula; dist/lib is the package)
 *   7. test      bun test (the whole suite; test/runtime/package.test.ts packs the library and
 *                runs it from a project outside the repository under Node, Deno and Bun)
 *
 * Output streams as it comes. Every command runs in its own process group with a time limit;
 * on timeout (or Ctrl-C) the whole group is killed, so a hang fails the check instead of
 * hanging CI. The first failing step ends the run with a message naming it.
 *
 * Usage: bun run scripts/check.ts [STEP...]     run only the named steps (e.g. `fmt lint`)
 * Environment: CHECK_TEST_TIMEOUT_MIN           limit for the test step (default 60 minutes)
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { TestCounter } from "./test-output.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const MINUTE = 60_000;
/** Per-test limit handed to `bun test` (bunfig's `[test] timeout` is not read by Bun 1.4). */
const PER_TEST_TIMEOUT_MS = 120_000;
/** Grace between SIGTERM and SIGKILL when a step is stopped. */
const KILL_GRACE_MS = 5_000;

interface Command {
  /** argv; the first element is resolved against node_modules/.bin when it lives there. */
  readonly argv: readonly string[];
  /** Copy the output and report bun test's pass/fail counts at the end. */
  readonly countTests?: boolean;
}

interface Step {
  readonly name: string;
  readonly what: string;
  readonly timeoutMs: number;
  /** Commands to run in order; empty means the step has nothing to do (see `skipped`). */
  readonly commands: readonly Command[];
  /** Why the step does nothing, when `commands` is empty. */
  readonly skipped?: string;
}

/** What Deno needs to run a node in-process: UDP, its files, the QUIC addon (docs/client.md). */
const DENO_NODE_PERMISSIONS = ["--allow-net", "--allow-read", "--allow-write", "--allow-ffi"];

function denoStep(): Step {
  const commands: Command[] = [];
  if (existsSync(join(ROOT, "mod.ts"))) commands.push({ argv: ["deno", "check", "mod.ts"] });
  if (existsSync(join(ROOT, "test/deno/smoke.ts"))) {
    commands.push({ argv: ["deno", "run", ...DENO_NODE_PERMISSIONS, "test/deno/smoke.ts"] });
  }
  return {
    name: "deno",
    what: "the library loads under Deno",
    timeoutMs: 5 * MINUTE,
    commands,
    skipped: "neither mod.ts nor test/deno/smoke.ts exists yet",
  };
}

function steps(): Step[] {
  const testMinutes = Number(process.env.CHECK_TEST_TIMEOUT_MIN ?? "60");
  return [
    {
      name: "provision",
      what: "system tools the tests need",
      timeoutMs: 10 * MINUTE, // apt-get on a slow mirror
      commands: [{ argv: ["bun", "scripts/provision.ts"] }],
    },
    {
      name: "types",
      what: "type-check",
      timeoutMs: 3 * MINUTE,
      commands: [{ argv: ["tsc", "--noEmit", "-p", "tsconfig.json"] }],
    },
    {
      name: "fmt",
      what: "formatting",
      timeoutMs: 2 * MINUTE,
      commands: [{ argv: ["deno", "fmt", "--check"] }],
    },
    {
      name: "lint",
      what: "lint",
      timeoutMs: 3 * MINUTE,
      commands: [{ argv: ["deno", "lint"] }],
    },
    denoStep(),
    {
      name: "build",
      what: "compile dist/macula",
      timeoutMs: 5 * MINUTE,
      commands: [{ argv: ["npm", "run", "build"] }],
    },
    {
      name: "test",
      what: "bun test, whole suite",
      timeoutMs: (Number.isFinite(testMinutes) && testMinutes > 0 ? testMinutes : 60) * MINUTE,
      commands: [{
        argv: ["bun", "test", "--timeout", String(PER_TEST_TIMEOUT_MS)],
        countTests: true,
      }],
    },
  ];
}

/** Resolves a tool to node_modules/.bin when it is installed there (bun, deno, tsc). */
function resolveTool(name: string): string {
  const local = join(ROOT, "node_modules", ".bin", name);
  if (existsSync(local)) return local;
  if (name === "bun" && typeof Bun !== "undefined") return process.execPath;
  return name;
}

/** The child currently running, so signals can stop its whole process group. */
let current: ChildProcess | undefined;

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal); // the group: the command and everything it started
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

interface Outcome {
  readonly code: number;
  readonly timedOut: boolean;
  readonly tests?: string;
  readonly failures?: string[][];
}

function runCommand(command: Command, timeoutMs: number): Promise<Outcome> {
  const [tool, ...args] = command.argv;
  if (tool === undefined) throw new Error("empty command");
  return new Promise((resolvePromise) => {
    const counter = command.countTests ? new TestCounter() : undefined;
    const child = spawn(resolveTool(tool), args, {
      cwd: ROOT,
      detached: true, // own process group, so a timeout kills grandchildren too
      stdio: counter ? ["ignore", "pipe", "pipe"] : ["ignore", "inherit", "inherit"],
      env: { ...process.env, DENO_NO_UPDATE_CHECK: "1", DENO_NO_PROMPT: "1" },
    });
    current = child;
    if (counter) {
      child.stdout?.on("data", (data: Buffer) => {
        process.stdout.write(data);
        counter.feed(data.toString("utf8"));
      });
      child.stderr?.on("data", (data: Buffer) => {
        process.stderr.write(data);
        counter.feed(data.toString("utf8"));
      });
    }
    let timedOut = false;
    let killTimer: ReturnType<typeof setTimeout> | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      const limit = seconds(timeoutMs);
      process.stderr.write(
        `\ncheck: '${command.argv.join(" ")}' still running after ${limit}; killing it\n`,
      );
      killGroup(child, "SIGTERM");
      killTimer = setTimeout(() => killGroup(child, "SIGKILL"), KILL_GRACE_MS);
    }, timeoutMs);
    const finish = (code: number): void => {
      clearTimeout(timer);
      if (killTimer !== undefined) clearTimeout(killTimer);
      current = undefined;
      counter?.feed("\n");
      const tests = counter?.summary();
      const failures = counter?.failures ?? [];
      resolvePromise(
        tests === undefined ? { code, timedOut, failures } : { code, timedOut, tests, failures },
      );
    };
    child.on("error", (error) => {
      process.stderr.write(`check: cannot start '${tool}': ${error.message}\n`);
      finish(127);
    });
    // "close" waits for the piped streams to end, so no output is lost.
    child.on("close", (code, signal) => {
      // A step that left processes behind in its group: clean them up now.
      killGroup(child, "SIGKILL");
      finish(code ?? (signal !== null ? 128 + (signalNumber(signal) ?? 0) : 1));
    });
  });
}

function signalNumber(signal: NodeJS.Signals): number | undefined {
  return ({ SIGINT: 2, SIGKILL: 9, SIGTERM: 15 } as Partial<Record<NodeJS.Signals, number>>)[
    signal
  ];
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

function stopOnSignal(signal: NodeJS.Signals): void {
  process.on(signal, () => {
    process.stderr.write(`\ncheck: ${signal} received, stopping\n`);
    if (current) killGroup(current, "SIGKILL");
    process.exit(130);
  });
}

async function main(): Promise<number> {
  stopOnSignal("SIGINT");
  stopOnSignal("SIGTERM");
  const all = steps();
  const wanted = process.argv.slice(2);
  const unknown = wanted.filter((name) => !all.some((step) => step.name === name));
  if (unknown.length > 0) {
    process.stderr.write(
      `check: unknown step ${unknown.join(", ")}; steps: ${all.map((s) => s.name).join(", ")}\n`,
    );
    return 2;
  }
  const selected = wanted.length > 0 ? all.filter((step) => wanted.includes(step.name)) : all;
  const report: string[] = [];
  let testsLine: string | undefined;
  const started = performance.now();

  for (const [index, step] of selected.entries()) {
    const label = `[${index + 1}/${selected.length}] ${step.name} (${step.what})`;
    if (step.commands.length === 0) {
      process.stdout.write(`\n==> ${label}: skipped, ${step.skipped ?? "nothing to do"}\n`);
      report.push(`  skip  ${step.name}: ${step.skipped ?? "nothing to do"}`);
      continue;
    }
    const stepStarted = performance.now();
    for (const command of step.commands) {
      process.stdout.write(`\n==> ${label}: ${command.argv.join(" ")}\n`);
      const outcome = await runCommand(command, step.timeoutMs);
      if (outcome.tests !== undefined) testsLine = outcome.tests;
      if (outcome.code !== 0 || outcome.timedOut) {
        const why = outcome.timedOut
          ? `timed out after ${seconds(step.timeoutMs)}`
          : `exit code ${outcome.code}`;
        for (const f of outcome.failures ?? []) {
          process.stdout.write(`\n--- ${f.at(-1)}\n${f.slice(0, -1).join("\n")}\n`);
        }
        if (testsLine !== undefined) process.stdout.write(`\n${testsLine}\n`);
        process.stderr.write(
          `\ncheck: FAILED at step '${step.name}' (${step.what}): ` +
            `'${command.argv.join(" ")}' ${why}\n`,
        );
        return outcome.code !== 0 ? outcome.code : 1;
      }
    }
    report.push(`  ok    ${step.name} ${seconds(performance.now() - stepStarted)}`);
  }

  process.stdout.write(`\ncheck: all steps passed in ${seconds(performance.now() - started)}\n`);
  process.stdout.write(`${report.join("\n")}\n`);
  if (testsLine !== undefined) process.stdout.write(`${testsLine}\n`);
  return 0;
}

process.exitCode = await main();
