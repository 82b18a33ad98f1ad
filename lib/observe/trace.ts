/**
 * A node's span export (docs/tracing.md): one OpenTelemetry `BasicTracerProvider` per node, not
 * registered globally (several nodes may share a process), with a bounded batch queue and the
 * OTLP/HTTP exporter. A collector that is slow, refuses or is gone never stops or slows the node:
 * a span that finds the queue full is dropped and counted, an export that fails counts its spans
 * as dropped, and `shutdown` waits a bounded time.
 *
 * @example
 * ```ts
 * import { startTracing } from "./trace.ts";
 * const t = startTracing({ otlp: "http://127.0.0.1:4318/v1/traces", nodeId: "n1", realm: "dev" });
 * node.router.tracer = t.tracer;
 * // …
 * await t.shutdown();
 * ```
 */
import { type Context, TraceFlags, type Tracer } from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  type ReadableSpan,
  type Span,
  type SpanExporter,
  type SpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { ATTR_SERVICE_INSTANCE_ID, ATTR_SERVICE_NAME } from "@opentelemetry/semantic-conventions";
import { VERSION } from "../util/mod.ts";

/** How a node exports spans. */
export interface TracingOptions {
  /** The collector's OTLP/HTTP traces endpoint, `http(s)://host:port/v1/traces`. */
  otlp: string;
  /** This node's id (`service.instance.id`). */
  nodeId: string;
  /** The realm (`macula.realm`). */
  realm: string;
  /** `service.name`. Default `macula`. */
  serviceName?: string;
  /** Spans held for export at most (queued or being sent); more are dropped. Default 2048. */
  maxQueue?: number;
  /** How long spans are gathered into one export. Default 1000 ms. */
  batchDelayMs?: number;
  /** How long one export may take before its spans count as dropped. Default 5000 ms. */
  exportTimeoutMs?: number;
  /** How long `shutdown` waits for the last export. Default 2000 ms. */
  shutdownTimeoutMs?: number;
}

/** Spans of one node so far. */
export interface TracingStats {
  /** Spans the collector took. */
  exported: number;
  /** Spans lost: the queue was full, or their export failed or timed out. */
  dropped: number;
  /** Spans queued or in an export now. */
  pending: number;
  /** Exports that failed (refused, unreachable, timed out). */
  failedExports: number;
}

/** A node's tracing: its tracer (for `router.tracer`), and the export's controls. */
export interface Tracing {
  readonly tracer: Tracer;
  /** Sends what is queued now (bounded by the export timeout). */
  flush(): Promise<void>;
  /** Sends what is queued (bounded by `shutdownTimeoutMs`) and stops; spans after it are dropped. */
  shutdown(): Promise<void>;
  stats(): TracingStats;
}

/** The defaults of `TracingOptions`, each with its reason. */
export const TRACING_DEFAULTS = {
  /** The SDK's own default queue: a few seconds of a busy node's traced traffic. */
  maxQueue: 2048,
  /** Spans reach the collector within about a second, in batches of up to 512. */
  batchDelayMs: 1000,
  batchSize: 512,
  /** A collector that takes longer than this is as good as gone: its spans are dropped. */
  exportTimeoutMs: 5000,
  /** A node stopping waits this long for its last spans, not the export timeout. */
  shutdownTimeoutMs: 2000,
} as const;

/** Checks `trace.otlp`: an http(s) URL. */
export function otlpProblem(url: unknown): string | null {
  if (typeof url !== "string") return `must be an http(s) URL (got ${JSON.stringify(url)})`;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return `must be an http(s) URL (got ${JSON.stringify(url)})`;
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    return `must be an http(s) URL (got ${JSON.stringify(url)})`;
  }
  return null;
}

/** Counts what the batch processor holds, and refuses spans past the bound (counted). */
class Counter {
  pending = 0;
  exported = 0;
  dropped = 0;
  failedExports = 0;
}

/** Holds at most `max` spans between ending and the collector's answer; drops the rest. */
class BoundedProcessor implements SpanProcessor {
  #stopped = false;
  constructor(
    private readonly inner: SpanProcessor,
    private readonly count: Counter,
    private readonly max: number,
  ) {}
  onStart(span: Span, parent: Context): void {
    this.inner.onStart(span, parent);
  }
  onEnd(span: ReadableSpan): void {
    if ((span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) return;
    if (this.#stopped || this.count.pending >= this.max) {
      this.count.dropped++;
      return;
    }
    this.count.pending++;
    this.inner.onEnd(span);
  }
  forceFlush(): Promise<void> {
    return this.inner.forceFlush();
  }
  shutdown(): Promise<void> {
    this.#stopped = true;
    return this.inner.shutdown();
  }
}

/** The OTLP exporter, counting what it sent and lost; an export that never answers is let go. */
class CountingExporter implements SpanExporter {
  constructor(
    private readonly inner: SpanExporter,
    private readonly count: Counter,
    private readonly timeoutMs: number,
  ) {}
  export(spans: ReadableSpan[], done: Parameters<SpanExporter["export"]>[1]): void {
    let settled = false;
    const settle = (ok: boolean) => {
      if (settled) return false;
      settled = true;
      clearTimeout(timer);
      this.count.pending = Math.max(0, this.count.pending - spans.length);
      if (ok) this.count.exported += spans.length;
      else {
        this.count.dropped += spans.length;
        this.count.failedExports++;
      }
      return true;
    };
    // The exporter answers within its own timeout; this bounds it even if it did not.
    const timer = setTimeout(() => {
      if (settle(false)) done({ code: 1, error: new Error("OTLP export timed out") });
    }, this.timeoutMs + 1000);
    (timer as { unref?: () => void }).unref?.();
    try {
      this.inner.export(spans, (r) => {
        if (settle(r.code === 0)) done(r);
      });
    } catch (e) {
      if (settle(false)) done({ code: 1, error: e as Error });
    }
  }
  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

/** Resolves when `p` settles or after `ms`, whichever is first; never rejects. */
function bounded(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p.then(() => {}, () => {}),
    new Promise<void>((r) => {
      timer = setTimeout(r, ms);
      (timer as { unref?: () => void }).unref?.();
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * Starts a node's span export to `o.otlp`. The tracer it returns goes to `router.tracer`; the
 * provider is this node's alone (not registered globally).
 */
export function startTracing(o: TracingOptions): Tracing {
  const bad = otlpProblem(o.otlp);
  if (bad !== null) throw new TypeError(`trace.otlp: ${bad}`);
  const maxQueue = o.maxQueue ?? TRACING_DEFAULTS.maxQueue;
  const exportTimeoutMs = o.exportTimeoutMs ?? TRACING_DEFAULTS.exportTimeoutMs;
  const shutdownTimeoutMs = o.shutdownTimeoutMs ?? TRACING_DEFAULTS.shutdownTimeoutMs;
  const count = new Counter();
  const exporter = new CountingExporter(
    new OTLPTraceExporter({ url: o.otlp, timeoutMillis: exportTimeoutMs }),
    count,
    exportTimeoutMs,
  );
  const batch = new BatchSpanProcessor(exporter, {
    // The bound is ours (BoundedProcessor): the batch processor never sees more than it.
    maxQueueSize: maxQueue,
    maxExportBatchSize: Math.min(TRACING_DEFAULTS.batchSize, maxQueue),
    scheduledDelayMillis: o.batchDelayMs ?? TRACING_DEFAULTS.batchDelayMs,
    exportTimeoutMillis: exportTimeoutMs + 2000,
  });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      [ATTR_SERVICE_NAME]: o.serviceName ?? "macula",
      [ATTR_SERVICE_INSTANCE_ID]: o.nodeId,
      "service.version": VERSION,
      "macula.realm": o.realm,
    }),
    spanProcessors: [new BoundedProcessor(batch, count, maxQueue)],
  });
  let stopped: Promise<void> | undefined;
  return {
    tracer: provider.getTracer("macula", VERSION),
    flush: () => bounded(provider.forceFlush(), exportTimeoutMs + 1000),
    shutdown: () => stopped ??= bounded(provider.shutdown(), shutdownTimeoutMs),
    stats: () => ({
      exported: count.exported,
      dropped: count.dropped,
      pending: count.pending,
      failedExports: count.failedExports,
    }),
  };
}
