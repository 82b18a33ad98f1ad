import { describe, expect, test } from "bun:test";
import { withTimeout } from "../../lib/util/timeout.ts";

describe("withTimeout", () => {
  test("settles like the promise when it is in time", async () => {
    expect(await withTimeout(Promise.resolve(7), 1000, () => new Error("late"))).toBe(7);
    await expect(withTimeout(Promise.reject(new Error("own")), 1000, () => new Error("late")))
      .rejects.toThrow("own");
  });

  test("rejects with the given error when the promise is late", async () => {
    const never = new Promise<number>(() => {});
    await expect(withTimeout(never, 10, () => new RangeError("too slow"))).rejects.toThrow(
      RangeError,
    );
  });
});
