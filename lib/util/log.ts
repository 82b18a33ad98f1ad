/**
 * A node's log: levels, text or JSON lines, and rate limits on repeated warnings
 * (docs/operations.md, "Logs"). Layer 0: every layer logs through it.
 *
 * Every line has an event name (a stable dotted name such as `route.down` or `peer.refused`,
 * for machines), a text (for people) and fields. A warning or error repeated for the same cause
 * is written once per interval: the first at once, the repeats counted and summed up in one line
 * at the end of the interval ("… (and 41 more like it in the last 10 s)"), so a flood of refused
 * peers cannot flood the log, and no refusal goes uncounted.
 *
 * ```ts
 * const log = new Logger({ level: "info", format: "json", write: (l) => process.stderr.write(l) });
 * log.warn("peer.refused", "refused a session from 10.0.0.9:4433: unknown CA", { cause: "unknown_ca" });
 * ```
 */

/** How much is logged: each level includes the ones after it. */
export type LogLevel = "debug" | "info" | "warn" | "error";
/** The levels, least severe first. */
export const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];
/** `text`: `<time> <LEVEL> <text>`; `json`: one JSON object per line. */
export type LogFormat = "text" | "json";
export const LOG_FORMATS: readonly LogFormat[] = ["text", "json"];

/** A line's fields (JSON values only). `cause` names the cause repeats are counted by. */
export type LogFields = Record<string, string | number | boolean | null | undefined>;

/** Where a part of the node writes what it does. */
export interface Log {
  debug(event: string, text: string, fields?: LogFields): void;
  info(event: string, text: string, fields?: LogFields): void;
  /** Rate-limited per event and cause (`fields.cause`, else the text). */
  warn(event: string, text: string, fields?: LogFields): void;
  /** Rate-limited per event and cause, like `warn`. */
  error(event: string, text: string, fields?: LogFields): void;
}

/** A log that writes nothing. */
export const SILENT: Log = { debug() {}, info() {}, warn() {}, error() {} };

/** What a `Logger` is made with. */
export interface LoggerOptions {
  /** Default `info`. */
  level?: LogLevel;
  /** Default `text`. */
  format?: LogFormat;
  /** Takes one whole line, newline included. */
  write: (line: string) => void;
  /** Fields on every line (JSON) — the node's id and realm, once known. */
  context?: LogFields;
  /** The interval repeats are counted over; default 10 s. 0 turns rate limiting off. */
  repeatIntervalMs?: number;
  /** Causes tracked at once; past it, new causes share one bucket. Default 1,000. */
  maxCauses?: number;
  /** Calendar time of a line (tests). */
  now?: () => Date;
}

/** The counts of one cause within the current interval. */
interface Repeats {
  level: LogLevel;
  event: string;
  text: string;
  fields: LogFields | undefined;
  suppressed: number;
}

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };
/** The bucket of causes past `maxCauses`. */
const OVERFLOW = "\u0000overflow";

/** The log of a node: formats, filters by level and rate-limits repeats. */
export class Logger implements Log {
  /** The level now (SIGHUP may change it). */
  level: LogLevel;
  readonly format: LogFormat;
  /** Lines not written: below the level, or repeats counted into a summary. */
  readonly stats = { written: 0, suppressed: 0 };
  readonly #write: (line: string) => void;
  #context: LogFields;
  readonly #interval: number;
  readonly #maxCauses: number;
  readonly #now: () => Date;
  /** Causes seen in the current interval. */
  #repeats = new Map<string, Repeats>();
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(o: LoggerOptions) {
    this.level = o.level ?? "info";
    this.format = o.format ?? "text";
    this.#write = o.write;
    this.#context = { ...o.context };
    this.#interval = o.repeatIntervalMs ?? 10_000;
    this.#maxCauses = o.maxCauses ?? 1000;
    this.#now = o.now ?? (() => new Date());
  }

  /** Adds fields to every later line (the node's id once it is known). */
  setContext(fields: LogFields): void {
    this.#context = { ...this.#context, ...fields };
  }

  debug(event: string, text: string, fields?: LogFields): void {
    this.#log("debug", event, text, fields);
  }
  info(event: string, text: string, fields?: LogFields): void {
    this.#log("info", event, text, fields);
  }
  warn(event: string, text: string, fields?: LogFields): void {
    this.#log("warn", event, text, fields);
  }
  error(event: string, text: string, fields?: LogFields): void {
    this.#log("error", event, text, fields);
  }

  /** Writes the pending summaries now and stops the interval timer (the node stops). */
  close(): void {
    this.#flush();
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** A line at `level`: dropped below the log's level; warnings and errors rate-limited. */
  #log(level: LogLevel, event: string, text: string, fields?: LogFields): void {
    if (RANK[level] < RANK[this.level]) {
      this.stats.suppressed++;
      return;
    }
    if (RANK[level] < RANK.warn || this.#interval === 0) {
      this.#line(level, event, text, fields);
      return;
    }
    let key = `${event}\u0000${fields?.cause ?? text}`;
    if (!this.#repeats.has(key) && this.#repeats.size >= this.#maxCauses) key = OVERFLOW;
    const seen = this.#repeats.get(key);
    if (seen) {
      seen.suppressed++;
      this.stats.suppressed++;
      return;
    }
    this.#repeats.set(key, { level, event, text, fields, suppressed: 0 });
    this.#line(level, event, text, fields);
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.#flush(), this.#interval);
      (this.#timer as { unref?: () => void }).unref?.();
    }
  }

  /** The interval is over: a summary line per cause that repeated; then a fresh interval. */
  #flush(): void {
    const ended = this.#repeats;
    this.#repeats = new Map();
    for (const [key, r] of ended) {
      if (r.suppressed === 0) continue;
      const like = key === OVERFLOW ? "other warnings (too many causes to tell apart)" : "it";
      this.#line(
        r.level,
        r.event,
        `${r.text} (and ${r.suppressed} more like ${like} in the last ${this.#interval / 1000} s)`,
        { ...r.fields, repeated: r.suppressed },
      );
    }
    if (this.#repeats.size === 0 && ended.size === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  #line(level: LogLevel, event: string, text: string, fields?: LogFields): void {
    this.stats.written++;
    const time = this.#now().toISOString();
    if (this.format === "json") {
      this.#write(
        `${JSON.stringify({ time, level, ...this.#context, event, msg: text, ...fields })}\n`,
      );
    } else {
      this.#write(`${time} ${level.toUpperCase().padEnd(5)} ${text}\n`);
    }
  }
}

/**
 * A `Log` over a plain line sink (`Node.start({ log: (line) => … })`): the text only, at info
 * and above, nothing rate-limited (the caller owns what it does with the lines).
 */
export function lineLog(write: (line: string) => void): Log {
  return {
    debug() {},
    info: (_e, text) => write(text),
    warn: (_e, text) => write(text),
    error: (_e, text) => write(text),
  };
}

/** Parses a level name, or says what the levels are. */
export function logLevelProblem(v: unknown): string | null {
  return LOG_LEVELS.includes(v as LogLevel) ? null : `must be one of ${LOG_LEVELS.join(", ")}`;
}

/** Parses a format name, or says what the formats are. */
export function logFormatProblem(v: unknown): string | null {
  return LOG_FORMATS.includes(v as LogFormat) ? null : `must be one of ${LOG_FORMATS.join(", ")}`;
}
