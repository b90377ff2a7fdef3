// How property tests (fast-check) choose their inputs. By default every run uses one fixed seed, so
// the suite is deterministic; `FC_SEED=random` (what `npm run test:fuzz` sets) or `FC_SEED=<int>`
// chooses another, and `FC_RUNS=<n>` multiplies every property's number of runs. fast-check names
// the seed and the shrunk counterexample in every failure; rerun with `FC_SEED=<seed>`.
import { randomInt } from 'node:crypto';

/** The seed of an ordinary run. Any fixed value does; changing it is a deliberate act. */
export const DEFAULT_SEED = 20261102;

/** The seed for this run from `FC_SEED` (unset: the default; `random`: a fresh one). */
export function chooseSeed(env: NodeJS.ProcessEnv = process.env): number {
  const value = env.FC_SEED?.trim() ?? '';
  if (value === '') return DEFAULT_SEED;
  if (value === 'random') return randomInt(-(2 ** 31), 2 ** 31 - 1);
  if (!/^-?\d+$/.test(value)) throw new Error(`FC_SEED must be an integer or "random", not "${value}"`);
  return Number(value);
}

/** How many times each property runs its usual count (`FC_RUNS`, default 1). */
export function runScale(env: NodeJS.ProcessEnv = process.env): number {
  const value = env.FC_RUNS?.trim() ?? '';
  if (value === '') return 1;
  if (!/^[1-9]\d*$/.test(value)) throw new Error(`FC_RUNS must be a positive integer, not "${value}"`);
  return Number(value);
}

/** Parameters for `fc.assert`: `n` runs in an ordinary test run, `n × FC_RUNS` in the fuzz job. */
export function runs(n: number): { numRuns: number } {
  return { numRuns: n * runScale() };
}
