// The page: stream text from a language model and name the language of what you type, with
// onnxruntime-web (wasm). Model handling (manifest from the .onnx bytes, tokenizer, state,
// SplitMix64 and the specified sampling) is shared with the Node.js client in ../node/, so
// the same model, prompt and seed give the same text as `rnnedge infer generate`.
//
// Query parameters: ?lm=URL and ?classifier=URL add models to the menus (relative to this
// page); ?threads=N sets wasm threads (more than 1 needs a cross-origin isolated server).

import * as ort from './node_modules/onnxruntime-web/dist/ort.wasm.min.mjs';

import { manifestFromModelBytes, parseManifest } from '../node/manifest.mjs';
import { Model, classifyInput, encodePrompt, encodeText, generateIds, samplingSettings } from '../node/model.mjs';

const params = new URLSearchParams(location.search);
ort.env.wasm.numThreads = Number(params.get('threads') ?? 1);
ort.env.wasm.wasmPaths = new URL('./node_modules/onnxruntime-web/dist/', import.meta.url).href;

const MODELS = new URL('../../models/', import.meta.url);
const LANGUAGE_MODELS = [new URL('kjv-char-lstm.onnx', MODELS).href, ...params.getAll('lm').map(pageUrl)];
const CLASSIFIERS = [
  new URL('fortune-langid.onnx', MODELS).href,
  new URL('fortune-langid-int8.onnx', MODELS).href,
  ...params.getAll('classifier').map(pageUrl),
];
// As rnnedge's Python runtime: graph optimisation "extended"; threads are set on ort.env.
const SESSION_OPTIONS = { executionProviders: ['wasm'], graphOptimizationLevel: 'extended', logSeverityLevel: 3 };
const LANGUAGE_NAMES = {
  bg: 'Bulgarian', cs: 'Czech', de: 'German', en: 'English', eo: 'Esperanto', es: 'Spanish',
  ga: 'Irish', it: 'Italian', pl: 'Polish', pt: 'Portuguese', ru: 'Russian', zh: 'Chinese',
};
const $ = (id) => document.getElementById(id);

function pageUrl(relative) {
  return new URL(relative, location.href).href;
}

async function fetchBytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

/** The manifest inside the file, else `<model>.manifest.json` beside it. */
async function manifestOf(url, bytes) {
  const inside = manifestFromModelBytes(bytes, url);
  if (inside) return inside;
  const beside = url.replace(/\.onnx$/i, '.manifest.json');
  const response = await fetch(beside);
  if (!response.ok) throw new Error(`${url} is not an rnnedge model (no manifest inside or beside it)`);
  return parseManifest(await response.text(), beside);
}

const opened = new Map();
/** An rnnedge Model for a URL (each file opened once). */
export function openModel(url) {
  if (!opened.has(url)) {
    opened.set(url, (async () => {
      const bytes = await fetchBytes(url);
      const manifest = await manifestOf(url, bytes);
      return new Model(ort, await ort.InferenceSession.create(bytes, SESSION_OPTIONS), manifest);
    })());
  }
  return opened.get(url);
}

/** The continuation of `prompt` (not repeated), `onPiece` called with each token's text;
 * `shouldStop()` ends it early. Options as generate.mjs; a missing one takes the manifest's. */
export async function generateText(url, options, onPiece = () => {}, shouldStop = () => false) {
  const model = await openModel(url);
  const sampling = samplingSettings(model.manifest, options);
  const ids = encodePrompt(model, options.prompt ?? '', options.unknown);
  const seed = options.seed === undefined || options.seed === null || options.seed === '' ? null : BigInt(options.seed);
  let text = '';
  let count = 0;
  for await (const token of generateIds(model, ids, { maxNewTokens: options.maxNewTokens ?? 200, sampling, seed })) {
    const piece = model.tokenizer.vocab[token];
    text += piece;
    onPiece(piece);
    count += 1;
    if (count % 8 === 0) await new Promise((resolve) => setTimeout(resolve, 0)); // let the page paint
    if (shouldStop()) break;
  }
  return text;
}

/** Class probabilities of one text (its ids cut to max_len, one call). */
export async function classifyText(url, text) {
  const model = await openModel(url);
  return classifyInput(model, model.tokensTensor(encodeText(model, text)));
}

/** The live language box: as the text grows, only the new characters go through the model,
 * carrying the state (a streaming graph); an edit elsewhere starts again from the start. */
class LiveClassifier {
  constructor(model) {
    this.model = model;
    this.reset();
  }

  reset() {
    this.ids = [];
    this.state = this.model.initialState(1);
    this.probs = null;
  }

  async update(text) {
    const ids = text.trim() ? encodeText(this.model, text) : [];
    const extends_ = ids.length >= this.ids.length && this.ids.every((id, i) => ids[i] === id);
    if (!extends_ || this.model.states.length === 0) this.reset();
    const fresh = ids.slice(this.ids.length);
    if (fresh.length === 0) return ids.length ? this.probs : null;
    if (this.model.states.length === 0) return (this.probs = await classifyInput(this.model, this.model.tokensTensor(ids)));
    const { logits, state, width } = await this.model.runTokens(fresh, this.state);
    Object.assign(this, { ids, state });
    const row = logits.subarray(logits.length - width);
    const peak = Math.max(...row);
    const exps = Array.from(row, (v) => Math.exp(v - peak));
    const total = exps.reduce((a, b) => a + b, 0);
    return (this.probs = exps.map((e) => e / total));
  }
}

function drawBars(labels, probs) {
  const best = probs ? probs.indexOf(Math.max(...probs)) : -1;
  $('language-name').textContent = best < 0 ? '—' : `${LANGUAGE_NAMES[labels[best]] ?? labels[best]} (${labels[best]}) · ${(100 * probs[best]).toFixed(1)} %`;
  $('bars').replaceChildren(...labels.map((label, c) => {
    const p = probs ? probs[c] : 0;
    const bar = document.createElement('div');
    bar.className = c === best ? 'bar top' : 'bar';
    bar.dataset.label = label;
    bar.innerHTML = `<span></span><div class="track"><div class="fill"></div></div><span class="value"></span>`;
    bar.children[0].textContent = LANGUAGE_NAMES[label] ?? label;
    bar.querySelector('.fill').style.width = `${(100 * p).toFixed(1)}%`;
    bar.children[2].textContent = `${(100 * p).toFixed(1)}%`;
    return bar;
  }));
}

function fillMenu(select, urls) {
  select.replaceChildren(...urls.map((url) => new Option(decodeURIComponent(url.split('/').pop()), url)));
}

function readGenerateForm() {
  const number = (id) => ($(id).value.trim() === '' ? undefined : Number($(id).value));
  return {
    prompt: $('prompt').value,
    temperature: number('temperature'),
    topK: number('top-k'),
    topP: number('top-p'),
    maxNewTokens: number('max-new-tokens'),
    seed: $('seed').value.trim() || null,
  };
}

let stopRequested = false;
async function onGenerate() {
  const options = readGenerateForm();
  const output = $('output');
  output.replaceChildren(Object.assign(document.createElement('span'), { className: 'prompt', textContent: options.prompt }));
  const text = output.appendChild(document.createTextNode(''));
  $('generate').disabled = true;
  $('stop').disabled = false;
  stopRequested = false;
  $('gen-status').textContent = 'generating…';
  const began = performance.now();
  try {
    const onPiece = (piece) => {
      text.appendData(piece);
      output.scrollTop = output.scrollHeight; // follow the text as it streams
    };
    const continuation = await generateText($('lm-model').value, options, onPiece, () => stopRequested);
    const seconds = (performance.now() - began) / 1000;
    $('gen-status').textContent = `done: ${continuation.length} tokens in ${seconds.toFixed(2)} s (${(continuation.length / seconds).toFixed(0)} tokens/s incl. prefill)`;
  } catch (error) {
    $('gen-status').textContent = `error: ${error.message}`;
  } finally {
    $('generate').disabled = false;
    $('stop').disabled = true;
  }
}

let live = null;
let pending = Promise.resolve();
async function onLanguageInput() {
  // One update at a time, in typing order: each sees the state the previous one left.
  pending = pending.then(async () => {
    try {
      const probs = await live.update($('language-text').value);
      drawBars(live.model.manifest.labels, probs);
      $('clf-status').textContent = `${live.ids.length} characters read`;
    } catch (error) {
      $('clf-status').textContent = `error: ${error.message}`;
    }
  });
  await pending;
}

async function onClassifierChange() {
  live = new LiveClassifier(await openModel($('clf-model').value));
  drawBars(live.model.manifest.labels, null);
  await onLanguageInput();
}

async function main() {
  fillMenu($('lm-model'), LANGUAGE_MODELS);
  fillMenu($('clf-model'), CLASSIFIERS);
  $('generate').addEventListener('click', onGenerate);
  $('stop').addEventListener('click', () => { stopRequested = true; });
  $('language-text').addEventListener('input', onLanguageInput);
  $('clf-model').addEventListener('change', onClassifierChange);
  await Promise.all([openModel($('lm-model').value), onClassifierChange()]);
  $('engine').textContent = `onnxruntime-web ${ort.env.versions.web} (wasm, ${ort.env.wasm.numThreads} thread${ort.env.wasm.numThreads === 1 ? '' : 's'})`;
  $('generate').disabled = false;
  document.body.dataset.ready = 'true';
}

window.rnnedge = { openModel, generateText, classifyText, ready: main().catch((error) => {
  $('engine').textContent = `error: ${error.message}`;
  document.body.dataset.ready = 'error';
  throw error;
}) };
