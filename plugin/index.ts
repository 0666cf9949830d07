// The public API a host compositor imports: `import { Backend } from 'guestplane'`.
// Only re-exports: every room imports the others directly, never this file, so the
// entry point can name them all (backend and kiosk included) without an import circle.
// Ownership rules are at the top of backend.ts.
export { Backend, preferredMode, type BackendOptions, type BackendEvents, type OutputDescription, type OutputMode } from './device/backend.js';
export { Output, NO_SIGNAL_PIXEL, pickMode } from './output/output.js';
export type { ModeRequest, OutputOptions, PresentEvent, OutputErrorEvent, OutputEvents } from './output/output.js';
/**
 * A frame of host layers for {@link Output.present}: dma-bufs (or guest sources) with
 * rectangles and z order, around the attached guest at zIndex 0.
 *
 * Ownership: `HostBuffer.fd` stays the caller's: the output imports a dup (cached by
 * bufferId + generation, so a buffer presented again costs no import) and never closes
 * the caller's fd. A buffer may be drawn into or closed once the output emits
 * `'release'` ({@link HostBufferRelease}) for its bufferId, and not before: until then it
 * is on screen, about to be, or part of the newest frame. The 'present' event's `layers`
 * say per layer which plane took it (or that it was composed, by which path and why) and
 * whether it was zero-copy; `frameId` is the id present() returned.
 */
export type { HostLayer, HostBuffer, HostBufferRelease, PresentedLayer } from './output/output.js';
export type { OutputStatsSnapshot, PresentPath } from './stats.js';
export type { FitMode } from './geometry.js';
export { TRANSFORM_NAMES, type Transform } from './transform.js';
export type { GuestSource, GuestPlaneInfo, GuestPlaneKind, PlaneQuery, CpuView } from './sources/source.js';
export { UdmabufSource } from './sources/udmabuf.js';
export { VfioSource, VfioDevice, listMdevs } from './sources/vfio.js';
export { QemuGuest, type QemuGuestOptions, type QemuGuestState } from './sources/qemu-guest.js';
export { QemuDisplay } from './sources/qemu-display.js';
export { QemuConsoleSource, evdevToQnum, type QemuConsoleInfo, type QemuVmInfo, type QemuButton } from './sources/qemu-dbus.js';
export { KmsDevice, KmsOpenError, findCardByDriver } from './kms/device.js';
export { animate, udmabufStep, bochsStep, type Animation } from './sources/test-guest.js';
export { encodePng } from './png.js';
export { startKiosk, type Kiosk, type KioskOptions } from './modes/kiosk.js';

