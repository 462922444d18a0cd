/**
 * `npm run audit:tail [-- --follow]`: prints the audit topic of the local
 * stack, one event (JSON) per line, from the beginning; without `--follow` it
 * exits once it has printed every event there was when it started, with
 * `--follow` it keeps printing new ones until Ctrl-C. Reads
 * `KAFKA_BOOTSTRAP_SERVERS` (default 127.0.0.1:9092, what `npm start` runs)
 * and `KAFKA_AUDIT_TOPIC` (default agent.audit). It reads as a consumer group
 * of its own, deleted when it ends. Without `--follow`, reading what was
 * there gives up after 60 s (a broker that stops answering mid-way), naming
 * the partitions it did not finish.
 */
import { randomUUID } from "node:crypto";
import { Kafka, logLevel } from "kafkajs";
import { ConfigError, loadKafkaConfig } from "../src/config.js";
import { silenceKafkajsNegativeTimeoutWarning } from "../src/shared/kafkajs-warning.js";

const DEFAULT_BOOTSTRAP = "127.0.0.1:9092";
const READ_LIMIT_MS = 60_000;
const follow = process.argv.slice(2).includes("--follow");
const unknown = process.argv.slice(2).filter((arg) => arg !== "--follow");

/** One line per event: the record's JSON made single-line, or its text as is when it is not JSON. */
function eventLine(value: Buffer | null): string {
  const text = value?.toString("utf8") ?? "null";
  try {
    return JSON.stringify(JSON.parse(text));
  } catch {
    return text;
  }
}

async function main(): Promise<number> {
  if (unknown.length > 0) {
    process.stderr.write(`unknown argument ${unknown.join(" ")}; usage: npm run audit:tail [-- --follow]\n`);
    return 2;
  }
  const config = loadKafkaConfig({ KAFKA_BOOTSTRAP_SERVERS: DEFAULT_BOOTSTRAP, ...process.env });
  const brokers = config.brokers.map((b) => `${b.host}:${b.port}`);
  silenceKafkajsNegativeTimeoutWarning();
  const kafka = new Kafka({
    clientId: "somagent-audit-tail",
    brokers,
    connectionTimeout: 3_000,
    retry: { retries: 2 },
    // A failure ends the run with one message below, not kafkajs's retry log.
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  await admin.connect();
  const groupId = `somagent-audit-tail-${randomUUID()}`;
  try {
    if (!(await admin.listTopics()).includes(config.auditTopic)) {
      process.stderr.write(`topic ${config.auditTopic} does not exist on ${brokers.join(",")}: no session has ended there yet\n`);
      return 1;
    }
    // What "the end" is without --follow: each partition's high watermark now.
    const remaining = new Map(
      (await admin.fetchTopicOffsets(config.auditTopic)).filter((p) => p.high !== p.low).map((p) => [p.partition, BigInt(p.high)]),
    );
    if (!follow && remaining.size === 0) return 0;
    const consumer = kafka.consumer({ groupId });
    await consumer.connect();
    try {
      await consumer.subscribe({ topic: config.auditTopic, fromBeginning: true });
      await new Promise<void>((resolve, reject) => {
        process.once("SIGINT", () => resolve());
        // consumer.run resolves once it started: later failures arrive as crash events.
        consumer.on(consumer.events.CRASH, ({ payload }) => {
          if (!payload.restart) reject(payload.error);
        });
        if (!follow) {
          setTimeout(() => {
            const left = [...remaining].map(([partition, high]) => `partition ${partition} up to offset ${high - 1n}`).join(", ");
            reject(new Error(`not all events were read within ${READ_LIMIT_MS / 1000} s (left: ${left})`));
          }, READ_LIMIT_MS).unref();
        }
        consumer
          .run({
            eachMessage: async ({ partition, message }) => {
              process.stdout.write(`${eventLine(message.value)}\n`);
              const high = remaining.get(partition);
              if (high !== undefined && BigInt(message.offset) + 1n >= high) remaining.delete(partition);
              if (!follow && remaining.size === 0) resolve();
            },
          })
          .catch(reject);
      });
    } finally {
      await consumer.disconnect();
    }
    return 0;
  } finally {
    await admin.deleteGroups([groupId]).catch(() => {});
    await admin.disconnect();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    const message = error instanceof ConfigError ? error.message : `cannot read the audit topic at ${process.env.KAFKA_BOOTSTRAP_SERVERS ?? DEFAULT_BOOTSTRAP} (is the stack running?): ${error instanceof Error ? error.message : String(error)}`;
    process.stderr.write(`${message}\n`);
    process.exit(1);
  },
);
