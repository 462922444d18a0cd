/**
 * The worker's workflow module. Temporal registers workflows by export name,
 * so the seed's dashed type name is an ES2022 string export name.
 */
export { sessionStartWorkflow as "session-start-workflow" } from "./session-workflow.js";
