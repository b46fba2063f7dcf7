// Opening a model file in Node.js: its bytes, its manifest (from the file's metadata_props,
// else from `<model>.manifest.json` beside it), and an onnxruntime-node session.

import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';

import { manifestFromModelBytes, parseManifest } from './manifest.mjs';
import { Model, SESSION_OPTIONS } from './model.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const MODELS = path.resolve(HERE, '..', '..', 'models');
export const DEFAULT_LM = path.join(MODELS, 'kjv-char-lstm.onnx');
export const DEFAULT_CLASSIFIER = path.join(MODELS, 'fortune-langid.onnx');

/** `models/x.onnx` → `models/x.manifest.json`. */
export function manifestPathBeside(modelPath) {
  return modelPath.replace(/\.onnx$/i, '') + '.manifest.json';
}

/** The model's manifest: its own metadata first, then a JSON copy beside it. */
export function readManifest(modelPath, bytes) {
  const inside = manifestFromModelBytes(bytes, modelPath);
  if (inside) return inside;
  const beside = manifestPathBeside(modelPath);
  if (existsSync(beside)) return parseManifest(readFileSync(beside, 'utf-8'), beside);
  throw new Error(
    `${modelPath} is an ONNX model but not an rnnedge model (no rnnedge.manifest metadata ` +
      `and no ${path.basename(beside)} beside it)`,
  );
}

/** Open an rnnedge model file; throws an Error with a one-line reason. */
export async function loadModel(modelPath) {
  if (!existsSync(modelPath)) throw new Error(`model file ${modelPath} does not exist; check the path`);
  const bytes = readFileSync(modelPath);
  const manifest = readManifest(modelPath, bytes);
  let session;
  try {
    session = await ort.InferenceSession.create(bytes, SESSION_OPTIONS);
  } catch (error) {
    throw new Error(`${modelPath} is not a loadable ONNX model (${String(error.message).split('\n')[0]})`);
  }
  const missing = manifest.inputs.map((t) => t.name).filter((n) => !session.inputNames.includes(n));
  if (missing.length) throw new Error(`${modelPath}: manifest names inputs the graph lacks (${missing.join(', ')})`);
  return new Model(ort, session, manifest);
}

/** Run `main`, turning any Error into one line on stderr and exit code 1; a closed pipe
 * (e.g. `| head`) ends quietly. */
export function runCli(main) {
  process.stdout.on('error', (error) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
  main().catch((error) => {
    process.stderr.write(`error: ${error.message}\n`);
    process.exit(1);
  });
}
