/**
 * docs/tutorial.md, run as written: three `macula node up` processes on 127.0.0.1, the example
 * app of examples/hello/ under Bun and under Deno, and the output the page shows.
 *
 * The page drives the test through HTML comments (invisible when rendered), in page order:
 *
 *   <!-- step: a b=3 -->   the ```sh block below: one command per line, named a, b, … in order.
 *                          A line ending in `&` runs in the background and counts as started
 *                          once it printed a first line on stdout; any other line must exit with
 *                          its code (`=3`; 0 when none is given).
 *   <!-- output: a b -->   every line of the ```text block below appears in the output (stdout
 *                          and stderr) of each of a, b (waited for, bounded). `…` stands for
 *                          anything (ids, times); runs of spaces count as one; each shown line
 *                          matches its own output line.
 *   <!-- ctrl-c: a b -->   SIGINT to each, as Ctrl-C in its terminal would.
 *   <!-- exit: a 0 -->     a ends with that exit code (waited for, bounded).
 *   <!-- file: path -->    the ```ts block below is the file at `path`, byte for byte.
 *
 * What the test changes before running a command, and only that: `macula` is `bun cli/main.ts`
 * (the page's alias), `bun` and `deno` are the repository's, `/tmp/hello` is a fresh temporary
 * directory, and the ports 4433-4435 are free ports (in the commands and in the output shown).
 * Commands run from the repository root, as the page says. Deno runs exactly the page's command,
 * `deno run --allow-net --allow-read --allow-env --allow-ffi <file>` (docs/client.md,
 * "Runtimes", has the permissions).
 */
import { afterAll, describe, expect, test } from "bun:test";
import dgram from "node:dgram";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";

const ROOT = resolve(import.meta.dir, "../..");
const DOC = join(ROOT, "docs/tutorial.md");
const DENO = join(ROOT, "node_modules/.bin/deno");
/** The ports the page uses; each is replaced by a free one. */
const PAGE_PORTS = ["4433", "4434", "4435"];
/** How long a line may take to appear, or a process to exit (Deno's first start is slow). */
const WAIT_MS = 60_000;

// ---------------------------------------------------------------------------------------------
// The page

type Directive =
  | { kind: "step"; line: number; commands: { name: string; code: number; text: string }[] }
  | { kind: "output"; line: number; names: string[]; shown: string[] }
  | { kind: "ctrl-c"; line: number; names: string[] }
  | { kind: "exit"; line: number; name: string; code: number }
  | { kind: "file"; line: number; path: string; text: string };

/** The directives of a page, in page order. */
export function directives(md: string): Directive[] {
  const out: Directive[] = [];
  const re = /<!-- (step|output|ctrl-c|exit|file): (.*?) -->(?:\n\n```(\w+)\n([\s\S]*?)```)?/g;
  for (const m of md.matchAll(re)) {
    const [, kind, arg, lang, block] = m;
    const line = md.slice(0, m.index).split("\n").length;
    const words = arg!.trim().split(/\s+/);
    const need = (want: string) => {
      if (lang !== want) throw new Error(`docs/tutorial.md:${line}: ${kind} wants a ${want} block`);
      return block!;
    };
    if (kind === "step") {
      const lines = need("sh").split("\n").map((l) => l.trim()).filter((l) => l !== "");
      if (lines.length !== words.length) {
        throw new Error(`docs/tutorial.md:${line}: ${words.length} names, ${lines.length} lines`);
      }
      out.push({
        kind,
        line,
        commands: lines.map((text, i) => {
          const [name, code] = words[i]!.split("=");
          return { name: name!, code: Number(code ?? 0), text };
        }),
      });
    } else if (kind === "output") {
      const shown = need("text").split("\n").filter((l) => l.trim() !== "");
      out.push({ kind, line, names: words, shown });
    } else if (kind === "ctrl-c") out.push({ kind, line, names: words });
    else if (kind === "exit") out.push({ kind, line, name: words[0]!, code: Number(words[1]) });
    else out.push({ kind: "file", line, path: words[0]!, text: need("ts") });
  }
  return out;
}

/** Splits a command line as sh would for these: words, '…' and "…" quotes. */
function shellWords(line: string): string[] {
  const out: string[] = [];
  const re = /'([^']*)'|"([^"]*)"|(\S+)/g;
  for (let m; (m = re.exec(line)) !== null;) out.push(m[1] ?? m[2] ?? m[3]!);
  return out;
}

const squeeze = (s: string) => s.replace(/\s+/g, " ").trim();

/** Whether an output line is what the page shows: `…` is anything, spaces squeezed. */
export function lineMatches(shown: string, actual: string): boolean {
  const a = squeeze(actual);
  if (!shown.includes("…")) return a === squeeze(shown);
  let at = 0;
  for (const piece of shown.split("…").map(squeeze).filter((p) => p !== "")) {
    const i = a.indexOf(piece, at);
    if (i < 0) return false;
    at = i + piece.length;
  }
  return true;
}

/** The first shown line with no output line of its own, or null when all have one. */
export function unmatched(shown: readonly string[], output: string): string | null {
  const lines = output.split("\n");
  const used = new Set<number>();
  for (const s of shown) {
    const i = lines.findIndex((l, j) => !used.has(j) && lineMatches(s, l));
    if (i < 0) return s;
    used.add(i);
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Processes

/** A command of the page, running; its output can be awaited. */
class Running {
  out = "";
  err = "";
  readonly exited: Promise<number>;
  readonly #wake = new Set<() => void>();
  constructor(readonly name: string, readonly text: string, readonly p: Subprocess) {
    const pump = async (s: ReadableStream<Uint8Array>, to: "out" | "err") => {
      const d = new TextDecoder();
      for await (const chunk of s) {
        this[to] += d.decode(chunk, { stream: true });
        for (const w of this.#wake) w();
      }
    };
    const pumped = Promise.all([
      pump(p.stdout as ReadableStream<Uint8Array>, "out"),
      pump(p.stderr as ReadableStream<Uint8Array>, "err"),
    ]);
    this.exited = pumped.then(() => p.exited);
    void this.exited.then(() => {
      for (const w of this.#wake) w();
    });
  }

  get output(): string {
    return `${this.out}\n${this.err}`;
  }

  describe(): string {
    return `${this.name} (${this.text})\n--- stdout:\n${this.out}\n--- stderr:\n${this.err}`;
  }

  /** Resolves once `done()` holds (checked on every chunk of output and at exit). */
  until(done: () => boolean, what: () => string, ms = WAIT_MS): Promise<void> {
    return new Promise((resolvePromise, reject) => {
      let exited = false;
      const finish = () => {
        clearTimeout(timer);
        this.#wake.delete(check);
      };
      const check = () => {
        if (done()) {
          finish();
          resolvePromise();
        } else if (exited) {
          finish();
          reject(new Error(`${what()}: exited first\n${this.describe()}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`${what()}: not within ${ms} ms\n${this.describe()}`));
      }, ms);
      this.#wake.add(check);
      void this.exited.then(() => {
        exited = true;
        check();
      });
      check();
    });
  }

  async code(ms = WAIT_MS): Promise<number> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      return await Promise.race([
        this.exited,
        new Promise<number>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`still running after ${ms} ms\n${this.describe()}`)),
            ms,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** `n` distinct UDP ports that were free a moment ago on 127.0.0.1. */
async function freePorts(n: number): Promise<number[]> {
  const socks = await Promise.all(
    Array.from({ length: n }, () =>
      new Promise<dgram.Socket>((ok) => {
        const s = dgram.createSocket("udp4");
        s.bind(0, "127.0.0.1", () => ok(s));
      })),
  );
  const ports = socks.map((s) => s.address().port);
  await Promise.all(socks.map((s) => new Promise<void>((ok) => s.close(() => ok()))));
  return ports;
}

// ---------------------------------------------------------------------------------------------
// The run

const md = readFileSync(DOC, "utf8");
const page = directives(md);
const dir = mkdtempSync(join(tmpdir(), "macula-tutorial-"));
const running = new Map<string, Running>();

afterAll(async () => {
  for (const r of running.values()) {
    if (r.p.exitCode === null) r.p.kill("SIGKILL");
  }
  await Promise.all([...running.values()].map((r) => r.exited.catch(() => 0)));
  rmSync(dir, { recursive: true, force: true });
});

describe("docs/tutorial.md", () => {
  test("shows the example files as they are", () => {
    const files = page.filter((d) => d.kind === "file");
    expect(files.map((f) => f.path)).toEqual([
      "examples/hello/greeter.ts",
      "examples/hello/watch.ts",
      "examples/hello/call.ts",
    ]);
    for (const f of files) {
      expect([f.path, f.text]).toEqual([f.path, readFileSync(join(ROOT, f.path), "utf8")]);
    }
  });

  test("the examples type-check with the repository's compiler options", async () => {
    // examples/ is outside tsconfig.json's include; examples/tsconfig.json extends it.
    const p = Bun.spawn({
      cmd: [join(ROOT, "node_modules/.bin/tsc"), "--noEmit", "-p", "examples/tsconfig.json"],
      cwd: ROOT,
      stdout: "pipe",
      stderr: "pipe",
    });
    const [out, code] = await Promise.all([new Response(p.stdout).text(), p.exited]);
    expect([code, out]).toEqual([0, ""]);
  }, 60_000);

  test("runs Bun and Deno programs, and names every process it waits on", () => {
    const commands = page.flatMap((d) => d.kind === "step" ? d.commands : []);
    const names = new Set(commands.map((c) => c.name));
    expect(commands.some((c) => /^\S+=\S+ \S+=\S+ bun examples\/hello\//.test(c.text))).toBe(true);
    expect(commands.some((c) => /\bdeno run (--allow-\w+ )+examples\//.test(c.text))).toBe(true);
    for (const d of page) {
      const used = d.kind === "output" || d.kind === "ctrl-c"
        ? d.names
        : d.kind === "exit"
        ? [d.name]
        : [];
      for (const n of used) expect([d.line, n, names.has(n)]).toEqual([d.line, n, true]);
    }
  });

  test("every step runs as written and prints what the page shows", async () => {
    const ports = await freePorts(PAGE_PORTS.length);
    const local = (s: string) =>
      s.replaceAll("/tmp/hello", dir).replace(
        /(127\.0\.0\.1:)(4433|4434|4435)\b/g,
        (_, host: string, p: string) => `${host}${ports[PAGE_PORTS.indexOf(p)]}`,
      );

    const start = (name: string, text: string): Running => {
      const w = shellWords(local(text));
      const env: Record<string, string> = {};
      while (w.length > 0 && /^[A-Z_]+=/.test(w[0]!)) {
        const [k, ...v] = w.shift()!.split("=");
        env[k!] = v.join("=");
      }
      if (w.at(-1) === "&") w.pop();
      const [tool, ...args] = w;
      const argv = tool === "macula"
        ? [process.execPath, join(ROOT, "cli/main.ts"), ...args]
        : tool === "bun"
        ? [process.execPath, ...args]
        : tool === "deno"
        ? [DENO, ...args]
        : undefined;
      if (argv === undefined) throw new Error(`${name}: unknown program ${tool}`);
      const p = Bun.spawn({
        cmd: argv,
        cwd: ROOT,
        env: {
          ...process.env,
          MACULA_URL: "",
          MACULA_CREDS: "",
          NO_COLOR: "1",
          DENO_NO_UPDATE_CHECK: "1",
          DENO_NO_PROMPT: "1",
          ...env,
        },
        stdin: "ignore",
        stdout: "pipe",
        stderr: "pipe",
      });
      const r = new Running(name, text, p);
      running.set(name, r);
      return r;
    };
    const proc = (name: string): Running => {
      const r = running.get(name);
      if (r === undefined) throw new Error(`${name} was never started`);
      return r;
    };

    for (const d of page) {
      const where = `docs/tutorial.md:${d.line}`;
      if (d.kind === "step") {
        for (const c of d.commands) {
          const r = start(c.name, c.text);
          if (c.text.endsWith("&")) {
            await r.until(() => r.out.includes("\n"), () => `${where}: ${c.name} started`);
          } else {
            const code = await r.code();
            expect([where, c.name, code, r.describe()]).toEqual([
              where,
              c.name,
              c.code,
              r.describe(),
            ]);
          }
        }
      } else if (d.kind === "output") {
        const shown = d.shown.map(local);
        for (const name of d.names) {
          const r = proc(name);
          let missing: string | null = null;
          await r.until(
            () => (missing = unmatched(shown, r.output)) === null,
            () => `${where}: ${name} should print ${JSON.stringify(missing)}`,
          );
        }
      } else if (d.kind === "ctrl-c") {
        for (const name of d.names) proc(name).p.kill("SIGINT");
      } else if (d.kind === "exit") {
        const r = proc(d.name);
        const code = await r.code();
        expect([where, d.name, code, r.describe()]).toEqual([where, d.name, d.code, r.describe()]);
      }
    }
    // Nothing the page started is left running: it stopped everything it started.
    for (const r of running.values()) {
      expect([r.name, r.p.exitCode === null]).toEqual([r.name, false]);
    }
  }, 240_000);
});

test("the page's output matcher", () => {
  expect(lineMatches("… route up: node … direct)", "2026 route up: node ab… (dialed, direct)"))
    .toBe(true);
  expect(lineMatches("Hello, Ada!", "  Hello,   Ada! ")).toBe(true);
  expect(lineMatches("Hello, Ada!", "Hello, Ada!!")).toBe(false);
  expect(lineMatches("… a … b", "b a")).toBe(false); // pieces in order
  expect(unmatched(["… x", "… x"], "1 x\n2 x")).toBeNull();
  expect(unmatched(["… x", "… x"], "1 x")).toBe("… x"); // each shown line its own output line
});
