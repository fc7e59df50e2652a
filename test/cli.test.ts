import { describe, expect, it } from 'vitest'
import { runCliCaptured } from './support/cli.js'
import { useTestDatabase } from '../src/testing/index.js'

const db = await useTestDatabase()

describe('prisma-tenancy CLI', () => {
  it('prints machine output on stdout only with --json, and human text on stderr', async () => {
    const result = await runCliCaptured(['migrate', 'deploy', '--database-url', db.adminUrl, '--json'])
    expect(result.code).toBe(0)
    expect(JSON.parse(result.stdout)).toMatchObject({ applied: [] })
    expect(result.stderr).toContain('No pending migrations')
  })

  it('keeps stdout empty without --json', async () => {
    const result = await runCliCaptured(['migrate', 'status', '--database-url', db.adminUrl])
    expect(result.code).toBe(0)
    expect(result.stdout).toBe('')
    expect(result.stderr).toContain('up to date')
  })

  it('exits 2 with the error code and the fix when the database cannot be reached', async () => {
    const result = await runCliCaptured(['migrate', 'deploy', '--database-url', 'postgresql://postgres@127.0.0.1:1/app'])
    expect(result.code).toBe(2)
    expect(result.stderr).toContain('DATABASE_UNREACHABLE')
    expect(result.stderr).toContain('Check that PostgreSQL is running')
  })

  it('exits 2 when a URL is not a PostgreSQL URL', async () => {
    const result = await runCliCaptured(['migrate', 'deploy', '--database-url', 'mysql://root@localhost/app'])
    expect(result.code).toBe(2)
    expect(result.stderr).toContain('CONFIG_INVALID')
  })

  it('exits 2 and shows usage for an unknown command', async () => {
    const result = await runCliCaptured(['frobnicate'])
    expect(result.code).toBe(2)
    expect(result.stderr).toContain('Usage')
  })

  it('exits 2 when migrate dev is missing its --name', async () => {
    const result = await runCliCaptured(['migrate', 'dev', '--database-url', db.adminUrl])
    expect(result.code).toBe(2)
    expect(result.stderr).toContain('--name')
  })
})
