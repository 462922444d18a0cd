/**
 * The session console: start a session, list the tenant's sessions, open one
 * (the page's `#<workflow id>`), follow its events as a timeline that resumes
 * after a reload from the last sequence this tab saw, and cancel it. Plain DOM: each part of the page is a form or a
 * list the user drives with the keyboard; results go to live regions.
 * `#session[data-state]` says where the opened session's stream is
 * (`watching`, `ended`, `error`), for people and tests alike.
 */
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { SessionStatus, type GetResponse, type SessionSummary } from "../../gen/somagent/orchestrator/v1/session_pb.js";
import { createSessionClient, describeError } from "./api-client.js";
import { lastSequence, rememberEntry, storeToken, storedTimeline, storedToken } from "./session-memory.js";
import { enumLabel, timelineEntry, type TimelineEntry } from "./timeline.js";
import { tokenCaller } from "./token-claims.js";

function element<T extends HTMLElement = HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`the page has no #${id}`);
  return found as T;
}

const page = {
  access: element<HTMLFormElement>("access"),
  token: element<HTMLInputElement>("token"),
  forgetToken: element<HTMLButtonElement>("forget-token"),
  start: element<HTMLFormElement>("start"),
  list: element<HTMLFormElement>("list"),
  listCaption: element("sessions-caption"),
  sessionRows: element<HTMLTableSectionElement>("session-rows"),
  moreSessions: element<HTMLButtonElement>("more"),
  session: element("session"),
  cancel: element<HTMLButtonElement>("cancel"),
  sessionHeading: element("session-heading"),
  workflow: element("workflow"),
  status: element("status"),
  timeline: element<HTMLOListElement>("timeline"),
  completion: element("completion"),
  error: element("error"),
};

const client = createSessionClient(storedToken);

function field(form: HTMLFormElement, name: string): HTMLInputElement {
  return form.elements.namedItem(name) as HTMLInputElement;
}

function showError(error: unknown): void {
  page.error.textContent = describeError(error);
}

/** With a token, the start form's tenant and user are the token's (the API refuses others). */
function applyToken(): void {
  const caller = tokenCaller(storedToken());
  for (const [name, value] of [["tenant", caller.tenant], ["user", caller.user]] as const) {
    const input = field(page.start, name);
    if (value !== "") input.value = value;
    input.readOnly = value !== "";
  }
}

page.token.value = storedToken();
applyToken();
page.access.addEventListener("submit", (submitted) => {
  submitted.preventDefault();
  storeToken(page.token.value.trim());
  applyToken();
  page.error.textContent = "";
  void listSessions();
});
page.forgetToken.addEventListener("click", () => {
  page.token.value = "";
  storeToken("");
  applyToken();
});

const statusLabel = (status: SessionStatus) => enumLabel(SessionStatus, status, "SESSION_STATUS_");
const statusFilter = page.list.elements.namedItem("status") as HTMLSelectElement;
for (const status of Object.values(SessionStatus)) {
  if (typeof status === "number" && status !== SessionStatus.UNSPECIFIED) statusFilter.add(new Option(statusLabel(status), String(status)));
}

/** The filters of the listed page, which the next page must repeat, and where that page starts. */
let listed = { tenant: "", statuses: [] as SessionStatus[], nextPageToken: "" };

function sessionRow(session: SessionSummary): HTMLTableRowElement {
  const row = document.createElement("tr");
  row.dataset.workflowId = session.workflowId;
  row.dataset.status = SessionStatus[session.status] ?? "";
  const link = document.createElement("a");
  link.href = `#${encodeURIComponent(session.workflowId)}`;
  link.textContent = session.sessionId;
  const started = session.startTime ? timestampDate(session.startTime).toLocaleString() : "";
  row.append(...[link, session.user, session.model, statusLabel(session.status), started].map((content) => {
    const cell = document.createElement("td");
    cell.append(content);
    return cell;
  }));
  return row;
}

/** Lists the first page of the tenant's sessions (the token's, else the start form's), or the next page of the listed ones. */
async function listSessions(nextPage = false): Promise<void> {
  if (!nextPage) {
    listed = {
      tenant: tokenCaller(storedToken()).tenant || field(page.start, "tenant").value,
      statuses: statusFilter.value === "" ? [] : [Number(statusFilter.value) as SessionStatus],
      nextPageToken: "",
    };
  }
  try {
    const answer = await client.list({ tenant: listed.tenant, statuses: listed.statuses, pageToken: listed.nextPageToken });
    if (!nextPage) page.sessionRows.replaceChildren();
    page.sessionRows.append(...answer.sessions.map(sessionRow));
    page.listCaption.textContent = `Sessions of ${listed.tenant}: running ones first, then the most recently finished`;
    listed.nextPageToken = answer.nextPageToken;
    page.moreSessions.hidden = answer.nextPageToken === "";
  } catch (error) {
    showError(error);
  }
}

page.list.addEventListener("submit", (submitted) => {
  submitted.preventDefault();
  page.error.textContent = "";
  void listSessions();
});
page.moreSessions.addEventListener("click", () => void listSessions(true));

page.start.addEventListener("submit", (submitted) => {
  submitted.preventDefault();
  page.error.textContent = "";
  client
    .start({
      tenant: field(page.start, "tenant").value,
      user: field(page.start, "user").value,
      prompt: (page.start.elements.namedItem("prompt") as HTMLTextAreaElement).value,
      model: field(page.start, "model").value,
    })
    .then((started) => {
      // Opening goes through the address, so a reload reopens the session.
      location.hash = encodeURIComponent(started.workflowId);
      void listSessions();
    }, showError);
});

function timelineItem(entry: TimelineEntry): HTMLLIElement {
  const item = document.createElement("li");
  item.dataset.sequence = entry.sequence;
  item.dataset.kind = entry.kind;
  const sequence = document.createElement("span");
  sequence.className = "sequence";
  sequence.textContent = `#${entry.sequence} `;
  const kind = document.createElement("span");
  kind.className = "kind";
  kind.textContent = entry.kind.replace(/[A-Z]/g, (letter) => ` ${letter.toLowerCase()}`);
  const time = document.createElement("time");
  time.dateTime = entry.time;
  time.textContent = entry.time === "" ? "" : ` ${new Date(entry.time).toLocaleTimeString()} `;
  item.append(sequence, kind, time, `— ${entry.summary}`);
  return item;
}

function resumeMarker(after: string): HTMLLIElement {
  const item = document.createElement("li");
  item.className = "marker";
  item.dataset.resumedAfter = after;
  item.textContent = `resumed after event #${after}, the last one this tab saw`;
  return item;
}

function showStatus(status: SessionStatus): void {
  page.status.textContent = statusLabel(status);
  page.status.dataset.status = SessionStatus[status] ?? "";
  page.cancel.disabled = status !== SessionStatus.RUNNING;
}

function showSession(session: GetResponse): void {
  showStatus(session.status);
  page.completion.textContent = session.result?.completion?.text ?? session.failure;
}

/** The opened session and its stream, aborted when another one is opened. */
let opened: { workflowId: string; watching: AbortController } | undefined;

page.cancel.addEventListener("click", () => {
  if (!opened) return;
  page.cancel.disabled = true;
  page.error.textContent = "";
  // The stream shows the outcome: the workflow winds down and Watch ends with `canceled`.
  client.cancel({ workflowId: opened.workflowId }).then((answer) => {
    page.status.textContent = answer.status === SessionStatus.RUNNING ? "canceling" : statusLabel(answer.status);
  }, (error: unknown) => {
    showError(error);
    page.cancel.disabled = false;
  });
});

async function open(workflowId: string): Promise<void> {
  opened?.watching.abort();
  const watch = new AbortController();
  opened = { workflowId, watching: watch };
  page.session.hidden = false;
  page.session.dataset.state = "watching";
  page.workflow.textContent = workflowId;
  page.status.textContent = "";
  delete page.status.dataset.status;
  page.completion.textContent = "";
  const kept = storedTimeline(workflowId);
  page.timeline.replaceChildren(...kept.map(timelineItem));
  const last = kept.at(-1);
  if (last) page.timeline.append(resumeMarker(last.sequence));
  try {
    let session = await client.get({ workflowId }, { signal: watch.signal });
    showSession(session);
    let after = lastSequence(kept);
    // A stream also ends cleanly, before the session does, when the API drains or the stream
    // reaches its age limit (API_MAX_STREAM_AGE_MS): follow on from the last event seen.
    for (;;) {
      for await (const event of client.watch({ workflowId, afterSequence: after }, { signal: watch.signal })) {
        const entry = timelineEntry(event);
        rememberEntry(workflowId, entry);
        page.timeline.append(timelineItem(entry));
        after = event.sequence;
      }
      session = await client.get({ workflowId }, { signal: watch.signal });
      if (session.status !== SessionStatus.RUNNING) break;
    }
    showSession(session);
    page.session.dataset.state = "ended";
    void listSessions();
  } catch (error) {
    if (watch.signal.aborted) return;
    showError(error);
    page.session.dataset.state = "error";
  }
}

/** Opens the session the address names; `focus` moves the keyboard to it (when the user chose it, not on load). */
function openFromAddress(focus: boolean): void {
  const workflowId = decodeURIComponent(location.hash.slice(1));
  if (workflowId === "") {
    opened?.watching.abort();
    opened = undefined;
    page.session.hidden = true;
    return;
  }
  page.error.textContent = "";
  void open(workflowId);
  if (focus) page.sessionHeading.focus();
}

window.addEventListener("hashchange", () => openFromAddress(true));
openFromAddress(false);
void listSessions();
