import { contenderLabel, type Report } from './report.js'
import type { Result } from './results.js'
import { wireFloor } from './wire-floor.js'

/** Contenders of one workload and client count, every one divided by the same baseline. */
interface Group {
  workload: string
  clients: number
  baseline: string
  rows: Result[]
}

/**
 * Groups that compare contenders: two or more rows over one baseline.
 * The migration rows divide each reference by its own smallest tenant count,
 * so side by side their bars would compare nothing.
 */
function comparableGroups(results: readonly Result[]): Group[] {
  const groups = new Map<string, Group>()
  for (const r of results) {
    const key = `${r.workload}\u0000${r.clients}`
    const group = groups.get(key) ?? { workload: r.workload, clients: r.clients, baseline: r.baseline, rows: [] }
    groups.set(key, group)
    group.rows.push(r)
  }
  return [...groups.values()].filter((g) => g.rows.length > 1 && g.rows.every((r) => r.baseline === g.baseline && Number.isFinite(r.ratio)))
}

const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;')
const px = (value: number) => value.toFixed(1)
const times = (value: number) => `${value.toFixed(2)}×`

const baselineColour = '#9e9e9e'
const plainVariantColour = '#cfcfcf'
const tenancyColour = '#1565c0'
const tenancyVariantColour = '#64b5f6'
const peerColours = ['#ef6c00', '#6a1b9a', '#2e7d32', '#ad1457', '#00838f', '#5d4037', '#827717', '#283593']
/** Bars are cut at this ratio so that a 3× peer does not squeeze every 1.2× into a sliver; the label keeps the value. */
const maxScale = 4

const layout = { width: 1000, labelWidth: 400, valueWidth: 170, margin: 16, title: 74, heading: 24, bar: 14, gap: 4, groupGap: 14 }

/**
 * The run's ratios as an SVG: one block per workload and client count,
 * contenders side by side as bars of median latency over the baseline's
 * (lower is better), the baseline at 1×, throughput ratios in the labels at
 * more than one client, and the wire floor marked on findUnique at 1 client.
 * Output depends on the report alone, so a results JSON always draws the
 * same file.
 */
export function renderChart(report: Report): string {
  const groups = comparableGroups(report.results)
  const floor = wireFloor(report.results)
  const peers = [...new Set(report.results.filter((r) => !/^(plain-prisma|prisma-tenancy)/.test(r.contender)).map((r) => r.contender))]
  // Plain Prisma keeps the baseline's grey where the bare driver is the baseline, and prisma-tenancy
  // its blue in every block; their variants (signed, on a replica, on Citus) take a lighter shade of it.
  const colour = (r: Result) => {
    if (r.is_baseline || r.contender === 'plain-prisma') return baselineColour
    if (r.contender === 'prisma-tenancy') return tenancyColour
    if (r.contender.startsWith('plain-prisma')) return plainVariantColour
    if (r.contender.startsWith('prisma-tenancy')) return tenancyVariantColour
    return peerColours[peers.indexOf(r.contender) % peerColours.length]!
  }
  const largest = Math.max(1, floor ?? 1, ...groups.flatMap((g) => g.rows.map((r) => r.ratio)))
  const scaleMax = Math.min(maxScale, Math.ceil(largest * 2) / 2)
  const { width, labelWidth, valueWidth, margin, title, heading, bar, gap, groupGap } = layout
  const x0 = margin + labelWidth
  const plotWidth = width - x0 - valueWidth - margin
  const x = (ratio: number) => x0 + (Math.min(ratio, scaleMax) / scaleMax) * plotWidth
  const ticks = Array.from({ length: Math.round(scaleMax * 2) + 1 }, (_, i) => i / 2)

  const body: string[] = []
  let y = margin + title
  for (const group of groups) {
    const top = y
    body.push(`<text x="${margin}" y="${px(y + 15)}" class="heading">${escape(`${group.workload}, ${group.clients} client${group.clients === 1 ? '' : 's'}`)}<tspan class="note"> ÷ ${escape(group.baseline)}</tspan></text>`)
    y += heading
    for (const r of group.rows) {
      const cut = r.ratio > scaleMax
      const value = group.clients > 1 ? `${times(r.ratio)}  ops/s ${times(r.throughput_ratio)}` : times(r.ratio)
      body.push(
        `<text x="${px(x0 - 6)}" y="${px(y + bar - 3)}" class="label">${escape(contenderLabel(r))}</text>`,
        `<rect x="${px(x0)}" y="${px(y)}" width="${px(x(r.ratio) - x0)}" height="${bar}" fill="${colour(r)}"/>`,
        // In a column of their own: no marker line runs through a value.
        `<text x="${px(x0 + plotWidth + 8)}" y="${px(y + bar - 3)}" class="value">${cut ? '▸ ' : ''}${value}</text>`,
      )
      y += bar + gap
    }
    const bottom = y - gap
    body.push(`<line x1="${px(x(1))}" y1="${px(top + heading - 2)}" x2="${px(x(1))}" y2="${px(bottom + 2)}" class="one"/>`)
    if (floor !== undefined && group.workload === 'findUnique' && group.clients === 1) {
      body.push(
        `<line x1="${px(x(floor))}" y1="${px(top + heading - 2)}" x2="${px(x(floor))}" y2="${px(bottom + 2)}" class="floor"/>`,
        `<text x="${px(x(floor) + 3)}" y="${px(top + 15)}" class="floor-label">wire floor ${times(floor)}</text>`,
      )
    }
    y += groupGap
  }
  const height = y + margin
  const m = report.machine
  const grid = ticks.map(
    (t) =>
      `<line x1="${px(x(t))}" y1="${px(margin + title - 6)}" x2="${px(x(t))}" y2="${px(height - margin)}" class="grid"/><text x="${px(x(t))}" y="${px(margin + title - 10)}" class="tick">${t}×</text>`,
  )
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${px(height)}" viewBox="0 0 ${width} ${px(height)}" font-family="system-ui, -apple-system, 'Segoe UI', sans-serif" font-size="12">`,
    '<style>.heading{font-weight:600}.note{font-weight:400;fill:#616161}.label{text-anchor:end}.value{fill:#212121}.tick{text-anchor:middle;fill:#757575;font-size:11px}.grid{stroke:#eeeeee}.one{stroke:#424242;stroke-width:1}.floor{stroke:#c62828;stroke-width:1.5;stroke-dasharray:4 3}.floor-label{fill:#c62828;font-size:11px}</style>',
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="${margin}" y="${margin + 12}" font-size="15" font-weight="600">prisma-tenancy bench: median latency ÷ the baseline's (lower is better)</text>`,
    `<text x="${margin}" y="${margin + 30}" class="note">${escape(`${m.mode} run, ${m.cpus} × ${m.cpu_model}, ${m.memory_gb} GB, Node ${m.node}, Prisma ${m.prisma}, PostgreSQL ${m.postgres} (${m.server}), load ${m.load_average}`)}</text>`,
    `<text x="${margin}" y="${margin + 46}" class="note">At more than 1 client the label adds throughput ÷ the baseline's (higher is better). Bars stop at ${maxScale}× (▸).${floor === undefined ? '' : ' Dashed red: the wire floor.'}</text>`,
    ...grid,
    ...body,
    '</svg>',
    '',
  ].join('\n')
}
