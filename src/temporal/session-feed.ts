/**
 * One history long-poll per followed session, shared by all its watchers.
 * Each session's events are read, decrypted and mapped once, kept for the
 * life of the feed (a session's history is a few dozen events) and handed to
 * every watcher from the first, so a watcher that joins late still sees the
 * whole session. A feed ends with its session's terminal event, a failed
 * read, or when its last watcher leaves (its long-poll is then cancelled).
 */
import type { temporal } from "@temporalio/proto";
import type { WatchResponse } from "../../gen/somagent/orchestrator/v1/session_pb.js";
import { createSessionEventState, isTerminalEvent, toSessionEvent } from "./session-events.js";

/** One answer of a history long-poll, payloads already decrypted. */
export interface HistoryPage {
  events: temporal.api.history.v1.IHistoryEvent[];
  /** Where the next long-poll resumes; ignored when `ended`. */
  nextPageToken: Uint8Array | undefined;
  /** True when the history has no more events to wait for (closed, or the read was cancelled). */
  ended: boolean;
}

/**
 * Reads the page of `workflowId`'s history after `nextPageToken` (from the
 * start when undefined), waiting for new events; a long-poll that saw none
 * answers an empty page with the same token. Throws the error watchers get.
 */
export type ReadHistoryPage = (workflowId: string, nextPageToken: Uint8Array | undefined, signal: AbortSignal) => Promise<HistoryPage>;

/** The shared feeds of an API process. */
export interface SessionFeeds {
  /**
   * Every session event of `workflowId` from its first, in history order,
   * until the terminal event (included) or until `signal` aborts. The events
   * are shared between watchers: never modify one. Throws what the feed's
   * read threw.
   */
  follow(workflowId: string, signal: AbortSignal): AsyncIterable<WatchResponse>;
  /** Sessions followed right now (open long-polls). */
  size(): number;
}

interface Feed {
  events: WatchResponse[];
  done: boolean;
  error: unknown;
  watchers: number;
  stop: AbortController;
  /** Settles at the feed's next news (events, end or error). */
  news: Promise<void>;
  announce(): void;
}

/** Builds the feeds over `readPage`. */
export function createSessionFeeds(readPage: ReadHistoryPage): SessionFeeds {
  const feeds = new Map<string, Feed>();

  function renewNews(feed: Feed): void {
    feed.news = new Promise((resolve) => {
      feed.announce = () => {
        renewNews(feed);
        resolve();
      };
    });
  }

  function open(workflowId: string): Feed {
    const existing = feeds.get(workflowId);
    if (existing) return existing;
    const feed: Feed = { events: [], done: false, error: undefined, watchers: 0, stop: new AbortController(), news: Promise.resolve(), announce: () => {} };
    renewNews(feed);
    feeds.set(workflowId, feed);
    void pump(workflowId, feed);
    return feed;
  }

  async function pump(workflowId: string, feed: Feed): Promise<void> {
    const state = createSessionEventState();
    let nextPageToken: Uint8Array | undefined;
    try {
      for (;;) {
        const page = await readPage(workflowId, nextPageToken, feed.stop.signal);
        for (const event of page.events) {
          const mapped = toSessionEvent(event, state);
          if (!mapped) continue;
          feed.events.push(mapped);
          if (isTerminalEvent(mapped)) return;
        }
        if (page.ended || feed.stop.signal.aborted) return;
        nextPageToken = page.nextPageToken;
        if (page.events.length > 0) feed.announce();
      }
    } catch (error) {
      feed.error = error;
    } finally {
      feed.done = true;
      if (feeds.get(workflowId) === feed) feeds.delete(workflowId);
      feed.announce();
    }
  }

  return {
    async *follow(workflowId, signal) {
      const feed = open(workflowId);
      feed.watchers++;
      const aborted = new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
      try {
        for (let next = 0; !signal.aborted; ) {
          const event = feed.events[next];
          if (event) {
            next++;
            yield event;
            if (isTerminalEvent(event)) return;
            continue;
          }
          if (feed.error !== undefined) throw feed.error;
          if (feed.done) return;
          await Promise.race([feed.news, aborted]);
        }
      } finally {
        feed.watchers--;
        if (feed.watchers === 0 && !feed.done) {
          // Nobody follows it any more: cancel its long-poll; the next watcher opens a new feed.
          feeds.delete(workflowId);
          feed.stop.abort();
        }
      }
    },
    size: () => feeds.size,
  };
}
