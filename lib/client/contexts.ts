/**
 * Saved client contexts, like the nats CLI's: a named node address plus the credentials to
 * reach it, one of them current. Client commands (`pub`, `sub`, `call`, …) call
 * {@link resolveTarget} to learn where to connect and with which credentials.
 *
 * The store is one JSON file, `contexts.json`, in the config directory ({@link configDir}):
 *
 * ```json
 * {
 *   "version": 1,
 *   "current": "acme",
 *   "contexts": {
 *     "acme": { "server": "quic://10.0.0.7:4433", "creds": "/home/me/acme", "description": "prod" }
 *   }
 * }
 * ```
 *
 * It is rewritten atomically (temp file + rename). A file that cannot be read as this shape is
 * an error naming the file and the problem; it is never silently replaced.
 * The operator's guide is docs/contexts.md.
 */
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import process from "node:process";
import { ContextError } from "./errors.ts";
import { CREDS_FILES as CREDS_FILE_NAMES } from "../identity/mod.ts";
import { formatUrl, parseUrl, UrlError } from "../peer/mod.ts";
import { DEFAULTS } from "./options.ts";

/** File name of the store inside the config directory. */
export const CONTEXTS_FILE = "contexts.json";
/** Version of the file format this code reads and writes. */
export const CONTEXTS_VERSION = 1;
/** Server used when nothing names one (the client's default, lib/client/options.ts). */
export const DEFAULT_SERVER: string = DEFAULTS.server;
/**
 * Credentials directory used when nothing names one, relative to the working directory (the
 * client's default, lib/client/options.ts).
 */
export const DEFAULT_CREDS: string = DEFAULTS.credsDir;
/** Files a credentials directory holds (lib/identity/credentials.ts names them). */
export const CREDS_FILES: readonly (typeof CREDS_FILE_NAMES)[keyof typeof CREDS_FILE_NAMES][] =
  Object.values(CREDS_FILE_NAMES);

/** Environment variables read here. */
export const ENV = {
  configDir: "MACULA_CONFIG_DIR",
  url: "MACULA_URL",
  creds: "MACULA_CREDS",
} as const;

/** A saved context. `creds` is an absolute directory holding ca.pem, cert.pem and key.pem. */
export interface Context {
  name: string;
  server: string;
  creds?: string;
  description?: string;
}

/** Environment, as `process.env`. */
export type Env = Record<string, string | undefined>;

export { ContextError };

const NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** Why `name` is not a valid context name, or null. */
export function contextNameProblem(name: string): string | null {
  if (name.length === 0) return "is empty";
  if (name.length > 64) return "is longer than 64 characters";
  if (!NAME.test(name)) return "may only contain letters, digits, '_', '.' and '-'";
  return null;
}

/** Throws a {@link ContextError} unless `name` is a valid context name. */
export function checkContextName(name: string): string {
  const p = contextNameProblem(name);
  if (p) throw new ContextError(`context name ${JSON.stringify(name)} ${p}`);
  return name;
}

/** A set environment variable, or undefined when it is unset or empty. */
function envValue(env: Env, key: string): string | undefined {
  const v = env[key];
  return v === undefined || v === "" ? undefined : v;
}

/**
 * The config directory: `$MACULA_CONFIG_DIR`, else `$XDG_CONFIG_HOME/macula`, else
 * `~/.config/macula`. Relative paths are resolved against `cwd`.
 */
export function configDir(env: Env = process.env, cwd = process.cwd()): string {
  const own = envValue(env, ENV.configDir);
  if (own !== undefined) return resolve(cwd, own);
  const xdg = envValue(env, "XDG_CONFIG_HOME");
  if (xdg !== undefined) return resolve(cwd, xdg, "macula");
  return join(envValue(env, "HOME") ?? homedir(), ".config", "macula");
}

interface FileShape {
  version: number;
  current: string | null;
  contexts: Record<string, Omit<Context, "name">>;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** Validates the parsed file; `bad` throws with the file named. */
function validate(raw: unknown, bad: (problem: string) => never): Map<string, Context> {
  if (!isObj(raw)) bad("the top level must be a JSON object");
  const top = raw as Obj;
  for (const k of Object.keys(top)) {
    if (!["version", "current", "contexts"].includes(k)) {
      bad(`unknown key ${JSON.stringify(k)} (known: version, current, contexts)`);
    }
  }
  if (top.version !== CONTEXTS_VERSION) {
    bad(`"version" must be ${CONTEXTS_VERSION} (got ${JSON.stringify(top.version)})`);
  }
  if (!isObj(top.contexts)) bad(`"contexts" must be an object of contexts by name`);
  const out = new Map<string, Context>();
  for (const [name, v] of Object.entries(top.contexts as Obj)) {
    const at = `contexts[${JSON.stringify(name)}]`;
    const p = contextNameProblem(name);
    if (p) bad(`${at}: the name ${p}`);
    if (!isObj(v)) bad(`${at} must be an object`);
    const c = v as Obj;
    for (const k of Object.keys(c)) {
      if (!["server", "creds", "description"].includes(k)) {
        bad(`${at}: unknown key ${JSON.stringify(k)} (known: server, creds, description)`);
      }
    }
    if (typeof c.server !== "string") bad(`${at}.server must be a string`);
    let server = "";
    try {
      server = parseUrl(c.server as string, `${at}.server`).url;
    } catch (e) {
      if (e instanceof UrlError) bad(e.message);
      throw e;
    }
    const ctx: Context = { name, server };
    if (c.creds !== undefined) {
      if (typeof c.creds !== "string" || c.creds === "") bad(`${at}.creds must be a path`);
      ctx.creds = c.creds as string;
    }
    if (c.description !== undefined) {
      if (typeof c.description !== "string") bad(`${at}.description must be a string`);
      ctx.description = c.description as string;
    }
    out.set(name, ctx);
  }
  if (top.current !== null && typeof top.current !== "string") {
    bad(`"current" must be a context name or null (got ${JSON.stringify(top.current)})`);
  }
  if (typeof top.current === "string" && !out.has(top.current)) {
    bad(`"current" names ${JSON.stringify(top.current)}, which is not in "contexts"`);
  }
  return out;
}

/** Writes `text` to `file` through a temp file in the same directory and a rename. */
function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.${Date.now().toString(36)}${
    Math.random().toString(36).slice(2, 8)
  }.tmp`;
  try {
    const fd = openSync(tmp, "wx", 0o600);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** The saved contexts of one config directory. Every change is written to disk at once. */
export class ContextStore {
  /** Directory holding the store. */
  readonly dir: string;
  /** The store file. */
  readonly path: string;
  #contexts: Map<string, Context>;
  #current: string | null;

  private constructor(dir: string, contexts: Map<string, Context>, current: string | null) {
    this.dir = dir;
    this.path = join(dir, CONTEXTS_FILE);
    this.#contexts = contexts;
    this.#current = current;
  }

  /**
   * Opens the store of the config directory `env` points to ({@link configDir}). A missing
   * file is an empty store; an unreadable or malformed one throws a {@link ContextError}.
   */
  static open(env: Env = process.env, cwd = process.cwd()): ContextStore {
    const dir = configDir(env, cwd);
    const path = join(dir, CONTEXTS_FILE);
    const bad = (problem: string): never => {
      throw new ContextError(
        `${path}: ${problem} (fix the file, or move it away to start with no contexts)`,
      );
    };
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (e) {
      if ((e as { code?: unknown }).code === "ENOENT") {
        return new ContextStore(dir, new Map(), null);
      }
      throw new ContextError(`${path}: cannot read: ${(e as Error).message}`, { cause: e });
    }
    if (text.trim() === "") bad("the file is empty");
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (e) {
      bad(`not valid JSON: ${(e as Error).message}`);
    }
    const contexts = validate(raw, bad);
    return new ContextStore(dir, contexts, (raw as FileShape).current);
  }

  /** Every context, by name. */
  list(): Context[] {
    return [...this.#contexts.values()].sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0
    )
      .map((c) => ({ ...c }));
  }

  /** Whether a context named `name` exists. */
  has(name: string): boolean {
    return this.#contexts.has(name);
  }

  /** The context named `name`; throws a {@link ContextError} listing the known ones. */
  get(name: string): Context {
    const c = this.#contexts.get(name);
    if (!c) throw new ContextError(`no context named ${JSON.stringify(name)} (${this.#known()})`);
    return { ...c };
  }

  /** The current context, or null. */
  current(): Context | null {
    return this.#current === null ? null : this.get(this.#current);
  }

  /**
   * Saves a context. The name is checked, the server normalized, and a relative `creds`
   * resolved against `cwd`. An existing context is replaced only with `force` (it stays
   * current if it was).
   */
  add(ctx: Context, opts: { force?: boolean; cwd?: string } = {}): Context {
    checkContextName(ctx.name);
    if (this.#contexts.has(ctx.name) && !opts.force) {
      throw new ContextError(
        `context ${JSON.stringify(ctx.name)} already exists (--force replaces it)`,
      );
    }
    let server: string;
    try {
      server = parseUrl(ctx.server, "server").url;
    } catch (e) {
      if (e instanceof UrlError) throw new ContextError(e.message, { cause: e });
      throw e;
    }
    const saved: Context = { name: ctx.name, server };
    if (ctx.creds !== undefined) {
      if (ctx.creds === "") throw new ContextError("creds: an empty path");
      saved.creds = resolve(opts.cwd ?? process.cwd(), ctx.creds);
    }
    if (ctx.description !== undefined) saved.description = ctx.description;
    const next = new Map(this.#contexts).set(saved.name, saved);
    this.#save(next, this.#current);
    return { ...saved };
  }

  /** Makes `name` the current context. */
  use(name: string): Context {
    const c = this.get(name);
    this.#save(this.#contexts, name);
    return c;
  }

  /** Deletes `name`; if it was current, no context is current afterwards. */
  remove(name: string): { context: Context; wasCurrent: boolean } {
    const context = this.get(name);
    const next = new Map(this.#contexts);
    next.delete(name);
    const wasCurrent = this.#current === name;
    this.#save(next, wasCurrent ? null : this.#current);
    return { context, wasCurrent };
  }

  #known(): string {
    const names = [...this.#contexts.keys()].sort();
    return names.length === 0 ? "no contexts are saved" : `known: ${names.join(", ")}`;
  }

  #save(contexts: Map<string, Context>, current: string | null): void {
    const shape: FileShape = { version: CONTEXTS_VERSION, current, contexts: {} };
    for (const c of [...contexts.values()].sort((a, b) => a.name < b.name ? -1 : 1)) {
      const { name: _name, ...rest } = c;
      shape.contexts[c.name] = rest;
    }
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    writeAtomic(this.path, `${JSON.stringify(shape, null, 2)}\n`);
    this.#contexts = contexts;
    this.#current = current;
  }
}

/** Where a client command connects, with which credentials, and why. */
export interface Target {
  /** Normalized `quic://host:port`. */
  url: string;
  host: string;
  port: number;
  /** Absolute credentials directory (ca.pem, cert.pem, key.pem). */
  creds: string;
  /** Where the server came from: "--server", "MACULA_URL", "context <name>" or "default". */
  source: string;
  /** Where the credentials came from: "--creds", "MACULA_CREDS", "context <name>", "default". */
  credsSource: string;
  /** The context consulted (from --context or the current one), or null. */
  context: string | null;
}

/**
 * Decides where a client command connects; a flag beats the environment, the environment beats
 * the current context. Server: `--server` > `--context <name>` > `MACULA_URL` > the current
 * context > {@link DEFAULT_SERVER}. Credentials: `--creds` > the `--context` context's creds >
 * `MACULA_CREDS` > the current context's creds > `<cwd>/macula-data/client`. The context store
 * is read only when a context can matter (a `--context` is given, or the flags and environment
 * leave something open). Throws {@link ContextError} or {@link UrlError}.
 */
export function resolveTarget(o: {
  server?: string;
  creds?: string;
  context?: string;
  env?: Env;
  cwd?: string;
} = {}): Target {
  const env = o.env ?? process.env;
  const cwd = o.cwd ?? process.cwd();
  const envUrl = envValue(env, ENV.url);
  const envCreds = envValue(env, ENV.creds);

  let ctx: Context | null = null;
  const needStore = o.context !== undefined ||
    (o.server === undefined && envUrl === undefined) ||
    (o.creds === undefined && envCreds === undefined);
  if (needStore) {
    const store = ContextStore.open(env, cwd);
    if (o.context !== undefined) {
      checkContextName(o.context);
      ctx = store.get(o.context);
    } else {
      ctx = store.current();
    }
  }

  // A context named by --context is a flag: it beats the environment; the current one does not.
  const named = o.context !== undefined ? ctx : null;
  const current = o.context === undefined ? ctx : null;

  let server: { url: string; host: string; port: number };
  let source: string;
  if (o.server !== undefined) {
    server = parseUrl(o.server, "--server");
    source = "--server";
  } else if (named) {
    server = parseUrl(named.server, `context ${named.name} server`);
    source = `context ${named.name}`;
  } else if (envUrl !== undefined) {
    server = parseUrl(envUrl, ENV.url);
    source = ENV.url;
  } else if (current) {
    server = parseUrl(current.server, `context ${current.name} server`);
    source = `context ${current.name}`;
  } else {
    server = parseUrl(DEFAULT_SERVER, "default server");
    source = "default";
  }

  let creds: string;
  let credsSource: string;
  if (o.creds !== undefined) {
    if (o.creds === "") throw new ContextError("--creds: an empty path");
    creds = resolve(cwd, o.creds);
    credsSource = "--creds";
  } else if (named?.creds !== undefined) {
    creds = resolve(cwd, named.creds);
    credsSource = `context ${named.name}`;
  } else if (envCreds !== undefined) {
    creds = resolve(cwd, envCreds);
    credsSource = ENV.creds;
  } else if (current?.creds !== undefined) {
    creds = resolve(cwd, current.creds);
    credsSource = `context ${current.name}`;
  } else {
    creds = resolve(cwd, DEFAULT_CREDS);
    credsSource = "default";
  }

  return {
    url: formatUrl(server.host, server.port),
    host: server.host,
    port: server.port,
    creds,
    source,
    credsSource,
    context: ctx?.name ?? null,
  };
}
