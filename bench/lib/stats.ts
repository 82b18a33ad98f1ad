/**
 * Latency statistics. Percentiles come from an HDR histogram (hdr-histogram-js, pure-JS build,
 * 3 significant digits: each reported percentile is within 0.1% of the true sample value);
 * count, min, max and mean are exact.
 */
import * as hdr from "hdr-histogram-js";

export interface LatencySummary {
  count: number;
  /** All in microseconds. */
  min: number;
  p50: number;
  p99: number;
  p999: number;
  mean: number;
  max: number;
}

/** Summarises integer nanosecond samples; values are reported in microseconds. */
export function summarizeNs(samplesNs: readonly number[]): LatencySummary {
  if (samplesNs.length === 0) throw new Error("no samples");
  const h = hdr.build({
    bitBucketSize: 64,
    lowestDiscernibleValue: 1,
    highestTrackableValue: 3_600_000_000_000, // 1 hour in ns
    numberOfSignificantValueDigits: 3,
    useWebAssembly: false,
  });
  let sum = 0;
  let min = Number.POSITIVE_INFINITY;
  let max = 0;
  for (const v of samplesNs) {
    h.recordValue(v);
    sum += v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const us = (ns: number): number => ns / 1000;
  const out: LatencySummary = {
    count: samplesNs.length,
    min: us(min),
    p50: us(h.getValueAtPercentile(50)),
    p99: us(h.getValueAtPercentile(99)),
    p999: us(h.getValueAtPercentile(99.9)),
    mean: us(sum / samplesNs.length),
    max: us(max),
  };
  h.destroy();
  return out;
}

/** Rounds for display and JSON: 1 decimal below 100, else integer-ish with 3 significant digits. */
export function round(v: number): number {
  if (!Number.isFinite(v)) return v;
  if (Math.abs(v) >= 100) return Math.round(v);
  return Math.round(v * 10) / 10;
}
