import { createWriteStream } from 'node:fs'
import { finished } from 'node:stream/promises'
import pg from 'pg'
import { copyLines } from './dist/tenants/copy-lines.js'
const m = () => { const u = process.memoryUsage(); return `rss ${Math.round(u.rss/1048576)} heap ${Math.round(u.heapUsed/1048576)}/${Math.round(u.heapTotal/1048576)} ext ${Math.round(u.external/1048576)} ab ${Math.round(u.arrayBuffers/1048576)}` }
const v8 = await import('node:v8')
const sp = () => v8.getHeapSpaceStatistics().map(s => `${s.space_name.replace('_space','')}:${Math.round(s.space_size/1048576)}`).join(' ')
const { resolveProject } = await import('./dist/config/project-config.js'); if (process.env.CFG) await resolveProject({})
console.log('start', m(), sp())
const client = new pg.Client(process.argv[2]); await client.connect()
console.log('connected', m())
let peak = 0; let peakSp = ''
const t = setInterval(() => { const r = process.memoryUsage().rss; if (r > peak) { peak = r; peakSp = m() + ' ' + sp() } }, 10)
const out = createWriteStream('/tmp/big2.jsonl')
const n = await copyLines(client, `COPY (SELECT row_to_json(l)::text FROM (SELECT 'public.tasks' AS "table", row_to_json(r) AS "row" FROM (SELECT id, tenant_id, project_id, title, done::text FROM tasks WHERE tenant_id='big') r) l) TO STDOUT (FORMAT binary)`, out)
out.end(); await finished(out); clearInterval(t)
console.log(n, 'end', m(), sp()); console.log('peak', Math.round(peak/1048576), peakSp)
await client.end()
