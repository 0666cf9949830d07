// guestplane heads (= kiosk --config FILE): several guests on several heads.
import { loadHeadsConfig } from '../modes/heads-config.js';
import type { HeadManager } from '../modes/heads.js';
import type { HeadsInput } from '../modes/heads-input.js';
import { LoopStallMeter } from '../stats.js';
import { Options, SESSIONS, STATS, UsageError, chordsOption, inputOption } from './args.js';
import { openSession, type OnStart } from './common.js';
import type { CliLog } from './log.js';

/** Says when the seat goes and comes back, and how soon the screens were lit again (the Backend's events: after it stopped or relit them). */
function followSeat(mgr: HeadManager, log: (line: string) => void): void {
  mgr.backend.on('suspend', () => log('guestplane heads: the seat went to another session: not drawing until it is back'));
  mgr.backend.on('resume', ({ enabledAt }) => {
    const lit = mgr.status().filter((h) => h.state === 'up').map((h) => h.connector);
    log(`guestplane heads: the seat is back: ${[...new Set(lit)].join(', ') || 'no screen'} lit again (${(performance.now() - enabledAt).toFixed(1)} ms after the seat came back)`);
  });
}

/** One stats line per second over every head; stops with the returned function. */
function statsLines(mgr: HeadManager, format: 'text' | 'json', log: (line: string) => void): () => void {
  const last = new Map<string, number>();
  // One loop serves every head: a QEMU that held it would freeze the others' frames and input.
  const stalls = new LoopStallMeter();
  const started = Date.now();
  const timer = setInterval(() => {
    const rows = mgr.status().map((h) => {
      const s = mgr.output(h.connector)?.statsSnapshot();
      const fps = s ? s.framesPresented - (last.get(h.connector) ?? s.framesPresented) : 0;
      if (s) last.set(h.connector, s.framesPresented);
      return { head: h.index, guest: h.guest, connector: h.connector, state: h.state, fps, paths: s?.paths ?? {}, bytesCopied: s?.bytesCopied ?? 0, latencyP99Ms: s?.latencyMs.p99 ?? null, commits: s?.commits ?? 0 };
    });
    const stallMs = stalls.take();
    if (format === 'json') log(JSON.stringify({ heads: rows, t: (Date.now() - started) / 1000, stallMs }));
    else log(`guestplane heads: ${rows.map((r) => `${r.connector}/${r.guest} ${r.state} ${r.fps} fps`).join('  ')}  stall ${stallMs.toFixed(0)} ms`);
  }, 1000);
  return () => {
    clearInterval(timer);
    stalls.stop();
  };
}

export async function heads(o: Options, cli: CliLog, onStart?: OnStart): Promise<number> {
  const path = o.str('config');
  if (path === undefined || path === '') throw new UsageError('which heads? give --config FILE (a heads file: see the README)', o.cmd);
  const stats = o.oneOf('stats', STATS, 'text');
  const devices = inputOption(o);
  const chords = chordsOption(o);
  o.oneOf('session', SESSIONS, 'auto'); // before the file is read: every word of the command line first
  const config = loadHeadsConfig(path); // ConfigError names the field, the value and the fix
  if (o.str('device')) config.device = o.str('device')!;
  const log = (line: string) => cli.info(`guestplane heads: ${line}`);
  // The modes only after the options and the file passed: a bad one loads neither.
  const [{ runHeads }, { HeadsInput }] = await Promise.all([import('../modes/heads.js'), import('../modes/heads-input.js')]);
  const session = await openSession(o);
  let mgr: HeadManager;
  try {
    mgr = await runHeads(config, { session, log });
  } catch (e) {
    await session?.close();
    throw e;
  }
  if (session) {
    log(`on seat ${session.name} (devices through libseat)`);
    followSeat(mgr, (l) => cli.info(l));
  }
  let input: HeadsInput | null = null;
  if (devices !== false) {
    try {
      input = new HeadsInput(mgr, { devices, session, chords, quit: () => void stop('Ctrl+Alt+Q'), log });
    } catch (e) {
      cli.warn(`guestplane heads: no input to the guests: ${(e as Error).message}`);
    }
  }
  mgr.on('screen-up', (e) => log(`${e.connector} up (heads ${e.heads.join(', ')})`));
  mgr.on('screen-down', (e) => log(`${e.connector} down (heads ${e.heads.join(', ')})${e.reason ? `: ${e.reason}` : ''}`));
  mgr.on('output-error', (e) => cli.warn(`guestplane heads: ${e.connector}: ${e.cause}: ${e.message}`));
  for (const h of mgr.status()) log(`head ${h.index} (${h.guest}) on ${h.connector}: ${h.state}${h.reason ? ` (${h.reason})` : ''}`);
  const stopStats = stats === 'none' ? () => {} : statsLines(mgr, stats, (l) => cli.info(l));
  let resolveDone!: (c: number) => void;
  const done = new Promise<number>((r) => (resolveDone = r));
  let stopping = false;
  const stop = async (reason: string) => {
    if (stopping) return done;
    stopping = true;
    stopStats();
    input?.close();
    await mgr.close();
    await session?.close();
    log(`${reason}; screens restored`);
    resolveDone(0);
    return done;
  };
  onStart?.({ stop, done });
  return done;
}
