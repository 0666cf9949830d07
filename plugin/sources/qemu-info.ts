// `guestplane info --qemu-dbus ADDRESS`: what a QEMU VM's D-Bus display offers.
import { QemuDisplay } from './qemu-display.js';
import type { QemuConsoleInfo, QemuVmInfo } from './qemu-dbus.js';
import { qemuRangeFromConsoles } from './qemu-version.js';

export interface QemuDisplayDescription {
  address: string;
  vm: QemuVmInfo;
  consoles: QemuConsoleInfo[];
}

export async function describeQemuDisplay(address: string, opts: { timeoutMs?: number } = {}): Promise<QemuDisplayDescription> {
  const d = await QemuDisplay.connect(address, opts);
  try {
    return { address, vm: await d.vmInfo(), consoles: await d.consoles() };
  } finally {
    d.close();
  }
}

export function renderQemuDisplay(d: QemuDisplayDescription): string {
  const lines = [`QEMU display at ${d.address}: VM "${d.vm.name}"${/^0{8}-0{4}-0{4}-0{4}-0{12}$/.test(d.vm.uuid) || !d.vm.uuid ? '' : ` (${d.vm.uuid})`}, ${d.consoles.length} console(s)`];
  // QEMU does not say its version over D-Bus; the consoles' interfaces bound it (qemu-version.ts).
  lines.push(`  ${qemuRangeFromConsoles(d.consoles.map((c) => c.interfaces))}; the kiosk's attach line says which listener interfaces it uses`);
  for (const c of d.consoles) {
    const what = c.type === 'Graphic' ? `${c.width}x${c.height}` : 'not graphic: cannot be shown';
    lines.push(`  console ${c.id}: ${c.type} "${c.label}" ${what}${c.deviceAddress ? `, device ${c.deviceAddress}` : ''}${c.head ? `, head ${c.head}` : ''}`);
    if (c.interfaces.length) lines.push(`    interfaces: ${c.interfaces.join(', ')}`);
  }
  lines.push(`show one with: guestplane kiosk --qemu-dbus ${d.address} --console N`);
  return lines.join('\n') + '\n';
}
