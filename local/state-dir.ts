/** Where `npm start` keeps logs, Temporal's database, Kafka's data and the local keys, across runs. */
import { homedir } from "node:os";
import path from "node:path";

/** `$SOMAGENT_STATE_DIR`, else `~/.local/state/somagent-orchestrator`. */
export const LOCAL_STATE_DIR = process.env.SOMAGENT_STATE_DIR ?? path.join(homedir(), ".local", "state", "somagent-orchestrator");

/** The identity service's key directory under a state directory (`IDENTITY_SERVICE_KEY_DIR` of the local stack). */
export function identityKeyDir(stateDir: string): string {
  return path.join(stateDir, "identity-keys");
}
