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

/** A payload that is not valid JSON, or a value that cannot be encoded as JSON. */
export class JsonError extends Error {
  override name = "JsonError";
}

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
    throw new JsonError(`value cannot be encoded as JSON: ${(e as Error).message}`);
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
  } catch {
    throw new JsonError(`payload (${payload.byteLength} bytes) is not valid UTF-8 text`);
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
    );
  }
}
