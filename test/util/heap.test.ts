import { expect, test } from "bun:test";
import { MinHeap } from "../../lib/util/heap.ts";
import { prng } from "../helpers/quic.ts";

test("MinHeap pops in order, and retain keeps exactly what it accepts, still ordered", () => {
  const rand = prng(5);
  const heap = new MinHeap<number>((a, b) => a < b);
  const values = Array.from({ length: 2000 }, () => Math.floor(rand() * 1000));
  for (const v of values) heap.push(v);
  expect(heap.peek()).toBe(Math.min(...values));
  heap.retain((v) => v % 3 !== 0);
  const out: number[] = [];
  for (let v = heap.pop(); v !== undefined; v = heap.pop()) out.push(v);
  expect(out).toEqual(values.filter((v) => v % 3 !== 0).sort((a, b) => a - b));
  expect(heap.size).toBe(0);
  expect(heap.pop()).toBeUndefined();
});
