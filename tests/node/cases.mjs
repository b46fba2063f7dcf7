// Runs the Node client's sampling, exp64, PRNG and word splitting on cases from
// tests/test_node_client.py (JSON on stdin) and prints the answers as JSON, so the test can
// compare them with Python's bit for bit.

import { readFileSync } from 'node:fs';

import { PortableRng } from '../../examples/node/prng.mjs';
import { exp64, sampleToken } from '../../examples/node/sampling.mjs';
import { WordTokenizer } from '../../examples/node/tokenizer.mjs';

const request = JSON.parse(readFileSync(0, 'utf-8'));
const words = new WordTokenizer({ vocab: ['<pad>', '<unk>'] });
const answer = {
  exp: request.exp.map(exp64),
  uniforms: request.uniforms.map(({ seed, count }) => {
    const rng = new PortableRng(BigInt(seed));
    return Array.from({ length: count }, () => rng.random());
  }),
  tokens: request.cases.map(({ logits, temperature, top_k: topK, top_p: topP, seed, draws }) => {
    const rng = new PortableRng(BigInt(seed));
    const row = Float32Array.from(logits);
    return Array.from({ length: draws }, () => sampleToken(row, { temperature, topK, topP }, rng));
  }),
  split: request.split.map((text) => words.split(text)),
};
process.stdout.write(JSON.stringify(answer));
