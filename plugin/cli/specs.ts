// Each subcommand's options, apart from the subcommands themselves: main.ts checks the
// command line with these before it loads (dynamic import) the one subcommand run, so
// --help, --version and a usage error load no mode and no koffi.
import { SEAT_OPTIONS, type OptionSpec } from './args.js';

export const INFO_OPTIONS: OptionSpec = { device: { type: 'string', short: 'd' }, json: { type: 'boolean' }, 'all-modes': { type: 'boolean' }, 'qemu-dbus': { type: 'string' }, 'connect-timeout': { type: 'string' } };

export const KIOSK_OPTIONS: OptionSpec = {
  vfio: { type: 'string' },
  'vfio-fd': { type: 'string' },
  'capture-dir': { type: 'string' },
  config: { type: 'string' },
  udmabuf: { type: 'string' },
  'qemu-dbus': { type: 'string' },
  console: { type: 'string' },
  'connect-timeout': { type: 'string' },
  fps: { type: 'string' },
  'test-guest': { type: 'string' },
  device: { type: 'string', short: 'd' },
  connector: { type: 'string', short: 'c' },
  mode: { type: 'string', short: 'm' },
  fit: { type: 'string' },
  stats: { type: 'string' },
  touch: { type: 'string' },
  ...SEAT_OPTIONS,
};

export const HEADS_OPTIONS: OptionSpec = { config: { type: 'string' }, device: { type: 'string', short: 'd' }, stats: { type: 'string' }, ...SEAT_OPTIONS };

export const COMPOSITOR_OPTIONS: OptionSpec = {
  device: { type: 'string', short: 'd' },
  connector: { type: 'string', short: 'c' },
  mode: { type: 'string', short: 'm' },
  socket: { type: 'string' },
  fit: { type: 'string' },
  'no-lease': { type: 'boolean' },
  ...SEAT_OPTIONS,
};

export const WINDOW_OPTIONS: OptionSpec = {
  'qemu-dbus': { type: 'string' },
  console: { type: 'string' },
  udmabuf: { type: 'string' },
  fps: { type: 'string' },
  title: { type: 'string' },
  display: { type: 'string' },
  fit: { type: 'string' },
  stats: { type: 'string' },
  fullscreen: { type: 'boolean' },
  copy: { type: 'boolean' },
  touch: { type: 'string' },
  gles: { type: 'boolean' },
};
