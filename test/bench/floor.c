// The floor for per-frame host CPU: the least a process can do to put a udmabuf guest
// stream on a KMS plane. Same stream as the benchmark's Node guest (N buffers in one memfd,
// exported through /dev/udmabuf, flipped by a 60 Hz guest timer), same kernel work per
// frame (one non-blocking atomic commit of a pre-imported FB, with the same ten plane
// properties the Output sets, on the page-flip event or the guest flip, whichever comes
// last), and nothing else: no allocation, no lookups, no event loop but poll().
//
// Built by test/bench/run.mjs on the host (gcc, pkg-config libdrm) and run inside the rig.
// Prints one JSON object on stdout (counters and the raw latency samples, µs, for the
// benchmark to pool with other windows); errors go to stderr with a non-zero exit.
//
//   floor --card /dev/dri/cardN --connector ID --crtc ID --plane ID --width W --height H
//         [--buffers 3] [--fps 59.75] [--warmup-ms 1000] [--ms 6000]
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <inttypes.h>
#include <linux/udmabuf.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <xf86drm.h>
#include <xf86drmMode.h>
#include <drm_fourcc.h>

#define MAX_BUFFERS 16
#define MAX_SAMPLES 200000

static void die(const char *what) {
  fprintf(stderr, "floor: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void fail(const char *msg) {
  fprintf(stderr, "floor: %s\n", msg);
  exit(1);
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d))) if (e->d_name[0] != '.') n++;
  closedir(d);
  return n - 1; // the directory's own fd
}

static long rss_kb(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f) return -1;
  long size = 0, resident = 0;
  if (fscanf(f, "%ld %ld", &size, &resident) != 2) resident = -1;
  fclose(f);
  return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static uint64_t cpu_us(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000ull + (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static uint32_t prop_id(int fd, uint32_t obj, uint32_t type, const char *name) {
  drmModeObjectProperties *props = drmModeObjectGetProperties(fd, obj, type);
  if (!props) die("drmModeObjectGetProperties");
  uint32_t id = 0;
  for (uint32_t i = 0; i < props->count_props && !id; i++) {
    drmModePropertyRes *p = drmModeGetProperty(fd, props->props[i]);
    if (p && strcmp(p->name, name) == 0) id = p->prop_id;
    drmModeFreeProperty(p);
  }
  drmModeFreeObjectProperties(props);
  if (!id) {
    fprintf(stderr, "floor: object %u has no property %s\n", obj, name);
    exit(1);
  }
  return id;
}

struct plane_props {
  uint32_t fb_id, crtc_id, src_x, src_y, src_w, src_h, crtc_x, crtc_y, crtc_w, crtc_h;
};

static struct {
  int fd;
  uint32_t crtc, plane;
  struct plane_props pp;
  uint32_t fbs[MAX_BUFFERS];
  uint32_t w, h;
  // guest side
  int front;
  uint64_t flip_time;
  int pending;
  uint64_t guest_frames;
  // host side
  int inflight;
  uint64_t inflight_flip_time;
  uint64_t commits, failed, presented;
  int measuring;
  uint64_t *lat;
  size_t nlat;
} s;

static void set_plane(drmModeAtomicReq *req, uint32_t fb) {
  const struct plane_props *p = &s.pp;
  drmModeAtomicAddProperty(req, s.plane, p->fb_id, fb);
  drmModeAtomicAddProperty(req, s.plane, p->crtc_id, s.crtc);
  drmModeAtomicAddProperty(req, s.plane, p->src_x, 0);
  drmModeAtomicAddProperty(req, s.plane, p->src_y, 0);
  drmModeAtomicAddProperty(req, s.plane, p->src_w, (uint64_t)s.w << 16);
  drmModeAtomicAddProperty(req, s.plane, p->src_h, (uint64_t)s.h << 16);
  drmModeAtomicAddProperty(req, s.plane, p->crtc_x, 0);
  drmModeAtomicAddProperty(req, s.plane, p->crtc_y, 0);
  drmModeAtomicAddProperty(req, s.plane, p->crtc_w, s.w);
  drmModeAtomicAddProperty(req, s.plane, p->crtc_h, s.h);
}

static void commit_front(void) {
  drmModeAtomicReq *req = drmModeAtomicAlloc();
  set_plane(req, s.fbs[s.front]);
  int r = drmModeAtomicCommit(s.fd, req, DRM_MODE_ATOMIC_NONBLOCK | DRM_MODE_PAGE_FLIP_EVENT, NULL);
  drmModeAtomicFree(req);
  if (s.measuring) s.commits++;
  if (r != 0) {
    if (s.measuring) s.failed++;
    return; // retried at the next guest flip
  }
  s.inflight = 1;
  s.inflight_flip_time = s.flip_time;
  s.pending = 0;
}

static void on_flip(int fd, unsigned seq, unsigned sec, unsigned usec, unsigned crtc, void *data) {
  (void)fd; (void)seq; (void)crtc; (void)data;
  if (!s.inflight) return;
  s.inflight = 0;
  uint64_t t = (uint64_t)sec * 1000000000ull + (uint64_t)usec * 1000ull;
  if (s.measuring) {
    s.presented++;
    if (t >= s.inflight_flip_time && s.nlat < MAX_SAMPLES) s.lat[s.nlat++] = t - s.inflight_flip_time;
  }
  if (s.pending) commit_front();
}

int main(int argc, char **argv) {
  const char *card = NULL;
  uint32_t conn_id = 0;
  int buffers = 3;
  double fps = 60;
  long warmup_ms = 1000, run_ms = 6000;
  for (int i = 1; i + 1 < argc; i += 2) {
    const char *k = argv[i], *v = argv[i + 1];
    if (!strcmp(k, "--card")) card = v;
    else if (!strcmp(k, "--connector")) conn_id = (uint32_t)strtoul(v, NULL, 0);
    else if (!strcmp(k, "--crtc")) s.crtc = (uint32_t)strtoul(v, NULL, 0);
    else if (!strcmp(k, "--plane")) s.plane = (uint32_t)strtoul(v, NULL, 0);
    else if (!strcmp(k, "--width")) s.w = (uint32_t)strtoul(v, NULL, 0);
    else if (!strcmp(k, "--height")) s.h = (uint32_t)strtoul(v, NULL, 0);
    else if (!strcmp(k, "--buffers")) buffers = atoi(v);
    else if (!strcmp(k, "--fps")) fps = strtod(v, NULL);
    else if (!strcmp(k, "--warmup-ms")) warmup_ms = atol(v);
    else if (!strcmp(k, "--ms")) run_ms = atol(v);
    else {
      fprintf(stderr, "floor: unknown option %s\n", k);
      return 2;
    }
  }
  if (!card || !conn_id || !s.crtc || !s.plane || !s.w || !s.h || buffers < 1 || buffers > MAX_BUFFERS || !(fps >= 1 && fps <= 1000)) {
    fail("usage: floor --card PATH --connector ID --crtc ID --plane ID --width W --height H [--buffers 1..16] [--fps N] [--warmup-ms MS] [--ms MS]");
  }
  s.lat = calloc(MAX_SAMPLES, sizeof(uint64_t));
  if (!s.lat) die("calloc");
  int fds_start = count_fds();
  long rss_start = rss_kb();

  s.fd = open(card, O_RDWR | O_CLOEXEC);
  if (s.fd < 0) die(card);
  if (drmSetClientCap(s.fd, DRM_CLIENT_CAP_UNIVERSAL_PLANES, 1) || drmSetClientCap(s.fd, DRM_CLIENT_CAP_ATOMIC, 1)) die("atomic client caps");

  drmModeConnector *conn = drmModeGetConnector(s.fd, conn_id);
  if (!conn) die("drmModeGetConnector");
  drmModeModeInfo *mode = NULL;
  for (int i = 0; i < conn->count_modes; i++) {
    drmModeModeInfo *m = &conn->modes[i];
    if (m->hdisplay != s.w || m->vdisplay != s.h) continue;
    if (!mode || (m->type & DRM_MODE_TYPE_PREFERRED)) mode = m;
  }
  if (!mode) fail("the connector has no mode of the requested size");
  double refresh_ms = (double)mode->htotal * mode->vtotal / ((double)mode->clock * 1000.0) * 1000.0;

  struct plane_props *pp = &s.pp;
  pp->fb_id = prop_id(s.fd, s.plane, DRM_MODE_OBJECT_PLANE, "FB_ID");
  pp->crtc_id = prop_id(s.fd, s.plane, DRM_MODE_OBJECT_PLANE, "CRTC_ID");
  pp->src_x = prop_id(s.fd, s.plane, DRM_MODE_OBJECT_PLANE, "SRC_X");
  pp->src_y = prop_id(s.fd, s.plane, DRM_MODE_OBJECT_PLANE, "SRC_Y");
  pp->src_w = prop_id(s.fd, s.plane, DRM_MODE_OBJECT_PLANE, "SRC_W");
  pp->src_h = prop_id(s.fd, s.plane, DRM_MODE_OBJECT_PLANE, "SRC_H");
  pp->crtc_x = prop_id(s.fd, s.plane, DRM_MODE_OBJECT_PLANE, "CRTC_X");
  pp->crtc_y = prop_id(s.fd, s.plane, DRM_MODE_OBJECT_PLANE, "CRTC_Y");
  pp->crtc_w = prop_id(s.fd, s.plane, DRM_MODE_OBJECT_PLANE, "CRTC_W");
  pp->crtc_h = prop_id(s.fd, s.plane, DRM_MODE_OBJECT_PLANE, "CRTC_H");
  uint32_t conn_crtc = prop_id(s.fd, conn_id, DRM_MODE_OBJECT_CONNECTOR, "CRTC_ID");
  uint32_t crtc_mode = prop_id(s.fd, s.crtc, DRM_MODE_OBJECT_CRTC, "MODE_ID");
  uint32_t crtc_active = prop_id(s.fd, s.crtc, DRM_MODE_OBJECT_CRTC, "ACTIVE");

  // The guest: one memfd of guest RAM, a page-aligned udmabuf per scanout buffer.
  uint32_t stride = (s.w * 4 + 63) & ~63u;
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  size_t bufsize = ((size_t)stride * s.h + page - 1) / page * page;
  int memfd = memfd_create("floor-guest-ram", MFD_ALLOW_SEALING | MFD_CLOEXEC);
  if (memfd < 0) die("memfd_create");
  if (ftruncate(memfd, (off_t)(bufsize * buffers))) die("ftruncate");
  if (fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK)) die("F_SEAL_SHRINK");
  uint8_t *ram = mmap(NULL, bufsize * buffers, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
  if (ram == MAP_FAILED) die("mmap guest memfd");
  int udmabuf = open("/dev/udmabuf", O_RDWR | O_CLOEXEC);
  if (udmabuf < 0) die("/dev/udmabuf");
  int dmabufs[MAX_BUFFERS];
  for (int i = 0; i < buffers; i++) {
    memset(ram + bufsize * i, 0x40 * (i + 1), bufsize);
    struct udmabuf_create c = { .memfd = (uint32_t)memfd, .flags = UDMABUF_FLAGS_CLOEXEC, .offset = bufsize * i, .size = bufsize };
    dmabufs[i] = ioctl(udmabuf, UDMABUF_CREATE, &c);
    if (dmabufs[i] < 0) die("UDMABUF_CREATE");
    uint32_t handle;
    if (drmPrimeFDToHandle(s.fd, dmabufs[i], &handle)) die("drmPrimeFDToHandle");
    uint32_t handles[4] = { handle }, pitches[4] = { stride }, offsets[4] = { 0 };
    if (drmModeAddFB2(s.fd, s.w, s.h, DRM_FORMAT_XRGB8888, handles, pitches, offsets, &s.fbs[i], 0)) die("drmModeAddFB2");
    // The FB holds its own reference: the handle is not needed any more.
    struct drm_gem_close gc = { .handle = handle };
    drmIoctl(s.fd, DRM_IOCTL_GEM_CLOSE, &gc);
  }

  uint32_t blob;
  if (drmModeCreatePropertyBlob(s.fd, mode, sizeof(*mode), &blob)) die("mode blob");
  drmModeAtomicReq *req = drmModeAtomicAlloc();
  drmModeAtomicAddProperty(req, conn_id, conn_crtc, s.crtc);
  drmModeAtomicAddProperty(req, s.crtc, crtc_mode, blob);
  drmModeAtomicAddProperty(req, s.crtc, crtc_active, 1);
  set_plane(req, s.fbs[0]);
  if (drmModeAtomicCommit(s.fd, req, DRM_MODE_ATOMIC_ALLOW_MODESET, NULL)) die("modeset commit");
  drmModeAtomicFree(req);

  int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  if (tfd < 0) die("timerfd_create");
  long period_ns = (long)(1e9 / fps);
  struct itimerspec its = { .it_interval = { 0, period_ns }, .it_value = { 0, period_ns } };
  if (timerfd_settime(tfd, 0, &its, NULL)) die("timerfd_settime");

  drmEventContext ev = { .version = 3, .page_flip_handler2 = on_flip };
  uint64_t t0 = now_ns();
  uint64_t t_measure = t0 + (uint64_t)warmup_ms * 1000000ull;
  uint64_t t_end = t_measure + (uint64_t)run_ms * 1000000ull;
  uint64_t cpu0 = 0, cpu1 = 0, window_ns = 0;
  s.front = 0;
  for (;;) {
    uint64_t t = now_ns();
    if (!s.measuring && t >= t_measure) {
      s.measuring = 1;
      cpu0 = cpu_us();
      t_measure = t;
    }
    if (t >= t_end) break;
    struct pollfd pfd[2] = { { .fd = s.fd, .events = POLLIN }, { .fd = tfd, .events = POLLIN } };
    int timeout = (int)((t_end - t) / 1000000ull) + 1;
    if (poll(pfd, 2, timeout) < 0) {
      if (errno == EINTR) continue;
      die("poll");
    }
    if (pfd[1].revents & POLLIN) {
      uint64_t expirations = 0;
      if (read(tfd, &expirations, sizeof expirations) == sizeof expirations && expirations > 0) {
        // The guest's vsync: it renders into its next buffer and flips. Late ticks are frames
        // it flipped in a burst (as the Node guest catches up): only the last is visible.
        s.front = (int)((s.front + expirations) % (uint64_t)buffers);
        s.flip_time = now_ns();
        s.pending = 1;
        if (s.measuring) s.guest_frames += expirations;
        if (!s.inflight) commit_front();
      }
    }
    if (pfd[0].revents & POLLIN) drmHandleEvent(s.fd, &ev);
  }
  cpu1 = cpu_us();
  window_ns = now_ns() - t_measure;
  s.measuring = 0;
  // Let the last flip land before switching off.
  for (int i = 0; i < 50 && s.inflight; i++) {
    struct pollfd pfd = { .fd = s.fd, .events = POLLIN };
    if (poll(&pfd, 1, 20) > 0) drmHandleEvent(s.fd, &ev);
  }
  req = drmModeAtomicAlloc();
  drmModeAtomicAddProperty(req, s.plane, pp->fb_id, 0);
  drmModeAtomicAddProperty(req, s.plane, pp->crtc_id, 0);
  drmModeAtomicAddProperty(req, conn_id, conn_crtc, 0);
  drmModeAtomicAddProperty(req, s.crtc, crtc_mode, 0);
  drmModeAtomicAddProperty(req, s.crtc, crtc_active, 0);
  if (drmModeAtomicCommit(s.fd, req, DRM_MODE_ATOMIC_ALLOW_MODESET, NULL)) fprintf(stderr, "floor: switching off failed: %s\n", strerror(errno));
  drmModeAtomicFree(req);
  for (int i = 0; i < buffers; i++) {
    drmModeRmFB(s.fd, s.fbs[i]);
    close(dmabufs[i]);
  }
  drmModeDestroyPropertyBlob(s.fd, blob);
  drmModeFreeConnector(conn);
  close(tfd);
  close(udmabuf);
  munmap(ram, bufsize * buffers);
  close(memfd);
  close(s.fd);

  printf("{\"guestFrames\":%" PRIu64 ",\"presented\":%" PRIu64 ",\"commits\":%" PRIu64 ",\"failedCommits\":%" PRIu64
         ",\"cpuUs\":%" PRIu64 ",\"windowMs\":%.1f,\"refreshMs\":%.4f,\"rssKb\":{\"start\":%ld,\"end\":%ld},\"fds\":{\"start\":%d,\"end\":%d}"
         ",\"latencyUs\":[",
         s.guest_frames, s.presented, s.commits, s.failed, cpu1 - cpu0, (double)window_ns / 1e6, refresh_ms, rss_start, rss_kb(), fds_start, count_fds());
  for (size_t i = 0; i < s.nlat; i++) printf("%s%" PRIu64, i ? "," : "", s.lat[i] / 1000);
  printf("]}\n");
  free(s.lat);
  return 0;
}
