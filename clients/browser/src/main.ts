/**
 * Browser client: starts a session over gRPC-Web with connect-web, appends
 * each Watch event to the page as it arrives and shows the final status.
 * The API's address comes from the page's `?api=` parameter (default: the
 * page's own origin); `?autostart=1` submits the form on load.
 */
import { createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { toJson } from "@bufbuild/protobuf";
import {
  SessionService,
  SessionStatus,
  WatchResponseSchema,
} from "../../../gen/somagent/orchestrator/v1/session_pb.js";

const params = new URLSearchParams(location.search);
const client = createClient(
  SessionService,
  createGrpcWebTransport({ baseUrl: params.get("api") ?? location.origin }),
);

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`page has no #${id}`);
  return found as T;
}

async function run(form: HTMLFormElement): Promise<void> {
  const data = new FormData(form);
  const field = (name: string) => String(data.get(name) ?? "");
  const sessionId = field("session_id");
  document.body.dataset.state = "running";
  element("events").replaceChildren();
  element("error").textContent = "";

  const started = await client.start({
    tenant: field("tenant"),
    user: field("user"),
    prompt: field("prompt"),
    metadata: sessionId ? { session_id: sessionId } : {},
  });
  element("workflow").textContent = started.workflowId;

  for await (const event of client.watch({ workflowId: started.workflowId })) {
    const item = document.createElement("li");
    item.dataset.sequence = String(event.sequence);
    item.dataset.kind = event.event.case ?? "unknown";
    const json = toJson(WatchResponseSchema, event) as Record<string, unknown>;
    item.textContent = `${event.sequence} ${item.dataset.kind} ${JSON.stringify(json[item.dataset.kind] ?? {})}`;
    element("events").append(item);
  }

  const final = await client.get({ workflowId: started.workflowId });
  element("status").textContent = SessionStatus[final.status];
  element("completion").textContent = final.result?.completion?.text ?? "";
  document.body.dataset.state = "done";
}

const form = element<HTMLFormElement>("start");
const sessionId = params.get("session_id");
if (sessionId) (form.elements.namedItem("session_id") as HTMLInputElement).value = sessionId;
form.addEventListener("submit", (submitted) => {
  submitted.preventDefault();
  run(form).catch((error: unknown) => {
    element("error").textContent = error instanceof Error ? error.message : String(error);
    document.body.dataset.state = "error";
  });
});
if (params.get("autostart") === "1") form.requestSubmit();
