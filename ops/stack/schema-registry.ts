/**
 * Local Confluent-API-compatible schema registry: Apicurio Registry 3.0.9 (runs
 * on Java 17; 3.3.x needs Java 21) with **kafkasql** storage.
 *
 * Every change is journaled in a Kafka topic and replayed into an in-memory H2
 * database on start, like Confluent's `_schemas` topic. So the registry keeps
 * its schemas exactly as long as Kafka keeps its data: Kafka records carry
 * schema ids, and a registry that forgot them would hand the same ids to other
 * schemas after a restart. It therefore needs Kafka (KAFKA_BROKERS, else the
 * local one) and is started after it.
 *
 * The Confluent API lives under /apis/ccompat/v7, so SCHEMA_REGISTRY_URL carries
 * that prefix. See docs/schema-registry.md.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import kafkajs from 'kafkajs';
import { kafka } from './kafka.ts';
import { isAlive, portOpen, readPid, spawnDetached, stackPath, StackError, stopByPid, waitUntil } from './process.ts';
import type { LocalService } from './service.ts';

const { Kafka, logLevel, ConfigResourceTypes } = kafkajs;
const run = promisify(execFile);

export const APICURIO_VERSION = '3.0.9';
const ARTIFACT = `io.apicurio:apicurio-registry-app:${APICURIO_VERSION}:tar.gz:all`;
/**
 * Pinned to 2.10 on purpose: the 3.x maven-dependency-plugins (3.1.2, 3.6.1 and
 * 3.8.1 tried) read the artifact's pom first, whose parent
 * io.apicurio:apicurio-registry:3.0.9 is not on Maven Central (404), and fail.
 * 2.10 resolves just the file.
 */
const DEPENDENCY_PLUGIN = 'org.apache.maven.plugins:maven-dependency-plugin:2.10';

const NAME = 'schema-registry';
const PORT = Number(process.env.SEP_SCHEMA_REGISTRY_PORT ?? 18081);
const LOCAL_URL = `http://127.0.0.1:${PORT}/apis/ccompat/v7`;
const READY_TIMEOUT_MS = 60_000;

/** The journal (the data), plus the two topics kafkasql also creates: snapshot markers and change events. */
export const REGISTRY_TOPICS = {
  journal: '_sep-registry-journal',
  snapshots: '_sep-registry-snapshots',
  events: '_sep-registry-events',
} as const;

/**
 * Kafka-side settings the journal must have. Apicurio 3 replays the whole
 * journal on start and needs `delete` with infinite retention (not compaction,
 * which was the 2.x advice). 3.0.9 creates the topics without these, so the
 * broker default (7 days) would silently drop schemas; `start()` passes them
 * as topic properties and checks the journal topic.
 */
const JOURNAL_CONFIG = { 'cleanup.policy': 'delete', 'retention.ms': '-1', 'retention.bytes': '-1' } as const;

const JVM_FLAGS = [
  '-Xms64m', '-Xmx512m',
  // C1 only: ~200 MB RSS instead of ~250 MB and a faster start; a local registry never needs C2.
  '-XX:TieredStopAtLevel=1',
  '-Djava.awt.headless=true',
];

const APT_FIX = 'sudo apt-get update && sudo apt-get install -y openjdk-17-jre-headless maven (or set SCHEMA_REGISTRY_URL to a running Confluent-compatible registry)';

const appDir = (): string => stackPath(NAME, 'app');
const runnerJar = (): string => path.join(appDir(), `apicurio-registry-app-${APICURIO_VERSION}-runner.jar`);
const markerFile = (): string => stackPath(NAME, 'installed');

/** Kafka the registry journals into: the operator's, else the local one. */
function bootstrapServers(): string {
  return process.env.KAFKA_BROKERS || kafka.localUrl;
}

/** Everything is a -D system property, which outranks application.properties and APICURIO_* / QUARKUS_* env variables. */
function systemProperties(bootstrap: string): string[] {
  const props: Record<string, string> = {
    'quarkus.http.host': '127.0.0.1',
    'quarkus.http.port': String(PORT),
    'apicurio.storage.kind': 'kafkasql',
    'apicurio.kafkasql.bootstrap.servers': bootstrap,
    'apicurio.kafkasql.topic': REGISTRY_TOPICS.journal,
    'apicurio.kafkasql.snapshots.topic': REGISTRY_TOPICS.snapshots,
    'apicurio.events.kafka.topic': REGISTRY_TOPICS.events,
    // auto-create is on by default and must not be set: every `apicurio.kafkasql.topic.*` key
    // (prefix stripped) becomes a topic config, and Kafka refuses `auto-create`. These are the topic configs:
    ...Object.fromEntries(Object.entries(JOURNAL_CONFIG).map(([k, v]) => [`apicurio.kafkasql.topic.${k}`, v])),
    // On start it polls the snapshots topic once for this long (5 s by default) before
    // replaying the journal. We never take snapshots (3.0.9 only does on an admin call), and
    // a missed snapshot only means the full journal is replayed, so 0.5 s is safe: start ~4 s instead of ~10 s.
    'apicurio.kafkasql.consumer.poll.timeout': '500',
    // (The journal consumer's group is `apicurio-<random uuid>` on every start, and must stay
    // so: with a fixed group it would resume at committed offsets and skip the replay.)
    'apicurio.storage.snapshot.location': stackPath(NAME, 'snapshots'),
    // Confluent gives the same id to the same schema however it is formatted; Apicurio only with this.
    'apicurio.ccompat.use-canonical-hash': 'true',
    // Ids are content ids (Confluent-like: one id per distinct schema, shared across subjects).
    'apicurio.ccompat.legacy-id-mode.enabled': 'false',
    // The in-memory H2 replica does not need 20 pooled connections.
    'apicurio.datasource.jdbc.initial-size': '2',
    'apicurio.datasource.jdbc.min-size': '2',
    'apicurio.datasource.jdbc.max-size': '20',
    'quarkus.http.access-log.enabled': 'false',
    'quarkus.log.console.format': '%d{yyyy-MM-dd HH:mm:ss} %p [%c{1}] (%t) %m%n',
  };
  return Object.entries(props).map(([k, v]) => `-D${k}=${v}`);
}

function checkTool(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new StackError(`${cmd} is not installed or does not run (\`${cmd} ${args.join(' ')}\` failed)`, APT_FIX);
  return `${r.stdout}${r.stderr}`;
}

/** Apicurio 3.0.x runs on Java 17 (3.3.x needs Java 21). */
function checkJava(): void {
  const out = checkTool('java', ['-version']); // e.g. `openjdk version "17.0.15" 2025-04-15`
  const m = /version "(\d+)(?:\.(\d+))?/.exec(out);
  const major = m ? (m[1] === '1' ? Number(m[2]) : Number(m[1])) : undefined;
  if (major !== undefined && major < 17) throw new StackError(`Apicurio Registry ${APICURIO_VERSION} needs Java >= 17, \`java -version\` says ${major}`, APT_FIX);
}

function admin(bootstrap: string) {
  return new Kafka({
    clientId: 'sep-stack-registry', brokers: bootstrap.split(','), logLevel: logLevel.NOTHING,
    connectionTimeout: 2000, requestTimeout: 5000, retry: { retries: 1 },
  }).admin();
}

/**
 * What is wrong with the journal topic, if anything: it must have one partition
 * (the journal is ordered) and keep everything. `undefined` when it does not exist yet.
 */
async function journalProblems(bootstrap: string): Promise<string[] | undefined> {
  const a = admin(bootstrap);
  await a.connect();
  try {
    const topic = REGISTRY_TOPICS.journal;
    if (!(await a.listTopics()).includes(topic)) return undefined;
    const [meta] = (await a.fetchTopicMetadata({ topics: [topic] })).topics;
    const problems: string[] = [];
    if (meta && meta.partitions.length !== 1) problems.push(`${meta.partitions.length} partitions (must be 1)`);
    const { resources } = await a.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: Object.keys(JOURNAL_CONFIG) }],
    });
    for (const e of resources[0]?.configEntries ?? []) {
      const want = JOURNAL_CONFIG[e.configName as keyof typeof JOURNAL_CONFIG];
      if (want !== undefined && e.configValue !== want) problems.push(`${e.configName}=${e.configValue} (must be ${want})`);
    }
    return problems;
  } finally {
    await a.disconnect().catch(() => undefined);
  }
}

function journalError(bootstrap: string, problems: string[]): StackError {
  const set = Object.entries(JOURNAL_CONFIG).map(([k, v]) => `${k}=${v}`).join(',');
  return new StackError(
    `the registry journal topic ${REGISTRY_TOPICS.journal} on ${bootstrap} would lose schemas: ${problems.join(', ')}`,
    `set ${set} on it (e.g. \`java -cp '${path.join(stackPath('kafka', 'libs'), '*')}' kafka.admin.ConfigCommand --bootstrap-server ${bootstrap} --alter --entity-type topics --entity-name ${REGISTRY_TOPICS.journal} --add-config ${set}\`); a wrong partition count needs the topic recreated, which loses every schema id`,
  );
}

export const schemaRegistry: LocalService = {
  name: NAME,
  envVar: 'SCHEMA_REGISTRY_URL',
  localUrl: LOCAL_URL,

  async install(log) {
    checkJava();
    checkTool('mvn', ['-v']);
    if (existsSync(runnerJar()) && existsSync(markerFile()) && readFileSync(markerFile(), 'utf8').trim() === ARTIFACT) return;

    log(`resolving Apicurio Registry ${APICURIO_VERSION} (${ARTIFACT}, ~109 MB) from Maven Central (once)`);
    const tmp = `${appDir()}.tmp`;
    // Without a pom the plugin writes "already unpacked" markers under a literal
    // `${project.basedir}/target` in its working directory, and would skip the next
    // unpack; so it runs in a scratch directory that is dropped afterwards.
    const work = `${appDir()}.mvn`;
    for (const d of [tmp, work]) rmSync(d, { recursive: true, force: true });
    mkdirSync(work, { recursive: true });
    try {
      await run('mvn', [
        '-q', '-B', `${DEPENDENCY_PLUGIN}:unpack`, `-Dartifact=${ARTIFACT}`, `-DoutputDirectory=${tmp}`,
      ], { cwd: work, maxBuffer: 64 * 1024 * 1024, timeout: 900_000 });
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      const tail = `${e.stdout ?? ''}\n${e.stderr ?? ''}`.trim().split('\n').slice(-20).join('\n') || e.message;
      throw new StackError(`mvn could not resolve ${ARTIFACT}:\n${tail}`, 'check access to https://repo1.maven.org, then rerun `npm run stack:up`; or set SCHEMA_REGISTRY_URL to a running registry');
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
    if (!existsSync(path.join(tmp, path.basename(runnerJar())))) {
      throw new StackError(`${ARTIFACT} unpacked without ${path.basename(runnerJar())}`, `remove ${tmp} and rerun \`npm run stack:up\``);
    }
    rmSync(appDir(), { recursive: true, force: true }); // no jars of another version next to the runner
    renameSync(tmp, appDir());
    writeFileSync(markerFile(), `${ARTIFACT}\n`);
    log(`installed in ${appDir()}`);
  },

  async start(log) {
    const running = readPid(NAME);
    if (running !== undefined && isAlive(running) && (await schemaRegistry.healthy(LOCAL_URL))) {
      log(`already running (pid ${running}) at ${LOCAL_URL}`);
      return;
    }
    if (await portOpen(PORT)) {
      throw new StackError(`port ${PORT} (schema registry) is already in use`, `stop the process listening on ${PORT} (\`ss -ltnp 'sport = :${PORT}'\`), or set SEP_SCHEMA_REGISTRY_PORT to a free port, or set SCHEMA_REGISTRY_URL to use that registry instead`);
    }
    if (!existsSync(runnerJar())) {
      throw new StackError(`schema registry is not installed (${runnerJar()} missing)`, 'run `npm run stack:up` (it installs before starting)');
    }
    const bootstrap = bootstrapServers();
    if (!(await kafka.healthy(bootstrap))) {
      throw new StackError(`the schema registry stores its schemas in Kafka, and Kafka at ${bootstrap} does not answer`, 'start Kafka first (`npm run stack:up` starts it before the registry), or set KAFKA_BROKERS to a running Kafka');
    }
    const before = await journalProblems(bootstrap);
    if (before?.length) throw journalError(bootstrap, before);

    const pid = spawnDetached(NAME, 'java', [...JVM_FLAGS, ...systemProperties(bootstrap), '-jar', runnerJar()], { cwd: appDir() });
    log(`started pid ${pid}, journal ${REGISTRY_TOPICS.journal} on ${bootstrap}${before ? '' : ' (new topic)'}, waiting for ${LOCAL_URL}/subjects`);
    await waitUntil(NAME, () => schemaRegistry.healthy(LOCAL_URL), READY_TIMEOUT_MS, pid);

    const after = await journalProblems(bootstrap);
    if (after === undefined || after.length) {
      await stopByPid(NAME);
      throw journalError(bootstrap, after ?? ['the topic was not created']);
    }
  },

  async healthy(url) {
    try {
      const res = await fetch(`${url.replace(/\/+$/, '')}/subjects`, {
        headers: { Accept: 'application/vnd.schemaregistry.v1+json, application/json' },
        signal: AbortSignal.timeout(2_000),
      });
      if (res.status !== 200) return false;
      return Array.isArray(await res.json());
    } catch {
      return false;
    }
  },
};
