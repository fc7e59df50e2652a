import { readFile, writeFile, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import pg from 'pg'
import { describe, expect, it, onTestFinished } from 'vitest'
import { dropDatabase, withClient } from '../src/database/admin.js'
import { withDatabase } from '../src/database/connection-url.js'
import { isTenancyError } from '../src/errors.js'
import { markRolledBack, migrateDeploy, migrateDev, migrateStatus } from '../src/migrate/migrate.js'
import { useTestDatabase } from '../src/testing/index.js'
import { copyExampleProject } from './support/example-project.js'
import { createHash } from 'node:crypto'

const db = await useTestDatabase()

/** The URL of a database that does not exist yet (migrate creates it), dropped when the test ends. */
function freshDatabase(name: string): string {
  const database = `${db.name}_${name}`
  onTestFinished(() => dropDatabase(db.adminUrl, database))
  return withDatabase(db.adminUrl, database)
}

describe('migrate deploy', () => {
  it('records applied migrations with the checksum scheme prisma migrate uses (sha256 of migration.sql)', async () => {
    await withClient(db.adminUrl, async (client) => {
      const { rows } = await client.query<{ migration_name: string; checksum: string; finished_at: Date | null }>(
        'SELECT migration_name, checksum, finished_at FROM _prisma_migrations ORDER BY migration_name',
      )
      expect(rows.length).toBeGreaterThan(0)
      for (const row of rows) {
        const script = await readFile(join('prisma/migrations', row.migration_name, 'migration.sql'))
        expect(row.checksum).toBe(createHash('sha256').update(script).digest('hex'))
        expect(row.finished_at).not.toBeNull()
      }
    })
  })

  it('is a no-op when every migration is applied', async () => {
    const result = await migrateDeploy({ databaseUrl: db.adminUrl })
    expect(result.applied).toEqual([])
  })

  it('leaves a history that the engine diagnoses as up to date', async () => {
    const status = await migrateStatus({ databaseUrl: db.adminUrl })
    expect(status.upToDate).toBe(true)
    expect(status.diagnosis.history).toBeNull()
  })

  it('records a migration with broken SQL as failed, keeps none of its statements, and applies nothing after it', async () => {
    const { dir } = await copyExampleProject()
    const migrations = join(dir, 'prisma', 'migrations')
    await mkdir(join(migrations, '29990101000000_broken'))
    await writeFile(join(migrations, '29990101000000_broken', 'migration.sql'), 'CREATE TABLE ok_table (id int);\nCREATE TABLE broken (id nosuchtype);\n')
    await mkdir(join(migrations, '29990102000000_after'))
    await writeFile(join(migrations, '29990102000000_after', 'migration.sql'), 'CREATE TABLE after_table (id int);\n')
    const url = freshDatabase('broken')
    const error = await migrateDeploy({ cwd: dir, databaseUrl: url }).catch((caught: unknown) => caught)
    expect(isTenancyError(error, 'MIGRATION_FAILED')).toBe(true)
    expect((error as Error).message).toContain('29990101000000_broken')
    await withClient(url, async (client) => {
      const failed = await client.query(`SELECT finished_at, rolled_back_at FROM _prisma_migrations WHERE migration_name = '29990101000000_broken'`)
      expect(failed.rows).toEqual([{ finished_at: null, rolled_back_at: null }])
      const tables = await client.query(`SELECT to_regclass('ok_table') AS ok, to_regclass('after_table') AS after`)
      expect(tables.rows).toEqual([{ ok: null, after: null }])
    })
    const status = await migrateStatus({ cwd: dir, databaseUrl: url })
    expect(status.diagnosis.failedMigrationNames).toEqual(['29990101000000_broken'])
  })

  it('fails with DATABASE_UNREACHABLE when nothing listens at the URL', async () => {
    const error = await migrateDeploy({ databaseUrl: 'postgresql://postgres@127.0.0.1:1/app' }).catch((caught: unknown) => caught)
    expect(isTenancyError(error, 'DATABASE_UNREACHABLE')).toBe(true)
  })

  it('does not create a database that migrate status is pointed at by mistake', async () => {
    const url = freshDatabase('typo')
    const error = await migrateStatus({ databaseUrl: url }).catch((caught: unknown) => caught)
    expect(isTenancyError(error, 'DATABASE_UNREACHABLE')).toBe(true)
    expect(await withClient(db.adminUrl, async (client) => (await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [`${db.name}_typo`])).rowCount)).toBe(0)
  })

  it('refuses to mark a migration rolled back that has no folder', async () => {
    const error = await markRolledBack({ databaseUrl: db.adminUrl, migration: '20990101000000_nope' }).catch((caught: unknown) => caught)
    expect(isTenancyError(error, 'MIGRATION_NAME_INVALID')).toBe(true)
  })

  it('fails with SCHEMA_NOT_FOUND naming the path when the schema file is missing', async () => {
    const error = await migrateDeploy({ databaseUrl: db.adminUrl, schema: 'prisma/nope.prisma' }).catch((caught: unknown) => caught)
    expect(isTenancyError(error, 'SCHEMA_NOT_FOUND')).toBe(true)
    expect((error as Error).message).toContain('nope.prisma')
  })

  it('fails with DATABASE_URL_MISSING when no URL is configured anywhere', async () => {
    const saved = process.env.DATABASE_URL
    delete process.env.DATABASE_URL
    try {
      const { dir } = await copyExampleProject()
      const error = await migrateDeploy({ cwd: dir }).catch((caught: unknown) => caught)
      expect(isTenancyError(error, 'DATABASE_URL_MISSING')).toBe(true)
    } finally {
      if (saved !== undefined) process.env.DATABASE_URL = saved
    }
  })
})

describe('migrate dev', () => {
  it('writes a migration for a new model, applies it, and writes nothing when run again', async () => {
    const { dir } = await copyExampleProject()
    const schemaPath = join(dir, 'prisma', 'schema.prisma')
    await writeFile(schemaPath, `${await readFile(schemaPath, 'utf8')}\nmodel Label {\n  id   Int    @id @default(autoincrement())\n  name String\n}\n`)
    const url = freshDatabase('dev')
    const first = await migrateDev({ cwd: dir, databaseUrl: url, name: 'add label' })
    expect(first.created).toMatch(/^\d{14}_add_label$/)
    const script = await readFile(join(dir, 'prisma', 'migrations', first.created!, 'migration.sql'), 'utf8')
    expect(script).toContain('CREATE TABLE "Label"')
    expect(script).not.toContain('CREATE TABLE "Project"')
    const second = await migrateDev({ cwd: dir, databaseUrl: url, name: 'again' })
    expect(second.created).toBeNull()
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    const { rows } = await client.query(`SELECT count(*)::int AS n FROM "Label"`)
    await client.end()
    expect(rows[0].n).toBe(0)
  })

  it('refuses a name with no letters or digits', async () => {
    const error = await migrateDev({ databaseUrl: db.adminUrl, name: ';--' }).catch((caught: unknown) => caught)
    expect(isTenancyError(error, 'MIGRATION_NAME_INVALID')).toBe(true)
  })
})
