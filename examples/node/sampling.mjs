// The next token from a row of float32 logits, by the procedure rnnedge specifies
// (rnnedge/runtime/sampling.py): float64 arithmetic only, in a fixed order, and an
// exponential built from + and * (exp64) instead of Math.exp, whose last bit differs
// between engines. So the same logits and seed give the same token here as in Python.

const LOG2E = 1.4426950408889634; // 0x3FF71547652B82FE
const LN2_HI = 0.6931471803691238; // 0x3FE62E42FEE00000
const LN2_LO = 1.9082149292705877e-10; // 0x3DEA39EF35793C76
const EXP_FLOOR = -708;
export const MIN_TEMPERATURE = 1e-4;

function factorial(n) {
  return n <= 1 ? 1 : n * factorial(n - 1); // exact in a double up to 18!
}
// 1/n! for n = 12 … 1: IEEE division rounds correctly, as Python's int / int does.
const EXP_COEFFICIENTS = Array.from({ length: 12 }, (_, i) => 1 / factorial(12 - i));

const pow2View = new DataView(new ArrayBuffer(8));
/** 2**k for an integer k in [-1022, 1023], built from its bits (exact, unlike Math.pow). */
function pow2(k) {
  pow2View.setUint32(0, (k + 1023) * 0x100000); // exponent field; mantissa and low word 0
  pow2View.setUint32(4, 0);
  return pow2View.getFloat64(0);
}

/** The specified exponential of x <= 0: 0 below -708, else 2**k times a degree-12 polynomial. */
export function exp64(x) {
  if (!(x >= EXP_FLOOR)) return 0; // also -Infinity and NaN
  const k = Math.floor(x * LOG2E + 0.5);
  const r = x - k * LN2_HI - k * LN2_LO; // left to right: (x - k*hi) - k*lo
  let p = EXP_COEFFICIENTS[0];
  for (let i = 1; i < EXP_COEFFICIENTS.length; i += 1) p = p * r + EXP_COEFFICIENTS[i];
  return (p * r + 1) * pow2(k);
}

/** Check settings as rnnedge does; throws an Error naming the option. */
export function checkSampling({ temperature, topK, topP }) {
  if (!(temperature === 0 || temperature >= MIN_TEMPERATURE)) {
    throw new Error(`--temperature must be 0 (greedy) or at least ${MIN_TEMPERATURE}, got ${temperature}`);
  }
  if (!Number.isInteger(topK) || topK < 0) throw new Error(`--top-k must be >= 0, got ${topK}`);
  if (!(topP > 0 && topP <= 1)) throw new Error(`--top-p must be in (0, 1], got ${topP}`);
}

/** Index of the largest value, the lowest index on ties. */
export function argmax(values) {
  let best = 0;
  for (let i = 1; i < values.length; i += 1) if (values[i] > values[best]) best = i;
  return best;
}

/** Unnormalised weights: temperature, top-k (ties with the k-th largest kept), exp64. */
function weightsOf(logits, temperature, topK) {
  const vocab = logits.length;
  const scaled = Float64Array.from(logits, (l) => l / temperature);
  let threshold = -Infinity;
  if (topK > 0 && topK < vocab) threshold = Float64Array.from(scaled).sort()[vocab - topK];
  let peak = -Infinity;
  for (const s of scaled) if (s > peak) peak = s;
  return scaled.map((s) => (s < threshold ? 0 : exp64(s - peak)));
}

/** Zero all but the shortest run of heaviest tokens reaching topP of the id-order total. */
function nucleus(weights, topP) {
  let total = 0;
  for (const w of weights) total += w;
  const order = Array.from(weights.keys()).sort((a, b) => weights[b] - weights[a] || a - b);
  const target = topP * total;
  let mass = 0;
  let kept = order.length;
  for (let j = 0; j < order.length; j += 1) {
    mass += weights[order[j]];
    if (mass >= target) {
      kept = j + 1;
      break;
    }
  }
  const out = new Float64Array(weights.length);
  for (const id of order.slice(0, kept)) out[id] = weights[id];
  return out;
}

/** Token id from `logits` (a Float32Array row); draws a uniform from `rng` unless greedy. */
export function sampleToken(logits, { temperature, topK = 0, topP = 1 }, rng) {
  if (temperature === 0) return argmax(logits);
  const u = rng.random();
  let weights = weightsOf(logits, temperature, topK);
  if (topP < 1) weights = nucleus(weights, topP);
  const cumulative = new Float64Array(weights.length);
  let sum = 0;
  for (let i = 0; i < weights.length; i += 1) cumulative[i] = sum += weights[i];
  const target = u * sum;
  for (let i = 0; i < cumulative.length; i += 1) if (cumulative[i] > target) return i;
  return cumulative.length - 1; // unreachable: u < 1 keeps target below the total
}
