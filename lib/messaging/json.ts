/**
 * JSON on top of byte payloads: UTF-8 JSON text ↔ values, with errors that say what is wrong.
 *
 * @example
 * ```ts
 * import { decodeJson, encodeJson } from "./json.ts";
 * const bytes = encodeJson({ n: 1 }); // UTF-8 of {"n":1}
 * decodeJson(bytes); // { n: 1 }
 * decodeJson(new TextEncoder().encode("{n:1}")); // throws JsonError: invalid JSON payload …
 * ```
 */
import { JsonError } from "./errors.ts";

export { JsonError };

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/**
 * Encodes `value` as UTF-8 JSON. Throws `JsonError` for values JSON cannot represent: a
 * top-level `undefined`, function or symbol, a `BigInt`, or a cycle.
 */
export function encodeJson(value: unknown): Uint8Array {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (e) {
    throw new JsonError(`value cannot be encoded as JSON: ${(e as Error).message}`, { cause: e });
  }
  if (text === undefined) {
    throw new JsonError(`value cannot be encoded as JSON: a top-level ${typeof value}`);
  }
  return encoder.encode(text);
}

/**
 * Decodes a UTF-8 JSON payload. Throws `JsonError` naming the problem: not UTF-8, empty, or
 * invalid JSON (with the parser's message and the payload's length and start).
 */
export function decodeJson(payload: Uint8Array): unknown {
  let text: string;
  try {
    text = decoder.decode(payload);
  } catch (e) {
    throw new JsonError(`payload (${payload.byteLength} bytes) is not valid UTF-8 text`, {
      cause: e,
    });
  }
  if (text.trim().length === 0) {
    throw new JsonError(`payload (${payload.byteLength} bytes) is empty, not JSON`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    const start = text.length > 40 ? `${text.slice(0, 40)}…` : text;
    throw new JsonError(
      `invalid JSON payload (${payload.byteLength} bytes, starting ${JSON.stringify(start)}): ${
        (e as Error).message
      }`,
      { cause: e },
    );
  }
}
