import { describe, expect, test } from "bun:test";
import { decodeJson, encodeJson, JsonError } from "../../lib/messaging/json.ts";

const utf8 = (s: string) => new TextEncoder().encode(s);

describe("JSON payload helpers", () => {
  test("round trips", () => {
    for (const v of [null, 0, -1.5, "héllo ✓", true, [], {}, { a: [1, { b: "c" }] }]) {
      expect(decodeJson(encodeJson(v))).toEqual(v);
    }
    expect(new TextDecoder().decode(encodeJson({ n: 1 }))).toBe('{"n":1}');
  });

  test("invalid JSON names the problem", () => {
    expect(() => decodeJson(utf8("{n:1}"))).toThrow(JsonError);
    expect(() => decodeJson(utf8("{n:1}"))).toThrow(
      /^invalid JSON payload \(5 bytes, starting "\{n:1\}"\): /,
    );
    expect(() => decodeJson(utf8('{"a": 1'))).toThrow(/invalid JSON payload/);
    expect(() => decodeJson(utf8("x".repeat(100)))).toThrow(/starting "x{40}…"/);
  });

  test("empty and non-UTF-8 payloads", () => {
    expect(() => decodeJson(new Uint8Array())).toThrow(/payload \(0 bytes\) is empty, not JSON/);
    expect(() => decodeJson(utf8("  \n"))).toThrow(/is empty/);
    expect(() => decodeJson(new Uint8Array([0x22, 0xff, 0x22]))).toThrow(
      /payload \(3 bytes\) is not valid UTF-8 text/,
    );
  });

  test("values JSON cannot represent", () => {
    expect(() => encodeJson(undefined)).toThrow(/a top-level undefined/);
    expect(() => encodeJson(() => 1)).toThrow(/a top-level function/);
    expect(() => encodeJson(1n)).toThrow(/value cannot be encoded as JSON: /);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => encodeJson(cyclic)).toThrow(JsonError);
  });
});
