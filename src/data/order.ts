/**
 * The order in which a run visits its examples. Each epoch's order depends only on the seed and
 * the epoch number (its own PRNG stream), so a resumed run rebuilds exactly the order it was in
 * from `(seed, epoch, position)` without saving generator state. The last batch of an epoch may
 * be smaller than the batch size (it is not dropped, as in Hugging Face's Trainer).
 */
import { Random } from '../util/random.ts';

export interface OrderOptions {
  size: number;
  batchSize: number;
  seed: number;
  shuffle: boolean;
}

/** Example indices of epoch `epoch`, in visiting order. */
export function epochOrder(epoch: number, o: OrderOptions): number[] {
  const order = Array.from({ length: o.size }, (_, i) => i);
  return o.shuffle ? Random.forKey(o.seed, `data-order/epoch-${epoch}`).shuffle(order) : order;
}

export function stepsPerEpoch(o: Pick<OrderOptions, 'size' | 'batchSize'>): number {
  return Math.ceil(o.size / o.batchSize);
}

/** A cursor over (epoch, position) that yields batches of example indices. */
export class BatchCursor {
  #order: number[] | undefined;
  #orderEpoch = -1;

  constructor(
    readonly opts: OrderOptions,
    public epoch = 0,
    public position = 0,
  ) {}

  /** The next batch's indices; advances the cursor (rolling over into the next epoch). */
  next(): number[] {
    if (this.position >= this.opts.size) {
      this.epoch += 1;
      this.position = 0;
    }
    if (this.#orderEpoch !== this.epoch) {
      this.#order = epochOrder(this.epoch, this.opts);
      this.#orderEpoch = this.epoch;
    }
    const batch = this.#order!.slice(this.position, this.position + this.opts.batchSize);
    this.position += batch.length;
    if (this.position >= this.opts.size) {
      this.epoch += 1;
      this.position = 0;
    }
    return batch;
  }
}
