/**
 * The generated SessionService client over the Connect protocol, to the
 * page's own origin (the API serves the console, so no CORS is involved).
 * Every call carries `Authorization: Bearer <token>` while a token is set.
 */
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { SessionService } from "../../gen/somagent/orchestrator/v1/session_pb.js";

/** A SessionService client that reads the current token from `token()` on each call. */
export function createSessionClient(token: () => string): Client<typeof SessionService> {
  const bearer: Interceptor = (next) => (request) => {
    const current = token();
    if (current !== "") request.header.set("Authorization", `Bearer ${current}`);
    return next(request);
  };
  return createClient(SessionService, createConnectTransport({ baseUrl: location.origin, interceptors: [bearer] }));
}

/** What the page says about a failed call: the API's message, with a hint for a missing or refused token. */
export function describeError(error: unknown): string {
  const connectError = ConnectError.from(error);
  if (connectError.code === Code.Unauthenticated) {
    return `${connectError.rawMessage} — paste a token under Access (the API requires authentication)`;
  }
  return `${Code[connectError.code]}: ${connectError.rawMessage}`;
}
