/**
 * PEANuT vs LoRA at an equal trainable-parameter budget, on the shipped pre-trained bert-tiny:
 *
 *   npx tsx tools/accuracy.ts [--seeds 0,1,2] [--lrs 1e-3,3e-3,1e-2,3e-2] [--steps 300] [--out bench/accuracy.json]
 *
 * Both methods adapt query,value of both layers at rank 8. With in = out = 64 that is the same
 * budget: PEANuT 2·out·r = 1,024 and LoRA r·(in + out) = 1,024 parameters per layer, 4,096 in all.
 * Both train with the demo's recipe (AdamW, linear decay, no warmup, batch 16, 300 steps; LoRA
 * alpha = 2r; PEANuT depth 0, relu, scaling 1) through the same inject → train code; only
 * `--method` differs. Each seed sets both the adapter initialisation and the data order. The
 * learning rate is swept over a small grid for each method and task, and the table reports each
 * method at its best grid value (chosen by mean eval accuracy, the same optimistic selection for
 * both; every grid point is in the JSON).
 *
 * Tasks: the demo's `supermajority` (graphs/demo, shipped) and the harder `keyword` task (generated
 * into bench/work/ from KEYWORD_DATA). Reported: eval accuracy after training, mean ± sample
 * standard deviation over the seeds, with min and max.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEMO_ASSETS } from '../src/cli/demo/run-demo.ts';
import { loadModel, saveModel } from '../src/node/model-files.ts';
import { inject } from '../src/adapter/inject.ts';
import { train } from '../src/node/train.ts';
import { KEYWORD_DATA } from './lib/demo-graphs.ts';
import { makeExamples, toJsonl } from './lib/synthetic.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const WORK = join(ROOT, 'bench', 'work', 'accuracy');

const RECIPE = { rank: 8, targets: 'query,value', batchSize: 16, schedule: 'linear' as const, warmup: 0, weightDecay: 0.01 };

interface Args {
  seeds: number[];
  lrs: number[];
  steps: number;
  out: string;
  tasks: string[];
}

function parseArgs(argv: string[]): Args {
  const a: Args = { seeds: [0, 1, 2], lrs: [1e-3, 3e-3, 1e-2, 3e-2], steps: 300, out: join(ROOT, 'bench', 'accuracy.json'), tasks: ['supermajority', 'keyword'] };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    if (k === '--seeds') a.seeds = argv[++i]!.split(',').map(Number);
    else if (k === '--lrs') a.lrs = argv[++i]!.split(',').map(Number);
    else if (k === '--steps') a.steps = Number(argv[++i]);
    else if (k === '--out') a.out = resolve(argv[++i]!);
    else if (k === '--tasks') a.tasks = argv[++i]!.split(',');
    else {
      console.error(`unknown argument '${k}'; usage: npx tsx tools/accuracy.ts [--seeds 0,1,2] [--lrs 1e-3,3e-3,1e-2,3e-2] [--steps N] [--tasks supermajority,keyword] [--out file]`);
      process.exit(2);
    }
  }
  return a;
}

const mean = (xs: number[]) => xs.reduce((s, v) => s + v, 0) / xs.length;
const std = (xs: number[]) => (xs.length < 2 ? 0 : Math.sqrt(xs.reduce((s, v) => s + (v - mean(xs)) ** 2, 0) / (xs.length - 1)));
const r4 = (x: number) => Number(x.toFixed(4));

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const started = performance.now();
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(WORK, { recursive: true });
  const keywordFiles = { train: join(WORK, 'keyword-train.jsonl'), eval: join(WORK, 'keyword-eval.jsonl') };
  for (const [k, spec] of Object.entries(KEYWORD_DATA)) writeFileSync(keywordFiles[k as 'train' | 'eval'], toJsonl(makeExamples(spec.task, spec.examples, spec.seed, spec.options)));
  const tasks: Record<string, { train: string; eval: string }> = {
    supermajority: { train: DEMO_ASSETS.train, eval: DEMO_ASSETS.eval },
    keyword: keywordFiles,
  };
  const base = loadModel(DEMO_ASSETS.model);

  const runs: Array<{ task: string; method: string; lr: number; seed: number; trainableParams: number; before: number; after: number; evalLoss: number; seconds: number }> = [];
  for (const task of args.tasks) {
    const data = tasks[task];
    if (!data) throw new RangeError(`unknown task '${task}'; valid: ${Object.keys(tasks).join(', ')}`);
    for (const method of ['peanut', 'lora'] as const) {
      for (const lr of args.lrs) {
      for (const seed of args.seeds) {
        const t0 = performance.now();
        const dir = join(WORK, `${task}-${method}-${lr}-${seed}`);
        mkdirSync(dir, { recursive: true });
        const injected = inject(base, { method, r: RECIPE.rank, alpha: 2 * RECIPE.rank, targets: RECIPE.targets, seed });
        const adapted = join(dir, 'adapted.onnx');
        saveModel(injected.model, adapted);
        const r = await train(adapted, {
          task: 'seq-cls',
          data: data.train,
          eval: data.eval,
          outDir: join(dir, 'run'),
          steps: args.steps,
          batchSize: RECIPE.batchSize,
          lr,
          schedule: RECIPE.schedule,
          warmup: RECIPE.warmup,
          weightDecay: RECIPE.weightDecay,
          seed,
          ep: 'cpu',
          saveEvery: 0,
        });
        const first = r.evals[0]!;
        const last = r.evals.at(-1)!;
        const row = {
          task,
          method,
          lr,
          seed,
          trainableParams: [...injected.state.values()].reduce((s, v) => s + v.length, 0),
          before: r4(first.eval_accuracy!),
          after: r4(last.eval_accuracy!),
          evalLoss: r4(last.eval_loss),
          seconds: Number(((performance.now() - t0) / 1000).toFixed(1)),
        };
        runs.push(row);
        process.stderr.write(`${task} ${method} lr ${lr} seed ${seed}: eval accuracy ${row.before} → ${row.after} (${row.trainableParams} params, ${row.seconds} s)\n`);
      }
      }
    }
  }

  const grid = args.tasks.flatMap((task) =>
    (['peanut', 'lora'] as const).flatMap((method) =>
      args.lrs.map((lr) => {
        const rs = runs.filter((r) => r.task === task && r.method === method && r.lr === lr);
        const acc = rs.map((r) => r.after);
        return { task, method, lr, trainableParams: rs[0]!.trainableParams, before: rs[0]!.before, mean: r4(mean(acc)), std: r4(std(acc)), min: Math.min(...acc), max: Math.max(...acc), seeds: rs.length };
      }),
    ),
  );
  // Each method at its best learning rate (ties: the smaller lr).
  const summary = args.tasks.flatMap((task) =>
    (['peanut', 'lora'] as const).map((method) => grid.filter((g) => g.task === task && g.method === method).reduce((best, g) => (g.mean > best.mean ? g : best))),
  );
  const report = {
    generated: new Date().toISOString(),
    command: `npx tsx tools/accuracy.ts${process.argv.slice(2).length ? ` ${process.argv.slice(2).join(' ')}` : ''}`,
    model: 'graphs/bert-tiny.onnx (pre-trained on majority)',
    recipe: { ...RECIPE, steps: args.steps, loraAlpha: 2 * RECIPE.rank, peanut: { depth: 0, act: 'relu', scaling: 1 }, seeds: args.seeds },
    summary,
    grid,
    runs,
    totalS: Number(((performance.now() - started) / 1000).toFixed(1)),
  };
  mkdirSync(dirname(args.out), { recursive: true });
  writeFileSync(args.out, `${JSON.stringify(report, null, 2)}\n`);
  rmSync(WORK, { recursive: true, force: true });

  const pct = (x: number) => `${(100 * x).toFixed(1)}`;
  const n = args.seeds.length;
  const lines = [`| task | method | trainable params | best lr | eval accuracy before | after (mean ± std, ${n} seeds) | min – max | mean at lr ${args.lrs.join(' / ')} |`, '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |'];
  for (const s of summary) {
    const all = grid.filter((g) => g.task === s.task && g.method === s.method).map((g) => pct(g.mean)).join(' / ');
    lines.push(`| ${s.task} | ${s.method === 'peanut' ? 'PEANuT' : 'LoRA'} r ${RECIPE.rank} | ${s.trainableParams.toLocaleString('en-US')} | ${s.lr} | ${pct(s.before)} % | ${pct(s.mean)} ± ${pct(s.std)} % | ${pct(s.min)} – ${pct(s.max)} % | ${all} % |`);
  }
  process.stdout.write(`${lines.join('\n')}\n\nwrote ${args.out} (${report.totalS} s)\n`);
}

await main();
