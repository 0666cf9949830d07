// Which QEMU is on the other end (plugin/sources/qemu-version.ts): the marks each release
// leaves on the D-Bus display (its consoles' interfaces, the listener calls it makes). The
// peer here plays QEMU over a real socketpair and our own D-Bus layer; the rig
// (qemu-dbus-kiosk) checks the attach line against the real 7.2 and 10.0.2.
import { describe, it, expect, afterEach } from 'vitest';
import { QemuPeerVersion, qemuRangeFromConsoles } from '../../plugin/sources/qemu-version.js';
import { DMABUF2_IFACE, MAP_IFACE, MULTITOUCH_IFACE } from '../../plugin/sources/qemu-dbus-protocol.js';
import * as libc from '../../ffi/libc.js';
import { DRM_FORMAT } from '../../ffi/drm.js';
import { qemuPeer, type QemuPeer } from '../integration/helpers/qemu-peer.js';

const peers: QemuPeer[] = [];
afterEach(() => {
  for (const p of peers.splice(0)) p.close();
});

describe('QemuPeerVersion', () => {
  it('a console without MultiTouch is a QEMU before 8.1: none of our listener interfaces', () => {
    const said: string[] = [];
    const v = new QemuPeerVersion(['org.qemu.Display1.Keyboard', 'org.qemu.Display1.Mouse']);
    v.onLearnt = (s) => said.push(s);
    // 7.2 loads the listener's properties too (measured in the rig): no mark.
    for (const m of ['Properties.GetAll', 'ScanoutDMABUF', 'UpdateDMABUF', 'Disable', 'Scanout', 'Update', 'CursorDefine']) v.saw(m);
    expect(v.atLeast).toBeNull();
    expect(said).toEqual([]);
    expect(v.describe()).toBe('QEMU before 8.1 (its console has no MultiTouch): none of our listener interfaces (Listener.Unix.Map, Listener.Unix.ScanoutDMABUF2), plain ScanoutDMABUF/Scanout/Update');
  });

  it('the bound rises with what QEMU uses, and each interface used is said once', () => {
    const said: string[] = [];
    const v = new QemuPeerVersion([MULTITOUCH_IFACE]);
    v.onLearnt = (s) => said.push(s);
    expect(v.describe()).toMatch(/^QEMU 8\.1 or later: it reads our listener interfaces \(Listener\.Unix\.Map, Listener\.Unix\.ScanoutDMABUF2\)/);
    for (let i = 0; i < 3; i++) v.saw('UpdateMap');
    expect(v.atLeast).toBe('9.2');
    v.saw('ScanoutDMABUF2');
    v.saw('ScanoutMap');
    expect(v.atLeast).toBe('10.1');
    expect(v.describe()).toMatch(/^QEMU 10\.1 or later: /);
    expect(v.used).toEqual([MAP_IFACE, DMABUF2_IFACE]);
    expect(said).toEqual(['QEMU uses Listener.Unix.Map (so it is 9.2 or later)', 'QEMU uses Listener.Unix.ScanoutDMABUF2 (so it is 10.1 or later)']);
  });

  it('info bounds the version from the consoles alone', () => {
    expect(qemuRangeFromConsoles([['org.qemu.Display1.Keyboard'], [MULTITOUCH_IFACE]])).toMatch(/^QEMU 8\.1 or later \(its consoles offer MultiTouch\)/);
    expect(qemuRangeFromConsoles([['org.qemu.Display1.Keyboard']])).toMatch(/^QEMU before 8\.1/);
    expect(qemuRangeFromConsoles([])).toMatch(/^QEMU before 8\.1/);
  });
});

describe('a console source learns its QEMU from the calls', () => {
  it('a peer that sends ScanoutDMABUF2 is 10.1 or later', async () => {
    const p = await qemuPeer({ width: 64, height: 32 });
    peers.push(p);
    const said: string[] = [];
    p.src.version.onLearnt = (s) => said.push(s);
    expect(p.src.version.atLeast).toBeNull(); // the peer's console lists no interfaces
    // A refused ScanoutDMABUF2 (a memfd, not a dma-buf) still tells which QEMU sent it.
    const fd = libc.memfdCreate('not-a-dmabuf', libc.MFD_CLOEXEC);
    try {
      await expect(p.scanoutDmabuf2({ fds: [fd], x: 0, y: 0, width: 64, height: 32, offsets: [0], strides: [256], fourcc: DRM_FORMAT.XRGB8888!, backingWidth: 64, backingHeight: 32 })).rejects.toThrow();
    } finally {
      libc.close(fd);
    }
    expect(p.src.version.atLeast).toBe('10.1');
    expect(said).toEqual(['QEMU uses Listener.Unix.ScanoutDMABUF2 (so it is 10.1 or later)']);
  });
});
