/**
 * Runs a page of the docs as written (docs/tutorial.md, docs/quickstart.md, docs/cli.md): the
 * page drives the run through HTML comments, invisible when rendered, in page order:
 *
 *   <!-- step: a b=3 c& -->  the ```sh block below: one command per line (lines that are only a
 *                            `# comment` do not count, a trailing ` # comment` is dropped),
 *                            named a, b, … in order. A line ending in `&` runs in the
 *                            background and counts as started once it printed a first line on
 *                            stdout. A name ending in `&` is a command in a terminal of its own
 *                            (the line has no `&`): it runs in the background and counts as
 *                            started once it printed a first line on stdout or stderr (`sub` and
 *                            `serve` say they are ready on stderr). Any other line must exit
 *                            with its code (`=3`; 0 when none is given).
 *   <!-- output: a b -->     every line of the ```text block below appears in the output (stdout
 *                            and stderr) of each of a, b (waited for, bounded). `…` stands for
 *                            anything (ids, times, paths): the pieces between come in order, and
 *                            the line starts and ends as the shown one does; runs of spaces count
 *                            as one; each shown line matches its own output line; blank lines
 *                            are not compared. `a+b` is the output of a and b together (a block
 *                            that shows a terminal's transcript).
 *   <!-- stdout: a b -->     the stdout lines of a and b, together, are the lines of the ```text
 *                            block below, one for one, in any order: nothing missing (waited for,
 *                            bounded) and nothing more, then and again when the page is done (a
 *                            queue group's messages, each delivered once).
 *   <!-- ctrl-c: a b -->     SIGINT to each one's process group, as Ctrl-C in its terminal would.
 *   <!-- exit: a 0 -->       a ends with that exit code (waited for, bounded).
 *   <!-- file: path -->      the ```ts block below is the file at `path` in the repository, byte
 *                            for byte.
 *   <!-- write: path -->     the ```ts block below is written to `path` in the working
 *                            directory (`from "macula"` is the repository's mod.ts), for a step
 *                            to run.
 *   <!-- not-run: why -->    the ```sh block below is not run here, for the reason given (a
 *                            second machine, root, the Internet); every `macula` command line in
 *                            it must still be accepted by the CLI's parser (`parseProblem`).
 *
 * `PageRun.parseProblems()` puts every `macula` command line of the steps and of the not-run
 * blocks through the CLI's parser without running it, so that a flag or a command that no
 * longer exists is named as such; the page tests check it before the run.
 *
 * What the runner changes before it runs a command or compares a line, and only that: the
 * page's `substitutions` (each test lists its own, with the reason), then the page's ports
 * (`4433`, …) become free ports on 127.0.0.1, in the commands, the output shown, written files
 * and the environment given. `macula` is
 * `bun cli/main.ts` of the repository, `bun` and `deno` are the repository's. A simple line
 * (`VAR=x macula …`, `bun …`, `deno …`) is spawned directly; any other (pipes, `||`, other
 * programs) runs under `sh -c` with `macula` and `bun` defined as functions, `node_modules/.bin`
 * first on PATH, and `jq` writing each result at once, as it does to a terminal. Every command
 * runs in a process group of its own, as in a terminal.
 */
import { expect } from "bun:test";
import type { Subprocess } from "bun";
import dgram from "node:dgram";
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

export const ROOT = resolve(import.meta.dir, "../..");
const DENO = join(ROOT, "node_modules/.bin/deno");
/** How long a line may take to appear, or a process to exit, by default. */
export const WAIT_MS = 60_000;

// ---------------------------------------------------------------------------------------------
// The page

/** A command line of a step. */
export interface StepCommand {
  readonly name: string;
  /** The exit code it must end with (foreground commands). */
  readonly code: number;
  /** Runs in the background: a line ending in `&`, or a name ending in `&`. */
  readonly background: "job" | "terminal" | null;
  /** The line as the page shows it, its trailing comment dropped. */
  readonly text: string;
}

/** One directive of a page, with the line it is on. */
export type Directive =
  | { kind: "step"; line: number; commands: StepCommand[] }
  | { kind: "output" | "stdout"; line: number; names: string[]; shown: string[] }
  | { kind: "ctrl-c"; line: number; names: string[] }
  | { kind: "exit"; line: number; name: string; code: number }
  | { kind: "file"; line: number; path: string; text: string }
  | { kind: "write"; line: number; path: string; text: string }
  | { kind: "not-run"; line: number; why: string; lines: string[] };

const KINDS = ["step", "output", "stdout", "ctrl-c", "exit", "file", "write", "not-run"];
/** The block each kind needs right below it. */
const BLOCK: Record<string, string | undefined> = {
  step: "sh",
  output: "text",
  stdout: "text",
  file: "ts",
  write: "ts",
  "not-run": "sh",
};

/** A line of shell without its comment: from an unquoted `#` that starts a word. */
export function stripComment(line: string): string {
  let quote: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = null;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === "#" && (i === 0 || /\s/.test(line[i - 1]!))) return line.slice(0, i).trimEnd();
  }
  return line.trimEnd();
}

/** The command lines of a ```sh block: comments dropped, blank lines skipped. */
export function commandLines(block: string): string[] {
  return block.split("\n").map((l) => stripComment(l).trim()).filter((l) => l !== "");
}

/** The directives of a page, in page order; `page` names it in errors. */
export function directives(md: string, page: string): Directive[] {
  const out: Directive[] = [];
  for (const m of md.matchAll(/<!-- ([\w-]+): (.*?) -->/g)) {
    const [, kind, arg] = m as unknown as [string, string, string];
    const line = md.slice(0, m.index).split("\n").length;
    const where = `${page}:${line}`;
    if (!KINDS.includes(kind)) throw new Error(`${where}: unknown directive ${kind}`);
    let block = "";
    const want = BLOCK[kind];
    if (want !== undefined) {
      const after = md.slice(m.index + m[0].length);
      const b = /^\n\n```(\w+)\n([\s\S]*?)```/.exec(after);
      if (!b || b[1] !== want) throw new Error(`${where}: ${kind} wants a ${want} block below`);
      block = b[2]!;
    }
    const words = arg.trim().split(/\s+/);
    if (kind === "step") {
      const lines = commandLines(block);
      if (lines.length !== words.length) {
        throw new Error(`${where}: ${words.length} names, ${lines.length} command lines`);
      }
      out.push({
        kind,
        line,
        commands: lines.map((text, i) => {
          const [named, code] = words[i]!.split("=");
          const terminal = named!.endsWith("&");
          return {
            name: terminal ? named!.slice(0, -1) : named!,
            code: Number(code ?? 0),
            background: text.endsWith("&") ? "job" : terminal ? "terminal" : null,
            text,
          };
        }),
      });
    } else if (kind === "output" || kind === "stdout") {
      const shown = block.split("\n").filter((l) => l.trim() !== "");
      out.push({ kind, line, names: words, shown });
    } else if (kind === "ctrl-c") out.push({ kind, line, names: words });
    else if (kind === "exit") out.push({ kind, line, name: words[0]!, code: Number(words[1]) });
    else if (kind === "file") out.push({ kind, line, path: words[0]!, text: block });
    else if (kind === "write") out.push({ kind, line, path: words[0]!, text: block });
    else out.push({ kind: "not-run", line, why: arg.trim(), lines: commandLines(block) });
  }
  return out;
}

/** The fenced blocks of a page: language and line of the opening fence. */
export function fencedBlocks(md: string): { lang: string; line: number; claimed: boolean }[] {
  const out: { lang: string; line: number; claimed: boolean }[] = [];
  for (const m of md.matchAll(/```(\w*)\n[\s\S]*?```/g)) {
    const before = md.slice(0, m.index);
    out.push({
      lang: m[1]!,
      line: before.split("\n").length,
      claimed: /<!-- [\w-]+: .*? -->\n\n$/.test(before),
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Shell words

/**
 * A token of a shell line: a word (unquoted) or an operator: `|`, `||`, `&&`, `;`, `&`, or a
 * redirection (`<`, `>`, `2>`, `>>`, `2>&`).
 */
type Token = { word: string } | { op: string };

/** Splits a shell line as sh would for these pages: words, '…' and "…" quotes, operators. */
export function tokens(line: string): Token[] {
  const out: Token[] = [];
  const re = /(\|\||&&|\d*>>?&?|\d*<&?|[|;&])|((?:'[^']*'|"[^"]*"|[^\s'"|;&<>])+)/g;
  for (let m; (m = re.exec(stripComment(line))) !== null;) {
    if (m[1] !== undefined) out.push({ op: m[1] });
    else out.push({ word: m[2]!.replace(/'([^']*)'|"([^"]*)"/g, (_, a, b) => a ?? b) });
  }
  return out;
}

/** The words of a simple command line (no operators but a trailing `&`), or null. */
export function shellWords(line: string): string[] | null {
  const t = tokens(line);
  const last = t.at(-1);
  if (last !== undefined && "op" in last && last.op === "&") t.pop();
  if (t.some((x) => "op" in x)) return null;
  if (/[$`\\(){}*?~]/.test(line.replace(/'[^']*'/g, "''"))) return null; // sh would expand these
  return t.map((x) => (x as { word: string }).word);
}

/** Every `macula …` command of a shell line (in pipes, after `||`), as its arguments. */
export function maculaCommands(line: string): string[][] {
  const out: string[][] = [];
  let words: string[] = [];
  let redirect = false;
  const end = () => {
    while (words.length > 0 && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[0]!)) words.shift();
    if (words[0] === "macula") out.push(words.slice(1));
    words = [];
  };
  for (const t of tokens(line)) {
    if ("op" in t) {
      if (/[<>]/.test(t.op)) redirect = true;
      else end();
    } else if (redirect) redirect = false; // the file (or descriptor) of a redirection
    else words.push(t.word);
  }
  end();
  return out;
}

// ---------------------------------------------------------------------------------------------
// The parser, without running anything

/**
 * Why `macula <args>` would be refused by the CLI's parser (unknown command or option, bad
 * value, missing argument), or null when it is accepted.
 * Nothing runs: the actions of the command tree are replaced by no-ops.
 */
export async function parseProblem(args: readonly string[]): Promise<string | null> {
  const { buildProgram } = await import("../../cli/main.ts");
  const { CommanderError } = await import("@commander-js/extra-typings");
  const program = buildProgram();
  let said = "";
  type Node = (typeof program.commands)[number];
  const walk = (c: Node) => {
    c.configureOutput({ writeOut: () => {}, writeErr: (s) => void (said += s) });
    const has = (c as unknown as { _actionHandler: unknown })._actionHandler !== null;
    if (has) c.action(() => {});
    for (const sub of c.commands) walk(sub);
  };
  walk(program);
  let argv = [...args];
  if (argv[0] === "help" && argv.length > 1) argv = [...argv.slice(1), "--help"];
  try {
    await program.parseAsync(argv, { from: "user" });
    return null;
  } catch (e) {
    if (e instanceof CommanderError && e.exitCode === 0) return null; // --help, --version
    return (said.trim() || (e as Error).message).split("\n")[0]!;
  }
}

// ---------------------------------------------------------------------------------------------
// Output

const squeeze = (s: string) => s.replace(/\s+/g, " ").trim();

/** Whether an output line is what the page shows: `…` is anything, spaces squeezed. */
export function lineMatches(shown: string, actual: string): boolean {
  const a = squeeze(actual);
  if (!shown.includes("…")) return a === squeeze(shown);
  const pieces = shown.split("…").map(squeeze);
  if (!a.startsWith(pieces[0]!) || !a.endsWith(pieces.at(-1)!)) return false;
  let at = 0;
  for (const piece of pieces.filter((p) => p !== "")) {
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

/**
 * What keeps `lines` from being exactly the shown lines, one for one in any order: the first
 * shown line without an output line, or the first output line left over; null when none.
 */
export function mismatch(shown: readonly string[], lines: readonly string[]): string | null {
  const left = [...lines];
  for (const s of shown) {
    const i = left.findIndex((l) => lineMatches(s, l));
    if (i < 0) return `missing ${JSON.stringify(s)}`;
    left.splice(i, 1);
  }
  return left.length === 0 ? null : `not shown ${JSON.stringify(left[0])}`;
}

// ---------------------------------------------------------------------------------------------
// Processes

/** A command of the page, running; its output can be awaited. */
export class Running {
  out = "";
  err = "";
  readonly exited: Promise<number>;
  readonly #wake = new Set<() => void>();
  constructor(
    readonly name: string,
    readonly text: string,
    readonly p: Subprocess,
    readonly waitMs: number,
  ) {
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

  /** Calls `f` on every chunk of output and at exit, until the returned function is called. */
  onChange(f: () => void): () => void {
    this.#wake.add(f);
    return () => this.#wake.delete(f);
  }

  describe(): string {
    return `${this.name} (${this.text})\n--- stdout:\n${this.out}\n--- stderr:\n${this.err}`;
  }

  /** SIGINT or SIGKILL to its process group (as a terminal's Ctrl-C reaches a whole pipeline). */
  signal(sig: "SIGINT" | "SIGKILL"): void {
    if (this.p.exitCode !== null || this.p.signalCode !== null) return;
    try {
      process.kill(-this.p.pid, sig);
    } catch {
      this.p.kill(sig); // the group is gone: the process alone
    }
  }

  /** Resolves once `done()` holds (checked on every chunk of output and at exit). */
  until(done: () => boolean, what: () => string, ms = this.waitMs): Promise<void> {
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

  async code(ms = this.waitMs): Promise<number> {
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

/** Resolves once `done()` holds, checked whenever one of `procs` prints or exits; bounded. */
export function waitAll(
  procs: readonly Running[],
  done: () => boolean,
  what: () => string,
  ms: number,
): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const offs: (() => void)[] = [];
    const finish = () => {
      clearTimeout(timer);
      for (const off of offs) off();
    };
    let ended = 0;
    const check = () => {
      if (done()) {
        finish();
        resolvePromise();
      } else if (ended === procs.length) {
        finish();
        reject(
          new Error(`${what()}: all exited first\n${procs.map((r) => r.describe()).join("\n")}`),
        );
      }
    };
    const timer = setTimeout(() => {
      finish();
      reject(
        new Error(`${what()}: not within ${ms} ms\n${procs.map((r) => r.describe()).join("\n")}`),
      );
    }, ms);
    for (const r of procs) {
      offs.push(r.onChange(check));
      void r.exited.then(() => {
        ended++;
        check();
      });
    }
    check();
  });
}

/** `n` distinct UDP ports that were free a moment ago on 127.0.0.1. */
export async function freePorts(n: number): Promise<number[]> {
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

/** A page to run, and what the run changes on it. */
export interface PageOptions {
  /** The page, relative to the repository root: "docs/quickstart.md". */
  readonly page: string;
  /** The ports the page uses; each is replaced by a free port on 127.0.0.1. */
  readonly ports: readonly string[];
  /**
   * Replacements made before the ports' in every command, line shown, written file and
   * environment value, in order: a string everywhere it occurs, a RegExp as `String.replace`.
   */
  readonly substitutions?: readonly (readonly [string | RegExp, string])[];
  /** Where the commands run (default: the repository root). */
  readonly cwd?: string;
  /** Environment for every command, over the test's own (ports in values are replaced). */
  readonly env?: Readonly<Record<string, string>>;
  /** How long a line may take to appear or a process to exit (default `WAIT_MS`). */
  readonly waitMs?: number;
}

/** Runs the directives of one page, in order; `stop()` ends whatever is still running. */
export class PageRun {
  readonly md: string;
  readonly directives: Directive[];
  readonly running = new Map<string, Running>();
  #ports: number[] = [];

  constructor(readonly o: PageOptions) {
    this.md = readFileSync(resolve(ROOT, o.page), "utf8");
    this.directives = directives(this.md, o.page);
  }

  /** The free port that stands for a page port. */
  port(pagePort: string): number {
    const i = this.o.ports.indexOf(pagePort);
    if (i < 0 || this.#ports[i] === undefined) throw new Error(`no free port for ${pagePort}`);
    return this.#ports[i]!;
  }

  /** A command, line or file of the page as it runs here (substitutions, then free ports). */
  local(s: string): string {
    for (const [from, to] of this.o.substitutions ?? []) {
      s = typeof from === "string" ? s.replaceAll(from, to) : s.replace(from, to);
    }
    if (this.o.ports.length === 0) return s;
    const re = new RegExp(`\\b(${this.o.ports.join("|")})\\b`, "g");
    return s.replace(re, (p) => String(this.port(p)));
  }

  /** The commands the page names (steps), in order. */
  commands(): StepCommand[] {
    return this.directives.flatMap((d) => d.kind === "step" ? d.commands : []);
  }

  /**
   * Every name used by output, stdout, ctrl-c and exit is a command of an earlier step; names
   * are not reused. Returns the problems, as `page:line: …`.
   */
  nameProblems(): string[] {
    const problems: string[] = [];
    const known = new Set<string>();
    for (const d of this.directives) {
      const where = `${this.o.page}:${d.line}`;
      if (d.kind === "step") {
        for (const c of d.commands) {
          if (known.has(c.name)) problems.push(`${where}: ${c.name} is named twice`);
          known.add(c.name);
        }
      }
      const used = d.kind === "output" || d.kind === "stdout" || d.kind === "ctrl-c"
        ? d.names
        : d.kind === "exit"
        ? [d.name]
        : [];
      for (const n of used.flatMap((u) => u.split("+"))) {
        if (!known.has(n)) problems.push(`${where}: ${n} was not started`);
      }
    }
    return problems;
  }

  /** Every `macula` command line of the steps and not-run blocks the parser refuses. */
  async parseProblems(): Promise<string[]> {
    const problems: string[] = [];
    for (const d of this.directives) {
      const lines = d.kind === "step"
        ? d.commands.map((c) => c.text)
        : d.kind === "not-run"
        ? d.lines
        : [];
      for (const l of lines) {
        for (const args of maculaCommands(l)) {
          const why = await parseProblem(args);
          if (why !== null) problems.push(`${this.o.page}:${d.line}: ${l}: ${why}`);
        }
      }
    }
    return problems;
  }

  #start(name: string, text: string): Running {
    const line = this.local(text);
    const words = shellWords(line);
    const env: Record<string, string> = {
      ...process.env as Record<string, string>,
      MACULA_URL: "",
      MACULA_CREDS: "",
      NO_COLOR: "1",
      DENO_NO_UPDATE_CHECK: "1",
      DENO_NO_PROMPT: "1",
    };
    for (const [k, v] of Object.entries(this.o.env ?? {})) env[k] = this.local(v);
    let argv: string[] | undefined;
    if (words !== null) {
      while (words.length > 0 && /^[A-Z_]+=/.test(words[0]!)) {
        const [k, ...v] = words.shift()!.split("=");
        env[k!] = v.join("=");
      }
      const [tool, ...args] = words;
      argv = tool === "macula"
        ? [process.execPath, join(ROOT, "cli/main.ts"), ...args]
        : tool === "bun"
        ? [process.execPath, ...args]
        : tool === "deno"
        ? [DENO, ...args]
        : undefined;
    }
    if (argv === undefined) {
      const script = [
        `macula() { "$MACULA_BUN" "$MACULA_ROOT/cli/main.ts" "$@"; }`,
        `bun() { "$MACULA_BUN" "$@"; }`,
        `jq() { command jq --unbuffered "$@"; }`,
        line.replace(/\s*&$/, ""),
      ].join("\n");
      argv = ["sh", "-c", script];
      env.PATH = `${join(ROOT, "node_modules/.bin")}:${env.PATH ?? ""}`;
      env.MACULA_BUN = process.execPath;
      env.MACULA_ROOT = ROOT;
    }
    const p = Bun.spawn({
      cmd: argv,
      cwd: this.o.cwd ?? ROOT,
      env,
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      detached: true, // a process group of its own, as in a terminal
    });
    const r = new Running(name, text, p, this.o.waitMs ?? WAIT_MS);
    this.running.set(name, r);
    return r;
  }

  #proc(name: string): Running {
    const r = this.running.get(name);
    if (r === undefined) throw new Error(`${name} was never started`);
    return r;
  }

  /** Runs every directive in page order, asserting as it goes. */
  async run(): Promise<void> {
    this.#ports = await freePorts(this.o.ports.length);
    const finalChecks: (() => void)[] = [];
    for (const d of this.directives) {
      const where = `${this.o.page}:${d.line}`;
      if (d.kind === "step") {
        for (const c of d.commands) {
          const r = this.#start(c.name, c.text);
          if (c.background === "job") {
            await r.until(() => r.out.includes("\n"), () => `${where}: ${c.name} started`);
          } else if (c.background === "terminal") {
            await r.until(
              () => r.out.includes("\n") || r.err.includes("\n"),
              () => `${where}: ${c.name} started`,
            );
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
        const shown = d.shown.map((l) => this.local(l));
        for (const name of d.names) {
          const procs = name.split("+").map((n) => this.#proc(n));
          let missing: string | null = null;
          await waitAll(
            procs,
            () => (missing = unmatched(shown, procs.map((r) => r.output).join("\n"))) === null,
            () => `${where}: ${name} should print ${JSON.stringify(missing)}`,
            this.o.waitMs ?? WAIT_MS,
          );
        }
      } else if (d.kind === "stdout") {
        // Waited for until every shown line is there; checked again when the page is done, so
        // that a line that came later (a message delivered twice) fails too.
        const shown = d.shown.map((l) => this.local(l));
        const procs = d.names.map((n) => this.#proc(n));
        const lines = () => procs.flatMap((r) => r.out.split("\n").filter((l) => l.trim() !== ""));
        let wrong: string | null = null;
        await waitAll(
          procs,
          () => !(wrong = mismatch(shown, lines()))?.startsWith("missing"),
          () => `${where}: ${d.names.join(", ")} should print ${wrong}`,
          this.o.waitMs ?? WAIT_MS,
        );
        const check = () =>
          expect([where, mismatch(shown, lines()), procs.map((r) => r.describe())]).toEqual([
            where,
            null,
            procs.map((r) => r.describe()),
          ]);
        check();
        finalChecks.push(check);
      } else if (d.kind === "ctrl-c") {
        for (const name of d.names) this.#proc(name).signal("SIGINT");
      } else if (d.kind === "exit") {
        const r = this.#proc(d.name);
        const code = await r.code();
        expect([where, d.name, code, r.describe()]).toEqual([where, d.name, d.code, r.describe()]);
      } else if (d.kind === "write") {
        const text = this.local(d.text).replaceAll(
          'from "macula"',
          `from ${JSON.stringify(join(ROOT, "mod.ts"))}`,
        );
        writeFileSync(join(this.o.cwd ?? ROOT, d.path), text);
      }
    }
    for (const check of finalChecks) check();
  }

  /** The commands still running (the page should have stopped each one it started). */
  stillRunning(): string[] {
    return [...this.running.values()]
      .filter((r) => r.p.exitCode === null && r.p.signalCode === null)
      .map((r) => r.name);
  }

  /** Kills whatever is still running and waits for it. */
  async stop(): Promise<void> {
    for (const r of this.running.values()) r.signal("SIGKILL");
    await Promise.all([...this.running.values()].map((r) => r.exited.catch(() => 0)));
  }
}
