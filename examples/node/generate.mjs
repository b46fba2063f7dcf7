#!/usr/bin/env node
// Stream text from an rnnedge language model, byte for byte what `rnnedge infer generate`
// prints for the same options: the prompt, the continuation, a newline.
//
//   node generate.mjs [MODEL] --prompt TEXT --max-new-tokens N
//                     [--temperature T --top-k K --top-p P --seed S --unknown error|skip]
//
// MODEL defaults to ../../models/kjv-char-lstm.onnx. Everything comes from the model file:
// vocabulary, unknown policy, state tensors and sampling defaults (an option not given takes
// the manifest's value). The prompt is fed in one call, then one call per new token.

import { DEFAULT_LM, loadModel, runCli } from './load.mjs';
import { encodePrompt, generateIds, samplingSettings } from './model.mjs';
import { parseArgs } from './args.mjs';

const SPEC = {
  prompt: 'string',
  'max-new-tokens': 'int',
  temperature: 'float',
  'top-k': 'int',
  'top-p': 'float',
  seed: 'bigint',
  unknown: 'string',
};

async function main() {
  const { options, positional } = parseArgs(process.argv.slice(2), SPEC);
  if (positional.length > 1) throw new Error(`one MODEL at most, got ${positional.length}: ${positional.join(' ')}`);
  const maxNewTokens = options['max-new-tokens'] ?? 200;
  if (maxNewTokens < 0) throw new Error(`--max-new-tokens must be >= 0, got ${maxNewTokens}`);
  const model = await loadModel(positional[0] ?? DEFAULT_LM);
  if (model.manifest.task !== 'language-model') {
    throw new Error(`this model is a ${model.manifest.task} model, not a language model; use classify.mjs`);
  }
  const sampling = samplingSettings(model.manifest, {
    temperature: options.temperature,
    topK: options['top-k'],
    topP: options['top-p'],
  });
  const prompt = options.prompt ?? '';
  const ids = encodePrompt(model, prompt, options.unknown);
  const tokens = generateIds(model, ids, { maxNewTokens, sampling, seed: options.seed });
  process.stdout.write(prompt);
  for await (const token of tokens) process.stdout.write(model.tokenizer.vocab[token]);
  process.stdout.write('\n');
}

runCli(main);
