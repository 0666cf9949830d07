// A guest source's imports live in two places: the FB cache (KMS FBs, GL images, remembered
// failures) and the CPU mappings of the copy path. Whoever lets go of a source or of one of
// its buffers lets go of both, through these, so neither is forgotten at one of the places
// that do it (the attached source in output.ts, layer sources in host-frames.ts).
import type { FramebufferCache } from '../buffers/fb-cache.js';
import type { DmabufMaps } from '../compose/dmabuf-map.js';
import type { GuestSource } from '../sources/source.js';

export interface Imports {
  cache: FramebufferCache;
  maps: DmabufMaps;
}

/** Every import of `s` (its producer went, or it is no longer shown). FBs on screen stay lit under CLOSEFB until replaced. */
export function forgetSource({ cache, maps }: Imports, s: GuestSource): void {
  maps.invalidateSource(cache.sourceId(s));
  cache.invalidateSource(s);
}

/** The imports of one buffer of `s`, gone for good ('buffer-gone'); see FramebufferCache.forgetBuffer for FBs on screen. */
export function forgetBuffer({ cache, maps }: Imports, s: GuestSource, bufferId: number, onScreen: ReadonlySet<number>): void {
  maps.forgetBuffer(cache.sourceId(s), bufferId);
  cache.forgetBuffer(s, bufferId, onScreen);
}
