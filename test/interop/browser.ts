/**
 * Drives the browser client in Debian's headless Chromium through
 * playwright-core (no browser download: the network is closed).
 */
import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { chromium, type Browser } from "playwright-core";
import { tools } from "./tools.js";

/** What the page showed once the session ended. */
export interface BrowserSession {
  /** `done` or `error` (the page's `body[data-state]`). */
  state: string;
  workflowId: string;
  /** `data-kind` of each listed event, in page order. */
  kinds: string[];
  /** `data-sequence` of each listed event, in page order. */
  sequences: number[];
  status: string;
  completion: string;
  error: string;
}

/** Starts Debian's headless Chromium, with nothing that reaches for the (closed) network. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: tools.chromium,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** The page has finished: the session ended or a call failed. */
export const pageFinished = "body[data-state=done], body[data-state=error]";

/**
 * Opens `url`, waits until `until` (a CSS selector, default {@link pageFinished})
 * matches or `timeoutMs` passes, screenshots the page into `screenshotPath`
 * and reports what it shows.
 */
export async function runBrowserSession(
  url: string,
  screenshotPath: string,
  until = pageFinished,
  timeoutMs = 120_000,
): Promise<BrowserSession> {
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.goto(url);
    await page.waitForSelector(until, { timeout: timeoutMs });
    await mkdir(dirname(screenshotPath), { recursive: true });
    await page.screenshot({ path: screenshotPath, fullPage: true });
    // Locators rather than page.evaluate: the project's type checking has no DOM types.
    const text = async (id: string) => (await page.locator(`#${id}`).textContent()) ?? "";
    const items = await page.locator("#events li").all();
    return {
      state: (await page.locator("body").getAttribute("data-state")) ?? "",
      workflowId: await text("workflow"),
      kinds: await Promise.all(items.map(async (li) => (await li.getAttribute("data-kind")) ?? "")),
      sequences: await Promise.all(items.map(async (li) => Number(await li.getAttribute("data-sequence")))),
      status: await text("status"),
      completion: await text("completion"),
      error: await text("error"),
    };
  } finally {
    await browser.close();
  }
}
