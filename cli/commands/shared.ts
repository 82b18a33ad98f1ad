/**
 * Helpers shared by the client commands (`pub`, `sub`, `call`, `serve`) and `node`: argument
 * parsers, the error → exit code mapping, connecting with a clear failure message, and waiting
 * for SIGINT/SIGTERM.
 */
import {
  type Command,
  CommanderError,
  InvalidArgumentError,
  Option,
  type OptionValues,
} from "@commander-js/extra-typings";
import { isIPv4, isIPv6 } from "node:net";
import process from "node:process";
import {
  type Client,
  type ClientStatus,
  connect,
  ContextError,
  ENV,
  resolveTarget,
  type Target,
} from "../../lib/client/mod.ts";
import { parseUrl, UrlError } from "../../lib/peer/mod.ts";
import {
  checkPattern,
  checkProcedure,
  checkQueueGroup,
  checkTopic,
} from "../../lib/messaging/mod.ts";

/** Exit code of a usage error (bad argument, bad input, bad configuration). */
export const USAGE = 2;
/** Exit code of a run-time failure. */
export const FAILED = 1;

/** A failure that ends a command with `exitCode`; its message is printed once. */
export class CliFailure extends Error {
  constructor(message: string, readonly exitCode: number = FAILED) {
    super(message);
  }
}

/** A usage failure (exit code 2). */
export const usage = (message: string) => new CliFailure(message, USAGE);

/**
 * Wraps a command body: a thrown error becomes `<prefix>: <message>` on stderr (the prefix is
 * the command path, e.g. `macula context add`) and the error's exit code (CliFailure) or 1.
 * Commander's own errors pass through.
 */
export function guarded<A extends unknown[]>(prefix: string, body: (...args: A) => unknown) {
  return async (...args: A): Promise<void> => {
    try {
      await body(...args);
    } catch (e) {
      if (e instanceof CommanderError) throw e;
      if (e instanceof StdoutClosed) return; // `| head -1`: a quiet end, status 0
      const message = e instanceof Error ? e.message : String(e);
      const code = e instanceof CliFailure ? e.exitCode : FAILED;
      process.stderr.write(`${prefix}: ${message}\n`);
      throw new CommanderError(code, "macula.failed", message);
    }
  };
}

/** Converts a lib check (which throws) into a commander argument parser. */
function checked(check: (v: string) => unknown) {
  return (v: string): string => {
    try {
      check(v);
    } catch (e) {
      throw new InvalidArgumentError((e as Error).message);
    }
    return v;
  };
}

export const topicArg = checked(checkTopic);
export const patternArg = checked(checkPattern);
export const procedureArg = checked(checkProcedure);
export const queueArg = checked(checkQueueGroup);

/** `--server`: a quic:// URL, normalized. */
export function serverArg(v: string): string {
  try {
    return parseUrl(v, "--server").url;
  } catch (e) {
    if (e instanceof UrlError) throw new InvalidArgumentError(e.message);
    throw e;
  }
}

/** A whole number from `min` to `max`. */
export function intArg(min: number, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`give a whole number from ${min} to ${max}`);
    }
    return n;
  };
}

/**
 * `--listen`, the one address flag of every command that binds a socket (node up, stun serve,
 * netcheck, stun query): `host:port`, `[v6]:port`, `:port` or a bare host (the port from the
 * file or the default); `--port` sets the port alone.
 */
export function parseListen(v: string): { host?: string; port?: number } {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\[\]]*))(?::(\d{1,5}))?$/.exec(v.trim());
  const bad = (why: string): never => {
    throw new InvalidArgumentError(
      `${JSON.stringify(v)}: ${why} (e.g. 0.0.0.0:4433, 127.0.0.1:0, [::]:4433)`,
    );
  };
  if (!m) {
    if (isIPv6(v)) bad("put an IPv6 address in brackets");
    return bad("expected host:port");
  }
  const host = m[1] ?? m[2] ?? "";
  if (m[1] !== undefined && !isIPv6(host)) bad(`${host} is not an IPv6 address`);
  if (m[2] !== undefined && host !== "" && !isIPv4(host) && !/^[A-Za-z0-9.-]+$/.test(host)) {
    bad(`${JSON.stringify(host)} is not a host`);
  }
  const out: { host?: string; port?: number } = {};
  if (host !== "") out.host = host;
  if (m[3] !== undefined) {
    const port = Number(m[3]);
    if (port > 65535) bad("the port must be 0-65535");
    out.port = port;
  }
  if (out.host === undefined && out.port === undefined) bad("expected host:port");
  return out;
}

/** Adds `-l, --listen <host:port>` and `-p, --port <n>` (the port alone) to a command. */
// deno-lint-ignore no-explicit-any
export function withListen<A extends any[], O extends OptionValues>(
  c: Command<A, O>,
  what: string,
  defaults: { host: string; port: number },
) {
  const at = defaults.host.includes(":") ? `[${defaults.host}]` : defaults.host;
  return c
    .addOption(
      new Option("-l, --listen <host:port>", `${what} (default ${at}:${defaults.port})`)
        .argParser(parseListen),
    )
    .addOption(
      new Option("-p, --port <n>", `the port alone (0 = a free port)`).argParser(
        intArg(0, 65535),
      ),
    );
}

/**
 * The address of `--listen` / `--port` over `defaults`; the host must be an IP address (these
 * commands bind raw sockets, no name lookups).
 */
export function listenOf(
  o: { listen?: { host?: string; port?: number }; port?: number },
  defaults: { host: string; port: number },
): { host: string; port: number } {
  const host = o.listen?.host ?? defaults.host;
  if (!isIPv4(host) && !isIPv6(host)) throw usage(`--listen ${host}: give an IP address`);
  if (o.port !== undefined && o.listen?.port !== undefined && o.port !== o.listen.port) {
    throw usage(`--port ${o.port} and --listen ${o.listen.port} disagree: give one`);
  }
  return { host, port: o.port ?? o.listen?.port ?? defaults.port };
}

/** A positive number (may be fractional) up to `max`. */
export function rateArg(v: string): number {
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n) || n <= 0 || n > 1_000_000) {
    throw new InvalidArgumentError("give messages per second, a number above 0 up to 1000000");
  }
  return n;
}

/** Options every client command takes. */
export interface TargetOptions {
  server?: string;
  creds?: string;
  context?: string;
  connectTimeout: number;
}

/** Adds the options every client command takes: --server, --creds, --context, --connect-timeout. */
// deno-lint-ignore no-explicit-any
export function withTarget<A extends any[], O extends OptionValues>(c: Command<A, O>) {
  return c
    .addOption(
      new Option("-s, --server <url>", `node address, quic://host:port (else ${ENV.url}, context)`)
        .argParser(serverArg),
    )
    .addOption(new Option("--creds <dir>", "credentials directory: ca.pem, cert.pem, key.pem"))
    .addOption(new Option("--context <name>", "use this saved context (see 'macula context')"))
    .addOption(
      new Option("--connect-timeout <ms>", "give up connecting after this long")
        .argParser(intArg(100, 600_000))
        .default(5000),
    );
}

export const TARGET_HELP = `
Where to connect (a flag beats the environment): --server, else --context, else ${ENV.url},
else the current context, else quic://127.0.0.1:4433. Credentials: --creds, else --context's,
else ${ENV.creds}, else the current context's, else ./macula-data/client (what
'macula node up' writes in the dev realm).`;

/** Resolves the target; a bad --context, MACULA_URL or context entry is a usage error. */
export function target(o: TargetOptions): Target {
  try {
    return resolveTarget({
      ...(o.server !== undefined ? { server: o.server } : {}),
      ...(o.creds !== undefined ? { creds: o.creds } : {}),
      ...(o.context !== undefined ? { context: o.context } : {}),
    });
  } catch (e) {
    if (e instanceof ContextError || e instanceof UrlError) throw usage(e.message);
    throw e;
  }
}

/**
 * Connects to the target. Status changes after the first connection are reported on stderr
 * as `<prefix>: <status>: <detail>`. Failures name the URL and what to do.
 */
export async function connectTo(
  prefix: string,
  t: Target,
  o: TargetOptions,
  /** What the node refused (`ERROR`); default: a line on stderr. */
  onError: (err: Error) => void = (err) => process.stderr.write(`${prefix}: ${err.message}\n`),
): Promise<Client> {
  let client: Client | undefined;
  try {
    client = await connect({
      url: t.url,
      creds: t.creds,
      connectTimeoutMs: o.connectTimeout,
      onStatus: (status: ClientStatus, detail: string) => {
        // Nothing before the first connection (a failure is reported once, below), and nothing
        // once closed (a reconnect attempt in flight may still report).
        if (client === undefined || client.status === "closed" || status === "closed") return;
        process.stderr.write(`${prefix}: ${status}: ${detail}\n`);
      },
      onError,
    });
    return client;
  } catch (e) {
    throw new CliFailure(connectFailure(t, (e as Error).message));
  }
}

/**
 * Why connecting to `t` failed, said once (the client's own "cannot connect to <url>: " is not
 * repeated), with the hint that fits the cause and none when no hint is right.
 */
export function connectFailure(t: Target, message: string): string {
  if (message.startsWith("credentials: cannot read")) {
    const from = t.credsSource === "default" ? "the default directory" : t.credsSource;
    return `${message} (from ${from})\n  a dev node writes client credentials to ` +
      `<data-dir>/client: run 'macula node up' and pass the --creds it prints`;
  }
  if (message.startsWith("credentials")) return message;
  const why = message.replace(/^(cannot connect to|connecting to) \S+: /, "");
  const head = `cannot connect to ${t.url} (from ${t.source})`;
  const other =
    `  use credentials issued by that node's realm CA (--creds, ${ENV.creds} or --context)`;
  if (/closed locally: TLS alert unknown_ca/.test(why)) {
    return `${head}: the node's certificate is not signed by the CA in ${t.creds}/ca.pem ` +
      `(TLS unknown_ca): it belongs to another realm or CA\n${other}`;
  }
  if (/closed by peer: TLS alert (unknown_ca|bad_certificate|certificate_unknown)/.test(why)) {
    return `${head}: the node does not accept the certificate in ${t.creds}/cert.pem ` +
      `(${/TLS alert (\w+)/.exec(why)![1]}): it is not signed by the node's realm CA\n${other}`;
  }
  if (/no answer within \d+ ms$/.test(why)) {
    return `${head}: ${why}\n  is a node running there? start one with 'macula node up', or ` +
      `point --server, ${ENV.url} or --context at a running node`;
  }
  return `${head}: ${why}`;
}

/**
 * The signals that stop a command, with their numbers (a shell reports 128 + the number):
 * Ctrl-C, SIGTERM, a hangup (the terminal closed, the ssh connection dropped) and Ctrl-\
 * (SIGQUIT). Unhandled, the last two kill the process without its clean-up: serve's handler
 * groups would be left running.
 */
const STOP_SIGNALS = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGTERM: 15 } as const;
/** SIGINT (Ctrl-C), SIGTERM, SIGHUP or SIGQUIT. */
export type StopSignal = keyof typeof STOP_SIGNALS;
/** How long a command may take to stop after the first signal, before it exits anyway. */
export const STOP_GRACE_MS = 1000;

/**
 * The exit code of a command ended by `sig`: 128 + its number (129 for SIGHUP, 130 SIGINT,
 * 131 SIGQUIT, 143 SIGTERM).
 */
export function signalExitCode(sig: StopSignal): number {
  return 128 + STOP_SIGNALS[sig];
}

/** What `untilSignal` returns. */
export interface SignalWait {
  /** Resolves with the first stop signal (SIGINT, SIGTERM, SIGHUP or SIGQUIT). */
  readonly done: Promise<StopSignal>;
  /** The first signal, once one came. */
  readonly received: StopSignal | null;
  /**
   * The command is ending on its own: the handlers go (a later signal has its default effect).
   * After a signal the handlers stay, so that a second one still ends a stop that hangs.
   */
  cancel(): void;
}

/**
 * Waits for SIGINT, SIGTERM, SIGHUP or SIGQUIT. The first one starts a clean stop: `done`
 * resolves, and if the process has not exited `graceMs` later it exits anyway, with
 * `process.exitCode` when the command set one, else `exitCode(signal)` (default 0), saying so on
 * stderr under `prefix`. A second signal exits at once with 128 + its number (130 for a second
 * Ctrl-C). Either way the process exits through `process.exit`, so its exit hooks run (serve's
 * kills what its handlers left).
 */
export function untilSignal(
  o: { graceMs?: number; exitCode?: (sig: StopSignal) => number; prefix?: string } = {},
): SignalWait {
  const graceMs = o.graceMs ?? STOP_GRACE_MS;
  let received: StopSignal | null = null;
  let resolve!: (sig: StopSignal) => void;
  const done = new Promise<StopSignal>((r) => (resolve = r));
  const on = (sig: StopSignal) => {
    if (received !== null) process.exit(signalExitCode(sig));
    received = sig;
    const late = setTimeout(() => {
      if (o.prefix) {
        process.stderr.write(`${o.prefix}: did not stop within ${graceMs} ms of ${sig}; exiting\n`);
      }
      process.exit(process.exitCode ?? o.exitCode?.(sig) ?? 0);
    }, graceMs);
    late.unref(); // only a bound: an exit on time is not held up by it
    resolve(sig);
  };
  const handlers = (Object.keys(STOP_SIGNALS) as StopSignal[]).map((sig) => {
    const h = () => on(sig);
    process.on(sig, h);
    return [sig, h] as const;
  });
  return {
    done,
    get received() {
      return received;
    },
    cancel: () => {
      if (received !== null) return;
      for (const [sig, h] of handlers) process.off(sig, h);
    },
  };
}

/**
 * Thrown by `out` once the reader of stdout has gone (`macula sub '>' | head -1`): the command
 * should clean up and end quietly, exit 0 (the process exits within `STOP_GRACE_MS` anyway).
 * Nothing more can be written.
 */
export class StdoutClosed extends Error {
  constructor() {
    super("stdout was closed by its reader");
  }
}

/** What became of stdout: an error event latches here (once `out` has written). */
let stdoutState: { failure: Error | null; wake: Set<() => void> } | null = null;

function watchStdout(): { failure: Error | null; wake: Set<() => void> } {
  if (stdoutState) return stdoutState;
  const s: { failure: Error | null; wake: Set<() => void> } = { failure: null, wake: new Set() };
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    const closed = e.code === "EPIPE" || e.code === "ERR_STREAM_DESTROYED";
    if (closed && s.failure === null) {
      // The command gets to clean up (its next `out` throws), within the same bound as a stop.
      setTimeout(() => process.exit(process.exitCode ?? 0), STOP_GRACE_MS).unref();
    }
    s.failure ??= closed
      ? new StdoutClosed()
      : new CliFailure(`cannot write to stdout: ${e.message}`);
    for (const w of s.wake) w();
  });
  return (stdoutState = s);
}

/**
 * Writes to stdout, waiting for it to drain when its buffer is full. Throws `StdoutClosed` once
 * the reader went away (EPIPE), and a `CliFailure` for any other write error (a full disk).
 */
export async function out(text: string | Uint8Array): Promise<void> {
  const s = watchStdout();
  if (s.failure) throw s.failure;
  if (process.stdout.write(text)) return;
  if (s.failure) throw s.failure; // the write failed at once
  await new Promise<void>((resolve) => {
    const go = () => {
      process.stdout.off("drain", go);
      s.wake.delete(go);
      resolve();
    };
    process.stdout.on("drain", go);
    s.wake.add(go);
  });
  if (s.failure) throw s.failure;
}

/** Reads all of stdin; more than `limit` bytes is a usage error, `why` saying why it is the limit. */
export async function readStdin(limit: number, why: string): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let n = 0;
  for await (const chunk of process.stdin) {
    const c = chunk as Uint8Array;
    n += c.length;
    if (n > limit) {
      process.stdin.destroy();
      throw usage(`stdin is over ${limit} bytes, ${why}`);
    }
    chunks.push(c);
  }
  const all = new Uint8Array(n);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  return all;
}

/** One line of stdin, as `stdinLines` yields it. */
export interface StdinLine {
  /** Its bytes, without the line feed; null when it is longer than the `max` it was read with. */
  readonly bytes: Uint8Array | null;
  /** Its length in bytes. */
  readonly length: number;
}

/**
 * The lines of `input` (stdin) as raw bytes: split on each line feed (0x0A), which is removed;
 * every other byte is kept as it is (a `\r` before the line feed too, and bytes that are not
 * UTF-8). The text after the last line feed is a line unless it is empty. A line longer than
 * `max` bytes is not held: it comes with its length and no bytes. Ends early, at once, when
 * `signal` aborts; `input` is destroyed when the iteration ends.
 */
export async function* stdinLines(
  max: number,
  signal: AbortSignal,
  input: NodeJS.ReadableStream & { destroy(): void } = process.stdin,
): AsyncGenerator<StdinLine> {
  const it = (input as AsyncIterable<Uint8Array | string>)[Symbol.asyncIterator]();
  const aborted = new Promise<"aborted">((resolve) => {
    if (signal.aborted) resolve("aborted");
    signal.addEventListener("abort", () => resolve("aborted"), { once: true });
  });
  let parts: Uint8Array[] = [];
  let length = 0;
  const line = (): StdinLine => {
    let bytes: Uint8Array | null = null;
    if (length <= max) {
      bytes = new Uint8Array(length);
      let at = 0;
      for (const p of parts) {
        bytes.set(p, at);
        at += p.length;
      }
    }
    parts = [];
    const l = { bytes, length };
    length = 0;
    return l;
  };
  /** Adds a piece of the current line (kept only while the line is within `max`). */
  const add = (piece: Uint8Array) => {
    length += piece.length;
    if (length <= max) parts.push(piece);
    else parts = [];
  };
  try {
    while (!signal.aborted) {
      const next = it.next();
      next.catch(() => {}); // settles after an abort, unread
      const r = await Promise.race([next, aborted]);
      if (r === "aborted" || r.done) break;
      const chunk = typeof r.value === "string" ? Buffer.from(r.value) : r.value;
      let from = 0;
      for (let nl = chunk.indexOf(0x0a); nl >= 0; nl = chunk.indexOf(0x0a, from)) {
        add(chunk.subarray(from, nl));
        from = nl + 1;
        yield line();
        if (signal.aborted) return;
      }
      if (from < chunk.length) add(chunk.subarray(from));
    }
    if (!signal.aborted && length > 0) yield line();
  } finally {
    input.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// Node ids: a unique prefix stands for the whole id

/** A member as the node's `inspect.members` answers it (`macula inspect members --json`). */
export interface MemberRow {
  id: string;
  /** `quic://host:port`, as the member signed it. */
  addr: string;
  state: "alive" | "suspect" | "dead" | "left";
  inc: number;
  /** How long ago the state last changed. */
  sinceMs: number;
  /** How long ago the node last heard from it (null: never; 0 for itself). */
  lastSeenMs: number | null;
  self: boolean;
  meta: { realm?: string; tags: string[]; version: string };
}

const NODE_ID_LENGTH = 52;
/** How many candidates an ambiguous prefix names (the rest are counted). */
export const MAX_CANDIDATES = 10;

/**
 * The argument parser of every `<node-id>`: a node id (52 characters of a-z and 2-7) or a
 * prefix of one, which `resolveNodeId` completes against the members the node knows.
 * Upper case is taken as lower case (base32 has one case).
 */
export function nodeIdArg(v: string): string {
  const text = v.trim().toLowerCase();
  if (!new RegExp(`^[a-z2-7]{1,${NODE_ID_LENGTH}}$`).test(text)) {
    throw new InvalidArgumentError(
      `give a node id or a unique prefix of one: up to ${NODE_ID_LENGTH} characters of a-z and ` +
        `2-7 (see 'macula inspect members')`,
    );
  }
  return text;
}

/** The failure of an id or prefix that no member the node knows has (exit 1). */
export function notAMember(text: string): CliFailure {
  return new CliFailure(
    `${text} is not a member the node knows\n` +
      `  ('macula inspect members' lists the members it knows)`,
  );
}

/**
 * The one member whose id starts with `text` (a whole id is its own prefix). None: "not a member
 * the node knows" (exit 1). Several: a usage error (exit 2) naming them (the first
 * `MAX_CANDIDATES`, by id, with address and state), so that the user can give more of the id.
 */
export function matchNodeId(text: string, members: readonly MemberRow[]): string {
  const hits = members.filter((m) => m.id.startsWith(text)).sort((a, b) =>
    a.id < b.id ? -1 : a.id > b.id ? 1 : 0
  );
  if (hits.length === 0) throw notAMember(text);
  if (hits.length === 1) return hits[0]!.id;
  const shown = hits.slice(0, MAX_CANDIDATES).map((m) =>
    `  ${m.id}  ${m.addr.replace(/^quic:\/\//, "")}  ${m.state}`
  );
  const more = hits.length - shown.length;
  throw usage(
    `node id prefix "${text}" is ambiguous: ${hits.length} members the node knows start with it\n` +
      `${shown.join("\n")}${more > 0 ? `\n  … and ${more} more` : ""}\n` +
      `  give more characters of the id`,
  );
}

/**
 * Completes a node id given as a prefix (`nodeIdArg`) against the members the attached node
 * knows (one `inspect.members` request). A whole id goes as it is: the node itself says
 * whether it knows it, without the list.
 */
export async function resolveNodeId(
  client: Client,
  text: string,
  timeoutMs?: number,
): Promise<string> {
  if (text.length === NODE_ID_LENGTH) return text;
  const rows = (await client.inspect("members", timeoutMs)) as MemberRow[];
  return matchNodeId(text, rows);
}

// ---------------------------------------------------------------------------------------------
// Watching: one view redrawn until Ctrl-C

/**
 * Ends a command with `code` and nothing on stderr (what it had to say is on stdout): a watch
 * or a ping stopped by Ctrl-C exits 130 this way.
 */
export function quietExit(code: number): CommanderError {
  return new CommanderError(code, "macula.stopped", "");
}

/** Waits `ms`, or less when `signal` aborts first. */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0 || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/** Clears a terminal and puts the cursor top left (ECMA-48: CUP, then ED 2). */
export const CLEAR_SCREEN = "\x1b[H\x1b[2J";

/** How `watch` shows its snapshots. */
export interface WatchOptions {
  /** The command path, for errors and the terminal's header line. */
  prefix: string;
  intervalMs: number;
  /** Stop after this many snapshots (tries); default: until a signal. */
  count?: number;
  /** One JSON document per line, whatever stdout is. */
  json: boolean;
  /** stdout is a terminal: clear and redraw (not with `json`). */
  tty: boolean;
}

/**
 * Takes a snapshot every `intervalMs` (from the start of one to the start of the next) with
 * `take`, and shows it: on a terminal, the screen is cleared and redrawn under a header line
 * (`Every 1000 ms: <prefix>  <time>`); otherwise each snapshot follows the last, after a line
 * `--- <ISO time>` (with `json`: one document per line, nothing else). A snapshot that fails
 * is said on stderr (once until one succeeds again) and the watch goes on. Ends after `count`
 * snapshots (exit 1 when the last one failed), or at the first stop signal: exit 128 + its
 * number (130 for Ctrl-C), with nothing more said. Each `take` is bounded by its own deadline.
 */
export async function watch(o: WatchOptions, take: () => Promise<string>): Promise<void> {
  const signal = untilSignal({ prefix: o.prefix, exitCode: signalExitCode });
  const stop = new AbortController();
  void signal.done.then(() => stop.abort());
  const stopped = new Promise<"stopped">((r) => void signal.done.then(() => r("stopped")));
  let lastError: string | null = null;
  try {
    for (let i = 1; o.count === undefined || i <= o.count; i++) {
      const started = performance.now();
      let text: string | "stopped";
      try {
        text = await Promise.race([take(), stopped]);
        lastError = null;
      } catch (e) {
        if (e instanceof CommanderError) throw e;
        const message = (e as Error).message;
        if (message !== lastError) process.stderr.write(`${o.prefix}: ${message}\n`);
        lastError = message;
        text = "";
      }
      if (text === "stopped" || signal.received) break;
      if (lastError === null) {
        if (o.json) await out(`${text}\n`);
        else if (o.tty) {
          const when = new Date().toLocaleTimeString();
          await out(`${CLEAR_SCREEN}Every ${o.intervalMs} ms: ${o.prefix}  ${when}\n\n${text}\n`);
        } else await out(`--- ${new Date().toISOString()}\n${text}\n`);
      }
      if (o.count !== undefined && i === o.count) break;
      await pause(o.intervalMs - (performance.now() - started), stop.signal);
      if (signal.received) break;
    }
  } finally {
    signal.cancel();
  }
  if (signal.received) throw quietExit(signalExitCode(signal.received));
  if (lastError !== null) throw quietExit(FAILED);
}
