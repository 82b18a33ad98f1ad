/**
 * Latency statistics. Percentiles come from an HDR histogram (hdr-histogram-js, pure-JS build,
 * 3 significant digits: each reported percentile is within 0.1% of the true sample value);
 * count, min, max and mean are exact. The benches and `macula bench` record through one
 * `LatencyRecorder`, so their percentiles are computed the same way.
 */
import * as hdr from "hdr-histogram-js";

export interface LatencySummary {
  count: number;
  /** All in microseconds. */
  min: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  mean: number;
  max: number;
}

/** Samples are integer nanoseconds from 1 ns to an hour (longer ones are recorded as an hour). */
const HIGHEST_NS = 3_600_000_000_000;

const us = (ns: number): number => ns / 1000;

/**
 * Nanosecond samples into an HDR histogram, with the exact count, min, max and sum beside it.
 * Call `destroy` when done (the histogram holds a few tens of KiB).
 */
export class LatencyRecorder {
  readonly #h = hdr.build({
    bitBucketSize: 64,
    lowestDiscernibleValue: 1,
    highestTrackableValue: HIGHEST_NS,
    numberOfSignificantValueDigits: 3,
    useWebAssembly: false,
  });
  count = 0;
  #sum = 0;
  #min = Number.POSITIVE_INFINITY;
  #max = 0;

  /** Records one sample, in nanoseconds (rounded; below 1 ns counts as 1 ns). */
  record(ns: number): void {
    const v = Math.min(HIGHEST_NS, Math.max(1, Math.round(ns)));
    this.#h.recordValue(v);
    this.count++;
    this.#sum += v;
    if (v < this.#min) this.#min = v;
    if (v > this.#max) this.#max = v;
  }

  /** Adds every sample of `other` to this one. */
  add(other: LatencyRecorder): void {
    if (other.count === 0) return;
    this.#h.add(other.#h);
    this.count += other.count;
    this.#sum += other.#sum;
    this.#min = Math.min(this.#min, other.#min);
    this.#max = Math.max(this.#max, other.#max);
  }

  /**
   * The summary in microseconds; throws when nothing was recorded. A percentile is the
   * histogram's value, kept within the exact min and max (the histogram reports the top of a
   * sample's bucket, which may lie a little above the largest sample).
   */
  summary(): LatencySummary {
    if (this.count === 0) throw new Error("no samples");
    const at = (p: number): number =>
      us(Math.min(this.#max, Math.max(this.#min, this.#h.getValueAtPercentile(p))));
    return {
      count: this.count,
      min: us(this.#min),
      p50: at(50),
      p90: at(90),
      p99: at(99),
      p999: at(99.9),
      mean: us(this.#sum / this.count),
      max: us(this.#max),
    };
  }

  /**
   * HdrHistogram's standard percentile distribution text (the `.hgrm` format that
   * HdrHistogram's plotter and `HistogramLogProcessor` print), values in microseconds.
   */
  percentileText(): string {
    return this.#h.outputPercentileDistribution(5, 1000);
  }

  /** The histogram in HdrHistogram's compressed base64 encoding (values in nanoseconds). */
  base64(): string {
    return hdr.encodeIntoCompressedBase64(this.#h);
  }

  destroy(): void {
    this.#h.destroy();
  }
}

/** Summarises integer nanosecond samples; values are reported in microseconds. */
export function summarizeNs(samplesNs: readonly number[]): LatencySummary {
  if (samplesNs.length === 0) throw new Error("no samples");
  const r = new LatencyRecorder();
  for (const v of samplesNs) r.record(v);
  const out = r.summary();
  r.destroy();
  return out;
}

/** Rounds for display and JSON: 1 decimal below 100, else integer-ish with 3 significant digits. */
export function round(v: number): number {
  if (!Number.isFinite(v)) return v;
  if (Math.abs(v) >= 100) return Math.round(v);
  return Math.round(v * 10) / 10;
}
