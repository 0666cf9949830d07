// The bochs display interface (QEMU's stdvga and the kernel's mbochs sample) reached
// through a VFIO device fd, as a VMM reaches it on the guest's behalf:
//  - BAR2 (MMIO) holds the DISPI registers at 0x500 + 2*index (16-bit each);
//  - BAR0 is the VRAM, mmap-able.
// Used by the mbochs test guest (set a mode, draw, flip with the Y offset) and, on the
// host side, to read a plane's pixels for the copy path when its dma-buf cannot be mapped.
import * as libc from '../../ffi/libc.js';
import { fourcc } from '../../ffi/drm.js';
import type { VfioDevice } from './vfio.js';
import type { CpuView, GuestPlaneInfo } from './source.js';
import { drawPattern } from './pattern.js';

export const DISPI = {
  ID: 0x0,
  XRES: 0x1,
  YRES: 0x2,
  BPP: 0x3,
  ENABLE: 0x4,
  BANK: 0x5,
  VIRT_WIDTH: 0x6,
  VIRT_HEIGHT: 0x7,
  X_OFFSET: 0x8,
  Y_OFFSET: 0x9,
  VIDEO_MEMORY_64K: 0xa,
} as const;
const DISPI_MMIO = 0x500;
const DISPI_ENABLED = 0x01;
const DISPI_LFB_ENABLED = 0x40;
const VGA_PCI_BAR0 = 0;
const VGA_PCI_BAR2 = 2;

export class BochsDispi {
  private readonly mmio: { offset: bigint; size: bigint };
  private vram: libc.Mapping | null = null;
  private readonly reg = Buffer.alloc(2);

  constructor(readonly dev: VfioDevice) {
    const bar2 = dev.regionInfo(VGA_PCI_BAR2);
    if (bar2.size < BigInt(DISPI_MMIO + 0x16)) throw new Error(`${dev.name}: BAR2 is ${bar2.size} bytes, too small for the bochs DISPI registers`);
    this.mmio = { offset: bar2.offset, size: bar2.size };
    const id = this.read(DISPI.ID);
    if (id < 0xb0c0 || id > 0xb0cf) throw new Error(`${dev.name}: not a bochs display (DISPI id 0x${id.toString(16)})`);
  }

  read(index: number): number {
    libc.pread(this.dev.deviceFd, this.reg, this.mmio.offset + BigInt(DISPI_MMIO + index * 2), this.dev.name);
    return this.reg.readUInt16LE(0);
  }

  write(index: number, value: number): void {
    this.reg.writeUInt16LE(value & 0xffff, 0);
    libc.pwrite(this.dev.deviceFd, this.reg, this.mmio.offset + BigInt(DISPI_MMIO + index * 2), this.dev.name);
  }

  /** The VRAM BAR, mapped read-write (mapped once, unmapped by close()). */
  vramMap(): libc.Mapping {
    if (!this.vram) {
      const bar0 = this.dev.regionInfo(VGA_PCI_BAR0);
      this.vram = libc.mmap(this.dev.deviceFd, Number(bar0.size), libc.PROT_READ | libc.PROT_WRITE, bar0.offset, `${this.dev.name} VRAM`);
    }
    return this.vram;
  }

  /** Where the current scanout starts in VRAM, as the device computes it. */
  scanoutOffset(): number {
    const bpp = this.read(DISPI.BPP);
    const bytepp = bpp / 8;
    const virtWidth = Math.max(this.read(DISPI.VIRT_WIDTH), this.read(DISPI.XRES));
    return this.read(DISPI.X_OFFSET) * bytepp + this.read(DISPI.Y_OFFSET) * virtWidth * bytepp;
  }

  close(): void {
    this.vram?.unmap();
    this.vram = null;
  }
}

/**
 * Copy-path reader for a bochs device's dma-buf planes: the pixels are in VRAM at the
 * offset the DISPI registers give. Checked against the plane's stride and size.
 */
export function bochsVramReader(dispi: BochsDispi): (plane: GuestPlaneInfo) => CpuView | null {
  return (plane) => {
    const vram = dispi.vramMap();
    const offset = dispi.scanoutOffset();
    if (offset + plane.stride * plane.height > vram.length) return null;
    return { bytes: vram.bytes, offset };
  };
}

/**
 * The mbochs test guest: sets a 32-bpp mode with room for `buffers` frames stacked
 * vertically (virtual height = buffers × height) and flips by moving the Y offset.
 */
export class BochsTestGuest {
  width = 0;
  height = 0;
  frame = 0;
  current = 0;
  flipTimeNs = 0n;

  constructor(readonly dispi: BochsDispi, readonly buffers = 3) {}

  /** Lines between buffer starts: a whole number of pages, as a real bochs-drm guest lays
   * its framebuffers out (mbochs refuses to export a dma-buf at an unaligned offset, EINVAL). */
  linesPerBuffer = 0;

  get stride(): number {
    return this.width * 4;
  }

  setMode(width: number, height: number): void {
    const vramBytes = this.dispi.read(DISPI.VIDEO_MEMORY_64K) * 65536;
    const stride = width * 4;
    let lines = height;
    while ((lines * stride) % 4096 !== 0) lines++;
    if (lines * stride * this.buffers > vramBytes) {
      throw new RangeError(`bochs guest: ${this.buffers} buffers of ${width}x${height} need more than the ${vramBytes} bytes of VRAM`);
    }
    const d = this.dispi;
    d.write(DISPI.ENABLE, 0);
    d.write(DISPI.BPP, 32);
    d.write(DISPI.XRES, width);
    d.write(DISPI.YRES, height);
    d.write(DISPI.VIRT_WIDTH, width);
    d.write(DISPI.VIRT_HEIGHT, lines * this.buffers);
    d.write(DISPI.X_OFFSET, 0);
    d.write(DISPI.Y_OFFSET, 0);
    d.write(DISPI.ENABLE, DISPI_ENABLED | DISPI_LFB_ENABLED);
    this.width = width;
    this.height = height;
    this.linesPerBuffer = lines;
    this.current = 0;
  }

  disable(): void {
    this.dispi.write(DISPI.ENABLE, 0);
  }

  /** Draws frame n into buffer i (not yet visible). */
  render(i: number, n: number): void {
    const vram = this.dispi.vramMap();
    drawPattern({ bytes: vram.bytes, offset: i * this.stride * this.linesPerBuffer, width: this.width, height: this.height, stride: this.stride }, n);
  }

  /** Makes buffer i visible (the guest's page flip). */
  flip(i: number, n: number): void {
    this.dispi.write(DISPI.Y_OFFSET, i * this.linesPerBuffer);
    this.current = i;
    this.frame = n;
    this.flipTimeNs = process.hrtime.bigint();
  }

  /** Renders the next frame into the next buffer and flips to it. */
  step(): number {
    const n = this.frame + 1;
    const i = (this.current + 1) % this.buffers;
    this.render(i, n);
    this.flip(i, n);
    return n;
  }

  readonly format = fourcc('XR24');
}
