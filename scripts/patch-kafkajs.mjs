#!/usr/bin/env node
// postinstall: makes kafkajs 2.2.4's producer group messages by partition in
// O(n). Its groupMessagesPerPartition rebuilds each partition's array per
// message ([...current, message]), O(n²) per send: 21 ms of a 5,000-message
// transaction flush here, ~4 µs per output record. The fix is upstream's open
// PR tulios/kafkajs#1576; this applies it (like patch-package) and is a no-op
// once applied. An unknown kafkajs version is left alone, with a warning.
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
let file;
try {
  file = require.resolve('kafkajs/src/producer/groupMessagesPerPartition.js');
} catch {
  process.exit(0); // kafkajs not installed (yet): nothing to patch
}
const ORIGINAL = `  return messages.reduce((result, message) => {
    const partition = partitioner({ topic, partitionMetadata, message })
    const current = result[partition] || []
    return Object.assign(result, { [partition]: [...current, message] })
  }, {})`;
const PATCHED = `  // sep: O(n) grouping (tulios/kafkajs#1576); see scripts/patch-kafkajs.mjs
  const result = {}
  for (const message of messages) {
    const partition = partitioner({ topic, partitionMetadata, message })
    ;(result[partition] || (result[partition] = [])).push(message)
  }
  return result`;
const text = readFileSync(file, 'utf8');
if (text.includes(PATCHED)) process.exit(0);
if (!text.includes(ORIGINAL)) {
  console.warn(`patch-kafkajs: ${file} is not the kafkajs 2.2.4 text this patch expects; left unpatched (producer sends stay O(n²) in messages per partition)`);
  process.exit(0);
}
writeFileSync(file, text.replace(ORIGINAL, PATCHED));
console.log('patch-kafkajs: producer message grouping is O(n) now (tulios/kafkajs#1576)');
