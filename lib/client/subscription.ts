/**
 * A subscription on the client side: the pattern (and queue group) the node routes to it, and the
 * bounded buffer (lib/messaging/buffer.ts) between the connection and the application's loop.
 */
import { type BufferStats, MessageBuffer } from "../messaging/mod.ts";
import type { Message } from "./message.ts";
import type { SubscribeOptions } from "./options.ts";

/** Counters of one subscription. */
export interface SubscriptionStats extends BufferStats {
  /** Messages the node dropped for this subscription because the connection was backed up. */
  droppedAtNode: number;
}

/** What a subscription needs of its client: to be forgotten (and the node told). */
interface Owner {
  unsubscribeSid(sid: number): void;
}

/**
 * A subscription: iterate it for messages; `unsubscribe` (or `break`) ends it.
 *
 * @example
 * ```ts
 * import { connect } from "../../mod.ts";
 * const c = await connect();
 * const sub = c.subscribe("sensors.*.temp", { maxMessages: 1000 });
 * for await (const m of sub) {
 *   console.log(m.topic, m.text());
 *   break; // unsubscribes
 * }
 * console.log(sub.stats().droppedAtNode);
 * await c.close();
 * ```
 */
export class Subscription implements AsyncIterable<Message> {
  /** @internal */ droppedAtNode = 0;
  /** @internal */ readonly buffer: MessageBuffer<Message>;

  /** @internal */
  constructor(
    readonly sid: number,
    readonly pattern: string,
    readonly queue: string | undefined,
    options: SubscribeOptions,
    private readonly client: Owner,
  ) {
    this.buffer = new MessageBuffer<Message>({
      ...options,
      sizeOf: (m) => m.payload.length + m.topic.length,
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<Message> {
    const it = this.buffer[Symbol.asyncIterator]();
    return {
      next: () => it.next(),
      return: (v?: unknown) => {
        this.unsubscribe();
        return it.return ? it.return(v) : Promise.resolve({ done: true, value: undefined });
      },
    };
  }

  /** Stops the subscription; messages already buffered are still delivered to the iterator. */
  unsubscribe(): void {
    this.client.unsubscribeSid(this.sid);
    this.buffer.close();
  }

  /** True once unsubscribed or the client closed. */
  get closed(): boolean {
    return this.buffer.closed;
  }

  /** The buffer's counters, and what the node dropped for this subscription. */
  stats(): SubscriptionStats {
    return { ...this.buffer.stats(), droppedAtNode: this.droppedAtNode };
  }
}
