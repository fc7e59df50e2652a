import { benchRoles, createRoles, createBenchDatabase, createSignedBenchDatabase, dropRoles } from '../scripts/bench/database.js'
import { seedOperationsData } from '../scripts/bench/fixtures.js'
import { measureInterleaved } from '../scripts/bench/measure.js'
import { openWireFloor } from '../scripts/bench/wire-floor.js'
const adminUrl = 'postgresql://postgres@127.0.0.1:5432/postgres'
const roles = benchRoles()
await createRoles(adminUrl, roles)
const database = await createBenchDatabase(adminUrl, roles)
const tenants = await seedOperationsData(database.adminUrl, { tenants: 10, projects: 4, tasksPerProject: 100 })
const signed = await createSignedBenchDatabase(adminUrl, roles, database)
const wire = await openWireFloor(database, signed, tenants)
const pick = new Map([...wire.operations].filter(([name]) => name.includes('policy')))
const summaries = await measureInterleaved(pick, { clients: 1, rounds: Number(process.argv[2] ?? 20), warmupOps: 1000, opsPerClient: 200 })
for (const [name, s] of summaries) console.log(name, JSON.stringify(s))
await wire.close(); await signed.drop(); await database.drop(); await dropRoles(adminUrl, roles)
