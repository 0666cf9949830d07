import { defineConfig } from 'vitest/config';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// Three projects:
//  unit      pure tests, run on the host (no devices needed)
//  rig       integration tests against real kernel interfaces; they only run inside the VM rig
//  rig-host  boots the VM rig on the host, runs the `rig` project inside and replays its
//            results as host tests, so `npm test` names every inner test and fails with it
const inRig = process.env.GUESTPLANE_IN_RIG === '1';
export default defineConfig({
  // The project tree is read-only inside the rig (9p share of the host root).
  cacheDir: inRig ? join(tmpdir(), 'vite-cache') : 'node_modules/.vite',
  test: {
    pool: 'forks',
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      {
        extends: true,
        test: {
          name: 'rig',
          include: ['test/integration/**/*.test.ts'],
          // One kernel, one vkms device: integration files must not race for DRM master.
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        extends: true,
        test: { name: 'rig-host', include: ['test/rig/rig.host.test.ts'], testTimeout: 60_000 },
      },
    ],
  },
});
