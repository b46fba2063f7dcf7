// SplitMix64, bit for bit as rnnedge's Python runtime (rnnedge/runtime/prng.py):
//
//   state = (state + 0x9E3779B97F4A7C15) mod 2**64
//   z = state
//   z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) mod 2**64
//   z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) mod 2**64
//   output z ^ (z >> 31)
//
// The seed, taken modulo 2**64 (-1 is 0xFFFFFFFFFFFFFFFF), is the initial state. A uniform
// in [0, 1) is the output's top 53 bits times 2**-53, exact in a double. BigInt keeps the
// 64-bit arithmetic exact; a draw costs about a microsecond, far below a model step.

const GOLDEN_GAMMA = 0x9e3779b97f4a7c15n;
const MIX1 = 0xbf58476d1ce4e5b9n;
const MIX2 = 0x94d049bb133111ebn;
const UNIT = 2 ** -53;

/** A 64-bit seed from the platform's secure random source (Node.js and browsers). */
function randomSeed() {
  const words = new BigUint64Array(1);
  globalThis.crypto.getRandomValues(words);
  return words[0];
}

export class PortableRng {
  /** `seed`: a BigInt, an integer Number or a decimal string; null/undefined = random. */
  constructor(seed = null) {
    const value = seed === null || seed === undefined ? randomSeed() : BigInt(seed);
    this.state = BigInt.asUintN(64, value);
  }

  /** The next 64-bit output, as a BigInt. */
  nextU64() {
    this.state = BigInt.asUintN(64, this.state + GOLDEN_GAMMA);
    let z = this.state;
    z = BigInt.asUintN(64, (z ^ (z >> 30n)) * MIX1);
    z = BigInt.asUintN(64, (z ^ (z >> 27n)) * MIX2);
    return z ^ (z >> 31n);
  }

  /** A uniform double in [0, 1). */
  random() {
    return Number(this.nextU64() >> 11n) * UNIT;
  }
}
