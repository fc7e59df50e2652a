import v8 from 'node:v8'
const m = (l) => { const u = process.memoryUsage(); const ns = v8.getHeapSpaceStatistics().find(s=>s.space_name==='new_space'); console.log(l.padEnd(28), `rss ${Math.round(u.rss/1048576)} used ${Math.round(u.heapUsed/1048576)} new ${Math.round(ns.space_size/1048576)} ext ${Math.round(u.external/1048576)}`) }
m('start')
for (const spec of process.argv.slice(2)) { await import(spec.startsWith('.') ? new URL(spec, import.meta.url).href : spec); m(spec) }
