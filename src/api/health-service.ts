/**
 * The gRPC health checking protocol (`grpc.health.v1.Health`), serving
 * status from readiness. connect-es has none (connect-es#797).
 */
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/grpc/health/v1/health_pb.js";
import type { Readiness } from "./readiness.js";

/**
 * Health for the server as a whole (`""`) and for each name in `services`;
 * Check of another name is NOT_FOUND, Watch of it reports SERVICE_UNKNOWN.
 * Watch sends the current status, then every change, until the call ends or
 * `drain` aborts (shutdown).
 */
export function createHealthService(readiness: Readiness, services: readonly string[], drain: AbortSignal): ServiceImpl<typeof Health> {
  const known = new Set(["", ...services]);
  const status = () => (readiness.isReady() ? Status.SERVING : Status.NOT_SERVING);
  return {
    check(request) {
      if (!known.has(request.service)) throw new ConnectError(`unknown service ${request.service}`, Code.NotFound);
      return { status: status() };
    },
    list() {
      return { statuses: Object.fromEntries([...known].map((name) => [name, { status: status() }])) };
    },
    async *watch(request, context) {
      const signal = AbortSignal.any([context.signal, drain]);
      if (!known.has(request.service)) {
        yield { status: Status.SERVICE_UNKNOWN };
        return;
      }
      let wake: (() => void) | undefined;
      const unsubscribe = readiness.subscribe(() => wake?.());
      const onAbort = () => wake?.();
      signal.addEventListener("abort", onAbort);
      try {
        let last: Status | undefined;
        while (!signal.aborted) {
          const current = status();
          if (current !== last) {
            last = current;
            yield { status: current };
          }
          await new Promise<void>((resolve) => {
            wake = resolve;
            if (signal.aborted || status() !== last) resolve();
          });
        }
      } finally {
        unsubscribe();
        signal.removeEventListener("abort", onAbort);
      }
    },
  };
}
