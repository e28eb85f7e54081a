/** `dre/sys`: the spec's System Container API (section 1.3). Filled by issue 3. */
export * from './common.js';
