// Renders benchmark metrics ({bench, path, metric, value, unit} objects) as one table per
// bench: a row per metric, a column per path. Text for the terminal, or Markdown for
// BENCHMARKS.md. Strings (errors, notes) go under the table, not into cells.

/** @typedef {{ bench: string, path: string, metric: string, value: number | string | null, unit: string }} Metric */

const DESCRIPTIONS = {
  guest_frames: 'guest frames flipped',
  presented: 'frames presented',
  missed_frames: 'guest frames never shown',
  expected: 'frames expected on screen',
  presented_vs_expected: 'presented / expected',
  bytes_copied_per_frame: 'CPU bytes copied per frame',
  imports_per_flip: 'imports per steady flip',
  test_only_per_flip: 'TEST_ONLY commits per flip',
  commits_per_guest_frame: 'commits per guest frame',
  commits_per_flip: 'commits per presented frame',
  failed_commits: 'failed commits',
  gles_compose_p50: 'GLES compose time p50',
  latency_p50: 'latency p50',
  latency_p95: 'latency p95',
  latency_p99: 'latency p99',
  latency_p50_refresh: 'latency p50',
  latency_p95_refresh: 'latency p95',
  latency_p99_refresh: 'latency p99',
  latency_over_1_refresh: 'frames later than 1 refresh',
  latency_samples: 'latency samples',
  cpu_per_frame: 'host CPU per presented frame',
  cpu_per_guest_frame: 'CPU per guest frame',
  windows: 'measurement windows',
  cpu_vs_floor: 'CPU per frame vs C floor',
  cpu_per_frame_excl_guest: 'same, minus the Node guest\'s own CPU',
  cpu_excl_guest_vs_floor: 'that vs C floor',
  cpu_load: 'CPU load (of one core)',
  latch_hits: 'late-latched commits on their vblank',
  latch_misses: 'late-latched commits a vblank late',
  rss_start: 'RSS at start',
  rss_end: 'RSS at end',
  fds_start: 'fds at start',
  fds_end: 'fds at end',
  threads_start: 'threads at start',
  threads_end: 'threads at end',
  busy_threads: 'threads that ran in the window',
  outputs: 'outputs (CRTCs)',
  switches: 'guest switches',
  frames: 'frames read and blitted',
  cpu_per_frame_read: 'CPU per frame (read + blit)',
  cpu_vs_direct: 'vs the direct mapping read',
  // qemu-dbus
  window: 'measurement window',
  updates_per_s: 'guest updates handled per second',
  presented_per_s: 'frames presented per second',
  dbus_scanout_calls: 'Scanout/ScanoutDMABUF calls',
  dbus_update_calls: 'Update/UpdateDMABUF calls',
  answered_shown: 'UpdateDMABUF answered: shown',
  answered_refused: 'UpdateDMABUF answered: refused',
  answered_superseded: 'UpdateDMABUF answered: superseded',
  answered_timeout: 'UpdateDMABUF answered: 1 s backstop',
  imports: 'imports',
  commits: 'commits',
  test_only_commits: 'TEST_ONLY commits',
  answer_p50: 'UpdateDMABUF round trip p50 (peer side)',
  answer_p99: 'UpdateDMABUF round trip p99 (peer side)',
  cpu_per_update: 'host CPU per guest update',
  qemu_setup: 'QEMU start to first frame',
  loop_stall_max_warmup: 'longest event-loop stall, warm-up',
  loop_stall_max_window: 'longest event-loop stall, window',
  qemu_cpu_per_update: 'QEMU\'s CPU per update',
  qemu_cpu_load: 'QEMU\'s CPU load (of one core)',
  dbus_bytes_in_per_frame: 'bytes over D-Bus to us per frame',
  dbus_bytes_out_per_frame_peer: 'bytes the peer sent per frame',
  peer_cpu_per_frame: 'the peer\'s (QEMU\'s) CPU per frame, its own process',
  peer_cpu_load: 'the peer\'s CPU load (of one core)',
  cpu_per_frame_direct: 'udmabuf direct: host CPU per presented frame',
  cpu_vs_udmabuf_direct: 'ours vs udmabuf direct',
};

const UNIT_LABEL = { count: '', B: 'B', ms: 'ms', refresh: 'refresh periods', x: '×', '%': '%', MiB: 'MiB' };

/** @param {number | string | null} v @param {string} unit */
export function formatValue(v, unit) {
  if (v === null || v === undefined) return 'n/a';
  if (typeof v === 'string') return v;
  if (!Number.isFinite(v)) return 'n/a';
  switch (unit) {
    case 'B':
      return Math.round(v).toLocaleString('en-US');
    case 'ms':
    case 'refresh':
    case 'x':
      return v.toFixed(2);
    case '%':
    case 'MiB':
    case '/s':
      return v.toFixed(1);
    default:
      return Number.isInteger(v) ? String(v) : v.toFixed(3);
  }
}

/** @param {Metric[]} metrics @returns {Map<string, Metric[]>} */
function byBench(metrics) {
  const m = new Map();
  for (const x of metrics) {
    if (!m.has(x.bench)) m.set(x.bench, []);
    m.get(x.bench).push(x);
  }
  return m;
}

/**
 * @param {Metric[]} metrics
 * @param {{ markdown?: boolean }} [opts]
 * @returns {string}
 */
export function renderTables(metrics, opts = {}) {
  const md = !!opts.markdown;
  const out = [];
  for (const [bench, rows] of byBench(metrics)) {
    if (bench === 'meta') continue;
    const paths = [...new Set(rows.map((r) => r.path))];
    const names = [];
    const units = new Map();
    const cell = new Map();
    const notes = [];
    for (const r of rows) {
      if (typeof r.value === 'string') {
        if (r.value) notes.push(`${r.path}: ${r.metric === 'note' ? '' : `${r.metric}: `}${r.value}`);
        continue;
      }
      if (!units.has(r.metric)) {
        names.push(r.metric);
        units.set(r.metric, r.unit);
      }
      cell.set(`${r.metric}\u0000${r.path}`, formatValue(r.value, r.unit));
    }
    const header = ['', ...paths];
    const body = names.map((n) => {
      const u = UNIT_LABEL[units.get(n)] ?? units.get(n);
      const label = `${DESCRIPTIONS[n] ?? n}${u ? ` (${u})` : ''}`;
      return [label, ...paths.map((p) => cell.get(`${n}\u0000${p}`) ?? '')];
    });
    out.push(md ? `### ${bench}\n` : `== ${bench} ==`);
    if (body.length) out.push(md ? markdownTable(header, body) : textTable(header, body));
    for (const n of notes) out.push(md ? `- ${n}` : `  * ${n}`);
    out.push('');
  }
  return out.join('\n');
}

/** @param {string[]} header @param {string[][]} body */
function textTable(header, body) {
  const widths = header.map((_, i) => Math.max(...[header, ...body].map((r) => r[i].length)));
  const line = (r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

/** @param {string[]} header @param {string[][]} body */
function markdownTable(header, body) {
  const esc = (s) => s.replace(/\|/g, '\\|');
  return [
    `| ${header.map(esc).join(' | ')} |`,
    `|${header.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`,
    ...body.map((r) => `| ${r.map(esc).join(' | ')} |`),
  ].join('\n');
}

/** The meta rows as "key: value" lines. @param {Metric[]} metrics */
export function renderMeta(metrics) {
  return metrics
    .filter((m) => m.bench === 'meta')
    .map((m) => `${m.metric}: ${formatValue(m.value, m.unit)}${m.unit && m.unit !== 'count' && typeof m.value === 'number' ? ` ${m.unit}` : ''}`)
    .join('\n');
}
