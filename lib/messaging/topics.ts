/**
 * Topic and subscription-pattern syntax (NATS conventions). Pure and synchronous;
 * docs/messaging.md is the reference.
 *
 * - A **topic** is 1–16 segments separated by `.`; each segment is 1–64 characters of
 *   `A-Z a-z 0-9 _ -`; the whole topic is at most 256 bytes (the alphabet is ASCII, so bytes and
 *   characters agree). Topics never contain wildcards: publishers name one concrete topic.
 * - A **pattern** (what a subscription names) follows the same rules, and a segment may also be a
 *   wildcard: `*` matches exactly one segment; `>` matches one or more trailing segments and must
 *   be the last segment. Wildcards are whole segments (`a*` is invalid).
 * - **Procedure names** (RPC) use topic syntax: no wildcards.
 *
 * @example
 * ```ts
 * import { checkPattern, matches } from "./topics.ts";
 * checkPattern("sensors.*.temp");
 * matches("sensors.*.temp", "sensors.kitchen.temp"); // true
 * matches("sensors.>", "sensors"); // false: '>' needs at least one segment
 * ```
 */
import { TopicError } from "./errors.ts";

/** At most this many segments in a topic or pattern. */
export const MAX_SEGMENTS = 16;
/** At most this many bytes in a topic or pattern. */
export const MAX_TOPIC_BYTES = 256;
/** At most this many characters in one segment. */
export const MAX_SEGMENT_CHARS = 64;
/** The single-segment wildcard. */
export const ONE = "*";
/** The tail wildcard: one or more trailing segments. */
export const TAIL = ">";

const SEGMENT = /^[A-Za-z0-9_-]{1,64}$/;

export { TopicError };

type Kind = "topic" | "pattern" | "procedure";

function problem(text: string, kind: Kind): string | null {
  if (typeof text !== "string") return `${kind} is not a string`;
  if (text.length === 0) return `${kind} is empty`;
  if (text.length > MAX_TOPIC_BYTES) {
    return `${kind} is ${text.length} characters (at most ${MAX_TOPIC_BYTES} bytes)`;
  }
  const segments = text.split(".");
  if (segments.length > MAX_SEGMENTS) {
    return `${kind} has ${segments.length} segments (at most ${MAX_SEGMENTS})`;
  }
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i] as string;
    if (SEGMENT.test(s)) continue;
    const at = `segment ${i + 1}`;
    if (s.length === 0) {
      return `${kind} has an empty ${at} (leading, trailing or doubled '.')`;
    }
    if (s === ONE || s === TAIL) {
      if (kind !== "pattern") {
        return `${kind} contains wildcard '${s}' (${at}); wildcards are allowed only in ` +
          "subscription patterns";
      }
      if (s === TAIL && i !== segments.length - 1) {
        return `wildcard '>' must be the last segment (found at ${at} of ${segments.length})`;
      }
      continue;
    }
    if (s.includes(ONE) || s.includes(TAIL)) {
      return `${at} ${JSON.stringify(s)} mixes a wildcard with other characters; ` +
        "'*' and '>' must be whole segments";
    }
    if (s.length > MAX_SEGMENT_CHARS) {
      return `${at} is ${s.length} characters (at most ${MAX_SEGMENT_CHARS})`;
    }
    const bad = [...s].find((c) => !/[A-Za-z0-9_-]/.test(c)) ?? "";
    return `${at} ${JSON.stringify(s)} contains ${JSON.stringify(bad)}; ` +
      "segments use only A-Z, a-z, 0-9, '_' and '-'";
  }
  return null;
}

/** The reason `topic` is not a valid topic, or null when it is. */
export function topicProblem(topic: string): string | null {
  return problem(topic, "topic");
}

/** The reason `pattern` is not a valid subscription pattern, or null when it is. */
export function patternProblem(pattern: string): string | null {
  return problem(pattern, "pattern");
}

/** The reason `name` is not a valid procedure name, or null when it is. */
export function procedureProblem(name: string): string | null {
  return problem(name, "procedure");
}

function check(text: string, kind: Kind): string {
  const p = problem(text, kind);
  if (p !== null) {
    const shown = typeof text === "string" && text.length > 80
      ? JSON.stringify(text.slice(0, 80)) + "…"
      : JSON.stringify(text);
    throw new TopicError(`invalid ${kind} ${shown}: ${p}`);
  }
  return text;
}

/** Throws `TopicError` unless `topic` is a valid (wildcard-free) topic; returns it. */
export function checkTopic(topic: string): string {
  return check(topic, "topic");
}

/** Throws `TopicError` unless `pattern` is a valid subscription pattern; returns it. */
export function checkPattern(pattern: string): string {
  return check(pattern, "pattern");
}

/** Throws `TopicError` unless `name` is a valid procedure name (topic syntax); returns it. */
export function checkProcedure(name: string): string {
  return check(name, "procedure");
}

/** True when `pattern` contains a wildcard segment. */
export function hasWildcard(pattern: string): boolean {
  return pattern.split(".").some((s) => s === ONE || s === TAIL);
}

/**
 * True when the subscription `pattern` matches the concrete `topic`. Does not validate: check
 * both first (a topic with a literal `*` segment is invalid and its result is unspecified).
 *
 * @example
 * ```ts
 * matches("a.*.c", "a.b.c"); // true
 * matches("a.>", "a.b.c"); // true
 * matches("a.*", "a.b.c"); // false
 * ```
 */
export function matches(pattern: string, topic: string): boolean {
  const p = pattern.split(".");
  const t = topic.split(".");
  for (let i = 0; i < p.length; i++) {
    const s = p[i];
    if (s === TAIL) return t.length > i;
    if (i >= t.length) return false;
    if (s !== ONE && s !== t[i]) return false;
  }
  return p.length === t.length;
}
