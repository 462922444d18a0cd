/**
 * The local stack's launcher hands each process only the secrets it uses:
 * the environment a child is started with, as composed for it.
 */
import { describe, expect, it } from "vitest";
import { SECRET_VARIABLES, processEnvironment, secretEnvironments } from "../../local/services.js";

const secrets = {
  codecKeys: "local:codec",
  rayAuthToken: "ray-token",
  identityClientSecret: "client-secret",
  policyEngineAdminToken: "admin-token",
  slmProviderApiKey: "provider-key",
};

describe("secretEnvironments", () => {
  it("gives each process only its own secrets: none of the codec keys or the Ray token to the companions", () => {
    const own = secretEnvironments(secrets);
    expect(own.policyEngine).toEqual({ POLICY_ENGINE_ADMIN_TOKEN: "admin-token" });
    expect(own.identityService).toEqual({ IDENTITY_SERVICE_CLIENT_SECRET: "client-secret" });
    expect(own.worker).toEqual({
      PAYLOAD_CODEC_KEYS: "local:codec",
      RAY_AUTH_TOKEN: "ray-token",
      IDENTITY_SERVICE_CLIENT_SECRET: "client-secret",
      SLM_PROVIDER_API_KEY: "provider-key",
    });
    expect(own.api).toEqual({ PAYLOAD_CODEC_KEYS: "local:codec" });
  });
});

describe("processEnvironment", () => {
  it("drops every secret of the launcher's own environment, keeping the rest and the process's own", () => {
    const inherited = Object.fromEntries([...SECRET_VARIABLES.map((name) => [name, `inherited-${name}`]), ["PATH", "/usr/bin"]]);
    const env = processEnvironment(inherited, { POLICY_ENGINE_ADMIN_TOKEN: "admin-token", POLICY_ENGINE_PORT: "8101" });
    expect(env).toEqual({ PATH: "/usr/bin", POLICY_ENGINE_ADMIN_TOKEN: "admin-token", POLICY_ENGINE_PORT: "8101" });
  });
});
