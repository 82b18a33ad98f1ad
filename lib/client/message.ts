/** A message as a subscriber receives it. */
import { decodeJson } from "../messaging/mod.ts";

const utf8 = new TextDecoder();

/**
 * One received message: the topic it was published on and its payload bytes.
 *
 * @example
 * ```ts
 * import { Message } from "./message.ts";
 * const m = new Message("greetings.en", new TextEncoder().encode('{"hi":1}'));
 * m.text(); // '{"hi":1}'
 * m.json<{ hi: number }>().hi; // 1
 * ```
 */
export class Message {
  constructor(
    readonly topic: string,
    readonly payload: Uint8Array,
    /**
     * The W3C trace context the publisher sent (docs/tracing.md), when it was traced: start a
     * `process` span of your own from it to follow the message into your code.
     */
    readonly traceparent?: string,
    readonly tracestate?: string,
  ) {}
  /** The payload as UTF-8 text. */
  text(): string {
    return utf8.decode(this.payload);
  }
  /** The payload parsed as JSON (`JsonError` when it is not). */
  json<T = unknown>(): T {
    return decodeJson(this.payload) as T;
  }
}
