/**
 * A real Apache Kafka broker in KRaft mode (broker and controller in one JVM),
 * run from its jars on Maven Central: `kafka/pom.xml` resolves the broker's
 * runtime classpath with Maven on first use. 4.4.0 is the newest 4.x and runs
 * on Java 17 (class files 61). kafkajs 2.2.4 still works with it after KIP-896:
 * it negotiates Produce v7, Fetch v11, InitProducerId v1, JoinGroup v5,
 * OffsetCommit v5 and CreateTopics v3, all above the broker's minimums, and
 * test/local/kafka.test.ts runs every call the project makes.
 */
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Kafka, logLevel, type Admin } from "kafkajs";
import { loadKafkaConfig } from "../src/config.js";
import { installOnce } from "./cache.js";
import { freePort, runCommand, startDaemon, waitUntil, type Daemon } from "./processes.js";

/** The pinned Apache Kafka version (`org.apache.kafka:kafka_2.13`). */
export const KAFKA_VERSION = "4.4.0";

const POM = fileURLToPath(new URL("./kafka/pom.xml", import.meta.url));
const NODE_ID = 1;

/**
 * Resolves the broker's runtime jars from Maven Central into the cache (first
 * run only; downloads are also kept in `~/.m2`) and returns the install directory.
 * Throws when Maven fails, with the tail of `<installDir>/install.log`.
 */
export async function installKafka(): Promise<string> {
  // Keyed by the pom too: a changed classpath (e.g. another logging backend) installs beside the old one.
  const pomHash = createHash("sha256").update(readFileSync(POM)).digest("hex").slice(0, 8);
  return installOnce(`kafka-${KAFKA_VERSION}-${pomHash}`, `resolving Apache Kafka ${KAFKA_VERSION} from Maven Central`, (dir) =>
    runCommand(
      "mvn",
      [
        "-q", "-B", "-f", POM, `-Dkafka.version=${KAFKA_VERSION}`,
        "dependency:copy-dependencies", "-DincludeScope=runtime", `-DoutputDirectory=${path.join(dir, "libs")}`,
      ],
      { logFile: path.join(dir, "install.log") },
    ),
  );
}

/** Where to run the broker; unset ports are chosen free. */
export interface KafkaOptions {
  /** From {@link installKafka}. */
  installDir: string;
  /**
   * Holds `kafka.log`, `kafka-data/` and `kafka-*` configuration (other services may share it):
   * start again on the same directory to keep topics and records.
   */
  stateDir: string;
  /** Client (PLAINTEXT) port. */
  port?: number;
  /** KRaft controller port. */
  controllerPort?: number;
}

/** A running single-node broker. */
export interface KafkaBroker {
  /** `127.0.0.1:port`, for `KAFKA_BOOTSTRAP_SERVERS`. */
  bootstrap: string;
  port: number;
  controllerPort: number;
  /** The version the broker process itself logged at start-up. */
  version: string;
  /** Chosen when the state directory was first formatted; the same across restarts. */
  clusterId: string;
  /** The current process (a new one after {@link KafkaBroker.restart}). */
  readonly daemon: Daemon;
  stop(): Promise<void>;
  /**
   * Starts the broker again on the same ports and data directory (stopping it first when it runs)
   * and resolves once it serves clients: topics and records are kept.
   */
  restart(): Promise<void>;
}

// Static voters keep the controller's address in this file rather than in the
// metadata log (as a `--standalone` dynamic quorum would), so ports may change between starts.
function serverProperties(port: number, controllerPort: number, dataDir: string): string {
  return `# Written by local/kafka.ts on every start.
process.roles=broker,controller
node.id=${NODE_ID}
listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}
advertised.listeners=PLAINTEXT://127.0.0.1:${port}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
controller.quorum.voters=${NODE_ID}@127.0.0.1:${controllerPort}
log.dirs=${dataDir}
num.partitions=1
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# One partition instead of 50 per internal topic: a single node on a lean machine.
offsets.topic.num.partitions=1
transaction.state.log.num.partitions=1
`;
}

// Warnings, plus the broker's start and shutdown lines and the version line the
// launcher reads. Without log4j's own shutdown hook the broker's shutdown is logged to its end.
const LOG4J_CONFIG = `status = warn
shutdownHook = disable
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.out.ref = out
logger.raft.name = kafka.server.KafkaRaftServer
logger.raft.level = info
logger.broker.name = kafka.server.BrokerServer
logger.broker.level = info
logger.appinfo.name = org.apache.kafka.common.utils
logger.appinfo.level = info
`;

// A small heap: the broker shares a lean machine with Temporal, Ray and the tests.
const JVM_OPTIONS = ["-Xms256m", "-Xmx512m", "-XX:+UseG1GC", "-XX:+ExitOnOutOfMemoryError"];

/** `Kafka version: 4.4.0 (org.apache.kafka.common.utils.internals.AppInfoParser)`; the package moved in 4.x. */
const VERSION_LINE = /Kafka version: (\S+) \(org\.apache\.kafka\.common\.utils\.(?:internals\.)?AppInfoParser\)/;

/** The cluster id kept in the state directory, chosen on first use as Kafka's `Uuid` would be. */
async function clusterIdOf(stateDir: string): Promise<string> {
  const file = path.join(stateDir, "kafka-cluster-id");
  const kept = await readFile(file, "utf8").catch(() => "");
  if (kept.trim()) return kept.trim();
  let id: string;
  // 16 random bytes in unpadded base64url; one starting with "-" would read as a command-line flag.
  do id = randomBytes(16).toString("base64url");
  while (id.startsWith("-"));
  await writeFile(file, `${id}\n`);
  return id;
}

async function withAdmin<T>(kafka: Kafka, work: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = kafka.admin();
  try {
    await admin.connect();
    return await work(admin);
  } finally {
    await admin.disconnect();
  }
}

/**
 * Starts the broker on loopback (formatting `<stateDir>/kafka-data` on first
 * start only) and resolves once it serves clients and the audit topic
 * exists, as `KAFKA_AUDIT_TOPIC*` describe it (default `agent.audit`, 3 partitions). Throws, naming `kafka` and its log, when it exits or is not healthy within 60 s.
 */
export async function startKafka(options: KafkaOptions): Promise<KafkaBroker> {
  const port = options.port ?? (await freePort());
  const controllerPort = options.controllerPort ?? (await freePort());
  const dataDir = path.join(options.stateDir, "kafka-data");
  const logFile = path.join(options.stateDir, "kafka.log");
  const configFile = path.join(options.stateDir, "kafka-server.properties");
  const log4jFile = path.join(options.stateDir, "kafka-log4j2.properties");
  await mkdir(options.stateDir, { recursive: true });
  await writeFile(configFile, serverProperties(port, controllerPort, dataDir));
  await writeFile(log4jFile, LOG4J_CONFIG);
  const javaArgs = (mainClass: string, args: string[]): string[] => [
    ...JVM_OPTIONS,
    `-Dlog4j2.configurationFile=${log4jFile}`,
    "-cp", `${path.join(options.installDir, "libs")}/*`,
    mainClass, ...args,
  ];

  const clusterId = await clusterIdOf(options.stateDir);
  if (!existsSync(path.join(dataDir, "meta.properties"))) {
    await runCommand("java", javaArgs("kafka.tools.StorageTool", ["format", "--cluster-id", clusterId, "--config", configFile]), { logFile });
  }

  const bootstrap = `127.0.0.1:${port}`;
  const client = (retries: number): Kafka =>
    new Kafka({ clientId: "somagent-dev-launcher", brokers: [bootstrap], logLevel: logLevel.NOTHING, connectionTimeout: 2_000, retry: { retries } });
  /** Starts the broker process and waits until it serves; returns it with the version it logged. */
  const launch = async (): Promise<{ started: Daemon; version: string }> => {
    // The log is appended across restarts: the version is read from this start's lines only.
    const logStart = await stat(logFile).then((s) => s.size, () => 0);
    const started = await startDaemon("kafka", "java", javaArgs("kafka.Kafka", [configFile]), { logFile });
    let startVersion: string | undefined;
    try {
      // No retries inside a probe: waitUntil is the retry loop and owns the deadline.
      const probeClient = client(0);
      await waitUntil(
        "kafka",
        async () => {
          startVersion ??= VERSION_LINE.exec((await readFile(logFile)).subarray(logStart).toString("utf8"))?.[1];
          if (startVersion === undefined) return false;
          return withAdmin(probeClient, async (admin) => (await admin.describeCluster()).brokers.some((b) => b.nodeId === NODE_ID));
        },
        // A JVM starved of CPU (2 cores under many other processes) took 47 s to log its first line; progress shows the wait.
        { timeoutMs: 180_000, logFile, daemon: started },
      );
      // createTopics answers false, not an error, when the topic exists.
      const { auditTopic, auditTopicPartitions, auditTopicReplicationFactor } = loadKafkaConfig();
      await withAdmin(client(5), (admin) =>
        admin.createTopics({
          waitForLeaders: true,
          topics: [{ topic: auditTopic, numPartitions: auditTopicPartitions, replicationFactor: auditTopicReplicationFactor }],
        }),
      );
    } catch (error) {
      await started.stop();
      throw error;
    }
    return { started, version: startVersion! };
  };
  // A clean shutdown (usually under a second) spares the next start a log recovery: SIGKILL only after 30 s.
  const stopGraceMs = 30_000;
  const first = await launch();
  let daemon = first.started;
  return {
    bootstrap,
    port,
    controllerPort,
    version: first.version,
    clusterId,
    get daemon() {
      return daemon;
    },
    stop: () => daemon.stop(stopGraceMs),
    async restart() {
      await daemon.stop(stopGraceMs);
      daemon = (await launch()).started;
    },
  };
}
