// Timings shared by the Node.js and browser runs of benchmarks/embedding.py: the same code
// on onnxruntime-node and onnxruntime-web, over the example clients' own modules
// (examples/node/model.mjs), so what is timed is what an app built on them runs.

import { encodePrompt, generateIds, samplingSettings, streamInputs } from '../../examples/node/model.mjs';

const seconds = () => performance.now() / 1000;

/** One generation as generate.mjs runs it: prefill, then `tokens` sampled tokens, one call
 * each. Returns its wall seconds and the token ids. */
export async function timeGeneration(model, { prompt, tokens, temperature, seed }) {
  const sampling = samplingSettings(model.manifest, { temperature });
  const began = seconds();
  const ids = encodePrompt(model, prompt);
  const out = [];
  for await (const token of generateIds(model, ids, { maxNewTokens: tokens, sampling, seed: BigInt(seed) })) {
    out.push(token);
  }
  return { seconds: seconds() - began, ids: out };
}

/** A streaming classifier fed one character per call, as the page's language box and
 * `rnnedge infer classify --stream` do: tokenize, step carrying the state, softmax. */
export async function timeStream(model, text) {
  function* steps() {
    for (const ch of Array.from(text)) yield model.tokensTensor(model.tokenizer.encode(ch));
  }
  const began = seconds();
  let last = null;
  for await (const probs of streamInputs(model, steps())) last = probs;
  return { seconds: seconds() - began, last };
}

/** Each language model's generations and the classifier's character streams, each after
 * one untimed warm-up: {generate: {name: [s]}, text: {name: decoded}, stream: [s], last}. */
export async function measure(models, request) {
  const result = { generate: {}, text: {} };
  for (const [name, model] of Object.entries(models.lms)) {
    await timeGeneration(model, { ...request.generate, tokens: 50 });
    const runs = [];
    for (let r = 0; r < request.repeats; r += 1) runs.push(await timeGeneration(model, request.generate));
    result.generate[name] = runs.map((run) => run.seconds);
    result.text[name] = model.tokenizer.decode(runs[0].ids);
  }
  if (models.classifier) {
    await timeStream(models.classifier, request.stream.slice(0, 50));
    const runs = [];
    for (let r = 0; r < request.repeats; r += 1) runs.push(await timeStream(models.classifier, request.stream));
    result.stream = runs.map((run) => run.seconds);
    result.last = runs[0].last;
  }
  return result;
}
