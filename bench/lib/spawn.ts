/** Child processes with hard time limits: one-shot runs, and servers that announce readiness. */
import { type ChildProcess, spawn } from "node:child_process";

const KEEP = 64 * 1024; // keep the last 64 KiB of stderr

export interface ProcResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  ms: number;
}

export interface SpawnOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
}

function tail(s: string): string {
  return s.length > KEEP ? `…${s.slice(-KEEP)}` : s;
}

/**
 * Calls `cb` once the child is done: on "close" (stdio drained), or 2 s after "exit" in case a
 * grandchild still holds its pipes open.
 */
function onDone(
  child: ChildProcess,
  cb: (code: number | null, signal: NodeJS.Signals | null) => void,
): void {
  let called = false;
  const once = (code: number | null, signal: NodeJS.Signals | null): void => {
    if (called) return;
    called = true;
    cb(code ?? null, signal ?? null);
  };
  child.on("close", once);
  child.on("exit", (code, signal) => {
    setTimeout(() => once(code, signal), 2000).unref?.();
  });
}

/** SIGTERM, then SIGKILL after `graceMs` if still alive. */
function terminate(child: ChildProcess, graceMs: number): void {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const t = setTimeout(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }, graceMs);
  t.unref?.();
  child.once("exit", () => clearTimeout(t));
}

/** Runs `argv` to completion, killing it after `timeoutMs`. Never rejects for the child's sake. */
export function runProcess(
  argv: readonly string[],
  timeoutMs: number,
  opts: SpawnOptions = {},
): Promise<ProcResult> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined) throw new Error("runProcess: empty argv");
  const started = performance.now();
  return new Promise((resolve) => {
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    const child = spawn(cmd, rest, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr = tail(stderr + d)));
    const timer = setTimeout(() => {
      timedOut = true;
      terminate(child, 2000);
    }, timeoutMs);
    child.on("error", (e) => {
      stderr += `\nspawn failed: ${e.message}`;
    });
    onDone(child, (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut, ms: performance.now() - started });
    });
  });
}

export interface Server {
  readonly port: number;
  /** The whole ready line as parsed (servers may add fields beside `ready` and `port`). */
  readonly ready: Readonly<Record<string, unknown>>;
  /** True if the server exited before `stop` was called. */
  exitedEarly(): boolean;
  stderr(): string;
  /** Closes its stdin, sends SIGTERM, SIGKILL after `graceMs`; resolves when it has exited. */
  stop(graceMs?: number): Promise<ProcResult>;
}

/**
 * Starts a server that prints `{"ready":true,"port":N}` as its first stdout line.
 * Rejects (after killing it) if it exits, prints something else first, or is not ready in time.
 */
export function startServer(
  argv: readonly string[],
  readyTimeoutMs: number,
  opts: SpawnOptions = {},
): Promise<Server> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined) throw new Error("startServer: empty argv");
  const started = performance.now();
  const child = spawn(cmd, rest, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  let stopping = false;
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exitP = new Promise<void>((res) =>
    onDone(child, (code, signal) => {
      exited = { code, signal };
      res();
    })
  );
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr = tail(stderr + d)));
  child.stdin.on("error", () => {}); // EPIPE when it has already gone

  return new Promise<Server>((resolve, reject) => {
    let settled = false;
    const fail = (why: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      terminate(child, 1000);
      void exitP.then(() => reject(new Error(`${why}\n--- server stderr ---\n${stderr.trim()}`)));
    };
    const timer = setTimeout(
      () => fail(`server not ready within ${readyTimeoutMs} ms`),
      readyTimeoutMs,
    );
    child.on("error", (e) => fail(`spawn failed: ${e.message}`));
    onDone(
      child,
      (code, signal) => fail(`server exited before ready (code ${code}, signal ${signal})`),
    );
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      if (settled) return; // later stdout is ignored by the protocol
      stdout += d;
      const nl = stdout.indexOf("\n");
      if (nl < 0) return;
      const line = stdout.slice(0, nl).trim();
      let port = -1;
      let ready: Record<string, unknown> = {};
      try {
        const v = JSON.parse(line) as { ready?: unknown; port?: unknown };
        if (typeof v === "object" && v !== null) ready = v as Record<string, unknown>;
        if (
          v.ready === true && typeof v.port === "number" && Number.isInteger(v.port) && v.port > 0
        ) port = v.port;
      } catch {
        // fall through
      }
      if (port < 0) {
        fail(
          `server's first stdout line is not {"ready":true,"port":N}: ${
            JSON.stringify(line.slice(0, 200))
          }`,
        );
        return;
      }
      settled = true;
      clearTimeout(timer);
      child.stdout.resume(); // keep draining
      resolve({
        port,
        ready,
        exitedEarly: () => exited !== undefined && !stopping,
        stderr: () => stderr,
        stop: async (graceMs = 3000): Promise<ProcResult> => {
          stopping = true;
          if (exited === undefined) {
            child.stdin.end();
            terminate(child, graceMs);
          }
          await exitP;
          return {
            code: exited?.code ?? null,
            signal: exited?.signal ?? null,
            stdout,
            stderr,
            timedOut: false,
            ms: performance.now() - started,
          };
        },
      });
    });
  });
}
