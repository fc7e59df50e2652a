export { runCli } from './program.js'
export type { CliIo } from './output.js'
