/**
 * gRPC server reflection (v1 and v1alpha) served from the generated
 * descriptors, so grpcurl and `buf curl` can call the API without .proto
 * files. connect-es has none (connect-es#507).
 */
import { toBinary, type DescFile, type DescMessage, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, type ServiceImpl } from "@connectrpc/connect";
import * as v1 from "../../gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";

/** The request fields both reflection versions share. */
type ReflectionRequest = v1.ServerReflectionRequest | v1alpha.ServerReflectionRequest;

/** The answer to one reflection request, in the shape both versions share. */
type ReflectionAnswer =
  | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
  | { case: "allExtensionNumbersResponse"; value: { baseTypeName: string; extensionNumber: number[] } }
  | { case: "listServicesResponse"; value: { service: { name: string }[] } }
  | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };

/** The descriptors reflection answers from: the served services, their files and every dependency. */
interface DescriptorIndex {
  services: string[];
  files: Map<string, DescFile>;
  symbols: Map<string, DescFile>;
  /** Extendee type name → extension number → declaring file. */
  extensions: Map<string, Map<number, DescFile>>;
}

function indexDescriptors(services: readonly DescService[]): DescriptorIndex {
  const index: DescriptorIndex = { services: services.map((s) => s.typeName), files: new Map(), symbols: new Map(), extensions: new Map() };
  const addMessage = (file: DescFile, message: DescMessage) => {
    index.symbols.set(message.typeName, file);
    for (const nested of message.nestedMessages) addMessage(file, nested);
    for (const nested of message.nestedEnums) index.symbols.set(nested.typeName, file);
    for (const ext of message.nestedExtensions) addExtension(file, ext.typeName, ext.extendee.typeName, ext.number);
  };
  const addExtension = (file: DescFile, name: string, extendee: string, number: number) => {
    index.symbols.set(name, file);
    const byNumber = index.extensions.get(extendee) ?? new Map<number, DescFile>();
    byNumber.set(number, file);
    index.extensions.set(extendee, byNumber);
  };
  const addFile = (file: DescFile) => {
    if (index.files.has(file.proto.name)) return;
    index.files.set(file.proto.name, file);
    for (const message of file.messages) addMessage(file, message);
    for (const enumeration of file.enums) index.symbols.set(enumeration.typeName, file);
    for (const ext of file.extensions) addExtension(file, ext.typeName, ext.extendee.typeName, ext.number);
    for (const service of file.services) {
      index.symbols.set(service.typeName, file);
      for (const method of service.methods) index.symbols.set(`${service.typeName}.${method.name}`, file);
    }
    for (const dependency of file.dependencies) addFile(dependency);
  };
  for (const service of services) addFile(service.file);
  return index;
}

/** The file and its transitive dependencies, the file first, each serialized once. */
function withDependencies(file: DescFile): Uint8Array[] {
  const seen = new Set<string>();
  const out: Uint8Array[] = [];
  const visit = (f: DescFile) => {
    if (seen.has(f.proto.name)) return;
    seen.add(f.proto.name);
    out.push(toBinary(FileDescriptorProtoSchema, f.proto));
    for (const dependency of f.dependencies) visit(dependency);
  };
  visit(file);
  return out;
}

function answer(index: DescriptorIndex, request: ReflectionRequest): ReflectionAnswer {
  const files = (file: DescFile | undefined, what: string): ReflectionAnswer =>
    file
      ? { case: "fileDescriptorResponse", value: { fileDescriptorProto: withDependencies(file) } }
      : { case: "errorResponse", value: { errorCode: Code.NotFound, errorMessage: `${what} not found` } };
  const message = request.messageRequest;
  switch (message.case) {
    case "listServices":
      return { case: "listServicesResponse", value: { service: index.services.map((name) => ({ name })) } };
    case "fileByFilename":
      return files(index.files.get(message.value), `file ${message.value}`);
    case "fileContainingSymbol":
      return files(index.symbols.get(message.value), `symbol ${message.value}`);
    case "fileContainingExtension": {
      const { containingType, extensionNumber } = message.value;
      return files(index.extensions.get(containingType)?.get(extensionNumber), `extension ${extensionNumber} of ${containingType}`);
    }
    case "allExtensionNumbersOfType": {
      const numbers = index.extensions.get(message.value);
      if (!numbers && !index.symbols.has(message.value)) {
        return { case: "errorResponse", value: { errorCode: Code.NotFound, errorMessage: `type ${message.value} not found` } };
      }
      return { case: "allExtensionNumbersResponse", value: { baseTypeName: message.value, extensionNumber: [...(numbers?.keys() ?? [])] } };
    }
    default:
      return { case: "errorResponse", value: { errorCode: Code.InvalidArgument, errorMessage: "empty reflection request" } };
  }
}

/** Both reflection services, answering about `services` (which should include themselves). */
export function createReflectionServices(services: readonly DescService[]): {
  v1: ServiceImpl<typeof v1.ServerReflection>;
  v1alpha: ServiceImpl<typeof v1alpha.ServerReflection>;
} {
  const index = indexDescriptors(services);
  return {
    v1: {
      async *serverReflectionInfo(requests) {
        for await (const request of requests) {
          yield { validHost: request.host, originalRequest: request, messageResponse: answer(index, request) };
        }
      },
    },
    v1alpha: {
      async *serverReflectionInfo(requests) {
        for await (const request of requests) {
          yield { validHost: request.host, originalRequest: request, messageResponse: answer(index, request) };
        }
      },
    },
  };
}
