// The nested test guest's C port of the test pattern (test/integration/helpers/gp-guest-flip.c,
// PID 1 of the guest in qemu-dbus-guest.test.ts) draws exactly what plugin/sources/pattern.ts
// draws: the rig test checks captured pixels against the TypeScript pattern, so a drift here
// would show there as a failure far from its cause (and take a nested boot to find).
import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { drawPattern } from '../../plugin/sources/pattern.js';
import { GUEST_PROGRAM_SOURCE } from '../integration/helpers/nested-guest.js';

const haveCc = (() => {
  try {
    execFileSync('gcc', ['--version'], { stdio: 'ignore' });
    return existsSync('/usr/include/libdrm/drm_mode.h');
  } catch {
    return false;
  }
})();

describe.skipIf(!haveCc)('gp-guest-flip pattern (C) = pattern.ts', () => {
  it('draws the same pixels at the sizes and frame numbers the guest uses, and odd ones', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gp-guest-pattern-'));
    try {
      const bin = join(dir, 'gp-guest-flip');
      // Not static here: the draw mode runs on the host.
      execFileSync('gcc', ['-O2', '-Wall', '-Werror', '-I/usr/include/libdrm', '-o', bin, GUEST_PROGRAM_SOURCE], { stdio: ['ignore', 'pipe', 'pipe'] });
      // Sizes where the seven-segment digits fit the frame (pattern.ts's fillRect takes a
      // negative end index from the array's end for a rectangle left of a tiny frame).
      for (const [w, h, n] of [[640, 480, 1], [640, 480, 30], [640, 480, 2 ** 24 - 1], [1024, 768, 12345], [1280, 800, 2], [333, 197, 99999], [641, 479, 1234567]] as const) {
        const c = execFileSync(bin, ['--draw', String(w), String(h), String(n)], { maxBuffer: 1 << 26 });
        expect(c.length).toBe(w * h * 4);
        const ref = new Uint8Array(w * h * 4);
        drawPattern({ bytes: ref, offset: 0, width: w, height: h, stride: w * 4 }, n);
        let bad = 0;
        for (let i = 0; i < ref.length; i++) if (c[i] !== ref[i]) bad++;
        expect(bad, `${w}x${h} frame ${n}`).toBe(0);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
