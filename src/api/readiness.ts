/**
 * Whether the API should receive traffic: Temporal answers and the server is
 * not shutting down. Feeds `/ready` and the gRPC health service.
 */

/** The readiness state and its changes. */
export interface Readiness {
  /** True while Temporal answered the last probe and no shutdown has begun. */
  isReady(): boolean;
  /** True when the last probe of Temporal succeeded. */
  temporalReachable(): boolean;
  /** True once {@link beginShutdown} was called. */
  shuttingDown(): boolean;
  /** Probes Temporal now and returns the new readiness. */
  refresh(): Promise<boolean>;
  /** Marks the server as draining: not ready from now on. */
  beginShutdown(): void;
  /** Calls `listener` on every change of {@link isReady}; returns the unsubscribe function. */
  subscribe(listener: (ready: boolean) => void): () => void;
  /** Stops the periodic probe. */
  stop(): void;
}

/**
 * Starts probing with `probe` now and every `intervalMs` (a timer that does
 * not keep the process alive). `probe` must not throw.
 */
export function createReadiness(probe: () => Promise<boolean>, intervalMs: number): Readiness {
  let reachable = false;
  let draining = false;
  let probing: Promise<boolean> | undefined;
  const listeners = new Set<(ready: boolean) => void>();
  const ready = () => reachable && !draining;
  const update = (change: () => void) => {
    const before = ready();
    change();
    if (ready() !== before) for (const listener of listeners) listener(ready());
  };
  const refresh = () => {
    probing ??= probe().then((ok) => {
      probing = undefined;
      update(() => {
        reachable = ok;
      });
      return ready();
    });
    return probing;
  };
  const timer = setInterval(() => void refresh(), intervalMs);
  timer.unref();
  void refresh();
  return {
    isReady: ready,
    temporalReachable: () => reachable,
    shuttingDown: () => draining,
    refresh,
    beginShutdown: () =>
      update(() => {
        draining = true;
      }),
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    stop: () => clearInterval(timer),
  };
}
