/**
 * The audit producer against the run's real Kafka broker: concurrent
 * publishes share produce requests (group commit), and each is acknowledged
 * and lands on the topic exactly once.
 */
import { randomUUID } from "node:crypto";
import { Kafka, logLevel } from "kafkajs";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { AuditEventJson } from "../../gen/somagent/orchestrator/v1/session_pb.js";
import { createAuditProducer, type AuditProducer } from "../../src/clients/audit-producer.js";
import { TransientCallError } from "../../src/shared/call-errors.js";
import { createLogger } from "../../src/shared/logger.js";
import { createMetricsRegistry } from "../../src/shared/metrics.js";
import { freePort } from "../../local/processes.js";
import { infra } from "../support/infra.js";
import { waitFor } from "../support/wait-for.js";

vi.setConfig({ testTimeout: 60_000 });

const bootstrap = infra().kafka.bootstrap;
const [host, port] = bootstrap.split(":") as [string, string];
const topic = `audit-producer-test-${randomUUID().slice(0, 8)}`;
const config = { brokers: [{ host, port: Number(port) }], clientId: "audit-producer-test", auditTopic: topic, auditTopicPartitions: 3, auditTopicReplicationFactor: 1 };
const kafka = new Kafka({ clientId: "audit-producer-test-reader", brokers: [bootstrap], logLevel: logLevel.NOTHING });

let producer: AuditProducer;
beforeAll(async () => {
  producer = createAuditProducer(config, createLogger("audit-producer-test", () => {}), createMetricsRegistry({ processMetrics: false }));
  await producer.start();
}, 60_000);
afterAll(() => producer?.stop());

const event = (sessionId: string): AuditEventJson => ({
  auditId: randomUUID(),
  sessionId,
  workflowId: `session-${sessionId}`,
  runId: randomUUID(),
  status: "AUDIT_STATUS_ACCEPTED",
  tenant: "tenant-demo",
  user: "user-demo",
  emittedAt: new Date().toISOString(),
});

/** The audit ids on the topic once a consumer has read it to its current end. */
async function auditIdsOnTopic(): Promise<string[]> {
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const consumer = kafka.consumer({ groupId: `audit-producer-test-${randomUUID()}` });
  const ids: string[] = [];
  const read = new Map<number, number>();
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        ids.push((JSON.parse(message.value?.toString("utf8") ?? "{}") as { audit_id: string }).audit_id);
        read.set(partition, Number(message.offset) + 1);
      },
    });
    await waitFor("the consumer reaching the end of the topic", () => ends.every((p) => (read.get(p.partition) ?? Number(p.low)) >= Number(p.high)));
  } finally {
    await consumer.disconnect();
  }
  return ids;
}

describe("audit producer", () => {
  it("acknowledges each of 200 concurrent publishes, and the topic holds each exactly once", async () => {
    const events = Array.from({ length: 200 }, (_, i) => event(`s-${i % 13}`));
    const outcomes = await Promise.allSettled(events.map((e) => producer.publish(e)));
    expect(outcomes.filter((o) => o.status === "rejected")).toEqual([]);
    const ids = await auditIdsOnTopic();
    expect(ids.length).toBe(events.length);
    expect(new Set(ids)).toEqual(new Set(events.map((e) => e.auditId)));
  });

  it("fails every publish of a batch that Kafka did not take with TransientCallError", async () => {
    const stopped = createAuditProducer(config, createLogger("audit-producer-test", () => {}), createMetricsRegistry({ processMetrics: false }));
    await stopped.start();
    await stopped.stop();
    const outcomes = await Promise.allSettled([1, 2, 3].map((i) => stopped.publish(event(`stopped-${i}`))));
    for (const outcome of outcomes) {
      expect(outcome.status).toBe("rejected");
      expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(TransientCallError);
    }
  });
});

describe("audit producer logging", () => {
  it("writes kafkajs' lines at our levels, in our format", async () => {
    const lines: string[] = [];
    const unreachable = { ...config, brokers: [{ host: "127.0.0.1", port: await freePort() }] };
    const producer = createAuditProducer(unreachable, createLogger("audit-producer-test", (line) => lines.push(line)), createMetricsRegistry({ processMetrics: false }));
    await expect(producer.start()).rejects.toBeInstanceOf(TransientCallError);
    const kafkajsLines = lines.map((line) => JSON.parse(line) as { level: unknown; message: string }).filter((l) => l.message.startsWith("kafkajs: "));
    expect(kafkajsLines.length).toBeGreaterThan(0);
    for (const line of kafkajsLines) expect(["warn", "error"]).toContain(line.level);
  });

  it("warns once at start when no brokers are configured, and logs each event instead", async () => {
    const lines: string[] = [];
    const producer = createAuditProducer({ ...config, brokers: [] }, createLogger("audit-producer-test", (line) => lines.push(line)), createMetricsRegistry({ processMetrics: false }));
    await producer.start();
    await producer.publish(event("unset-kafka"));
    expect(lines.map((line) => JSON.parse(line) as { level: string; message: string })).toEqual([
      expect.objectContaining({ level: "warn", message: expect.stringContaining("KAFKA_BOOTSTRAP_SERVERS is unset") }),
      expect.objectContaining({ level: "info", message: "audit event" }),
    ]);
  });
});
