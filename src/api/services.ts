/** The unit both the Connect router and the REST transcoder serve: a service and its implementation. */
import type { DescService } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";

/** A service descriptor with its (possibly partial) implementation. */
export interface ServiceRegistration {
  service: DescService;
  implementation: Partial<ServiceImpl<DescService>>;
}

/** Pairs a service with its implementation, type-checked against the descriptor. */
export function registration<T extends DescService>(service: T, implementation: Partial<ServiceImpl<T>>): ServiceRegistration {
  return { service, implementation: implementation as Partial<ServiceImpl<DescService>> };
}
