/**
 * The admin HTTP listener of a node (docs/operations.md, "Admin listener"): `/metrics`
 * (Prometheus), `/healthz`, `/readyz`, the live topology page at `/` and its data at
 * `/api/topology`. Plain `node:http`, so it runs on Bun, Deno and Node alike.
 *
 * Bounded, as anything a network can reach: GET and HEAD only (405 otherwise), a fixed set of
 * paths (404 lists them), no request body read, small header and request timeouts, at most
 * `ADMIN_LIMITS.maxConnections` connections at once (more are closed at once), and every answer
 * built from the node's counters in memory (no file, no lookup, no call to a peer).
 */
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { AdminError, listenProblem } from "./errors.ts";
import { certificateValidity, readiness, type Validity } from "./health.ts";
import { NodeMetrics } from "./metrics.ts";
import { PAGE_HTML, PAGE_SCRIPT } from "./page.ts";
import { topologyOf } from "./topology.ts";
import type { AdminNode } from "./view.ts";

/** The listener's bounds, each with its reason. */
export const ADMIN_LIMITS = {
  /** A scraper, a few browser tabs and a probe or two: 64 is plenty, and caps what a flood costs. */
  maxConnections: 64,
  /** Headers arrive at once from any real client; a slow-loris is cut after 5 s. */
  headersTimeoutMs: 5_000,
  /** A whole request (there is no body to read) within 10 s. */
  requestTimeoutMs: 10_000,
  /** An idle keep-alive connection (the page polls every second) is closed after 5 s. */
  keepAliveTimeoutMs: 5_000,
  /** The longest request line and headers taken (node's own default is 16 KiB). */
  maxHeaderBytes: 8 * 1024,
} as const;

/** The paths the listener answers, with what each is (the 404 lists them). */
export const ADMIN_PATHS: Readonly<Record<string, string>> = {
  "/": "the live topology page",
  "/api/topology": "the topology page's data (JSON)",
  "/metrics": "Prometheus metrics",
  "/healthz": "200 while the process serves",
  "/readyz": "200 when ready, else 503 with the failing checks (JSON)",
};

/** A running admin listener. */
export interface Admin {
  /** Where it listens, e.g. `http://127.0.0.1:9433`. */
  readonly url: string;
  /** The bound port (the one the kernel chose when 0 was asked). */
  readonly port: number;
  /** The node's metrics (`callSettled` for the router's observer). */
  readonly metrics: NodeMetrics;
  /** Stops listening and closes every open connection. */
  close(): Promise<void>;
}

/** The Content-Security-Policy of the page: its own inline script and style, nothing fetched but itself. */
const PAGE_CSP =
  `default-src 'none'; script-src 'sha256-${
    createHash("sha256").update(PAGE_SCRIPT).digest("base64")
  }'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; ` +
  `form-action 'none'; frame-ancestors 'none'`;

/** The 404's text. */
const NOT_FOUND = "not found; this admin listener answers:\n" +
  Object.entries(ADMIN_PATHS).map(([p, what]) => `  ${p.padEnd(14)} ${what}`).join("\n") + "\n";

/**
 * Starts the admin listener of `node` on `listen` (port 0: a free one). Rejects with an
 * `AdminError` naming the address when it cannot listen (a port in use, …).
 *
 * ```ts
 * const admin = await startAdmin(node, { host: "127.0.0.1", port: 9433 });
 * console.log(`${admin.url}/metrics`);
 * await admin.close();
 * ```
 */
export async function startAdmin(
  node: AdminNode,
  listen: { host: string; port: number },
): Promise<Admin> {
  const metrics = new NodeMetrics(node);
  let cert: Validity | null = null;
  const sockets = new Set<Socket>();
  const server = createServer({
    requestTimeout: ADMIN_LIMITS.requestTimeoutMs,
    headersTimeout: ADMIN_LIMITS.headersTimeoutMs,
    keepAliveTimeout: ADMIN_LIMITS.keepAliveTimeoutMs,
    maxHeaderSize: ADMIN_LIMITS.maxHeaderBytes,
  }, (req, res) => {
    // Headers are in: the connection's deadline now is the answer's, then the keep-alive's.
    const sock = req.socket as Socket;
    clearTimeout(deadlines.get(sock));
    res.once("close", () => arm(sock, ADMIN_LIMITS.keepAliveTimeoutMs));
    serve(req, res).catch((e) => {
      if (!res.headersSent) send(res, req, 500, "text/plain; charset=utf-8", "internal error\n");
      else res.destroy(e as Error);
    });
  });
  // Each connection's deadline: its request's headers within `headersTimeoutMs` of connecting,
  // the next within `keepAliveTimeoutMs` of an answer. Kept here as well as in the server's
  // options: not every runtime enforces those (Deno's node:http takes headers trickled forever).
  const deadlines = new WeakMap<Socket, ReturnType<typeof setTimeout>>();
  const arm = (sock: Socket, ms: number) => {
    clearTimeout(deadlines.get(sock));
    if (sock.destroyed) return;
    const t = setTimeout(() => sock.destroy(), ms);
    (t as { unref?: () => void }).unref?.();
    deadlines.set(sock, t);
  };
  server.maxConnections = ADMIN_LIMITS.maxConnections;
  server.on("connection", (sock: Socket) => {
    // Counted here as well: not every runtime enforces `maxConnections`.
    if (sockets.size >= ADMIN_LIMITS.maxConnections) {
      sock.destroy();
      return;
    }
    sockets.add(sock);
    arm(sock, ADMIN_LIMITS.headersTimeoutMs);
    sock.on("close", () => {
      sockets.delete(sock);
      clearTimeout(deadlines.get(sock));
    });
  });
  server.on("clientError", (_e, sock: Socket) => {
    if (sock.writable) sock.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
    else sock.destroy();
  });

  const serve = async (req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("Allow", "GET, HEAD");
      send(res, req, 405, "text/plain; charset=utf-8", "method not allowed: GET or HEAD only\n");
      return;
    }
    const q = (req.url ?? "/").indexOf("?");
    const path = q < 0 ? req.url ?? "/" : req.url!.slice(0, q);
    switch (path) {
      case "/metrics":
        return send(res, req, 200, metrics.contentType, await metrics.text());
      case "/healthz":
        return send(res, req, 200, JSON_TYPE, '{"status":"ok"}\n');
      case "/readyz": {
        cert ??= certificateValidity(node);
        const r = readiness(node, cert);
        return send(res, req, r.ready ? 200 : 503, JSON_TYPE, JSON.stringify(r) + "\n");
      }
      case "/api/topology":
        return send(res, req, 200, JSON_TYPE, JSON.stringify(topologyOf(node)));
      case "/":
      case "/index.html":
        res.setHeader("Content-Security-Policy", PAGE_CSP);
        return send(res, req, 200, "text/html; charset=utf-8", PAGE_HTML);
      default:
        return send(res, req, 404, "text/plain; charset=utf-8", NOT_FOUND);
    }
  };

  await new Promise<void>((resolve, reject) => {
    const failed = (e: Error) => {
      server.off("listening", ok);
      reject(new AdminError(listenProblem(listen.host, listen.port, e), { cause: e }));
    };
    const ok = () => {
      server.off("error", failed);
      resolve();
    };
    server.once("error", failed);
    server.once("listening", ok);
    server.listen(listen.port, listen.host);
  });
  // Later errors (a socket's) must not crash the process.
  server.on("error", () => {});
  const port = (server.address() as AddressInfo).port;
  let host = listen.host;
  if (host === "0.0.0.0") host = "127.0.0.1";
  if (host === "::") host = "::1";
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
  let closing: Promise<void> | null = null;
  return {
    url,
    port,
    metrics,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
        (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      });
      return closing;
    },
  };
}

const JSON_TYPE = "application/json; charset=utf-8";

/** Writes one whole answer (no body for HEAD), never cached, never sniffed. */
function send(
  res: ServerResponse,
  req: IncomingMessage,
  status: number,
  type: string,
  body: string,
): void {
  const bytes = Buffer.from(body, "utf8");
  res.writeHead(status, {
    "Content-Type": type,
    "Content-Length": bytes.length,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
  });
  res.end(req.method === "HEAD" ? undefined : bytes);
}
