/**
 * The client's spans (docs/tracing.md): `publish` (producer), `receive` (consumer, linked to the
 * producer), `call` (client) and `process` (server, around a handler). It uses the global tracer
 * of `@opentelemetry/api` unless the application gives one (`ConnectOptions.tracer`), as an
 * instrumented library does: with no SDK registered, no span is made, nothing is allocated and no
 * trace context goes on the wire.
 */
import {
  type Context,
  context,
  ProxyTracerProvider,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  trace,
  type Tracer,
} from "@opentelemetry/api";
import {
  isTraceparent,
  isTracestate,
  spanContextOf,
  traceparentOf,
  tracestateOf,
} from "../messaging/mod.ts";
import { VERSION } from "../util/mod.ts";

/** What the API answers while no SDK is registered (its one no-op provider). */
const NOOP_PROVIDER = new ProxyTracerProvider().getDelegate();

/** A span's context as the wire carries it. */
export interface WireContext {
  traceparent: string | undefined;
  tracestate: string | undefined;
}

/** The client's tracer and its counters. */
export class ClientTracing {
  readonly #explicit: Tracer | null | undefined;
  #global: Tracer | undefined;
  /** Trace contexts from the node that were not W3C: dropped, the frame taken without them. */
  bad = 0;

  /** `tracer`: the application's; null: never trace; undefined: the global one. */
  constructor(tracer: Tracer | null | undefined, readonly clientId: () => string) {
    this.#explicit = tracer;
  }

  /** The tracer to use now, or null: `tracer: null`, or the global API with no SDK behind it. */
  tracer(): Tracer | null {
    if (this.#explicit !== undefined) return this.#explicit;
    const p = trace.getTracerProvider() as { getDelegate?: () => unknown };
    if (typeof p.getDelegate === "function" && p.getDelegate() === NOOP_PROVIDER) return null;
    return this.#global ??= trace.getTracer("macula", VERSION);
  }

  /** Starts a span of this client's; `parent` defaults to the active context. */
  start(
    t: Tracer,
    name: string,
    kind: SpanKind,
    attributes: Record<string, string | number>,
    parent: Context = context.active(),
    link?: SpanContext,
  ): Span {
    return t.startSpan(
      name,
      {
        kind,
        attributes: {
          "messaging.system": "macula",
          "messaging.client.id": this.clientId(),
          ...attributes,
        },
        links: link ? [{ context: link }] : undefined,
      },
      parent,
    );
  }

  /** A span's context for the wire (nothing when it is not valid: a no-op tracer). */
  wire(span: Span): WireContext {
    const sc = span.spanContext();
    const traceparent = traceparentOf(sc);
    return { traceparent, tracestate: traceparent === undefined ? undefined : tracestateOf(sc) };
  }

  /**
   * A trace context the node sent: the valid part (a bad `traceparent` drops both; a bad or
   * lone `tracestate` is dropped), counted in `bad` when something was dropped.
   */
  check(tp: unknown, ts: unknown): WireContext {
    if (tp == null && ts == null) return { traceparent: undefined, tracestate: undefined };
    if (typeof tp !== "string" || !isTraceparent(tp)) {
      this.bad++;
      return { traceparent: undefined, tracestate: undefined };
    }
    if (ts == null) return { traceparent: tp, tracestate: undefined };
    if (typeof ts !== "string" || !isTracestate(ts)) {
      this.bad++;
      return { traceparent: tp, tracestate: undefined };
    }
    return { traceparent: tp, tracestate: ts };
  }
}

/** The context a wire trace context names, as a remote parent (or the root without one). */
export function remoteParent(tp: string | undefined, ts: string | undefined): Context {
  return tp === undefined
    ? ROOT_CONTEXT
    : trace.setSpanContext(ROOT_CONTEXT, spanContextOf(tp, ts));
}

/** Ends `span` as failed with `code` (the RPC error code, or the error's name). */
export function failSpan(span: Span, code: string, message?: string): void {
  span.setAttribute("error.type", code);
  span.setStatus({ code: SpanStatusCode.ERROR, message: message ?? code });
}

export { SpanKind };
