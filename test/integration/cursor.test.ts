// Issue 5, guest cursor on the host cursor plane (vkms): 100 moves, one commit each that
// touches only the cursor plane's position, no TEST_ONLY; the pointer tip lands where the
// guest put it (hotspot respected, also through a scaled 'fit' placement), checked on
// the writeback connector.
import { describe, it, expect } from 'vitest';
import { UdmabufSource } from '../../plugin/sources/udmabuf.js';
import { cursorPosition } from '../../plugin/planes/cursor.js';
import { nextPresent } from './helpers/faults.js';
import { cleanupAfterEach, guestOnOutput } from './helpers/cleanup.js';

const cleanup = cleanupAfterEach();

const CURSOR = 32;
const HOT = { x: 5, y: 9 };
const TIP = 0xffff00ff; // the hotspot pixel: magenta
const BODY = 0xff00ff00; // the rest of a 12x16 arrow box: green

/** A cursor image: transparent, a green box, the hotspot pixel magenta. */
function drawCursor(src: UdmabufSource): void {
  const px = src.cursorPixels();
  const u32 = new Uint32Array(px.buffer, px.byteOffset, px.byteLength / 4);
  u32.fill(0);
  const row = src.cursorStride / 4;
  for (let y = 0; y < 16; y++) for (let x = 0; x < 12; x++) u32[y * row + x] = BODY;
  u32[HOT.y * row + HOT.x] = TIP;
  src.cursorUpdated();
}

function pixel(c: { pixels: Uint8Array; stride: number }, x: number, y: number): number {
  return new Uint32Array(c.pixels.buffer, c.pixels.byteOffset, c.pixels.byteLength / 4)[(y * c.stride) / 4 + x] & 0xffffff;
}

async function setup(guestW: number, guestH: number, fit: 'native' | 'fit') {
  const { dev, out, guest, errors } = guestOnOutput(cleanup, { mode: { width: 640, height: 480 }, guest: { width: guestW, height: guestH, buffers: 2 }, fit });
  guest.setCursor({ width: CURSOR, height: CURSOR, hotX: HOT.x, hotY: HOT.y });
  drawCursor(guest);
  guest.render(0, 1);
  const first = nextPresent(out, (p) => p.frame === 1 && !!p.layers?.some((l) => l.id === 'cursor'));
  guest.moveCursor(100, 100);
  guest.flip(0, 1);
  const p = await first;
  return { dev, out, guest, errors, first: p };
}

describe('guest cursor on the cursor plane (vkms)', () => {
  it('100 moves: one commit each, touching only the cursor plane position, no TEST_ONLY; the tip where the guest put it', async () => {
    const { dev, out, guest, errors, first } = await setup(640, 480, 'native');
    const cursorPlane = dev.planesFor(out.crtc, 'cursor')[0];
    expect(cursorPlane).toBeDefined();
    const rep = first.layers!.find((l) => l.id === 'cursor')!;
    expect(rep.how).toBe('plane');
    expect(rep.planeId).toBe(cursorPlane.id);
    console.log(`cursor plane ${cursorPlane.id}: HOTSPOT_X/Y ${cursorPlane.props.has('HOTSPOT_X') ? 'present' : 'absent'}; DRM_CLIENT_CAP_CURSOR_PLANE_HOTSPOT ${dev.caps.cursorPlaneHotspot ? 'accepted' : 'refused'}; CURSOR_WIDTH/HEIGHT ${dev.caps.cursorWidth}x${dev.caps.cursorHeight}`);
    await out.idle();
    const t0 = dev.counters.testOnly;
    const c0 = dev.counters.commits;
    const bad: string[] = [];
    for (let i = 0; i < 100; i++) {
      const x = 20 + ((i * 37) % 580);
      const y = 20 + ((i * 23) % 420);
      const shown = nextPresent(out);
      guest.moveCursor(x, y);
      const p = await shown;
      const cur = p.layers?.find((l) => l.id === 'cursor');
      if (cur?.planeId !== cursorPlane.id) bad.push(`move ${i}: cursor on ${cur?.planeId}`);
      const props = out.lastCommit;
      const others = props.filter((s) => !s.startsWith(`plane ${cursorPlane.id}.CRTC_X=`) && !s.startsWith(`plane ${cursorPlane.id}.CRTC_Y=`));
      if (others.length > 0) bad.push(`move ${i}: also set ${others.join(' ')}`);
      if (!props.includes(`plane ${cursorPlane.id}.CRTC_X=${x}`) && !props.includes(`plane ${cursorPlane.id}.CRTC_Y=${y}`)) bad.push(`move ${i}: position not set (${props.join(' ')})`);
    }
    expect(bad).toEqual([]);
    expect(dev.counters.commits - c0).toBe(100);
    expect(dev.counters.testOnly - t0).toBe(0);
    // Where the last move put it, the tip (hotspot pixel) is at cursor position + hotspot.
    const cap = await out.captureNext();
    const x = 20 + ((99 * 37) % 580);
    const y = 20 + ((99 * 23) % 420);
    expect(pixel(cap, x + HOT.x, y + HOT.y)).toBe(TIP & 0xffffff);
    expect(pixel(cap, x, y)).toBe(BODY & 0xffffff);
    expect(errors).toEqual([]);
  });

  it('a scaled guest (320x240 fit on 640x480): the tip lands on the scaled guest position, the image unscaled', async () => {
    const { out, guest, errors } = await setup(320, 240, 'fit');
    const shown = nextPresent(out);
    guest.moveCursor(150, 100);
    await shown;
    const cap = await out.captureNext();
    const pos = cursorPosition({ x: 150, y: 100, hotX: HOT.x, hotY: HOT.y }, { src: { x: 0, y: 0, width: 320, height: 240 }, dst: { x: 0, y: 0, width: 640, height: 480 } });
    // Guest pointer at (155, 109) → host (310, 218); the image hangs from it by its hotspot.
    expect(pos).toEqual({ x: 310 - HOT.x, y: 218 - HOT.y, hotX: HOT.x, hotY: HOT.y });
    expect(pixel(cap, 310, 218)).toBe(TIP & 0xffffff);
    expect(pixel(cap, 310 - HOT.x, 218 - HOT.y)).toBe(BODY & 0xffffff);
    // Unscaled: the 12-pixel-wide body ends 12 pixels from its left edge.
    expect(pixel(cap, 310 - HOT.x + 11, 218 - HOT.y)).toBe(BODY & 0xffffff);
    expect(pixel(cap, 310 - HOT.x + 12, 218 - HOT.y)).not.toBe(BODY & 0xffffff);
    // The guest scaled by vkms? No: vkms planes cannot scale, so the guest is composed; the cursor is still on its plane.
    const rep = out.current!.layers!;
    console.log(`fit 320x240→640x480: ${rep.map((l) => `${l.id} ${l.how}${l.planeType ? ` on ${l.planeType}` : ''}${l.reason ? ` (${l.reason.code}: ${l.reason.message})` : ''}`).join('; ')}`);
    expect(rep.find((l) => l.id === 'cursor')?.how).toBe('plane');
    expect(errors.filter((e) => !e.startsWith('scanout-commit-refused'))).toEqual([]);
  });

  it('a hidden cursor frees the cursor plane; shown again, it returns without a new search', async () => {
    const { dev, out, guest } = await setup(640, 480, 'native');
    const hidden = nextPresent(out);
    guest.hideCursor();
    const p = await hidden;
    expect(p.layers!.some((l) => l.id === 'cursor')).toBe(false);
    const t0 = dev.counters.testOnly;
    const shown = nextPresent(out);
    guest.moveCursor(300, 200);
    const p2 = await shown;
    expect(p2.layers!.find((l) => l.id === 'cursor')?.how).toBe('plane');
    expect(p2.allocation?.reused).toBe(true);
    expect(dev.counters.testOnly - t0).toBe(0);
  });
});
