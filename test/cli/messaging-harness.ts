/**
 * What the messaging CLI tests share: a node started in the test process on 127.0.0.1, and
 * `bun cli/main.ts …` children pointed at it, whose output is awaited line by line (never
 * slept on). Every wait is bounded.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import type { Subprocess } from "bun";
import { connect } from "../../lib/client/client.ts";
import { Node, type NodeStartOptions } from "../../lib/node/node.ts";
import { Proc } from "../helpers/proc.ts";

export const MAIN = fileURLToPath(new URL("../../cli/main.ts", import.meta.url));

/** How a child is started. */
export interface RunOptions {
  stdin?: string;
  /** false: no --server/--creds after the verb (the test gives its own, or the environment). */
  target?: boolean;
  env?: Record<string, string>;
}

export class Harness {
  readonly procs: Proc[] = [];
  private constructor(
    readonly root: string,
    readonly node: Node,
    readonly env: Record<string, string>,
  ) {}

  /** A node in a fresh temporary directory; `o` adds to its options (e.g. limits). */
  static async start(prefix: string, o: NodeStartOptions = {}): Promise<Harness> {
    const root = mkdtempSync(join(tmpdir(), prefix));
    const env = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: join(root, "home"),
      MACULA_CONFIG_DIR: join(root, "config"),
    };
    const node = await Node.start({
      ...o,
      dataDir: join(root, "node"),
      listen: { host: "127.0.0.1", port: 0 },
    });
    return new Harness(root, node, env);
  }

  /** Starts `argv` as a child whose output can be awaited. */
  spawn(argv: string[], o: RunOptions = {}): Proc {
    const p = Bun.spawn({
      cmd: argv,
      cwd: this.root,
      env: { ...this.env, ...o.env },
      stdin: o.stdin === undefined ? "ignore" : new TextEncoder().encode(o.stdin),
      stdout: "pipe",
      stderr: "pipe",
      timeout: 60_000,
      killSignal: "SIGKILL",
    }) as Subprocess<"pipe" | "ignore", "pipe", "pipe">;
    const proc = new Proc(argv, p);
    this.procs.push(proc);
    return proc;
  }

  /** Starts `bun cli/main.ts ...args` against the node (unless `target` is false). */
  macula(args: string[], o: RunOptions = {}): Proc {
    // The target options go right after the verb: anything after `serve … --` is the command.
    const full = o.target === false
      ? args
      : [args[0]!, "--server", this.node.url, "--creds", this.node.credsDir!, ...args.slice(1)];
    return this.spawn([process.execPath, MAIN, ...full], o);
  }

  /** Runs a command to its end. */
  async done(args: string[], o: RunOptions = {}) {
    const p = this.macula(args, o);
    const code = await p.code();
    return { code, stdout: p.out, stderr: p.err };
  }

  /**
   * Runs a bash script with `$M` standing for `bun cli/main.ts`, and MACULA_URL / MACULA_CREDS
   * pointing at the node.
   */
  shell(script: string, o: RunOptions = {}): Proc {
    return this.spawn(["bash", "-c", script], {
      ...o,
      env: {
        M: `${process.execPath} ${MAIN}`,
        MACULA_URL: this.node.url,
        MACULA_CREDS: this.node.credsDir!,
        ...o.env,
      },
    });
  }

  /** Starts `sub` and waits until the node has the subscription. */
  async subscribed(args: string[], o: RunOptions = {}): Promise<Proc> {
    const p = this.macula(["sub", ...args], o);
    await p.waitFor("err", `subscribed to ${args[0]}`);
    return p;
  }

  /** Starts `serve` and waits until the node has the registration. */
  async serving(args: string[], o: RunOptions = {}): Promise<Proc> {
    const p = this.macula(["serve", ...args], o);
    await p.waitFor("err", `serving ${args[0]} on `);
    return p;
  }

  /**
   * A node of its own (`node up` in a child process, so that a test can freeze it with
   * SIGSTOP), once it listens: the process and its ready line.
   */
  async nodeProcess(name: string): Promise<{ proc: Proc; url: string; credsDir: string }> {
    const proc = this.macula(
      [
        "node",
        "up",
        "--data-dir",
        join(this.root, name),
        "--listen",
        "127.0.0.1:0",
        "--ready-json",
      ],
      { target: false },
    );
    await proc.waitFor("out", "\n");
    const ready = JSON.parse(proc.out) as { url: string; credsDir: string };
    return { proc, url: ready.url, credsDir: ready.credsDir };
  }

  /** Publishes one message from this process, through the harness's node. */
  async publish(topic: string, text: string): Promise<void> {
    const c = await connect({ url: this.node.url, creds: this.node.credsDir! });
    try {
      c.publish(topic, text);
      await c.flush();
    } finally {
      await c.close();
    }
  }

  async stop(): Promise<void> {
    for (const p of this.procs) p.p.kill("SIGKILL");
    await Promise.allSettled(this.procs.map((p) => p.exited));
    await this.node.stop();
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** Whether process `pid` runs (a zombie, dead but not yet reaped, does not). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false; // gone meanwhile
  }
}

/**
 * Whether any process of group `pgid` runs: `process.kill(-pgid, 0)` succeeds and a member is
 * not a zombie (a zombie left to a PID 1 that does not reap is dead all the same).
 */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch {
    return false; // ESRCH: nothing of the group is left
  }
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      // After "(comm) ": state ppid pgrp ...
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(pgrp) === pgid && state !== "Z") return true;
    } catch {
      // gone meanwhile
    }
  }
  return false;
}

/** Polls `check` every 20 ms until it holds; fails after `ms` naming `what`. */
export async function eventually(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const end = performance.now() + ms;
  while (!check()) {
    if (performance.now() > end) throw new Error(`${what}: not so within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The pid a handler wrote to `file` (a line), once it is there. */
export async function pidFrom(file: string, ms = 10_000): Promise<number> {
  let pid = 0;
  await eventually(`a pid in ${file}`, () => {
    try {
      const text = readFileSync(file, "utf8");
      if (!text.endsWith("\n")) return false;
      pid = Number(text.trim());
      return pid > 0;
    } catch {
      return false;
    }
  }, ms);
  return pid;
}
