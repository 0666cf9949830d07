// KMS object properties by name: atomic KMS addresses everything by property id, which
// differs per driver and per object; we look ids up once, at device open.
import * as drm from '../../ffi/drm.js';

export interface PropInfo {
  id: number;
  name: string;
  type: drm.DrmPropType;
  immutable: boolean;
  /** Value when the device was probed (or last refresh). */
  value: bigint;
  /** enum / bitmask entries, name → value. */
  enums: Map<string, bigint>;
  /** range / signed_range bounds. */
  range?: [bigint, bigint];
}

/** The properties of one KMS object (CRTC, connector or plane). */
export class PropertySet {
  private readonly byName = new Map<string, PropInfo>();

  constructor(
    readonly objectId: number,
    readonly objectKind: string,
    props: PropInfo[],
  ) {
    for (const p of props) this.byName.set(p.name, p);
  }

  static read(fd: number, objectId: number, objectType: number, objectKind: string): PropertySet {
    const { props, values } = drm.objectGetProperties(fd, objectId, objectType);
    const infos = props.map((id, i) => {
      const p = drm.getProperty(fd, id);
      const flags = drm.decodePropFlags(p.flags);
      const info: PropInfo = {
        id,
        name: p.name,
        type: flags.type,
        immutable: flags.immutable,
        value: values[i],
        enums: new Map(p.enums.map((e) => [e.name, e.value])),
      };
      if (flags.type === 'range' && p.values.length >= 2) info.range = [p.values[0], p.values[1]];
      if (flags.type === 'signed_range' && p.values.length >= 2) {
        info.range = [BigInt.asIntN(64, p.values[0]), BigInt.asIntN(64, p.values[1])];
      }
      return info;
    });
    return new PropertySet(objectId, objectKind, infos);
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  get(name: string): PropInfo | undefined {
    return this.byName.get(name);
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  all(): PropInfo[] {
    return [...this.byName.values()];
  }

  /** The property's id; an unknown name is an error that lists what the object has. */
  id(name: string): number {
    const p = this.byName.get(name);
    if (!p) {
      throw new Error(`${this.objectKind} ${this.objectId} has no property '${name}'; it has: ${this.names().join(', ')}`);
    }
    return p.id;
  }

  /** Value of an enum entry by name (e.g. plane 'type' → 'Primary'). */
  enumValue(name: string, entry: string): bigint {
    const p = this.byName.get(name);
    const v = p?.enums.get(entry);
    if (v === undefined) {
      throw new Error(`${this.objectKind} ${this.objectId} property '${name}' has no value '${entry}'${p ? `; values: ${[...p.enums.keys()].join(', ')}` : ''}`);
    }
    return v;
  }

  /** Name of the current value of an enum property. */
  enumName(name: string): string | undefined {
    const p = this.byName.get(name);
    if (!p) return undefined;
    for (const [k, v] of p.enums) if (v === p.value) return k;
    return undefined;
  }

  /** Re-reads current values (ids and enums do not change while the device is open). */
  refreshValues(fd: number, objectType: number): void {
    const { props, values } = drm.objectGetProperties(fd, this.objectId, objectType);
    props.forEach((id, i) => {
      for (const p of this.byName.values()) if (p.id === id) p.value = values[i];
    });
  }
}
