/** Seeded fuzzing of decoders: random bytes and mutated valid messages. */
import { WireError } from "../../lib/wire/mod.ts";
import { prng } from "./quic.ts";

/**
 * Feeds `decode` `count` inputs from `seed`: every fourth random bytes (up to 64), the rest a
 * sample with 1-4 bytes overwritten, a fifth of those cut short. Anything thrown but a
 * `WireError` fails (rethrown); returns how many inputs were refused with one.
 */
export function fuzzDecoder(
  samples: readonly Uint8Array[],
  decode: (bytes: Uint8Array) => unknown,
  seed: number,
  count = 20_000,
): number {
  const rnd = prng(seed);
  let errors = 0;
  for (let i = 0; i < count; i++) {
    let bytes: Uint8Array;
    if (i % 4 === 0) {
      bytes = new Uint8Array(Math.floor(rnd() * 64));
      for (let j = 0; j < bytes.length; j++) bytes[j] = Math.floor(rnd() * 256);
    } else {
      bytes = samples[i % samples.length]!.slice();
      const flips = 1 + Math.floor(rnd() * 4);
      for (let j = 0; j < flips; j++) {
        bytes[Math.floor(rnd() * bytes.length)] = Math.floor(rnd() * 256);
      }
      if (rnd() < 0.2) bytes = bytes.subarray(0, Math.floor(rnd() * bytes.length));
    }
    try {
      decode(bytes);
    } catch (e) {
      if (!(e instanceof WireError)) throw e;
      errors++;
    }
  }
  return errors;
}
