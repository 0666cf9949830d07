// The command's help texts (one per subcommand, `guestplane CMD --help`), its version
// (package.json's), and the overview `guestplane --help` prints.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const OVERVIEW = `usage: guestplane <command> [options]

commands:
  info         describe a KMS device, or a QEMU VM's D-Bus display
  kiosk        show one guest full screen (or several heads: kiosk --config FILE)
  heads        several guests on several screens from a config file (= kiosk --config)
  compositor   a cage-like Wayland kiosk compositor, optionally running one application
  window       show one guest in a window on your Wayland desktop

'guestplane <command> --help' describes a command and its options.
  --version              the version
  --log-level LEVEL      (any command) error | warn | info | debug (default info, or $GUESTPLANE_LOG_LEVEL)
exit codes: 0 clean stop (also on SIGINT/SIGTERM), 1 failure, 2 usage error;
compositor -- CMD exits with CMD's status.
`;

const SEAT = `  --no-input       no host keyboards and pointers (default: all of seat0's, through libinput and udev)
  --input-devices P,Q  only these /dev/input/event* nodes
  --session MODE   seat | direct | auto (default auto: direct as root, else seat).
                   seat: open the card and input devices through libseat (seatd or
                   logind; no root), stop drawing while another VT has the seat,
                   Ctrl+Alt+F1..F12 switch VTs. direct: open the nodes ourselves.`;

const CHORDS = `  --chords LIST    the key chords turned on: all (default), none, or a comma-separated
                   list of quit (Ctrl+Alt+Q), grab (Ctrl+Alt+G: release/take back the
                   keyboard and pointer) and vt (Ctrl+Alt+F1..F12, on a seat). A chord
                   turned off is a key like others, passed to the guest.`;

export const HELP: Record<string, string> = {
  info: `usage: guestplane info [--device PATH] [--json] [--all-modes]
       guestplane info --qemu-dbus ADDRESS [--json]

Describe a KMS device: driver, caps, CRTCs, connectors (modes, writeback), encoders and
planes (formats with modifiers, zpos, rotations, properties); or a QEMU VM's D-Bus
display: name, UUID and each console (type, label, size, device, interfaces).
  --device PATH    the card node (default: the first /dev/dri/card* with atomic KMS)
  --json           machine-readable output on stdout
  --all-modes      list every mode (text output shows 5 per connector otherwise)
  --qemu-dbus ADDR a VM started with -display dbus (see guestplane kiosk --help)
  --connect-timeout S  how long to wait for QEMU's D-Bus handshake and first answer
                   (default 5 seconds)
`,
  kiosk: `usage: guestplane kiosk (--vfio UUID|SYSFS-PATH | --qemu-dbus ADDRESS [--console N] | --udmabuf WxH) [options]
       guestplane kiosk --config FILE [options]   (several heads: see guestplane heads --help)

Show one guest full screen on one connector, zero-copy where the planes take its
buffers; "no signal" while the guest has no plane; one stats line per second.
SIGINT/SIGTERM restore the previous screen configuration and exit 0.
  --vfio ID        a mediated device (UUID under /sys/bus/mdev/devices, or its sysfs path)
  --vfio-fd N      a VFIO device fd handed over by the VMM (inherited as fd N)
  --qemu-dbus ADDR a QEMU/libvirt VM started with -display dbus: the bus address it
                   uses (unix:path=…), 'session', or fd:N (an inherited socket connected
                   peer-to-peer: -display dbus,p2p=yes + QMP add_client);
                   waits for QEMU and reattaches when it restarts
  --console N      the QEMU console to show (default 0)
  --touch MODE     pointer (default: a finger is the guest's pointer) | multitouch
                   (every finger through QEMU 8.1+'s MultiTouch; the guest needs a touch
                   device, e.g. -device virtio-multitouch-pci)
  --connect-timeout S  how long each attempt waits for QEMU's D-Bus handshake and first
                   answer (default 5 seconds; then no signal, and a retry every second)
  --udmabuf WxH    the built-in udmabuf test guest (guest RAM as dma-bufs) of that size
  --fps N          frame rate of the built-in test guest (default 60)
  --test-guest N   with --vfio on an mbochs device: also animate it at N fps (no VM needed)
  --device PATH    the card node (default: the first with atomic KMS)
  --connector NAME e.g. HDMI-A-1, Virtual-1 (default: the first connected one)
  --mode WxH[@Hz]  display mode (default: the connector's preferred mode)
  --fit MODE       native (1:1, centred) | fit (keep aspect) | fill (default fit)
  --stats FORMAT   text | json | none (default text)
  --capture-dir D  on SIGUSR1, write the next frame (from the writeback connector) to D as PNG
Input (into a --qemu-dbus guest only):
${SEAT}
${CHORDS}
  --log-level L    error | warn | info | debug (default info)
`,
  heads: `usage: guestplane heads --config FILE [--device PATH] [--stats text|json|none] [options]
       (the same as guestplane kiosk --config FILE)

Several guests on several heads, as FILE (JSON) describes them: the format is in the
README and at the top of plugin/modes/heads-config.ts; the package's examples/heads.json
is one, examples/heads.schema.json the JSON Schema (for an editor's completion).
Connectors may come and go (hotplug). One host pointer moves over the screens' layout;
pointer and keyboard go to the QEMU guest of the head under it (per-head devices and
positions: in FILE). SIGINT/SIGTERM restore the screens and exit 0.
  --config FILE    the heads file
  --device PATH    the card node (overrides FILE's)
  --stats FORMAT   text | json | none (default text)
${SEAT}
${CHORDS}
  --log-level L    error | warn | info | debug (default info)
`,
  compositor: `usage: guestplane compositor [options] [-- CMD [ARGS…]]

A kiosk Wayland compositor: one full-screen toplevel, its dma-buf buffers scanned out
when the planes take them, wl_shm through the copy path; linux-dmabuf v4 with scanout
tranches, presentation-time, drm-lease, viewporter. The seat has the host's keyboards,
pointers and touchscreens (libinput on seat0; keymap from XKB_DEFAULT_LAYOUT etc.).
Without CMD it prints WAYLAND_DISPLAY=… on stdout and runs until SIGINT/SIGTERM (exit 0).
With CMD (cage's way): starts CMD with WAYLAND_DISPLAY and XDG_RUNTIME_DIR set once the
socket is ready, passes SIGINT/SIGTERM on to it, and when CMD exits restores the screen
and exits with CMD's status (128+N if a signal N ended it; 1 if CMD could not start).
  --device PATH    the card node (default: the first with a connected display)
  --connector NAME the connector to show the toplevel on
  --mode WxH[@Hz]  display mode (default: the connector's preferred mode)
  --socket NAME    socket name in $XDG_RUNTIME_DIR, or an absolute path (default: wayland-N)
  --fit MODE       native | fit | fill (default native)
  --no-lease       do not offer unused connectors through wp_drm_lease_device_v1
${SEAT}
  --chords LIST    all (default) | none | vt: Ctrl+Alt+F1..F12 switch VTs (on a seat); with
                   none they go to the client. Ctrl+Alt+Q and G are always the client's.
  --log-level L    error | warn | info | debug (default info)
`,
  window: `usage: guestplane window (--qemu-dbus ADDRESS [--console N|all] | --udmabuf WxH [--fps N]) [options]

Show one guest in a window on your Wayland desktop: each guest buffer goes to the desktop
compositor as its own dma-buf (zero copies by us; a wl_shm copy where the desktop does not
take it: a GPU blit into a buffer it takes, else a wl_shm copy), each guest frame acknowledged when the desktop presented it (wp_presentation).
Closing the window, SIGINT/SIGTERM or the desktop going away stop it (exit 0); the VM
keeps running. Keys, pointer and touch go to a QEMU guest while the window has them; a
guest whose mouse is relative captures the pointer on a click, Ctrl+Alt+G releases it.
  --qemu-dbus ADDR a QEMU/libvirt VM started with -display dbus (see guestplane kiosk --help)
  --console N|all  the QEMU console to show (default 0); all: one window per graphic console
  --udmabuf WxH    the built-in test guest; --fps N its rate (default 60)
  --fit MODE       native | fit | fill (default fit)
  --title T        the window title (default: the guest's name)
  --fullscreen     ask the desktop for a fullscreen window
  --copy           copy every frame into wl_shm buffers instead of handing over the dma-buf
  --touch MODE     pointer (default: a finger is the guest's pointer, any guest takes it) |
                   multitouch (every finger through QEMU 8.1+'s MultiTouch; the guest needs a
                   touch device, e.g. -device virtio-multitouch-pci; QEMU 7.x: the pointer)
  --gles           blit every frame on the GPU into a buffer the desktop takes (no copy behind it)
  --display NAME   the Wayland socket (default $WAYLAND_DISPLAY)
  --stats FORMAT   text | json | none (default text)
`,
};

/** The help text of `cmd`, or the overview. */
export function helpOf(cmd: string | undefined): string {
  return (cmd !== undefined && HELP[cmd]) || OVERVIEW;
}

/** package.json's version: the nearest package.json named guestplane above this file. */
export function version(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const p = join(dir, 'package.json');
    if (existsSync(p)) {
      const pkg = JSON.parse(readFileSync(p, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'guestplane' && pkg.version) return pkg.version;
    }
    dir = dirname(dir);
  }
  throw new Error(`guestplane's package.json not found above ${fileURLToPath(import.meta.url)}; reinstall the package`);
}
