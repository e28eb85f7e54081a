/** `dre/daware`: the D-Aware library (spec chapter 2). Filled by issue 6. */
export {};
