// A small command-line parser: positional arguments and --name value / --flag options,
// every value checked, so a mistake is one clear line (no dependency needed).

/** Parse `argv` by `spec` ({name: 'string' | 'int' | 'float' | 'bigint' | 'flag'}). */
export function parseArgs(argv, spec) {
  const options = {};
  const positional = [];
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (arg === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('--') || arg === '-') {
      positional.push(arg);
      continue;
    }
    const [flag, inline] = arg.split(/=(.*)/s);
    const name = flag.slice(2);
    const kind = spec[name];
    if (!kind) throw new Error(`unknown option ${flag} (options: ${Object.keys(spec).map((k) => `--${k}`).join(', ')})`);
    if (kind === 'flag') {
      options[name] = true;
      continue;
    }
    const value = inline ?? argv[(i += 1)];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    options[name] = convert(flag, kind, value);
  }
  return { options, positional };
}

function convert(flag, kind, value) {
  if (kind === 'string') return value;
  const number = Number(value);
  if (kind === 'float' && value.trim() !== '' && !Number.isNaN(number)) return number;
  if ((kind === 'int' || kind === 'bigint') && /^[+-]?\d+$/.test(value.trim())) {
    return kind === 'bigint' ? BigInt(value.trim()) : Number.parseInt(value, 10);
  }
  throw new Error(`${flag} must be ${kind === 'float' ? 'a number' : 'an integer'}, got ${JSON.stringify(value)}`);
}
