/**
 * `/healthz` and `/readyz` of the admin listener (docs/operations.md, "Health"). Health is the
 * process serving HTTP at all; readiness is what a load balancer or an orchestrator waits for:
 * the node listens, its certificate is valid now, and, when seeds are configured, it has joined
 * the mesh (another member alive, or a route).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseCert } from "../identity/mod.ts";
import type { AdminNode } from "./view.ts";

/** One readiness check: its name, whether it passes, and why not. */
export interface Check {
  name: "listening" | "certificate" | "joined";
  ok: boolean;
  why?: string;
}

/** The answer of `/readyz`. */
export interface Readiness {
  ready: boolean;
  checks: Check[];
}

/** The validity of the node's certificate, or why it could not be read. */
export type Validity = { notBefore: Date; notAfter: Date } | { problem: string };

/**
 * The validity of `node`'s certificate: the node's own `certificate` accessor when it has one,
 * else read from the file it runs on (`tls.cert`, or the dev realm's `<data_dir>/node/node.crt`).
 */
export function certificateValidity(
  node: AdminNode & { readonly certificate?: { notBefore: Date; notAfter: Date } },
): Validity {
  if (node.certificate) {
    return { notBefore: node.certificate.notBefore, notAfter: node.certificate.notAfter };
  }
  const path = node.config.tls?.cert ?? join(node.config.dataDir, "node", "node.crt");
  try {
    const c = parseCert(readFileSync(path, "utf8"), path);
    return { notBefore: c.notBefore, notAfter: c.notAfter };
  } catch (e) {
    return { problem: `cannot read the node's certificate ${path}: ${(e as Error).message}` };
  }
}

/** The readiness checks of `node` at `now`. */
export function readiness(node: AdminNode, cert: Validity, now = new Date()): Readiness {
  const checks: Check[] = [];
  checks.push(
    node.running
      ? { name: "listening", ok: true }
      : { name: "listening", ok: false, why: "the node is stopping" },
  );
  if ("problem" in cert) checks.push({ name: "certificate", ok: false, why: cert.problem });
  else if (now < cert.notBefore) {
    checks.push({
      name: "certificate",
      ok: false,
      why: `the node's certificate is valid from ${cert.notBefore.toISOString()} only`,
    });
  } else if (now > cert.notAfter) {
    checks.push({
      name: "certificate",
      ok: false,
      why: `the node's certificate expired on ${cert.notAfter.toISOString()}`,
    });
  } else checks.push({ name: "certificate", ok: true });
  const seeds = node.config.join;
  if (seeds.length > 0) {
    const others = node.membership.core.liveCount - 1;
    if (others > 0 || node.routes.length > 0) checks.push({ name: "joined", ok: true });
    else {
      const list = seeds.slice(0, 3).map((s) =>
        s.host.includes(":") ? `[${s.host}]:${s.port}` : `${s.host}:${s.port}`
      ).join(", ");
      checks.push({
        name: "joined",
        ok: false,
        why: `not joined: no other member alive and no route yet (seeds: ${list}${
          seeds.length > 3 ? ", …" : ""
        })`,
      });
    }
  }
  return { ready: checks.every((c) => c.ok), checks };
}
