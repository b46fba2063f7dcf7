// Browser worker of benchmarks/embedding.py, on onnxruntime-web (wasm) as examples/web uses
// it: the same build, the same session options, the same shared modules from examples/node.
//
// Query: ?lm=NAME=URL (repeatable; the first is the cold-start model), &classifier=URL,
// &threads=N. On load the page opens the first language model and generates one token
// (prompt "And", seed 0): `window.benchReady.cold` is the time from navigation to that token
// (module and wasm fetched from 127.0.0.1 and compiled, model fetched, session created,
// prompt prefilled, one token sampled). `window.benchReady.run(request)` then opens the rest
// and times generations and a character stream with measure.mjs.

import * as ort from '../../examples/web/node_modules/onnxruntime-web/dist/ort.wasm.min.mjs';

import { manifestFromModelBytes } from '../../examples/node/manifest.mjs';
import { Model } from '../../examples/node/model.mjs';
import { measure, timeGeneration } from './measure.mjs';

const params = new URLSearchParams(location.search);
ort.env.wasm.numThreads = Number(params.get('threads') ?? 1);
ort.env.wasm.wasmPaths = new URL('../../examples/web/node_modules/onnxruntime-web/dist/', import.meta.url).href;
// examples/web/app.mjs's options: graph optimisation "extended"; threads are set on ort.env.
const SESSION_OPTIONS = { executionProviders: ['wasm'], graphOptimizationLevel: 'extended', logSeverityLevel: 3 };
const LMS = params.getAll('lm').map((spec) => spec.split(/=(.*)/s).slice(0, 2));

async function openModel(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  const bytes = new Uint8Array(await response.arrayBuffer());
  const manifest = manifestFromModelBytes(bytes, url);
  return new Model(ort, await ort.InferenceSession.create(bytes, SESSION_OPTIONS), manifest);
}

async function openRest(first) {
  const models = { lms: { [LMS[0][0]]: first } };
  for (const [name, url] of LMS.slice(1)) models.lms[name] = await openModel(url);
  if (params.get('classifier')) models.classifier = await openModel(params.get('classifier'));
  return models;
}

async function start() {
  const first = await openModel(LMS[0][1]);
  const token = await timeGeneration(first, { prompt: 'And', tokens: 1, temperature: 0.8, seed: '0' });
  const cold = performance.now() / 1000;
  return {
    cold,
    firstToken: token.ids[0],
    isolated: globalThis.crossOriginIsolated === true,
    threads: ort.env.wasm.numThreads,
    version: ort.env.versions.web,
    run: async (request) => measure(await openRest(first), request),
  };
}

start().then(
  (bench) => {
    window.benchReady = bench;
    document.getElementById('status').textContent = 'ready';
  },
  (error) => {
    document.getElementById('status').textContent = `error: ${error.message}`;
  },
);
