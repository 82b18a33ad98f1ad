/**
 * `nats` system: the official NATS JavaScript client (`@nats-io/transport-node`, its Node TCP
 * transport, which runs on Bun) at its default connection options.
 */
import { connect } from "@nats-io/transport-node";
import type { Consumer, MsgClient } from "./adapter.ts";

export async function openNats(url: string): Promise<MsgClient> {
  const nc = await connect({ servers: url });
  return {
    publish: (topic, payload) => nc.publish(topic, payload),
    flush: () => nc.flush(),
    async consume(topic, onMessage): Promise<Consumer> {
      const sub = nc.subscribe(topic);
      const done = (async () => {
        for await (const m of sub) onMessage(m.data);
      })();
      await nc.flush(); // the server has the SUB
      return { done, stop: () => sub.unsubscribe(), dropped: () => undefined };
    },
    async call(proc, payload, timeoutMs) {
      const m = await nc.request(proc, payload, { timeout: timeoutMs });
      return m.data;
    },
    async serve(proc, handler) {
      const sub = nc.subscribe(proc);
      void (async () => {
        for await (const m of sub) m.respond(handler(m.data));
      })();
      await nc.flush();
      return { stop: () => sub.unsubscribe() };
    },
    async close() {
      await nc.drain();
    },
  };
}
