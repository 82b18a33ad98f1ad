/**
 * Child processes for `macula serve`: each handler command runs in a process group of its own
 * (spawned detached, so it leads a new session), and ends with its whole group: when it exits,
 * when its call is cancelled or times out, and when `macula serve` exits. Nothing it started
 * is left running, re-parented to PID 1.
 */
import { spawn } from "node:child_process";
import process from "node:process";

/** How long a group gets between SIGTERM and SIGKILL. */
export const KILL_GRACE_MS = 500;

/** How often a group being ended is checked for being gone, during its grace. */
const GONE_POLL_MS = 20;

/**
 * The process groups started here whose processes may still run, each with what ends it (once
 * `endGroup` began). An id leaves as soon as its group is seen to be empty: from then on the
 * id may be reused by an unrelated process, which nothing here may signal.
 */
const live = new Map<number, { ending?: Ending }>();
/** A group being ended: its poll, its SIGKILL timer, and who waits for it to be gone. */
interface Ending {
  poll: ReturnType<typeof setInterval>;
  kill: ReturnType<typeof setTimeout>;
  gone: (() => void)[];
}
let hooked = false;

/** Sends `sig` to every process of group `pgid`; false when none is left. */
export function signalGroup(pgid: number, sig: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, sig);
    return true;
  } catch {
    return false; // ESRCH: the group is empty
  }
}

/** Whether any process of group `pgid` still runs (zombies count until they are reaped). */
export function groupAlive(pgid: number): boolean {
  return signalGroup(pgid, 0);
}

/** The ids of the groups started here that may still have processes (for tests). */
export function liveGroups(): number[] {
  return [...live.keys()];
}

/** Groups still alive when this process exits (however it exits) get SIGKILL. */
function track(pgid: number): void {
  if (!hooked) {
    hooked = true;
    process.on("exit", () => {
      for (const g of live.keys()) signalGroup(g, "SIGKILL");
    });
  }
  live.set(pgid, {});
}

/**
 * Group `pgid` is empty: it is forgotten (its SIGKILL timer goes, so a reused id is never
 * signalled) and whoever waits for its end hears of it.
 */
function gone(pgid: number): void {
  const g = live.get(pgid);
  live.delete(pgid);
  if (!g?.ending) return;
  clearInterval(g.ending.poll);
  clearTimeout(g.ending.kill);
  for (const f of g.ending.gone) f();
}

/** Forgets group `pgid` when nothing of it is left (its leader exited and was reaped). */
export function forgetIfGone(pgid: number): boolean {
  if (groupAlive(pgid)) return false;
  gone(pgid);
  return true;
}

/**
 * Ends group `pgid`: SIGTERM now, SIGKILL after `graceMs` to whatever is left. `onGone` runs once
 * nothing of the group is left to kill: when it is seen empty (checked every 20 ms meanwhile),
 * at once when it already was, else after the SIGKILL.
 */
export function endGroup(pgid: number, graceMs = KILL_GRACE_MS, onGone?: () => void): void {
  const known = live.get(pgid);
  if (known?.ending) {
    if (onGone) known.ending.gone.push(onGone);
    return; // already being ended
  }
  if (!signalGroup(pgid, "SIGTERM")) {
    gone(pgid);
    onGone?.();
    return;
  }
  const poll = setInterval(() => forgetIfGone(pgid), GONE_POLL_MS);
  const kill = setTimeout(() => {
    signalGroup(pgid, "SIGKILL");
    gone(pgid);
  }, graceMs);
  // Not a reason to stay alive: the exit hook kills what is left.
  poll.unref();
  kill.unref();
  live.set(pgid, { ending: { poll, kill, gone: onGone ? [onGone] : [] } });
}

/** The command's output went past the limit: `bytes` is what it had written by then. */
export class OutputTooLarge extends Error {
  constructor(readonly command: string, readonly limit: number, readonly bytes: Uint8Array) {
    super(`${command} wrote more than ${limit} bytes, the payload limit`);
  }
}

/** Keeps the last `max` bytes written to it. */
class Tail {
  #buf = Buffer.alloc(0);
  constructor(private readonly max: number) {}
  push(c: Buffer): void {
    this.#buf = Buffer.concat([this.#buf, c]);
    if (this.#buf.length > this.max) this.#buf = this.#buf.subarray(this.#buf.length - this.max);
  }
  lastLine(): string {
    const lines = this.#buf.toString("utf8").split("\n").map((l) => l.trim()).filter(Boolean);
    return lines[lines.length - 1] ?? "";
  }
}

/**
 * Runs `argv` (no shell) in a process group of its own with `input` on stdin; resolves with its
 * stdout when it exits 0. Rejects with a one-line reason: a non-zero exit (with the last line of
 * its stderr), `timeoutMs` passed, `signal` aborted (its reason, when a string, is the message), or (`OutputTooLarge`) more than `maxOutput`
 * bytes on stdout. In every case the group is ended (SIGTERM, SIGKILL after `graceMs`) once the
 * command exits or is stopped, so nothing it started survives the call.
 */
export function runOnce(
  argv: readonly string[],
  input: Uint8Array,
  o: { timeoutMs: number; maxOutput: number; signal: AbortSignal; graceMs?: number },
): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const [cmd, ...args] = argv as [string, ...string[]];
    const grace = o.graceMs ?? KILL_GRACE_MS;
    const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"], detached: true });
    const pgid = child.pid;
    if (pgid !== undefined) track(pgid);
    const chunks: Buffer[] = [];
    let size = 0;
    const stderr = new Tail(4096);
    let failure: Error | null = null;
    let ended = false;
    const end = () => {
      if (ended || pgid === undefined) return;
      ended = true;
      endGroup(pgid, grace);
    };
    const stop = (why: Error) => {
      if (failure !== null) return;
      failure = why;
      end();
    };
    const timer = setTimeout(
      () => stop(new Error(`${cmd} took longer than ${o.timeoutMs} ms`)),
      o.timeoutMs,
    );
    // A string reason says who stopped it (serve shutting down); else the caller cancelled.
    const onAbort = () =>
      stop(
        new Error(
          typeof o.signal.reason === "string" ? o.signal.reason : "cancelled by the caller",
        ),
      );
    o.signal.addEventListener("abort", onAbort, { once: true });
    if (o.signal.aborted) onAbort();
    child.stdout.on("data", (c: Buffer) => {
      if (failure !== null) return;
      size += c.length;
      chunks.push(c);
      if (size > o.maxOutput) {
        stop(new OutputTooLarge(cmd, o.maxOutput, new Uint8Array(Buffer.concat(chunks))));
        chunks.length = 0;
      }
    });
    child.stderr.on("data", (c: Buffer) => stderr.push(c));
    child.stdin.on("error", () => {}); // the command may exit without reading its input
    child.stdin.end(input);
    const done = () => {
      clearTimeout(timer);
      o.signal.removeEventListener("abort", onAbort);
    };
    // The leader exited: what it left running in its group goes too (its stdout may be held
    // open by such a process, and "close" waits for that).
    child.on("exit", () => {
      end();
      if (pgid !== undefined) forgetIfGone(pgid);
    });
    child.on("error", (e) => {
      done();
      end();
      reject(new Error(`cannot run ${cmd}: ${e.message}`));
    });
    child.on("close", (code, sig) => {
      done();
      end();
      if (pgid !== undefined) forgetIfGone(pgid);
      if (failure !== null) return reject(failure);
      if (code === 0) return resolve(new Uint8Array(Buffer.concat(chunks)));
      const last = stderr.lastLine();
      const how = code !== null ? `exit code ${code}` : `signal ${sig}`;
      reject(new Error(last ? `${last} (${cmd}: ${how})` : `${cmd} failed with ${how}`));
    });
  });
}
