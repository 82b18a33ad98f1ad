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
  /** `bare`: print `<prefix>: <message>` without the word "error:". */
  constructor(message: string, readonly exitCode: number = FAILED, readonly bare = false) {
    super(message);
  }
}

/** A usage failure (exit code 2). */
export const usage = (message: string) => new CliFailure(message, USAGE);

/**
 * Wraps a command body: a thrown error becomes `<prefix>: error: <message>` on stderr and the
 * error's exit code (CliFailure) or 1. Commander's own errors pass through.
 */
export function guarded<A extends unknown[]>(prefix: string, body: (...args: A) => unknown) {
  return async (...args: A): Promise<void> => {
    try {
      await body(...args);
    } catch (e) {
      if (e instanceof CommanderError) throw e;
      const message = e instanceof Error ? e.message : String(e);
      const code = e instanceof CliFailure ? e.exitCode : FAILED;
      const bare = e instanceof CliFailure && e.bare;
      process.stderr.write(`${prefix}: ${bare ? "" : "error: "}${message}\n`);
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
Where to connect: --server, else ${ENV.url}, else --context / the current context, else
quic://127.0.0.1:4433. Credentials: --creds, else ${ENV.creds}, else the context's, else
./macula-data/client (what 'macula node up' writes in the dev realm).`;

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
    const message = (e as Error).message;
    if (message.startsWith("credentials")) {
      throw new CliFailure(
        `${message}\n  (credentials from ${t.credsSource}; a dev node writes them to ` +
          `<data-dir>/client: run 'macula node up' and pass the --creds it prints)`,
      );
    }
    const why = message.replace(/^connecting to \S+: /, "");
    throw new CliFailure(
      `cannot connect to ${t.url} (from ${t.source}): ${why}\n` +
        `  is a node running there? start one with 'macula node up', or point --server, ` +
        `${ENV.url} or --context at a running node`,
    );
  }
}

/** Resolves on the first SIGINT or SIGTERM; the handlers are removed afterwards. */
export function untilSignal(): { done: Promise<string>; cancel: () => void } {
  let cancel = () => {};
  const done = new Promise<string>((resolve) => {
    const on = (sig: string) => () => {
      cancel();
      resolve(sig);
    };
    const int = on("SIGINT");
    const term = on("SIGTERM");
    process.on("SIGINT", int);
    process.on("SIGTERM", term);
    cancel = () => {
      process.off("SIGINT", int);
      process.off("SIGTERM", term);
    };
  });
  return { done, cancel };
}

/** Writes to stdout, waiting for it to drain when its buffer is full. */
export async function out(text: string | Uint8Array): Promise<void> {
  if (!process.stdout.write(text)) {
    await new Promise<void>((r) => process.stdout.once("drain", () => r()));
  }
}

/** Reads all of stdin. */
export async function readStdin(limit: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let n = 0;
  for await (const chunk of process.stdin) {
    const c = chunk as Uint8Array;
    n += c.length;
    if (n > limit) throw usage(`stdin is over ${limit} bytes, the node's payload limit`);
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
