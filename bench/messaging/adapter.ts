/**
 * The slice of a messaging client that the bench drives. `client.ts` holds every measurement
 * loop and talks only to this interface, so both systems run the very same workload code; each
 * `<system>-adapter.ts` maps it onto the system's own client library, each operation onto one
 * library call.
 */
import type { SystemName } from "./protocol.ts";

export interface Consumer {
  /** Resolves when the subscription's message loop has ended (after `stop`, or on error). */
  done: Promise<void>;
  /** Ends the subscription; the loop ends soon after. */
  stop(): void;
  /** Messages the client library dropped on this subscription, if it counts them. */
  dropped(): number | undefined;
}

export interface MsgClient {
  /** Fire-and-forget publish (buffered by the library). */
  publish(topic: string, payload: Uint8Array): void;
  /** Resolves once the server/node has processed everything published before. */
  flush(): Promise<void>;
  /** The library's publish pacing, if it has one: resolves once its queue to the server drained. */
  writable?(): Promise<void>;
  /**
   * Subscribes to `topic` and calls `onMessage` for each payload, in the library's own receive
   * loop. Resolves once the subscription is in place at the server/node.
   */
  consume(topic: string, onMessage: (payload: Uint8Array) => void): Promise<Consumer>;
  /** One request/reply; rejects on timeout or when nobody serves `proc`. */
  call(proc: string, payload: Uint8Array, timeoutMs: number): Promise<Uint8Array>;
  /** Serves `proc` with `handler`; resolves once requests can reach it. */
  serve(proc: string, handler: (payload: Uint8Array) => Uint8Array): Promise<{ stop(): void }>;
  close(): Promise<void>;
}

/** `url` is what the system's node process announced; `creds` a credentials dir if it has one. */
export async function openClient(
  system: SystemName,
  url: string,
  creds: string | undefined,
): Promise<MsgClient> {
  if (system === "nats") {
    const { openNats } = await import("./nats-adapter.ts");
    return openNats(url);
  }
  const { openMacula } = await import("./macula-adapter.ts");
  if (creds === undefined) throw new Error("macula: --creds is required");
  return openMacula(url, creds);
}
