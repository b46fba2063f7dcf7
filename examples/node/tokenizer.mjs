// Text to token ids as the manifest's tokenizer says (rnnedge/tokenizer.py), for Node.js
// and browsers.
//
// char: one token per Unicode code point (Array.from splits by code point, as Python's str
//   does; no normalisation, so "é" precomposed and "e" + U+0301 differ). A code point not in
//   the vocabulary follows the unknown policy: "error" (refuse, naming it and its position),
//   "skip" (drop it) or "replace" (the vocabulary's unk_token).
// word: lower-cased (if the manifest says so), then the words and punctuation marks of
//   Python's `re.findall(r"[\w']+|[^\w\s]", text)`; unknown words are id 1 (<unk>).
//   Python's \w is a letter (L*), a number (N*) or "_"; its \s is str.isspace(), which also
//   counts U+001C-U+001F and U+0085 and not U+FEFF, unlike JavaScript's \s, so both classes
//   are spelled out below. What can still differ: characters assigned in a newer Unicode
//   version than Python's unicodedata (e.g. Python 3.11: Unicode 14; Node 20: Unicode 15.1+)
//   are word characters here and not there, and their case mappings may differ.

export const UNKNOWN_POLICIES = ['error', 'skip', 'replace'];

const PY_SPACE = '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const PY_WORD = "\\p{L}\\p{N}_";
export const WORD_PATTERN = new RegExp(`[${PY_WORD}']+|[^${PY_WORD}${PY_SPACE}]`, 'gu');

/** "U+00E9" for a code point string. */
function codePointName(ch) {
  return `U+${ch.codePointAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
}

export class CharTokenizer {
  constructor({ vocab, unknown = 'error', unk_token: unkToken = null }) {
    if (!UNKNOWN_POLICIES.includes(unknown)) {
      throw new Error(`unknown-character policy ${JSON.stringify(unknown)} is not one of ${UNKNOWN_POLICIES.join(', ')}`);
    }
    this.vocab = vocab;
    this.unknown = unknown;
    this.index = new Map(vocab.map((token, id) => [token, id]));
    if (unknown === 'replace' && !this.index.has(unkToken)) {
      throw new Error("policy 'replace' needs an unk_token that is in the vocabulary");
    }
    this.unkId = unknown === 'replace' ? this.index.get(unkToken) : -1;
  }

  /** The same vocabulary under another unknown-character policy. */
  withPolicy(unknown) {
    const unkToken = this.unkId >= 0 ? this.vocab[this.unkId] : null;
    return new CharTokenizer({ vocab: this.vocab, unknown, unk_token: unkToken });
  }

  /** Token ids of `text` (Numbers), applying the unknown policy. */
  encode(text) {
    const ids = [];
    Array.from(text).forEach((ch, position) => {
      const id = this.index.get(ch);
      if (id !== undefined) ids.push(id);
      else if (this.unknown === 'replace') ids.push(this.unkId);
      else if (this.unknown === 'error') {
        throw new Error(
          `character ${JSON.stringify(ch)} (${codePointName(ch)}) at position ${position} is not in ` +
            `the model's ${this.vocab.length}-character vocabulary; remove it or pass --unknown skip`,
        );
      }
    });
    return ids;
  }

  decode(ids) {
    return ids.map((id) => this.vocab[id]).join('');
  }
}

export class WordTokenizer {
  constructor({ vocab, lowercase = true }) {
    if (vocab[0] !== '<pad>' || vocab[1] !== '<unk>') {
      throw new Error('a word vocabulary must start with <pad> and <unk>');
    }
    this.vocab = vocab;
    this.lowercase = lowercase;
    this.index = new Map(vocab.map((token, id) => [token, id]));
  }

  /** The words and punctuation marks of `text`, as Python's re.findall gives them. */
  split(text) {
    return (this.lowercase ? text.toLowerCase() : text).match(WORD_PATTERN) ?? [];
  }

  encode(text) {
    return this.split(text).map((word) => this.index.get(word) ?? 1);
  }

  decode(ids) {
    return ids.map((id) => this.vocab[id]).join(' ');
  }
}

/** The tokenizer a manifest describes. */
export function tokenizerFromManifest(manifest) {
  const spec = manifest.tokenizer ?? {};
  if (spec.kind === 'word') return new WordTokenizer(spec);
  if (spec.kind === 'char') return new CharTokenizer(spec);
  throw new Error(`tokenizer kind ${JSON.stringify(spec.kind)} is not supported by this client`);
}
