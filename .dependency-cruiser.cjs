/**
 * The dependency rule, checked by `npm run lint` (and so by CI).
 *
 * Requests flow one way: api → temporal → Temporal → worker → workflows →
 * activities → clients → the outside world. `shared` is the kernel everyone
 * may use and that uses nobody; `config` parses the environment for the entry
 * points. Three houses stay apart: the product (src/ minus companions), the
 * companions (src/companions, their own deployable services) and the local
 * stack (local/, never shipped). Adapters (clients) never import the
 * activities they serve: the worker wires them, and TypeScript's structural
 * types check the fit there.
 */
const product = "^src/(api|temporal|workflows|activities|clients|worker)/";

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "no-circular",
      severity: "error",
      comment: "A cycle makes two modules one; split what both need into a third.",
      from: {},
      to: { circular: true },
    },
    {
      name: "shipped-code-never-imports-the-local-stack",
      severity: "error",
      comment: "src/ is what the image ships; local/ (launcher, npm start) and test/ are not in it.",
      from: { path: "^src/" },
      to: { path: "^(local|test|bench)/" },
    },
    {
      name: "nothing-imports-the-api",
      severity: "error",
      comment: "The API is the top of the product: only its own files and its entry point use it.",
      from: { path: "^(src|local)/", pathNot: "^src/api/" },
      to: { path: "^src/api/" },
    },
    {
      name: "shared-kernel-uses-nobody",
      severity: "error",
      comment: "src/shared (logging, metrics, HTTP foundation, telemetry) may use only itself and config.",
      from: { path: "^src/shared/" },
      to: { path: "^src/", pathNot: "^src/(shared/|config\\.ts$)" },
    },
    {
      name: "companions-stand-alone",
      severity: "error",
      comment: "The policy engine and identity service are their own services: they share only the kernel and config.",
      from: { path: "^src/companions/" },
      to: { path: product },
    },
    {
      name: "product-never-imports-companions",
      severity: "error",
      comment: "The product talks to the companions over HTTP, never through their code.",
      from: { path: "^src/", pathNot: "^src/companions/" },
      to: { path: "^src/companions/" },
    },
    {
      name: "temporal-side-of-the-api",
      severity: "error",
      comment: "src/temporal (client, codec, session port) knows the workflow's contract, nothing of the worker side.",
      from: { path: "^src/temporal/" },
      to: { path: "^src/(worker|activities|clients)/|^src/workflows/(?!contract\\.ts$)" },
    },
    {
      name: "workflows-are-deterministic",
      severity: "error",
      comment: "Workflow code imports only @temporalio/workflow, its own files, generated types and the activities' types.",
      from: { path: "^src/workflows/" },
      to: {
        pathNot: "^(src/workflows/|gen/|node_modules/@temporalio/workflow/|node_modules/@bufbuild/protobuf/|src/activities/)",
      },
    },
    {
      name: "workflows-see-only-activity-types",
      severity: "error",
      comment: "The workflow derives its activity types from createActivities, never runs activity code.",
      from: { path: "^src/workflows/" },
      to: { path: "^src/activities/", dependencyTypesNot: ["type-only"] },
    },
    {
      name: "activities-declare-what-they-need",
      severity: "error",
      comment: "Activities state their dependencies in their own terms; the worker wires clients to them.",
      from: { path: "^src/activities/" },
      to: { path: "^src/(worker|clients|temporal)/|^src/workflows/(?!contract\\.ts$)" },
    },
    {
      name: "clients-are-adapters",
      severity: "error",
      comment: "A client owns its wire format and knows nothing of activities, workflows, the worker or Temporal.",
      from: { path: "^src/clients/" },
      to: { path: "^src/(worker|activities|workflows|temporal)/" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { exportsFields: ["exports"], conditionNames: ["import", "require", "node", "default"] },
  },
};
