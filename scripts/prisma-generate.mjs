// Runs `prisma generate` offline. Prisma 7's `prisma-client` generator needs no
// query engine, but the CLI still insists on locating a native schema engine,
// which it would otherwise try to download from a host this project cannot
// assume is reachable. Generation never calls that engine, so any existing
// file satisfies the check.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const placeholder = fileURLToPath(import.meta.url)
const result = spawnSync('npx', ['--no-install', 'prisma', 'generate', ...process.argv.slice(2)], {
  stdio: 'inherit',
  env: {
    ...process.env,
    PRISMA_SCHEMA_ENGINE_BINARY: process.env.PRISMA_SCHEMA_ENGINE_BINARY ?? placeholder,
    PRISMA_HIDE_UPDATE_MESSAGE: '1',
    CHECKPOINT_DISABLE: '1',
  },
})
process.exit(result.status ?? 1)
