// Runs two ONNX models in ONNX Runtime on the same deterministic inputs and
// compares their outputs by name: the test client for lowbit's ONNX output.
//
//   node ort-compare.js A.onnx B.onnx [--dim NAME=SIZE]... [--rtol R]
//                       [--optimization disabled|basic|extended|all]
//   node ort-compare.js A.onnx --data FOLDER [--rtol R]
//
// With --data, A runs on FOLDER/input_N.pb and is compared with
// FOLDER/output_N.pb (serialized TensorProtos with raw_data, e.g. written
// by `lowbit run A.onnx --inputs FOLDER -o FOLDER`).
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
  const args = { models: [], dims: {}, rtol: 1e-5, optimization: 'all', data: null };
  for (let i = 0; i < argv.length; ++i) {
    if (argv[i] === '--dim') {
      const [name, size] = argv[++i].split('=');
      args.dims[name] = Number(size);
    } else if (argv[i] === '--data') {
      args.data = argv[++i];
    } else if (argv[i] === '--optimization') {
      args.optimization = argv[++i];
    } else if (argv[i] === '--rtol') {
      args.rtol = Number(argv[++i]);
    } else {
      args.models.push(argv[i]);
    }
  }
  if (args.models.length !== (args.data ? 1 : 2))
    throw new Error('usage: ort-compare.js A.onnx (B.onnx | --data FOLDER) [--dim NAME=SIZE]... [--rtol R]');
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

// A serialized TensorProto with raw_data (fields dims = 1, data_type = 2,
// raw_data = 9) as an ort.Tensor.
function readTensorProto(path) {
  const bytes = require('fs').readFileSync(path);
  let pos = 0;
  const varint = () => {
    let value = 0n, shift = 0n;
    for (;;) {
      const b = bytes[pos++];
      value |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return value;
      shift += 7n;
    }
  };
  const dims = [];
  let type = 0, raw = null;
  while (pos < bytes.length) {
    const tag = Number(varint()), field = tag >> 3, wire = tag & 7;
    if (wire === 0) {
      const v = varint();
      if (field === 1) dims.push(Number(v));
      else if (field === 2) type = Number(v);
    } else if (wire === 2) {
      const len = Number(varint());
      const chunk = bytes.subarray(pos, pos + len);
      pos += len;
      if (field === 9) raw = chunk;
      else if (field === 1) { // packed dims
        let p = 0;
        while (p < chunk.length) {
          let v = 0, s = 0, b;
          do { b = chunk[p++]; v += (b & 0x7f) * 2 ** s; s += 7; } while (b & 0x80);
          dims.push(v);
        }
      }
    } else if (wire === 5) pos += 4;
    else if (wire === 1) pos += 8;
  }
  if (!raw) throw new Error(`${path}: no raw_data`);
  const buffer = raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length);
  switch (type) {
    case 1: return new ort.Tensor('float32', new Float32Array(buffer), dims);
    case 7: return new ort.Tensor('int64', new BigInt64Array(buffer), dims);
    case 6: return new ort.Tensor('int32', new Int32Array(buffer), dims);
    case 9: return new ort.Tensor('bool', new Uint8Array(buffer), dims);
    default: throw new Error(`${path}: data type ${type} is not read here`);
  }
}

function readTensors(folder, prefix) {
  const fs = require('fs');
  const out = [];
  for (let i = 0; fs.existsSync(`${folder}/${prefix}_${i}.pb`); ++i)
    out.push(readTensorProto(`${folder}/${prefix}_${i}.pb`));
  return out;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const options = { graphOptimizationLevel: args.optimization };
  const [a, b] = await Promise.all(args.models.map((m) => ort.InferenceSession.create(m, options)));
  const feeds = {};
  let outB;
  if (args.data) {
    const inputs = readTensors(args.data, 'input'), outputs = readTensors(args.data, 'output');
    a.inputNames.forEach((name, i) => { feeds[name] = inputs[i]; });
    outB = {};
    a.outputNames.forEach((name, i) => { outB[name] = outputs[i]; });
  } else {
    for (const meta of a.inputMetadata) feeds[meta.name] = makeInput(meta, args.dims);
  }
  const outA = await a.run(feeds);
  if (!args.data) outB = await b.run(feeds);
  let match = true;
  for (const name of a.outputNames) {
    if (!outB[name]) throw new Error(`output ${name} is missing from ${args.data || args.models[1]}`);
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
