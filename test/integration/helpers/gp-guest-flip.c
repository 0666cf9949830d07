// PID 1 of the nested test guest (qemu-dbus-guest.test.ts): a tiny KMS program on the
// guest's virtio-gpu card. Two dumb buffers (with virtio-gpu's blob feature these are blob
// resources in guest RAM, which QEMU hands to its display as udmabufs), numbered frames
// drawn with the same pattern as plugin/sources/pattern.ts (so the host can check pixels
// and decode the frame number), GP_FRAMES page flips, timings on the serial console.
// Then it keeps the last frame on screen (GP_HOLD_MS, default forever) and powers off.
// While it holds forever, lines on its console (QEMU's stdin with -serial stdio) are
// commands: "off" turns the CRTC(s) off (the guest's display really goes off: virtio-gpu sends
// a Disable alone); "run" flips numbered frames again, on from the held one, until a line
// "stop" (then it holds again: the demo measures between two held frames).
//
// Static (gcc -static), raw DRM ioctls only: the guest root holds nothing but this file.
// Settings come from the kernel command line (unknown name=value parameters reach PID 1
// as environment variables): GP_FRAMES (default 60), GP_WIDTH/GP_HEIGHT (default: the
// connector's preferred mode), GP_HOLD_MS (-1 = forever), GP_SCATTER_PAGES (default 1024,
// see below; 0 = off), GP_HEADS (default 1; 2 = also drive a second connector on its own
// CRTC, for a virtio-gpu with max_outputs=2: QEMU enables that output only once a display
// sends SetUIInfo for its console, so the program waits up to GP_HEAD2_WAIT_S (default 240)
// s for it to be connected. The second head shows pattern frame N + 500 when the first
// shows N, so the host tells the heads apart by the number alone).
//
// Console lines (the test parses them; all start with "gp-guest: "):
//   init at T s                      kernel boot time (CLOCK_BOOTTIME) when this started
//   card /dev/dri/cardN virtio_gpu   which node
//   mode WxH crtc C connector K      what it set
//   buffer I handle H pitch P size S
//   frame N buffer I draw D ms flip F ms at T s   one per frame (frame 1 is the SETCRTC)
//   done N frames in T ms: draw p50 D ms, flip p50 F ms, X frames/s
//   holding frame N                  (again after each "stop")
//   display off                      after "off" on the console
// With GP_HEADS=2 also (the lines above stay those of the first head):
//   head 2 waiting for a connected connector
//   head 2 mode WxH crtc C connector K
//   head 2 buffer I handle H pitch P size S fb F
//   head 2 frame N pattern P buffer I draw D ms flip F ms at T s   after frame N's line
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <poll.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <drm.h>
#include <drm_mode.h>

#define DRM_FORMAT_XRGB8888 0x34325258u /* 'XR24' */

static void say(const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (n > (int)sizeof line - 2) n = sizeof line - 2;
  line[n++] = '\n';
  (void)!write(1, "gp-guest: ", 10);
  (void)!write(1, line, n);
}

static void halt(int code) {
  say("exit %d", code);
  sync();
  if (getpid() == 1) {
    reboot(RB_AUTOBOOT); // QEMU runs with -no-reboot: it exits (power-off needs ACPI)
    for (;;) pause();
  }
  exit(code);
}

static void die(const char *what) {
  say("error: %s: %s", what, strerror(errno));
  halt(1);
}

static double now_s(clockid_t c) {
  struct timespec t;
  clock_gettime(c, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static long env_long(const char *name, long dflt) {
  const char *v = getenv(name);
  if (!v || !*v) return dflt;
  char *end;
  long n = strtol(v, &end, 10);
  return *end ? dflt : n;
}

static int xioctl(int fd, unsigned long req, void *arg) {
  int r;
  do r = ioctl(fd, req, arg);
  while (r == -1 && (errno == EINTR || errno == EAGAIN));
  return r;
}

// ---------------------------------------------------------------------------------------
// The pattern: a line-for-line port of plugin/sources/pattern.ts (drawPattern).

#define BIT_BLOCK 16
#define FRAME_BITS 24
#define MAGIC 0xb

static const int DIGIT_SEGMENTS[10] = {0x3f, 0x06, 0x5b, 0x4f, 0x66, 0x6d, 0x7d, 0x07, 0x7f, 0x6f};

static uint32_t rgb(int r, int g, int b) { return 0xff000000u | (uint32_t)r << 16 | (uint32_t)g << 8 | (uint32_t)b; }
static int imax(int a, int b) { return a > b ? a : b; }
static int imin(int a, int b) { return a < b ? a : b; }
static int floordiv(long a, long b) { long q = a / b; return (int)((a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q); }

static void fill_rect(uint32_t *px, int pitch, int w, int h, int x, int y, int rw, int rh, uint32_t c) {
  int x0 = imax(0, x), x1 = imin(w, x + rw);
  for (int yy = imax(0, y); yy < imin(h, y + rh); yy++)
    for (int xx = x0; xx < x1; xx++) px[yy * pitch + xx] = c;
}

static void draw_pattern(uint32_t *px, int pitch, int w, int h, int frame) {
  const uint32_t WHITE = rgb(255, 255, 255), BLACK = rgb(0, 0, 0);
  const int bands = 8;
  for (int band = 0; band < bands; band++) {
    int y0 = floordiv((long)band * h, bands), y1 = floordiv((long)(band + 1) * h, bands);
    if (y1 <= y0) continue;
    uint32_t *row = px + (long)y0 * pitch;
    for (int x = 0; x < w; x++) {
      int v = floordiv((long)x * 255, imax(1, w - 1));
      row[x] = rgb((v + band * 32) & 0xff, (255 - v) & 0xff, (band * 37) & 0xff);
    }
    for (int y = y0 + 1; y < y1; y++) memcpy(px + (long)y * pitch, row, (size_t)w * 4);
  }
  int barW = imax(8, w / 16);
  int barX = (int)(((long)frame * 4) % imax(1, w - barW));
  fill_rect(px, pitch, w, h, barX, BIT_BLOCK * 2, barW, h - BIT_BLOCK * 2, rgb(250, 250, 40));
  // frame number bits: 4 marker bits, then FRAME_BITS bits, MSB first
  int bits[4 + FRAME_BITS], n = 0;
  for (int i = 3; i >= 0; i--) bits[n++] = (MAGIC >> i) & 1;
  for (int i = FRAME_BITS - 1; i >= 0; i--) bits[n++] = (int)(((unsigned long)frame >> i) & 1);
  fill_rect(px, pitch, w, h, 0, 0, n * BIT_BLOCK, BIT_BLOCK * 2, BLACK);
  for (int i = 0; i < n; i++)
    if (bits[i]) fill_rect(px, pitch, w, h, i * BIT_BLOCK, 0, BIT_BLOCK, BIT_BLOCK, WHITE);
  // seven-segment digits, at least 5
  char digits[32];
  int len = snprintf(digits, sizeof digits, "%05d", frame);
  int s = imax(4, imin(w, h) / 48);
  int dw = s * 6, dh = s * 11;
  int x0 = (int)__builtin_floor(w / 2.0 - (len * (dw + s * 2)) / 2.0);
  int y0 = (int)__builtin_floor(h / 2.0 - dh / 2.0);
  fill_rect(px, pitch, w, h, x0 - s * 2, y0 - s * 2, len * (dw + s * 2) + s * 2, dh + s * 4, BLACK);
  for (int i = 0; i < len; i++) {
    int seg = DIGIT_SEGMENTS[digits[i] - '0'];
    int x = x0 + i * (dw + s * 2);
    int half = dh / 2;
    if (seg & 0x01) fill_rect(px, pitch, w, h, x, y0, dw, s, WHITE);
    if (seg & 0x02) fill_rect(px, pitch, w, h, x + dw - s, y0, s, half, WHITE);
    if (seg & 0x04) fill_rect(px, pitch, w, h, x + dw - s, y0 + half, s, half, WHITE);
    if (seg & 0x08) fill_rect(px, pitch, w, h, x, y0 + dh - s, dw, s, WHITE);
    if (seg & 0x10) fill_rect(px, pitch, w, h, x, y0 + half, s, half, WHITE);
    if (seg & 0x20) fill_rect(px, pitch, w, h, x, y0, s, half, WHITE);
    if (seg & 0x40) fill_rect(px, pitch, w, h, x, y0 + half - s / 2, dw, s, WHITE);
  }
}

// ---------------------------------------------------------------------------------------
// KMS

struct buffer {
  uint32_t handle, pitch, fb;
  uint64_t size;
  uint32_t *map;
};

static int open_virtio_card(char *path, size_t pathlen) {
  for (int i = 0; i < 16; i++) {
    snprintf(path, pathlen, "/dev/dri/card%d", i);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) continue;
    char name[64] = {0};
    struct drm_version v = {0};
    v.name = name;
    v.name_len = sizeof name - 1;
    if (xioctl(fd, DRM_IOCTL_VERSION, &v) == 0 && strcmp(name, "virtio_gpu") == 0) return fd;
    close(fd);
  }
  return -1;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

// What it takes to show a frame: the card, its CRTC, connector and mode, the two buffers.
struct flipper {
  int fd;
  uint32_t crtc_id, conn_id;
  struct drm_mode_modeinfo mode;
  struct buffer *buf;
  int W, H;
  // 0: the first head (its lines are the one-head program's); else the head's number, and
  // the pattern shown is the frame number plus pattern_base.
  int head;
  long pattern_base;
};

// Draws frame n into the buffer not on screen and shows it (frame 1 sets the CRTC, the
// others page-flip and wait for the flip event); one console line with its timings.
static void show_frame(struct flipper *f, long n, double *draw_ms, double *flip_ms) {
  struct buffer *b = &f->buf[n % 2];
  double t0 = now_s(CLOCK_MONOTONIC);
  draw_pattern(b->map, (int)(b->pitch / 4), f->W, f->H, (int)(n + f->pattern_base));
  double t1 = now_s(CLOCK_MONOTONIC);
  if (n == 1) {
    struct drm_mode_crtc sc = {0};
    sc.crtc_id = f->crtc_id;
    sc.fb_id = b->fb;
    sc.set_connectors_ptr = (uintptr_t)&f->conn_id;
    sc.count_connectors = 1;
    sc.mode = f->mode;
    sc.mode_valid = 1;
    if (xioctl(f->fd, DRM_IOCTL_MODE_SETCRTC, &sc)) die("SETCRTC");
  } else {
    struct drm_mode_crtc_page_flip pf = {0};
    pf.crtc_id = f->crtc_id;
    pf.fb_id = b->fb;
    pf.flags = DRM_MODE_PAGE_FLIP_EVENT;
    pf.user_data = (uint64_t)n;
    if (xioctl(f->fd, DRM_IOCTL_MODE_PAGE_FLIP, &pf)) die("PAGE_FLIP");
    char ev[256];
    for (;;) {
      ssize_t r = read(f->fd, ev, sizeof ev);
      if (r < 0 && errno == EINTR) continue;
      if (r < (ssize_t)sizeof(struct drm_event)) die("reading the flip event");
      if (((struct drm_event *)ev)->type == DRM_EVENT_FLIP_COMPLETE) break;
    }
  }
  double t2 = now_s(CLOCK_MONOTONIC);
  *draw_ms = (t1 - t0) * 1e3;
  *flip_ms = (t2 - t1) * 1e3;
  if (f->head)
    say("head %d frame %ld pattern %ld buffer %ld draw %.1f ms flip %.1f ms at %.2f s", f->head, n, n + f->pattern_base, n % 2, *draw_ms, *flip_ms, now_s(CLOCK_BOOTTIME));
  else
    say("frame %ld buffer %ld draw %.1f ms flip %.1f ms at %.2f s", n, n % 2, *draw_ms, *flip_ms, now_s(CLOCK_BOOTTIME));
}

// Frame n on every head, one after the other (each waits for its own flip event); the
// times are summed over the heads.
static void show_frames(struct flipper *f, int heads, long n, double *draw_ms, double *flip_ms) {
  *draw_ms = *flip_ms = 0;
  for (int i = 0; i < heads; i++) {
    double d, fl;
    show_frame(&f[i], n, &d, &fl);
    *draw_ms += d;
    *flip_ms += fl;
  }
}

// The first connected connector other than `skip_conn` with a WxH mode (or, without
// wantW/wantH, its preferred one), and a CRTC for it other than `skip_crtc`. 0 = found.
// `quiet`: no lines about connectors without the mode (the second head polls).
struct head_pick {
  uint32_t conn_id, crtc_id;
  struct drm_mode_modeinfo mode;
};
static int find_head(int fd, const uint32_t *conns, uint32_t nconns, const uint32_t *crtcs, uint32_t ncrtcs, long wantW, long wantH, uint32_t skip_conn,
                     uint32_t skip_crtc, int quiet, struct head_pick *out) {
  for (uint32_t c = 0; c < nconns; c++) {
    if (conns[c] == skip_conn) continue;
    struct drm_mode_get_connector gc = {0};
    gc.connector_id = conns[c];
    if (xioctl(fd, DRM_IOCTL_MODE_GETCONNECTOR, &gc)) die("GETCONNECTOR");
    if (gc.connection != 1 || gc.count_modes == 0) continue;
    struct drm_mode_modeinfo *modes = calloc(gc.count_modes, sizeof *modes);
    uint32_t nmodes = gc.count_modes;
    gc.modes_ptr = (uintptr_t)modes;
    gc.count_props = 0;
    gc.count_encoders = 0;
    if (xioctl(fd, DRM_IOCTL_MODE_GETCONNECTOR, &gc)) die("GETCONNECTOR");
    if (gc.count_modes < nmodes) nmodes = gc.count_modes;
    int pick = -1;
    for (uint32_t m = 0; m < nmodes; m++) {
      if (wantW && wantH) {
        if (modes[m].hdisplay == wantW && modes[m].vdisplay == wantH) { pick = (int)m; break; }
      } else if (modes[m].type & DRM_MODE_TYPE_PREFERRED) { pick = (int)m; break; }
    }
    if (pick < 0 && !(wantW && wantH)) pick = 0;
    if (pick < 0) {
      if (!quiet) {
        say("connector %u has no mode %ldx%ld; modes:", conns[c], wantW, wantH);
        for (uint32_t m = 0; m < nmodes; m++) say("  %ux%u", modes[m].hdisplay, modes[m].vdisplay);
      }
      free(modes);
      continue;
    }
    out->mode = modes[pick];
    free(modes);
    out->conn_id = conns[c];
    out->crtc_id = 0;
    if (gc.encoder_id) {
      struct drm_mode_get_encoder ge = {0};
      ge.encoder_id = gc.encoder_id;
      if (xioctl(fd, DRM_IOCTL_MODE_GETENCODER, &ge) == 0) out->crtc_id = ge.crtc_id;
    }
    // virtio-gpu pairs connector i with CRTC i.
    if (!out->crtc_id || out->crtc_id == skip_crtc) out->crtc_id = crtcs[c < ncrtcs ? c : 0];
    if (out->crtc_id == skip_crtc) {
      errno = EBUSY;
      die("no free CRTC for the second head");
    }
    return 0;
  }
  return -1;
}

int main(int argc, char **argv) {
  // Host-side self-check: `gp-guest-flip --draw W H N` writes frame N as raw XR24 rows to
  // stdout, so the test can compare this port with pattern.ts before booting anything.
  if (argc == 5 && strcmp(argv[1], "--draw") == 0) {
    int w = atoi(argv[2]), h = atoi(argv[3]), n = atoi(argv[4]);
    if (w <= 0 || h <= 0 || n < 0) return 2;
    uint32_t *px = calloc((size_t)w * h, 4);
    draw_pattern(px, w, w, h, n);
    size_t len = (size_t)w * h * 4, off = 0;
    while (off < len) {
      ssize_t r = write(1, (char *)px + off, len - off);
      if (r <= 0) return 1;
      off += (size_t)r;
    }
    return 0;
  }
  double boot = now_s(CLOCK_BOOTTIME);
  say("init at %.2f s", boot);
  if (getpid() == 1) {
    // DEVTMPFS_MOUNT mounts /dev on a disk root; mount it ourselves if it did not.
    if (access("/dev/dri", F_OK) != 0) mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
  }
  char path[64];
  int fd = -1;
  for (int tries = 0; tries < 100 && fd < 0; tries++) {
    fd = open_virtio_card(path, sizeof path);
    if (fd < 0) usleep(50 * 1000);
  }
  if (fd < 0) {
    errno = ENODEV;
    die("no virtio_gpu card under /dev/dri");
  }
  say("card %s virtio_gpu", path);

  // --- connector, mode, CRTC ---
  struct drm_mode_card_res res = {0};
  if (xioctl(fd, DRM_IOCTL_MODE_GETRESOURCES, &res)) die("GETRESOURCES");
  uint32_t crtcs[16] = {0}, conns[16] = {0}, encs[16] = {0}, fbs[16] = {0};
  if (res.count_crtcs > 16 || res.count_connectors > 16 || res.count_encoders > 16) {
    errno = E2BIG;
    die("too many KMS objects");
  }
  res.count_fbs = 0;
  res.crtc_id_ptr = (uintptr_t)crtcs;
  res.connector_id_ptr = (uintptr_t)conns;
  res.encoder_id_ptr = (uintptr_t)encs;
  res.fb_id_ptr = (uintptr_t)fbs;
  if (xioctl(fd, DRM_IOCTL_MODE_GETRESOURCES, &res)) die("GETRESOURCES");

  long wantW = env_long("GP_WIDTH", 0), wantH = env_long("GP_HEIGHT", 0);
  int heads = env_long("GP_HEADS", 1) == 2 ? 2 : 1;
  struct head_pick hp[2] = {0};
  if (find_head(fd, conns, res.count_connectors, crtcs, res.count_crtcs, wantW, wantH, 0, 0, 0, &hp[0])) {
    errno = ENOENT;
    die("no connected connector with the wanted mode");
  }
  int W = hp[0].mode.hdisplay, H = hp[0].mode.vdisplay;
  say("mode %dx%d crtc %u connector %u", W, H, hp[0].crtc_id, hp[0].conn_id);
  if (heads == 2) {
    // The second output is off until a display tells QEMU about it (SetUIInfo); then the
    // kernel gets a display event and the connector is connected on the next probe.
    long wait_ms = env_long("GP_HEAD2_WAIT_S", 240) * 1000;
    int said = 0;
    while (find_head(fd, conns, res.count_connectors, crtcs, res.count_crtcs, W, H, hp[0].conn_id, hp[0].crtc_id, 1, &hp[1])) {
      if (!said++) say("head 2 waiting for a connected connector");
      if ((wait_ms -= 100) < 0) {
        errno = ETIMEDOUT;
        die("head 2: no second connected connector with the first head's mode (did the display send SetUIInfo for console 1?)");
      }
      usleep(100 * 1000);
    }
    say("head 2 mode %dx%d crtc %u connector %u", W, H, hp[1].crtc_id, hp[1].conn_id);
  }

  // --- scatter the free pages ---
  // QEMU 7.2 makes a udmabuf of a blob only when the blob is in more than one piece of
  // guest memory (virtio_gpu_init_udmabuf: iov_cnt == 1 uses the guest pages directly and
  // the scanout takes the 2D surface way, which -display dbus,gl=on cannot export here).
  // A freshly booted guest gets one contiguous run of pages for a dumb buffer, so leave
  // holes first: dumb buffers are shmem pages without __GFP_MOVABLE, as pipe buffers are,
  // so fill pipe pairs a page at a time in turn and close one pipe of each pair. The dumb
  // buffers' pages then come from every other page (GP_SCATTER_PAGES holes, 0 = off).
  long holes = env_long("GP_SCATTER_PAGES", 1024);
  if (holes > 0) {
    static char page[4096];
    long made = 0;
    while (made < holes) {
      int keep[2], drop[2];
      if (pipe(keep) || pipe(drop)) die("pipe");
      int cap = fcntl(keep[1], F_SETPIPE_SZ, 1 << 20);
      if (cap < 0 || fcntl(drop[1], F_SETPIPE_SZ, cap) < 0) die("F_SETPIPE_SZ");
      for (int i = 0; i < cap / 4096 && made < holes; i++, made++) {
        if (write(keep[1], page, sizeof page) != sizeof page || write(drop[1], page, sizeof page) != sizeof page) die("filling pipes");
      }
      close(drop[0]);
      close(drop[1]);
    }
    say("left %ld single-page holes in unmovable memory", made);
  }

  // --- two dumb buffers per head ---
  struct buffer buf[4];
  for (int i = 0; i < 2 * heads; i++) {
    struct drm_mode_create_dumb cd = {.width = (uint32_t)W, .height = (uint32_t)H, .bpp = 32};
    if (xioctl(fd, DRM_IOCTL_MODE_CREATE_DUMB, &cd)) die("CREATE_DUMB");
    struct drm_mode_map_dumb md = {.handle = cd.handle};
    if (xioctl(fd, DRM_IOCTL_MODE_MAP_DUMB, &md)) die("MAP_DUMB");
    void *map = mmap(NULL, cd.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)md.offset);
    if (map == MAP_FAILED) die("mmap dumb buffer");
    struct drm_mode_fb_cmd2 fb = {.width = (uint32_t)W, .height = (uint32_t)H, .pixel_format = DRM_FORMAT_XRGB8888};
    fb.handles[0] = cd.handle;
    fb.pitches[0] = cd.pitch;
    if (xioctl(fd, DRM_IOCTL_MODE_ADDFB2, &fb)) die("ADDFB2");
    buf[i] = (struct buffer){.handle = cd.handle, .pitch = cd.pitch, .fb = fb.fb_id, .size = cd.size, .map = map};
    say("%sbuffer %d handle %u pitch %u size %llu fb %u", i < 2 ? "" : "head 2 ", i % 2, cd.handle, cd.pitch, (unsigned long long)cd.size, fb.fb_id);
  }

  long frames = env_long("GP_FRAMES", 60);
  if (frames < 1) frames = 1;
  double *draw_ms = calloc((size_t)frames + 1, sizeof(double));
  double *flip_ms = calloc((size_t)frames + 1, sizeof(double));
  struct flipper f[2];
  for (int i = 0; i < heads; i++)
    f[i] = (struct flipper){.fd = fd, .crtc_id = hp[i].crtc_id, .conn_id = hp[i].conn_id, .mode = hp[i].mode, .buf = buf + 2 * i, .W = W, .H = H, .head = i ? i + 1 : 0, .pattern_base = i ? 500 : 0};
  double t_start = now_s(CLOCK_MONOTONIC);

  for (long n = 1; n <= frames; n++) show_frames(f, heads, n, &draw_ms[n], &flip_ms[n]);
  double total = (now_s(CLOCK_MONOTONIC) - t_start) * 1e3;
  qsort(draw_ms + 1, (size_t)frames, sizeof(double), cmp_double);
  qsort(flip_ms + 1, (size_t)frames, sizeof(double), cmp_double);
  say("done %ld frames in %.0f ms: draw p50 %.1f ms, flip p50 %.1f ms, %.2f frames/s", frames, total, draw_ms[1 + frames / 2], flip_ms[1 + frames / 2],
      frames * 1e3 / total);
  say("holding frame %ld", frames);
  long hold = env_long("GP_HOLD_MS", -1);
  if (hold < 0) {
    char line[64];
    ssize_t r;
    long shown = frames;
    while ((r = read(0, line, sizeof line - 1)) > 0) {
      line[r] = 0;
      if (strncmp(line, "run", 3) == 0) {
        // Flip on until "stop" arrives: stdin is looked at between frames, never waited for.
        struct pollfd in = {.fd = 0, .events = POLLIN};
        double d, fl;
        for (;;) {
          show_frames(f, heads, ++shown, &d, &fl);
          if (poll(&in, 1, 0) <= 0) continue;
          r = read(0, line, sizeof line - 1);
          if (r <= 0) break;
          line[r] = 0;
          if (strncmp(line, "stop", 4) == 0) break;
        }
        say("holding frame %ld", shown);
        continue;
      }
      if (strncmp(line, "off", 3) != 0) continue;
      for (int i = 0; i < heads; i++) {
        struct drm_mode_crtc sc = {.crtc_id = f[i].crtc_id};
        if (xioctl(fd, DRM_IOCTL_MODE_SETCRTC, &sc)) die("SETCRTC off");
      }
      say("display off");
    }
    for (;;) pause();
  }
  usleep((useconds_t)hold * 1000);
  halt(0);
}
