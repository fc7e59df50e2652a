import { existsSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { withClient } from '../src/database/admin.js'
import { citusAvailable, citusInstallScript, startCitusCluster, type CitusCluster } from '../src/testing/citus-cluster.js'

const citus = await citusAvailable()
if (!citus.available) console.warn(`test/citus-cluster.test.ts skipped: ${citus.reason} (script: ${citusInstallScript})`)

describe.skipIf(!citus.available)('the citus fixture provider: a coordinator and two workers on free ports', () => {
  let cluster: CitusCluster

  beforeAll(async () => {
    cluster = await startCitusCluster()
  })
  afterAll(() => cluster?.stop())

  it('registers the coordinator and both workers in its postgres database', async () => {
    const nodes = await withClient(cluster.adminUrl, async (client) => (await client.query<{ groupid: number; nodeport: number }>('SELECT groupid, nodeport FROM pg_dist_node ORDER BY groupid')).rows)
    expect(nodes).toEqual([
      { groupid: 0, nodeport: cluster.coordinator.port },
      ...cluster.workers.map((worker, index) => ({ groupid: index + 1, nodeport: worker.port })),
    ])
    expect(new Set([cluster.coordinator.port, ...cluster.workers.map((worker) => worker.port)]).size).toBe(3)
  })

  it('makes databases whose distributed tables have shards on both workers, and drops them on every node', async () => {
    const url = await cluster.createDatabase('citus_fixture_probe')
    const ports = await withClient(url, async (client) => {
      await client.query('CREATE TABLE probe (tenant_id text, id int, PRIMARY KEY (tenant_id, id))')
      await client.query("SELECT create_distributed_table('probe', 'tenant_id')")
      await client.query("INSERT INTO probe SELECT 't' || n, n FROM generate_series(1, 50) n")
      const { rows } = await client.query<{ nodeport: number }>("SELECT DISTINCT nodeport FROM citus_shards WHERE table_name = 'probe'::regclass ORDER BY nodeport")
      return rows.map((row) => row.nodeport)
    })
    expect(ports).toEqual(cluster.workers.map((worker) => worker.port).sort((a, b) => a - b))
    await cluster.dropDatabase('citus_fixture_probe')
    for (const node of [cluster.coordinator, ...cluster.workers]) {
      const left = await withClient(node.adminUrl, async (client) => (await client.query("SELECT 1 FROM pg_database WHERE datname = 'citus_fixture_probe'")).rowCount)
      expect(left).toBe(0)
    }
  })

  it('propagates a role created on the coordinator to every worker', async () => {
    const role = `citus_probe_${process.pid}`
    await withClient(cluster.adminUrl, (client) => client.query(`CREATE ROLE ${role} LOGIN`))
    try {
      for (const worker of cluster.workers) {
        const found = await withClient(worker.adminUrl, async (client) => (await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rowCount)
        expect(found).toBe(1)
      }
    } finally {
      await withClient(cluster.adminUrl, (client) => client.query(`DROP ROLE ${role}`))
    }
  })

  it('stops every node and removes their data directories', async () => {
    const nodes = [cluster.coordinator, ...cluster.workers]
    await cluster.stop()
    for (const node of nodes) {
      expect(existsSync(node.dataDir)).toBe(false)
      await expect(withClient(node.adminUrl, (client) => client.query('SELECT 1'))).rejects.toMatchObject({ code: 'DATABASE_UNREACHABLE' })
    }
  })
})
