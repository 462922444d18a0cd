/**
 * What Kafka holds: the audit topic consumed from the beginning with kafkajs
 * (a fresh consumer group each time) up to the end offsets read when the
 * consumption starts, grouped by session and then by `audit_id`.
 */
import { randomUUID } from "node:crypto";
import { Kafka, logLevel } from "kafkajs";
import { deferred } from "./deferred.js";

/** One session's records on the topic. */
export interface SessionAudits {
  /** Distinct `audit_id`s, each with its status and how many times it was delivered. */
  byAuditId: Map<string, { status: string; runId: string; deliveries: number }>;
  /** The records as read, for the token check. */
  raw: string[];
}

/** Reads every record of `topic` on the broker at `bootstrap`, grouped by `session_id`. */
export async function readAuditLedger(bootstrap: string, topic: string, timeoutMs = 120_000): Promise<Map<string, SessionAudits>> {
  const kafka = new Kafka({ clientId: "somagent-fault-suite", brokers: [bootstrap], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic).finally(() => admin.disconnect());
  const remaining = new Map(ends.filter((end) => end.high !== "0").map((end) => [end.partition, BigInt(end.high)]));
  const ledger = new Map<string, SessionAudits>();
  if (remaining.size === 0) return ledger;

  const consumer = kafka.consumer({ groupId: `fault-suite-${randomUUID()}` });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    const done = deferred();
    const timer = setTimeout(() => done.reject(new Error(`${topic} not read to its end within ${timeoutMs} ms`)), timeoutMs);
    // kafkajs restarts the consumer itself after a retriable error (a fresh broker's group coordinator still loading).
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (!payload.restart) done.reject(payload.error);
    });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        const raw = message.value?.toString("utf8") ?? "";
        const record = JSON.parse(raw) as { session_id?: string; audit_id?: string; status?: string; run_id?: string };
        const sessionId = record.session_id ?? "";
        let audits = ledger.get(sessionId);
        if (!audits) ledger.set(sessionId, (audits = { byAuditId: new Map(), raw: [] }));
        audits.raw.push(raw);
        const auditId = record.audit_id ?? "";
        const seen = audits.byAuditId.get(auditId);
        if (seen) seen.deliveries += 1;
        else audits.byAuditId.set(auditId, { status: record.status ?? "", runId: record.run_id ?? "", deliveries: 1 });
        if (BigInt(message.offset) + 1n >= (remaining.get(partition) ?? 0n)) remaining.delete(partition);
        if (remaining.size === 0) done.resolve();
      },
    });
    await done.promise.finally(() => clearTimeout(timer));
  } finally {
    await consumer.disconnect();
  }
  return ledger;
}
