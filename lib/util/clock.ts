/**
 * The one clock of the runtime side: monotonic milliseconds (`performance.now()`), for every
 * timer, deadline and interval in lib/quic, lib/peer, lib/nat, lib/node and lib/client. Wall-clock
 * time (`Date`) is only for what is about calendars: certificate validity and file names.
 * Protocol cores never read a clock: they are handed `now` (lib/util/sansio.ts).
 */

/** Milliseconds since an arbitrary origin; never goes backwards. */
export function monoNow(): number {
  return performance.now();
}
