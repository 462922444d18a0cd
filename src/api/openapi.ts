/**
 * `GET /openapi.json`: the OpenAPI 3 document of the REST routes, generated
 * from the proto's `google.api.http` annotations by buf (gnostic's
 * protoc-gen-openapi, `npm run generate:clients`) and committed under openapi/.
 */
import document from "../../openapi/openapi.json" with { type: "json" };
import { JSON_CONTENT_TYPE } from "../shared/http/reply.js";
import type { SideRoute } from "../shared/http/side-routes.js";

/** The document's route; the JSON is serialized once. */
export function openApiRoute(): SideRoute {
  const text = JSON.stringify(document);
  return { path: "/openapi.json", answer: () => ({ text, contentType: JSON_CONTENT_TYPE }) };
}
