/**
 * Temporal's time-skipping test server: the Java SDK's
 * `io.temporal.testserver.TestServer`, the same server `@temporalio/testing`
 * otherwise downloads as a native build from temporal.download (unreachable
 * here). Its jars come from Maven Central: `temporal-test-server/pom.xml`
 * resolves the runtime classpath with Maven on first use, and a small script
 * beside them runs it as the SDK runs its own build, `<executable> <port>`.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { chmod, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { installOnce } from "./cache.js";
import { runCommand } from "./processes.js";

/** The pinned test server version (`io.temporal:temporal-test-server`, Java 8+). */
export const TEMPORAL_TEST_SERVER_VERSION = "1.38.0";

const POM = fileURLToPath(new URL("./temporal-test-server/pom.xml", import.meta.url));
const MAIN_CLASS = "io.temporal.testserver.TestServer";

// A small heap and the quick C1 compiler only: the SDK gives the server 5 s to answer
// (sdk-core's ephemeral_server), and it shares two cores with the rest of a test run.
const JVM_OPTIONS = ["-Xms64m", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"];

/** `'…'` for a POSIX shell. */
function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * Resolves the test server's jars from Maven Central into the cache (first run
 * only; downloads are also kept in `~/.m2`) and returns the path of an
 * executable that starts it: `<path> <port> [--enable-time-skipping]`, as
 * `TestWorkflowEnvironment.createTimeSkipping({ server: { executable: { type:
 * "existing-path", path } } })` calls it. The script `exec`s java, so the
 * process the SDK stops on teardown is the server itself.
 * Throws when Maven fails, with the tail of `<installDir>/install.log`.
 */
export async function installTemporalTestServer(): Promise<string> {
  const pomHash = createHash("sha256").update(readFileSync(POM)).digest("hex").slice(0, 8);
  const dir = await installOnce(
    `temporal-test-server-${TEMPORAL_TEST_SERVER_VERSION}-${pomHash}`,
    `resolving Temporal's test server ${TEMPORAL_TEST_SERVER_VERSION} from Maven Central`,
    async (target) => {
      await runCommand(
        "mvn",
        [
          "-q", "-B", "-f", POM, `-Dtemporal.test-server.version=${TEMPORAL_TEST_SERVER_VERSION}`,
          "dependency:copy-dependencies", "-DincludeScope=runtime", `-DoutputDirectory=${path.join(target, "libs")}`,
        ],
        { logFile: path.join(target, "install.log") },
      );
      const script = path.join(target, "temporal-test-server");
      const command = ["java", ...JVM_OPTIONS, "-cp", `${path.join(target, "libs")}/*`, MAIN_CLASS].map(shellQuote).join(" ");
      await writeFile(script, `#!/bin/sh\n# Written by local/temporal-test-server.ts: <port> [--enable-time-skipping]\nexec ${command} "$@"\n`);
      await chmod(script, 0o755);
    },
  );
  return path.join(dir, "temporal-test-server");
}
