// Runs the example app:
//   DATABASE_URL=postgresql://app_user:...@127.0.0.1:5432/app PORT=3000 npx tsx examples/server.ts
// on a database migrated with prisma/migrations (`npx prisma-tenancy migrate deploy`), as the
// application role. Then open http://acme.localhost:3000/ for tenant acme.
import { serve } from '@hono/node-server'
import { databaseRegistry } from '../src/http/index.js'
import { createProjectsApp, createTenancyClient } from './projects-app.js'

const url = process.env.DATABASE_URL
if (url === undefined) {
  process.stderr.write('Set DATABASE_URL to the application role\'s connection string of a database migrated with prisma/migrations.\n')
  process.exit(2)
}
const port = Number(process.env.PORT ?? 3000)
const prisma = createTenancyClient(url)
const registry = databaseRegistry({ connectionString: url })
const server = serve({ fetch: createProjectsApp({ prisma, registry }).fetch, port, hostname: '127.0.0.1' }, () => {
  process.stderr.write(`Listening on http://acme.localhost:${port}/ (any <tenant>.localhost)\n`)
})

const stop = () => server.close(() => void Promise.allSettled([registry.close(), prisma.$disconnect()]))
process.once('SIGINT', stop)
process.once('SIGTERM', stop)
