// The command line's own checks: these run before any device is touched, so they are
// testable on any machine. (Running the commands is tested in the rig: kiosk.test.ts.)
import { describe, it, expect } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { main, parseMode, parseSize } from '../../plugin/cli.js';
import { clientEnv, exitStatus } from '../../plugin/cli/compositor.js';
import { splitCommand } from '../../plugin/cli/args.js';
import { logLevel } from '../../plugin/cli/log.js';
import * as libc from '../../ffi/libc.js';

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { stdout: (s) => (out += s), stderr: (s) => (err += s) });
  return { code, out, err };
}

describe('guestplane command line', () => {
  it('parses modes and refuses what is not WxH[@Hz]', () => {
    expect(parseMode('1920x1080@60')).toEqual({ width: 1920, height: 1080, refresh: 60 });
    expect(parseMode('1024x768')).toEqual({ width: 1024, height: 768 });
    expect(parseMode('2560x1440@59.95')).toEqual({ width: 2560, height: 1440, refresh: 59.95 });
    for (const bad of ['1920', '1920x', 'x1080', '1920*1080', '-1x5', 'ax1@60']) expect(() => parseMode(bad)).toThrow(/not WxH/);
    expect(() => parseMode('1920x1080@')).toThrow(/'' is not a refresh rate in Hz/);
    expect(() => parseMode('1920x1080@abc')).toThrow(/'abc' is not a refresh rate in Hz/);
  });

  it('sizes and modes: the message says what is wrong (zero, out of range, a rate where none is taken)', () => {
    expect(() => parseMode('0x0')).toThrow(/'0x0': a zero width/);
    expect(() => parseMode('640x0')).toThrow(/'640x0': a zero height/);
    expect(() => parseMode('99999x480')).toThrow(/99999 is out of range \(1 to 16384/);
    expect(() => parseMode('640x480@0')).toThrow(/refresh rate 0 is out of range/);
    expect(() => parseMode('640x480@5000')).toThrow(/refresh rate 5000 is out of range/);
    expect(parseSize('16384x1')).toEqual({ width: 16384, height: 1 });
    expect(() => parseSize('640x480@30', '--udmabuf')).toThrow(/--udmabuf '640x480@30': a rate is not accepted here; give WxH \(the test guest's rate is --fps\)/);
  });

  it('usage errors are one line and a pointer to the subcommand\'s help, exit 2', async () => {
    for (const [args, first, help] of [
      [['kiosk', '--udmabuf', '0x0'], "guestplane kiosk: --udmabuf '0x0': a zero width; give the size in pixels, e.g. 1920x1080", 'kiosk'],
      [['kiosk', '--udmabuf', '640x480@30'], "guestplane kiosk: --udmabuf '640x480@30': a rate is not accepted here; give WxH (the test guest's rate is --fps)", 'kiosk'],
      [['compositor', 'foot'], "guestplane compositor: 'foot': the command to run goes after '--' (guestplane compositor [options] -- foot ARGS…)", 'compositor'],
      [['compositor', '--'], "guestplane compositor: nothing after '--': give the application to run, e.g. guestplane compositor -- foot", 'compositor'],
      [['heads'], 'guestplane heads: which heads? give --config FILE (a heads file: see the README)', 'heads'],
      [['window', '--qemu-dbus', 'session', '--touch', 'fingers'], "guestplane window: --touch 'fingers' is not one of pointer, multitouch", 'window'],
      [['window', '--udmabuf', '640x480', '--touch', 'multitouch'], 'guestplane window: --touch says where a QEMU guest takes touch; use it with --qemu-dbus (the test guest takes no input)', 'window'],
      [['info', '--bogus'], "guestplane info: Unknown option '--bogus'", 'info'],
      [['window', '--udmabuf', '640x480', '--copy', '--gles'], 'guestplane window: --copy and --gles each force one path; give one of them', 'window'],
      [['frob'], "guestplane: unknown command 'frob': the commands are info, kiosk, heads, compositor and window", ''],
      [[], 'guestplane: no command given: guestplane info|kiosk|heads|compositor|window', ''],
    ] as [string[], string, string][]) {
      const r = await run(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.out).toBe('');
      expect(r.err.split('\n'), args.join(' ')).toEqual([first, `see 'guestplane${help ? ` ${help}` : ''} --help'`, '']);
    }
  });

  it('--help per subcommand, help CMD, the overview, and --version from package.json', async () => {
    const version = (JSON.parse(readFileSync(join(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string }).version;
    expect(await run(['--version'])).toEqual({ code: 0, out: `guestplane ${version}\n`, err: '' });
    for (const cmd of ['info', 'kiosk', 'heads', 'compositor']) {
      const r = await run([cmd, '--help']);
      expect(r.code).toBe(0);
      expect(r.out.split('\n')[0]).toMatch(new RegExp(`^usage: guestplane ${cmd} `));
      expect((await run(['help', cmd])).out).toBe(r.out);
    }
    expect((await run(['compositor', '--help'])).out).toMatch(/-- CMD \[ARGS…\]/);
    expect((await run(['kiosk', '--help'])).out).toMatch(/--chords LIST/);
    expect((await run(['window', '--help'])).out).toMatch(/--touch MODE +pointer \(default/);
    const top = await run(['--help']);
    expect(top.out).toMatch(/'guestplane <command> --help'/);
    expect(top.out).not.toMatch(/--capture-dir/);
  });

  it('--log-level and GUESTPLANE_LOG_LEVEL: the option wins, a wrong value names where it came from', async () => {
    expect(logLevel(undefined, undefined)).toBe('info');
    expect(logLevel(undefined, 'debug')).toBe('debug');
    expect(logLevel('warn', 'debug')).toBe('warn');
    expect(() => logLevel(undefined, 'loud')).toThrow(/GUESTPLANE_LOG_LEVEL 'loud' is not one of error, warn, info, debug/);
    const r = await run(['info', '--log-level', 'chatty']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^guestplane info: --log-level 'chatty' is not one of error, warn, info, debug\nsee 'guestplane info --help'/);
    // error: the note naming the device chosen (info level) is not printed; the failure is.
    const quiet = await run(['info', '--log-level', 'error', '--device', '/nonexistent/card9']);
    expect(quiet.code).toBe(1);
    expect(quiet.err).toMatch(/^guestplane info: .*\/nonexistent\/card9/);
    const debug = await run(['info', '--log-level', 'debug', '--device', '/nonexistent/card9']);
    expect(debug.err).toMatch(/\n +at /); // the stack
  });

  it('compositor -- CMD: the split at --, the environment the application gets, its status', () => {
    expect(splitCommand(['--fit', 'fit', '--', 'foot', '--', '-e', 'x'])).toEqual({ options: ['--fit', 'fit'], command: ['foot', '--', '-e', 'x'] });
    expect(splitCommand(['--fit', 'fit'])).toEqual({ options: ['--fit', 'fit'], command: null });
    const env = clientEnv('wayland-3', { XDG_RUNTIME_DIR: '/run/user/1000', WAYLAND_DISPLAY: 'wayland-0', HOME: '/h' });
    expect(env).toEqual({ XDG_RUNTIME_DIR: '/run/user/1000', WAYLAND_DISPLAY: 'wayland-3', HOME: '/h' });
    expect(clientEnv('/tmp/gp/sock', {})).toEqual({ WAYLAND_DISPLAY: '/tmp/gp/sock', XDG_RUNTIME_DIR: '/tmp/gp' });
    expect(exitStatus(3, null)).toBe(3);
    expect(exitStatus(null, 'SIGTERM')).toBe(143);
    expect(exitStatus(null, 'SIGKILL')).toBe(137);
  });

  it('--chords: all, none or a list, for kiosk (with a QEMU guest), heads and compositor (vt only)', async () => {
    for (const [args, msg] of [
      [['kiosk', '--qemu-dbus', 'session', '--chords', 'quit,reboot'], /--chords 'quit,reboot': 'reboot' is not a chord: give all, none, or a comma-separated list of quit, grab, vt/],
      [['kiosk', '--udmabuf', '640x480', '--chords', 'none'], /--chords is about input into a QEMU guest; use it with --qemu-dbus/],
      [['heads', '--config', 'x.json', '--chords', ''], /--chords '': '' is not a chord/],
      [['compositor', '--chords', 'quit'], /the compositor has only the vt chord/],
    ] as [string[], RegExp][]) {
      const r = await run(args);
      expect(r.err, args.join(' ')).toMatch(msg);
      expect(r.code, args.join(' ')).toBe(2);
    }
  });

  it('--qemu-dbus fd:N: anything but an open Unix stream socket is a usage error naming the fd and the fix, before anything is opened', async () => {
    const memfd = libc.memfdCreate('not-qemu', libc.MFD_CLOEXEC);
    const [d1, d2] = libc.socketpair(libc.AF_UNIX, libc.SOCK_DGRAM);
    const tcp = libc.socket(2, libc.SOCK_STREAM, 0);
    const [s1, s2] = libc.socketpair(libc.AF_UNIX, libc.SOCK_STREAM);
    try {
      for (const [cmd, fd, what] of [
        ['kiosk', 999, 'fd 999 is not open'],
        ['kiosk', memfd, `fd ${memfd} is a file, not a socket`],
        ['info', d1, `fd ${d1} is a Unix datagram socket, not a stream socket`],
        ['kiosk', tcp, `fd ${tcp} is a TCP/IPv4 socket, not a Unix socket`],
      ] as [string, number, string][]) {
        const r = await run([cmd, '--qemu-dbus', `fd:${fd}`]);
        expect(r.code, what).toBe(2);
        expect(r.err.split('\n')[0]).toBe(`guestplane ${cmd}: --qemu-dbus 'fd:${fd}': ${what}; start guestplane with QEMU's peer-to-peer display socket (-display dbus,p2p=yes, QMP add_client, or libvirt's virDomainOpenGraphicsFD) inherited as fd ${fd}`);
      }
      // A Unix stream socket passes the check; one that never speaks D-Bus then fails the
      // handshake (exit 1), within --connect-timeout.
      const t0 = performance.now();
      const r = await run(['info', '--qemu-dbus', `fd:${s1}`, '--connect-timeout', '0.5']);
      expect(r.code, r.err).toBe(1);
      expect(r.err).toMatch(new RegExp(`no QEMU display at fd:${s1}: no D-Bus handshake within 0.5 s`));
      expect(performance.now() - t0).toBeLessThan(4000);
    } finally {
      for (const fd of [memfd, d1, d2, tcp, s1, s2]) libc.close(fd);
    }
  }, 20_000);

  it('--connect-timeout: seconds in (0, 600], with --qemu-dbus only', async () => {
    for (const [args, msg] of [
      [['info', '--qemu-dbus', 'session', '--connect-timeout', 'soon'], /--connect-timeout 'soon' is not a number of seconds/],
      [['kiosk', '--qemu-dbus', 'session', '--connect-timeout', '0'], /--connect-timeout '0' is out of range: above 0, up to 600 seconds/],
      [['kiosk', '--qemu-dbus', 'session', '--connect-timeout', '601'], /--connect-timeout '601' is out of range/],
      [['kiosk', '--udmabuf', '640x480', '--connect-timeout', '3'], /--connect-timeout bounds the connection to QEMU; use it with --qemu-dbus/],
      [['info', '--connect-timeout', '3'], /--connect-timeout bounds the connection to QEMU; use it with --qemu-dbus/],
      [['kiosk', '--config', 'x.json', '--connect-timeout', '3'], /--connect-timeout does not go with --config/],
    ] as [string[], RegExp][]) {
      const r = await run(args);
      expect(r.err, args.join(' ')).toMatch(msg);
      expect(r.code, args.join(' ')).toBe(2);
    }
  });

  it('kiosk: usage errors name the option and exit 2', async () => {
    const cases: [string[], RegExp][] = [
      [['kiosk'], /which guest\?/],
      [['kiosk', '--udmabuf', '640x480', '--vfio', 'x'], /give one guest: --vfio and --udmabuf were given/],
      [['kiosk', '--udmabuf', '640x480', '--fit', 'zoom'], /--fit 'zoom' is not one of native, fit, fill/],
      [['kiosk', '--udmabuf', '640x480', '--stats', 'xml'], /--stats 'xml'/],
      [['kiosk', '--udmabuf', '640x480', '--fps', '0'], /--fps '0' is not a frame rate/],
      [['kiosk', '--vfio-fd', '1'], /--vfio-fd '1' is not an inherited file descriptor/],
      [['kiosk', '--udmabuf', '640x480', '--test-guest', '30'], /--test-guest animates an mbochs device/],
      [['kiosk', '--config', 'x.json', '--udmabuf', '640x480'], /--udmabuf does not go with --config/],
      [['kiosk', '--udmabuf', '640x480', '--session', 'logind'], /--session 'logind' is not one of auto, seat, direct/],
      [['kiosk', '--config', 'x.json', '--session', 'logind'], /--session 'logind' is not one of auto, seat, direct/],
      [['kiosk', '--frobnicate'], /Unknown option '--frobnicate'/],
      [['compositor', '--fit', 'zoom'], /--fit 'zoom'/],
      [['compositor', '--no-input', '--input-devices', '/dev/input/event3'], /--no-input and --input-devices contradict each other/],
      [['kiosk', '--qemu-dbus', '/run/user/1000/bus'], /--qemu-dbus '\/run\/user\/1000\/bus' is not a D-Bus address; give the bus QEMU's -display dbus uses/],
      [['kiosk', '--qemu-dbus', 'session', '--console', 'one'], /--console 'one' is not a console number/],
      [['kiosk', '--udmabuf', '640x480', '--console', '1'], /--console picks a console of a QEMU display/],
      [['kiosk', '--qemu-dbus', 'session', '--udmabuf', '640x480'], /give one guest/],
      [['info', '--qemu-dbus', 'nope'], /not a D-Bus address/],
      [['nope'], /unknown command 'nope'/],
    ];
    for (const [args, msg] of cases) {
      const r = await run(args);
      expect(r.err, args.join(' ')).toMatch(msg);
      expect(r.code, args.join(' ')).toBe(2);
    }
  });

  it('kiosk --config: a bad file is refused with the field path, the value and exit 1, before any device is opened', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gp-cli-'));
    const f = join(dir, 'heads.json');
    writeFileSync(f, JSON.stringify({ guests: { a: { type: 'udmabuf', width: 640, height: 480 } }, heads: [{ guest: 'a', connector: 'HDMI-A-1', scale: 'stretch' }] }));
    const r = await run(['kiosk', '--config', f]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/heads\[0\]\.scale/);
    expect(r.err).toMatch(/stretch/);
    const missing = await run(['kiosk', '--config', join(dir, 'none.json')]);
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/none\.json/);
    writeFileSync(f, '{ "guests": ');
    const broken = await run(['kiosk', '--config', f]);
    expect(broken.code).toBe(1);
    expect(broken.err).toMatch(/heads\.json/);
  });
});
