// Runs ONNX models in ONNX Runtime (npm onnxruntime-node, CPU) on raw float32 input, for the
// export tests (outputs against LibTorch) and `gaze bench` (latency beside our kernel).
//
//   node scripts/ort/ort_run.js MODEL INPUT.f32 N,C,H,W OUTPUT.f32 [--also MODEL2 OUTPUT2.f32]...
//        [--threads T] [--time FRAMES] [--ranges RANGES.json] [--optimized OPTIMIZED.onnx]
//
// INPUT.f32 holds N*C*H*W little-endian floats. Each model runs once on the whole batch and
// writes its first output to its OUTPUT.f32. With --ranges, the first model's every output's
// minimum and maximum over that run go to RANGES.json as {"name": [min, max]} (a calibration
// run: the caller adds the tensors it wants as outputs). --optimized saves the first model as
// ONNX Runtime's optimiser rewrote it (fused kernels), for tests to inspect. With --time, it then times FRAMES
// single-frame runs of each model (cycling over the batch after 20 warm-up runs each, the
// models alternated frame by frame so that a noisy machine slows all alike) and prints one
// JSON line: median and p99 ms of the first model, and of every model under "models".
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

const usage = 'usage: ort_run.js MODEL INPUT.f32 N,C,H,W OUTPUT.f32 [--also MODEL OUTPUT.f32]... ' +
  '[--threads T] [--time FRAMES] [--ranges RANGES.json] [--optimized OPTIMIZED.onnx]';
const args = process.argv.slice(2);
const take = (name, count) => {  // every occurrence of `name` and its `count` values
  const found = [];
  for (let i = args.indexOf(name); i >= 0; i = args.indexOf(name)) {
    if (i + count >= args.length) fail(`${name} needs ${count} value(s); ${usage}`);
    found.push(args.slice(i + 1, i + 1 + count));
    args.splice(i, count + 1);
  }
  return found;
};
const positive = (name, fallback) => {
  const found = take(name, 1);
  if (found.length === 0) return fallback;
  const value = Number(found[found.length - 1][0]);
  if (!Number.isInteger(value) || value <= 0) fail(`${name} needs a positive integer, got '${found[0][0]}'`);
  return value;
};
const threads = positive('--threads', 1);
const timedFrames = positive('--time', 0);
const ranges = take('--ranges', 1).map((v) => v[0]).pop();
const optimized = take('--optimized', 1).map((v) => v[0]).pop();
const also = take('--also', 2);
if (args.length !== 4) fail(usage);
const [modelPath, inputPath, shapeText, outputPath] = args;
const runs = [[modelPath, outputPath], ...also].map(([model, output]) => ({ model, output }));

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

function minMax(values) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

async function main() {
  for (const run of runs) {
    try {
      const options = { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential',
        graphOptimizationLevel: 'all' };
      if (optimized && run === runs[0]) options.optimizedModelFilePath = optimized;
      run.session = await ort.InferenceSession.create(run.model, options);
    } catch (e) {
      fail(`${run.model}: ${e.message}`);
    }
    const input = run.session.inputNames[0];
    const result = await run.session.run({ [input]: new ort.Tensor('float32', data, shape) });
    const out = result[run.session.outputNames[0]].data;
    fs.writeFileSync(run.output, Buffer.from(out.buffer, out.byteOffset, out.byteLength));
    if (ranges && run === runs[0]) {
      const found = {};
      for (const name of run.session.outputNames) found[name] = minMax(result[name].data);
      fs.writeFileSync(ranges, JSON.stringify(found));
    }
  }
  if (timedFrames === 0) return;

  const frame = shape[1] * shape[2] * shape[3];
  const frames = [];
  for (let n = 0; n < shape[0]; ++n) {
    frames.push(new ort.Tensor('float32', data.slice(n * frame, (n + 1) * frame), [1, shape[1], shape[2], shape[3]]));
  }
  for (const run of runs) run.times = [];
  for (let i = 0; i < 20 + timedFrames; ++i) {
    for (const run of runs) {
      const start = process.hrtime.bigint();
      await run.session.run({ [run.session.inputNames[0]]: frames[i % frames.length] });
      if (i >= 20) run.times.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
  }
  const summary = runs.map((run) => {
    const times = run.times.sort((a, b) => a - b);
    const at = (p) => times[Math.min(times.length - 1, Math.floor(p * times.length))];
    return { model: run.model, median_ms: at(0.5), p99_ms: at(0.99) };
  });
  process.stdout.write(JSON.stringify({ runtime: 'onnxruntime', version: ort.env.versions.common, threads,
    frames: timedFrames, median_ms: summary[0].median_ms, p99_ms: summary[0].p99_ms, models: summary }) + '\n');
}
main().catch((e) => fail(`${modelPath}: ${e.message}`));
