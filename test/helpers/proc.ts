/**
 * A running `macula` process (from source or the binary) whose output can be awaited: tests
 * synchronise on the lines commands print, never on sleeps, and every wait is bounded.
 */
import { fileURLToPath } from "node:url";
import type { Subprocess } from "bun";

const MAIN = fileURLToPath(new URL("../../cli/main.ts", import.meta.url));

/** Starts `macula ...args` from source as a `Proc`; killed if it runs over a minute. */
export function spawnMacula(
  args: string[],
  o: { cwd?: string; env?: Record<string, string> } = {},
): Proc {
  return new Proc(
    args,
    Bun.spawn({
      cmd: [process.execPath, MAIN, ...args],
      ...(o.cwd !== undefined ? { cwd: o.cwd } : {}),
      ...(o.env !== undefined ? { env: o.env } : {}),
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      timeout: 60_000,
      killSignal: "SIGKILL",
    }) as Subprocess<"pipe" | "ignore", "pipe", "pipe">,
  );
}

/** How long a wait for a line or an exit may take by default. */
export const WAIT_MS = 15_000;

/** A running `macula` process whose output can be awaited line by line. */
export class Proc {
  out = "";
  err = "";
  readonly exited: Promise<number>;
  readonly #wake = new Set<() => void>();
  constructor(readonly args: string[], readonly p: Subprocess<"pipe" | "ignore", "pipe", "pipe">) {
    const pump = async (s: ReadableStream<Uint8Array>, to: "out" | "err") => {
      const d = new TextDecoder();
      for await (const c of s) {
        this[to] += d.decode(c, { stream: true });
        for (const w of this.#wake) w();
      }
    };
    const pumped = Promise.all([pump(p.stdout, "out"), pump(p.stderr, "err")]);
    this.exited = pumped.then(() => p.exited);
  }

  /** Resolves once `pattern` appears on the stream; fails after `ms` with what was seen. */
  async waitFor(to: "out" | "err", pattern: string | RegExp, ms = WAIT_MS): Promise<void> {
    const seen = () =>
      typeof pattern === "string" ? this[to].includes(pattern) : pattern.test(this[to]);
    let done = false;
    await new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!seen()) return;
        finish();
        resolve();
      };
      const finish = () => {
        done = true;
        clearTimeout(t);
        this.#wake.delete(check);
      };
      const t = setTimeout(() => {
        finish();
        reject(
          new Error(
            `macula ${this.args.join(" ")}: no ${String(pattern)} on std${to} within ${ms} ms\n` +
              `stdout: ${this.out}\nstderr: ${this.err}`,
          ),
        );
      }, ms);
      this.#wake.add(check);
      void this.exited.then(() => {
        if (done) return;
        if (seen()) check();
        else {
          finish();
          reject(
            new Error(
              `macula ${this.args.join(" ")} exited without ${String(pattern)} on std${to}\n` +
                `stdout: ${this.out}\nstderr: ${this.err}`,
            ),
          );
        }
      });
      check();
    });
  }

  /** The exit code, within `ms`. */
  async code(ms = WAIT_MS): Promise<number> {
    let t: ReturnType<typeof setTimeout> | undefined;
    try {
      return await Promise.race([
        this.exited,
        new Promise<number>((_, reject) => {
          t = setTimeout(
            () => reject(new Error(`macula ${this.args.join(" ")} still running after ${ms} ms`)),
            ms,
          );
        }),
      ]);
    } finally {
      clearTimeout(t);
    }
  }

  /** Output lines on stdout. */
  lines(): string[] {
    return this.out.split("\n").filter((l) => l !== "");
  }
}
