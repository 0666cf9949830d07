// zwp_linux_dmabuf_v1 served by plugin/wayland/linux-dmabuf.ts to real clients on the
// host (no DRM device here, so no import step: every case below is decided by the
// protocol checks that come before any import; the rig tests import for real):
//  - wayland-info (Debian wayland-utils) reads version 4 feedback: format table, main
//    device, tranches with their flags and format+modifier pairs;
//  - gp-wayland-client (libwayland-client, wayland-scanner code) sends each kind of bad
//    params and must get the protocol's error code; memfds stand in for dma-bufs (the
//    size checks use lseek, as for a dma-buf).
import { describe, it, expect, afterEach } from 'vitest';
import { Display } from '../../protocols/runtime.js';
import { fourcc, DRM_FORMAT_MOD_LINEAR } from '../../ffi/drm.js';
import { LinuxDmabuf } from '../../plugin/wayland/linux-dmabuf.js';
import { COPY_FORMATS, TRANCHE_FLAG_SCANOUT, scanoutFormats, unionFormats, FormatTable, type TrancheSpec } from '../../plugin/wayland/dmabuf-feedback.js';
import { buildWaylandClient, runClient, useRuntimeDir } from '../integration/helpers/wayland-client.js';

let display: Display | null = null;
let dmabuf: LinuxDmabuf | null = null;
let n = 0;
const X_TILED = 0x0100000000000001n;

// A plane's IN_FORMATS as the kernel would report it: two single-plane formats (one
// with a tiled modifier too) and NV12, which our tranches must leave out.
const planeFormats = new Map<number, bigint[]>([
  [fourcc('XR24'), [DRM_FORMAT_MOD_LINEAR, X_TILED]],
  [fourcc('AR24'), [DRM_FORMAT_MOD_LINEAR]],
  [fourcc('NV12'), [DRM_FORMAT_MOD_LINEAR]],
  [fourcc('RG16'), [DRM_FORMAT_MOD_LINEAR]],
]);
const DEV = (226n << 8n) | 1n; // makedev(226, 1): /dev/dri/card1

function serve(version = 4): string {
  display = Display.create();
  const socket = `gp-dmabuf-${process.pid}-${++n}`;
  display.addSocket(socket);
  const scanout = scanoutFormats([{ formats: planeFormats }]);
  const tranches: TrancheSpec[] = [
    { device: DEV, flags: TRANCHE_FLAG_SCANOUT, formats: scanout },
    { device: DEV, flags: 0, formats: unionFormats(scanout, COPY_FORMATS) },
  ];
  dmabuf = new LinuxDmabuf(display, { mainDevice: DEV, defaultTranches: () => tranches, version });
  display.start({ onError: () => {} });
  return socket;
}

const runtimeDir = useRuntimeDir('gp-dmabuf-');
afterEach(async () => {
  if (display) {
    await display.stop();
    display.destroy();
  }
  dmabuf?.close();
  display = null;
  dmabuf = null;
});

describe('dma-buf feedback data', () => {
  it('scanout formats: single-plane IN_FORMATS pairs only, in order, no duplicates', () => {
    const f = scanoutFormats([{ formats: planeFormats }, { formats: planeFormats }]);
    expect(f.map((x) => `${x.format.toString(16)}/${x.modifier.toString(16)}`)).toEqual([
      `${fourcc('XR24').toString(16)}/0`,
      `${fourcc('XR24').toString(16)}/${X_TILED.toString(16)}`,
      `${fourcc('AR24').toString(16)}/0`,
      `${fourcc('RG16').toString(16)}/0`,
    ]);
  });

  it('the format table is 16 bytes per pair and its memfd is sealed against writes and resizes', async () => {
    const t = new FormatTable();
    const fb = t.feedback(DEV, [{ device: DEV, flags: 0, formats: scanoutFormats([{ formats: planeFormats }]) }]);
    expect(fb.tranches[0]!.indices).toEqual([0, 1, 2, 3]);
    const fd = t.fd;
    const libc = await import('../../ffi/libc.js');
    expect(Number(libc.lseek(fd, 0, libc.SEEK_END))).toBe(64);
    const seals = libc.fcntl(fd, libc.F_GET_SEALS);
    expect(seals & (libc.F_SEAL_SHRINK | libc.F_SEAL_GROW | 0x8 | libc.F_SEAL_SEAL)).toBe(libc.F_SEAL_SHRINK | libc.F_SEAL_GROW | 0x8 | libc.F_SEAL_SEAL);
    const b = Buffer.alloc(16);
    libc.pread(fd, b, 16);
    expect(b.readUInt32LE(0)).toBe(fourcc('XR24'));
    expect(b.readBigUInt64LE(8)).toBe(X_TILED);
    expect(() => libc.pwrite(fd, Buffer.from([1]), 0)).toThrow(/EPERM/);
    t.close();
  });
});

describe('zwp_linux_dmabuf_v1 with real clients', () => {
  it('wayland-info reads version 4 feedback: table, main device, scanout tranche then main tranche', async () => {
    const socket = serve();
    const r = await runClient('wayland-info', [], { runtimeDir: runtimeDir(), socket }, 20_000);
    expect(r.code, r.stderr).toBe(0);
    const out = r.stdout;
    expect(out).toMatch(/interface: 'zwp_linux_dmabuf_v1',\s+version:\s+4,/);
    expect(out).toMatch(/main device: 0xE201/i);
    // wayland-info prints one block per tranche (in reverse order of arrival: it keeps
    // them in a list it prepends to; gp-wayland-client checks the order in the rig).
    const tranches = out.split(/\ttranche\n/).slice(1);
    expect(tranches.length, out).toBe(2);
    const scan = tranches.find((t) => /flags: scanout/.test(t));
    const main = tranches.find((t) => /flags: none/.test(t));
    expect(scan, out).toBeDefined();
    expect(main, out).toBeDefined();
    const pairs = (t: string) => [...t.matchAll(/0x[0-9a-f]{8} = '(\w+)'; (0x[0-9a-f]{16})/g)].map((m) => `${m[1]}/${m[2]}`);
    expect(pairs(scan!)).toEqual(['XR24/0x0000000000000000', 'XR24/0x0100000000000001', 'AR24/0x0000000000000000', 'RG16/0x0000000000000000']);
    expect(pairs(main!)).toEqual(pairs(scan!)); // COPY_FORMATS are among the plane's formats here
    expect(scan).toMatch(/target device: 0xE201/);
    expect(out).not.toMatch(/NV12/);
  }, 30_000);

  const cases: [string, string, number][] = [
    ['plane-idx', 'zwp_linux_buffer_params_v1', 1],
    ['plane-set', 'zwp_linux_buffer_params_v1', 2],
    ['incomplete', 'zwp_linux_buffer_params_v1', 3],
    ['incomplete-gap', 'zwp_linux_buffer_params_v1', 3],
    ['invalid-format', 'zwp_linux_buffer_params_v1', 4],
    ['invalid-modifier', 'zwp_linux_buffer_params_v1', 4],
    ['invalid-dimensions', 'zwp_linux_buffer_params_v1', 5],
    ['out-of-bounds', 'zwp_linux_buffer_params_v1', 6],
    ['already-used', 'zwp_linux_buffer_params_v1', 0],
    ['immed-flags', 'zwp_linux_buffer_params_v1', 7],
  ];
  for (const [what, iface, code] of cases) {
    it(`bad params (${what}) → ${iface} error ${code}`, async () => {
      const client = buildWaylandClient();
      const socket = serve();
      const r = await runClient(client, ['error', what], { runtimeDir: runtimeDir(), socket }, 20_000);
      expect(r.stdout, r.stderr).toContain(`PROTOCOL_ERROR interface=${iface} code=${code}\n`);
    }, 30_000);
  }

  it('valid params make a buffer without any error; create with an unsupported flag (interlaced) gets failed, not an error; y-invert is created', async () => {
    const client = buildWaylandClient();
    // Each case on a fresh server.
    const run = async (what: string) => {
      if (display) {
        await display.stop();
        display.destroy();
        dmabuf!.close();
      }
      return runClient(client, ['error', what], { runtimeDir: runtimeDir(), socket: serve() }, 20_000);
    };
    let r = await run('ok');
    expect(r.stdout, r.stderr).toContain('NO_ERROR err=0');
    r = await run('create-flags');
    expect(r.stdout, r.stderr).toContain('CREATE_RESULT failed');
    expect(r.stdout).toContain('NO_ERROR err=0');
    // Y_INVERT is supported (reflect-y scanout or flipped composition).
    r = await run('y-invert-ok');
    expect(r.stdout, r.stderr).toContain('CREATE_RESULT created');
    expect(r.stdout).toContain('NO_ERROR err=0');
  }, 30_000);

  it('a version 3 binding gets format and modifier events, and may not ask for feedback (since 4)', async () => {
    const client = buildWaylandClient();
    const socket = serve(3);
    const info = await runClient('wayland-info', [], { runtimeDir: runtimeDir(), socket }, 20_000);
    expect(info.stdout).toMatch(/interface: 'zwp_linux_dmabuf_v1',\s+version:\s+3,/);
    expect(info.stdout, info.stdout).toMatch(/0x34325258 = 'XR24'; 0x0100000000000001 = INTEL_X_TILED/);
    const r = await runClient(client, ['error', 'feedback-v3'], { runtimeDir: runtimeDir(), socket, extra: { GP_DMABUF_VERSION: '3' } }, 20_000);
    // libwayland-server refuses the request for a version-3 object with wl_display's
    // invalid_method, which libwayland-client turns into EINVAL (22) and logs.
    expect(r.stdout, r.stderr).toContain('NO_ERROR err=22\n');
    expect(r.stderr).toMatch(/wl_display@1: error 1: invalid method 2 \(since 3 < 4\), object zwp_linux_dmabuf_v1@\d+/);
  }, 30_000);
});
