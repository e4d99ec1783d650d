// The browser demo of peanut-onnx: the job `peanut-onnx demo` runs on Node (inject PEANuT r 8 on
// query,value of the shipped model, 300 AdamW steps of 16 examples at lr 1e-2 with linear decay,
// seed 0, then merge), run here with peanut-onnx/web on onnxruntime-web.
//
// Served by `peanut-onnx demo --web` (npm run demo:web): /peanut-onnx-web.js is the package's
// browser bundle, /ort/ onnxruntime-web's dist/, /graphs/ the shipped model and data. URL options:
// ?ep=auto|wasm|webgpu, ?steps=N, ?evalEvery=N.
//
// globalThis.peanutDemo mirrors what the page shows (state, step, losses, evals, accuracies), for
// scripts and tests that drive the page.
import { evaluate, exportPeft, inject, merge, train } from '/peanut-onnx-web.js';

const params = new URLSearchParams(location.search);
const JOB = {
  task: 'seq-cls',
  steps: Number(params.get('steps') ?? 300),
  batchSize: 16,
  lr: 1e-2,
  seed: 0,
  evalEvery: Number(params.get('evalEvery') ?? 50),
};
const ADAPTER = { method: 'peanut', r: 8, targets: 'query,value', seed: 0 };

const $ = (id) => document.getElementById(id);
const state = {
  state: 'loading',
  ep: undefined,
  threads: 1,
  step: 0,
  totalSteps: JOB.steps,
  losses: [],
  evals: [],
  baseAccuracy: undefined,
  mergedAccuracy: undefined,
  /** Seconds spent training, over every run (a stop and a resume included). */
  trainSeconds: 0,
  error: undefined,
};
globalThis.peanutDemo = state;

let ort;
let files;
let adapted;
let checkpoint;
let controller;

function setState(s, message) {
  state.state = s;
  if (message !== undefined) $('status').textContent = message;
  $('train').disabled = !['ready', 'done', 'error'].includes(s);
  $('stop').disabled = s !== 'training';
  $('resume').disabled = s !== 'stopped';
  $('ep-choice').disabled = !['ready', 'done', 'error', 'stopped'].includes(s);
}

function fail(err) {
  state.error = err?.message ?? String(err);
  $('status').innerHTML = '';
  const line = document.createElement('span');
  line.className = 'error';
  line.textContent = state.error;
  $('status').append(line);
  setState('error');
}

async function fetchOk(url) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`could not load ${url} (HTTP ${res.status})`);
  return res;
}

async function hasWebGpu() {
  try {
    return !!(await navigator.gpu?.requestAdapter());
  } catch {
    return false;
  }
}

/** The provider to use for the chosen option. */
async function chooseEp() {
  const choice = $('ep-choice').value;
  if (choice === 'wasm') return 'wasm';
  const gpu = await hasWebGpu();
  if (choice === 'webgpu' && !gpu) throw new Error('this browser offers no WebGPU adapter; choose wasm (CPU)');
  return gpu ? 'webgpu' : 'wasm';
}

function showEp() {
  $('ep').textContent = state.ep === 'webgpu' ? 'WebGPU' : `wasm (CPU), ${state.threads} thread${state.threads > 1 ? 's' : ''}${crossOriginIsolated ? '' : ' (page not cross-origin isolated)'}`;
}

// ---- chart ----------------------------------------------------------------------------------------
function drawChart() {
  const canvas = $('chart');
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth;
  const h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const g = canvas.getContext('2d');
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const pad = { l: 44, r: 44, t: 10, b: 26 };
  const W = w - pad.l - pad.r;
  const H = h - pad.t - pad.b;
  const css = getComputedStyle(document.documentElement);
  const color = (v) => css.getPropertyValue(v).trim();
  const maxLoss = Math.max(0.1, ...state.losses.map((p) => p.loss));
  const x = (step) => pad.l + (W * step) / Math.max(1, state.totalSteps);
  const yLoss = (l) => pad.t + H * (1 - l / maxLoss);
  const yAcc = (a) => pad.t + H * (1 - a);
  g.strokeStyle = color('--line');
  g.fillStyle = color('--muted');
  g.font = '11px system-ui, sans-serif';
  g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = pad.t + (H * i) / 4;
    g.beginPath();
    g.moveTo(pad.l, y);
    g.lineTo(pad.l + W, y);
    g.stroke();
    g.textAlign = 'right';
    g.fillText((maxLoss * (1 - i / 4)).toFixed(2), pad.l - 6, y + 4);
    g.textAlign = 'left';
    g.fillText(`${Math.round(100 * (1 - i / 4))}%`, pad.l + W + 6, y + 4);
  }
  g.textAlign = 'center';
  for (let i = 0; i <= 5; i++) {
    const step = Math.round((state.totalSteps * i) / 5);
    g.fillText(String(step), x(step), h - 8);
  }
  // loss: the raw steps, thin, and a running mean, thick
  if (state.losses.length) {
    g.strokeStyle = color('--accent');
    g.globalAlpha = 0.25;
    g.beginPath();
    state.losses.forEach((p, i) => (i ? g.lineTo(x(p.step), yLoss(p.loss)) : g.moveTo(x(p.step), yLoss(p.loss))));
    g.stroke();
    g.globalAlpha = 1;
    g.lineWidth = 2;
    g.beginPath();
    let mean = state.losses[0].loss;
    state.losses.forEach((p, i) => {
      mean = i ? 0.9 * mean + 0.1 * p.loss : mean;
      i ? g.lineTo(x(p.step), yLoss(mean)) : g.moveTo(x(p.step), yLoss(mean));
    });
    g.stroke();
  }
  // eval accuracy: points joined
  const acc = state.evals.filter((e) => Number.isFinite(e.eval_accuracy));
  if (acc.length) {
    g.strokeStyle = g.fillStyle = color('--acc');
    g.lineWidth = 2;
    g.beginPath();
    acc.forEach((e, i) => (i ? g.lineTo(x(e.step), yAcc(e.eval_accuracy)) : g.moveTo(x(e.step), yAcc(e.eval_accuracy))));
    g.stroke();
    for (const e of acc) {
      g.beginPath();
      g.arc(x(e.step), yAcc(e.eval_accuracy), 3, 0, 2 * Math.PI);
      g.fill();
    }
  }
}

const pct = (a) => `${(100 * a).toFixed(1)}%`;

function setDownload(id, bytes, type) {
  const a = $(id);
  if (a.href) URL.revokeObjectURL(a.href);
  a.href = URL.createObjectURL(new Blob([bytes], { type }));
  a.setAttribute('aria-disabled', 'false');
}

// ---- the job ----------------------------------------------------------------------------------------
async function run(resume) {
  controller = new AbortController();
  state.ep = await chooseEp();
  showEp();
  setState('training', resume ? `Resuming at step ${state.step}…` : 'Building the training graph…');
  const started = performance.now();
  const startStep = state.step;
  const result = await train({
    ort,
    model: adapted,
    ...JOB,
    data: files.train,
    eval: files.eval,
    ep: state.ep,
    ...(resume ? { resume: checkpoint } : {}),
    signal: controller.signal,
    onEvent: (e) => {
      if (e.type === 'step') {
        state.step = e.step;
        state.losses.push({ step: e.step, loss: e.loss });
        const rate = (e.step - startStep) / ((performance.now() - started) / 1000);
        $('progress').value = e.step / e.totalSteps;
        $('status').textContent = `step ${e.step} / ${e.totalSteps} · loss ${e.loss.toFixed(4)} · ${rate.toFixed(1)} steps/s · ${Math.max(0, (e.totalSteps - e.step) / rate).toFixed(0)} s left`;
      } else if (e.type === 'eval') {
        if (!state.evals.some((x) => x.step === e.step)) state.evals.push(e);
        if (e.step === 0) {
          state.baseAccuracy = e.eval_accuracy;
          $('acc-before').textContent = pct(e.eval_accuracy);
        }
      }
      drawChart();
    },
  });
  state.trainSeconds += (performance.now() - started) / 1000;
  checkpoint = result.checkpoint;
  setDownload('dl-checkpoint', checkpoint, 'application/octet-stream');
  if (result.interrupted) {
    setState('stopped', `Stopped at step ${result.step} of ${result.totalSteps}; Resume continues from there.`);
    return;
  }
  setState('merging', 'Merging the trained tweakers into the model…');
  const merged = merge({ model: adapted, checkpoint });
  const peft = exportPeft({ checkpoint });
  setDownload('dl-merged', merged, 'application/octet-stream');
  setDownload('dl-peft-config', peft.config, 'application/json');
  setDownload('dl-peft-weights', peft.weights, 'application/octet-stream');
  const { accuracy } = await evaluate({ ort, model: merged, task: JOB.task, data: files.eval, ep: state.ep });
  state.mergedAccuracy = accuracy;
  $('acc-merged').textContent = pct(accuracy);
  setState('done', `Done: ${result.step} steps on ${state.ep === 'webgpu' ? 'WebGPU' : 'wasm'} in ${state.trainSeconds.toFixed(1)} s of training; the merged model scores ${pct(accuracy)} on the 500 eval examples (${pct(state.baseAccuracy ?? NaN)} before).`);
}

function start(resume) {
  if (!resume) {
    Object.assign(state, { step: 0, losses: [], evals: [], mergedAccuracy: undefined, trainSeconds: 0, error: undefined });
    $('acc-merged').textContent = '–';
    $('progress').value = 0;
    drawChart();
  }
  run(resume).catch(fail);
}

$('train').addEventListener('click', () => start(false));
$('resume').addEventListener('click', () => start(true));
$('stop').addEventListener('click', () => controller?.abort());
window.addEventListener('resize', drawChart);

async function load() {
  const choice = params.get('ep');
  if (choice && ['auto', 'wasm', 'webgpu'].includes(choice)) $('ep-choice').value = choice;
  // The WebGPU build of onnxruntime-web also has the wasm (CPU) provider.
  ort = await import('/ort/ort.webgpu.min.mjs');
  state.threads = crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
  ort.env.wasm.numThreads = state.threads;
  const [model, trainText, evalText] = await Promise.all([
    fetchOk('/graphs/bert-tiny.onnx').then((r) => r.arrayBuffer()),
    fetchOk('/graphs/demo/train.jsonl').then((r) => r.text()),
    fetchOk('/graphs/demo/eval.jsonl').then((r) => r.text()),
  ]);
  files = { train: trainText, eval: evalText };
  const injected = inject(new Uint8Array(model), ADAPTER);
  adapted = injected.model;
  $('adapter').textContent = `PEANuT r ${ADAPTER.r} on ${injected.targets.length} layers: ${injected.trainableParams.toLocaleString('en')} trainable of ${injected.baseParams.toLocaleString('en')} (${((100 * injected.trainableParams) / injected.baseParams).toFixed(2)}%)`;
  state.ep = await chooseEp().catch(() => 'wasm');
  showEp();
  drawChart();
  setState('ready', `Ready: ${JOB.steps} steps of ${JOB.batchSize} examples, lr ${JOB.lr}, eval every ${JOB.evalEvery} steps. Press Train.`);
}

load().catch(fail);
