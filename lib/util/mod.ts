/**
 * Layer 0: what every layer may use. No imports from any other folder of lib/.
 *
 * - `monoNow`: the runtime side's one clock (monotonic ms).
 * - `withTimeout`: a deadline on a promise.
 * - `backoffDelay`, `Backoff`: reconnect delays with full jitter; `Sleeper`: sleeps a shutdown
 *   can cut short.
 * - `MinHeap`: a binary heap for timer queues.
 * - the sans-IO contract every protocol core follows (`sansio.ts`).
 * - `VERSION`: Macula's version.
 * - `Log`, `Logger`: levels, text or JSON lines, rate-limited repeats (`log.ts`).
 */
export { monoNow } from "./clock.ts";
export { withTimeout } from "./timeout.ts";
export { Backoff, backoffDelay, type BackoffOptions } from "./backoff.ts";
export { Sleeper } from "./sleep.ts";
export { MinHeap } from "./heap.ts";
export { RateLimiter } from "./rate.ts";
export { VERSION } from "./version.ts";
export { Driver, type DriverOptions, type Rng, type SansIoCore, type Timed } from "./sansio.ts";
export {
  lineLog,
  type Log,
  LOG_FORMATS,
  LOG_LEVELS,
  type LogFields,
  type LogFormat,
  logFormatProblem,
  Logger,
  type LoggerOptions,
  type LogLevel,
  logLevelProblem,
  SILENT,
} from "./log.ts";
