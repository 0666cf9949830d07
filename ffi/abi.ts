// The ABI convention shared by every ffi module: each one exports `ABI: AbiManifest`,
// naming the C headers it mirrors, the koffi types that must match C structs byte for
// byte, and the macro values it copies. test/unit/abi.test.ts compiles a C program from
// all manifests and compares sizeof/_Alignof/offsetof and macro values with koffi's.
import koffi from 'koffi';
import type { IKoffiCType } from 'koffi';

export type { IKoffiCType };

/**
 * A C flexible array member (`struct udmabuf_create_item list[];`). koffi has no
 * zero-length arrays, so the koffi struct stops before it; `offset` is where the array
 * starts and `element` its element type (both checked against C).
 */
export interface AbiFlexibleArray {
  member: string;
  offset: number;
  element: IKoffiCType;
}

export interface AbiStruct {
  type: IKoffiCType;
  /**
   * C member paths to check (`header.id`, `dmabuf_id`). Default: every koffi member,
   * recursively (see abiMemberPaths).
   */
  members?: string[];
  flexible?: AbiFlexibleArray;
}

export interface AbiManifest {
  /** Headers as they appear in `#include <...>`, in include order. */
  headers: string[];
  /** Keyed by the C type name: `struct vfio_region_info`, or a typedef name. */
  structs: Record<string, AbiStruct>;
  /** Keyed by the C macro (or enumerator) name; compared as unsigned 64-bit. */
  constants: Record<string, number | bigint>;
}

/**
 * koffi members whose name starts with this prefix stand for C *anonymous* members
 * (`union { __u32 region_index; __u32 dmabuf_id; };`): C code names their fields
 * directly, so member paths skip them.
 */
export const ANON_PREFIX = '__anon';

interface KoffiMember {
  name: string;
  type: IKoffiCType;
  offset: number;
}

function membersOf(type: IKoffiCType): KoffiMember[] {
  const info = koffi.introspect(type);
  if (info.primitive !== 'Record' && info.primitive !== 'Union') return [];
  return Object.values(info.members ?? {});
}

function isAggregate(type: IKoffiCType): boolean {
  const p = koffi.introspect(type).primitive;
  return p === 'Record' || p === 'Union';
}

/**
 * Every C member path of a koffi struct: top-level members, members of nested
 * structs/unions as `outer.inner`, and members of anonymous (ANON_PREFIX) aggregates
 * under their own names. Arrays are checked as a whole (`name`), not per element.
 */
export function abiMemberPaths(type: IKoffiCType): string[] {
  const out: string[] = [];
  const walk = (t: IKoffiCType, prefix: string) => {
    for (const m of membersOf(t)) {
      if (m.name.startsWith(ANON_PREFIX)) {
        walk(m.type, prefix);
        continue;
      }
      const path = prefix + m.name;
      out.push(path);
      if (isAggregate(m.type)) walk(m.type, `${path}.`);
    }
  };
  walk(type, '');
  return out;
}

/**
 * Resolves a C member path (`header.next`, `dmabuf_id`) in a koffi struct the way a C
 * compiler does, looking through ANON_PREFIX members. Returns the absolute offset and
 * the member's size, or null when the path does not exist.
 */
export function abiMember(type: IKoffiCType, cPath: string): { offset: number; size: number; type: IKoffiCType } | null {
  let cur = type;
  let offset = 0;
  for (const name of cPath.split('.')) {
    const found = findMember(cur, name);
    if (!found) return null;
    offset += found.offset;
    cur = found.type;
  }
  return { offset, size: koffi.sizeof(cur), type: cur };
}

function findMember(type: IKoffiCType, name: string): { offset: number; type: IKoffiCType } | null {
  const members = membersOf(type);
  const direct = members.find((m) => m.name === name);
  if (direct) return { offset: direct.offset, type: direct.type };
  for (const m of members) {
    if (!m.name.startsWith(ANON_PREFIX)) continue;
    const inner = findMember(m.type, name);
    if (inner) return { offset: m.offset + inner.offset, type: inner.type };
  }
  return null;
}

/** Offset of a C member path in a koffi struct; throws if the path does not exist. */
export function offsetOf(type: IKoffiCType, cPath: string): number {
  const m = abiMember(type, cPath);
  if (!m) throw new Error(`${koffi.introspect(type).name} has no member ${cPath}`);
  return m.offset;
}
