// Runs an ONNX model in ONNX Runtime (npm onnxruntime-node, CPU) on raw float32 input, for the
// export tests (outputs against LibTorch) and `gaze bench` (latency beside our kernel).
//
//   node scripts/ort/ort_run.js MODEL INPUT.f32 N,C,H,W OUTPUT.f32 [--threads T] [--time FRAMES]
//
// INPUT.f32 holds N*C*H*W little-endian floats. The model runs once on the whole batch and
// writes its first output to OUTPUT.f32. With --time, it then times FRAMES single-frame runs
// (cycling over the batch, after 20 warm-up ones) and prints one JSON line: median and p99 ms.
// The package is found in $LIBGAZE_ORT_DIR (default ~/.cache/libgaze/onnxruntime-node), where
// scripts/setup installs it.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');

function fail(message) {
  process.stderr.write(`ort_run: ${message}\n`);
  process.exit(1);
}

const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const value = Number(args[i + 1]);
  if (!Number.isInteger(value) || value <= 0) fail(`${name} needs a positive integer, got '${args[i + 1]}'`);
  args.splice(i, 2);
  return value;
};
const threads = flag('--threads', 1);
const timedFrames = flag('--time', 0);
if (args.length !== 4) fail('usage: ort_run.js MODEL INPUT.f32 N,C,H,W OUTPUT.f32 [--threads T] [--time FRAMES]');
const [modelPath, inputPath, shapeText, outputPath] = args;

const ortDir = process.env.LIBGAZE_ORT_DIR || path.join(os.homedir(), '.cache', 'libgaze', 'onnxruntime-node');
let ort;
try {
  ort = require(path.join(ortDir, 'node_modules', 'onnxruntime-node'));
} catch (e) {
  fail(`ONNX Runtime is not installed in ${ortDir} (scripts/setup installs it with npm): ${e.message}`);
}

const shape = shapeText.split(',').map(Number);
if (shape.length !== 4 || shape.some((d) => !Number.isInteger(d) || d <= 0)) fail(`bad shape '${shapeText}'`);
const count = shape.reduce((a, b) => a * b, 1);
const bytes = fs.readFileSync(inputPath);
if (bytes.length !== count * 4) fail(`${inputPath}: ${bytes.length} bytes, shape ${shapeText} needs ${count * 4}`);
const data = new Float32Array(bytes.buffer, bytes.byteOffset, count);

async function main() {
  const session = await ort.InferenceSession.create(modelPath, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const inputName = session.inputNames[0];
  const outputName = session.outputNames[0];
  const result = await session.run({ [inputName]: new ort.Tensor('float32', data, shape) });
  const out = result[outputName].data;
  fs.writeFileSync(outputPath, Buffer.from(out.buffer, out.byteOffset, out.byteLength));
  if (timedFrames === 0) return;

  const frame = shape[1] * shape[2] * shape[3];
  const frames = [];
  for (let n = 0; n < shape[0]; ++n) {
    frames.push(new ort.Tensor('float32', data.slice(n * frame, (n + 1) * frame), [1, shape[1], shape[2], shape[3]]));
  }
  const times = [];
  for (let i = 0; i < 20 + timedFrames; ++i) {
    const start = process.hrtime.bigint();
    await session.run({ [inputName]: frames[i % frames.length] });
    if (i >= 20) times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  times.sort((a, b) => a - b);
  const at = (p) => times[Math.min(times.length - 1, Math.floor(p * times.length))];
  process.stdout.write(JSON.stringify({ runtime: 'onnxruntime', version: ort.env.versions.common, threads,
    frames: timedFrames, median_ms: at(0.5), p99_ms: at(0.99) }) + '\n');
}
main().catch((e) => fail(`${modelPath}: ${e.message}`));
