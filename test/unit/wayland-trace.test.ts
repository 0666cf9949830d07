// The WAYLAND_DEBUG trace checker the rig's real-application tests use
// (test/integration/helpers/wayland-trace.ts), on traces cut from real clients' logs.
import { describe, it, expect } from 'vitest';
import { clientTraceViolations } from '../integration/helpers/wayland-trace.js';

describe('clientTraceViolations', () => {
  it('finds the second release mpv --vo=wlshm got for one attach (from the CI log at 3440828)', () => {
    const log = [
      '[2078151.074]  -> wl_surface@7.attach(wl_buffer@29, 0, 0)',
      '[2078174.036]  -> wl_surface@7.damage_buffer(0, 0, 320, 240)',
      '[2078174.536]  -> wl_surface@7.commit()',
      '[2078174.787] wl_buffer@29.release()',
      '\r[KV: 00:00:02 / 00:00:04 (73%)[2078192.781] wl_buffer@29.release()',
      '[2078203.310]  -> wl_surface@7.attach(wl_buffer@29, 0, 0)',
    ].join('\n');
    expect(clientTraceViolations(log)).toEqual(['line 5: wl_buffer@29.release() for a buffer not attached and committed since its last release']);
  });

  it('a damage-only commit owes no release; a re-attach does, and a destroyed id starts afresh', () => {
    const ok = [
      '[1.000]  -> wl_surface@3.attach(wl_buffer@9, 0, 0)',
      '[1.001]  -> wl_surface@3.commit()',
      '[1.002] wl_buffer@9.release()',
      '[1.003]  -> wl_surface@3.attach(wl_buffer@9, 0, 0)',
      '[1.004]  -> wl_surface@3.commit()',
      '[1.005] wl_buffer@9.release()',
      '[1.006]  -> wl_buffer@9.destroy()',
      '[1.007]  -> wl_shm_pool@5.create_buffer(new id wl_buffer@9, 0, 8, 8, 32, 1)',
      '[1.008]  -> wl_surface@3.attach(wl_buffer@9, 0, 0)',
      '[1.009]  -> wl_surface@3.commit()',
      '[1.010] wl_buffer@9.release()',
    ];
    expect(clientTraceViolations(ok.join('\n'))).toEqual([]);
    const damageOnly = [...ok.slice(0, 3), '[1.003]  -> wl_surface@3.damage(0, 0, 8, 8)', '[1.004]  -> wl_surface@3.commit()', '[1.005] wl_buffer@9.release()'];
    expect(clientTraceViolations(damageOnly.join('\n'))).toHaveLength(1);
    // Attached but never committed: not the compositor's yet.
    expect(clientTraceViolations(['[1.0]  -> wl_surface@3.attach(wl_buffer@9, 0, 0)', '[1.1] wl_buffer@9.release()'].join('\n'))).toHaveLength(1);
  });

  it('one done per frame callback and one presented/discarded per feedback; ids are reused after new id', () => {
    const log = [
      '[1.0]  -> wl_surface@3.frame(new id wl_callback@20)',
      '[1.1]  -> wp_presentation@14.feedback(wl_surface@3, new id wp_presentation_feedback@21)',
      '[1.2] wl_callback@20.done(716900)',
      '[1.3] wp_presentation_feedback@21.presented(0, 716, 900504000, 16665600, 0, 28015, 7)',
      '[1.4]  -> wl_surface@3.frame(new id wl_callback@20)',
      '[1.5] wl_callback@20.done(716917)',
      '[1.6] wp_presentation_feedback@21.discarded()',
      '[1.7] wl_callback@20.done(716934)',
    ].join('\n');
    expect(clientTraceViolations(log)).toEqual([
      'line 7: wp_presentation_feedback@21.discarded() after it was already completed',
      'line 8: wl_callback@20.done() after it was already completed',
    ]);
  });
});
