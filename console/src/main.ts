/**
 * The session console: start a session, open one (the page's `#<workflow id>`),
 * and follow its events as a timeline that resumes after a reload from the
 * last sequence this tab saw. Plain DOM: each part of the page is a form or a
 * list the user drives with the keyboard; results go to live regions.
 * `#session[data-state]` says where the opened session's stream is
 * (`watching`, `ended`, `error`), for people and tests alike.
 */
import { SessionStatus, type GetResponse } from "../../gen/somagent/orchestrator/v1/session_pb.js";
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
  session: element("session"),
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
});
page.forgetToken.addEventListener("click", () => {
  page.token.value = "";
  storeToken("");
  applyToken();
});

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
  item.textContent = `page reloaded: resumed after event #${after}`;
  return item;
}

function showSession(session: GetResponse): void {
  page.status.textContent = enumLabel(SessionStatus, session.status, "SESSION_STATUS_");
  page.status.dataset.status = SessionStatus[session.status] ?? "";
  page.completion.textContent = session.result?.completion?.text ?? session.failure;
}

/** The stream of the opened session; aborted when another one is opened. */
let watching: AbortController | undefined;

async function open(workflowId: string): Promise<void> {
  watching?.abort();
  const watch = new AbortController();
  watching = watch;
  page.session.hidden = false;
  page.session.dataset.state = "watching";
  page.workflow.textContent = workflowId;
  page.status.textContent = "";
  page.completion.textContent = "";
  const kept = storedTimeline(workflowId);
  page.timeline.replaceChildren(...kept.map(timelineItem));
  const last = kept.at(-1);
  if (last) page.timeline.append(resumeMarker(last.sequence));
  try {
    showSession(await client.get({ workflowId }, { signal: watch.signal }));
    for await (const event of client.watch({ workflowId, afterSequence: lastSequence(kept) }, { signal: watch.signal })) {
      const entry = timelineEntry(event);
      rememberEntry(workflowId, entry);
      page.timeline.append(timelineItem(entry));
    }
    showSession(await client.get({ workflowId }, { signal: watch.signal }));
    page.session.dataset.state = "ended";
  } catch (error) {
    if (watch.signal.aborted) return;
    showError(error);
    page.session.dataset.state = "error";
  }
}

function openFromAddress(): void {
  const workflowId = decodeURIComponent(location.hash.slice(1));
  if (workflowId === "") {
    watching?.abort();
    page.session.hidden = true;
    return;
  }
  page.error.textContent = "";
  void open(workflowId);
  page.sessionHeading.focus();
}

window.addEventListener("hashchange", openFromAddress);
openFromAddress();
