/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/) as the bus carries it: the
 * `traceparent` and `tracestate` fields of PUB, MSG, FWD and CALL (docs/tracing.md). The codec
 * bounds their length (a field over its bound makes the frame malformed, as any field does); the
 * exact format is checked here, where a frame is taken, and a value that is not W3C is dropped and
 * counted, the message going on without it (W3C: a receiver ignores an invalid traceparent).
 *
 * No allocation unless a value is present: the checks are regular expressions on the string.
 *
 * @example
 * ```ts
 * import { isTraceparent, isTracestate } from "./tracecontext.ts";
 * isTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"); // true
 * isTraceparent("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"); // false: upper case
 * isTracestate("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"); // true
 * ```
 */
import {
  createTraceState,
  isSpanContextValid,
  type SpanContext,
  TraceFlags,
} from "@opentelemetry/api";

/** Longest `traceparent` the wire takes (version 00 is 55 bytes; later versions may append). */
export const MAX_TRACEPARENT_BYTES = 128;
/** Longest `tracestate` the wire takes: W3C's "at least 512 characters" a system propagates. */
export const MAX_TRACESTATE_BYTES = 512;
/** List members a `tracestate` may hold (W3C). */
export const MAX_TRACESTATE_MEMBERS = 32;

/** version-traceid-parentid-flags, lower-case hex; a later version may append `-…`. */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE = "00000000000000000000000000000000";
const ZERO_SPAN = "0000000000000000";
/** One list member: a simple or multi-tenant key, `=`, a value of printable ASCII but `,` and `=`. */
const MEMBER =
  /^(?:[a-z][a-z0-9_\-*/]{0,255}|[a-z0-9][a-z0-9_\-*/]{0,240}@[a-z][a-z0-9_\-*/]{0,13})=[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;

/**
 * Whether `s` is a valid W3C `traceparent`: version 00 exactly 55 characters; a later version
 * (not `ff`) at least that, and `-` after the flags when longer; trace and parent ids not all
 * zero; lower-case hex throughout.
 */
export function isTraceparent(s: string): boolean {
  if (s.length < 55 || s.length > MAX_TRACEPARENT_BYTES) return false;
  const m = TRACEPARENT.exec(s);
  if (m === null) return false;
  const version = m[1]!;
  if (version === "ff") return false;
  if (version === "00" && s.length !== 55) return false;
  return m[2] !== ZERO_TRACE && m[3] !== ZERO_SPAN;
}

/**
 * Whether `s` is a valid W3C `tracestate` within `MAX_TRACESTATE_BYTES`: up to 32 list members
 * `key=value` separated by commas (optional spaces or tabs around them; empty members allowed),
 * no key twice.
 */
export function isTracestate(s: string): boolean {
  if (s.length > MAX_TRACESTATE_BYTES) return false;
  const keys: string[] = [];
  for (const raw of s.split(",")) {
    const member = raw.replace(/^[ \t]+|[ \t]+$/g, "");
    if (member.length === 0) continue;
    if (!MEMBER.test(member)) return false;
    const key = member.slice(0, member.indexOf("="));
    if (keys.includes(key) || keys.length >= MAX_TRACESTATE_MEMBERS) return false;
    keys.push(key);
  }
  return true;
}

/** The span context a valid `traceparent` (and `tracestate`) names, as a remote parent. */
export function spanContextOf(traceparent: string, tracestate?: string): SpanContext {
  return {
    traceId: traceparent.slice(3, 35),
    spanId: traceparent.slice(36, 52),
    traceFlags: parseInt(traceparent.slice(53, 55), 16) & TraceFlags.SAMPLED,
    isRemote: true,
    traceState: tracestate ? createTraceState(tracestate) : undefined,
  };
}

/** The version-00 `traceparent` of a span context, or undefined when it is not valid. */
export function traceparentOf(sc: SpanContext): string | undefined {
  if (!isSpanContextValid(sc)) return undefined;
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 0xff).toString(16).padStart(2, "0")}`;
}

/** The `tracestate` of a span context, when it has one that fits the wire (else undefined). */
export function tracestateOf(sc: SpanContext): string | undefined {
  const s = sc.traceState?.serialize();
  return s && s.length <= MAX_TRACESTATE_BYTES && isTracestate(s) ? s : undefined;
}
