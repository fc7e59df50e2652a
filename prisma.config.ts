import { defineConfig } from 'prisma/config'

// DATABASE_URL is optional here: `prisma generate` needs no database, and
// prisma-tenancy's own commands start an embedded PostgreSQL when it is unset.
export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: { url: process.env.DATABASE_URL ?? '' },
})
