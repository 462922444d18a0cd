/**
 * Publishes audit events to Kafka (`agent.audit`, keyed by session id) through
 * one idempotent producer per worker process. Records published while a
 * produce request is in flight go out together in the next one (group
 * commit): one request and one acks=all round trip for many activities, no
 * added wait when they come one at a time. Without brokers configured, each
 * event is logged as one JSON line instead, as the seed did.
 */
import { fromJson, toJson } from "@bufbuild/protobuf";
import { Kafka, Partitioners, logLevel, type Message, type Producer } from "kafkajs";
import { Counter, Histogram } from "prom-client";
import { AuditEventSchema, type AuditEventJson } from "../../gen/somagent/orchestrator/v1/session_pb.js";
import { KAFKA_PRODUCER_TIMEOUTS, type KafkaConfig } from "../config.js";
import type { Logger, LogLevel } from "../shared/logger.js";
import type { Registry } from "../shared/metrics.js";
import { TransientCallError } from "../shared/call-errors.js";
import { silenceKafkajsNegativeTimeoutWarning } from "../shared/kafkajs-warning.js";
import { withOutboundSpan } from "../shared/outbound-span.js";

/** Target name in errors and metrics. */
export const KAFKA_TARGET = "kafka";

/** The worker's audit sink. */
export interface AuditProducer {
  /** Creates the topic when absent and connects; throws {@link TransientCallError} when Kafka is unreachable. */
  start(): Promise<void>;
  /**
   * Publishes one event keyed by its session id; resolves once Kafka has
   * acknowledged it (acks=all), throws {@link TransientCallError} on failure.
   */
  publish(event: AuditEventJson): Promise<void>;
  /** Disconnects; safe to call more than once. */
  stop(): Promise<void>;
}

/** Records in one produce request at most: audit records are about 1 KB, well under the broker's 1 MB default. */
const MAX_BATCH_RECORDS = 500;

/** kafkajs' numeric levels as ours. */
const KAFKAJS_LEVELS: Partial<Record<logLevel, LogLevel>> = {
  [logLevel.ERROR]: "error",
  [logLevel.WARN]: "warn",
  [logLevel.INFO]: "info",
  [logLevel.DEBUG]: "debug",
};

/**
 * Builds the audit producer for `config`; logs instead of publishing when it
 * names no brokers. Counts publishes on `registry` (`somagent_audit_publishes_total`,
 * `somagent_audit_publish_duration_seconds`, and the sessions they end: `somagent_sessions_ended_total`),
 * which therefore holds one audit producer, as a worker process does.
 */
export function createAuditProducer(config: KafkaConfig, logger: Logger, registry: Registry): AuditProducer {
  const auditPublishes = new Counter({
    name: "somagent_audit_publishes_total",
    help: "Audit events handed to Kafka (or logged when Kafka is not configured), by outcome.",
    labelNames: ["outcome"] as const,
    registers: [registry],
  });
  const publishDuration = new Histogram({
    name: "somagent_audit_publish_duration_seconds",
    help: "Time from handing an audit event to Kafka until it was acknowledged (acks=all) or failed, group-commit wait included.",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  // Every session ends with exactly one audit event, so its recorded status is the session's outcome.
  const sessionsEnded = new Counter({
    name: "somagent_sessions_ended_total",
    help: "Sessions ended, by the status of their audit event (accepted, rejected, failed, canceled), counted once the event is recorded.",
    labelNames: ["status"] as const,
    registers: [registry],
  });
  const recorded = (event: AuditEventJson, outcome: "published" | "logged") => {
    auditPublishes.inc({ outcome });
    sessionsEnded.inc({ status: sessionStatusLabel(event) });
  };
  if (config.brokers.length === 0) {
    return {
      async start() {
        logger.warn("KAFKA_BOOTSTRAP_SERVERS is unset: audit events are logged, not published to Kafka");
      },
      async publish(event) {
        logger.info("audit event", { topic: config.auditTopic, audit: JSON.parse(auditRecord(event)) });
        recorded(event, "logged");
      },
      async stop() {},
    };
  }
  silenceKafkajsNegativeTimeoutWarning();
  const kafka = new Kafka({
    clientId: config.clientId,
    brokers: config.brokers.map((b) => `${b.host}:${b.port}`),
    logLevel: logLevel.WARN,
    logCreator: () => ({ level, log }) => {
      // kafkajs' own `timestamp` and `logger` fields repeat what the line already says.
      const { message, timestamp: _timestamp, logger: _logger, ...fields } = log;
      logger.log(KAFKAJS_LEVELS[level] ?? "error", `kafkajs: ${String(message)}`, fields);
    },
    ...KAFKA_PRODUCER_TIMEOUTS,
  });
  // Idempotence needs acks=-1 and at most 5 in flight; one keeps per-session order trivially.
  // The partitioner named (kafkajs's default, Java's murmur2, so a session's events land where Java clients put them)
  // rather than left implicit, which kafkajs answers with a warning about its v2 default change at every start.
  const producer: Producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  let connected = false;
  const send = createGroupCommit<Message>((messages) => producer.send({ topic: config.auditTopic, acks: -1, messages }).then(() => undefined));
  return {
    async start() {
      const admin = kafka.admin();
      try {
        await admin.connect();
        const existing = await admin.listTopics();
        if (!existing.includes(config.auditTopic)) {
          await admin.createTopics({
            waitForLeaders: true,
            topics: [
              {
                topic: config.auditTopic,
                numPartitions: config.auditTopicPartitions,
                replicationFactor: config.auditTopicReplicationFactor,
              },
            ],
          });
        }
        await producer.connect();
        connected = true;
      } catch (error) {
        throw new TransientCallError(KAFKA_TARGET, `cannot prepare topic ${config.auditTopic}: ${(error as Error).message}`, undefined, { cause: error });
      } finally {
        await admin.disconnect();
      }
    },
    async publish(event) {
      const stopTimer = publishDuration.startTimer();
      try {
        // Each record carries its own session's trace context, whichever batch the group commit puts it in.
        await withOutboundSpan(`publish ${config.auditTopic}`, { kind: "producer", attributes: { "messaging.system": "kafka", "messaging.destination.name": config.auditTopic } }, (traceHeaders) =>
          send({ key: event.sessionId ?? "", value: auditRecord(event), headers: traceHeaders }),
        );
        recorded(event, "published");
      } catch (error) {
        auditPublishes.inc({ outcome: "error" });
        throw new TransientCallError(KAFKA_TARGET, `publish to ${config.auditTopic} failed: ${(error as Error).message}`, undefined, { cause: error });
      } finally {
        stopTimer();
      }
    },
    async stop() {
      if (!connected) return;
      connected = false;
      await producer.disconnect();
    },
  };
}

/** `AUDIT_STATUS_ACCEPTED` as `accepted`. */
function sessionStatusLabel(event: AuditEventJson): string {
  return (event.status ?? "AUDIT_STATUS_UNSPECIFIED").replace(/^AUDIT_STATUS_/, "").toLowerCase();
}

/** The record consumers read: the event's proto JSON with proto field names (`audit_id`, `session_id`, …). */
export function auditRecord(event: AuditEventJson): string {
  return JSON.stringify(toJson(AuditEventSchema, fromJson(AuditEventSchema, event), { useProtoFieldName: true }));
}

/**
 * Turns one-at-a-time sends into batches: the first item goes out at once;
 * items arriving while a batch is in flight wait for it and then go out
 * together (at most {@link MAX_BATCH_RECORDS} a batch, in arrival order).
 * Each caller's promise settles with its own batch.
 */
function createGroupCommit<T>(sendBatch: (items: T[]) => Promise<void>): (item: T) => Promise<void> {
  let waiting: { item: T; resolve: () => void; reject: (error: unknown) => void }[] = [];
  let flushing = false;
  const flush = async () => {
    flushing = true;
    while (waiting.length > 0) {
      const batch = waiting.slice(0, MAX_BATCH_RECORDS);
      waiting = waiting.slice(batch.length);
      try {
        await sendBatch(batch.map((w) => w.item));
        for (const w of batch) w.resolve();
      } catch (error) {
        for (const w of batch) w.reject(error);
      }
    }
    flushing = false;
  };
  return (item) =>
    new Promise<void>((resolve, reject) => {
      waiting.push({ item, resolve, reject });
      if (!flushing) void flush();
    });
}
