/**
 * The one error mapper of the API: every failure, whatever the protocol,
 * becomes a `ConnectError` here, and the REST side turns that into an HTTP
 * status and a google.rpc.Status-shaped JSON body. Unexpected errors are
 * logged with a generated id; only the id reaches the caller.
 */
import { randomUUID } from "node:crypto";
import { create, toJson, type DescMessage } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { durationFromMs, durationMs } from "@bufbuild/protobuf/wkt";
import { BadRequest_FieldViolationSchema, BadRequestSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import {
  CallerMismatchError,
  InvalidFieldError,
  SessionFinishedError,
  SessionAlreadyExistsError,
  SessionNotFoundError,
  TemporalDeadlineError,
  TemporalOverloadedError,
  TemporalUnavailableError,
} from "../temporal/errors.js";
import type { Logger } from "../shared/logger.js";

/**
 * A `ConnectError` that REST answers with another HTTP status than the
 * google.rpc mapping gives its code, and any headers that status needs (like
 * grpc-gateway's `HTTPStatusError`). Over gRPC and Connect only `error` counts.
 */
export class HttpStatusError extends Error {
  constructor(
    /** The HTTP status to answer with. */
    readonly status: number,
    /** The error as every protocol sees it: its code and message make the body. */
    readonly error: ConnectError,
    /** Headers the status calls for, e.g. `Allow` with 405. */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(error.message, { cause: error });
    this.name = "HttpStatusError";
  }
}

/** The server is draining for shutdown and takes no new calls (UNAVAILABLE, 503). */
export function shuttingDownError(): ConnectError {
  return new ConnectError("server is shutting down; retry on another instance", Code.Unavailable);
}

/** How long a client should wait before retrying a call Temporal refused for load (google.rpc.RetryInfo). */
export const OVERLOAD_RETRY_DELAY_MS = 1_000;

/**
 * Temporal refused the call for load: RESOURCE_EXHAUSTED (HTTP 429), with a
 * google.rpc.RetryInfo detail saying when to try again.
 */
function overloadedError(message: string): ConnectError {
  const retryInfo = create(RetryInfoSchema, { retryDelay: durationFromMs(OVERLOAD_RETRY_DELAY_MS) });
  return new ConnectError(message, Code.ResourceExhausted, undefined, [{ desc: RetryInfoSchema, value: retryInfo }]);
}

/** A request body over the size limit: RESOURCE_EXHAUSTED, HTTP 413. */
export function requestTooLargeError(limitBytes: number): HttpStatusError {
  return new HttpStatusError(413, new ConnectError(`request body exceeds the limit of ${limitBytes} bytes`, Code.ResourceExhausted));
}

/** A body whose content type the endpoint does not read: INVALID_ARGUMENT, HTTP 415. */
export function unsupportedMediaTypeError(contentType: string): HttpStatusError {
  const shown = JSON.stringify(contentType || "(none)");
  return new HttpStatusError(415, new ConnectError(`content type ${shown} is not supported: send application/json`, Code.InvalidArgument));
}

/**
 * A request body that cannot be read as its message (bad bytes, a duplicate
 * JSON key, not protobuf): INVALID_ARGUMENT, with a google.rpc.BadRequest
 * detail naming `field` when one can be named.
 */
export function malformedBodyError(message: string, field = ""): ConnectError {
  const detail = create(BadRequestSchema, {
    fieldViolations: field === "" ? [] : [create(BadRequest_FieldViolationSchema, { field, description: message, reason: "malformed" })],
  });
  return new ConnectError(message, Code.InvalidArgument, undefined, field === "" ? [] : [{ desc: BadRequestSchema, value: detail }]);
}

/** A path served by REST, but not for this HTTP method: UNIMPLEMENTED, HTTP 405 with `Allow` listing the methods it serves. */
export function methodNotAllowedError(method: string, path: string, allowed: readonly string[]): HttpStatusError {
  return new HttpStatusError(405, new ConnectError(`method ${method} is not allowed on ${path}`, Code.Unimplemented), { allow: allowed.join(", ") });
}

/**
 * Maps any thrown value to a `ConnectError`: port failures to NOT_FOUND,
 * ALREADY_EXISTS, PERMISSION_DENIED, FAILED_PRECONDITION (cancel of a finished
 * session), INVALID_ARGUMENT naming the field, UNAVAILABLE, DEADLINE_EXCEEDED,
 * RESOURCE_EXHAUSTED (Temporal over its limits); a `ConnectError` passes through (except an
 * INTERNAL/UNKNOWN one, whose message is replaced by an error id); anything
 * else is INTERNAL with an error id, the original logged under that id.
 */
export function toConnectError(error: unknown, logger: Logger): ConnectError {
  if (error instanceof SessionNotFoundError) return new ConnectError(error.message, Code.NotFound);
  if (error instanceof SessionAlreadyExistsError) return new ConnectError(error.message, Code.AlreadyExists);
  if (error instanceof CallerMismatchError) return new ConnectError(error.message, Code.PermissionDenied);
  if (error instanceof SessionFinishedError) return new ConnectError(error.message, Code.FailedPrecondition);
  if (error instanceof InvalidFieldError) return malformedBodyError(error.message, error.field);
  if (error instanceof TemporalUnavailableError) return new ConnectError(error.message, Code.Unavailable);
  if (error instanceof TemporalDeadlineError) return new ConnectError(error.message, Code.DeadlineExceeded);
  if (error instanceof TemporalOverloadedError) return withRetryAfter(overloadedError(error.message));
  if (error instanceof ConnectError && error.code !== Code.Internal && error.code !== Code.Unknown) return withRetryAfter(error);
  const errorId = randomUUID();
  logger.error("unexpected error", {
    errorId,
    error: error instanceof Error ? { name: error.name, message: error.message, stack: error.stack } : String(error),
  });
  return new ConnectError(`internal error (error id ${errorId})`, Code.Internal);
}

/**
 * Puts the delay of an error's google.rpc.RetryInfo into its metadata as
 * `Retry-After` (whole seconds, rounded up) for clients that read no details:
 * REST and the Connect protocol's unary answers send it as an HTTP header, gRPC as a trailer.
 */
function withRetryAfter(error: ConnectError): ConnectError {
  const [retryInfo] = error.findDetails(RetryInfoSchema);
  if (retryInfo?.retryDelay && !error.metadata.has("retry-after")) {
    error.metadata.set("retry-after", String(Math.ceil(durationMs(retryInfo.retryDelay) / 1000)));
  }
  return error;
}

const HTTP_STATUS: Record<Code, number> = {
  [Code.Canceled]: 499,
  [Code.Unknown]: 500,
  [Code.InvalidArgument]: 400,
  [Code.DeadlineExceeded]: 504,
  [Code.NotFound]: 404,
  [Code.AlreadyExists]: 409,
  [Code.PermissionDenied]: 403,
  [Code.ResourceExhausted]: 429,
  [Code.FailedPrecondition]: 400,
  [Code.Aborted]: 409,
  [Code.OutOfRange]: 400,
  [Code.Unimplemented]: 501,
  [Code.Internal]: 500,
  [Code.Unavailable]: 503,
  [Code.DataLoss]: 500,
  [Code.Unauthenticated]: 401,
};

/** The HTTP status of an error: its own for an {@link HttpStatusError}, else the google.rpc mapping of its code. */
export function httpStatusOf(error: ConnectError | HttpStatusError): number {
  if (error instanceof HttpStatusError) return error.status;
  return HTTP_STATUS[error.code] ?? 500;
}

/** The canonical name of a code, e.g. `INVALID_ARGUMENT`. */
export function codeName(code: Code): string {
  if (code === Code.Canceled) return "CANCELLED";
  return Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

/** JSON of google.rpc.Status, plus the canonical `status` name. */
export interface StatusJson {
  code: number;
  status: string;
  message: string;
  details: Record<string, unknown>[];
}

/** The google.rpc.Status JSON body of an error; details as `Any` JSON with `@type`. */
export function statusJson(error: ConnectError): StatusJson {
  return {
    code: error.code,
    status: codeName(error.code),
    message: error.rawMessage,
    details: error.details.flatMap((detail) => {
      if (!("desc" in detail)) return [];
      const desc = detail.desc as DescMessage;
      const json = toJson(desc, create(desc, detail.value as never)) as Record<string, unknown>;
      return [{ "@type": `type.googleapis.com/${desc.typeName}`, ...json }];
    }),
  };
}
