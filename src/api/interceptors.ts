/**
 * Cross-cutting work done once for every RPC of every protocol (REST calls
 * pass through the same chain): observation (metrics, one log line, a span),
 * error mapping and request validation.
 */
import { create, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { createValidator, type Violation } from "@bufbuild/protovalidate";
import { pathToString } from "@bufbuild/protobuf/reflect";
import { Code, ConnectError, createContextKey, type Interceptor } from "@connectrpc/connect";
import { context } from "@opentelemetry/api";
import { BadRequest_FieldViolationSchema, BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { toConnectError } from "./errors.js";
import type { Logger } from "../shared/logger.js";
import type { CallObserver } from "./observation.js";

/** The wire protocol of a call: `connect`, `grpc`, `grpc-web` or `rest`. */
export const PROTOCOL = createContextKey<string>("connect", { description: "wire protocol" });

/** The protocol a Connect-router request speaks, from its content type. */
export function protocolOf(contentType: string | undefined): string {
  if (contentType?.startsWith("application/grpc-web")) return "grpc-web";
  if (contentType?.startsWith("application/grpc")) return "grpc";
  return "connect";
}

/**
 * Observes each call through `observer` (counter by code, latency, open
 * streams, one log line, a server span, active while the handler runs, that
 * continues the caller's `traceparent`). Outermost, so it sees the final code.
 */
export function createObserveInterceptor(observer: CallObserver): Interceptor {
  return (next) => async (req) => {
    const call = observer.begin(req.method, req.contextValues.get(PROTOCOL), undefined, req.header);
    let response;
    try {
      if (req.stream) {
        const input = req.message;
        response = await context.with(call.context, () => next({
          ...req,
          message: (async function* () {
            for await (const message of input) {
              call.concerns(workflowIdOf(message));
              yield message;
            }
          })(),
        }));
      } else {
        call.concerns(workflowIdOf(req.message));
        response = await context.with(call.context, () => next(req));
      }
    } catch (error) {
      call.finish(ConnectError.from(error));
      throw error;
    }
    if (!response.stream) {
      call.concerns(workflowIdOf(response.message)); // Start: the id it chose
      call.finish();
      return response;
    }
    const messages = response.message;
    call.streamOpened();
    return {
      ...response,
      message: (async function* () {
        let failure: ConnectError | undefined;
        try {
          yield* messages;
        } catch (error) {
          failure = ConnectError.from(error);
          throw error;
        } finally {
          // A stream the client went away from ends without an error here; it is counted as the client's cancel (or deadline).
          call.finish(failure ?? (req.signal.aborted ? ConnectError.from(req.signal.reason) : undefined));
        }
      })(),
    };
  };
}

/** The session workflow a request or response names (`workflow_id` of Get, Watch, Cancel, Start's answer), if any. */
function workflowIdOf(message: unknown): string | undefined {
  const workflowId = (message as { workflowId?: unknown }).workflowId;
  return typeof workflowId === "string" && workflowId !== "" ? workflowId : undefined;
}

/** Maps every failure, unary or mid-stream, through the one error mapper. */
export function createErrorInterceptor(logger: Logger): Interceptor {
  return (next) => async (req) => {
    let response;
    try {
      response = await next(req);
    } catch (error) {
      throw toConnectError(error, logger);
    }
    if (!response.stream) return response;
    const messages = response.message;
    return {
      ...response,
      message: (async function* () {
        try {
          yield* messages;
        } catch (error) {
          throw toConnectError(error, logger);
        }
      })(),
    };
  };
}

/**
 * Validates every request message against its protovalidate rules before the
 * handler runs; violations are INVALID_ARGUMENT naming the field(s), with a
 * google.rpc.BadRequest detail listing each.
 */
export function createValidationInterceptor(): Interceptor {
  const validator = createValidator();
  const check = <D extends DescMessage>(schema: D, message: MessageShape<D>) => {
    const result = validator.validate(schema, message);
    if (result.kind === "valid") return;
    if (result.kind === "error") throw result.error;
    throw invalidArgument(result.violations);
  };
  return (next) => async (req) => {
    if (!req.stream) {
      check(req.method.input, req.message);
      return next(req);
    }
    const input = req.message;
    return next({
      ...req,
      message: (async function* () {
        for (const iterator = input[Symbol.asyncIterator](); ; ) {
          let next: IteratorResult<MessageShape<typeof req.method.input>>;
          try {
            next = await iterator.next();
          } catch (error) {
            throw unreadableMessage(error);
          }
          if (next.done) return;
          check(req.method.input, next.value);
          yield next.value;
        }
      })(),
    });
  };
}

/**
 * A request stream's message that connect-es could not read: it reports a
 * message that is not protobuf as INTERNAL ("parse binary"), but reading the
 * request fails only on what the client sent, so it is INVALID_ARGUMENT.
 * (One-message calls are checked before connect-es reads them: rpc-handler.ts.)
 */
function unreadableMessage(error: unknown): ConnectError {
  const connectError = ConnectError.from(error);
  if (connectError.code !== Code.Internal) return connectError;
  return new ConnectError(`the request stream carries an unreadable message: ${connectError.rawMessage}`, Code.InvalidArgument);
}

function invalidArgument(violations: Violation[]): ConnectError {
  const detail = create(BadRequestSchema, {
    fieldViolations: violations.map((v) =>
      create(BadRequest_FieldViolationSchema, { field: pathToString(v.field), description: v.message, reason: v.ruleId }),
    ),
  });
  const message = violations.map((v) => `${pathToString(v.field) || "request"}: ${v.message}`).join("; ");
  return new ConnectError(message, Code.InvalidArgument, undefined, [
    { desc: BadRequestSchema, value: detail },
  ]);
}
