import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Kafka, logLevel, Partitioners, type KafkaMessage } from "kafkajs";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { installKafka, KAFKA_VERSION, startKafka, type KafkaBroker } from "../../local/kafka.js";

vi.setConfig({ testTimeout: 90_000 });

/** The seed's audit topic, which the launcher creates. */
const AUDIT_TOPIC = "agent.audit";

let installDir: string;
let stateDir: string;
let broker: KafkaBroker;

beforeAll(async () => {
  installDir = await installKafka();
  stateDir = await mkdtemp(path.join(tmpdir(), "somagent-kafka-"));
  broker = await startKafka({ installDir, stateDir });
}, 600_000);

afterAll(async () => {
  if (broker) {
    await broker.stop();
    expect(await broker.daemon.pids()).toEqual([]);
  }
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
});

const client = (): Kafka => new Kafka({ clientId: "kafka-test", brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });

const record = {
  key: `session-${randomUUID()}`,
  value: JSON.stringify({ auditId: randomUUID(), status: "AUDIT_STATUS_ACCEPTED" }),
  headers: { "content-type": "application/json", "somagent-trace": randomUUID() },
};

interface Received {
  key: string | undefined;
  value: string | undefined;
  headers: Record<string, string>;
}

function received(message: KafkaMessage): Received {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(message.headers ?? {})) headers[name] = String(value);
  return { key: message.key?.toString(), value: message.value?.toString(), headers };
}

/** Consumes `AUDIT_TOPIC` from the beginning in group `groupId` until `record` arrives, commits it and returns it with its offset. */
async function consumeRecord(groupId: string): Promise<{ message: Received; partition: number; offset: string }> {
  const consumer = client().consumer({ groupId });
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [AUDIT_TOPIC], fromBeginning: true });
    return await new Promise((resolve, reject) => {
      setTimeout(() => reject(new Error(`group ${groupId} did not receive ${record.key} within 60 s`)), 60_000).unref();
      consumer.on(consumer.events.CRASH, ({ payload }) => {
        if (!payload.restart) reject(payload.error);
      });
      consumer
        .run({
          autoCommit: false,
          eachMessage: async ({ partition, message }) => {
            if (message.key?.toString() !== record.key) return;
            await consumer.commitOffsets([{ topic: AUDIT_TOPIC, partition, offset: String(Number(message.offset) + 1) }]);
            resolve({ message: received(message), partition, offset: message.offset });
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
}

async function committedOffset(groupId: string, partition: number): Promise<string | undefined> {
  const admin = client().admin();
  await admin.connect();
  try {
    const [topic] = await admin.fetchOffsets({ groupId, topics: [AUDIT_TOPIC] });
    return topic?.partitions.find((p) => p.partition === partition)?.offset;
  } finally {
    await admin.disconnect();
  }
}

async function auditPartitions(): Promise<number> {
  const admin = client().admin();
  await admin.connect();
  try {
    const { topics } = await admin.fetchTopicMetadata({ topics: [AUDIT_TOPIC] });
    return topics[0]?.partitions.length ?? 0;
  } finally {
    await admin.disconnect();
  }
}

describe("startKafka", () => {
  it("reports the version the running broker logged, the pinned one", () => {
    expect(broker.version).toBe(KAFKA_VERSION);
    expect(broker.bootstrap).toBe(`127.0.0.1:${broker.port}`);
  });

  it(`creates ${AUDIT_TOPIC} with 3 partitions`, async () => {
    expect(await auditPartitions()).toBe(3);
  });

  it("delivers a record from an idempotent producer to a consumer group, key, value and headers intact", async () => {
    const producer = client().producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    await producer.connect();
    try {
      const [sent] = await producer.send({ topic: AUDIT_TOPIC, acks: -1, messages: [record] });
      expect(sent?.errorCode).toBe(0);
    } finally {
      await producer.disconnect();
    }

    const groupId = `audit-readers-${randomUUID()}`;
    const { message, partition, offset } = await consumeRecord(groupId);
    expect(message).toEqual(record);
    expect(await committedOffset(groupId, partition)).toBe(String(Number(offset) + 1));
  });

  it("keeps the topic and the record across a restart on the same state directory", async () => {
    const before = broker;
    await before.stop();
    expect(await before.daemon.pids()).toEqual([]);

    broker = await startKafka({ installDir, stateDir, port: before.port, controllerPort: before.controllerPort });
    expect(broker.clusterId).toBe(before.clusterId);
    expect(broker.version).toBe(KAFKA_VERSION);
    expect(await auditPartitions()).toBe(3);
    const { message } = await consumeRecord(`audit-readers-${randomUUID()}`);
    expect(message).toEqual(record);
  });
});
