import { describe, expect, test } from "bun:test";
import {
  checkPattern,
  checkProcedure,
  checkTopic,
  hasWildcard,
  matches,
  MAX_SEGMENTS,
  MAX_TOPIC_BYTES,
  patternProblem,
  TopicError,
  topicProblem,
} from "../../lib/messaging/topics.ts";

describe("matches", () => {
  const table: [string, string, boolean][] = [
    ["a", "a", true],
    ["a", "b", false],
    ["a.b.c", "a.b.c", true],
    ["a.b.c", "a.b", false],
    ["a.b", "a.b.c", false],
    ["*", "a", true],
    ["*", "a.b", false],
    ["a.*", "a.b", true],
    ["a.*", "a", false],
    ["a.*", "a.b.c", false],
    ["*.b", "a.b", true],
    ["*.b", "a.c", false],
    ["a.*.c", "a.b.c", true],
    ["a.*.c", "a.b.d", false],
    ["*.*", "a.b", true],
    ["*.*", "a", false],
    ["*.*.*", "a.b.c", true],
    [">", "a", true],
    [">", "a.b.c", true],
    ["a.>", "a", false], // '>' needs at least one segment
    ["a.>", "a.b", true],
    ["a.>", "a.b.c.d", true],
    ["a.>", "b.c", false],
    ["*.>", "a", false],
    ["*.>", "a.b", true],
    ["a.*.>", "a.b", false],
    ["a.*.>", "a.b.c", true],
    ["a.b.>", "a.b.c.d.e", true],
    ["A.b", "a.b", false], // case-sensitive
    ["a-b_c.9", "a-b_c.9", true],
  ];
  for (const [pattern, topic, want] of table) {
    test(`${pattern} ${want ? "matches" : "does not match"} ${topic}`, () => {
      expect(matches(pattern, topic)).toBe(want);
    });
  }
  test("a topic matches itself as a pattern", () => {
    for (const t of ["x", "x.y", "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p"]) {
      expect(matches(t, t)).toBe(true);
    }
  });
});

describe("topic and pattern validation", () => {
  const seg64 = "s".repeat(64);
  const valid = ["a", "a.b", "A-Z_09.x", seg64, Array(16).fill("x").join(".")];
  for (const t of valid) {
    test(`valid topic ${t.slice(0, 20)}`, () => {
      expect(checkTopic(t)).toBe(t);
      expect(checkPattern(t)).toBe(t);
      expect(topicProblem(t)).toBeNull();
    });
  }

  test("valid patterns", () => {
    for (const p of ["*", ">", "a.*", "a.>", "*.*.>", "a.*.c"]) {
      expect(patternProblem(p)).toBeNull();
      expect(hasWildcard(p)).toBe(true);
    }
    expect(hasWildcard("a.b")).toBe(false);
  });

  const invalidTopics: [unknown, RegExp][] = [
    ["", /topic is empty/],
    [".a", /empty segment 1/],
    ["a.", /empty segment 2/],
    ["a..b", /empty segment 2/],
    ["a.*", /wildcard '\*'.*only in subscription patterns/],
    [">", /wildcard '>'.*only in subscription patterns/],
    ["a b", /contains " "/],
    ["a/b", /contains "\/"/],
    ["é", /contains "é"/],
    ["s".repeat(65), /segment 1 is 65 characters \(at most 64\)/],
    [Array(17).fill("x").join("."), /17 segments \(at most 16\)/],
    [Array(5).fill("s".repeat(60)).join("."), /at most 256 bytes/],
    [42, /not a string/],
  ];
  for (const [t, re] of invalidTopics) {
    test(`invalid topic ${JSON.stringify(t)?.slice(0, 24)} → ${re.source}`, () => {
      expect(() => checkTopic(t as string)).toThrow(TopicError);
      expect(() => checkTopic(t as string)).toThrow(re);
      expect(() => checkTopic(t as string)).toThrow(/^invalid topic /);
    });
  }

  const invalidPatterns: [string, RegExp][] = [
    ["a.>.b", /'>' must be the last segment \(found at segment 2 of 3\)/],
    [">.>", /'>' must be the last segment/],
    ["a*", /mixes a wildcard.*whole segments/],
    ["a.b>", /segment 2 "b>" mixes a wildcard/],
    ["**", /mixes a wildcard/],
    ["a..*", /empty segment 2/],
    ["", /pattern is empty/],
  ];
  for (const [p, re] of invalidPatterns) {
    test(`invalid pattern ${p} → ${re.source}`, () => {
      expect(() => checkPattern(p)).toThrow(TopicError);
      expect(() => checkPattern(p)).toThrow(re);
      expect(() => checkPattern(p)).toThrow(/^invalid pattern /);
    });
  }

  test("limits are the documented ones", () => {
    expect(MAX_SEGMENTS).toBe(16);
    expect(MAX_TOPIC_BYTES).toBe(256);
    const head = Array(3).fill("s".repeat(64)).join(".") + ".";
    const exactly256 = head + "t".repeat(61);
    expect(exactly256.length).toBe(256);
    expect(topicProblem(exactly256)).toBeNull();
    expect(topicProblem(exactly256 + "t")).toMatch(/257 characters \(at most 256 bytes\)/);
  });

  test("procedure names: topic syntax, no wildcards", () => {
    expect(checkProcedure("math.add")).toBe("math.add");
    expect(() => checkProcedure("math.*")).toThrow(
      /invalid procedure "math.\*": procedure contains/,
    );
  });

  test("long invalid input is shortened in the message", () => {
    const long = "x".repeat(300);
    expect(() => checkTopic(long)).toThrow(/…: topic is 300 characters/);
  });
});
