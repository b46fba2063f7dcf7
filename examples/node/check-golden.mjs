#!/usr/bin/env node
// Check this client against a model's golden vectors (models/<name>.golden.json, written by
// rnnedge's export/golden.py): token ids, logits and state after the prompt, greedy and
// seeded continuations (text must be equal), classifier probabilities and per-step ones.
//
//   node check-golden.mjs GOLDEN.json [MODEL.onnx]     (MODEL defaults to the one beside it)
//
// Prints one JSON report on stdout ({model, checks: [{name, passed, detail}]}); exit code 1
// if any check fails.

import { readFileSync } from 'node:fs';
import path from 'node:path';

import { loadModel, runCli } from './load.mjs';
import { classifyInput, generateIds, streamInputs, tokenSteps } from './model.mjs';

/** Largest |a - b| over two equal-length sequences (Infinity if the lengths differ). */
function maxAbsDiff(a, b) {
  if (a.length !== b.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < a.length; i += 1) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

function closeCheck(name, actual, expected, tolerance) {
  const diff = maxAbsDiff(actual, expected);
  return { name, passed: diff <= tolerance, detail: `max |diff| ${diff.toExponential(2)} (tolerance ${tolerance})` };
}

function equalCheck(name, actual, expected) {
  const passed = JSON.stringify(actual) === JSON.stringify(expected);
  return { name, passed, detail: passed ? 'equal' : `got ${JSON.stringify(actual).slice(0, 200)}` };
}

async function continuation(model, ids, expected) {
  const { temperature, top_k: topK, top_p: topP } = expected.sampling;
  const options = { maxNewTokens: expected.max_new_tokens, sampling: { temperature, topK, topP }, seed: expected.seed };
  const tokens = [];
  for await (const token of generateIds(model, ids, options)) tokens.push(token);
  return tokens;
}

async function checkLanguageModel(model, golden) {
  const checks = [];
  const ids = model.tokenizer.encode(golden.prompt);
  checks.push(equalCheck('prompt ids', ids, golden.prompt_ids));
  const { logits, state, width } = await model.runTokens(ids, model.initialState(1));
  checks.push(closeCheck('logits after the prompt', logits.subarray(logits.length - width), golden.logits, golden.tolerance.logits));
  for (const spec of model.states) {
    const expected = golden.state[spec.output];
    checks.push(closeCheck(`${spec.output} after the prompt`, state[spec.input].data, expected.values, golden.tolerance.state));
  }
  for (const kind of ['greedy', 'sampled']) {
    const tokens = await continuation(model, ids, golden[kind]);
    checks.push(equalCheck(`${kind} ids`, tokens, golden[kind].ids));
    checks.push(equalCheck(`${kind} text`, model.tokenizer.decode(tokens), golden[kind].text));
  }
  return checks;
}

/** The graph input of a golden classifier entry, and its per-step inputs. */
function entryInputs(model, entry) {
  if (entry.ids) return [model.tokensTensor(entry.ids), tokenSteps(model, entry.ids)];
  const [steps, dim] = entry.features.shape;
  const values = Float32Array.from(entry.features.values);
  const whole = new model.ort.Tensor('float32', values, [1, steps, dim]);
  const perStep = Array.from({ length: steps }, (_, t) => new model.ort.Tensor('float32', values.slice(t * dim, (t + 1) * dim), [1, 1, dim]));
  return [whole, perStep];
}

async function checkClassifier(model, golden) {
  const checks = [equalCheck('labels', model.manifest.labels, golden.labels)];
  const tolerance = golden.tolerance.probabilities;
  for (const [index, entry] of golden.inputs.entries()) {
    const name = `input ${index}`;
    if (entry.input !== null && model.tokenizer) {
      const limit = model.manifest.preprocessing?.max_len || Infinity;
      checks.push(equalCheck(`${name} ids`, model.tokenizer.encode(entry.input).slice(0, limit), entry.ids));
    }
    const [whole, perStep] = entryInputs(model, entry);
    const probs = await classifyInput(model, whole);
    checks.push(closeCheck(`${name} probabilities`, probs, entry.probabilities.flat(), tolerance));
    const best = probs.indexOf(Math.max(...probs));
    checks.push(equalCheck(`${name} label`, model.manifest.labels[best], entry.label));
    if (entry.steps) {
      const steps = [];
      for await (const step of streamInputs(model, perStep)) steps.push(...step);
      checks.push(closeCheck(`${name} per-step probabilities`, steps, entry.steps.flat(), tolerance));
    }
  }
  return checks;
}

async function main() {
  const [goldenPath, modelArg] = process.argv.slice(2);
  if (!goldenPath) throw new Error('usage: node check-golden.mjs GOLDEN.json [MODEL.onnx]');
  const golden = JSON.parse(readFileSync(goldenPath, 'utf-8'));
  const model = await loadModel(modelArg ?? path.join(path.dirname(goldenPath), golden.model));
  const checks = golden.task === 'language-model' ? await checkLanguageModel(model, golden) : await checkClassifier(model, golden);
  process.stdout.write(`${JSON.stringify({ model: golden.model, checks }, null, 1)}\n`);
  if (checks.some((check) => !check.passed)) process.exitCode = 1;
}

runCli(main);
