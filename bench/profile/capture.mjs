// `node --import tsx --import ./bench/profile/capture.mjs …`: registers a loader hook after
// tsx's, so it sees the JavaScript V8 actually runs (with tsx's inline source map) and saves
// it to $BENCH_CAPTURE_DIR. bench/profile.ts maps .cpuprofile positions back to .ts lines
// with it. Plain .mjs: it must load before any TypeScript support exists.
import { register } from 'node:module'

if (process.env.BENCH_CAPTURE_DIR) {
  register('./capture-hooks.mjs', import.meta.url, { data: { dir: process.env.BENCH_CAPTURE_DIR } })
}
