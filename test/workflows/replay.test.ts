/**
 * Determinism guard: every recorded history (test/fixtures/histories) replays
 * against the current workflow code without a nondeterminism error.
 */
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import proto from "@temporalio/proto";
import { Worker } from "@temporalio/worker";
import { describe, expect, it } from "vitest";
import { createEncryptionCodec } from "../../src/temporal/payload-codec.js";
import { WORKFLOWS_PATH } from "../../src/worker/bundle.js";
import { fixtureCodecKey } from "../worker/histories.js";

const dir = new URL("../fixtures/histories/", import.meta.url);
const files = readdirSync(fileURLToPath(dir)).filter((name) => name.endsWith(".history.pb"));

describe("session-start-workflow replay", () => {
  it("has recorded histories to replay", () => {
    expect(files.length).toBeGreaterThan(0);
  });

  it("replays every recorded history with the current workflow code", async () => {
    const histories = files.map((name) => ({
      workflowId: name,
      history: proto.temporal.api.history.v1.History.decode(readFileSync(new URL(name, dir))),
    }));
    const results = Worker.runReplayHistories(
      {
        workflowsPath: WORKFLOWS_PATH,
        dataConverter: { payloadCodecs: [createEncryptionCodec([{ id: fixtureCodecKey.id, key: Buffer.from(fixtureCodecKey.key, "base64") }], { refusePlaintext: true })] },
      },
      histories,
    );
    const failures: string[] = [];
    for await (const result of results) {
      if (result.error) failures.push(`${result.workflowId}: ${String(result.error)}`);
    }
    expect(failures).toEqual([]);
  }, 120_000);
});
