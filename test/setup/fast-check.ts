// Every test file: fast-check's seed comes from the run (see test/helpers/property.ts), so all
// properties are deterministic unless `FC_SEED` asks otherwise.
import fc from 'fast-check';
import { inject } from 'vitest';
import { runs } from '../helpers/property.js';

fc.configureGlobal({ seed: inject('fcSeed'), ...runs(100) });
