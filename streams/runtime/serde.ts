/**
 * Avro with Confluent framing (magic byte 0, 4-byte big-endian schema id, Avro
 * binary). Schemas are registered once at start under `<topic>-value` with
 * BACKWARD compatibility through @kafkajs/confluent-schema-registry; encoding
 * and decoding then run locally on cached avsc types (no registry round trip
 * per record). A writer schema older than ours is read through an avsc
 * resolver, which is what BACKWARD compatibility promises to make possible.
 */
import avro from 'avsc';
import { SchemaRegistry, SchemaType, COMPATIBILITY } from '@kafkajs/confluent-schema-registry';
import { DecodeError, SepError, UnavailableError } from './errors.ts';
import { loadSchema, subjectOf, TOPICS, type TopicSpec } from './topics.ts';

const MAGIC = 0;

interface WriterEntry { reader: avro.Type; resolver: avro.Resolver | null }

export class AvroSerde {
  private readonly registry: SchemaRegistry;
  /** topic → [schema id, type] of the schema we write with. */
  private readonly writers = new Map<string, { id: number; type: avro.Type }>();
  /** `${topic}/${writerId}` → how to read it as our schema. */
  private readonly readers = new Map<string, WriterEntry>();

  constructor(readonly registryUrl: string) {
    this.registry = new SchemaRegistry({ host: registryUrl, retry: { retries: 2 } });
  }

  /** Registers every topic's schema (idempotent: an identical schema returns its id). */
  async registerAll(specs: readonly TopicSpec[] = Object.values(TOPICS)): Promise<Map<string, number>> {
    const ids = new Map<string, number>();
    for (const spec of specs) ids.set(spec.name, await this.register(spec));
    return ids;
  }

  /** Registers `schema` (default: the topic's .avsc) and writes with it from now on. */
  async register(spec: TopicSpec, schema: string = loadSchema(spec)): Promise<number> {
    let id: number;
    try {
      // Set the subject's level first: the client registers, then sets BACKWARD on a new
      // subject, so two processes registering it at once would see each other half-way.
      await this.setCompatibility(subjectOf(spec.name), 'BACKWARD');
      ({ id } = await this.registry.register({ type: SchemaType.AVRO, schema }, { subject: subjectOf(spec.name), compatibility: COMPATIBILITY.BACKWARD }));
    } catch (err) {
      const status = (err as { status?: number }).status;
      if (status === 409) {
        throw new SepError('SCHEMA_INCOMPATIBLE', `schemas/avro/${spec.schemaFile} is not BACKWARD compatible with the registered ${subjectOf(spec.name)}; add new fields with defaults instead of changing or removing fields, or bump the topic's .vN suffix`, { cause: err });
      }
      throw new UnavailableError('REGISTRY_UNAVAILABLE', `schema registry at ${this.registryUrl} refused ${subjectOf(spec.name)}: ${(err as Error).message}; check SCHEMA_REGISTRY_URL or run \`npm run stack:up\``, { cause: err });
    }
    this.writers.set(spec.name, { id, type: avro.Type.forSchema(JSON.parse(schema)) });
    return id;
  }

  private async setCompatibility(subject: string, level: 'BACKWARD'): Promise<void> {
    const url = `${this.registryUrl.replace(/\/$/, '')}/config/${encodeURIComponent(subject)}`;
    const call = async (init?: RequestInit) => {
      try {
        return await fetch(url, { ...init, headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' }, signal: AbortSignal.timeout(5000) });
      } catch (err) {
        throw new UnavailableError('REGISTRY_UNAVAILABLE', `schema registry at ${this.registryUrl} unreachable: ${(err as Error).message}; check SCHEMA_REGISTRY_URL or run \`npm run stack:up\``, { cause: err });
      }
    };
    for (let attempt = 1; ; attempt++) {
      const res = await call({ method: 'PUT', body: JSON.stringify({ compatibility: level }) });
      if (res.ok) return;
      // Apicurio answers 409 when another process creates the same rule at the same moment.
      const now = await call();
      if (now.ok && ((await now.json()) as { compatibilityLevel?: string }).compatibilityLevel === level) return;
      if (attempt >= 5) throw new UnavailableError('REGISTRY_UNAVAILABLE', `schema registry at ${this.registryUrl} refused to set ${level} on ${subject}: HTTP ${res.status} ${await res.text()}`);
      await new Promise((r) => setTimeout(r, 100 * attempt));
    }
  }

  encode(topic: string, value: unknown): Buffer {
    const writer = this.writers.get(topic);
    if (!writer) throw new SepError('USAGE', `no schema registered for ${topic}; call registerAll() at start`);
    const body = writer.type.toBuffer(value);
    const out = Buffer.allocUnsafe(5 + body.length);
    out.writeUInt8(MAGIC, 0);
    out.writeUInt32BE(writer.id, 1);
    body.copy(out, 5);
    return out;
  }

  /**
   * Decodes a framed value written for `topic`. Throws DecodeError with reason
   * `undecodable` (not framed, or bytes that are not the schema) or
   * `unknown_schema` (an id the registry does not know).
   */
  /**
   * Reads `topic` with `spec`'s schema without registering anything: for a
   * process that only consumes (the executor), or a topic under another
   * prefix. The writer's schema comes from the registry by the record's id.
   */
  readAs(topic: string, spec: TopicSpec): void {
    if (!this.writers.has(topic)) this.writers.set(topic, { id: -1, type: avro.Type.forSchema(JSON.parse(loadSchema(spec))) });
  }

  async decode<T>(topic: string, bytes: Buffer | null): Promise<T> {
    const id = schemaIdOf(bytes);
    const entry = this.readers.get(`${topic}/${id}`) ?? await this.loadReader(topic, id);
    return read<T>(entry, bytes!, id);
  }

  /**
   * `decode` without a promise when the writer schema is already known (the
   * hot path: one await per record costs more than the decoding); undefined
   * when it must be fetched first — then call `decode`.
   */
  decodeCached<T>(topic: string, bytes: Buffer | null): T | undefined {
    const id = schemaIdOf(bytes);
    const entry = this.readers.get(`${topic}/${id}`);
    return entry ? read<T>(entry, bytes!, id) : undefined;
  }

  private async loadReader(topic: string, id: number): Promise<WriterEntry> {
    const ours = this.writers.get(topic);
    if (!ours) throw new SepError('USAGE', `no schema registered for ${topic}; call registerAll() at start`);
    let entry: WriterEntry;
    if (id === ours.id) {
      entry = { reader: ours.type, resolver: null };
    } else {
      let writerSchema: unknown;
      writerSchema = await this.fetchSchema(id);
      if (writerSchema === undefined) throw new DecodeError('unknown_schema', `schema id ${id} is not in the registry at ${this.registryUrl}`);
      const writerType = avro.Type.forSchema(writerSchema as avro.Schema);
      try {
        entry = { reader: ours.type, resolver: ours.type.createResolver(writerType) };
      } catch (err) {
        throw new DecodeError('undecodable', `schema id ${id} cannot be read as ${topic}'s schema: ${(err as Error).message}`, { cause: err });
      }
    }
    this.readers.set(`${topic}/${id}`, entry);
    return entry;
  }

  /** The schema with that id; undefined when the registry does not know it. A registry outage is retriable, not a bad record. */
  private async fetchSchema(id: number): Promise<unknown> {
    let res: Response;
    try {
      res = await fetch(`${this.registryUrl.replace(/\/$/, '')}/schemas/ids/${id}`, { signal: AbortSignal.timeout(5000) });
    } catch (err) {
      throw new UnavailableError('REGISTRY_UNAVAILABLE', `schema registry at ${this.registryUrl} unreachable: ${(err as Error).message}`, { cause: err });
    }
    if (res.status === 404) return undefined;
    if (!res.ok) throw new UnavailableError('REGISTRY_UNAVAILABLE', `schema registry answered ${res.status} for id ${id}`);
    const body = (await res.json()) as { schema: string };
    return JSON.parse(body.schema);
  }
}

function schemaIdOf(bytes: Buffer | null): number {
  if (!bytes || bytes.length < 5 || bytes.readUInt8(0) !== MAGIC) {
    throw new DecodeError('undecodable', `value is not Confluent-framed Avro (${bytes ? `${bytes.length} bytes, first byte ${bytes[0]}` : 'null'})`);
  }
  return bytes.readUInt32BE(1);
}

function read<T>(entry: WriterEntry, bytes: Buffer, id: number): T {
  try {
    const body = bytes.subarray(5);
    return (entry.resolver ? entry.reader.fromBuffer(body, entry.resolver) : entry.reader.fromBuffer(body)) as T;
  } catch (err) {
    throw new DecodeError('undecodable', `bytes do not decode as schema id ${id}: ${(err as Error).message}`, { cause: err });
  }
}
