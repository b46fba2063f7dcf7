#!/usr/bin/env node
// Node.js worker of benchmarks/embedding.py: opens the models with examples/node/load.mjs
// (onnxruntime-node with the client's session options), runs measure.mjs, prints JSON.
//
//   node node-bench.mjs '<request JSON>'
//   request: {lms: {name: path}, classifier: path | null, repeats, generate, stream}

import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { loadModel } from '../../examples/node/load.mjs';
import { measure } from './measure.mjs';

const request = JSON.parse(process.argv[2]);
const models = { lms: {} };
for (const [name, file] of Object.entries(request.lms)) models.lms[name] = await loadModel(file);
if (request.classifier) models.classifier = await loadModel(request.classifier);
const result = await measure(models, request);
const nodeDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'node');
const require = createRequire(path.join(nodeDir, 'package.json'));
result.versions = { node: process.versions.node, 'onnxruntime-node': require('onnxruntime-node/package.json').version };
process.stdout.write(`${JSON.stringify(result)}\n`);
