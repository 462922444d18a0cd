/**
 * What the RPC handler (Connect, gRPC, gRPC-Web) and the REST transcoder both
 * serve: the services with their implementations, run through one chain of
 * interceptors.
 */
import type { DescService } from "@bufbuild/protobuf";
import type { ContextValues, Interceptor, ServiceImpl } from "@connectrpc/connect";
import type { Logger } from "../shared/logger.js";
import type { HttpRequest } from "./http-responses.js";
import type { CallObserver } from "./observation.js";

/** A service descriptor with its (possibly partial) implementation. */
export interface ServiceRegistration {
  service: DescService;
  implementation: Partial<ServiceImpl<DescService>>;
}

/** Pairs a service with its implementation, type-checked against the descriptor. */
export function registration<T extends DescService>(service: T, implementation: Partial<ServiceImpl<T>>): ServiceRegistration {
  return { service, implementation: implementation as Partial<ServiceImpl<DescService>> };
}

/** The call pipeline both front ends run requests through. */
export interface CallPipeline {
  services: readonly ServiceRegistration[];
  /** One chain for every protocol. */
  interceptors: Interceptor[];
  /** The observe interceptor's observer: requests refused before the interceptors (bad body, binding) are observed through it. */
  observer: CallObserver;
  /** Largest accepted request body or message. */
  maxBodyBytes: number;
  logger: Logger;
  /** The values each call starts with (its protocol, its caller). */
  contextValues(req: HttpRequest): ContextValues;
}
