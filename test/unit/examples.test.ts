// Issue 30: the set-up recipes work as shipped. examples/libvirt-domain.xml is a whole domain
// libvirt's own validator accepts; examples/guestplane-kiosk.service passes
// `systemd-analyze verify` with no warning; both name a command line the CLI takes; and
// `.ci/install-deps --runtime` holds the Debian package of every library ffi/ loads.
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../plugin/cli/main.js';

const root = join(import.meta.dirname, '../..');
const read = (f: string) => readFileSync(join(root, f), 'utf8');
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

/** Runs the CLI's checks of a command line: `--help` after the options stops before anything runs. */
async function acceptedByCli(args: string[]): Promise<{ code: number; err: string }> {
  let err = '';
  const code = await main([...args, '--help'], { stdout: () => {}, stderr: (s) => (err += s) });
  return { code, err };
}

describe('examples/libvirt-domain.xml', () => {
  it('is a whole domain virt-xml-validate accepts (Debian: libvirt-clients, libxml2-utils), and a broken copy is refused', () => {
    expect(has('virt-xml-validate') && has('xmllint'), 'virt-xml-validate or xmllint missing: run .ci/install-deps (libvirt-clients, libxml2-utils)').toBe(true);
    const file = join(root, 'examples/libvirt-domain.xml');
    const ok = spawnSync('virt-xml-validate', [file], { encoding: 'utf8' });
    expect(ok.status, ok.stderr + ok.stdout).toBe(0);
    expect(ok.stderr + ok.stdout).toMatch(/validates/);
    // The validator really reads the schema: the same domain with a misspelt attribute fails.
    const dir = mkdtempSync(join(tmpdir(), 'gp-lv-'));
    try {
      writeFileSync(join(dir, 'bad.xml'), read('examples/libvirt-domain.xml').replace("<graphics type='dbus' address=", "<graphics type='dbus' adress="));
      expect(spawnSync('virt-xml-validate', [join(dir, 'bad.xml')]).status).not.toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('puts the display on a bus with GL (dma-bufs), and its address is what the unit example shows', () => {
    const xml = read('examples/libvirt-domain.xml');
    const address = /<graphics type='dbus' address='([^']+)'>\s*<gl enable='yes'\/>/.exec(xml)?.[1];
    expect(address).toBeDefined();
    expect(read('examples/guestplane-kiosk.service')).toContain(`--qemu-dbus ${address}`);
  });
});

describe('examples/guestplane-kiosk.service', () => {
  const unit = read('examples/guestplane-kiosk.service');
  const exec = /^ExecStart=(\S+) (.*)$/m.exec(unit);

  it('starts a kiosk on a seat with a command line the CLI accepts', async () => {
    expect(exec?.[1]).toBe('/usr/local/bin/guestplane');
    const args = exec![2]!.split(/\s+/);
    expect(args.slice(0, 3)).toEqual(['kiosk', '--session', 'seat']);
    expect(await acceptedByCli(args)).toEqual({ code: 0, err: '' });
    expect((await acceptedByCli([...args, '--no-such-option'])).code).toBe(2); // the check can fail
    expect(unit).toMatch(/^RestartPreventExitStatus=2$/m); // a usage error is not mended by restarting
  });

  it.skipIf(!has('systemd-analyze'))('passes systemd-analyze verify with no warning (skipped, and said so, where systemd-analyze is missing)', () => {
    // verify also checks that ExecStart's program exists: an executable stands in for the
    // installed /usr/local/bin/guestplane; every other line is verified as shipped.
    const dir = mkdtempSync(join(tmpdir(), 'gp-unit-'));
    try {
      writeFileSync(join(dir, 'guestplane'), '#!/bin/sh\n');
      chmodSync(join(dir, 'guestplane'), 0o755);
      const verify = (text: string) => {
        writeFileSync(join(dir, 'guestplane-kiosk.service'), text.replace(/^ExecStart=\/usr\/local\/bin\/guestplane /m, `ExecStart=${dir}/guestplane `));
        return spawnSync('systemd-analyze', ['verify', '--man=no', join(dir, 'guestplane-kiosk.service')], { encoding: 'utf8' });
      };
      const r = verify(unit);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toBe('');
      expect(verify(unit.replace('Restart=on-failure', 'Restart=sometimes')).stderr).toMatch(/restart specifier/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  if (!has('systemd-analyze')) console.warn('examples.test: systemd-analyze not found (Debian package systemd): the unit example is not verified here');
});

describe('.ci/install-deps --runtime', () => {
  const script = read('.ci/install-deps');
  const runtime = /^RUNTIME=\(([^)]*)\)/m.exec(script)![1]!.split(/\s+/).filter(Boolean);

  /** Every shared library the bindings load by name (koffi.load and the EGL/GBM/GLES constants). */
  function librariesLoaded(): string[] {
    const found = new Set<string>();
    for (const f of readdirSync(join(root, 'ffi'))) {
      if (!f.endsWith('.ts')) continue;
      for (const m of readFileSync(join(root, 'ffi', f), 'utf8').matchAll(/['"](lib[\w+-]+\.so\.\d+)['"]/g)) found.add(m[1]!);
    }
    return [...found].filter((l) => l !== 'libc.so.6').sort(); // libc: always there
  }

  it.skipIf(!has('dpkg'))('holds the Debian package of every library ffi/ loads (dpkg -S on this machine)', () => {
    const libs = librariesLoaded();
    expect(libs).toEqual(expect.arrayContaining(['libEGL.so.1', 'libdrm.so.2', 'libinput.so.10', 'libseat.so.1', 'libwayland-server.so.0', 'libxkbcommon.so.0']));
    // One dpkg call for all (each is about a second): "pkg:arch: /path/lib.so.N" lines.
    const r = spawnSync('dpkg', ['-S', ...libs.map((l) => `*/${l}`)], { encoding: 'utf8' });
    const owners = (lib: string) => r.stdout.split('\n').filter((l) => l.endsWith(`/${lib}`)).map((l) => l.split(':')[0]!);
    const missing = libs.filter((lib) => !owners(lib).some((p) => runtime.includes(p))).map((lib) => `${lib} (${owners(lib).join(', ') || 'not installed here'})`);
    expect(missing).toEqual([]);
  }, 30_000);

  it('is the list README gives', () => {
    const readme = read('README.md');
    const listed = /install-deps --runtime`\s+installs[^:]*:([^.]*)\./.exec(readme)?.[1];
    expect(listed, 'README names the runtime packages').toBeDefined();
    expect(listed!.match(/[\w.+-]+/g)!.filter((w) => /^lib|^udev$|^xkb-data$/.test(w)).sort()).toEqual([...runtime].sort());
  });
});
