// The GLES compositor's context: a private fd on the device node (the KMS device's, or a
// node of its own for window mode's blits), a GBM device on it, an EGL
// display on that (EGL_PLATFORM_GBM), a GLES 3 (else 2) context, made current without a
// surface where EGL allows (else on a 16x16 GBM window surface), and the composition
// program. openGles() answers `{ unavailable }` instead of throwing when the machine
// cannot compose on the GPU; teardownCore() frees whatever it got as far as making.
// Why a private fd: see the ownership notes at the top of gles.ts.
import * as libc from '../../ffi/libc.js';
import * as drm from '../../ffi/drm.js';
import * as gbm from '../../ffi/gbm.js';
import * as egl from '../../ffi/egl.js';

/**
 * The device GLES runs on: a KmsDevice (its fd is never used for GBM: a private fd on its
 * node is opened, see gles.ts), or only a node path (fd -1: window mode, no KMS).
 */
export interface GlesDevice {
  readonly fd: number;
  readonly path: string;
  readonly isClosed: boolean;
}
import { errMessage, type GlesCreateOptions, type GlesInfo } from './gles-types.js';
import { buildProgram } from './gles-draw.js';

/** The native objects of one compositor, in the order they are made. */
export interface Core {
  fd: number;
  ownsFd: boolean;
  gbmDev: gbm.GbmDevice | null;
  dpy: egl.EGLDisplay | null;
  ctx: egl.EGLContext | null;
  gbmSurface: gbm.GbmSurface | null;
  surface: egl.EGLSurface | null;
  program: number;
  vbo: number;
}

/** Makes the context current (several compositors may coexist). */
export function makeCurrent(core: Core): void {
  if (!egl.isCurrentContext(core.ctx!)) egl.makeCurrent(core.dpy!, core.surface, core.surface, core.ctx!);
}

/** A private fd on the device's node (else the KMS fd itself); returns the node's path. Throws when a node-only device cannot be opened. */
function openPrivateFd(dev: GlesDevice, core: Core): string {
  const nodePath = (dev.fd >= 0 ? drm.getDeviceNameFromFd2(dev.fd) : null) ?? dev.path;
  try {
    core.fd = libc.open(nodePath, libc.O_RDWR);
    core.ownsFd = true;
    // Opening a card node while nobody is master makes the opener master (the kernel's
    // drm_master_open): during a VT switch this private fd would take master and keep
    // the KMS fd, or the next session, from getting it back. It never commits: give it up.
    if (/\/card\d+$/.test(nodePath) && drm.isMaster(core.fd)) {
      try {
        drm.dropMaster(core.fd);
      } catch {
        /* not master after all */
      }
    }
  } catch (e) {
    if (dev.fd < 0) throw new Error(`cannot open ${nodePath}: ${errMessage(e)}`);
    core.fd = dev.fd;
    core.ownsFd = false;
  }
  return nodePath;
}

interface Display {
  version: { major: number; minor: number };
  clientExt: Set<string>;
  eglExt: Set<string>;
  driver: string | null;
}

/** The EGL display on the GBM device, initialised and able to import dma-bufs; else why not. */
function initDisplay(core: Core, nodePath: string): Display | string {
  const clientExt = egl.extensions(null);
  if (!clientExt.has('EGL_KHR_platform_gbm') && !clientExt.has('EGL_MESA_platform_gbm')) {
    return `libEGL has no GBM platform (client extensions: ${[...clientExt].join(' ') || 'none'})`;
  }
  try {
    core.dpy = egl.getPlatformDisplay(egl.EGL_PLATFORM_GBM_KHR, core.gbmDev, `GBM on ${nodePath}`);
  } catch (e) {
    return errMessage(e);
  }
  let version: { major: number; minor: number };
  try {
    version = egl.initialize(core.dpy);
  } catch (e) {
    core.dpy = null; // never initialised: nothing to terminate
    return `EGL on ${nodePath}: ${errMessage(e)}`;
  }
  const driver = egl.getDisplayDriverName(core.dpy);
  const eglExt = egl.extensions(core.dpy);
  const missing: string[] = [];
  if (!eglExt.has('EGL_EXT_image_dma_buf_import')) missing.push('EGL_EXT_image_dma_buf_import');
  if (!eglExt.has('EGL_KHR_image_base') && !eglExt.has('EGL_KHR_image')) missing.push('EGL_KHR_image_base');
  if (missing.length > 0) {
    return `EGL on ${nodePath} (driver ${driver ?? 'unknown'}) lacks ${missing.join(', ')}: it cannot import dma-bufs`;
  }
  return { version, clientExt, eglExt, driver };
}

/** A current GLES 3 (else 2) context; its major version, else why not. */
function createContext(core: Core, nodePath: string, eglExt: Set<string>, opts: GlesCreateOptions): number | string {
  const dpy = core.dpy!;
  egl.bindAPI(egl.EGL_OPENGL_ES_API);
  // Context: no config when we can (we only render into FBOs), else one that suits a
  // GBM XR24 window surface.
  const wantWindow = opts.surface === 'window' || !eglExt.has('EGL_KHR_surfaceless_context');
  let config: egl.EGLConfig | null = null;
  if (wantWindow || !eglExt.has('EGL_KHR_no_config_context')) {
    try {
      config = pickConfig(dpy, wantWindow);
    } catch (e) {
      return `EGL on ${nodePath}: no usable config (${errMessage(e)})`;
    }
  }
  let contextVersion = 0;
  let lastErr: unknown = null;
  for (const major of [3, 2]) {
    try {
      core.ctx = egl.createContext(dpy, config, null, egl.attribList([[egl.EGL_CONTEXT_MAJOR_VERSION, major]]));
      contextVersion = major;
      break;
    } catch (e) {
      lastErr = e;
    }
  }
  if (!core.ctx) return `EGL on ${nodePath}: no GLES 2/3 context (${errMessage(lastErr)})`;
  if (wantWindow) {
    try {
      // The surface only exists to make the context current; drawing goes to FBOs.
      core.gbmSurface = gbm.surfaceCreate(core.gbmDev!, 16, 16, gbm.GBM_FORMAT_XRGB8888, gbm.GBM_BO_USE_RENDERING);
      core.surface = egl.createWindowSurface(dpy, config!, core.gbmSurface);
    } catch (e) {
      return `EGL on ${nodePath}: cannot create a GBM window surface (${errMessage(e)})`;
    }
  }
  try {
    egl.makeCurrent(dpy, core.surface, core.surface, core.ctx);
  } catch (e) {
    return `EGL on ${nodePath}: ${errMessage(e)}`;
  }
  return contextVersion;
}

function pickConfig(dpy: egl.EGLDisplay, window: boolean): egl.EGLConfig {
  const attribs = egl.attribList([
    [egl.EGL_SURFACE_TYPE, window ? egl.EGL_WINDOW_BIT : egl.EGL_DONT_CARE],
    [egl.EGL_RENDERABLE_TYPE, egl.EGL_OPENGL_ES2_BIT],
    [egl.EGL_RED_SIZE, 8],
    [egl.EGL_GREEN_SIZE, 8],
    [egl.EGL_BLUE_SIZE, 8],
  ]);
  const configs = egl.chooseConfig(dpy, attribs);
  if (configs.length === 0) throw new Error('eglChooseConfig found no 8-bit GLES2 config');
  // On GBM a window surface's format is the config's native visual: it must be XR24.
  const xr24 = configs.find((c) => egl.getConfigAttrib(dpy, c, egl.EGL_NATIVE_VISUAL_ID) >>> 0 === gbm.GBM_FORMAT_XRGB8888);
  if (window && !xr24) throw new Error(`none of ${configs.length} configs has native visual XR24`);
  return xr24 ?? configs[0];
}

/**
 * Sets up GBM + EGL + GLES on the KMS device. Returns `{ unavailable }` instead of
 * throwing when the machine cannot do GPU composition (no libEGL/libgbm, no GBM
 * platform, no dma-buf import, no GL_OES_EGL_image…).
 */
export function openGles(dev: GlesDevice, opts: GlesCreateOptions): { core: Core; info: GlesInfo } | { unavailable: string } {
  if (dev.isClosed) return { unavailable: `${dev.path} is closed` };
  const missingLib = gbm.gbmLoadError() ?? egl.eglLoadError();
  if (missingLib) return { unavailable: missingLib };
  const core: Core = { fd: -1, ownsFd: false, gbmDev: null, dpy: null, ctx: null, gbmSurface: null, surface: null, program: 0, vbo: 0 };
  const unavailable = (why: string): { unavailable: string } => {
    teardownCore(core);
    return { unavailable: why };
  };
  try {
    // A private fd on the same node (see the ownership notes at the top of gles.ts).
    const nodePath = openPrivateFd(dev, core);
    try {
      core.gbmDev = gbm.createDevice(core.fd);
    } catch (e) {
      return unavailable(`GBM cannot use ${nodePath}: ${errMessage(e)}`);
    }
    const gbmBackend = gbm.deviceGetBackendName(core.gbmDev);
    const disp = initDisplay(core, nodePath);
    if (typeof disp === 'string') return unavailable(disp);
    const contextVersion = createContext(core, nodePath, disp.eglExt, opts);
    if (typeof contextVersion === 'string') return unavailable(contextVersion);
    const glExt = egl.parseExtensions(egl.glGetString(egl.GL_EXTENSIONS));
    if (!glExt.has('GL_OES_EGL_image')) {
      return unavailable(`GLES on ${nodePath} (${egl.glGetString(egl.GL_RENDERER)}) lacks GL_OES_EGL_image: EGLImages cannot become textures`);
    }
    let dmabufFormats: Map<number, egl.DmaBufModifier[]> | null = null;
    if (disp.eglExt.has('EGL_EXT_image_dma_buf_import_modifiers')) {
      dmabufFormats = new Map();
      for (const f of egl.queryDmaBufFormats(core.dpy!)) dmabufFormats.set(f, egl.queryDmaBufModifiers(core.dpy!, f));
    }
    buildProgram(core);
    return { core, info: describe(core, nodePath, gbmBackend, disp, glExt, contextVersion, dmabufFormats) };
  } catch (e) {
    return unavailable(`GPU composition setup failed: ${errMessage(e)}`);
  }
}

function describe(core: Core, nodePath: string, gbmBackend: string, disp: Display, glExt: Set<string>, contextVersion: number, dmabufFormats: Map<number, egl.DmaBufModifier[]> | null): GlesInfo {
  const dpy = core.dpy!;
  const { version, driver } = disp;
  const renderer = egl.glGetString(egl.GL_RENDERER) ?? '';
  return {
    devicePath: nodePath,
    privateFd: core.ownsFd,
    gbmBackend,
    driver,
    eglVersion: `${version.major}.${version.minor} (${egl.queryString(dpy, egl.EGL_VERSION) ?? ''})`,
    eglVendor: egl.queryString(dpy, egl.EGL_VENDOR) ?? '',
    clientExtensions: [...disp.clientExt],
    eglExtensions: [...disp.eglExt],
    glVendor: egl.glGetString(egl.GL_VENDOR) ?? '',
    glRenderer: renderer,
    glVersion: egl.glGetString(egl.GL_VERSION) ?? '',
    glExtensions: [...glExt],
    contextVersion,
    surfaceless: core.surface === null,
    dmabufFormats,
    software: /kms_swrast|swrast/.test(driver ?? '') || /llvmpipe|softpipe|swrast/i.test(renderer),
  };
}

/** Frees whatever openGles got as far as making; safe on partial state. */
export function teardownCore(core: Core): void {
  const quiet = (f: () => void) => {
    try {
      f();
    } catch {
      /* best effort: we are tearing down */
    }
  };
  if (core.dpy) {
    const dpy = core.dpy;
    if (core.ctx && egl.isCurrentContext(core.ctx)) {
      if (core.program) quiet(() => egl.glDeleteProgram(core.program));
      if (core.vbo) quiet(() => egl.glDeleteBuffer(core.vbo));
    }
    quiet(() => egl.makeCurrent(dpy, null, null, null));
    if (core.surface) quiet(() => egl.destroySurface(dpy, core.surface!));
    if (core.ctx) quiet(() => egl.destroyContext(dpy, core.ctx!));
    // The display lives on the GBM device: terminate it before destroying that.
    quiet(() => egl.terminate(dpy));
    quiet(() => egl.releaseThread());
  }
  if (core.gbmSurface) quiet(() => gbm.surfaceDestroy(core.gbmSurface!));
  if (core.gbmDev) quiet(() => gbm.deviceDestroy(core.gbmDev!));
  if (core.ownsFd && core.fd >= 0) quiet(() => libc.close(core.fd, 'GBM device fd'));
  core.program = 0;
  core.vbo = 0;
  core.surface = null;
  core.ctx = null;
  core.dpy = null;
  core.gbmSurface = null;
  core.gbmDev = null;
  core.fd = -1;
}
