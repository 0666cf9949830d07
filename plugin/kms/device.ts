// The KMS device model: a DRM device opened (or adopted), its capabilities set and read,
// and its CRTCs, connectors, encoders and planes with their properties and formats.
//
// Ownership: a device opened by path owns its fd and closes it in close(); an adopted fd
// (a DRM lease, a compositor's fd) stays its owner's unless `takeOwnership` is set.
import { existsSync, fstatSync, statSync } from 'node:fs';
import * as libc from '../../ffi/libc.js';
import * as drm from '../../ffi/drm.js';
import { PropertySet } from './properties.js';
import { AtomicRequest, type CommitCounters } from './atomic.js';
import { DrmEventReader } from './events.js';

export type PlaneType = 'primary' | 'overlay' | 'cursor';

export interface KmsCrtc {
  id: number;
  /** Position in the resources list: bit `index` of possible_crtcs masks. */
  index: number;
  props: PropertySet;
  /** Current mode, if the CRTC is active. */
  mode: drm.DrmModeInfo | null;
  bufferId: number;
}

export interface KmsConnector {
  id: number;
  name: string;
  type: number;
  writeback: boolean;
  connection: 'connected' | 'disconnected' | 'unknown';
  modes: drm.DrmModeInfo[];
  encoders: number[];
  /** Union of the encoders' possible_crtcs. */
  possibleCrtcs: number;
  /** CRTC the connector is routed to now (0 = none). */
  crtcId: number;
  mmWidth: number;
  mmHeight: number;
  props: PropertySet;
  /** Writeback connectors: formats they can write. */
  writebackFormats: number[];
}

export interface KmsEncoder {
  id: number;
  type: number;
  crtcId: number;
  possibleCrtcs: number;
}

export interface KmsPlane {
  id: number;
  type: PlaneType;
  possibleCrtcs: number;
  /** format → modifiers (IN_FORMATS; LINEAR only when the driver has no IN_FORMATS). */
  formats: Map<number, bigint[]>;
  props: PropertySet;
  /** zpos range/value where the driver exposes it; null = fixed order by creation. */
  zpos: { min: bigint; max: bigint; value: bigint; immutable: boolean } | null;
  rotations: string[];
  blendModes: string[];
  crtcId: number;
  fbId: number;
}

export interface KmsCaps {
  dumbBuffer: boolean;
  prime: { import: boolean; export: boolean };
  addFb2Modifiers: boolean;
  timestampMonotonic: boolean;
  crtcInVblankEvent: boolean;
  asyncPageFlip: boolean;
  atomicAsyncPageFlip: boolean;
  cursorWidth: number;
  cursorHeight: number;
  /** Client caps accepted by the kernel. */
  writebackConnectors: boolean;
  cursorPlaneHotspot: boolean;
}

export interface OpenOptions {
  /** Take DRM master (needed to commit). Default true. */
  master?: boolean;
  /** Ask for writeback connectors (default true). */
  writeback?: boolean;
}

/** Error with a hint for the user: names the device and says what to do. */
export class KmsOpenError extends Error {
  constructor(
    readonly path: string,
    readonly reason: 'not-found' | 'not-drm' | 'no-atomic' | 'busy' | 'permission',
    message: string,
  ) {
    super(message);
    this.name = 'KmsOpenError';
  }
}

function capOr(fd: number, cap: number, dflt: bigint): bigint {
  try {
    return drm.getCap(fd, cap);
  } catch {
    return dflt;
  }
}

export class KmsDevice {
  readonly driver: drm.DrmVersion;
  readonly caps: KmsCaps;
  crtcs: KmsCrtc[] = [];
  connectors: KmsConnector[] = [];
  encoders: KmsEncoder[] = [];
  planes: KmsPlane[] = [];
  readonly counters: CommitCounters = { commits: 0, testOnly: 0, failed: 0 };
  private reader: DrmEventReader | null = null;
  private closed = false;

  private constructor(
    readonly fd: number,
    readonly path: string,
    private readonly ownsFd: boolean,
    opts: OpenOptions,
  ) {
    try {
      this.driver = drm.getVersion(fd);
    } catch (e) {
      throw new KmsOpenError(path, 'not-drm', `${path} is not a DRM device (${(e as Error).message}); pass a KMS node such as /dev/dri/card0`);
    }
    try {
      drm.setClientCap(fd, drm.DRM_CLIENT_CAP_UNIVERSAL_PLANES, 1);
      drm.setClientCap(fd, drm.DRM_CLIENT_CAP_ATOMIC, 1);
    } catch (e) {
      throw new KmsOpenError(
        path,
        'no-atomic',
        `${path} (driver ${this.driver.name}) has no atomic modesetting (${(e as Error).message}); guestplane needs an atomic KMS driver, and a render node (renderD*) has no KMS at all: use the card node`,
      );
    }
    const tryClientCap = (cap: number): boolean => {
      try {
        drm.setClientCap(fd, cap, 1);
        return true;
      } catch {
        return false;
      }
    };
    const prime = Number(capOr(fd, drm.DRM_CAP_PRIME, 0n));
    this.caps = {
      dumbBuffer: capOr(fd, drm.DRM_CAP_DUMB_BUFFER, 0n) !== 0n,
      prime: { import: (prime & drm.DRM_PRIME_CAP_IMPORT) !== 0, export: (prime & drm.DRM_PRIME_CAP_EXPORT) !== 0 },
      addFb2Modifiers: capOr(fd, drm.DRM_CAP_ADDFB2_MODIFIERS, 0n) !== 0n,
      timestampMonotonic: capOr(fd, drm.DRM_CAP_TIMESTAMP_MONOTONIC, 0n) !== 0n,
      crtcInVblankEvent: capOr(fd, drm.DRM_CAP_CRTC_IN_VBLANK_EVENT, 0n) !== 0n,
      asyncPageFlip: capOr(fd, drm.DRM_CAP_ASYNC_PAGE_FLIP, 0n) !== 0n,
      atomicAsyncPageFlip: capOr(fd, drm.DRM_CAP_ATOMIC_ASYNC_PAGE_FLIP, 0n) !== 0n,
      cursorWidth: Number(capOr(fd, drm.DRM_CAP_CURSOR_WIDTH, 64n)),
      cursorHeight: Number(capOr(fd, drm.DRM_CAP_CURSOR_HEIGHT, 64n)),
      writebackConnectors: opts.writeback === false ? false : tryClientCap(drm.DRM_CLIENT_CAP_WRITEBACK_CONNECTORS),
      cursorPlaneHotspot: tryClientCap(drm.DRM_CLIENT_CAP_CURSOR_PLANE_HOTSPOT),
    };
    if (opts.master !== false && !drm.isMaster(fd)) {
      try {
        drm.setMaster(fd);
      } catch (e) {
        throw new KmsOpenError(
          path,
          'busy',
          `${path} is in use: another process is DRM master (a compositor or X server?) and setMaster failed (${(e as Error).message}); stop it or switch VT, or run guestplane on a DRM lease from that compositor`,
        );
      }
    }
    this.probe();
  }

  /** Opens a DRM card node. */
  static open(path: string, opts: OpenOptions = {}): KmsDevice {
    if (!existsSync(path)) {
      throw new KmsOpenError(path, 'not-found', `${path} does not exist; list the KMS devices with 'ls /dev/dri' (card* nodes)`);
    }
    if (!statSync(path).isCharacterDevice()) {
      throw new KmsOpenError(path, 'not-drm', `${path} is not a device node, let alone a DRM device; pass a KMS node such as /dev/dri/card0`);
    }
    let fd: number;
    try {
      fd = libc.open(path, libc.O_RDWR);
    } catch (e) {
      const code = e instanceof libc.SysError ? e.code : '';
      throw new KmsOpenError(
        path,
        'permission',
        `cannot open ${path} (${(e as Error).message})${code === 'EACCES' ? '; add the user to the video group or run with a seat manager' : ''}`,
      );
    }
    try {
      return new KmsDevice(fd, path, true, opts);
    } catch (e) {
      libc.close(fd, path);
      throw e;
    }
  }

  /** Uses a DRM fd someone else opened (a lease fd, a compositor's device). */
  static adopt(fd: number, opts: OpenOptions & { name?: string; takeOwnership?: boolean } = {}): KmsDevice {
    const name = opts.name ?? drm.getDeviceNameFromFd2(fd) ?? `drm fd ${fd}`;
    return new KmsDevice(fd, name, !!opts.takeOwnership, { master: false, ...opts });
  }

  /** (Re-)reads every KMS object. Call after a hotplug event. */
  probe(): void {
    const fd = this.fd;
    const res = drm.getResources(fd);
    this.crtcs = res.crtcs.map((id, index) => {
      const c = drm.getCrtc(fd, id);
      return {
        id,
        index,
        props: PropertySet.read(fd, id, drm.DRM_MODE_OBJECT_CRTC, 'CRTC'),
        mode: c.mode_valid ? c.mode : null,
        bufferId: c.buffer_id,
      };
    });
    this.encoders = res.encoders.map((id) => {
      const e = drm.getEncoder(fd, id);
      return { id, type: e.encoder_type, crtcId: e.crtc_id, possibleCrtcs: e.possible_crtcs };
    });
    this.connectors = res.connectors.map((id) => {
      const c = drm.getConnector(fd, id);
      const props = PropertySet.read(fd, id, drm.DRM_MODE_OBJECT_CONNECTOR, 'connector');
      const writeback = c.connector_type === drm.DRM_MODE_CONNECTOR_WRITEBACK;
      let writebackFormats: number[] = [];
      const wbf = props.get('WRITEBACK_PIXEL_FORMATS');
      if (writeback && wbf && wbf.value !== 0n) {
        const blob = drm.getPropertyBlob(fd, Number(wbf.value));
        for (let i = 0; i + 4 <= blob.length; i += 4) writebackFormats.push(blob.readUInt32LE(i));
      }
      const possibleCrtcs = c.encoders.reduce((m, e) => m | (this.encoders.find((x) => x.id === e)?.possibleCrtcs ?? 0), 0);
      const crtcProp = props.get('CRTC_ID');
      return {
        id,
        name: c.name,
        type: c.connector_type,
        writeback,
        connection: c.connection === drm.DRM_MODE_CONNECTED ? 'connected' : c.connection === drm.DRM_MODE_DISCONNECTED ? 'disconnected' : 'unknown',
        modes: c.modes,
        encoders: c.encoders,
        possibleCrtcs,
        crtcId: crtcProp ? Number(crtcProp.value) : 0,
        mmWidth: c.mmWidth,
        mmHeight: c.mmHeight,
        props,
        writebackFormats,
      } satisfies KmsConnector;
    });
    this.planes = drm.getPlaneResources(fd).map((id) => {
      const p = drm.getPlane(fd, id);
      const props = PropertySet.read(fd, id, drm.DRM_MODE_OBJECT_PLANE, 'plane');
      const typeName = props.enumName('type');
      const type: PlaneType = typeName === 'Primary' ? 'primary' : typeName === 'Cursor' ? 'cursor' : 'overlay';
      let formats: Map<number, bigint[]>;
      const inFormats = props.get('IN_FORMATS');
      if (inFormats && inFormats.value !== 0n) {
        formats = drm.parseInFormats(drm.getPropertyBlob(fd, Number(inFormats.value)));
      } else {
        // Without IN_FORMATS the driver only promises linear buffers.
        formats = new Map(p.formats.map((f) => [f, [drm.DRM_FORMAT_MOD_LINEAR]]));
      }
      const z = props.get('zpos');
      return {
        id,
        type,
        possibleCrtcs: p.possible_crtcs,
        formats,
        props,
        zpos: z ? { min: z.range?.[0] ?? 0n, max: z.range?.[1] ?? 0n, value: z.value, immutable: z.immutable } : null,
        rotations: [...(props.get('rotation')?.enums.keys() ?? [])],
        blendModes: [...(props.get('pixel blend mode')?.enums.keys() ?? [])],
        crtcId: p.crtc_id,
        fbId: p.fb_id,
      } satisfies KmsPlane;
    });
  }

  crtc(id: number): KmsCrtc {
    const c = this.crtcs.find((x) => x.id === id);
    if (!c) throw new Error(`${this.path}: no CRTC ${id}; CRTCs: ${this.crtcs.map((x) => x.id).join(', ')}`);
    return c;
  }

  connectorByName(name: string): KmsConnector {
    const c = this.connectors.find((x) => x.name === name);
    if (!c) throw new Error(`${this.path}: no connector '${name}'; connectors: ${this.connectors.map((x) => x.name).join(', ')}`);
    return c;
  }

  /** Planes that can be used on a CRTC, by type. */
  planesFor(crtc: KmsCrtc, type?: PlaneType): KmsPlane[] {
    return this.planes.filter((p) => (p.possibleCrtcs & (1 << crtc.index)) !== 0 && (!type || p.type === type));
  }

  /** Whether a plane takes a format+modifier (by IN_FORMATS, before any TEST_ONLY). */
  static planeTakes(plane: KmsPlane, format: number, modifier: bigint): boolean {
    const mods = plane.formats.get(format);
    if (!mods) return false;
    if (modifier === drm.DRM_FORMAT_MOD_INVALID) return true; // implicit modifier: let the kernel judge
    return mods.includes(modifier);
  }

  request(): AtomicRequest {
    return new AtomicRequest(this.fd, this.counters);
  }

  /** The page-flip event reader for this device (started on first use). */
  get events(): DrmEventReader {
    if (!this.reader) {
      this.reader = new DrmEventReader(this.fd, this.path);
      this.reader.start();
    }
    return this.reader;
  }

  /** Creates a MODE_ID blob for a mode; the caller destroys it with destroyBlob. */
  createModeBlob(mode: drm.DrmModeInfo): number {
    return drm.createPropertyBlob(this.fd, drm.encodeModeInfo(mode));
  }

  destroyBlob(id: number): void {
    drm.destroyPropertyBlob(this.fd, id);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Whether the DRM device behind the fd still exists. An unregistered device (a vkms
   * ConfigFS device disabled, a GPU unbound) keeps answering GETVERSION and GETRESOURCES
   * on open fds and never signals poll(); only its commits fail (EINVAL, ENODEV), and its
   * /sys/dev/char/<major>:<minor> entry is gone.
   */
  get present(): boolean {
    if (this.closed) return false;
    // Without sysfs (some containers) there is nothing to ask: assume it is there.
    if (!existsSync('/sys/dev/char')) return true;
    try {
      const rdev = fstatSync(this.fd).rdev;
      return existsSync(`/sys/dev/char/${Math.floor(rdev / 256) & 0xfff}:${(rdev & 0xff) | ((rdev >>> 12) & 0xfff00)}`);
    } catch {
      return false;
    }
  }

  /**
   * Why a commit failed when it is not about what was committed: 'not-master' (another
   * process is DRM master: a VT switch, a second compositor), 'device-gone'. Null means
   * the kernel refused the request itself.
   */
  commitFailure(e: unknown): 'not-master' | 'device-gone' | null {
    const code = e instanceof libc.SysError ? e.code : '';
    if ((code === 'EACCES' || code === 'EPERM') && !drm.isMaster(this.fd)) return 'not-master';
    if (code === 'ENODEV' || !this.present) return 'device-gone';
    return null;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.reader) await this.reader.close();
    this.reader = null;
    if (this.ownsFd) libc.close(this.fd, this.path);
  }
}

/** Finds a card node by driver name ('vkms') or busid; vkms is not always card0. */
export function findCardByDriver(driver: string): string | null {
  for (let i = 0; i < 16; i++) {
    const path = `/dev/dri/card${i}`;
    if (!existsSync(path)) continue;
    let fd = -1;
    try {
      fd = libc.open(path, libc.O_RDWR);
      const v = drm.getVersion(fd);
      if (v.name === driver) return path;
    } catch {
      /* not ours */
    } finally {
      if (fd >= 0) libc.close(fd, path);
    }
  }
  return null;
}
