import { Worker, SHARE_ENV } from 'node:worker_threads'
import { createRequire } from 'node:module'
import { createWriteStream } from 'node:fs'
import { finished } from 'node:stream/promises'
import v8 from 'node:v8'
const pg = (await import('pg')).default
const { copyLines } = await import('./dist/tenants/copy-lines.js')
const m = () => { const u = process.memoryUsage(); const ns = v8.getHeapSpaceStatistics().find(s=>s.space_name==='new_space'); return `rss ${Math.round(u.rss/1048576)} heap ${Math.round(u.heapUsed/1048576)}/${Math.round(u.heapTotal/1048576)} new ${Math.round(ns.space_size/1048576)}` }
let peak = 0; const t = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss) }, 5)
const P = () => Math.round(peak/1048576)
console.log('main start', m())
const resolved = createRequire(import.meta.url).resolve('@prisma/config')
const young = Number(process.env.YOUNG ?? 0)
const w = new Worker(`const { parentPort, workerData } = require('node:worker_threads'); require(workerData.resolved).loadConfigFromFile({ configRoot: process.cwd() }).then((l) => parentPort.postMessage({ schema: l.config?.schema, url: l.config?.datasource?.url, path: l.resolvedPath }))`, { eval: true, env: SHARE_ENV, workerData: { resolved }, ...(young ? { resourceLimits: { maxYoungGenerationSizeMb: young } } : {}) })
const msg = await new Promise((res, rej) => { w.once('message', res); w.once('error', rej) })
console.log('got', msg, m(), 'peak', P())
await w.terminate()
console.log('after terminate', m(), 'peak', P())
const { parseDatamodel } = await import('./dist/policy/prisma-schema.js')
const { readFile } = await import('node:fs/promises'); const readSchemaFiles = async (p) => [{ path: p, content: await readFile(p, 'utf8') }]
parseDatamodel(await readSchemaFiles('prisma/schema.prisma'))
console.log('after parse', m(), 'peak', P())
const client = new pg.Client(process.argv[2]); await client.connect()
const out = createWriteStream('/tmp/big2.jsonl')
const n = await copyLines(client, `COPY (SELECT row_to_json(l)::text FROM (SELECT 'public.tasks' AS "table", row_to_json(r) AS "row" FROM (SELECT id, tenant_id, project_id, title, done::text FROM tasks WHERE tenant_id='big') r) l) TO STDOUT (FORMAT binary)`, out)
out.end(); await finished(out); clearInterval(t)
console.log(n, 'end', m(), 'peak', P())
await client.end()
