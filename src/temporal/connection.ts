import { Client, Connection, defaultGrpcRetryOptions, makeGrpcRetryInterceptor } from "@temporalio/client";
import type { PayloadCodec } from "@temporalio/common";
import { OpenTelemetryWorkflowClientInterceptor } from "@temporalio/interceptors-opentelemetry/lib/client/index.js";
import type { TemporalConfig } from "../config.js";
import { createEncryptionCodec } from "./payload-codec.js";

/** The API process's one Temporal connection and the client built on it. */
export interface TemporalConnection {
  connection: Connection;
  client: Client;
  /** The codec the client uses, for decoding payloads read straight from history. */
  codec: PayloadCodec;
  namespace: string;
  taskQueue: string;
  /** Closes the gRPC channel; in-flight calls fail. */
  close(): Promise<void>;
}

/** Attempts per Temporal call for transient gRPC failures (UNAVAILABLE, RESOURCE_EXHAUSTED...). */
const RETRY_ATTEMPTS = 3;

/**
 * Creates the connection lazily: nothing is dialled until the first call, so
 * the API starts and serves `/health` while Temporal is down, and the channel
 * redials (backoff capped at 2 s) once Temporal is back. Payloads pass through
 * the AES-256-GCM codec. `traced`: each workflow call gets a client span, a
 * child of the active one, and Start hands its context to the workflow in the
 * start headers. Throws only for a malformed configuration.
 */
export function createTemporalConnection(config: TemporalConfig, options: { traced?: boolean } = {}): TemporalConnection {
  const connection = Connection.lazy({
    address: `${config.address.host}:${config.address.port}`,
    connectTimeout: "5s",
    interceptors: [makeGrpcRetryInterceptor(defaultGrpcRetryOptions({ maxAttempts: RETRY_ATTEMPTS, maxIntervalMs: () => 1_000 }))],
    channelArgs: {
      "grpc.initial_reconnect_backoff_ms": 250,
      "grpc.max_reconnect_backoff_ms": 2_000,
    },
  });
  const codec = createEncryptionCodec(config.codecKeys);
  const client = new Client({
    connection,
    namespace: config.namespace,
    dataConverter: { payloadCodecs: [codec] },
    ...(options.traced ? { interceptors: { workflow: [new OpenTelemetryWorkflowClientInterceptor()] } } : {}),
  });
  return {
    connection,
    client,
    codec,
    namespace: config.namespace,
    taskQueue: config.taskQueue,
    close: () => connection.close(),
  };
}
