import type { Command } from 'commander'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { buildProgram } from '../src/cli/program.js'
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

describe('prisma-tenancy CLI messages', () => {
  it('prints its version on stdout with --version', async () => {
    const { version } = JSON.parse(await readFile('package.json', 'utf8')) as { version: string }
    const result = await runCliCaptured(['--version'])
    expect(result.code).toBe(0)
    expect(result.stdout.trim()).toBe(version)
  })

  it('with --json, prints a failure as { error: { code, message, fix } } on stdout, with the same exit code', async () => {
    const result = await runCliCaptured(['migrate', 'deploy', '--database-url', 'postgresql://postgres@127.0.0.1:1/app', '--json'])
    expect(result.code).toBe(2)
    const { error } = JSON.parse(result.stdout) as { error: { code: string; message: string; fix: string } }
    expect(error.code).toBe('DATABASE_UNREACHABLE')
    expect(error.message).toContain('Cannot connect to')
    expect(error.fix).toContain('Check that PostgreSQL is running')
    expect(result.stderr).toContain('error DATABASE_UNREACHABLE')
  })

  it('every command and flag a message in src quotes (`prisma-tenancy ...` or (prisma-tenancy ...)) exists in the CLI', async () => {
    const program = buildProgram({ stdout: () => undefined, stderr: () => undefined }, () => undefined)
    const sources = (await readdir('src', { recursive: true })).filter((file) => file.endsWith('.ts'))
    const mentions: string[] = []
    for (const file of sources) {
      const text = await readFile(join('src', file), 'utf8')
      for (const match of text.matchAll(/[`(]prisma-tenancy((?: [a-z][a-z-]*)+)((?: --[a-z-]+(?: <?[\w.-]+>?)?)*)/g)) mentions.push(`${file}:${match[0]}`)
    }
    expect(mentions.length).toBeGreaterThan(10)
    const problems: string[] = []
    for (const mention of mentions) {
      const [, words = '', flags = ''] = /prisma-tenancy((?: [a-z][a-z-]*)+)((?: --[a-z-]+(?: <?[\w.-]+>?)?)*)/.exec(mention) ?? []
      let command: Command = program
      for (const word of words.trim().split(' ')) {
        const sub = command.commands.find((candidate) => candidate.name() === word)
        if (sub === undefined) break
        command = sub
      }
      // Words after the command may be prose ("`prisma-tenancy generate` from the schema"): only the command must exist.
      if (command === program) problems.push(`${mention}: no command ${words.trim().split(' ')[0]}`)
      for (const flag of flags.match(/--[a-z-]+/g) ?? []) {
        if (!command.options.some((option) => option.long === flag || option.long === flag.replace(/^--no-/, '--'))) problems.push(`${mention}: ${command.name()} has no ${flag}`)
      }
    }
    expect(problems).toEqual([])
  })

  it('the verifier catalog names only real commands and flags in its fix texts', async () => {
    const program = buildProgram({ stdout: () => undefined, stderr: () => undefined }, () => undefined)
    const known = new Set(program.commands.flatMap((command) => [command.name(), ...command.commands.map((sub) => sub.name())]))
    const verifyFlags = new Set(program.commands.find((command) => command.name() === 'verify')!.options.map((option) => option.long))
    for (const file of ['src/verify/static-checks.ts', 'src/verify/probes.ts', 'src/verify/report.ts']) {
      const text = await readFile(file, 'utf8')
      for (const [, name = ''] of text.matchAll(/prisma-tenancy ([a-z-]+)/g)) expect(known, `${file} names prisma-tenancy ${name}`).toContain(name)
      // A flag right after `prisma-tenancy <command>` belongs to that command; any other flag is verify's own.
      const commandFlags = new Map<number, Set<string>>()
      const named = new RegExp(`(?:prisma-tenancy )?\\b(${program.commands.map((command) => command.name()).join('|')})((?: --[a-z][a-z-]+(?: [^\\s-][^\\s]*)?)+)`, 'g')
      for (const match of text.matchAll(named)) {
        const command = program.commands.find((candidate) => candidate.name() === match[1])
        const flags = new Set(command?.options.flatMap((option) => option.long ?? []) ?? [])
        for (const flag of (match[2] ?? '').matchAll(/--[a-z][a-z-]+/g)) commandFlags.set((match.index ?? 0) + match[0].indexOf(flag[0], (match[1] ?? '').length), flags)
      }
      for (const match of text.matchAll(/(?<![\w-])--[a-z][a-z-]+/g)) {
        const flag = match[0]
        if (['--schema', '--database-url', '--tenant-field'].includes(flag)) continue // shared options, checked below
        const flags = commandFlags.get(match.index ?? -1) ?? verifyFlags
        expect(flags.has(flag) || flags.has(flag.replace(/^--no-/, '--')), `${file} names ${flag}`).toBe(true)
      }
      expect(text).not.toMatch(/revoke \$\{role\}'s membership in \$\{relation\.owner\}/)
    }
    for (const flag of ['--schema', '--database-url', '--tenant-field']) expect(verifyFlags).toContain(flag)
  })
})
