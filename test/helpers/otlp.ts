/**
 * A small OTLP/HTTP trace receiver on 127.0.0.1 for tests (node:http): it takes
 * `POST /v1/traces` as OTLP/JSON (what @opentelemetry/exporter-trace-otlp-http sends), plain or
 * gzip, and keeps every span with its resource. Protobuf bodies are answered 415: the exporter
 * this project uses sends JSON, and a test that switched it would see the refusal at once.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { gunzipSync } from "node:zlib";

/** OTLP span kinds (the API's `SpanKind` + 1). */
export const OTLP_KIND = { internal: 1, server: 2, client: 3, producer: 4, consumer: 5 } as const;

/** One span as received, with plain attribute values. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** Empty for a root span. */
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Record<string, unknown>;
  links: { traceId: string; spanId: string }[];
  status: { code: number; message?: string };
  /** The resource's attributes (service.name, service.instance.id, …). */
  resource: Record<string, unknown>;
}

/** The receiver: its URL, what it got, and a bounded wait for what a test expects. */
export interface OtlpReceiver {
  /** `http://127.0.0.1:<port>/v1/traces`. */
  readonly url: string;
  readonly spans: ReceivedSpan[];
  /** Requests taken, and refused (bad content type, bad JSON, too large). */
  readonly requests: { ok: number; refused: number };
  /** Resolves once `pred(spans)` holds (checked at each request); rejects after `limitMs`. */
  waitFor(pred: (spans: ReceivedSpan[]) => boolean, what: string, limitMs?: number): Promise<void>;
  close(): Promise<void>;
}

const MAX_BODY = 16 * 1024 * 1024;

interface AnyValue {
  stringValue?: string;
  intValue?: number | string;
  doubleValue?: number;
  boolValue?: boolean;
  arrayValue?: { values?: AnyValue[] };
}

function plain(v: AnyValue | undefined): unknown {
  if (v === undefined) return undefined;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.arrayValue !== undefined) return (v.arrayValue.values ?? []).map(plain);
  return undefined;
}

function attrs(list: { key: string; value: AnyValue }[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const a of list ?? []) out[a.key] = plain(a.value);
  return out;
}

interface OtlpJson {
  resourceSpans?: {
    resource?: { attributes?: { key: string; value: AnyValue }[] };
    scopeSpans?: {
      spans?: {
        traceId: string;
        spanId: string;
        parentSpanId?: string;
        name: string;
        kind: number;
        attributes?: { key: string; value: AnyValue }[];
        links?: { traceId: string; spanId: string }[];
        status?: { code?: number; message?: string };
      }[];
    }[];
  }[];
}

/** The spans of one OTLP/JSON export request. */
export function spansOf(body: OtlpJson): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of body.resourceSpans ?? []) {
    const resource = attrs(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        out.push({
          traceId: s.traceId,
          spanId: s.spanId,
          parentSpanId: s.parentSpanId ?? "",
          name: s.name,
          kind: s.kind,
          attributes: attrs(s.attributes),
          links: (s.links ?? []).map((l) => ({ traceId: l.traceId, spanId: l.spanId })),
          status: { code: s.status?.code ?? 0, message: s.status?.message },
          resource,
        });
      }
    }
  }
  return out;
}

/** Starts a receiver on 127.0.0.1 (an ephemeral port). */
export async function otlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const requests = { ok: 0, refused: 0 };
  const waiters = new Set<() => void>();
  const refuse = (res: ServerResponse, status: number, why: string) => {
    requests.refused++;
    res.writeHead(status, { "content-type": "text/plain" }).end(why);
  };
  const handle = (req: IncomingMessage, res: ServerResponse, body: Buffer) => {
    if (req.method !== "POST" || req.url !== "/v1/traces") return refuse(res, 404, "not found");
    const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim();
    if (type !== "application/json") return refuse(res, 415, `unsupported: ${type}`);
    let json: OtlpJson;
    try {
      const raw = req.headers["content-encoding"] === "gzip" ? gunzipSync(body) : body;
      json = JSON.parse(raw.toString("utf8")) as OtlpJson;
    } catch (e) {
      return refuse(res, 400, `bad body: ${(e as Error).message}`);
    }
    spans.push(...spansOf(json));
    requests.ok++;
    res.writeHead(200, { "content-type": "application/json" }).end("{}");
    for (const w of [...waiters]) w();
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        refuse(res, 413, "too large");
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => {
      if (size <= MAX_BODY) handle(req, res, Buffer.concat(chunks));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/v1/traces`,
    spans,
    requests,
    waitFor(pred, what, limitMs = 20_000) {
      if (pred(spans)) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (!pred(spans)) return;
          cleanup();
          resolve();
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`OTLP receiver: ${what} not seen within ${limitMs} ms`));
        }, limitMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
