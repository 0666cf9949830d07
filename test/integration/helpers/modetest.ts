// Parses the text modetest (libdrm's test tool, bookworm 2.4.114) prints for
// `modetest -M <driver> -D <busid> [-a] -c -e -p [-f]`, so rig tests can hold
// `guestplane info` against an independent reader of the same device.
//
// What modetest shows and what it does not:
//  - `-D` takes a busid (the ConfigFS directory name for vkms), not a path; with an unknown
//    busid and `-M` it silently falls back to the first device of that driver.
//  - it never sets DRM_CLIENT_CAP_WRITEBACK_CONNECTORS: writeback connectors are missing
//    (their encoders are listed).
//  - without `-a` it lists only the legacy properties (no FB_ID, CRTC_ID, ACTIVE...).
import { spawnSync } from 'node:child_process';

export interface ModetestMode {
  index: number;
  /** '' for a CRTC without a mode. */
  name: string;
  /** NaN for a CRTC without a mode ('-nan'). */
  refresh: number;
  hdisplay: number;
  hsyncStart: number;
  hsyncEnd: number;
  htotal: number;
  vdisplay: number;
  vsyncStart: number;
  vsyncEnd: number;
  vtotal: number;
  clock: number;
  flags: string[];
  type: string[];
}

export interface ModetestProp {
  id: number;
  name: string;
  /** 'immutable', 'range', 'enum', 'blob', 'bitmask', 'object', 'signed range'... */
  flags: string;
  /** Enum / bitmask entries: name → value as printed. */
  enums: Record<string, string>;
  /** Range bounds as printed ('values: 0 1'). */
  values: string[];
  /** Current value as printed ('' for an empty blob; blob bytes as hex). */
  value: string;
}

export interface ModetestEncoder {
  id: number;
  crtc: number;
  type: string;
  possibleCrtcs: number;
  possibleClones: number;
}

export interface ModetestConnector {
  id: number;
  encoder: number;
  status: string;
  name: string;
  mmWidth: number;
  mmHeight: number;
  modeCount: number;
  encoders: number[];
  modes: ModetestMode[];
  props: ModetestProp[];
}

export interface ModetestCrtc {
  id: number;
  fb: number;
  x: number;
  y: number;
  width: number;
  height: number;
  mode: ModetestMode | null;
  props: ModetestProp[];
}

export interface ModetestPlane {
  id: number;
  crtc: number;
  fb: number;
  crtcX: number;
  crtcY: number;
  x: number;
  y: number;
  gammaSize: number;
  possibleCrtcs: number;
  /** The legacy format list ('formats:' line). */
  formats: string[];
  /** IN_FORMATS as modetest decoded it: format → modifier names; null without IN_FORMATS. */
  inFormats: Record<string, string[]> | null;
  props: ModetestProp[];
}

export interface ModetestFramebuffer {
  id: number;
  width: number;
  height: number;
  pitch: number;
}

export interface ModetestDump {
  encoders: ModetestEncoder[];
  connectors: ModetestConnector[];
  crtcs: ModetestCrtc[];
  planes: ModetestPlane[];
  /** null when the output has no 'Frame buffers:' section (no -f). */
  framebuffers: ModetestFramebuffer[] | null;
}

type Section = 'encoders' | 'connectors' | 'crtcs' | 'planes' | 'framebuffers' | null;
const SECTIONS: Record<string, Section> = {
  'Encoders:': 'encoders',
  'Connectors:': 'connectors',
  'CRTCs:': 'crtcs',
  'Planes:': 'planes',
  'Frame buffers:': 'framebuffers',
};

const MODE_RE = /^ {2}#(\d+) (\S*) (\S+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) flags: (.*); type: (.*)$/;

function names(s: string): string[] {
  return s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
}

function parseMode(line: string): ModetestMode | null {
  const m = MODE_RE.exec(line);
  if (!m) return null;
  const n = (i: number) => Number(m[i]);
  return {
    index: n(1),
    name: m[2],
    refresh: m[3].includes('nan') ? NaN : Number(m[3]),
    hdisplay: n(4),
    hsyncStart: n(5),
    hsyncEnd: n(6),
    htotal: n(7),
    vdisplay: n(8),
    vsyncStart: n(9),
    vsyncEnd: n(10),
    vtotal: n(11),
    clock: n(12),
    flags: names(m[13]),
    type: names(m[14]),
  };
}

/** "On=0 Standby=1" / "rotate-0=0x1 ..." / "ITU-R BT.601 YCbCr=0 ..." → name → value. */
function parseEnums(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /(\S.*?)=(0x[0-9a-fA-F]+|-?\d+)(?=\s|$)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s))) out[m[1]] = m[2];
  return out;
}

/** Parses modetest's dump (any of -c -e -p -f, with or without -a). */
export function parseModetest(text: string): ModetestDump {
  const dump: ModetestDump = { encoders: [], connectors: [], crtcs: [], planes: [], framebuffers: null };
  let section: Section = null;
  let expectHeader = false;
  // The object whose sub-blocks (modes, props, formats) the following lines belong to.
  let owner: { modes?: ModetestMode[]; props: ModetestProp[]; plane?: ModetestPlane; crtc?: ModetestCrtc } | null = null;
  let block: 'modes' | 'props' | 'in_formats' | null = null;
  let prop: ModetestProp | null = null;
  let blobValue = false;

  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (line in SECTIONS) {
      section = SECTIONS[line];
      if (section === 'framebuffers') dump.framebuffers = [];
      expectHeader = true;
      owner = null;
      block = null;
      prop = null;
      continue;
    }
    if (!section) continue;
    if (expectHeader) {
      expectHeader = false;
      if (/^id\t/.test(line)) continue;
    }
    if (line === '') {
      // Blank lines end a section's table, but also appear inside blob props ("blobs:\n\n").
      continue;
    }
    // An object line: starts with its id at column 0.
    if (/^\d/.test(line)) {
      const f = line.split(/\t+/).map((x) => x.trim());
      prop = null;
      block = null;
      blobValue = false;
      switch (section) {
        case 'encoders':
          dump.encoders.push({ id: Number(f[0]), crtc: Number(f[1]), type: f[2], possibleCrtcs: Number(f[3]), possibleClones: Number(f[4]) });
          owner = null;
          break;
        case 'connectors': {
          const [mw, mh] = (f[4] ?? '0x0').split('x').map(Number);
          const c: ModetestConnector = {
            id: Number(f[0]),
            encoder: Number(f[1]),
            status: f[2],
            name: f[3],
            mmWidth: mw,
            mmHeight: mh,
            modeCount: Number(f[5]),
            encoders: (f[6] ?? '').split(',').map((x) => x.trim()).filter(Boolean).map(Number),
            modes: [],
            props: [],
          };
          dump.connectors.push(c);
          owner = c;
          break;
        }
        case 'crtcs': {
          const pos = /\((-?\d+),(-?\d+)\)/.exec(f[2] ?? '') ?? ['', '0', '0'];
          const size = /\((\d+)x(\d+)\)/.exec(f[3] ?? '') ?? ['', '0', '0'];
          const c: ModetestCrtc = { id: Number(f[0]), fb: Number(f[1]), x: Number(pos[1]), y: Number(pos[2]), width: Number(size[1]), height: Number(size[2]), mode: null, props: [] };
          dump.crtcs.push(c);
          owner = { props: c.props, crtc: c };
          break;
        }
        case 'planes': {
          const [cx, cy] = (f[3] ?? '0,0').split(',').map(Number);
          const [x, y] = (f[4] ?? '0,0').split(',').map(Number);
          const p: ModetestPlane = {
            id: Number(f[0]),
            crtc: Number(f[1]),
            fb: Number(f[2]),
            crtcX: cx,
            crtcY: cy,
            x,
            y,
            gammaSize: Number(f[5]),
            possibleCrtcs: Number(f[6]),
            formats: [],
            inFormats: null,
            props: [],
          };
          dump.planes.push(p);
          owner = { props: p.props, plane: p };
          break;
        }
        case 'framebuffers': {
          const size = /\((\d+)x(\d+)\)/.exec(f[1] ?? '') ?? ['', '0', '0'];
          dump.framebuffers!.push({ id: Number(f[0]), width: Number(size[1]), height: Number(size[2]), pitch: Number(f[2]) });
          owner = null;
          break;
        }
      }
      continue;
    }
    if (!owner) continue;

    // Two-space-indented sub-block headers and lines.
    if (line === '  modes:') {
      block = 'modes';
      owner.modes ??= [];
      continue;
    }
    if (line === '  props:') {
      block = 'props';
      prop = null;
      continue;
    }
    const fm = /^ {2}formats:(.*)$/.exec(line);
    if (fm && owner.plane) {
      owner.plane.formats = fm[1].trim().split(/\s+/).filter(Boolean);
      continue;
    }
    if (/^ {2}#\d+ /.test(line)) {
      const mode = parseMode(line);
      if (!mode) throw new Error(`modetest: cannot parse mode line '${line}'`);
      if (owner.crtc) owner.crtc.mode = mode.name === '' && Number.isNaN(mode.refresh) ? null : mode;
      else owner.modes?.push(mode);
      continue;
    }
    if (block === 'modes') continue; // the "index name refresh ..." header
    if (block === 'props' || block === 'in_formats') {
      const ph = /^\t(\d+) (.+):$/.exec(line);
      if (ph) {
        prop = { id: Number(ph[1]), name: ph[2], flags: '', enums: {}, values: [], value: '' };
        owner.props.push(prop);
        block = 'props';
        blobValue = false;
        continue;
      }
      if (!prop) continue;
      let m: RegExpExecArray | null;
      if ((m = /^\t\tflags: ?(.*)$/.exec(line))) prop.flags = m[1].trim();
      else if ((m = /^\t\tenums: ?(.*)$/.exec(line))) prop.enums = parseEnums(m[1]);
      else if ((m = /^\t\tvalues: ?(.*)$/.exec(line))) {
        if (prop.flags.includes('bitmask')) prop.enums = parseEnums(m[1]);
        else prop.values = m[1].trim().split(/\s+/).filter(Boolean);
      } else if (/^\t\tblobs:/.test(line)) continue;
      else if ((m = /^\t\tvalue: ?(.*)$/.exec(line))) {
        prop.value = m[1].trim();
        blobValue = prop.flags.includes('blob');
      } else if (/^\t\tin_formats blob decoded:/.test(line)) {
        block = 'in_formats';
        blobValue = false;
        if (owner.plane) owner.plane.inFormats = {};
      } else if (block === 'in_formats' && (m = /^\t\t\t\s*(\S+?)\s*:\s*(.*)$/.exec(line))) {
        if (owner.plane?.inFormats) owner.plane.inFormats[m[1]] = m[2].trim().split(/\s+/).filter(Boolean);
      } else if (blobValue && (m = /^\t\t\t([0-9a-f]+)$/.exec(line))) prop.value += m[1];
    }
  }
  return dump;
}

export interface ModetestRun {
  args: string[];
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs modetest with arguments; throws if it is not installed. */
export function runModetest(args: string[], timeoutMs = 30_000): ModetestRun {
  const r = spawnSync('modetest', args, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    throw new Error(`modetest ${args.join(' ')}: ${code === 'ENOENT' ? 'modetest is not installed (Debian package libdrm-tests)' : r.error.message}`);
  }
  return { args, status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `modetest -M <driver> -D <busid> -a -c -e -p`, parsed. */
export function modetestDump(driver: string, busid: string, atomic = true): { run: ModetestRun; dump: ModetestDump } {
  const run = runModetest(['-M', driver, '-D', busid, ...(atomic ? ['-a'] : []), '-c', '-e', '-p']);
  if (run.status !== 0) throw new Error(`modetest ${run.args.join(' ')} exited ${run.status}: ${run.stderr.trim() || run.stdout.slice(0, 500)}`);
  return { run, dump: parseModetest(run.stdout) };
}
