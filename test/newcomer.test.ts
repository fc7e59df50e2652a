// A new team's path from the README, end to end, on a fresh schema in a scratch project:
// init, migrate dev as a role without CREATEDB (through shadowDatabaseUrl), generate,
// migrate deploy, verify (every tenant table probed) and the test fixtures, each step
// passing, and each mistake a user hit answered with its cause and its fix.
import { randomBytes } from 'node:crypto'
import { cp, mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { withClient } from '../src/database/admin.js'
import { withCredentials, withDatabase } from '../src/database/connection-url.js'
import { createTestDatabase, startTestServer } from '../src/testing/index.js'
import type { VerifyReport } from '../src/verify/report.js'
import { runCliCaptured } from './support/cli.js'

const server = inject('prismaTenancy')
const suffix = randomBytes(4).toString('hex')
const names = { database: `newcomer_${suffix}`, migration: `nc_migrator_${suffix}`, app: `nc_app_${suffix}`, admin: `nc_admin_${suffix}`, fixture: `nc_fixture_${suffix}` }
const tenantDefault = `@default(dbgenerated("current_setting('app.current_tenant'::text, true)")) @map("tenant_id")`

const schema = `datasource db {
  provider = "postgresql"
}

/// The tenant registry: shared, its id is every tenant table's tenantId.
model Organization {
  id        String     @id
  name      String
  users     User[]
}

/// A shared lookup table: the app role may read it, never write it.
model Country {
  code      String     @id
  name      String
  documents Document[]
}

model User {
  id           String       @id @default(uuid())
  tenantId     String       ${tenantDefault}
  email        String
  organization Organization @relation(fields: [tenantId], references: [id])
  documents    Document[]

  @@unique([tenantId, id])
  @@unique([tenantId, email])
}

model Document {
  id          String    @id @default(uuid())
  tenantId    String    ${tenantDefault}
  title       String
  authorId    String    @map("author_id")
  author      User      @relation(fields: [tenantId, authorId], references: [tenantId, id])
  countryCode String    @map("country_code")
  country     Country   @relation(fields: [countryCode], references: [code])
  comments    Comment[]

  @@unique([tenantId, id])
}

model Comment {
  id         String   @id @default(uuid())
  tenantId   String   ${tenantDefault}
  body       String
  documentId String   @map("document_id")
  document   Document @relation(fields: [tenantId, documentId], references: [tenantId, id])

  @@unique([tenantId, id])
}
`

let dir: string
let urls: { app: string; migration: string; shadow: string; admin: string }
let appPassword: string

async function writeConfig(datasource: { url: string; shadowDatabaseUrl?: string }): Promise<void> {
  await writeFile(
    join(dir, 'prisma.config.ts'),
    `import { defineConfig } from 'prisma/config'\nexport default defineConfig({\n  schema: 'prisma/schema.prisma',\n  migrations: { path: 'prisma/migrations' },\n  datasource: ${JSON.stringify(datasource)},\n})\n`,
  )
}

/** The CLI run in the scratch project, as `npx prisma-tenancy ...` there would run it. */
async function cli(...argv: string[]) {
  return runCliCaptured([...argv, '--config', join(dir, 'prisma.config.ts')])
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'prisma-tenancy-newcomer-'))
  // The project's own dependencies, as `npm install` gives them (prisma/config for the config file).
  await symlink(resolve('node_modules'), join(dir, 'node_modules'), 'dir')
  await cp('package.json', join(dir, 'package.json'))
  await mkdir(join(dir, 'prisma', 'migrations'), { recursive: true })
  await cp(join('prisma', 'migrations', 'migration_lock.toml'), join(dir, 'prisma', 'migrations', 'migration_lock.toml'))
  await writeFile(join(dir, 'prisma', 'schema.prisma'), schema)
})

afterAll(async () => {
  await withClient(server.adminUrl, async (client) => {
    for (const database of [names.database, `${names.database}_shadow`]) await client.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`)
    for (const role of [names.migration, names.app, names.admin, names.fixture]) {
      const { rowCount } = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])
      if (rowCount === 1) await client.query(`DROP OWNED BY ${role}; DROP ROLE ${role}`)
    }
  })
  await rm(dir, { recursive: true, force: true })
})

describe('a new app, from the README', () => {
  const initArgs = () => ['init', '--database-url', server.adminUrl, '--database', names.database, '--migration-role', names.migration, '--app-role', names.app, '--admin-role', names.admin]
  const roleExists = (role: string) => withClient(server.adminUrl, async (client) => (await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rowCount === 1)

  it('init --dry-run prints the SQL for the three roles, the grants verify needs and the URLs, and runs nothing', async () => {
    const result = await runCliCaptured([...initArgs(), '--dry-run'])
    expect(result.code).toBe(0)
    expect(result.stderr).toContain(`CREATE ROLE "${names.app}" LOGIN NOSUPERUSER NOBYPASSRLS`)
    expect(result.stderr).toContain(`CREATE ROLE "${names.admin}" LOGIN NOSUPERUSER BYPASSRLS`)
    expect(result.stderr).toContain(`GRANT "${names.app}" TO "${names.migration}";`)
    expect(result.stderr).toContain('shadowDatabaseUrl')
    expect(await roleExists(names.app)).toBe(false)
  })

  it('init creates the roles and databases, shows each password once, and a second run changes nothing', async () => {
    const first = await runCliCaptured([...initArgs(), '--json'])
    expect(first.code).toBe(0)
    const created = JSON.parse(first.stdout) as { roles: Array<{ kind: string; status: string; password: string | null }>; urls: typeof urls }
    expect(created.roles.map((role) => role.status)).toEqual(['created', 'created', 'created'])
    urls = created.urls
    appPassword = created.roles.find((role) => role.kind === 'app')!.password!
    const attributes = await withClient(server.adminUrl, async (client) =>
      (await client.query('SELECT rolname, rolsuper, rolbypassrls, rolcreatedb FROM pg_roles WHERE rolname = ANY($1) ORDER BY rolname', [[names.migration, names.app, names.admin]])).rows,
    )
    expect(attributes).toEqual([
      { rolname: names.admin, rolsuper: false, rolbypassrls: true, rolcreatedb: false },
      { rolname: names.app, rolsuper: false, rolbypassrls: false, rolcreatedb: false },
      { rolname: names.migration, rolsuper: false, rolbypassrls: false, rolcreatedb: false },
    ])
    const second = await runCliCaptured([...initArgs(), '--json'])
    expect(second.code).toBe(0)
    const again = JSON.parse(second.stdout) as { roles: Array<{ status: string; password: string | null }>; urls: typeof urls }
    expect(again.roles.map((role) => [role.status, role.password])).toEqual([['kept', null], ['kept', null], ['kept', null]])
    expect(again.urls.app).toContain(':<password>@')
    // The app role's password still works: the second run changed nothing.
    await withClient(urls.app, (client) => client.query('SELECT 1'))
  })

  it('init refuses to change a role it did not create', async () => {
    const result = await runCliCaptured(['init', '--database-url', server.adminUrl, '--database', names.database, '--migration-role', names.migration, '--app-role', 'postgres', '--admin-role', names.admin, '--json'])
    expect(result.code).toBe(2)
    const { error } = JSON.parse(result.stdout) as { error: { code: string; message: string; fix: string } }
    expect(error.code).toBe('ROLE_CONFLICT')
    expect(error.fix).toContain('--app-role')
  })

  it('init as a role that is not a superuser says which URL to use', async () => {
    const result = await runCliCaptured(['init', '--database-url', urls.migration, '--database', names.database, '--json'])
    expect(result.code).toBe(2)
    const { error } = JSON.parse(result.stdout) as { error: { code: string; message: string; fix: string } }
    expect(error.code).toBe('PERMISSION_DENIED')
    expect(error.message).toContain(`${names.migration} is not a superuser`)
    expect(error.fix).toContain('--database-url')
  })

  it('migrate dev as the migration role (no CREATEDB) without a shadow database names both fixes', async () => {
    await writeConfig({ url: urls.migration })
    const result = await cli('migrate', 'dev', '--name', 'init', '--json')
    expect(result.code).toBe(2)
    const { error } = JSON.parse(result.stdout) as { error: { code: string; message: string; fix: string } }
    expect(error.code).toBe('PERMISSION_DENIED')
    expect(error.message).toContain('permission denied to create database')
    expect(error.fix).toContain(`ALTER ROLE "${names.migration}" CREATEDB`)
    expect(error.fix).toContain('datasource.shadowDatabaseUrl')
    expect(result.stderr).not.toContain('External error')
  })

  it('migrate dev as the migration role passes through datasource.shadowDatabaseUrl, and again with leftovers in the shadow database', async () => {
    await writeConfig({ url: urls.migration, shadowDatabaseUrl: urls.shadow })
    const result = await cli('migrate', 'dev', '--name', 'init', '--json')
    expect(result.stderr).toContain('Created')
    expect(result.code).toBe(0)
    expect(JSON.parse(result.stdout)).toMatchObject({ applied: [expect.stringMatching(/_init$/)] })
    const again = await cli('migrate', 'dev', '--name', 'nothing')
    expect(again.code).toBe(0)
    expect(again.stderr).toContain('no migration created')
  })

  it('generate --app-role writes the policies and grants, and the CI gate passes with --strict', async () => {
    const result = await cli('generate', '--app-role', names.app, '--json')
    expect(result.code).toBe(0)
    expect(JSON.parse(result.stdout)).toMatchObject({ created: expect.stringMatching(/_rls$/), upToDate: true })
    expect((await cli('generate', '--check', '--strict')).code).toBe(0)
  })

  it('migrate deploy applies the policy migration', async () => {
    const result = await cli('migrate', 'deploy', '--json')
    expect(result.code).toBe(0)
    expect(JSON.parse(result.stdout)).toMatchObject({ applied: [expect.stringMatching(/_rls$/)] })
  })

  it('verify --role <app>, connected as the migration role, probes every tenant table and passes', async () => {
    const result = await cli('verify', '--role', names.app, '--json')
    const report = JSON.parse(result.stdout) as VerifyReport
    expect(report.results.filter((check) => check.status !== 'pass')).toEqual([])
    expect(report.probedTables.sort()).toEqual(['public.Comment', 'public.Document', 'public.User'])
    expect(result.code).toBe(0)
  })

  it('verify connected as the app role to an empty registry it cannot write fails, naming the fix, unless --no-probes', async () => {
    const result = await cli('verify', '--database-url', urls.app.replace(':<password>@', `:${appPassword}@`), '--json')
    expect(result.code).toBe(1)
    const report = JSON.parse(result.stdout) as VerifyReport
    expect(report.probedTables).toEqual([])
    const nothing = report.results.find((check) => check.check === 'nothing-probed')
    expect(nothing).toMatchObject({ status: 'fail' })
    expect(nothing?.fix).toContain(`GRANT ${names.app} TO <migration role>`)
    expect(result.stderr).toContain('0/3 tenant table(s) probed')
    expect((await cli('verify', '--database-url', urls.app.replace(':<password>@', `:${appPassword}@`), '--no-probes')).code).toBe(0)
  })

  it('the fixtures take the app role from the generated migration and test with production grants: the shared lookup is read-only', async () => {
    const testServer = await startTestServer({ cwd: dir, databaseUrl: server.adminUrl, appRole: { password: appPassword } })
    try {
      expect(testServer.appRole.name).toBe(names.app)
      const database = await createTestDatabase(testServer)
      try {
        await withClient(database.adminUrl, (client) =>
          client.query(`INSERT INTO "Organization" (id, name) VALUES ('acme', 'Acme'); INSERT INTO "Country" (code, name) VALUES ('nl', 'Netherlands')`),
        )
        await withClient(database.appUrl, async (client) => {
          expect((await client.query('SELECT code FROM "Country"')).rows).toEqual([{ code: 'nl' }])
          await expect(client.query(`INSERT INTO "Country" (code, name) VALUES ('de', 'Germany')`)).rejects.toMatchObject({ code: '42501' })
          await client.query('BEGIN')
          await client.query("SELECT set_config('app.current_tenant', 'acme', true)")
          await client.query(`INSERT INTO "User" (id, email) VALUES ('u1', 'a@acme.test')`)
          await client.query(`INSERT INTO "Document" (id, title, author_id, country_code) VALUES ('d1', 'Plan', 'u1', 'nl')`)
          await client.query('COMMIT')
          expect((await client.query('SELECT count(*)::int AS n FROM "Document"')).rows).toEqual([{ n: 0 }])
        })
      } finally {
        await database.drop()
      }
    } finally {
      await testServer.stop()
    }
  })

  it('the fixtures create the migration’s app role when it does not exist, and refuse clearly when the URL’s role cannot create roles', async () => {
    // Another project whose policies grant to a role nobody created yet.
    const other = await mkdtemp(join(tmpdir(), 'prisma-tenancy-newcomer-'))
    try {
      await cp(join(dir, 'prisma'), join(other, 'prisma'), { recursive: true })
      const rls = (await readdir(join(other, 'prisma', 'migrations'))).find((name) => name.endsWith('_rls'))!
      const script = join(other, 'prisma', 'migrations', rls, 'migration.sql')
      await writeFile(script, (await readFile(script, 'utf8')).replaceAll(names.app, names.fixture))
      // Deployed before the role exists, the generated migration's failure points at a command, not at the "Do not edit" file.
      const deployUrl = withDatabase(server.adminUrl, `${names.database}_deploy`)
      const failed = await runCliCaptured(['migrate', 'deploy', '--schema', join(other, 'prisma', 'schema.prisma'), '--migrations', join(other, 'prisma', 'migrations'), '--database-url', deployUrl])
      await withClient(server.adminUrl, (client) => client.query(`DROP DATABASE IF EXISTS ${names.database}_deploy WITH (FORCE)`))
      expect(failed.code).toBe(1)
      expect(failed.stderr).toContain(`role "${names.fixture}" does not exist`)
      expect(failed.stderr).toContain(`prisma-tenancy init --app-role ${names.fixture}`)
      expect(failed.stderr).not.toContain(`Fix ${rls}/migration.sql`)
      const refused = await startTestServer({ cwd: other, databaseUrl: urls.migration }).catch((error: unknown) => error)
      expect(refused).toMatchObject({ code: 'PERMISSION_DENIED' })
      expect((refused as Error).message).toContain('CREATEROLE')
      expect((refused as Error).message).toContain(`prisma-tenancy init --app-role ${names.fixture}`)
      const testServer = await startTestServer({ cwd: other, databaseUrl: server.adminUrl })
      try {
        expect(testServer.appRole.name).toBe(names.fixture)
        const database = await createTestDatabase(testServer)
        try {
          await withClient(database.appUrl, async (client) => {
            await expect(client.query(`INSERT INTO "Organization" (id, name) VALUES ('x', 'x')`)).rejects.toMatchObject({ code: '42501' })
          })
        } finally {
          await database.drop()
        }
      } finally {
        await testServer.stop()
      }
    } finally {
      await rm(other, { recursive: true, force: true })
    }
  })

  it('the fixtures never change an existing role: a wrong password is reported with what to pass', async () => {
    const outcome = await startTestServer({ cwd: dir, databaseUrl: server.adminUrl, appRole: { password: 'not-the-password' } }).catch((caught: unknown) => caught)
    if (outcome instanceof Error) {
      expect(outcome).toMatchObject({ code: 'PERMISSION_DENIED' })
      expect(outcome.message).toContain('appRole: {')
    } else {
      // A server that trusts local connections (the machine's, not the embedded one) accepts any password.
      await (outcome as { stop(): Promise<void> }).stop()
    }
    // Either way the role's own password still works: it was not changed.
    await withClient(withCredentials(withDatabase(server.adminUrl, names.database), names.app, appPassword), (client) => client.query('SELECT 1'))
  })
})
