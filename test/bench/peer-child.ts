// The bench's QEMU, in a process of its own (started by peer-rows.ts): the QEMU side of the
// display listener protocol over the socket it finds on fd 3, with guest memory of its own.
// A process of its own so that what the peer spends (encoding its calls, reading our answers,
// writing its surface) is measured apart from what guestplane spends on the same frames.
//
//   node peer-child.js MODE WIDTH HEIGHT
//
// MODE:
//   dmabuf   two udmabufs of guest memory drawn once; per frame ScanoutDMABUF of the other
//            one (no answer asked, as QEMU's) + UpdateDMABUF, the next frame when the
//            UpdateDMABUF is answered (QEMU's virtio-gpu waits so: graphic_hw_gl_block)
//   update   QEMU without Unix.Map (gl=off): Scanout once, then per frame the surface's
//            damaged rectangle as pixels in an Update message
//   map      QEMU 9.2+ with Unix.Map: ScanoutMap (the surface's memfd) once, then per frame
//            UpdateMap with the rectangle's coordinates only
// The pixel modes change the whole surface every frame (a video-like guest: the damage is
// the full frame) and send a frame every 1/59.75 s, one at a time (the next waits for the
// answer and the tick).
//
// Control on stdin, one word a line: `mark` answers one JSON line on stdout (frames since
// the previous mark, their answer times, the peer's CPU, bytes it sent); `stop` exits.
import { createInterface } from 'node:readline';
import * as libc from '../../ffi/libc.js';
import { udmabufCreate } from '../../ffi/dmabuf.js';
import { DbusConnection, type DbusArg } from '../../plugin/dbus/connection.js';
import { drawPattern } from '../../plugin/sources/pattern.js';
import { LISTENER_IFACE, LISTENER_PATH, MAP_IFACE } from '../../plugin/sources/qemu-dbus-protocol.js';

const [mode, w, h] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
if ((mode !== 'dmabuf' && mode !== 'update' && mode !== 'map') || !(w > 0) || !(h > 0)) {
  process.stderr.write('usage: peer-child.js dmabuf|update|map WIDTH HEIGHT\n');
  process.exit(2);
}
const STRIDE = w * 4;
const SIZE = STRIDE * h;
const XRGB8888 = 0x34325258;
const PIXMAN_X8R8G8B8 = 0x20020888;
const FRAME_MS = 1000 / 59.75;

const conn = DbusConnection.fromSocket(3, 'bench peer', { server: true });
const call = (iface: string, member: string, args: DbusArg[]) => conn.call(null, LISTENER_PATH, iface, member, args, 5000);
const u = (value: number): DbusArg => ({ type: 'u', value });
const i = (value: number): DbusArg => ({ type: 'i', value });

let frames = 0;
let answers: number[] = [];
let running = true;

/** One frame: what it sends, and when it was answered (ms). */
async function timed(send: () => Promise<unknown>): Promise<void> {
  const t0 = performance.now();
  await send();
  answers.push(performance.now() - t0);
  frames++;
}

/** Guest memory: a sealed memfd the peer maps (as QEMU maps guest RAM). */
function guestMemory(bytes: number): { fd: number; map: libc.Mapping } {
  const fd = libc.memfdCreate('gp-bench-peer', libc.MFD_ALLOW_SEALING | libc.MFD_CLOEXEC);
  libc.ftruncate(fd, bytes);
  libc.fcntl(fd, libc.F_ADD_SEALS, libc.F_SEAL_SHRINK);
  return { fd, map: libc.mmap(fd, bytes, libc.PROT_READ | libc.PROT_WRITE, 0) };
}

async function dmabufLoop(): Promise<void> {
  const mem = guestMemory(SIZE * 2);
  const udev = libc.open('/dev/udmabuf', libc.O_RDWR | libc.O_CLOEXEC);
  const bufs = [0, 1].map((n) => {
    drawPattern({ bytes: mem.map.bytes, offset: n * SIZE, width: w, height: h, stride: STRIDE }, n + 1);
    return udmabufCreate(udev, mem.fd, n * SIZE, SIZE);
  });
  const scanout = (n: number): DbusArg[] => [{ type: 'h', value: bufs[n]! }, u(w), u(h), u(STRIDE), u(XRGB8888), { type: 't', value: 0n }, { type: 'b', value: false }];
  const update = [i(0), i(0), i(w), i(h)];
  for (let n = 0; running; n++) {
    // As QEMU sends them: ScanoutDMABUF without a callback, which GDBus marks NO_REPLY_EXPECTED
    // (seen with GLib 2.74's g_dbus_proxy_call_with_unix_fd_list), so it is never answered;
    // UpdateDMABUF with one (dbus_update_gl_cb unblocks the console).
    await timed(() => {
      conn.callNoReply(null, LISTENER_PATH, LISTENER_IFACE, 'ScanoutDMABUF', scanout(n % 2));
      return call(LISTENER_IFACE, 'UpdateDMABUF', update);
    });
  }
}

async function pixelLoop(map: boolean): Promise<void> {
  const mem = guestMemory(SIZE);
  const pixels = mem.map.bytes;
  if (map) await call(MAP_IFACE, 'ScanoutMap', [{ type: 'h', value: mem.fd }, u(0), u(w), u(h), u(STRIDE), u(PIXMAN_X8R8G8B8)]);
  else await call(LISTENER_IFACE, 'Scanout', [u(w), u(h), u(STRIDE), u(PIXMAN_X8R8G8B8), { type: 'ay', value: pixels }]);
  let next = performance.now();
  for (let n = 0; running; n++) {
    // The guest redraws the whole surface (one value per frame: its cost is small and the same in both modes).
    pixels.fill(n & 0xff);
    const send = map
      ? () => call(MAP_IFACE, 'UpdateMap', [i(0), i(0), i(w), i(h)])
      : () => call(LISTENER_IFACE, 'Update', [i(0), i(0), i(w), i(h), u(STRIDE), u(PIXMAN_X8R8G8B8), { type: 'ay', value: pixels }]);
    await timed(send);
    next += FRAME_MS;
    const wait = next - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    else next = performance.now();
  }
}

let cpu0 = process.cpuUsage();
let bytes0 = 0;
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line === 'stop') {
    running = false;
    conn.close();
    process.exit(0);
  }
  if (line !== 'mark') return;
  const cpu = process.cpuUsage(cpu0);
  cpu0 = process.cpuUsage();
  const bytesOut = conn.stats.bytesOut;
  process.stdout.write(JSON.stringify({ frames, answers, cpuUs: cpu.user + cpu.system, bytesOut: bytesOut - bytes0 }) + '\n');
  bytes0 = bytesOut;
  frames = 0;
  answers = [];
});

// QEMU 8.1+ loads the listener's properties before it sends anything.
await conn.call(null, LISTENER_PATH, 'org.freedesktop.DBus.Properties', 'GetAll', [{ type: 's', value: LISTENER_IFACE }], 5000).catch(() => []);
(mode === 'dmabuf' ? dmabufLoop() : pixelLoop(mode === 'map')).catch((e: Error) => {
  process.stderr.write(`bench peer: ${e.message}\n`);
  process.exit(1);
});
