/** The attacks of bench/abuse (run by attack.ts, one per process). */

/** What each attack does (docs/benchmarks.md, "Under attack"). */
export const ATTACKS: Record<string, string> = {
  "slow-consumer": "subscribes to the victim's topic with 8 sessions and never reads",
  "deaf-caller": "calls a procedure with 32 KiB replies, never reading the replies",
  "sub-churn": "subscribes and unsubscribes distinct patterns as fast as it can (to its limit)",
  "malformed": "opens sessions that send a malformed frame, again and again",
  "big-frames": "16 sessions each announce a 16 MiB PUB and send it slowly",
  "handshakes": "starts QUIC handshakes it never finishes, as fast as the node refuses them",
  "punch": "asks the node (as a node) to punch toward an address, as fast as it answers",
  "gossip":
    "as a node, tells membership lies: the node itself dead at the last incarnation, and 64 made-up members (own keys, true signatures, no certificates) per message",
};
