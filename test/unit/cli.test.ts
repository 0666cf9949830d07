// The command line's own checks: these run before any device is touched, so they are
// testable on any machine. (Running the commands is tested in the rig: kiosk.test.ts.)
import { describe, it, expect } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { main, parseMode } from '../../plugin/cli.js';

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
    for (const bad of ['1920', '1920x', 'x1080', '1920*1080', '1920x1080@', '1920x1080@abc', '-1x5']) expect(() => parseMode(bad)).toThrow(/not WxH/);
  });

  it('kiosk: usage errors name the option and exit 2', async () => {
    const cases: [string[], RegExp][] = [
      [['kiosk'], /which guest\?/],
      [['kiosk', '--udmabuf', '640x480', '--vfio', 'x'], /give one guest/],
      [['kiosk', '--udmabuf', '640x480', '--fit', 'zoom'], /--fit 'zoom' is not one of native, fit, fill/],
      [['kiosk', '--udmabuf', '640x480', '--stats', 'xml'], /--stats 'xml'/],
      [['kiosk', '--udmabuf', '640x480', '--fps', '0'], /--fps '0' is not a frame rate/],
      [['kiosk', '--vfio-fd', '1'], /--vfio-fd '1' is not an inherited file descriptor/],
      [['kiosk', '--udmabuf', '640x480', '--test-guest', '30'], /--test-guest animates an mbochs device/],
      [['kiosk', '--config', 'x.json', '--udmabuf', '640x480'], /--udmabuf does not go with --config/],
      [['kiosk', '--udmabuf', '640x480', '--session', 'logind'], /--session 'logind' is not seat, direct or auto/],
      [['kiosk', '--config', 'x.json', '--session', 'logind'], /--session 'logind' is not seat, direct or auto/],
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
