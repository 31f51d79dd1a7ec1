/**
 * A Topology describes the graph: sources (a topic and how to validate its
 * decoded records), processors (with their parents), sinks (a topic), and the
 * state stores each processor may use. It runs nowhere by itself: the Kafka
 * runner (streams/runtime/streams-app.ts) and the test driver
 * (streams/runtime/test-driver.ts) both execute it through a Task.
 */
import type { Processor } from './processor.ts';
import type { StateStore } from './stores.ts';

export interface SourceNode {
  kind: 'source';
  name: string;
  topic: string;
  /** Turns a decoded value into the typed record value; throws InputError to dead-letter it. */
  validate: (value: unknown) => unknown;
  /** Lateness tolerated behind stream time for this source, ms (default: the task's grace). */
  graceMs?: number;
  children: string[];
}

export interface ProcessorNode {
  kind: 'processor';
  name: string;
  supplier: () => Processor<any>;
  stores: string[];
  children: string[];
}

export interface SinkNode {
  kind: 'sink';
  name: string;
  topic: string;
}

export type TopologyNode = SourceNode | ProcessorNode | SinkNode;

export class Topology {
  readonly nodes = new Map<string, TopologyNode>();
  readonly stores = new Map<string, () => StateStore>();

  /**
   * `graceMs: Infinity` for a source whose records are never late by design
   * (e.g. the gates partials, which partitions running at different speeds
   * write far apart in time).
   */
  addSource(name: string, topic: string, validate: (value: unknown) => unknown = (v) => v, opts: { graceMs?: number } = {}): this {
    this.add({ kind: 'source', name, topic, validate, children: [], ...(opts.graceMs !== undefined ? { graceMs: opts.graceMs } : {}) });
    return this;
  }

  addProcessor(name: string, supplier: () => Processor<any>, ...parents: string[]): this {
    this.add({ kind: 'processor', name, supplier, stores: [], children: [] }, parents);
    return this;
  }

  addSink(name: string, topic: string, ...parents: string[]): this {
    this.add({ kind: 'sink', name, topic }, parents);
    return this;
  }

  /** Registers a store factory and connects it to processors. */
  addStateStore(name: string, factory: () => StateStore, ...processors: string[]): this {
    if (this.stores.has(name)) throw new Error(`state store ${name} is already defined`);
    if (name === 'stream-time') throw new Error('state store name stream-time is reserved for the runtime (each task checkpoints its stream time there); pick another name');
    this.stores.set(name, factory);
    for (const p of processors) {
      const node = this.nodes.get(p);
      if (node?.kind !== 'processor') throw new Error(`state store ${name}: ${p} is not a processor of this topology`);
      node.stores.push(name);
    }
    return this;
  }

  sources(): SourceNode[] {
    return [...this.nodes.values()].filter((n): n is SourceNode => n.kind === 'source');
  }

  sinks(): SinkNode[] {
    return [...this.nodes.values()].filter((n): n is SinkNode => n.kind === 'sink');
  }

  /** One line per node, like Kafka Streams' TopologyDescription. */
  describe(): string {
    return [...this.nodes.values()].map((n) => {
      if (n.kind === 'source') return `source ${n.name} (topic ${n.topic}) → ${n.children.join(', ')}`;
      if (n.kind === 'processor') return `processor ${n.name}${n.stores.length ? ` (stores ${n.stores.join(', ')})` : ''} → ${n.children.join(', ') || '∅'}`;
      return `sink ${n.name} (topic ${n.topic})`;
    }).join('\n');
  }

  private add(node: TopologyNode, parents: string[] = []): void {
    if (this.nodes.has(node.name)) throw new Error(`topology node ${node.name} is already defined`);
    if (node.kind !== 'source' && parents.length === 0) throw new Error(`${node.kind} ${node.name} needs at least one parent`);
    for (const p of parents) {
      const parent = this.nodes.get(p);
      if (!parent) throw new Error(`${node.name}: parent ${p} is not defined yet (add parents first)`);
      if (parent.kind === 'sink') throw new Error(`${node.name}: a sink (${p}) cannot have children`);
      parent.children.push(node.name);
    }
    this.nodes.set(node.name, node);
  }
}
