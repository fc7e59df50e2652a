const m = () => { const u = process.memoryUsage(); return `rss ${Math.round(u.rss/1048576)} heap ${Math.round(u.heapUsed/1048576)}/${Math.round(u.heapTotal/1048576)} ext ${Math.round(u.external/1048576)} ab ${Math.round(u.arrayBuffers/1048576)}` }
console.log('start', m())
const { resolveProject, readSchemaFiles } = await import('./dist/config/project-config.js'); console.log('import project-config', m())
const p = await resolveProject({}); console.log('resolveProject', m())
const { parseDatamodel } = await import('./dist/policy/prisma-schema.js'); console.log('import prisma-schema', m())
const d = parseDatamodel(await readSchemaFiles(p.schemaPath)); console.log('parse', m())
const { classifyModels } = await import('./dist/policy/classify-models.js'); console.log('import classify', m())
const {withClient} = await import('./dist/database/admin.js'); console.log('import admin', m())
globalThis.gc?.(); console.log('gc', m())
