/**
 * P4's floor as a process of its own: a plain `node:http2` server (h2c) that
 * answers each call with the bytes the API answered it (headers, body,
 * trailers). Started by `serveRecordedAnswers` with the same Node and flags as
 * the API, so both sides of P4 pay the same process scheduling.
 *
 * Usage: node --import tsx bench/recorded-answers-server.ts <answers.json> <port>
 */
import { readFile } from "node:fs/promises";
import http2 from "node:http2";

/** One recorded answer, keyed by the request that produced it; the body in base64. */
export interface RecordedAnswer {
  method: string;
  path: string;
  contentType: string | undefined;
  headers: http2.OutgoingHttpHeaders;
  status: number;
  body: string;
  trailers: http2.OutgoingHttpHeaders;
}

const key = (method: string, path: string, contentType: string | undefined) => `${method} ${path} ${contentType ?? ""}`;

async function main(): Promise<void> {
  const [answersFile, port] = process.argv.slice(2);
  if (!answersFile || !port) throw new Error("usage: recorded-answers-server.ts <answers.json> <port>");
  const answers = JSON.parse(await readFile(answersFile, "utf8")) as RecordedAnswer[];
  const byCall = new Map(answers.map((answer) => [key(answer.method, answer.path, answer.contentType), { ...answer, body: Buffer.from(answer.body, "base64") }]));
  const server = http2.createServer();
  server.on("stream", (stream, headers) => {
    const answer = byCall.get(key(String(headers[":method"]), String(headers[":path"]), headers["content-type"]));
    stream.on("data", () => {});
    stream.on("end", () => {
      if (!answer) {
        stream.respond({ ":status": 404 }, { endStream: true });
        return;
      }
      const hasTrailers = Object.keys(answer.trailers).length > 0;
      stream.respond({ ...answer.headers, ":status": answer.status }, { waitForTrailers: hasTrailers });
      if (hasTrailers) stream.once("wantTrailers", () => stream.sendTrailers(answer.trailers));
      stream.end(answer.body);
    });
  });
  server.listen(Number(port), "127.0.0.1");
  process.once("SIGTERM", () => server.close(() => process.exit(0)));
}

await main();
