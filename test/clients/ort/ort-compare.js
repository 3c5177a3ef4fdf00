// Runs two ONNX models in ONNX Runtime on the same deterministic inputs and
// compares their outputs by name: the test client for lowbit's ONNX output.
//
//   node ort-compare.js A.onnx B.onnx [--dim NAME=SIZE]... [--rtol R]
//                       [--optimization disabled|basic|extended|all]
//
// Inputs follow A's input metadata: float tensors get values of a seeded
// generator in [-1, 1), integer tensors small non-negative integers, bools
// alternate; a symbolic dimension takes its --dim size (default 3). Prints,
// per output, the largest absolute difference and that difference relative
// to the largest magnitude of A's output, then MATCH when every relative
// difference is at most --rtol (default 1e-5), else MISMATCH. Sessions use
// --optimization (default all: ONNX Runtime's fusions, as users run it).
'use strict';
const ort = require('onnxruntime-node');

function parseArgs(argv) {
  const args = { models: [], dims: {}, rtol: 1e-5, optimization: 'all' };
  for (let i = 0; i < argv.length; ++i) {
    if (argv[i] === '--dim') {
      const [name, size] = argv[++i].split('=');
      args.dims[name] = Number(size);
    } else if (argv[i] === '--optimization') {
      args.optimization = argv[++i];
    } else if (argv[i] === '--rtol') {
      args.rtol = Number(argv[++i]);
    } else {
      args.models.push(argv[i]);
    }
  }
  if (args.models.length !== 2)
    throw new Error('usage: ort-compare.js A.onnx B.onnx [--dim NAME=SIZE]... [--rtol R]');
  return args;
}

// xorshift32: the same inputs on every run and machine.
let state = 2463534242;
function nextUniform() {
  state ^= state << 13; state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5; state >>>= 0;
  return state / 4294967296 * 2 - 1;
}

function makeInput(meta, dims) {
  const shape = meta.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : (dims[d] ?? 3)));
  const count = shape.reduce((a, b) => a * b, 1);
  switch (meta.type) {
    case 'float32': return new ort.Tensor('float32', Float32Array.from({ length: count }, nextUniform), shape);
    case 'int64': return new ort.Tensor('int64', BigInt64Array.from({ length: count }, (_, i) => BigInt(i % 7)), shape);
    case 'int32': return new ort.Tensor('int32', Int32Array.from({ length: count }, (_, i) => i % 7), shape);
    case 'bool': return new ort.Tensor('bool', Uint8Array.from({ length: count }, (_, i) => i % 2), shape);
    default: throw new Error(`input ${meta.name}: type ${meta.type} is not generated`);
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const options = { graphOptimizationLevel: args.optimization };
  const [a, b] = await Promise.all(args.models.map((m) => ort.InferenceSession.create(m, options)));
  const feeds = {};
  for (const meta of a.inputMetadata) feeds[meta.name] = makeInput(meta, args.dims);
  const [outA, outB] = [await a.run(feeds), await b.run(feeds)];
  let match = true;
  for (const name of a.outputNames) {
    if (!(name in outB)) throw new Error(`output ${name} is missing from ${args.models[1]}`);
    const x = outA[name].data, y = outB[name].data;
    if (x.length !== y.length) throw new Error(`output ${name}: ${x.length} vs ${y.length} elements`);
    let maxDiff = 0, maxMag = 0;
    for (let i = 0; i < x.length; ++i) {
      maxDiff = Math.max(maxDiff, Math.abs(Number(x[i]) - Number(y[i])));
      maxMag = Math.max(maxMag, Math.abs(Number(x[i])));
    }
    const rel = maxMag > 0 ? maxDiff / maxMag : maxDiff;
    match = match && rel <= args.rtol;
    console.log(`output ${name} [${outA[name].dims}]: max abs diff ${maxDiff.toExponential(3)}, relative ${rel.toExponential(3)}`);
  }
  console.log(match ? 'MATCH' : 'MISMATCH');
}

main().catch((e) => { console.error(`error: ${e.message}`); process.exit(1); });
