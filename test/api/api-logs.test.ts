/**
 * The API's log lines name the session each call is about, whichever
 * protocol carried it, in the one JSON format.
 */
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import { SessionService } from "../../gen/somagent/orchestrator/v1/session_pb.js";
import { waitFor } from "../support/wait-for.js";
import { useApiFixture } from "./api-fixture.js";

const fixture = useApiFixture();

interface RpcLine {
  level: string;
  service: string;
  message: string;
  method?: string;
  protocol?: string;
  workflow_id?: string;
  session_id?: string;
}

describe("API log", () => {
  it("names the session of Start (its answer), Get and Watch (their request) on each call's line", async () => {
    const sessionId = `api-logs-${Date.now()}`;
    const started = await fetch(`${fixture().baseUrl}/v1/sessions/start`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ tenant: "tenant-demo", user: "user-demo", prompt: "p", metadata: { session_id: sessionId } }),
    });
    expect(started.status).toBe(200);
    const workflowId = `session-${sessionId}`;
    const client = createClient(SessionService, createGrpcTransport({ baseUrl: fixture().baseUrl }));
    await client.get({ workflowId });
    const watching = new AbortController();
    try {
      for await (const event of client.watch({ workflowId }, { signal: watching.signal })) {
        void event;
        watching.abort();
      }
    } catch (error) {
      expect(ConnectError.from(error).code).toBe(Code.Canceled);
    }
    const parsed = () => fixture().logs.map((line) => JSON.parse(line) as RpcLine);
    // The server logs a stream's line when it sees the cancel, after the client has moved on.
    await waitFor("the Watch line", () => parsed().some((line) => line.method?.endsWith("/Watch")));

    const lines = parsed();
    for (const line of lines) expect(line).toMatchObject({ service: "api-test", level: expect.any(String), message: expect.any(String) });
    const session = { workflow_id: workflowId, session_id: sessionId };
    const rpc = lines.filter((line) => line.message === "rpc" && line.workflow_id === workflowId);
    expect(rpc).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ method: "somagent.orchestrator.v1.SessionService/Start", protocol: "rest", ...session }),
        expect.objectContaining({ method: "somagent.orchestrator.v1.SessionService/Get", protocol: "grpc", ...session }),
        expect.objectContaining({ method: "somagent.orchestrator.v1.SessionService/Watch", protocol: "grpc", ...session }),
      ]),
    );
  });
});
