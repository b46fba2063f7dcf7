// An rnnedge model on any onnxruntime JavaScript binding (onnxruntime-node or -web): the
// session settings rnnedge's Python runtime uses, the state carried between calls, a
// language model's prefill/step/generate and a streaming classifier's steps.
//
// The contract (README "The ONNX contract"): `tokens` int64 [batch, time] (BigInt64Array),
// one `state_in.X` float32 per manifest state ([batch, ...] batch-first, filled with its
// initial_value), outputs `logits` [batch, time, V] and `state_out.X`, fed back to
// `state_in.X` on the next call. time = len(prompt) is the prefill, time = 1 a step.

import { checkSampling, sampleToken } from './sampling.mjs';
import { PortableRng } from './prng.mjs';
import { tokenizerFromManifest } from './tokenizer.mjs';

/** rnnedge/runtime/session.py's settings: one intra-op thread (a step is a few small
 * matrix-vector products; a second thread costs more in hand-off than it saves), no
 * spinning between the short calls, graph optimisation level "extended". */
export const SESSION_OPTIONS = {
  executionProviders: ['cpu'],
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  graphOptimizationLevel: 'extended',
  logSeverityLevel: 3,
  extra: { session: { intra_op: { allow_spinning: '0' } } },
};

export class Model {
  constructor(ort, session, manifest) {
    this.ort = ort;
    this.session = session;
    this.manifest = manifest;
    this.inputName = manifest.inputs[0].name; // "tokens" or "features"
    this.states = manifest.states ?? [];
    this.tokenizer = manifest.tokenizer?.vocab ? tokenizerFromManifest(manifest) : null;
  }

  /** Zero (initial_value) state for `batch` rows: {state_in.X: ort.Tensor}. */
  initialState(batch = 1) {
    const state = {};
    for (const spec of this.states) {
      const dims = spec.shape.map((d) => (typeof d === 'number' ? d : batch));
      const data = new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(spec.initial_value ?? 0);
      state[spec.input] = new this.ort.Tensor('float32', data, dims);
    }
    return state;
  }

  /** Token ids as the graph's int64 [1, T] input. */
  tokensTensor(ids) {
    return new this.ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, ids.length]);
  }

  /** One call: {logits: Float32Array [T * W] (or [W]), state: the next state, width: W}. */
  async run(input, state) {
    const out = await this.session.run({ [this.inputName]: input, ...state });
    const next = {};
    for (const spec of this.states) next[spec.input] = out[spec.output];
    const logits = out.logits;
    return { logits: logits.data, state: next, width: logits.dims[logits.dims.length - 1] };
  }

  /** One call over token ids [1, T]. */
  runTokens(ids, state) {
    return this.run(this.tokensTensor(ids), state);
  }
}

/** Token ids of a prompt; an empty one becomes "\n" when the vocabulary has it (the start
 * of a line, what the model saw at the start of most training windows). */
export function encodePrompt(model, prompt, unknown) {
  const tokenizer = unknown ? model.tokenizer.withPolicy(unknown) : model.tokenizer;
  const ids = tokenizer.encode(prompt);
  if (ids.length > 0) return ids;
  if (!model.tokenizer.index.has('\n')) {
    throw new Error('the prompt is empty (after dropping unknown characters); give --prompt some text');
  }
  return tokenizer.encode('\n');
}

/** The manifest's sampling defaults, each replaced where an option is given. */
export function samplingSettings(manifest, { temperature, topK, topP }) {
  const defaults = manifest.sampling ?? {};
  const settings = {
    temperature: temperature ?? defaults.temperature ?? 1.0,
    topK: topK ?? defaults.top_k ?? 0,
    topP: topP ?? defaults.top_p ?? 1.0,
  };
  checkSampling(settings);
  return settings;
}

/** Prefill `ids` in one call; then an async iterator of generated token ids, one model call
 * per token (none after the last). */
export async function* generateIds(model, ids, { maxNewTokens, sampling, seed }) {
  const rng = new PortableRng(seed);
  let { logits, state, width } = await model.runTokens(ids, model.initialState(1));
  let row = logits.subarray(logits.length - width);
  for (let produced = 1; produced <= maxNewTokens; produced += 1) {
    const token = sampleToken(row, sampling, rng);
    yield token;
    if (produced === maxNewTokens) return;
    ({ logits, state } = await model.runTokens([token], state));
    row = logits;
  }
}

/** Softmax in float64 of a float32 row. */
export function softmax(row) {
  let peak = -Infinity;
  for (const v of row) if (v > peak) peak = v;
  const exps = Array.from(row, (v) => Math.exp(v - peak));
  const total = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / total);
}

/** A text classifier's token ids: the tokenizer's, cut to preprocessing.max_len. */
export function encodeText(model, text) {
  if (!model.tokenizer) throw new Error('this model does not read text (no tokenizer in its manifest)');
  const limit = model.manifest.preprocessing?.max_len || Infinity;
  const ids = model.tokenizer.encode(text).slice(0, limit);
  if (ids.length === 0) throw new Error(`input ${JSON.stringify(text.slice(0, 40))} has no token this model knows`);
  return ids;
}

/** Class probabilities (float64 softmax) of one input ([1, T] ids or [1, T, D] features),
 * in one call. Step graphs give logits per step (the prediction after the last one is the
 * answer); whole-sequence graphs take `lengths` and give [1, C]. */
export async function classifyInput(model, input) {
  if (model.states.length > 0) {
    const { logits, width } = await model.run(input, model.initialState(1));
    return softmax(logits.subarray(logits.length - width));
  }
  const steps = BigInt(input.dims[1]);
  const lengths = new model.ort.Tensor('int64', BigInt64Array.of(steps), [1]);
  const out = await model.session.run({ [model.inputName]: input, lengths });
  return softmax(out.logits.data);
}

/** Probabilities after each step, one call per step (streaming graphs only); `steps` are
 * the per-step inputs ([1, 1] id or [1, 1, D] feature tensors). */
export async function* streamInputs(model, steps) {
  if (model.states.length === 0) {
    throw new Error('this model is bidirectional (or pools over the whole input) and cannot classify step by step');
  }
  let state = model.initialState(1);
  for (const input of steps) {
    const step = await model.run(input, state);
    state = step.state;
    yield softmax(step.logits);
  }
}

/** Per-step inputs of token ids: one [1, 1] tensor each. */
export function tokenSteps(model, ids) {
  return ids.map((id) => model.tokensTensor([id]));
}
