/**
 * A relay endpoint between two endpoints, wired the way nodes wire it (lib/nat/relay.ts), for
 * tests and benchmarks on 127.0.0.1: A dials `toB` and B accepts a connection that only ever
 * went through the relay.
 */
import { type RelayLimits, relayOn, RelayTunnels } from "../../lib/nat/relay.ts";
import type { HostPort, QuicEndpoint } from "../../lib/quic/mod.ts";

export function relayBetween(
  r: QuicEndpoint,
  a: QuicEndpoint,
  b: QuicEndpoint,
  limits: RelayLimits,
) {
  const relay = relayOn(r, limits);
  r.setNonQuicHandler((d, h, p) => void relay.onPacket(d, h, p));
  const { tokenA, tokenB } = relay.allocate(
    { nodeId: "a", remote: () => a.address },
    { nodeId: "b", remote: () => b.address },
  );
  const ta = new RelayTunnels(a);
  const tb = new RelayTunnels(b);
  a.setNonQuicHandler((d, h, p) => void ta.onPacket(d, h, p));
  b.setNonQuicHandler((d, h, p) => void tb.onPacket(d, h, p));
  const toB: HostPort = ta.open(tokenA, () => r.address);
  tb.open(tokenB, () => r.address);
  return { relay, ta, tb, toB };
}
