import { Worker } from 'node:worker_threads'
import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
const wasm = createRequire(import.meta.url).resolve('@prisma/prisma-schema-wasm')
const params = JSON.stringify({ prismaSchema: [['schema.prisma', readFileSync('prisma/schema.prisma', 'utf8')]] })
const run = () => new Promise((res, rej) => { const w = new Worker(`const { parentPort, workerData } = require('node:worker_threads'); parentPort.postMessage(require(workerData.wasm).get_datamodel(workerData.params))`, { eval: true, workerData: { wasm, params } }); w.once('message', (m) => { w.terminate().then(() => res(m)) }); w.once('error', rej) })
for (let i = 0; i < 3; i++) { const t = performance.now(); await run(); console.log('worker', Math.round(performance.now() - t)) }
const w = createRequire(import.meta.url)('@prisma/prisma-schema-wasm')
for (let i = 0; i < 3; i++) { const t = performance.now(); w.get_datamodel(params); console.log('inproc', Math.round(performance.now() - t)) }
