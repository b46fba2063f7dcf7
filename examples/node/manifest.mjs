// The rnnedge manifest of a model, read from the .onnx bytes themselves.
//
// onnxruntime-node and onnxruntime-web expose no model metadata, so this walks the
// protobuf wire format of ModelProto far enough to find field 14 (`metadata_props`,
// repeated StringStringEntryProto {key = 1, value = 2}) and JSON-parses the value under
// the key "rnnedge.manifest". Every other field (the graph with its weights included) is
// skipped by its length, so reading a 3 MB model touches a few dozen bytes.
//
// Works in Node.js and in browsers (no imports); `readManifestBeside` in load.mjs adds the
// `<model>.manifest.json` fallback for Node.

export const MANIFEST_KEY = 'rnnedge.manifest';
// A reader accepts its own major version and the previous one, as rnnedge's does.
export const READABLE_MAJORS = [1, 0];

const MODEL_METADATA_PROPS = 14;
const ENTRY_KEY = 1;
const ENTRY_VALUE = 2;
const VARINT = 0;
const FIXED64 = 1;
const LENGTH_DELIMITED = 2;
const FIXED32 = 5;

/** A protobuf varint at `offset`: [value, next offset]. Numbers stay exact below 2**53. */
function readVarint(bytes, offset) {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10; i += 1) {
    if (offset >= bytes.length) throw new Error('truncated varint');
    const byte = bytes[offset];
    offset += 1;
    value += (byte & 0x7f) * scale; // multiplication, not <<: lengths may pass 2**31
    if ((byte & 0x80) === 0) return [value, offset];
    scale *= 128;
  }
  throw new Error('varint longer than 10 bytes');
}

/** Yields [field number, wire type, payload start, payload end] for each field of a message. */
function* fields(bytes, start, end) {
  let offset = start;
  while (offset < end) {
    const [tag, afterTag] = readVarint(bytes, offset);
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    let payloadStart = afterTag;
    let payloadEnd;
    if (wire === VARINT) [, payloadEnd] = readVarint(bytes, afterTag);
    else if (wire === FIXED64) payloadEnd = afterTag + 8;
    else if (wire === FIXED32) payloadEnd = afterTag + 4;
    else if (wire === LENGTH_DELIMITED) {
      const [length, afterLength] = readVarint(bytes, afterTag);
      payloadStart = afterLength;
      payloadEnd = afterLength + length;
    } else throw new Error(`unsupported protobuf wire type ${wire}`);
    if (field === 0 || payloadEnd > end) throw new Error('truncated or malformed protobuf');
    yield [field, wire, payloadStart, payloadEnd];
    offset = payloadEnd;
  }
}

/** Every metadata_props entry of an ONNX model's bytes, as a Map of key to value. */
export function readMetadataProps(bytes) {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const props = new Map();
  for (const [field, wire, start, end] of fields(bytes, 0, bytes.length)) {
    if (field !== MODEL_METADATA_PROPS || wire !== LENGTH_DELIMITED) continue;
    let key = '';
    let value = '';
    for (const [entryField, entryWire, s, e] of fields(bytes, start, end)) {
      if (entryWire !== LENGTH_DELIMITED) continue;
      if (entryField === ENTRY_KEY) key = decoder.decode(bytes.subarray(s, e));
      else if (entryField === ENTRY_VALUE) value = decoder.decode(bytes.subarray(s, e));
    }
    props.set(key, value);
  }
  return props;
}

/** Parse and version-check manifest JSON text; throws an Error saying what is wrong. */
export function parseManifest(text, source) {
  let manifest;
  try {
    manifest = JSON.parse(text);
  } catch (error) {
    throw new Error(`${source}: the rnnedge manifest is not valid JSON (${error.message})`);
  }
  if (manifest === null || typeof manifest !== 'object' || Array.isArray(manifest)) {
    throw new Error(`${source}: the rnnedge manifest is not a JSON object`);
  }
  const major = Number.parseInt(String(manifest.schema_version ?? '').split('.')[0], 10);
  if (!READABLE_MAJORS.includes(major)) {
    throw new Error(
      `${source}: manifest schema ${manifest.schema_version} is not readable by this client ` +
        `(reads ${READABLE_MAJORS.slice().reverse().join('.x and ')}.x)`,
    );
  }
  return manifest;
}

/** The manifest inside an ONNX model's bytes, or null when the file has none. */
export function manifestFromModelBytes(bytes, source = 'model') {
  let props;
  try {
    props = readMetadataProps(bytes);
  } catch (error) {
    throw new Error(`${source} is not an ONNX model (${error.message})`);
  }
  return props.has(MANIFEST_KEY) ? parseManifest(props.get(MANIFEST_KEY), source) : null;
}
