import { execFile } from "node:child_process";
import http2 from "node:http2";
import { promisify } from "node:util";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createAsyncIterable } from "@connectrpc/connect/protocol";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { describe, expect, it, vi } from "vitest";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { Health, HealthCheckResponse_ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";
import { ServerReflection, type ServerReflectionResponse } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { SessionService, SessionStatus } from "../../gen/somagent/orchestrator/v1/session_pb.js";
import { waitFor } from "../support/wait-for.js";
import { useApiFixture } from "./api-fixture.js";

// Real servers: allow for a slow machine, but no timing assertions.
vi.setConfig({ testTimeout: 30_000 });

const fixture = useApiFixture();

const request = (sessionId: string) => ({
  tenant: "tenant-demo",
  user: "user-demo",
  prompt: "kick off a demo",
  metadata: { session_id: sessionId },
});
const OVERSIZE_PROMPT = "a".repeat(300 * 1024);

const transports: Record<string, () => Transport> = {
  "Connect (JSON, HTTP/1.1)": () => createConnectTransport({ baseUrl: fixture().baseUrl, httpVersion: "1.1" }),
  "Connect (binary, HTTP/2)": () => createConnectTransport({ baseUrl: fixture().baseUrl, httpVersion: "2", useBinaryFormat: true }),
  "gRPC (h2c)": () => createGrpcTransport({ baseUrl: fixture().baseUrl }),
  "gRPC-Web (HTTP/1.1)": () => createGrpcWebTransport({ baseUrl: fixture().baseUrl, httpVersion: "1.1" }),
};

describe.each(Object.entries(transports))("SessionService over %s", (name, transport) => {
  const slug = name.replace(/[^a-z0-9]+/gi, "-").toLowerCase();

  it("starts a session idempotently and gets it", async () => {
    const client = createClient(SessionService, transport());
    const first = await client.start(request(`proto-${slug}`));
    const again = await client.start(request(`proto-${slug}`));
    expect(first).toMatchObject({ workflowId: `session-proto-${slug}`, sessionId: `proto-${slug}`, taskQueue: fixture().connection.taskQueue });
    expect(again.runId).toBe(first.runId);
    const got = await client.get({ workflowId: first.workflowId });
    expect(got).toMatchObject({ workflowId: first.workflowId, runId: first.runId, status: SessionStatus.RUNNING });
  });

  it("generates a session id when metadata has none", async () => {
    const started = await createClient(SessionService, transport()).start({ tenant: "t", user: "u", prompt: "p" });
    expect(started.sessionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(started.workflowId).toBe(`session-${started.sessionId}`);
  });

  it("answers NOT_FOUND for an unknown session", async () => {
    const error = await createClient(SessionService, transport()).get({ workflowId: "session-unknown" }).catch((e: unknown) => e);
    expect(ConnectError.from(error).code).toBe(Code.NotFound);
  });

  it("answers INVALID_ARGUMENT naming the missing field, with a BadRequest detail", async () => {
    const error = ConnectError.from(await createClient(SessionService, transport()).start({ user: "u", prompt: "p" }).catch((e: unknown) => e));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toBe("tenant: value is required");
    expect(error.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field).toBe("tenant");
  });

  it("answers INVALID_ARGUMENT for a malformed metadata.session_id (CEL rule)", async () => {
    const bad = { ...request("x"), metadata: { session_id: "../etc" } };
    const error = ConnectError.from(await createClient(SessionService, transport()).start(bad).catch((e: unknown) => e));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toContain("metadata: metadata.session_id must be a string");
  });

  it("answers RESOURCE_EXHAUSTED for a message over the size limit", async () => {
    const error = await createClient(SessionService, transport()).start({ ...request("big"), prompt: OVERSIZE_PROMPT }).catch((e: unknown) => e);
    expect(ConnectError.from(error).code).toBe(Code.ResourceExhausted);
  });

  it("streams Watch until the terminal event and resumes after a sequence", async () => {
    const client = createClient(SessionService, transport());
    const { workflowId } = await client.start(request(`watch-${slug}`));
    const cases: string[] = [];
    const sequences: bigint[] = [];
    const streaming = (async () => {
      for await (const event of client.watch({ workflowId })) {
        cases.push(event.event.case ?? "");
        sequences.push(event.sequence);
      }
    })();
    await waitFor(() => cases.length === 1);
    await fixture().connection.client.workflow.getHandle(workflowId).terminate("done");
    await streaming;
    expect(cases).toEqual(["started", "failed"]);
    const resumed = [];
    for await (const event of client.watch({ workflowId, afterSequence: sequences[0] })) resumed.push(event.sequence);
    expect(resumed).toEqual([sequences[1]]);
  });
});

describe("gRPC health and an independent gRPC client", () => {
  it("reports SERVING from grpc.health.v1.Health Check and Watch", async () => {
    const health = createClient(Health, createGrpcTransport({ baseUrl: fixture().baseUrl }));
    expect((await health.check({ service: "" })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    expect((await health.check({ service: "somagent.orchestrator.v1.SessionService" })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    expect(ConnectError.from(await health.check({ service: "nope" }).catch((e: unknown) => e)).code).toBe(Code.NotFound);
    for await (const update of health.watch({ service: "" })) {
      expect(update.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
      break;
    }
  });

  it("serves @grpc/grpc-js stubs built from the .proto files by @grpc/proto-loader", async () => {
    const definition = protoLoader.loadSync("somagent/orchestrator/v1/session.proto", {
      includeDirs: ["proto", "third_party/proto"],
      keepCase: true,
      longs: String,
      enums: String,
      oneofs: true,
    });
    const loaded = grpc.loadPackageDefinition(definition) as unknown as {
      somagent: { orchestrator: { v1: { SessionService: grpc.ServiceClientConstructor } } };
    };
    const client = new loaded.somagent.orchestrator.v1.SessionService(`127.0.0.1:${fixture().port}`, grpc.credentials.createInsecure());
    const call = <T>(method: string, body: unknown) =>
      new Promise<T>((resolve, reject) =>
        (client[method] as (b: unknown, cb: (e: grpc.ServiceError | null, r: T) => void) => void).call(client, body, (e, r) => (e ? reject(e) : resolve(r))),
      );
    try {
      const started = await call<{ workflow_id: string; run_id: string }>("Start", {
        tenant: "tenant-demo",
        user: "user-demo",
        prompt: "from grpc-js",
        metadata: { fields: { session_id: { stringValue: "grpc-js" } } },
      });
      expect(started.workflow_id).toBe("session-grpc-js");
      const got = await call<{ status: string; history_length: string }>("Get", { workflow_id: "session-grpc-js" });
      expect(got.status).toBe("SESSION_STATUS_RUNNING");
      const missing = await call("Start", { user: "u", prompt: "p" }).catch((e: grpc.ServiceError) => e);
      // connect-es percent-encodes grpc-message with encodeURIComponent; grpc-js decodes it with
      // decodeURI, which leaves reserved characters such as ":" encoded.
      expect(missing).toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
      expect(decodeURIComponent((missing as grpc.ServiceError).details)).toBe("tenant: value is required");
      const unknown = await call("Get", { workflow_id: "session-nope" }).catch((e: grpc.ServiceError) => e);
      expect(unknown).toMatchObject({ code: grpc.status.NOT_FOUND });
      const unimplemented = await new Promise<grpc.ServiceError>((resolve) =>
        client.makeUnaryRequest("/somagent.orchestrator.v1.SessionService/Nope", (x: Buffer) => x, (x: Buffer) => x, Buffer.alloc(0), (e) => resolve(e as grpc.ServiceError)),
      );
      expect(unimplemented.code).toBe(grpc.status.UNIMPLEMENTED);
    } finally {
      client.close();
    }
  });
});

describe("server reflection", () => {
  const buf = (...args: string[]) => promisify(execFile)("node_modules/.bin/buf", ["curl", "--protocol", "grpc", "--http2-prior-knowledge", ...args]);

  it("lists the services over v1 and v1alpha for buf curl", async () => {
    for (const protocol of ["grpc-v1", "grpc-v1alpha"]) {
      const { stdout } = await buf("--reflect-protocol", protocol, "--list-services", fixture().baseUrl);
      expect(stdout.trim().split("\n").sort()).toEqual([
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
        "somagent.orchestrator.v1.SessionService",
      ]);
    }
  });

  it("answers file_by_filename, file_containing_symbol (with dependencies), extension numbers and unknown symbols", async () => {
    const reflection = createClient(ServerReflection, createGrpcTransport({ baseUrl: fixture().baseUrl }));
    const requests = [
      { messageRequest: { case: "fileByFilename" as const, value: "somagent/orchestrator/v1/session.proto" } },
      { messageRequest: { case: "fileContainingSymbol" as const, value: "somagent.orchestrator.v1.SessionService.Watch" } },
      { messageRequest: { case: "allExtensionNumbersOfType" as const, value: "google.protobuf.FieldOptions" } },
      { messageRequest: { case: "fileContainingSymbol" as const, value: "no.such.Symbol" } },
    ];
    const answers: ServerReflectionResponse["messageResponse"][] = [];
    for await (const answer of reflection.serverReflectionInfo(createAsyncIterable(requests))) answers.push(answer.messageResponse);
    const names = (i: number) => {
      const answer = answers[i];
      return answer?.case === "fileDescriptorResponse"
        ? answer.value.fileDescriptorProto.map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes).name)
        : [];
    };
    expect(names(0)[0]).toBe("somagent/orchestrator/v1/session.proto");
    expect(names(0)).toEqual(expect.arrayContaining(["buf/validate/validate.proto", "google/api/annotations.proto", "google/protobuf/struct.proto"]));
    expect(names(1)[0]).toBe("somagent/orchestrator/v1/session.proto");
    expect(answers[2]).toMatchObject({ case: "allExtensionNumbersResponse", value: { extensionNumber: expect.arrayContaining([1159, 50801, 50802]) } });
    expect(answers[3]).toMatchObject({ case: "errorResponse", value: { errorCode: 5 } });
  });

  it("lets buf curl call SessionService with the schema it got by reflection", async () => {
    await createClient(SessionService, createGrpcTransport({ baseUrl: fixture().baseUrl })).start(request("reflected"));
    const { stdout } = await buf("-d", '{"workflow_id":"session-reflected"}', `${fixture().baseUrl}/somagent.orchestrator.v1.SessionService/Get`);
    expect(JSON.parse(stdout)).toMatchObject({ workflowId: "session-reflected", status: "SESSION_STATUS_RUNNING" });
  });
});

describe("malformed requests on the RPC protocols", () => {
  const path = "/somagent.orchestrator.v1.SessionService/Start";
  const connectPost = (body: string | Uint8Array, contentType = "application/json", url = path) =>
    fetch(`${fixture().baseUrl}${url}`, { method: "POST", headers: { "content-type": contentType, "connect-protocol-version": "1" }, body });
  /** A gRPC(-Web) length-prefixed message. */
  const envelope = (bytes: Uint8Array) => {
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(bytes.length, 1);
    return Buffer.concat([prefix, bytes]);
  };
  /** Bytes that are not a valid protobuf message (field 1 declared as a 100-byte string, 2 given). */
  const garbage = Uint8Array.from([0x0a, 0x64, 0x61, 0x62]);

  it.each([
    ["a wrong type", '{"tenant":5,"user":"u","prompt":"p"}', "tenant"],
    ["an unknown field", '{"tenant":"t","user":"u","prompt":"p","bogus":true}', "bogus"],
    ["invalid JSON", '{"tenant":', "cannot decode"],
  ])("Connect answers 400 invalid_argument for %s", async (_case, body, fragment) => {
    const response = await connectPost(body);
    expect(response.status).toBe(400);
    const error = (await response.json()) as { code: string; message: string };
    expect(error.code).toBe("invalid_argument");
    expect(error.message).toContain(fragment);
  });

  it("Connect rejects a binary body that is not protobuf with invalid_argument naming the message type, no stack trace", async () => {
    const response = await connectPost(garbage, "application/proto");
    expect(response.status).toBe(400);
    const error = (await response.json()) as { code: string; message: string };
    expect(error.code).toBe("invalid_argument");
    expect(error.message).toMatch(/is not a valid somagent\.orchestrator\.v1\.StartRequest message/);
    expect(error.message).not.toMatch(/\n\s+at /);
  });

  it.each([
    ["a duplicate key", Buffer.from('{"tenant":"bad tenant!","tenant":"tenant-demo","user":"u","prompt":"p"}'), "tenant: duplicate JSON key"],
    ["a nested duplicate key", Buffer.from('{"tenant":"t","user":"u","prompt":"p","metadata":{"k":"a","k":"b"}}'), "metadata.k: duplicate JSON key"],
    ["invalid UTF-8", Buffer.concat([Buffer.from('{"tenant":"t","user":"u","prompt":"ab'), Buffer.from([0xff]), Buffer.from('"}')]), "prompt: invalid UTF-8 at byte 37"],
  ])("Connect JSON refuses %s with invalid_argument naming the field, and starts nothing", async (_case, body, message) => {
    const response = await connectPost(body);
    expect(response.status).toBe(400);
    const error = (await response.json()) as { code: string; message: string; details?: unknown[] };
    expect(error).toMatchObject({ code: "invalid_argument", message });
    expect(error.details?.length).toBe(1);
  });

  it("Connect streaming (Watch) refuses a binary message that is not protobuf with invalid_argument", async () => {
    const response = await connectPost(envelope(garbage), "application/connect+proto", "/somagent.orchestrator.v1.SessionService/Watch");
    const text = Buffer.from(await response.arrayBuffer()).toString("latin1");
    expect(text).toContain('"code":"invalid_argument"');
  });

  it("Connect answers 415 for a wrong content type and 404 for an unknown procedure", async () => {
    expect((await connectPost("tenant=t", "text/plain")).status).toBe(415);
    const unknown = await connectPost("{}", "application/json", "/somagent.orchestrator.v1.SessionService/Nope");
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ status: "NOT_FOUND" });
  });

  it("gRPC-Web answers INVALID_ARGUMENT for a message that is not protobuf, and 415 for a wrong content type", async () => {
    const response = await fetch(`${fixture().baseUrl}${path}`, {
      method: "POST",
      headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" },
      body: envelope(garbage),
    });
    expect(response.status).toBe(200);
    const text = Buffer.from(await response.arrayBuffer()).toString("latin1");
    expect(response.headers.get("grpc-status") ?? /grpc-status: ?(\d+)/.exec(text)?.[1]).toBe("3");
    expect(text).toContain("StartRequest%20message");
    const wrongType = await fetch(`${fixture().baseUrl}${path}`, { method: "POST", headers: { "content-type": "application/grpc-web+bogus" }, body: "x" });
    expect(wrongType.status).toBe(415);
  });

  it("gRPC answers INVALID_ARGUMENT for a message that is not protobuf or not exactly one message, and 415 for a wrong content type", async () => {
    const session = http2.connect(fixture().baseUrl);
    const call = (contentType: string, body: Buffer) =>
      new Promise<{ status: number; grpcStatus: string | undefined }>((resolve, reject) => {
        const stream = session.request({ ":method": "POST", ":path": path, "content-type": contentType, te: "trailers" });
        let status = 0;
        let grpcStatus: string | undefined;
        stream.on("response", (headers) => {
          status = Number(headers[":status"]);
          grpcStatus = headers["grpc-status"] as string | undefined;
        });
        stream.on("trailers", (trailers) => {
          grpcStatus = trailers["grpc-status"] as string | undefined;
        });
        stream.on("error", reject);
        stream.on("close", () => resolve({ status, grpcStatus }));
        stream.resume();
        stream.end(body);
      });
    try {
      expect(await call("application/grpc", envelope(garbage))).toEqual({ status: 200, grpcStatus: "3" });
      // Two messages that together pass the size limit: the one-message check still applies.
      const big = envelope(Buffer.alloc(200 * 1024, 0x78));
      expect(await call("application/grpc", Buffer.concat([big, big]))).toEqual({ status: 200, grpcStatus: "3" });
      // No message, two messages, and a message flagged compressed with no grpc-encoding: malformed, not INTERNAL/UNIMPLEMENTED.
      expect(await call("application/grpc", Buffer.alloc(0))).toEqual({ status: 200, grpcStatus: "3" });
      expect(await call("application/grpc", Buffer.concat([envelope(new Uint8Array()), envelope(new Uint8Array())]))).toEqual({ status: 200, grpcStatus: "3" });
      expect(await call("application/grpc", Buffer.from([1, 0, 0, 0, 1, 0]))).toEqual({ status: 200, grpcStatus: "3" });
      // Server reflection is a bidi stream: its messages are read as they come, and garbage is still INVALID_ARGUMENT.
      const reflection = await new Promise<string | undefined>((resolve, reject) => {
        const stream = session.request({ ":method": "POST", ":path": "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", "content-type": "application/grpc", te: "trailers" });
        let grpcStatus: string | undefined;
        stream.on("response", (headers) => (grpcStatus = headers["grpc-status"] as string | undefined));
        stream.on("trailers", (trailers) => (grpcStatus = trailers["grpc-status"] as string | undefined));
        stream.on("error", reject);
        stream.on("close", () => resolve(grpcStatus));
        stream.resume();
        stream.end(envelope(garbage));
      });
      expect(reflection).toBe("3");
      expect((await call("application/grpc+bogus", Buffer.from("x"))).status).toBe(415);
    } finally {
      session.close();
    }
  });
});
