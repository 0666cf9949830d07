// wl_subcompositor (plugin/wayland/subsurface.ts) against a real libwayland client that
// walks through the sub-surface rules one step at a time (gp-wayland-client subtree):
// after each step the compositor's tree (flattenTree: mapped surfaces, stacking order,
// positions relative to the root) must be what the protocol says. Protocol errors are in
// protocol-shell.test.ts; the tree on a real output (overlay plane, pixels) in the rig.
import { describe, it, expect } from 'vitest';
import { join } from 'node:path';
import { Display } from '../../protocols/runtime.js';
import { createCompositorGlobal, type Surface } from '../../plugin/wayland/surface.js';
import { createShmGlobal } from '../../plugin/wayland/shm.js';
import { createXdgShellGlobal } from '../../plugin/wayland/xdg-shell.js';
import { createSubcompositorGlobal, flattenTree } from '../../plugin/wayland/subsurface.js';
import { sceneLayers } from '../../plugin/wayland/scene.js';
import { buildWaylandClient, startClient, useRuntimeDir } from '../integration/helpers/wayland-client.js';

const runtimeDir = useRuntimeDir('gp-sub-');

/** The tree as "WxH@x,y" bottom first (surfaces told apart by their buffer sizes). */
function describeTree(root: Surface): string {
  return flattenTree(root)
    .map((e) => `${e.surface.size!.w}x${e.surface.size!.h}@${e.x},${e.y}`)
    .join(' ');
}

describe('sub-surfaces, real client', () => {
  it('position and stacking apply with the parent; sync caches, desync applies, sync is inherited; destruction unmaps', async () => {
    const display = Display.create();
    const socket = `gp-sub-${process.pid}`;
    display.addSocket(socket);
    let root: Surface | null = null;
    let commits = 0;
    createCompositorGlobal(display, (s) => s.on('commit', () => commits++));
    createShmGlobal(display);
    createSubcompositorGlobal(display);
    createXdgShellGlobal(display, { size: () => ({ width: 640, height: 480 }), onToplevel: (t) => (root = t.surface), onToplevelDestroyed: () => {} });
    display.start({ onError: () => {} });
    const c = startClient(buildWaylandClient(), ['subtree'], { runtimeDir: runtimeDir(), socket });
    const next = async (name: string): Promise<string> => {
      await c.waitFor(new RegExp(`^STEP ${name}$`));
      return describeTree(root!);
    };
    try {
      // Both sub-surfaces committed, but synchronized and the root has no buffer: nothing mapped.
      expect(await next('cached')).toBe('');
      c.child.stdin!.write('\n');
      // The root's commit applies the cached state and the positions; B is under A.
      expect(await next('mapped')).toBe('200x100@0,0 50x50@10,20 20x20@15,25');
      c.child.stdin!.write('\n');
      // place_below and set_position wait for the parent's commit (A's own commit is cached).
      expect(await next('pending')).toBe('200x100@0,0 50x50@10,20 20x20@15,25');
      c.child.stdin!.write('\n');
      expect(await next('below')).toBe('50x50@30,40 20x20@35,45 200x100@0,0');
      c.child.stdin!.write('\n');
      // Desynchronized: A's new buffer shows at once.
      expect(await next('desync')).toBe('60x60@30,40 20x20@35,45 200x100@0,0');
      c.child.stdin!.write('\n');
      // B is desync itself but its parent A is sync again: B's commit is cached.
      expect(await next('inherited-sync')).toBe('60x60@30,40 20x20@35,45 200x100@0,0');
      c.child.stdin!.write('\n');
      // The root's commit applies A's (empty) state and with it B's cache.
      expect(await next('cascade')).toBe('60x60@30,40 30x30@35,45 200x100@0,0');
      c.child.stdin!.write('\n');
      // wl_subsurface.destroy unmaps B at once.
      expect(await next('role-gone')).toBe('60x60@30,40 200x100@0,0');
      c.child.stdin!.write('\n');
      // B given the role again, now under the root, on top; shown once the root commits.
      expect(await next('reparented')).toBe('60x60@30,40 200x100@0,0 30x30@0,0');
      const layers = sceneLayers(flattenTree(root!), root!, 'native', 640, 480);
      // The root (200x100) is centred on 640x480 at (220,190); layers keep the stacking.
      expect(layers.map((l) => `${l.zIndex}:${l.dst.x},${l.dst.y},${l.dst.width}x${l.dst.height}`)).toEqual(['-1:250,230,60x60', '1:220,190,30x30']);
      expect(sceneLayers(flattenTree(root!), root!, 'fill', 400, 200).map((l) => `${l.zIndex}:${l.dst.x},${l.dst.y},${l.dst.width}x${l.dst.height}`)).toEqual(['-1:60,80,120x120', '1:0,0,60x60']);
      c.child.stdin!.write('\n');
      // The parent A destroyed: gone, and nothing under it either.
      expect(await next('parent-destroyed')).toBe('200x100@0,0 30x30@0,0');
      c.child.stdin!.write('\n');
      await c.waitFor(/^NO_ERROR err=0$/);
      expect(commits).toBeGreaterThan(5);
    } finally {
      await c.kill();
      await display.stop();
      display.destroy();
    }
  }, 30_000);
});
