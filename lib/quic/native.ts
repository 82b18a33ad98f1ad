/**
 * Loads quiche's Node-API bindings shipped by `@matrixai/quic`.
 *
 * The platform file is required directly (not through `@matrixai/quic/native`, whose loader
 * searches for packages at run time) so that `bun build --compile` embeds the addon in the
 * `macula` binary. Deno and Node load the same file through `createRequire`.
 */
import { createRequire } from "node:module";
import process from "node:process";
import type { Quiche } from "@matrixai/quic/native/quiche.js";

export type * from "@matrixai/quic/native/types.js";
export type { Host as HostPort } from "@matrixai/quic/native/types.js";
export type { Quiche };

function load(): Quiche {
  const platform = `${process.platform}-${process.arch}`;
  if (platform !== "linux-x64") {
    // Other platforms: the package's own loader finds its prebuilt addon.
    const req = createRequire(import.meta.url);
    return req("@matrixai/quic/dist/native/quiche.js").default as Quiche;
  }
  if (typeof Bun !== "undefined") {
    // A literal require: the bundler sees it and embeds the addon in compiled binaries.
    return require("@matrixai/quic-linux-x64/node.napi.node") as Quiche;
  }
  return createRequire(import.meta.url)("@matrixai/quic-linux-x64/node.napi.node") as Quiche;
}

/** The quiche bindings. */
export const quiche: Quiche = load();

/** The QUIC version quiche speaks (RFC 9000's is 0x00000001), for `macula version --verbose`. */
export function quicheProtocolVersion(): number {
  return quiche.PROTOCOL_VERSION;
}
