/**
 * `macula` system: Macula's client (`connect` from mod.ts) attached to a Macula node over QUIC,
 * mutual TLS with the node's dev credentials, subscriptions at their default buffer and
 * overflow policy.
 */
import type { Consumer, MsgClient } from "./adapter.ts";
import { loadClientModule } from "./macula-api.ts";

export async function openMacula(url: string, creds: string): Promise<MsgClient> {
  const { connect } = await loadClientModule();
  const c = await connect({ url, creds });
  return {
    publish: (topic, payload) => c.publish(topic, payload),
    flush: () => c.flush(),
    writable: () => c.writable(),
    async consume(topic, onMessage): Promise<Consumer> {
      const sub = c.subscribe(topic);
      const done = (async () => {
        for await (const m of sub) onMessage(m.payload);
      })();
      await c.flush(); // the node, and its peers, know the subscription
      return { done, stop: () => sub.unsubscribe(), dropped: () => sub.stats().dropped };
    },
    call: (proc, payload, timeoutMs) => c.call(proc, payload, { timeoutMs }),
    async serve(proc, handler) {
      const reg = c.serve(proc, (p) => handler(p));
      await reg.ready;
      return { stop: () => reg.stop() };
    },
    close: () => c.close(),
  };
}
