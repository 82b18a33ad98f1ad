/** bench/udp probe's Worker: posts every message straight back (the Web Worker API). */
interface WorkerScope {
  onmessage: ((e: MessageEvent) => void) | null;
  postMessage(v: unknown): void;
}
const scope = globalThis as unknown as WorkerScope;
scope.onmessage = (e) => scope.postMessage(e.data);
