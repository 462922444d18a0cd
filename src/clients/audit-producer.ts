/**
 * Publishes audit events to Kafka (`agent.audit`, keyed by session id) through
 * one idempotent producer per worker process. Without brokers configured, each
 * event is logged as one JSON line instead, as the seed did.
 */
import { fromJson, toJson } from "@bufbuild/protobuf";
import { Kafka, Partitioners, logLevel, type Producer } from "kafkajs";
import { Counter } from "prom-client";
import { AuditEventSchema, type AuditEventJson } from "../../gen/somagent/orchestrator/v1/session_pb.js";
import type { KafkaConfig } from "../config.js";
import type { Logger } from "../shared/logger.js";
import type { Registry } from "../shared/metrics.js";
import { TransientCallError } from "../shared/call-errors.js";
import { silenceKafkajsNegativeTimeoutWarning } from "../shared/kafkajs-warning.js";

/** Target name in errors and metrics. */
export const KAFKA_TARGET = "kafka";

/** The worker's audit sink. */
export interface AuditProducer {
  /** Creates the topic when absent and connects; throws {@link TransientCallError} when Kafka is unreachable. */
  start(): Promise<void>;
  /** Publishes one event keyed by its session id; throws {@link TransientCallError} on failure. */
  publish(event: AuditEventJson): Promise<void>;
  /** Disconnects; safe to call more than once. */
  stop(): Promise<void>;
}

/** Kafka's own retries stay short so Temporal's retry policy is the one that matters. */
const KAFKA_TIMEOUTS = { connectionTimeout: 3_000, requestTimeout: 10_000, retry: { retries: 2, initialRetryTime: 200, maxRetryTime: 2_000 } };

/**
 * Builds the audit producer for `config`; logs instead of publishing when it
 * names no brokers. Counts publishes on `registry` (`somagent_audit_publishes_total`),
 * which therefore holds one audit producer, as a worker process does.
 */
export function createAuditProducer(config: KafkaConfig, logger: Logger, registry: Registry): AuditProducer {
  const auditPublishes = new Counter({
    name: "somagent_audit_publishes_total",
    help: "Audit events handed to Kafka (or logged when Kafka is not configured), by outcome.",
    labelNames: ["outcome"] as const,
    registers: [registry],
  });
  if (config.brokers.length === 0) {
    return {
      async start() {
        logger.error("KAFKA_BOOTSTRAP_SERVERS is unset: audit events are logged, not published to Kafka");
      },
      async publish(event) {
        logger.info("audit event", { topic: config.auditTopic, audit: JSON.parse(auditRecord(event)) });
        auditPublishes.inc({ outcome: "logged" });
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
      const { message, ...fields } = log;
      logger.error(`kafkajs: ${String(message)}`, { level, ...fields });
    },
    ...KAFKA_TIMEOUTS,
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
      try {
        await producer.send({
          topic: config.auditTopic,
          acks: -1,
          messages: [{ key: event.sessionId ?? "", value: auditRecord(event) }],
        });
        auditPublishes.inc({ outcome: "published" });
      } catch (error) {
        auditPublishes.inc({ outcome: "error" });
        throw new TransientCallError(KAFKA_TARGET, `publish to ${config.auditTopic} failed: ${(error as Error).message}`, undefined, { cause: error });
      }
    },
    async stop() {
      if (!connected) return;
      connected = false;
      await producer.disconnect();
    },
  };
}

/** The record consumers read: the event's proto JSON with proto field names (`audit_id`, `session_id`, …). */
export function auditRecord(event: AuditEventJson): string {
  return JSON.stringify(toJson(AuditEventSchema, fromJson(AuditEventSchema, event), { useProtoFieldName: true }));
}
