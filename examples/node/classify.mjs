#!/usr/bin/env node
// Classify texts with an rnnedge text classifier (default: the language identifier), or
// watch the prediction evolve step by step with --stream.
//
//   node classify.mjs [MODEL] TEXT… [--top K] [--json]
//   node classify.mjs [MODEL] TEXT --stream [--json]
//
// MODEL (a path ending in .onnx) defaults to ../../models/fortune-langid.onnx. The manifest
// gives the tokenizer (with its unknown policy), preprocessing.max_len and the labels.
// --json prints what `rnnedge infer classify --json` prints: one object per input
// ({input, label, probability, top}) or per step ({step, probabilities}).

import { DEFAULT_CLASSIFIER, loadModel, runCli } from './load.mjs';
import { classifyInput, encodeText, streamInputs, tokenSteps } from './model.mjs';
import { parseArgs } from './args.mjs';

const SPEC = { top: 'int', stream: 'flag', json: 'flag' };

/** The k most likely labels: [{label, probability}], most likely first (lower index on ties). */
function ranked(labels, probs, k) {
  const order = Array.from(probs.keys()).sort((a, b) => probs[b] - probs[a] || a - b);
  return order.slice(0, k).map((c) => ({ label: labels[c], probability: probs[c] }));
}

async function classifyAll(model, texts, top, json) {
  for (const text of texts) {
    const best = ranked(model.manifest.labels, await classifyInput(model, model.tokensTensor(encodeText(model, text))), top);
    if (json) {
      const answer = { input: text, label: best[0].label, probability: best[0].probability, top: best };
      process.stdout.write(`${JSON.stringify(answer)}\n`);
    } else {
      const shown = best.map((b) => `${b.label} ${b.probability.toFixed(4)}`).join('  ');
      process.stdout.write(`${shown}\t${text}\n`);
    }
  }
}

async function streamOne(model, text, json) {
  const ids = encodeText(model, text);
  const labels = model.manifest.labels;
  let step = 0;
  for await (const probs of streamInputs(model, tokenSteps(model, ids))) {
    step += 1;
    if (json) {
      const byLabel = Object.fromEntries(labels.map((label, c) => [label, probs[c]]));
      process.stdout.write(`${JSON.stringify({ step, probabilities: byLabel })}\n`);
    } else {
      const piece = JSON.stringify(model.tokenizer.decode([ids[step - 1]]));
      const best = ranked(labels, probs, 3).map((b) => `${b.label} ${b.probability.toFixed(3)}`);
      process.stdout.write(`${String(step).padStart(4)} ${piece.padEnd(6)} ${best.join('  ')}\n`);
    }
  }
}

async function main() {
  const { options, positional } = parseArgs(process.argv.slice(2), SPEC);
  const modelPath = /\.onnx$/i.test(positional[0] ?? '') ? positional.shift() : DEFAULT_CLASSIFIER;
  if (positional.length === 0) throw new Error('nothing to classify: give texts as arguments');
  const top = options.top ?? 1;
  if (top < 1) throw new Error(`--top must be at least 1, got ${top}`);
  const model = await loadModel(modelPath);
  if (model.manifest.task !== 'classification') {
    throw new Error(`this model is a ${model.manifest.task} model, not a classifier; use generate.mjs`);
  }
  if (!options.stream) return classifyAll(model, positional, top, options.json);
  if (positional.length !== 1) throw new Error(`--stream takes exactly one input, got ${positional.length}`);
  return streamOne(model, positional[0], options.json);
}

runCli(main);
