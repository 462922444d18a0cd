import { describe, expect, it } from "vitest";
import { auditId, buildAuditEvent } from "../../src/activities/emit-audit-event.js";
import { auditRecord } from "../../src/clients/audit-producer.js";
import type { SessionInput } from "../../src/workflows/contract.js";

const input: SessionInput = {
  sessionId: "s-1",
  tenant: "acme",
  user: "user-1",
  prompt: "a secret prompt",
  model: "somagent-demo",
  metadata: { role: "user" },
};

describe("auditId", () => {
  it("is the same for the same workflow run and outcome, so a retried publish carries the same id", () => {
    expect(auditId("session-s-1", "run-1", "accepted")).toBe(auditId("session-s-1", "run-1", "accepted"));
  });

  it("differs between outcomes and runs", () => {
    const ids = new Set([
      auditId("session-s-1", "run-1", "accepted"),
      auditId("session-s-1", "run-1", "failed"),
      auditId("session-s-1", "run-2", "accepted"),
    ]);
    expect(ids.size).toBe(3);
  });

  it("is shaped like a version-5 UUID", () => {
    expect(auditId("w", "r", "rejected")).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});

describe("buildAuditEvent", () => {
  it("carries the session, claims and reason but never the prompt", () => {
    const event = buildAuditEvent(
      {
        input,
        outcome: "failed",
        policy: { allowed: true, score: 0 },
        tokenClaims: { sub: "user-1", tenantId: "acme", capabilities: ["session:start"] },
        reason: "Ray Serve unreachable after its retry budget: connection refused",
      },
      "session-s-1",
      "run-1",
      new Date("2026-01-01T00:00:00Z"),
    );
    expect(event).toMatchObject({
      sessionId: "s-1",
      workflowId: "session-s-1",
      runId: "run-1",
      status: "AUDIT_STATUS_FAILED",
      tokenClaims: { sub: "user-1" },
      emittedAt: "2026-01-01T00:00:00.000Z",
    });
    expect(JSON.stringify(event)).not.toContain("a secret prompt");
  });
});

describe("auditRecord", () => {
  it("uses proto field names for consumers", () => {
    const record = JSON.parse(
      auditRecord(buildAuditEvent({ input, outcome: "rejected" }, "session-s-1", "run-1", new Date(0))),
    );
    expect(record).toMatchObject({ audit_id: expect.any(String), session_id: "s-1", status: "AUDIT_STATUS_REJECTED" });
  });
});
