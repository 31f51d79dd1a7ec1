/**
 * Local Apache Kafka 3.9 in KRaft mode: one JVM that is both broker and
 * controller, on 127.0.0.1. There is no tarball download: the jars come from
 * Maven Central through `mvn dependency:copy-dependencies` into .stack/kafka/libs,
 * which also keeps them in ~/.m2 for the other JVM services of the stack.
 */
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import type { LocalService } from './service.ts';
import { isAlive, portOpen, readPid, spawnDetached, stackPath, StackError, waitUntil } from './process.ts';

/** Latest 3.9 patch on Maven Central; bumping it re-runs install (see the marker). */
export const KAFKA_VERSION = '3.9.2';
const SCALA = '2.13';
const SLF4J = '1.7.36'; // the slf4j line Kafka 3.9 itself is built against

const PORT = Number(process.env.SEP_KAFKA_PORT ?? 19092);
const CONTROLLER_PORT = PORT + 1; // 19093 by default; follows SEP_KAFKA_PORT so two stacks never collide
const HEAP = ['-Xms256m', '-Xmx1g'];
const APT_FIX = 'sudo apt-get update && sudo apt-get install -y openjdk-17-jre-headless maven (or set KAFKA_BROKERS to a running Kafka)';

const execFileAsync = promisify(execFile);

const dir = (): string => path.dirname(stackPath('kafka', '.keep'));
const libsDir = (): string => stackPath('kafka', 'libs');
const dataDir = (): string => stackPath('kafka', 'data');
const markerFile = (): string => stackPath('kafka', 'installed');
const log4jFile = (): string => stackPath('kafka', 'log4j.properties');
const toolsLog4jFile = (): string => stackPath('kafka', 'tools-log4j.properties');

/**
 * Classpath for Kafka's JVM tools from the cached jars (a Java wildcard: pass
 * it as one argument, unexpanded). For Kafka 3.9 the perf tools are
 * `org.apache.kafka.tools.ConsumerPerformance` (kafka-consumer-perf-test) and
 * `org.apache.kafka.tools.ProducerPerformance` (kafka-producer-perf-test); the
 * old `kafka.tools.*` Scala classes are gone. Run `kafka.install()` first.
 * Auto topic creation is off, so create the topic first (ProducerPerformance
 * otherwise blocks on metadata for max.block.ms).
 */
export function kafkaToolsClasspath(): string {
  return path.join(libsDir(), '*');
}

/**
 * JVM flags for those tools: log4j at WARN on stderr (like Kafka's own
 * tools-log4j.properties), so stdout carries only the tool's result lines.
 */
export function kafkaToolsJvmArgs(): string[] {
  writeLog4j(toolsLog4jFile(), 'System.err', []);
  return [`-Dlog4j.configuration=file:${toolsLog4jFile()}`];
}

export const kafka: LocalService = {
  name: 'kafka',
  envVar: 'KAFKA_BROKERS',
  localUrl: `127.0.0.1:${PORT}`,

  async install(log) {
    checkTool('java', ['-version']);
    checkTool('mvn', ['-v']);
    const marker = `kafka_${SCALA}:${KAFKA_VERSION}`;
    const brokerJar = path.join(libsDir(), `kafka_${SCALA}-${KAFKA_VERSION}.jar`);
    if (existsSync(brokerJar) && existsSync(markerFile()) && readFileSync(markerFile(), 'utf8').trim() === marker) return;

    log(`resolving Kafka ${KAFKA_VERSION} jars from Maven Central (once)`);
    rmSync(libsDir(), { recursive: true, force: true }); // no stale jars of another version on the classpath
    writeFileSync(path.join(dir(), 'pom.xml'), pom());
    try {
      await execFileAsync('mvn', [
        '-q', '-B', '-f', path.join(dir(), 'pom.xml'),
        // Pinned: Maven 3.8's default dependency plugin is years old and varies by install.
        'org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies',
        `-DoutputDirectory=${libsDir()}`, '-DincludeScope=runtime',
      ], { cwd: dir(), maxBuffer: 64 * 1024 * 1024, timeout: 900_000 });
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      const tail = `${e.stdout ?? ''}\n${e.stderr ?? ''}`.trim().split('\n').slice(-20).join('\n') || e.message;
      throw new StackError(`mvn could not resolve the Kafka jars:\n${tail}`, `check access to https://repo1.maven.org, then rerun; the pom is ${path.join(dir(), 'pom.xml')}`);
    }
    writeFileSync(markerFile(), `${marker}\n`);
  },

  async start(log) {
    // Our own broker from an earlier `up` that is still healthy: nothing to do.
    const pid0 = readPid('kafka');
    if (pid0 !== undefined && isAlive(pid0) && (await kafka.healthy(kafka.localUrl))) {
      log(`kafka already running (pid ${pid0})`);
      return;
    }
    for (const port of [PORT, CONTROLLER_PORT]) {
      if (await portOpen(port)) {
        throw new StackError(`port ${port} (kafka ${port === PORT ? 'broker' : 'controller'}) is already in use`,
          `stop the process on ${port}, or set KAFKA_BROKERS to use a running Kafka, or set SEP_KAFKA_PORT to another port (the controller takes port+1)`);
      }
    }
    const props = writeServerProperties();
    // A few INFO lines show the version and that start-up finished; the rest of INFO is noise.
    writeLog4j(log4jFile(), 'System.out', ['kafka.server.KafkaRaftServer', 'kafka.server.BrokerServer', 'org.apache.kafka.common.utils.AppInfoParser']);
    await formatStorage(props, log);

    const pid = spawnDetached('kafka', 'java', [
      ...HEAP, '-XX:+UseG1GC', '-XX:MaxGCPauseMillis=20', '-Djava.awt.headless=true',
      `-Dlog4j.configuration=file:${log4jFile()}`, '-cp', kafkaToolsClasspath(), 'kafka.Kafka', props,
    ], { cwd: dir() });
    await waitUntil('kafka', () => kafka.healthy(kafka.localUrl), 60_000, pid);
  },

  async healthy(url) {
    // A real Metadata round trip; kafkajs' own retries would turn a down broker into a long wait.
    const admin = new Kafka({
      clientId: 'sep-stack-health', brokers: url.split(','), logLevel: logLevel.NOTHING,
      connectionTimeout: 1000, requestTimeout: 2000, retry: { retries: 0 },
    }).admin();
    try {
      await admin.connect();
      const cluster = await admin.describeCluster();
      return cluster.brokers.length > 0;
    } catch {
      return false;
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  },
};

function checkTool(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  if (r.error || r.status !== 0) throw new StackError(`${cmd} is not installed or does not run (\`${cmd} ${args.join(' ')}\` failed)`, APT_FIX);
}

function pom(): string {
  const dep = (g: string, a: string, v: string, extra = '') =>
    `    <dependency><groupId>${g}</groupId><artifactId>${a}</artifactId><version>${v}</version>${extra}</dependency>`;
  // connect-runtime comes with kafka-tools only for the Connect plugin tool; it
  // drags in Jetty/Jersey and is not needed by the broker or the perf tools.
  const noConnect = '<exclusions><exclusion><groupId>org.apache.kafka</groupId><artifactId>connect-runtime</artifactId></exclusion></exclusions>';
  return `<?xml version="1.0" encoding="UTF-8"?>
<!-- generated by ops/stack/kafka.ts; only used to resolve jars -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.sep</groupId>
  <artifactId>sep-kafka-libs</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
${dep('org.apache.kafka', `kafka_${SCALA}`, KAFKA_VERSION)}
${dep('org.apache.kafka', 'kafka-tools', KAFKA_VERSION, noConnect)}
${dep('org.slf4j', 'slf4j-reload4j', SLF4J)}
  </dependencies>
</project>
`;
}

function writeServerProperties(): string {
  const file = stackPath('kafka', 'server.properties');
  const lines = [
    '# generated by ops/stack/kafka.ts on every start; edit the code, not this file',
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@127.0.0.1:${CONTROLLER_PORT}`,
    `listeners=PLAINTEXT://127.0.0.1:${PORT},CONTROLLER://127.0.0.1:${CONTROLLER_PORT}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${PORT}`,
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    `log.dirs=${dataDir()}`,
    'num.partitions=3',
    'auto.create.topics.enable=false',
    // Single node: internal topics must not ask for replicas that cannot exist.
    'offsets.topic.replication.factor=1',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'default.replication.factor=1',
    'min.insync.replicas=1',
    // Local runs join consumer groups often; the 3 s default only adds latency.
    'group.initial.rebalance.delay.ms=0',
    // Recorded days carry their original timestamps: time-based retention
    // (7 days by default, checked 30 s after start and every 5 min) deleted a
    // replayed day minutes after import, under the consumers' feet.
    'log.retention.ms=-1',
  ];
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

function writeLog4j(file: string, target: 'System.out' | 'System.err', infoLoggers: string[]): void {
  // Kafka 3.9 logs through slf4j -> reload4j, so this is log4j 1.x syntax. The
  // broker logs to stdout, which spawnDetached routes to .stack/logs/kafka.log.
  writeFileSync(file, [
    'log4j.rootLogger=WARN, out',
    'log4j.appender.out=org.apache.log4j.ConsoleAppender',
    `log4j.appender.out.Target=${target}`,
    'log4j.appender.out.layout=org.apache.log4j.PatternLayout',
    'log4j.appender.out.layout.ConversionPattern=[%d] %p %m (%c)%n',
    ...infoLoggers.map((l) => `log4j.logger.${l}=INFO`),
    '',
  ].join('\n'));
}

/** Formats the KRaft log dir once, with a cluster id kept beside it so restarts reuse the data. */
async function formatStorage(props: string, log: (line: string) => void): Promise<void> {
  if (existsSync(path.join(dataDir(), 'meta.properties'))) return;
  const idFile = stackPath('kafka', 'cluster-id');
  let clusterId = existsSync(idFile) ? readFileSync(idFile, 'utf8').trim() : '';
  if (!clusterId) {
    // Same shape as Uuid.randomUuid(): 16 bytes, url-safe base64 without padding;
    // a leading '-' would be read as a command-line flag, so avoid it.
    do clusterId = randomBytes(16).toString('base64url'); while (clusterId.startsWith('-'));
    writeFileSync(idFile, `${clusterId}\n`);
  }
  mkdirSync(dataDir(), { recursive: true });
  log(`formatting kafka storage (cluster id ${clusterId})`);
  try {
    await execFileAsync('java', [
      '-Xmx256m', ...kafkaToolsJvmArgs(), '-cp', kafkaToolsClasspath(),
      'kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', props,
    ], { cwd: dir(), timeout: 120_000 });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new StackError(`kafka-storage format failed:\n${`${e.stdout ?? ''}\n${e.stderr ?? ''}`.trim() || e.message}`,
      `remove ${dataDir()} and ${idFile}, then rerun (this deletes local Kafka data)`);
  }
}
