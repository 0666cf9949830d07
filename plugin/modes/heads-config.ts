// Multi-head configuration: which guest goes on which host connector, where, and how.
//
// FORMAT (JSON; every field not marked optional is required):
//
//   {
//     "device": "/dev/dri/card0",          optional: the KMS card; default the first card
//                                          with atomic KMS and a connector named in "heads"
//     "guests": {                          one entry per guest display, by a name you choose
//       "win": { "type": "vfio", "device": "<mdev UUID or sysfs path>",
//                "edid": true },           optional (default true): write the host monitor's
//                                          EDID (or one made from the head's mode) into the
//                                          device's GFX EDID region, if it has one
//       "vm": { "type": "qemu-dbus", "address": "unix:path=/run/user/1000/bus",
//               "console": 0,              optional (default 0): a QEMU/libvirt VM with
//                                          -display dbus; waited for, reattached on restart
//               "connectTimeout": 5 },     optional (seconds, above 0 up to 600; default 5):
//                                          how long each attempt waits for QEMU's D-Bus
//                                          handshake and first answer (kiosk's
//                                          --connect-timeout); then no signal, and a retry
//       "demo": { "type": "udmabuf", "width": 1024, "height": 768,
//                 "buffers": 3,            optional (default 3)
//                 "fps": 60 }              optional (default 60): the built-in test guest
//                                          animating the numbered pattern
//     },
//     "heads": [                           one entry per picture on a screen
//       { "guest": "win",                  a name from "guests"
//         "connector": "HDMI-A-1",         the host connector (see `guestplane info`)
//         "mode": { "width": 1920, "height": 1080, "refresh": 60 },
//                                          optional: default the connector's preferred
//                                          mode; "refresh" optional (any rate)
//         "region": { "x": 0, "y": 0, "width": 960, "height": 1080 },
//                                          optional: the part of the screen this head
//                                          uses (several heads on one connector); default
//                                          the whole screen
//         "view": { "x": 0, "y": 0, "width": 1920, "height": 1080 },
//                                          optional: the part of the guest's screen shown
//                                          (one guest desktop spanning several monitors);
//                                          default all of it
//         "scale": "fit",                  optional: "native" (1:1, centred, cropped if
//                                          larger), "fit" (scaled, aspect kept; default) or
//                                          "fill" (scaled to cover, aspect not kept)
//         "position": { "x": 1920, "y": 0 },
//                                          optional: where this head's screen (connector) is
//                                          in the layout the host pointer moves over; default
//                                          to the right of the screens before it, in the
//                                          order of "heads", top edges aligned (as sway does)
//         "input": true }                  optional (default true): host input into this
//                                          head's guest (QEMU D-Bus guests only; other heads
//                                          take none). false: none. Or an object:
//                                          { "devices": ["kbd 2", "event7",
//                                                        "/dev/input/by-id/…-event-kbd"],
//                                            optional: input devices (libinput name, event
//                                            node name, or a /dev/input path) that belong to
//                                            this head: their keys go to its guest wherever
//                                            the pointer is, their pointer stays on this head
//                                            and tablets/touchscreens map onto it
//                                            "absolute": true }
//                                            optional: tablets and touchscreens that belong
//                                            to no head map onto this head's screen (default
//                                            the first screen of the layout)
//     ]
//   }
//
// Input (multi-head kiosk): devices that belong to no head are shared. Their pointer moves
// over the union of the screens that are up; past a screen's edge it enters the screen
// there, else stops at the edge. Pointer events go to the guest of the head under the
// pointer, and the keyboard follows it: the guest losing focus gets its held keys released.
//
// Rules checked here: guest names are referenced and exist; a connector used by several
// heads has a region on every one of them, they do not overlap, and they agree on the
// mode (and position); a device is named by one head at most; one head at most says
// "absolute"; a guest's "view" lies inside the guest's size where that size is known (udmabuf).
// Checked when the heads start (they need the hardware): the connector exists, the mode
// exists, the region fits the mode.
//
// Errors name the field by its path (heads[1].region.width), the value found, what was
// wrong and how to fix it.
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { QemuGuestOptions } from '../sources/qemu-guest.js';

const rect = z
  .object({
    x: z.number().int().min(0).max(16383),
    y: z.number().int().min(0).max(16383),
    width: z.number().int().min(1).max(16384),
    height: z.number().int().min(1).max(16384),
  })
  .strict();

const mode = z
  .object({
    width: z.number().int().min(1).max(16384),
    height: z.number().int().min(1).max(16384),
    refresh: z.number().int().min(1).max(1000).optional(),
  })
  .strict();

const vfioGuest = z
  .object({
    type: z.literal('vfio'),
    device: z.string().min(1),
    edid: z.boolean().default(true),
  })
  .strict();

const udmabufGuest = z
  .object({
    type: z.literal('udmabuf'),
    width: z.number().int().min(1).max(16384),
    height: z.number().int().min(1).max(16384),
    buffers: z.number().int().min(1).max(16).default(3),
    fps: z.number().positive().max(1000).default(60),
  })
  .strict();

const qemuDbusGuest = z
  .object({
    type: z.literal('qemu-dbus'),
    address: z.string().regex(/^(session|[a-z]+:.+)$/),
    console: z.number().int().min(0).default(0),
    /** Seconds, as the kiosk's --connect-timeout (QemuGuest's connectTimeoutMs / 1000). */
    connectTimeout: z.number().positive().max(600).optional(),
  })
  .strict();

const guest = z.discriminatedUnion('type', [vfioGuest, udmabufGuest, qemuDbusGuest]);

const position = z
  .object({
    x: z.number().int().min(-32768).max(32767),
    y: z.number().int().min(-32768).max(32767),
  })
  .strict();

const headInput = z.union([
  z.boolean(),
  z
    .object({
      devices: z.array(z.string().min(1)).default([]),
      absolute: z.boolean().default(false),
    })
    .strict(),
]);

const head = z
  .object({
    guest: z.string().min(1),
    connector: z.string().min(1),
    mode: mode.optional(),
    region: rect.optional(),
    view: rect.optional(),
    scale: z.enum(['native', 'fit', 'fill']).default('fit'),
    position: position.optional(),
    input: headInput.default(true),
  })
  .strict();

const GUEST_NAME = /^[A-Za-z0-9_.-]+$/;

export const headsConfigSchema = z
  .object({
    device: z.string().min(1).optional(),
    guests: z.record(z.string().regex(GUEST_NAME), guest),
    heads: z.array(head).min(1),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    const names = Object.keys(cfg.guests);
    if (names.length === 0) ctx.addIssue({ code: 'custom', path: ['guests'], message: 'no guest is defined; FIX: add one, e.g. "guests": { "vm": { "type": "vfio", "device": "<mdev UUID>" } }' });
    cfg.heads.forEach((h, i) => {
      const g = cfg.guests[h.guest];
      if (!g) {
        ctx.addIssue({ code: 'custom', path: ['heads', i, 'guest'], message: `no guest of that name; FIX: use one of the names defined in "guests" (${names.join(', ') || 'none defined'})` });
      } else if (h.view && g.type === 'udmabuf' && (h.view.x + h.view.width > g.width || h.view.y + h.view.height > g.height)) {
        ctx.addIssue({
          code: 'custom',
          path: ['heads', i, 'view'],
          message: `ends at x=${h.view.x + h.view.width}, y=${h.view.y + h.view.height}, outside guest '${h.guest}' (${g.width}x${g.height}); FIX: keep x+width <= ${g.width} and y+height <= ${g.height}`,
        });
      }
    });
    checkInput(cfg.heads, ctx);
    const byConnector = new Map<string, number[]>();
    cfg.heads.forEach((h, i) => byConnector.set(h.connector, [...(byConnector.get(h.connector) ?? []), i]));
    for (const [conn, idx] of byConnector) {
      if (idx.length < 2) continue;
      for (const i of idx) {
        if (!cfg.heads[i].region) {
          ctx.addIssue({
            code: 'custom',
            path: ['heads', i, 'region'],
            message: `missing while heads ${idx.join(', ')} share connector '${conn}'; FIX: give each of them a "region" of the screen, e.g. { "x": 0, "y": 0, "width": 960, "height": 1080 }`,
          });
        }
      }
      const positions = idx.filter((i) => cfg.heads[i].position).map((i) => ({ i, p: cfg.heads[i].position! }));
      for (const { i, p } of positions.slice(1)) {
        const f = positions[0].p;
        if (p.x !== f.x || p.y !== f.y) {
          ctx.addIssue({ code: 'custom', path: ['heads', i, 'position'], message: `differs from heads[${positions[0].i}].position on the same connector '${conn}'; FIX: a position places the whole screen: give them the same one or set it on one head only` });
        }
      }
      const modes = idx.filter((i) => cfg.heads[i].mode).map((i) => ({ i, m: cfg.heads[i].mode! }));
      for (const { i, m } of modes.slice(1)) {
        const f = modes[0].m;
        if (m.width !== f.width || m.height !== f.height || (m.refresh ?? 0) !== (f.refresh ?? 0)) {
          ctx.addIssue({ code: 'custom', path: ['heads', i, 'mode'], message: `differs from heads[${modes[0].i}].mode on the same connector '${conn}'; FIX: one connector has one mode: give them the same mode or set it on one head only` });
        }
      }
      for (let a = 0; a < idx.length; a++) {
        for (let b = a + 1; b < idx.length; b++) {
          const ra = cfg.heads[idx[a]].region;
          const rb = cfg.heads[idx[b]].region;
          if (ra && rb && ra.x < rb.x + rb.width && rb.x < ra.x + ra.width && ra.y < rb.y + rb.height && rb.y < ra.y + ra.height) {
            ctx.addIssue({ code: 'custom', path: ['heads', idx[b], 'region'], message: `overlaps heads[${idx[a]}].region on connector '${conn}'; FIX: make the regions of one connector disjoint` });
          }
        }
      }
    }
  });

/** Per-head input: a device belongs to one head at most; one head at most takes the shared absolute devices. */
function checkInput(heads: readonly z.output<typeof head>[], ctx: z.RefinementCtx): void {
  const owner = new Map<string, number>();
  let absolute = -1;
  heads.forEach((h, i) => {
    if (typeof h.input === 'boolean') return;
    h.input.devices.forEach((d, j) => {
      const o = owner.get(d);
      if (o !== undefined && o !== i) ctx.addIssue({ code: 'custom', path: ['heads', i, 'input', 'devices', j], message: `is named by heads[${o}].input.devices too; FIX: a device belongs to one head: name it on one of them` });
      owner.set(d, i);
    });
    if (h.input.absolute) {
      if (absolute >= 0) ctx.addIssue({ code: 'custom', path: ['heads', i, 'input', 'absolute'], message: `heads[${absolute}] takes the tablets and touchscreens already; FIX: set "absolute": true on one head only` });
      else absolute = i;
    }
  });
}

export type HeadsConfig = z.output<typeof headsConfigSchema>;
export type GuestConfig = HeadsConfig['guests'][string];
export type HeadConfig = HeadsConfig['heads'][number];

/** A qemu-dbus guest of the file as QemuGuest's options: the file says seconds (as the
 * kiosk's --connect-timeout), the API milliseconds. */
export function qemuGuestOptions(g: Extract<GuestConfig, { type: 'qemu-dbus' }>, log: (line: string) => void): QemuGuestOptions {
  return { address: g.address, console: g.console, ...(g.connectTimeout !== undefined && { connectTimeoutMs: Math.round(g.connectTimeout * 1000) }), log };
}
export type RectConfig = z.output<typeof rect>;

/** A head's input settings with the defaults spelt out: `enabled` false for `"input": false`. */
export function headInputOf(h: HeadConfig): { enabled: boolean; devices: string[]; absolute: boolean } {
  if (typeof h.input === 'boolean') return { enabled: h.input, devices: [], absolute: false };
  return { enabled: true, devices: h.input.devices, absolute: h.input.absolute };
}

export interface ConfigIssue {
  /** 'heads[1].region.width' */
  path: string;
  /** The value found there (undefined when missing). */
  value: unknown;
  message: string;
}

/** An invalid configuration: every problem found, each naming field, value and fix. */
export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly issues: ConfigIssue[],
  ) {
    // One problem: one line (what a command prints as its error); several: one line each.
    const line = (i: ConfigIssue) => `${i.path || '(top level)'} = ${show(i.value)}: ${i.message}`;
    super(issues.length === 1 ? `${source}: invalid configuration: ${line(issues[0]!)}` : `${source}: ${issues.length} problems:\n${issues.map((i) => `  ${line(i)}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

function show(v: unknown): string {
  if (v === undefined) return '(missing)';
  const s = JSON.stringify(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

function pathString(path: readonly PropertyKey[]): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s ? `.${String(p)}` : String(p);
  return s;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v = root;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return v;
}

/** Turns zod's terse messages into ones that say what to write instead. */
function explain(issue: z.core.$ZodIssue, value: unknown): string {
  const fieldName = String(issue.path[issue.path.length - 1] ?? '');
  switch (issue.code) {
    case 'invalid_type':
      if (issue.expected === 'int' && typeof value === 'number') return 'must be a whole number; FIX: drop the fraction';
      if (value === undefined) return `required; FIX: add "${fieldName}" (${issue.expected})`;
      return `expected ${issue.expected}, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}; FIX: write a ${issue.expected}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}; FIX: use one of those`;
    case 'invalid_union':
      if (fieldName === 'input') return 'must be true, false or { "devices": ["<device name, eventN or /dev/input path>", ...], "absolute": true }; FIX: write one of those';
      return `"type" must be "vfio", "qemu-dbus" or "udmabuf"; FIX: set "type" to one of those`;
    case 'too_small':
      if (issue.origin === 'array') return `needs at least ${issue.minimum} entr${issue.minimum === 1 ? 'y' : 'ies'}; FIX: add one`;
      if (issue.origin === 'string') return 'must not be empty; FIX: give a name';
      if (!issue.inclusive) return `must be > ${issue.minimum}; FIX: use a value above ${issue.minimum}`;
      return `must be >= ${issue.minimum}; FIX: use a value of at least ${issue.minimum}`;
    case 'too_big':
      return `must be <= ${issue.maximum}; FIX: use a value of at most ${issue.maximum}`;
    case 'invalid_format':
      if (fieldName === 'address') return `is not a D-Bus address; FIX: write the bus QEMU's -display dbus uses, e.g. "unix:path=/run/user/1000/bus" or "session"`;
      return `is not a valid name (letters, digits, '_', '.', '-' only); FIX: rename it`;
    case 'invalid_key':
      return `guest name ${JSON.stringify(issue.path[issue.path.length - 1])} is not valid (letters, digits, '_', '.', '-' only); FIX: rename it`;
    default:
      if (issue.code === 'custom') return issue.message;
      if (issue.message.includes('integer')) return `must be a whole number; FIX: drop the fraction`;
      return issue.message;
  }
}

/** Validates an already-parsed JSON value. `source` names it in errors (a file path). */
export function parseHeadsConfig(input: unknown, source = 'heads config'): HeadsConfig {
  const r = headsConfigSchema.safeParse(input);
  if (r.success) return r.data;
  const issues: ConfigIssue[] = [];
  for (const i of r.error.issues) {
    if (i.code === 'unrecognized_keys') {
      // One issue per unknown key, each with its own path and value.
      for (const k of i.keys) {
        const path = [...i.path, k];
        issues.push({ path: pathString(path), value: valueAt(input, path), message: `unknown field; FIX: remove it or check the spelling (the format is documented at the top of plugin/modes/heads-config.ts)` });
      }
      continue;
    }
    // A union that found no member: the discriminator "type" is the field at fault.
    const last = i.path[i.path.length - 1];
    const path = i.code === 'invalid_union' && last !== 'type' && last !== 'input' ? [...i.path, 'type'] : i.path;
    const value = valueAt(input, path);
    issues.push({ path: pathString(path), value, message: explain(i, value) });
  }
  throw new ConfigError(source, issues);
}

/** Reads and validates a JSON config file. JSON syntax errors say where. */
export function loadHeadsConfig(path: string): HeadsConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(path, [{ path: '', value: undefined, message: `cannot read the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); FIX: check the path` }]);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    const m = /position (\d+)/.exec((e as Error).message);
    let where = '';
    if (m) {
      const pos = Number(m[1]);
      const before = text.slice(0, pos);
      where = ` at line ${before.split('\n').length}, column ${pos - before.lastIndexOf('\n')}`;
    }
    throw new ConfigError(path, [{ path: '', value: undefined, message: `not valid JSON${where}: ${(e as Error).message}; FIX: correct the syntax (JSON has no comments or trailing commas)` }]);
  }
  return parseHeadsConfig(json, path);
}

/**
 * The JSON Schema (draft 2020-12) of a heads file, from the zod schema by zod's own
 * converter: what the file may say (`io: 'input'`: defaults are optional). The rules across
 * fields (references, overlaps) are the checker's alone. Shipped as examples/heads.schema.json.
 */
export function headsJsonSchema(): string {
  const schema = z.toJSONSchema(headsConfigSchema, { io: 'input', target: 'draft-2020-12' });
  return JSON.stringify({ ...schema, title: 'guestplane heads file', description: 'guestplane heads --config FILE; the format: README "Multi-head"' }, null, 2) + '\n';
}
