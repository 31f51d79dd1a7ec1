/**
 * The contract every local service of the stack fulfils. The stack command
 * (ops/stack/cli.ts) walks the services in order: a service whose env
 * variable is set is taken as given; otherwise it is installed (cached under
 * .stack/), started detached, and health-checked.
 */
export type ServiceName = 'kafka' | 'schema-registry' | 'timescale' | 'redis';

export interface LocalService {
  readonly name: ServiceName;
  /** Environment variable that points at an external instance (e.g. KAFKA_BROKERS). */
  readonly envVar: string;
  /** The value the env variable takes for the local instance (e.g. 127.0.0.1:19092). */
  readonly localUrl: string;
  /** Pid-file names of the processes it runs, in stop order (default: just `name`). */
  readonly processes?: readonly string[];
  /** Checks prerequisites (java, mvn, go, ports) and downloads/builds into the cache; idempotent. Throws StackError with a fix. */
  install(log: (line: string) => void): Promise<void>;
  /** Starts the detached process (pid file via spawnDetached) and resolves once healthy. */
  start(log: (line: string) => void): Promise<void>;
  /** True when the instance at `url` answers a real protocol request (not just an open port). */
  healthy(url: string): Promise<boolean>;
}
