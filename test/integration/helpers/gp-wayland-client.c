/*
 * A small real Wayland client (libwayland-client + wayland-scanner headers) for the
 * kiosk compositor's tests. One line of output per fact, for the test to parse.
 *
 *   gp-wayland-client dmabuf N   fullscreen client drawing N frames into udmabuf
 *                                dma-bufs (3 buffers), with frame callbacks and
 *                                presentation feedback; prints the surface's dma-buf
 *                                feedback first and a roundtrip-latency measurement last
 *   gp-wayland-client shm N      the same with wl_shm buffers (GP_NO_SEAL=1: pools
 *                                are memfds without F_SEAL_SHRINK, which the compositor
 *                                must read through the fd)
 *   gp-wayland-client subtree      sub-surface rules step by step (STEP name, then waits
 *                                for a line on stdin) for the test to check the tree
 *   gp-wayland-client subsurface N a fullscreen wl_shm toplevel with a 256x256 dma-buf
 *                                sub-surface at (100, 50) drawing N frames (feedback of its own)
 *   gp-wayland-client popup N    a fullscreen wl_shm toplevel with a 256x256 dma-buf popup (no
 *                                grab) placed at (100, 50), drawing N frames (feedback of its own)
 *   gp-wayland-client window-states  a mapped toplevel sends set_maximized, unset_maximized,
 *                                set_fullscreen, unset_fullscreen and set_minimized (REQUEST
 *                                name, then a round trip): prints every configure with its states
 *   gp-wayland-client clip-set TEXT  sets the selection (text/plain) and serves it until cancelled
 *   gp-wayland-client clip-get   prints the selection's text (CLIP ...), then tries a DnD
 *                                source as the selection (a protocol error)
 *   gp-wayland-client solid R G B A  a toplevel asking for client-side decorations (prints the
 *                                mode it is told), showing one single-pixel buffer at its
 *                                configured size; waits for a line on stdin
 *   gp-wayland-client shm-shrink S  hostile: commits a 512x512 wl_shm buffer again and
 *                                again for S seconds while a second thread shrinks its
 *                                pool's file to 0 and back; prints FRAMES n and how the
 *                                connection ended
 *   gp-wayland-client lease      leases the first offered connector, modesets it with a
 *                                dumb buffer, then waits for "exit" on stdin or
 *                                for wp_drm_lease_v1.finished
 *   gp-wayland-client roundtrip N  N wl_display_sync round trips: p50/p95/max latency
 *   gp-wayland-client input W H  a toplevel with a WxH wl_shm buffer; binds wl_seat (v8, or
 *                                GP_SEAT_VERSION) and prints every wl_keyboard/wl_pointer/
 *                                wl_touch event (keysyms from the keymap it compiles with
 *                                xkbcommon) until "quit" on stdin ("sync": a roundtrip, SYNCED;
 *                                "unmap"/"map": a null buffer, then the buffer again;
 *                                GP_INPUT_COVER=1: a sub-surface over all of it whose input
 *                                region is its right half, as Firefox covers its window with a
 *                                content sub-surface that takes no input)
 *   gp-wayland-client seat-request WHAT  get_keyboard|pointer|touch (or cursor-role: set_cursor
 *                                on a sub-surface) and the protocol error that follows, if any
 *   gp-wayland-client error CASE sends one kind of bad request and prints the protocol
 *                                error it gets back (memfds stand in for dma-bufs:
 *                                every check it exercises comes before any import)
 *
 * Pixels of frame n at (x, y): 0xff000000 | (x & 255) << 16 | (y & 255) << 8 | (n & 255).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>
#include <linux/udmabuf.h>
#include <drm_fourcc.h>
#include <xf86drm.h>
#include <xf86drmMode.h>
#include <wayland-client.h>
#include <xkbcommon/xkbcommon.h>
#include "xdg-shell-client-protocol.h"
#include "linux-dmabuf-unstable-v1-client-protocol.h"
#include "presentation-time-client-protocol.h"
#include "drm-lease-v1-client-protocol.h"
#include "viewporter-client-protocol.h"
#include "xdg-decoration-unstable-v1-client-protocol.h"
#include "single-pixel-buffer-v1-client-protocol.h"

#define NBUF 3

static struct wl_display *display;
static struct wl_compositor *compositor;
static struct wl_shm *shm;
static struct xdg_wm_base *wm_base;
static struct wp_viewporter *viewporter;
static struct wl_subcompositor *subcompositor;
static struct wl_data_device_manager *data_manager;
static struct wl_seat *seat;
static uint32_t seat_version = 1;
static struct zxdg_decoration_manager_v1 *deco_manager;
static struct wp_single_pixel_buffer_manager_v1 *single_pixel;
static struct zwp_linux_dmabuf_v1 *dmabuf;
static uint32_t dmabuf_version;
static struct wp_presentation *presentation;
static struct wp_drm_lease_device_v1 *lease_device;
static int32_t width, height;
static bool configured;
static bool print_states; /* window-states: a STATES line after each toplevel configure */
static struct xdg_surface *top_xs; /* the xdg_surface of make_toplevel()'s window */
static struct xdg_toplevel *top_tl; /* and its xdg_toplevel */

static void die(const char *msg) {
	fprintf(stderr, "gp-wayland-client: %s\n", msg);
	exit(2);
}

static uint64_t now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* ---- registry */
static void registry_global(void *data, struct wl_registry *r, uint32_t name, const char *iface, uint32_t version) {
	if (!strcmp(iface, "wl_compositor"))
		compositor = wl_registry_bind(r, name, &wl_compositor_interface, version < 4 ? version : 4);
	else if (!strcmp(iface, "wl_shm"))
		shm = wl_registry_bind(r, name, &wl_shm_interface, 1);
	else if (!strcmp(iface, "xdg_wm_base")) {
		/* GP_XDG_VERSION=n: bind xdg_wm_base at n (at most the advertised version; default 3). */
		uint32_t want = getenv("GP_XDG_VERSION") ? (uint32_t)atoi(getenv("GP_XDG_VERSION")) : 3;
		wm_base = wl_registry_bind(r, name, &xdg_wm_base_interface, version < want ? version : want);
	}
	else if (!strcmp(iface, "zwp_linux_dmabuf_v1")) {
		const char *want = getenv("GP_DMABUF_VERSION");
		dmabuf_version = want ? (uint32_t)atoi(want) : (version < 4 ? version : 4);
		dmabuf = wl_registry_bind(r, name, &zwp_linux_dmabuf_v1_interface, dmabuf_version);
	} else if (!strcmp(iface, "wp_presentation"))
		presentation = wl_registry_bind(r, name, &wp_presentation_interface, 1);
	else if (!strcmp(iface, "wp_drm_lease_device_v1"))
		lease_device = wl_registry_bind(r, name, &wp_drm_lease_device_v1_interface, 1);
	else if (!strcmp(iface, "wp_viewporter"))
		viewporter = wl_registry_bind(r, name, &wp_viewporter_interface, 1);
	else if (!strcmp(iface, "wl_subcompositor"))
		subcompositor = wl_registry_bind(r, name, &wl_subcompositor_interface, 1);
	else if (!strcmp(iface, "wl_data_device_manager"))
		data_manager = wl_registry_bind(r, name, &wl_data_device_manager_interface, 3);
	else if (!strcmp(iface, "zxdg_decoration_manager_v1"))
		deco_manager = wl_registry_bind(r, name, &zxdg_decoration_manager_v1_interface, 1);
	else if (!strcmp(iface, "wp_single_pixel_buffer_manager_v1"))
		single_pixel = wl_registry_bind(r, name, &wp_single_pixel_buffer_manager_v1_interface, 1);
	else if (!strcmp(iface, "wl_seat"))
		seat = wl_registry_bind(r, name, &wl_seat_interface, version < seat_version ? version : seat_version);
}
static void registry_remove(void *data, struct wl_registry *r, uint32_t name) {}
static const struct wl_registry_listener registry_listener = { registry_global, registry_remove };

static void wm_ping(void *data, struct xdg_wm_base *wm, uint32_t serial) { xdg_wm_base_pong(wm, serial); }
static const struct xdg_wm_base_listener wm_listener = { wm_ping };

static void xdg_surface_configure(void *data, struct xdg_surface *s, uint32_t serial) {
	xdg_surface_ack_configure(s, serial);
	configured = true;
}
static const struct xdg_surface_listener xdg_surface_listener = { xdg_surface_configure };
static void toplevel_configure(void *data, struct xdg_toplevel *t, int32_t w, int32_t h, struct wl_array *states) {
	if (w > 0 && h > 0) {
		width = w;
		height = h;
	}
	printf("CONFIGURE %d %d\n", w, h);
	if (!print_states) return;
	static const char *names[] = { "?", "maximized", "fullscreen", "resizing", "activated", "tiled_left", "tiled_right", "tiled_top", "tiled_bottom", "suspended" };
	printf("STATES");
	uint32_t *st;
	wl_array_for_each(st, states) printf(" %s", *st < sizeof names / sizeof *names ? names[*st] : "?");
	printf("\n");
}
static void toplevel_close(void *data, struct xdg_toplevel *t) {}
static void toplevel_bounds(void *data, struct xdg_toplevel *t, int32_t w, int32_t h) { printf("BOUNDS %d %d\n", w, h); }
static void toplevel_capabilities(void *data, struct xdg_toplevel *t, struct wl_array *caps) {
	printf("WM_CAPABILITIES %zu\n", caps->size / sizeof(uint32_t));
}
static const struct xdg_toplevel_listener toplevel_listener = { toplevel_configure, toplevel_close, toplevel_bounds, toplevel_capabilities };

/* ---- dma-buf feedback: printed as it arrives */
static struct { uint32_t format, pad; uint64_t modifier; } *table;
static uint32_t table_size;
static bool feedback_done;
static void fb_done(void *d, struct zwp_linux_dmabuf_feedback_v1 *f) { printf("FEEDBACK_DONE\n"); feedback_done = true; }
static void fb_table(void *d, struct zwp_linux_dmabuf_feedback_v1 *f, int32_t fd, uint32_t size) {
	table = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (table == MAP_FAILED) die("cannot map the format table");
	table_size = size;
	close(fd);
	printf("FORMAT_TABLE entries=%u\n", size / 16);
}
static void fb_main_device(void *d, struct zwp_linux_dmabuf_feedback_v1 *f, struct wl_array *dev) {
	dev_t dv;
	memcpy(&dv, dev->data, sizeof dv);
	printf("MAIN_DEVICE %u:%u\n", major(dv), minor(dv));
}
static void fb_tranche_done(void *d, struct zwp_linux_dmabuf_feedback_v1 *f) { printf("TRANCHE_DONE\n"); }
static void fb_tranche_device(void *d, struct zwp_linux_dmabuf_feedback_v1 *f, struct wl_array *dev) {
	dev_t dv;
	memcpy(&dv, dev->data, sizeof dv);
	printf("TRANCHE_DEVICE %u:%u\n", major(dv), minor(dv));
}
static void fb_tranche_formats(void *d, struct zwp_linux_dmabuf_feedback_v1 *f, struct wl_array *idx) {
	uint16_t *i;
	printf("TRANCHE_FORMATS");
	wl_array_for_each(i, idx) {
		if (*i * 16u >= table_size) die("tranche index out of the format table");
		printf(" %.4s:0x%016llx", (char *)&table[*i].format, (unsigned long long)table[*i].modifier);
	}
	printf("\n");
}
static void fb_tranche_flags(void *d, struct zwp_linux_dmabuf_feedback_v1 *f, uint32_t flags) { printf("TRANCHE_FLAGS %u\n", flags); }
static const struct zwp_linux_dmabuf_feedback_v1_listener feedback_listener = {
	fb_done, fb_table, fb_main_device, fb_tranche_done, fb_tranche_device, fb_tranche_formats, fb_tranche_flags,
};

/* ---- buffers */
struct buffer {
	struct wl_buffer *wl;
	uint32_t *pixels;
	int stride;
	bool busy;
};
static struct buffer buffers[NBUF];

/* The protocol gives one release per attach+commit: a second one (mpv's wlshm hands the
 * buffer out twice and frees it twice on exit) is a compositor bug, and fatal here. */
static void buffer_release(void *data, struct wl_buffer *b) {
	struct buffer *buf = data;
	if (!buf->busy) die("wl_buffer.release of a buffer not attached since its last release");
	buf->busy = false;
}
static const struct wl_buffer_listener buffer_listener = { buffer_release };

/* Attaches `b` (or nothing) to `s`: busy until the compositor releases it. */
static void attach_buffer(struct wl_surface *s, struct buffer *b) {
	wl_surface_attach(s, b ? b->wl : NULL, 0, 0);
	if (b) b->busy = true;
}

static bool no_seal;
static int make_memfd(size_t size, void **map) {
	int fd = memfd_create("gp-client", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0 || ftruncate(fd, size) < 0) die("memfd");
	if (!no_seal) fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK);
	*map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (*map == MAP_FAILED) die("mmap memfd");
	return fd;
}

static int created_ok = -1;
static void params_created(void *d, struct zwp_linux_buffer_params_v1 *p, struct wl_buffer *b) {
	((struct buffer *)d)->wl = b;
	created_ok = 1;
}
static void params_failed(void *d, struct zwp_linux_buffer_params_v1 *p) { created_ok = 0; }
static const struct zwp_linux_buffer_params_v1_listener params_listener = { params_created, params_failed };

/* GP_Y_INVERT=1: buffers are made with Y_INVERT and drawn bottom-up (rows reversed).
 * GP_TRANSFORM=n: wl_surface.set_buffer_transform(n); the buffer holds the picture with
 * that wl_output.transform applied (90/270: the buffer is height x width). */
static bool y_invert;
static int buf_transform;
static int buf_w(void) { return (buf_transform & 1) ? height : width; }
static int buf_h(void) { return (buf_transform & 1) ? width : height; }

static void make_dmabuf_sized(struct buffer *b, int i, int bw, int bh) {
	uint32_t flags = y_invert ? ZWP_LINUX_BUFFER_PARAMS_V1_FLAGS_Y_INVERT : 0;
	int stride = bw * 4;
	size_t size = ((size_t)stride * bh + 4095) & ~(size_t)4095;
	void *map;
	int memfd = make_memfd(size, &map);
	int dev = open("/dev/udmabuf", O_RDWR | O_CLOEXEC);
	if (dev < 0) die("open /dev/udmabuf");
	struct udmabuf_create c = { .memfd = memfd, .flags = UDMABUF_FLAGS_CLOEXEC, .offset = 0, .size = size };
	int dmabuf_fd = ioctl(dev, UDMABUF_CREATE, &c);
	if (dmabuf_fd < 0) die("UDMABUF_CREATE");
	close(dev);
	close(memfd);
	b->pixels = map;
	b->stride = stride;
	struct zwp_linux_buffer_params_v1 *p = zwp_linux_dmabuf_v1_create_params(dmabuf);
	zwp_linux_buffer_params_v1_add(p, dmabuf_fd, 0, 0, stride, DRM_FORMAT_MOD_LINEAR >> 32, DRM_FORMAT_MOD_LINEAR & 0xffffffff);
	if (i == 0) {
		/* one buffer through create_immed, the others through create + created */
		b->wl = zwp_linux_buffer_params_v1_create_immed(p, bw, bh, DRM_FORMAT_XRGB8888, flags);
	} else {
		created_ok = -1;
		zwp_linux_buffer_params_v1_add_listener(p, &params_listener, b);
		zwp_linux_buffer_params_v1_create(p, bw, bh, DRM_FORMAT_XRGB8888, flags);
		while (created_ok < 0)
			if (wl_display_dispatch(display) < 0) die("display error while creating a buffer");
		if (!created_ok) die("zwp_linux_buffer_params_v1.failed");
	}
	zwp_linux_buffer_params_v1_destroy(p);
	close(dmabuf_fd);
	wl_buffer_add_listener(b->wl, &buffer_listener, b);
}

static void make_dmabuf_buffer(struct buffer *b, int i) { make_dmabuf_sized(b, i, buf_w(), buf_h()); }

static void make_shm_sized(struct buffer *b, int bw, int bh) {
	int stride = bw * 4;
	size_t size = (size_t)stride * bh;
	void *map;
	int fd = make_memfd(size, &map);
	struct wl_shm_pool *pool = wl_shm_create_pool(shm, fd, size);
	b->wl = wl_shm_pool_create_buffer(pool, 0, bw, bh, stride, WL_SHM_FORMAT_XRGB8888);
	wl_shm_pool_destroy(pool);
	close(fd);
	b->pixels = map;
	b->stride = stride;
	wl_buffer_add_listener(b->wl, &buffer_listener, b);
}
static void make_shm_buffer(struct buffer *b) { make_shm_sized(b, buf_w(), buf_h()); }

/* Where picture pixel (x, y) of a W x H picture is stored in a buffer with transform t
 * (Weston's weston_transformed_coord, on pixel centres). */
static void to_buffer(int t, int W, int H, int x, int y, int *bx, int *by) {
	switch (t) {
	default: *bx = x; *by = y; break;
	case 1: *bx = y; *by = W - 1 - x; break;
	case 2: *bx = W - 1 - x; *by = H - 1 - y; break;
	case 3: *bx = H - 1 - y; *by = x; break;
	case 4: *bx = W - 1 - x; *by = y; break;
	case 5: *bx = y; *by = x; break;
	case 6: *bx = x; *by = H - 1 - y; break;
	case 7: *bx = H - 1 - y; *by = W - 1 - x; break;
	}
}

/* The picture is the same whatever the buffer layout: pixel (x, y) = x<<16 | y<<8 | n. */
static void draw(struct buffer *b, uint32_t n) {
	if (buf_transform == 0) {
		for (int y = 0; y < height; y++) {
			int mem_row = y_invert ? height - 1 - y : y;
			uint32_t *row = b->pixels + (size_t)mem_row * (b->stride / 4);
			uint32_t base = 0xff000000u | ((uint32_t)(y & 255) << 8) | (n & 255);
			for (int x = 0; x < width; x++) row[x] = base | ((uint32_t)(x & 255) << 16);
		}
		return;
	}
	for (int y = 0; y < height; y++)
		for (int x = 0; x < width; x++) {
			int bx, by;
			to_buffer(buf_transform, width, height, x, y, &bx, &by);
			if (y_invert) by = buf_h() - 1 - by;
			b->pixels[(size_t)by * (b->stride / 4) + bx] = 0xff000000u | ((uint32_t)(x & 255) << 16) | ((uint32_t)(y & 255) << 8) | (n & 255);
		}
}

/* ---- presentation feedback */
static int presented, discarded, zero_copy_count, frames_done;
static void pf_sync_output(void *d, struct wp_presentation_feedback *f, struct wl_output *o) {}
static void pf_presented(void *d, struct wp_presentation_feedback *f, uint32_t sec_hi, uint32_t sec_lo, uint32_t nsec,
			 uint32_t refresh, uint32_t seq_hi, uint32_t seq_lo, uint32_t flags) {
	uint64_t t = (((uint64_t)sec_hi << 32 | sec_lo) * 1000000000ull) + nsec;
	presented++;
	if (flags & WP_PRESENTATION_FEEDBACK_KIND_ZERO_COPY) zero_copy_count++;
	printf("PRESENTED frame=%u seq=%llu refresh=%u flags=0x%x t=%llu now=%llu\n", (uint32_t)(uintptr_t)d,
	       (unsigned long long)((uint64_t)seq_hi << 32 | seq_lo), refresh, flags, (unsigned long long)t, (unsigned long long)now_ns());
	wp_presentation_feedback_destroy(f);
}
static void pf_discarded(void *d, struct wp_presentation_feedback *f) {
	discarded++;
	printf("DISCARDED frame=%u\n", (uint32_t)(uintptr_t)d);
	wp_presentation_feedback_destroy(f);
}
static const struct wp_presentation_feedback_listener pf_listener = { pf_sync_output, pf_presented, pf_discarded };

static bool frame_done;
static void frame_cb(void *d, struct wl_callback *cb, uint32_t t) {
	frame_done = true;
	frames_done++;
	wl_callback_destroy(cb);
}
static const struct wl_callback_listener frame_listener = { frame_cb };

/* One of buffers[] the compositor has released (dispatching until one is). */
static struct buffer *next_free_buffer(void) {
	for (;;) {
		for (int i = 0; i < NBUF; i++)
			if (!buffers[i].busy) return &buffers[i];
		if (wl_display_dispatch(display) < 0) die("display error waiting for a free buffer");
	}
}

/* Commits `b` on `s` as frame f (frame callback, presentation feedback tagged f) and
 * waits for the frame callback. */
static void commit_frame(struct wl_surface *s, struct buffer *b, int w, int h, int f) {
	attach_buffer(s, b);
	wl_surface_damage(s, 0, 0, w, h);
	struct wl_callback *cb = wl_surface_frame(s);
	wl_callback_add_listener(cb, &frame_listener, NULL);
	if (presentation) {
		struct wp_presentation_feedback *pf = wp_presentation_feedback(presentation, s);
		wp_presentation_feedback_add_listener(pf, &pf_listener, (void *)(uintptr_t)f);
	}
	frame_done = false;
	wl_surface_commit(s);
	while (!frame_done)
		if (wl_display_dispatch(display) < 0) die("display error waiting for the frame callback");
}

/* A commit without attach (damage and a frame callback only, as mpv's wlshm makes them):
 * the surface keeps its buffer, the compositor owes no second release for it. */
static void commit_damage_only(struct wl_surface *s, int w, int h) {
	wl_surface_damage(s, 0, 0, w, h);
	struct wl_callback *cb = wl_surface_frame(s);
	wl_callback_add_listener(cb, &frame_listener, NULL);
	frame_done = false;
	wl_surface_commit(s);
	while (!frame_done)
		if (wl_display_dispatch(display) < 0) die("display error waiting for the frame callback");
}

/* The last frames' feedback. */
static void wait_feedback(int n) {
	for (int i = 0; i < 10 && presented + discarded < n; i++) wl_display_roundtrip(display);
}

static void print_summary(int n) {
	printf("SUMMARY frames=%d callbacks=%d presented=%d discarded=%d zero_copy=%d\n", n, frames_done, presented, discarded, zero_copy_count);
	fflush(stdout);
}

static void connect_and_bind(void) {
	display = wl_display_connect(NULL);
	if (!display) die("cannot connect (WAYLAND_DISPLAY / XDG_RUNTIME_DIR?)");
	struct wl_registry *reg = wl_display_get_registry(display);
	wl_registry_add_listener(reg, &registry_listener, NULL);
	wl_display_roundtrip(display);
}

/* Event-loop latency seen by a client: wl_display_sync round trips. */
static void print_roundtrips(int r) {
	uint64_t *rt = calloc(r, sizeof *rt);
	for (int i = 0; i < r; i++) {
		uint64_t t0 = now_ns();
		wl_display_roundtrip(display);
		rt[i] = now_ns() - t0;
	}
	for (int i = 1; i < r; i++)
		for (int j = i; j > 0 && rt[j - 1] > rt[j]; j--) { uint64_t t = rt[j]; rt[j] = rt[j - 1]; rt[j - 1] = t; }
	printf("ROUNDTRIP_US p50=%llu p95=%llu max=%llu\n", (unsigned long long)rt[r / 2] / 1000,
	       (unsigned long long)rt[r * 95 / 100] / 1000, (unsigned long long)rt[r - 1] / 1000);
	free(rt);
}

static int run_frames(bool use_dmabuf, int n) {
	if (!compositor || !wm_base || (use_dmabuf ? !dmabuf : !shm)) die("missing globals");
	xdg_wm_base_add_listener(wm_base, &wm_listener, NULL);
	struct wl_surface *surface = wl_compositor_create_surface(compositor);
	if (use_dmabuf && dmabuf_version >= 4) {
		struct zwp_linux_dmabuf_feedback_v1 *fb = zwp_linux_dmabuf_v1_get_surface_feedback(dmabuf, surface);
		zwp_linux_dmabuf_feedback_v1_add_listener(fb, &feedback_listener, NULL);
		while (!feedback_done)
			if (wl_display_dispatch(display) < 0) die("display error while reading feedback");
	}
	struct xdg_surface *xs = xdg_wm_base_get_xdg_surface(wm_base, surface);
	xdg_surface_add_listener(xs, &xdg_surface_listener, NULL);
	struct xdg_toplevel *tl = xdg_surface_get_toplevel(xs);
	xdg_toplevel_add_listener(tl, &toplevel_listener, NULL);
	xdg_toplevel_set_title(tl, "gp-wayland-client");
	if (buf_transform) wl_surface_set_buffer_transform(surface, buf_transform);
	/* GP_VIEWPORT="sx,sy,sw,sh,dw,dh": crop the buffer to that source (surface coordinates)
	 * and show it at dw x dh (-1,-1: the source's size). */
	const char *vp = getenv("GP_VIEWPORT");
	if (vp && *vp) {
		double sx, sy, sw, sh;
		int dw, dh;
		if (sscanf(vp, "%lf,%lf,%lf,%lf,%d,%d", &sx, &sy, &sw, &sh, &dw, &dh) != 6) die("GP_VIEWPORT: want sx,sy,sw,sh,dw,dh");
		if (!viewporter) die("no wp_viewporter");
		struct wp_viewport *v = wp_viewporter_get_viewport(viewporter, surface);
		wp_viewport_set_source(v, wl_fixed_from_double(sx), wl_fixed_from_double(sy), wl_fixed_from_double(sw), wl_fixed_from_double(sh));
		wp_viewport_set_destination(v, dw, dh);
	}
	wl_surface_commit(surface);
	while (!configured)
		if (wl_display_dispatch(display) < 0) die("display error before configure");
	if (width <= 0 || height <= 0) {
		width = 640;
		height = 480;
	}
	/* GP_DAMAGE_ONLY=k: k damage-only commits after each frame's. */
	const int damage_only = getenv("GP_DAMAGE_ONLY") ? atoi(getenv("GP_DAMAGE_ONLY")) : 0;
	for (int i = 0; i < NBUF; i++) {
		if (use_dmabuf) make_dmabuf_buffer(&buffers[i], i);
		else make_shm_buffer(&buffers[i]);
	}
	printf("BUFFERS %d x %dx%d %s\n", NBUF, buf_w(), buf_h(), use_dmabuf ? "dmabuf" : "shm");
	fflush(stdout);
	for (int f = 1; f <= n; f++) {
		struct buffer *b = next_free_buffer();
		draw(b, (uint32_t)f);
		commit_frame(surface, b, width, height, f);
		for (int k = 0; k < damage_only; k++) commit_damage_only(surface, width, height);
		fflush(stdout);
	}
	wait_feedback(n);
	print_roundtrips(200);
	print_summary(n);
	return 0;
}

static void print_error(void);
static struct wl_surface *make_toplevel(void);

/* ---- hostile: a pool file shrunk and regrown under the compositor */
static volatile bool shrink_stop;
static int shrink_fd;
static size_t shrink_size;
static void *shrinker(void *arg) {
	while (!shrink_stop) {
		if (ftruncate(shrink_fd, 0) < 0 || ftruncate(shrink_fd, shrink_size) < 0) die("ftruncate");
	}
	return NULL;
}
static int run_shm_shrink(int seconds) {
	if (!compositor || !wm_base || !shm) die("missing globals");
	struct wl_surface *surface = make_toplevel();
	const int w = 512, h = 512, stride = w * 4;
	shrink_size = (size_t)stride * h;
	uint32_t *px;
	no_seal = true; /* a sealed file could not shrink */
	shrink_fd = make_memfd(shrink_size, (void **)&px);
	for (int i = 0; i < w * h; i++) px[i] = 0xff204080;
	/* the mapping is never touched again: the shrinking would fault us too */
	struct wl_shm_pool *pool = wl_shm_create_pool(shm, shrink_fd, shrink_size);
	struct wl_buffer *b = wl_shm_pool_create_buffer(pool, 0, w, h, stride, WL_SHM_FORMAT_XRGB8888);
	wl_shm_pool_destroy(pool);
	wl_display_roundtrip(display); /* the pool is made before the shrinking starts */
	pthread_t t;
	pthread_create(&t, NULL, shrinker, NULL);
	printf("SHRINKING\n");
	uint64_t end = now_ns() + (uint64_t)seconds * 1000000000ull;
	int frames = 0;
	bool failed = false;
	while (now_ns() < end && !failed) {
		wl_surface_attach(surface, b, 0, 0);
		wl_surface_damage(surface, 0, 0, w, h);
		struct wl_callback *cb = wl_surface_frame(surface);
		wl_callback_add_listener(cb, &frame_listener, NULL);
		frame_done = false;
		wl_surface_commit(surface);
		while (!frame_done && !failed)
			if (wl_display_dispatch(display) < 0) failed = true;
		if (!failed) frames++;
	}
	shrink_stop = true;
	pthread_join(t, NULL);
	printf("FRAMES %d\n", frames);
	print_error();
	return 0;
}

/* ---- sub-surfaces */
static void fill_solid(struct buffer *b, int w, int h, uint32_t px) {
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++) b->pixels[(size_t)y * (b->stride / 4) + x] = px;
}

/* A configured, fullscreen toplevel surface (nothing attached yet). */
static struct wl_surface *make_toplevel(void) {
	xdg_wm_base_add_listener(wm_base, &wm_listener, NULL);
	struct wl_surface *surface = wl_compositor_create_surface(compositor);
	struct xdg_surface *xs = xdg_wm_base_get_xdg_surface(wm_base, surface);
	top_xs = xs;
	xdg_surface_add_listener(xs, &xdg_surface_listener, NULL);
	struct xdg_toplevel *tl = xdg_surface_get_toplevel(xs);
	top_tl = tl;
	xdg_toplevel_add_listener(tl, &toplevel_listener, NULL);
	wl_surface_commit(surface);
	while (!configured)
		if (wl_display_dispatch(display) < 0) die("display error before configure");
	return surface;
}

/* A wl_shm buffer for `s` showing a pw x ph surface (surface coordinates): green inside the
 * rectangle gx,gy gw x gh, red outside it. GP_TRANSFORM stores it with that buffer
 * transform; GP_PICTURE_SCALE=k (k > 1) draws it at k buffer pixels per surface pixel with a
 * blue border of 16 buffer pixels around it, and a wp_viewport whose source crops the border
 * off and whose destination is pw x ph: the surface is the same in every case. */
static void make_picture(struct wl_surface *s, struct buffer *b, int pw, int ph, int gx, int gy, int gw, int gh) {
	int k = getenv("GP_PICTURE_SCALE") ? atoi(getenv("GP_PICTURE_SCALE")) : 1;
	if (k < 1) k = 1;
	const int border = k > 1 ? 16 : 0;
	const int W = pw * k + 2 * border, H = ph * k + 2 * border;
	if (buf_transform & 1) make_shm_sized(b, H, W);
	else make_shm_sized(b, W, H);
	for (int y = 0; y < H; y++)
		for (int x = 0; x < W; x++) {
			int sx = (x - border) / k, sy = (y - border) / k;
			bool edge = x < border || y < border || x >= W - border || y >= H - border;
			bool in = sx >= gx && sx < gx + gw && sy >= gy && sy < gy + gh;
			int bx, by;
			to_buffer(buf_transform, W, H, x, y, &bx, &by);
			b->pixels[(size_t)by * (b->stride / 4) + bx] = edge ? 0xff0000ffu : in ? 0xff00ff00u : 0xffff0000u;
		}
	if (buf_transform) wl_surface_set_buffer_transform(s, buf_transform);
	if (k > 1) {
		if (!viewporter) die("no wp_viewporter");
		struct wp_viewport *v = wp_viewporter_get_viewport(viewporter, s);
		wp_viewport_set_source(v, wl_fixed_from_int(border), wl_fixed_from_int(border), wl_fixed_from_int(pw * k), wl_fixed_from_int(ph * k));
		wp_viewport_set_destination(v, pw, ph);
	}
}

/* A window with a client-side "shadow" of uneven width (red; 8 left, 40 top, 56 right, 16
 * bottom: a centred crop of the buffer would show some), its window geometry the green
 * part at the configured size (any transform or viewport: make_picture); waits for a line
 * on stdin. */
static int run_geometry(void) {
	if (!compositor || !shm || !wm_base) die("missing globals");
	struct wl_surface *root = make_toplevel();
	if (width <= 0 || height <= 0) width = 640, height = 480;
	const int ml = 8, mt = 40, mr = 56, mb = 16;
	int bw = width + ml + mr, bh = height + mt + mb;
	struct buffer b;
	make_picture(root, &b, bw, bh, ml, mt, width, height);
	xdg_surface_set_window_geometry(top_xs, ml, mt, width, height);
	attach_buffer(root, &b);
	wl_surface_commit(root);
	wl_display_roundtrip(display);
	printf("GEOMETRY %dx%d at %d,%d in %dx%d\n", width, height, ml, mt, bw, bh);
	fflush(stdout);
	char line[16];
	if (fgets(line, sizeof line, stdin)) {}
	return 0;
}

/* A toplevel larger than its fullscreen configure and without window geometry (a toolkit
 * whose minimum size exceeds the output): 64 columns wider and 56 rows taller, green where
 * the configured size reaches from the top-left corner, red on the right and bottom edge
 * beyond it (a centred crop would show some red and lose green columns on the left); waits
 * for a line on stdin. */
static int run_oversize(void) {
	if (!compositor || !shm || !wm_base) die("missing globals");
	struct wl_surface *root = make_toplevel();
	if (width <= 0 || height <= 0) width = 640, height = 480;
	int bw = width + 64, bh = height + 56;
	struct buffer b;
	make_picture(root, &b, bw, bh, 0, 0, width, height);
	attach_buffer(root, &b);
	wl_surface_commit(root);
	wl_display_roundtrip(display);
	printf("OVERSIZE %dx%d configured %dx%d\n", bw, bh, width, height);
	fflush(stdout);
	char line[16];
	if (fgets(line, sizeof line, stdin)) {}
	return 0;
}

/* Prints STEP name once the compositor has seen everything so far; waits for a line on stdin. */
static void step(const char *name) {
	wl_display_roundtrip(display);
	printf("STEP %s\n", name);
	fflush(stdout);
	char line[64];
	if (!fgets(line, sizeof line, stdin)) exit(0);
}

/* The sub-surface rules, one step at a time, for the test to check the compositor's tree. */
static int run_subtree(void) {
	if (!compositor || !shm || !wm_base || !subcompositor) die("missing globals");
	struct wl_surface *root = make_toplevel();
	struct buffer rb, ab, ab2, bb, bb2;
	make_shm_sized(&rb, 200, 100);
	make_shm_sized(&ab, 50, 50);
	make_shm_sized(&ab2, 60, 60);
	make_shm_sized(&bb, 20, 20);
	make_shm_sized(&bb2, 30, 30);
	struct wl_surface *a = wl_compositor_create_surface(compositor);
	struct wl_surface *b = wl_compositor_create_surface(compositor);
	struct wl_subsurface *sa = wl_subcompositor_get_subsurface(subcompositor, a, root);
	struct wl_subsurface *sb = wl_subcompositor_get_subsurface(subcompositor, b, a);
	wl_subsurface_set_position(sa, 10, 20);
	wl_subsurface_set_position(sb, 5, 5);
	attach_buffer(b, &bb);
	wl_surface_commit(b);
	attach_buffer(a, &ab);
	wl_surface_commit(a);
	step("cached");
	attach_buffer(root, &rb);
	wl_surface_commit(root);
	step("mapped");
	wl_subsurface_place_below(sa, root);
	wl_subsurface_set_position(sa, 30, 40);
	wl_surface_commit(a);
	step("pending");
	wl_surface_commit(root);
	step("below");
	wl_subsurface_set_desync(sa);
	attach_buffer(a, &ab2);
	wl_surface_commit(a);
	step("desync");
	wl_subsurface_set_desync(sb);
	wl_subsurface_set_sync(sa);
	attach_buffer(b, &bb2);
	wl_surface_commit(b);
	step("inherited-sync");
	wl_surface_commit(root);
	step("cascade");
	wl_subsurface_destroy(sb);
	step("role-gone");
	struct wl_subsurface *sb2 = wl_subcompositor_get_subsurface(subcompositor, b, root);
	(void)sb2;
	wl_surface_commit(root);
	step("reparented");
	wl_surface_destroy(a);
	step("parent-destroyed");
	print_error();
	return 0;
}

/* N frames of a gradient whose blue channel is the frame number, committed on `s` (vw x vh,
 * dma-buf buffers from the pool), each waited for through presentation feedback; then the
 * summary, and the client stays until a line on stdin (the test captures the screen meanwhile). */
static int gradient_frames(struct wl_surface *s, int vw, int vh, int n) {
	for (int f = 1; f <= n; f++) {
		struct buffer *bf = next_free_buffer();
		for (int y = 0; y < vh; y++)
			for (int x = 0; x < vw; x++) bf->pixels[(size_t)y * (bf->stride / 4) + x] = 0xff000000u | ((uint32_t)x << 16) | ((uint32_t)y << 8) | (f & 255);
		commit_frame(s, bf, vw, vh, f);
	}
	wait_feedback(n);
	print_summary(n);
	char line[16];
	if (fgets(line, sizeof line, stdin)) {}
	return 0;
}
/* A fullscreen wl_shm toplevel (one colour) with a 256x256 dma-buf sub-surface at
 * (100, 50), desynchronized, drawing N frames with callbacks and feedback of its own. */
static int run_subsurface(int n) {
	if (!compositor || !shm || !wm_base || !subcompositor || !dmabuf) die("missing globals");
	struct wl_surface *root = make_toplevel();
	if (width <= 0 || height <= 0) width = 640, height = 480;
	struct buffer rb;
	make_shm_sized(&rb, width, height);
	fill_solid(&rb, width, height, 0xff336699);
	struct wl_surface *video = wl_compositor_create_surface(compositor);
	struct wl_subsurface *sv = wl_subcompositor_get_subsurface(subcompositor, video, root);
	wl_subsurface_set_position(sv, 100, 50);
	const int vw = 256, vh = 256;
	for (int i = 0; i < NBUF; i++) make_dmabuf_sized(&buffers[i], i, vw, vh);
	attach_buffer(root, &rb);
	wl_surface_commit(root);
	wl_subsurface_set_desync(sv);
	printf("SUBSURFACE %dx%d at 100,50 over %dx%d\n", vw, vh, width, height);
	fflush(stdout);
	return gradient_frames(video, vw, vh, n);
}

/* A fullscreen wl_shm toplevel with N desynchronized dma-buf (udmabuf) sub-surfaces of
 * 96x64 in rows of 8, two buffers each, every one committed in F rounds (a new buffer per
 * round once the compositor released it); prints SUBSURFACES when all rounds were seen,
 * then waits for a line on stdin (the test counts the compositor's fds meanwhile). */
static int run_subsurfaces(int n, int rounds) {
	if (!compositor || !shm || !wm_base || !subcompositor || !dmabuf) die("missing globals");
	if (n < 1 || n > 256 || rounds < 1) die("subsurfaces: want 1..256 sub-surfaces and 1+ rounds");
	struct wl_surface *root = make_toplevel();
	if (width <= 0 || height <= 0) width = 640, height = 480;
	struct buffer rb;
	make_shm_sized(&rb, width, height);
	fill_solid(&rb, width, height, 0xff336699);
	const int vw = 96, vh = 64;
	struct wl_surface **subs = calloc(n, sizeof *subs);
	struct buffer *bufs = calloc((size_t)n * 2, sizeof *bufs);
	if (!subs || !bufs) die("calloc");
	for (int i = 0; i < n; i++) {
		subs[i] = wl_compositor_create_surface(compositor);
		struct wl_subsurface *ss = wl_subcompositor_get_subsurface(subcompositor, subs[i], root);
		wl_subsurface_set_position(ss, 8 + (i % 8) * (vw + 8), 8 + (i / 8) * (vh + 8));
		wl_subsurface_set_desync(ss);
		for (int k = 0; k < 2; k++) make_dmabuf_sized(&bufs[i * 2 + k], k, vw, vh);
	}
	attach_buffer(root, &rb);
	wl_surface_commit(root);
	for (int f = 0; f < rounds; f++) {
		for (int i = 0; i < n; i++) {
			struct buffer *bf = &bufs[i * 2 + (f & 1)];
			while (bf->busy)
				if (wl_display_dispatch(display) < 0) die("display error waiting for a free buffer");
			for (int y = 0; y < vh; y++)
				for (int x = 0; x < vw; x++) bf->pixels[(size_t)y * (bf->stride / 4) + x] = 0xff000000u | ((uint32_t)(i * 4) << 16) | ((uint32_t)(x + y) << 8) | (uint32_t)(f * 60);
			attach_buffer(subs[i], bf);
			wl_surface_damage(subs[i], 0, 0, vw, vh);
			wl_surface_commit(subs[i]);
		}
		wl_display_roundtrip(display);
	}
	printf("SUBSURFACES %d of %dx%d dmabuf, %d rounds, over %dx%d\n", n, vw, vh, rounds, width, height);
	fflush(stdout);
	char line[16];
	if (fgets(line, sizeof line, stdin)) {}
	return 0;
}

/* ---- clipboard (wl_data_device) */
static const char *clip_text;
static bool clip_cancelled;
static void ds_target(void *d, struct wl_data_source *s, const char *mime) {}
static void ds_send(void *d, struct wl_data_source *s, const char *mime, int32_t fd) {
	printf("SEND %s\n", mime);
	if (write(fd, clip_text, strlen(clip_text)) < 0) die("write clipboard");
	close(fd);
}
static void ds_cancelled(void *d, struct wl_data_source *s) { clip_cancelled = true; printf("CANCELLED\n"); }
static void ds_dnd_drop_performed(void *d, struct wl_data_source *s) {}
static void ds_dnd_finished(void *d, struct wl_data_source *s) {}
static void ds_action(void *d, struct wl_data_source *s, uint32_t a) {}
static const struct wl_data_source_listener ds_listener = { ds_target, ds_send, ds_cancelled, ds_dnd_drop_performed, ds_dnd_finished, ds_action };

static struct wl_data_offer *last_offer, *selection_offer;
static bool selection_seen, offer_has_text;
static void do_offer(void *d, struct wl_data_offer *o, const char *mime) {
	printf("OFFER %s\n", mime);
	if (!strcmp(mime, "text/plain;charset=utf-8")) offer_has_text = true;
}
static void do_source_actions(void *d, struct wl_data_offer *o, uint32_t a) {}
static void do_action(void *d, struct wl_data_offer *o, uint32_t a) {}
static const struct wl_data_offer_listener do_listener = { do_offer, do_source_actions, do_action };
static void dd_data_offer(void *d, struct wl_data_device *dev, struct wl_data_offer *o) {
	offer_has_text = false;
	last_offer = o;
	wl_data_offer_add_listener(o, &do_listener, NULL);
}
static void dd_enter(void *d, struct wl_data_device *dev, uint32_t serial, struct wl_surface *s, wl_fixed_t x, wl_fixed_t y, struct wl_data_offer *o) {}
static void dd_leave(void *d, struct wl_data_device *dev) {}
static void dd_motion(void *d, struct wl_data_device *dev, uint32_t t, wl_fixed_t x, wl_fixed_t y) {}
static void dd_drop(void *d, struct wl_data_device *dev) {}
static void dd_selection(void *d, struct wl_data_device *dev, struct wl_data_offer *o) {
	selection_offer = o;
	selection_seen = true;
	printf("SELECTION %s\n", o ? "offer" : "none");
}
static const struct wl_data_device_listener dd_listener = { dd_data_offer, dd_enter, dd_leave, dd_motion, dd_drop, dd_selection };

/* clip-set TEXT: owns the selection until it is cancelled; clip-get: prints the selection's text. */
static int run_clip(bool set, const char *text) {
	if (!data_manager || !seat || !compositor) die("missing wl_data_device_manager, wl_seat or wl_compositor");
	wl_compositor_create_surface(compositor); /* lets the test give this client the focus */
	struct wl_data_device *dev = wl_data_device_manager_get_data_device(data_manager, seat);
	wl_data_device_add_listener(dev, &dd_listener, NULL);
	if (set) {
		clip_text = text;
		struct wl_data_source *src = wl_data_device_manager_create_data_source(data_manager);
		wl_data_source_add_listener(src, &ds_listener, NULL);
		wl_data_source_offer(src, "text/plain;charset=utf-8");
		wl_data_source_offer(src, "text/plain");
		wl_data_device_set_selection(dev, src, 0);
		wl_display_roundtrip(display);
		printf("SELECTION_SET\n");
		fflush(stdout);
		while (!clip_cancelled)
			if (wl_display_dispatch(display) < 0) break;
		print_error();
		return 0;
	}
	wl_display_roundtrip(display); /* the compositor knows this client's surface and device */
	printf("WAITING\n");
	fflush(stdout);
	while (!selection_seen || !selection_offer)
		if (wl_display_dispatch(display) < 0) {
			print_error();
			return 1;
		}
	if (!offer_has_text) die("the selection offers no text/plain;charset=utf-8");
	int p[2];
	if (pipe(p) < 0) die("pipe");
	wl_data_offer_receive(selection_offer, "text/plain;charset=utf-8", p[1]);
	wl_display_flush(display);
	close(p[1]);
	char buf[256];
	size_t n = 0;
	for (;;) {
		struct pollfd pf[2] = { { p[0], POLLIN, 0 }, { wl_display_get_fd(display), POLLIN, 0 } };
		if (poll(pf, 2, 5000) <= 0) die("no clipboard data within 5 s");
		if (pf[1].revents & POLLIN) wl_display_dispatch(display);
		if (pf[0].revents & (POLLIN | POLLHUP)) {
			ssize_t k = read(p[0], buf + n, sizeof buf - 1 - n);
			if (k <= 0) break;
			n += (size_t)k;
		}
	}
	buf[n] = 0;
	printf("CLIP %s\n", buf);
	/* a drag-and-drop source cannot be the selection */
	struct wl_data_source *dnd = wl_data_device_manager_create_data_source(data_manager);
	wl_data_source_set_actions(dnd, WL_DATA_DEVICE_MANAGER_DND_ACTION_COPY);
	wl_data_device_set_selection(dev, dnd, 0);
	wl_display_roundtrip(display);
	print_error();
	return 0;
}

/* ---- xdg-decoration and single-pixel buffers */
static void deco_configure(void *d, struct zxdg_toplevel_decoration_v1 *deco, uint32_t mode) { printf("DECORATION mode=%u\n", mode); }
static const struct zxdg_toplevel_decoration_v1_listener deco_listener = { deco_configure };

/* A toplevel that asks for client-side decorations; then shows one single-pixel buffer
 * (r,g,b,a as 0..255, premultiplied) at the size the compositor configured. */
static int run_decorated_solid(uint32_t r, uint32_t g, uint32_t b, uint32_t a) {
	if (!deco_manager || !single_pixel || !viewporter || !wm_base) die("missing zxdg_decoration_manager_v1, wp_single_pixel_buffer_manager_v1, wp_viewporter or xdg_wm_base");
	xdg_wm_base_add_listener(wm_base, &wm_listener, NULL);
	struct wl_surface *surface = wl_compositor_create_surface(compositor);
	struct xdg_surface *xs = xdg_wm_base_get_xdg_surface(wm_base, surface);
	xdg_surface_add_listener(xs, &xdg_surface_listener, NULL);
	struct xdg_toplevel *tl = xdg_surface_get_toplevel(xs);
	xdg_toplevel_add_listener(tl, &toplevel_listener, NULL);
	struct zxdg_toplevel_decoration_v1 *deco = zxdg_decoration_manager_v1_get_toplevel_decoration(deco_manager, tl);
	zxdg_toplevel_decoration_v1_add_listener(deco, &deco_listener, NULL);
	zxdg_toplevel_decoration_v1_set_mode(deco, ZXDG_TOPLEVEL_DECORATION_V1_MODE_CLIENT_SIDE);
	wl_surface_commit(surface);
	while (!configured)
		if (wl_display_dispatch(display) < 0) die("display error before configure");
	if (width <= 0 || height <= 0) width = 640, height = 480;
	const uint32_t k = 0x01010101u; /* 0..255 -> 0..0xffffffff */
	struct wl_buffer *px = wp_single_pixel_buffer_manager_v1_create_u32_rgba_buffer(single_pixel, r * k, g * k, b * k, a * k);
	struct wp_viewport *vp = wp_viewporter_get_viewport(viewporter, surface);
	wp_viewport_set_destination(vp, width, height);
	wl_surface_attach(surface, px, 0, 0);
	struct wl_callback *cb = wl_surface_frame(surface);
	wl_callback_add_listener(cb, &frame_listener, NULL);
	wl_surface_commit(surface);
	while (!frame_done)
		if (wl_display_dispatch(display) < 0) die("display error waiting for the frame callback");
	printf("SOLID_SHOWN %dx%d\n", width, height);
	fflush(stdout);
	char line[16];
	if (fgets(line, sizeof line, stdin)) {}
	return 0;
}

/* ---- lease */
struct offered { struct wp_drm_lease_connector_v1 *c; char name[64]; uint32_t id; bool withdrawn; };
static struct offered offers[8];
static int n_offers;
static bool lease_device_done;
static int lease_fd = -1;
static bool lease_finished;
static void lc_name(void *d, struct wp_drm_lease_connector_v1 *c, const char *name) { snprintf(((struct offered *)d)->name, 64, "%s", name); }
static void lc_desc(void *d, struct wp_drm_lease_connector_v1 *c, const char *desc) {}
static void lc_id(void *d, struct wp_drm_lease_connector_v1 *c, uint32_t id) { ((struct offered *)d)->id = id; }
static void lc_done(void *d, struct wp_drm_lease_connector_v1 *c) {}
static void lc_withdrawn(void *d, struct wp_drm_lease_connector_v1 *c) { ((struct offered *)d)->withdrawn = true; }
static const struct wp_drm_lease_connector_v1_listener lc_listener = { lc_name, lc_desc, lc_id, lc_done, lc_withdrawn };
static void ld_fd(void *d, struct wp_drm_lease_device_v1 *dev, int32_t fd) {
	drmVersionPtr v = drmGetVersion(fd);
	printf("DEVICE_FD driver=%s master=%d\n", v ? v->name : "?", drmIsMaster(fd));
	if (v) drmFreeVersion(v);
	close(fd);
}
static void ld_connector(void *d, struct wp_drm_lease_device_v1 *dev, struct wp_drm_lease_connector_v1 *c) {
	if (n_offers >= 8) return;
	offers[n_offers].c = c;
	wp_drm_lease_connector_v1_add_listener(c, &lc_listener, &offers[n_offers]);
	n_offers++;
}
static void ld_done(void *d, struct wp_drm_lease_device_v1 *dev) {
	lease_device_done = true;
	for (int i = 0; i < n_offers; i++)
		if (!offers[i].withdrawn) printf("OFFERED %s id=%u\n", offers[i].name, offers[i].id);
	printf("OFFER_DONE\n");
	fflush(stdout);
}
static void ld_released(void *d, struct wp_drm_lease_device_v1 *dev) {}
static const struct wp_drm_lease_device_v1_listener ld_listener = { ld_fd, ld_connector, ld_done, ld_released };
static void l_fd(void *d, struct wp_drm_lease_v1 *l, int32_t fd) { lease_fd = fd; }
static void l_finished(void *d, struct wp_drm_lease_v1 *l) { lease_finished = true; printf("LEASE_FINISHED\n"); fflush(stdout); }
static const struct wp_drm_lease_v1_listener l_listener = { l_fd, l_finished };

static int modeset_leased(int fd) {
	drmModeResPtr res = drmModeGetResources(fd);
	if (!res) { printf("MODESET_FAIL no resources: %s\n", strerror(errno)); return 1; }
	printf("LEASED connectors=%d crtcs=%d\n", res->count_connectors, res->count_crtcs);
	if (res->count_connectors < 1 || res->count_crtcs < 1) return 1;
	drmModeConnectorPtr conn = drmModeGetConnector(fd, res->connectors[0]);
	if (!conn || conn->count_modes < 1) { printf("MODESET_FAIL no modes\n"); return 1; }
	drmModeModeInfo mode = conn->modes[0];
	for (int i = 0; i < conn->count_modes; i++)
		if (conn->modes[i].type & DRM_MODE_TYPE_PREFERRED) mode = conn->modes[i];
	struct drm_mode_create_dumb cd = { .width = mode.hdisplay, .height = mode.vdisplay, .bpp = 32 };
	if (drmIoctl(fd, DRM_IOCTL_MODE_CREATE_DUMB, &cd)) { printf("MODESET_FAIL dumb: %s\n", strerror(errno)); return 1; }
	uint32_t fb;
	if (drmModeAddFB(fd, mode.hdisplay, mode.vdisplay, 24, 32, cd.pitch, cd.handle, &fb)) { printf("MODESET_FAIL addfb: %s\n", strerror(errno)); return 1; }
	uint32_t cid = conn->connector_id;
	if (drmModeSetCrtc(fd, res->crtcs[0], fb, 0, 0, &cid, 1, &mode)) { printf("MODESET_FAIL setcrtc: %s\n", strerror(errno)); return 1; }
	drmModeCrtcPtr crtc = drmModeGetCrtc(fd, res->crtcs[0]);
	printf("MODESET_OK connector=%u crtc=%u mode=%ux%u active=%d\n", cid, res->crtcs[0], mode.hdisplay, mode.vdisplay, crtc && crtc->mode_valid);
	fflush(stdout);
	return 0;
}

static int run_lease(void) {
	if (!lease_device) die("no wp_drm_lease_device_v1");
	wp_drm_lease_device_v1_add_listener(lease_device, &ld_listener, NULL);
	while (!lease_device_done)
		if (wl_display_dispatch(display) < 0) die("display error before the offer");
	struct offered *o = NULL;
	for (int i = 0; i < n_offers && !o; i++)
		if (!offers[i].withdrawn) o = &offers[i];
	if (!o) { printf("NO_OFFER\n"); return 1; }
	struct wp_drm_lease_request_v1 *req = wp_drm_lease_device_v1_create_lease_request(lease_device);
	wp_drm_lease_request_v1_request_connector(req, o->c);
	struct wp_drm_lease_v1 *lease = wp_drm_lease_request_v1_submit(req);
	wp_drm_lease_v1_add_listener(lease, &l_listener, NULL);
	while (lease_fd < 0 && !lease_finished)
		if (wl_display_dispatch(display) < 0) die("display error waiting for the lease");
	if (lease_fd < 0) return 1;
	printf("LEASE_FD ok connector=%s\n", o->name);
	int r = modeset_leased(lease_fd);
	printf("WAITING\n");
	fflush(stdout);
	/* Wait for "exit"/"destroy" on stdin (or EOF) while dispatching events. */
	struct pollfd p[2] = { { wl_display_get_fd(display), POLLIN, 0 }, { 0, POLLIN, 0 } };
	char line[64];
	for (;;) {
		wl_display_flush(display);
		if (poll(p, 2, -1) < 0) break;
		if (p[0].revents & POLLIN) {
			if (wl_display_dispatch(display) < 0) break;
			if (lease_finished) {
				/* the lease fd no longer drives anything */
				drmModeResPtr res = drmModeGetResources(lease_fd);
				printf("AFTER_REVOKE connectors=%d\n", res ? res->count_connectors : -1);
				fflush(stdout);
				lease_finished = false;
			}
		}
		if (p[1].revents & (POLLIN | POLLHUP)) {
			ssize_t k = read(0, line, sizeof line - 1);
			if (k <= 0) break;
			line[k] = 0;
			if (!strncmp(line, "destroy", 7)) {
				wp_drm_lease_v1_destroy(lease);
				wl_display_roundtrip(display);
				printf("DESTROYED\n");
				fflush(stdout);
			} else
				break;
		}
	}
	return r;
}

static void print_error(void) {
	int err = wl_display_get_error(display);
	if (err == EPROTO) {
		const struct wl_interface *iface = NULL;
		uint32_t id = 0;
		uint32_t code = wl_display_get_protocol_error(display, &iface, &id);
		printf("PROTOCOL_ERROR interface=%s code=%u\n", iface ? iface->name : "?", code);
	} else
		printf("NO_ERROR err=%d\n", err);
	fflush(stdout);
}

/* ---- xdg_popup: what the compositor says, and the errors of bad popup graphs */
static void popup_configure(void *data, struct xdg_popup *p, int32_t x, int32_t y, int32_t w, int32_t h) {
	printf("POPUP_CONFIGURE %d %d %d %d\n", x, y, w, h);
}
static void popup_done(void *data, struct xdg_popup *p) { printf("POPUP_DONE\n"); }
static void popup_repositioned(void *data, struct xdg_popup *p, uint32_t token) { printf("POPUP_REPOSITIONED %u\n", token); }
static const struct xdg_popup_listener popup_listener = { popup_configure, popup_done, popup_repositioned };

static struct xdg_positioner *menu_positioner(int ay) {
	struct xdg_positioner *pos = xdg_wm_base_create_positioner(wm_base);
	xdg_positioner_set_size(pos, 100, 50);
	xdg_positioner_set_anchor_rect(pos, 10, ay, 20, 10);
	xdg_positioner_set_anchor(pos, XDG_POSITIONER_ANCHOR_BOTTOM_LEFT);
	xdg_positioner_set_gravity(pos, XDG_POSITIONER_GRAVITY_BOTTOM_RIGHT);
	xdg_positioner_set_constraint_adjustment(pos, XDG_POSITIONER_CONSTRAINT_ADJUSTMENT_FLIP_Y);
	return pos;
}

static struct wl_surface *last_popup_surface;
static struct xdg_popup *make_popup(struct xdg_surface *parent, struct xdg_positioner *pos, struct xdg_surface **xs_out) {
	struct wl_surface *ps = wl_compositor_create_surface(compositor);
	last_popup_surface = ps;
	struct xdg_surface *xs = xdg_wm_base_get_xdg_surface(wm_base, ps);
	struct xdg_popup *pp = xdg_surface_get_popup(xs, parent, pos);
	xdg_popup_add_listener(pp, &popup_listener, NULL);
	if (xs_out) *xs_out = xs;
	return pp;
}

static void run_popup_error(const char *what, struct wl_surface *surface) {
	struct xdg_surface *txs = xdg_wm_base_get_xdg_surface(wm_base, surface);
	xdg_surface_get_toplevel(txs);
	if (!strcmp(what, "popup-zero-size")) {
		struct xdg_positioner *pos = xdg_wm_base_create_positioner(wm_base);
		xdg_positioner_set_size(pos, 0, 10);
	} else if (!strcmp(what, "popup-incomplete")) {
		struct xdg_positioner *pos = xdg_wm_base_create_positioner(wm_base);
		xdg_positioner_set_size(pos, 10, 10); /* no anchor rectangle */
		make_popup(txs, pos, NULL);
	} else if (!strcmp(what, "popup-bad-serial")) {
		if (!seat) die("no wl_seat");
		struct xdg_popup *pp = make_popup(txs, menu_positioner(10), NULL);
		xdg_popup_grab(pp, seat, 0xdead); /* never an input serial of ours */
	} else if (!strcmp(what, "popup-reposition-incomplete")) {
		struct xdg_popup *pp = make_popup(txs, menu_positioner(10), NULL);
		wl_surface_commit(last_popup_surface);
		wl_display_roundtrip(display);
		struct xdg_positioner *bad = xdg_wm_base_create_positioner(wm_base);
		xdg_positioner_set_anchor_rect(bad, 0, 0, 1, 1); /* no size */
		xdg_popup_reposition(pp, bad, 1);
	} else if (!strcmp(what, "popup-destroy-order")) {
		struct xdg_surface *p1xs;
		struct xdg_popup *p1 = make_popup(txs, menu_positioner(10), &p1xs);
		make_popup(p1xs, menu_positioner(10), NULL);
		xdg_popup_destroy(p1); /* its child popup is still there */
	} else if (!strcmp(what, "popup-ok")) {
		/* placed, repositioned (flipped up at the bottom edge), nested, destroyed top first */
		struct xdg_surface *p1xs, *p2xs;
		struct xdg_popup *p1 = make_popup(txs, menu_positioner(410), &p1xs);
		struct wl_surface *s1 = last_popup_surface;
		wl_surface_commit(s1);
		wl_display_roundtrip(display);
		xdg_popup_reposition(p1, menu_positioner(430), 7);
		wl_display_roundtrip(display);
		/* a submenu at its parent's item (4,4): its parent is the first popup */
		struct xdg_popup *p2 = make_popup(p1xs, menu_positioner(4), &p2xs);
		struct wl_surface *s2 = last_popup_surface;
		wl_surface_commit(s2);
		wl_display_roundtrip(display);
		xdg_popup_destroy(p2);
		xdg_surface_destroy(p2xs);
		xdg_popup_destroy(p1);
		xdg_surface_destroy(p1xs);
	} else
		die("unknown popup case");
}


/* ---- a dma-buf popup and the window-state requests */
/* A fullscreen wl_shm toplevel (one colour) with a 256x256 popup (no grab, as a tooltip)
 * whose positioner puts it at (100, 50), drawing N frames into udmabuf dma-bufs with frame
 * callbacks and feedback of its own; waits for a line on stdin. */
static int run_popup(int n) {
	if (!compositor || !shm || !wm_base || !dmabuf) die("missing globals");
	struct wl_surface *root = make_toplevel();
	if (width <= 0 || height <= 0) width = 640, height = 480;
	struct buffer rb;
	make_shm_sized(&rb, width, height);
	fill_solid(&rb, width, height, 0xff336699);
	attach_buffer(root, &rb);
	wl_surface_commit(root);
	const int vw = 256, vh = 256;
	struct xdg_positioner *pos = xdg_wm_base_create_positioner(wm_base);
	xdg_positioner_set_size(pos, vw, vh);
	xdg_positioner_set_anchor_rect(pos, 100, 50, 1, 1);
	xdg_positioner_set_anchor(pos, XDG_POSITIONER_ANCHOR_TOP_LEFT);
	xdg_positioner_set_gravity(pos, XDG_POSITIONER_GRAVITY_BOTTOM_RIGHT);
	struct wl_surface *ps = wl_compositor_create_surface(compositor);
	struct xdg_surface *xs = xdg_wm_base_get_xdg_surface(wm_base, ps);
	xdg_surface_add_listener(xs, &xdg_surface_listener, NULL);
	struct xdg_popup *pp = xdg_surface_get_popup(xs, top_xs, pos);
	xdg_popup_add_listener(pp, &popup_listener, NULL);
	xdg_positioner_destroy(pos);
	configured = false;
	wl_surface_commit(ps);
	while (!configured)
		if (wl_display_dispatch(display) < 0) die("display error before the popup's configure");
	for (int i = 0; i < NBUF; i++) make_dmabuf_sized(&buffers[i], i, vw, vh);
	printf("POPUP %dx%d dmabuf over %dx%d\n", vw, vh, width, height);
	return gradient_frames(ps, vw, vh, n);
}

/* A mapped toplevel asks for each window state in turn; the compositor's answers (configure
 * events, with their states) are printed after each REQUEST line. */
static int run_window_states(void) {
	if (!compositor || !shm || !wm_base) die("missing globals");
	print_states = true;
	struct wl_surface *surface = make_toplevel();
	struct xdg_toplevel *tl = top_tl;
	struct buffer b;
	make_shm_sized(&b, width > 0 ? width : 64, height > 0 ? height : 64);
	attach_buffer(surface, &b);
	wl_surface_commit(surface);
	wl_display_roundtrip(display);
	static const char *names[] = { "set_maximized", "unset_maximized", "set_fullscreen", "unset_fullscreen", "set_minimized" };
	for (int i = 0; i < 5; i++) {
		printf("REQUEST %s\n", names[i]);
		switch (i) {
		case 0: xdg_toplevel_set_maximized(tl); break;
		case 1: xdg_toplevel_unset_maximized(tl); break;
		case 2: xdg_toplevel_set_fullscreen(tl, NULL); break;
		case 3: xdg_toplevel_unset_fullscreen(tl); break;
		default: xdg_toplevel_set_minimized(tl); break;
		}
		wl_display_roundtrip(display);
	}
	printf("DONE\n");
	print_error();
	return 0;
}

/* ---- protocol errors of wl_shm and xdg_wm_base */
static int run_shell_error(const char *what) {
	if (!compositor || !shm || !wm_base) die("missing wl_compositor, wl_shm or xdg_wm_base");
	void *map;
	int fd = make_memfd(64 * 64 * 4, &map);
	struct wl_shm_pool *pool = wl_shm_create_pool(shm, fd, 64 * 64 * 4);
	struct wl_surface *surface = wl_compositor_create_surface(compositor);
	if (!strcmp(what, "shm-stride")) {
		wl_shm_pool_create_buffer(pool, 0, 64, 64, 128, WL_SHM_FORMAT_XRGB8888); /* stride < 64*4 */
	} else if (!strcmp(what, "shm-format")) {
		wl_shm_pool_create_buffer(pool, 0, 64, 64, 256, WL_SHM_FORMAT_NV12);
	} else if (!strcmp(what, "shm-short-pool")) {
		/* a pool declared twice the size of its file */
		wl_shm_create_pool(shm, fd, 2 * 64 * 64 * 4);
	} else if (!strcmp(what, "shm-short-resize")) {
		/* growing the pool without growing the file first */
		wl_shm_pool_resize(pool, 2 * 64 * 64 * 4);
	} else if (!strcmp(what, "shm-too-big")) {
		wl_shm_pool_create_buffer(pool, 0, 64, 65, 256, WL_SHM_FORMAT_XRGB8888);
	} else if (!strcmp(what, "xdg-unconfigured")) {
		struct wl_buffer *b = wl_shm_pool_create_buffer(pool, 0, 64, 64, 256, WL_SHM_FORMAT_XRGB8888);
		struct xdg_surface *xs = xdg_wm_base_get_xdg_surface(wm_base, surface);
		xdg_surface_get_toplevel(xs);
		wl_surface_commit(surface); /* initial commit: we get a configure but do not ack it */
		wl_display_roundtrip(display);
		wl_surface_attach(surface, b, 0, 0);
		wl_surface_commit(surface);
	} else if (!strcmp(what, "xdg-role")) {
		struct xdg_surface *xs = xdg_wm_base_get_xdg_surface(wm_base, surface);
		xdg_surface_get_toplevel(xs);
		xdg_surface_get_toplevel(xs);
	} else if (!strncmp(what, "viewport-", 9)) {
		if (!viewporter) die("no wp_viewporter");
		struct wl_buffer *b = wl_shm_pool_create_buffer(pool, 0, 64, 64, 256, WL_SHM_FORMAT_XRGB8888);
		struct wp_viewport *v = wp_viewporter_get_viewport(viewporter, surface);
		if (!strcmp(what, "viewport-exists")) {
			wp_viewporter_get_viewport(viewporter, surface);
		} else if (!strcmp(what, "viewport-bad-value")) {
			wp_viewport_set_source(v, wl_fixed_from_int(0), wl_fixed_from_int(0), wl_fixed_from_int(0), wl_fixed_from_int(10));
		} else if (!strcmp(what, "viewport-bad-size")) {
			/* a fractional source size and no destination */
			wp_viewport_set_source(v, wl_fixed_from_int(0), wl_fixed_from_int(0), wl_fixed_from_double(10.5), wl_fixed_from_int(10));
			wl_surface_attach(surface, b, 0, 0);
			wl_surface_commit(surface);
		} else if (!strcmp(what, "viewport-out-of-buffer")) {
			wp_viewport_set_source(v, wl_fixed_from_int(40), wl_fixed_from_int(0), wl_fixed_from_int(32), wl_fixed_from_int(10));
			wl_surface_attach(surface, b, 0, 0);
			wl_surface_commit(surface);
		} else if (!strcmp(what, "viewport-no-surface")) {
			wl_surface_destroy(surface);
			wp_viewport_set_destination(v, 10, 10);
		} else if (!strcmp(what, "viewport-ok")) {
			/* destroy, then a new one on the same surface before any commit: allowed */
			wp_viewport_set_source(v, wl_fixed_from_int(8), wl_fixed_from_int(8), wl_fixed_from_double(16.5), wl_fixed_from_int(16));
			wp_viewport_set_destination(v, 32, 32);
			wl_surface_attach(surface, b, 0, 0);
			wl_surface_commit(surface);
			wp_viewport_destroy(v);
			wp_viewporter_get_viewport(viewporter, surface);
			wl_surface_commit(surface);
		} else
			die("unknown viewport case");
	} else if (!strncmp(what, "sub-", 4)) {
		if (!subcompositor) die("no wl_subcompositor");
		struct wl_surface *other = wl_compositor_create_surface(compositor);
		if (!strcmp(what, "sub-bad-surface")) {
			wl_subcompositor_get_subsurface(subcompositor, surface, other);
			wl_subcompositor_get_subsurface(subcompositor, surface, other); /* already a sub-surface */
		} else if (!strcmp(what, "sub-own-parent")) {
			wl_subcompositor_get_subsurface(subcompositor, surface, surface);
		} else if (!strcmp(what, "sub-cycle")) {
			wl_subcompositor_get_subsurface(subcompositor, surface, other);
			wl_subcompositor_get_subsurface(subcompositor, other, surface); /* other would be under itself */
		} else if (!strcmp(what, "sub-place-bad")) {
			struct wl_surface *third = wl_compositor_create_surface(compositor);
			struct wl_subsurface *s1 = wl_subcompositor_get_subsurface(subcompositor, surface, other);
			wl_subsurface_place_above(s1, third); /* not a sibling, not the parent */
		} else if (!strcmp(what, "sub-xdg-role")) {
			wl_subcompositor_get_subsurface(subcompositor, surface, other);
			xdg_wm_base_get_xdg_surface(wm_base, surface);
		} else if (!strcmp(what, "sub-deep")) {
			/* a chain of 3,000 nested sub-surfaces: refused past 64 */
			struct wl_surface *parent = surface;
			for (int i = 0; i < 3000; i++) {
				struct wl_surface *c = wl_compositor_create_surface(compositor);
				wl_subcompositor_get_subsurface(subcompositor, c, parent);
				parent = c;
			}
		} else if (!strcmp(what, "sub-many")) {
			/* 40 sub-surfaces of one parent and a chain 60 deep, all committed: no error */
			for (int i = 0; i < 40; i++) {
				struct wl_surface *c = wl_compositor_create_surface(compositor);
				wl_subcompositor_get_subsurface(subcompositor, c, surface);
				wl_surface_commit(c);
			}
			struct wl_surface *parent = surface;
			for (int i = 0; i < 60; i++) {
				struct wl_surface *c = wl_compositor_create_surface(compositor);
				wl_subcompositor_get_subsurface(subcompositor, c, parent);
				wl_surface_commit(c);
				parent = c;
			}
			wl_surface_commit(surface);
		} else if (!strcmp(what, "sub-ok")) {
			/* destroyed in any order: parent first, then the sub-surface; the role can be given again */
			struct wl_subsurface *s1 = wl_subcompositor_get_subsurface(subcompositor, surface, other);
			wl_surface_destroy(other);
			wl_subsurface_place_above(s1, surface); /* inert now: ignored */
			wl_subsurface_destroy(s1);
			struct wl_surface *p2 = wl_compositor_create_surface(compositor);
			struct wl_subsurface *s2 = wl_subcompositor_get_subsurface(subcompositor, surface, p2);
			wl_surface_destroy(surface);
			wl_subsurface_set_position(s2, 1, 1);
			wl_subsurface_destroy(s2);
		} else
			die("unknown sub-surface case");
	} else if (!strncmp(what, "deco-", 5)) {
		if (!deco_manager) die("no zxdg_decoration_manager_v1");
		struct xdg_surface *xs = xdg_wm_base_get_xdg_surface(wm_base, surface);
		struct xdg_toplevel *tl = xdg_surface_get_toplevel(xs);
		if (!strcmp(what, "deco-twice")) {
			zxdg_decoration_manager_v1_get_toplevel_decoration(deco_manager, tl);
			zxdg_decoration_manager_v1_get_toplevel_decoration(deco_manager, tl);
		} else if (!strcmp(what, "deco-orphaned")) {
			struct zxdg_toplevel_decoration_v1 *d = zxdg_decoration_manager_v1_get_toplevel_decoration(deco_manager, tl);
			xdg_toplevel_destroy(tl);
			zxdg_toplevel_decoration_v1_set_mode(d, ZXDG_TOPLEVEL_DECORATION_V1_MODE_SERVER_SIDE);
		} else
			die("unknown decoration case");
	} else if (!strncmp(what, "popup-", 6)) {
		run_popup_error(what, surface);
	} else if (!strcmp(what, "xdg-serial")) {
		struct xdg_surface *xs = xdg_wm_base_get_xdg_surface(wm_base, surface);
		xdg_surface_get_toplevel(xs);
		xdg_surface_ack_configure(xs, 0xdead);
	} else
		die("unknown error case");
	close(fd);
	wl_display_roundtrip(display);
	print_error();
	return 0;
}

/* ---- protocol errors of linux-dmabuf */
static int run_error(const char *what) {
	if (!strncmp(what, "shm-", 4) || !strncmp(what, "xdg-", 4) || !strncmp(what, "popup-", 6) || !strncmp(what, "viewport-", 9) || !strncmp(what, "sub-", 4) || !strncmp(what, "deco-", 5)) return run_shell_error(what);
	if (!dmabuf) die("no zwp_linux_dmabuf_v1");
	void *map;
	int fd = make_memfd(4096, &map);
	struct zwp_linux_buffer_params_v1 *p = zwp_linux_dmabuf_v1_create_params(dmabuf);
	uint32_t lo = DRM_FORMAT_MOD_LINEAR & 0xffffffff, hi = DRM_FORMAT_MOD_LINEAR >> 32;
	if (!strcmp(what, "plane-idx")) {
		zwp_linux_buffer_params_v1_add(p, fd, 4, 0, 64, hi, lo);
	} else if (!strcmp(what, "plane-set")) {
		zwp_linux_buffer_params_v1_add(p, fd, 0, 0, 64, hi, lo);
		zwp_linux_buffer_params_v1_add(p, fd, 0, 0, 64, hi, lo);
	} else if (!strcmp(what, "incomplete")) {
		zwp_linux_buffer_params_v1_create(p, 16, 16, DRM_FORMAT_XRGB8888, 0);
	} else if (!strcmp(what, "incomplete-gap")) {
		zwp_linux_buffer_params_v1_add(p, fd, 1, 0, 64, hi, lo);
		zwp_linux_buffer_params_v1_create(p, 16, 16, DRM_FORMAT_XRGB8888, 0);
	} else if (!strcmp(what, "invalid-format")) {
		zwp_linux_buffer_params_v1_add(p, fd, 0, 0, 64, hi, lo);
		zwp_linux_buffer_params_v1_create(p, 16, 16, 0x20203059 /* 'Y0  ' unknown */, 0);
	} else if (!strcmp(what, "invalid-modifier")) {
		zwp_linux_buffer_params_v1_add(p, fd, 0, 0, 64, 0x01000000, 2); /* I915_Y_TILED: not advertised */
		zwp_linux_buffer_params_v1_create(p, 16, 16, DRM_FORMAT_XRGB8888, 0);
	} else if (!strcmp(what, "invalid-dimensions")) {
		zwp_linux_buffer_params_v1_add(p, fd, 0, 0, 64, hi, lo);
		zwp_linux_buffer_params_v1_create(p, 0, 16, DRM_FORMAT_XRGB8888, 0);
	} else if (!strcmp(what, "out-of-bounds")) {
		zwp_linux_buffer_params_v1_add(p, fd, 0, 0, 256, hi, lo);
		zwp_linux_buffer_params_v1_create(p, 64, 64, DRM_FORMAT_XRGB8888, 0); /* 16 KiB > 4 KiB */
	} else if (!strcmp(what, "already-used")) {
		zwp_linux_buffer_params_v1_add(p, fd, 0, 0, 64, hi, lo);
		zwp_linux_buffer_params_v1_create_immed(p, 16, 16, DRM_FORMAT_XRGB8888, 0);
		zwp_linux_buffer_params_v1_add(p, fd, 0, 0, 64, hi, lo);
	} else if (!strcmp(what, "immed-flags")) {
		zwp_linux_buffer_params_v1_add(p, fd, 0, 0, 64, hi, lo);
		zwp_linux_buffer_params_v1_create_immed(p, 16, 16, DRM_FORMAT_XRGB8888, ZWP_LINUX_BUFFER_PARAMS_V1_FLAGS_INTERLACED);
	} else if (!strcmp(what, "create-flags")) {
		zwp_linux_buffer_params_v1_add_listener(p, &params_listener, &buffers[0]);
		zwp_linux_buffer_params_v1_add(p, fd, 0, 0, 64, hi, lo);
		zwp_linux_buffer_params_v1_create(p, 16, 16, DRM_FORMAT_XRGB8888, ZWP_LINUX_BUFFER_PARAMS_V1_FLAGS_INTERLACED);
		wl_display_roundtrip(display);
		printf("CREATE_RESULT %s\n", created_ok == 1 ? "created" : created_ok == 0 ? "failed" : "none");
	} else if (!strcmp(what, "ok")) {
		zwp_linux_buffer_params_v1_add(p, fd, 0, 0, 64, hi, lo);
		struct wl_buffer *b = zwp_linux_buffer_params_v1_create_immed(p, 16, 16, DRM_FORMAT_XRGB8888, 0);
		(void)b;
	} else if (!strcmp(what, "y-invert-ok")) {
		zwp_linux_buffer_params_v1_add_listener(p, &params_listener, &buffers[0]);
		zwp_linux_buffer_params_v1_add(p, fd, 0, 0, 64, hi, lo);
		zwp_linux_buffer_params_v1_create(p, 16, 16, DRM_FORMAT_XRGB8888, ZWP_LINUX_BUFFER_PARAMS_V1_FLAGS_Y_INVERT);
		wl_display_roundtrip(display);
		printf("CREATE_RESULT %s\n", created_ok == 1 ? "created" : created_ok == 0 ? "failed" : "none");
	} else if (!strcmp(what, "feedback-v3")) {
		/* get_default_feedback is since 4: a version-3 object must not send it */
		zwp_linux_dmabuf_v1_get_default_feedback(dmabuf);
	} else
		die("unknown error case");
	close(fd);
	wl_display_roundtrip(display);
	print_error();
	return 0;
}

/* ---- input: wl_seat, every wl_keyboard/wl_pointer/wl_touch event as one line.
 * The keymap is compiled with xkbcommon (as every real client does), its state follows
 * the modifiers events, and each key is printed with the keysym it makes in that state.
 * Coordinates are wl_fixed_to_double, printed exactly (%.8f: multiples of 1/256). */
static struct xkb_context *xkb_ctx;
static struct xkb_keymap *xkb_map;
static struct xkb_state *xkb_st;
static struct wl_keyboard *kbd;
static struct wl_pointer *ptr;
static struct wl_touch *tch;
static struct wl_surface *input_surface, *cursor_surface, *cover_surface;
static bool set_cursor_on_enter, keep_devices;
/* Events on a wl_pointer/wl_keyboard kept after its capability went (GP_KEEP_DEVICES=1) say so. */
#define STALE(obj, cur) ((obj) != (cur) ? "STALE " : "")

static const char *surface_name(struct wl_surface *s) {
	return s == NULL ? "null" : s == input_surface ? "toplevel" : s == cursor_surface ? "cursor" : s == cover_surface ? "cover" : "other";
}

static void kb_keymap(void *d, struct wl_keyboard *k, uint32_t format, int32_t fd, uint32_t size) {
	int seals = fcntl(fd, F_GET_SEALS);
	char *text = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (text == MAP_FAILED) die("cannot map the keymap");
	if (xkb_map) xkb_keymap_unref(xkb_map);
	if (xkb_st) xkb_state_unref(xkb_st);
	xkb_map = xkb_keymap_new_from_string(xkb_ctx, text, XKB_KEYMAP_FORMAT_TEXT_V1, XKB_KEYMAP_COMPILE_NO_FLAGS);
	munmap(text, size);
	if (!xkb_map) die("the keymap does not compile");
	xkb_st = xkb_state_new(xkb_map);
	printf("KEYMAP format=%u size=%u keys=%u layouts=%u seals=0x%x\n", format, size, xkb_keymap_max_keycode(xkb_map) - xkb_keymap_min_keycode(xkb_map) + 1,
	       xkb_keymap_num_layouts(xkb_map), seals < 0 ? 0 : seals);
}
static void kb_enter(void *d, struct wl_keyboard *k, uint32_t serial, struct wl_surface *s, struct wl_array *keys) {
	printf("KB_ENTER serial=%u surface=%s keys=", serial, surface_name(s));
	uint32_t *key;
	const char *sep = "";
	wl_array_for_each(key, keys) {
		printf("%s%u", sep, *key);
		sep = ",";
	}
	printf("\n");
}
static void kb_leave(void *d, struct wl_keyboard *k, uint32_t serial, struct wl_surface *s) { printf("KB_LEAVE serial=%u surface=%s\n", serial, surface_name(s)); }
static void kb_key(void *d, struct wl_keyboard *k, uint32_t serial, uint32_t time, uint32_t key, uint32_t state) {
	char name[64] = "?", utf8[16] = "";
	if (xkb_st) {
		xkb_keysym_get_name(xkb_state_key_get_one_sym(xkb_st, key + 8), name, sizeof name);
		xkb_state_key_get_utf8(xkb_st, key + 8, utf8, sizeof utf8);
		for (char *c = utf8; *c; c++)
			if ((unsigned char)*c < 0x20) *c = '?';
	}
	printf("%sKEY serial=%u", STALE(k, kbd), serial);
	printf(" key=%u state=%u sym=%s utf8=%s\n", key, state, name, utf8);
}
static void kb_modifiers(void *d, struct wl_keyboard *k, uint32_t serial, uint32_t dep, uint32_t lat, uint32_t lock, uint32_t group) {
	if (xkb_st) xkb_state_update_mask(xkb_st, dep, lat, lock, 0, 0, group);
	printf("MODS serial=%u depressed=%u latched=%u locked=%u group=%u active=", serial, dep, lat, lock, group);
	const char *sep = "";
	for (xkb_mod_index_t i = 0; xkb_map && i < xkb_keymap_num_mods(xkb_map); i++)
		if (xkb_state_mod_index_is_active(xkb_st, i, XKB_STATE_MODS_EFFECTIVE) > 0) {
			printf("%s%s", sep, xkb_keymap_mod_get_name(xkb_map, i));
			sep = ",";
		}
	printf("\n");
}
static void kb_repeat(void *d, struct wl_keyboard *k, int32_t rate, int32_t delay) { printf("REPEAT rate=%d delay=%d\n", rate, delay); }
static const struct wl_keyboard_listener kb_listener = { kb_keymap, kb_enter, kb_leave, kb_key, kb_modifiers, kb_repeat };

/* ---- drag-and-drop (GP_DND=1 in the input mode): a button press starts a drag of
 * "text/plain" (copy|move) with a 16x16 icon attached at (-4,-6); as the target, the
 * client accepts text/plain, prefers move, and on drop reads the data and finishes.
 * GP_DND=bad-serial quotes a serial it was never given. */
static const char *dnd_mode;
static struct wl_data_device *dnd_dev;
static struct wl_data_offer *dnd_offer;
static void dnds_target(void *d, struct wl_data_source *s, const char *mime) { printf("SRC_TARGET %s\n", mime ? mime : "(null)"); }
static void dnds_send(void *d, struct wl_data_source *s, const char *mime, int32_t fd) {
	printf("SRC_SEND %s\n", mime);
	if (write(fd, "dragged", 7) < 0) die("write dnd data");
	close(fd);
}
static void dnds_cancelled(void *d, struct wl_data_source *s) { printf("SRC_CANCELLED\n"); wl_data_source_destroy(s); }
static void dnds_performed(void *d, struct wl_data_source *s) { printf("SRC_DROP_PERFORMED\n"); }
static void dnds_finished(void *d, struct wl_data_source *s) { printf("SRC_FINISHED\n"); wl_data_source_destroy(s); }
static void dnds_action(void *d, struct wl_data_source *s, uint32_t a) { printf("SRC_ACTION %u\n", a); }
static const struct wl_data_source_listener dnds_listener = { dnds_target, dnds_send, dnds_cancelled, dnds_performed, dnds_finished, dnds_action };
static void dndo_offer(void *d, struct wl_data_offer *o, const char *mime) { printf("OFFER_MIME %s\n", mime); }
static void dndo_source_actions(void *d, struct wl_data_offer *o, uint32_t a) { printf("OFFER_SOURCE_ACTIONS %u\n", a); }
static void dndo_action(void *d, struct wl_data_offer *o, uint32_t a) { printf("OFFER_ACTION %u\n", a); }
static const struct wl_data_offer_listener dndo_listener = { dndo_offer, dndo_source_actions, dndo_action };
static void dndd_data_offer(void *d, struct wl_data_device *dev, struct wl_data_offer *o) { wl_data_offer_add_listener(o, &dndo_listener, NULL); }
static void dndd_enter(void *d, struct wl_data_device *dev, uint32_t serial, struct wl_surface *s, wl_fixed_t x, wl_fixed_t y, struct wl_data_offer *o) {
	printf("DND_ENTER x=%.2f y=%.2f offer=%s\n", wl_fixed_to_double(x), wl_fixed_to_double(y), o ? "yes" : "no");
	dnd_offer = o;
	if (o) {
		wl_data_offer_accept(o, serial, "text/plain");
		wl_data_offer_set_actions(o, WL_DATA_DEVICE_MANAGER_DND_ACTION_COPY | WL_DATA_DEVICE_MANAGER_DND_ACTION_MOVE, WL_DATA_DEVICE_MANAGER_DND_ACTION_MOVE);
	}
}
static void dndd_leave(void *d, struct wl_data_device *dev) { printf("DND_LEAVE\n"); }
static void dndd_motion(void *d, struct wl_data_device *dev, uint32_t t, wl_fixed_t x, wl_fixed_t y) { printf("DND_MOTION x=%.2f y=%.2f\n", wl_fixed_to_double(x), wl_fixed_to_double(y)); }
static void dndd_drop(void *d, struct wl_data_device *dev) {
	printf("DND_DROP\n");
	if (!dnd_offer) return;
	int p[2];
	if (pipe(p) < 0) die("pipe");
	wl_data_offer_receive(dnd_offer, "text/plain", p[1]);
	close(p[1]);
	wl_display_flush(display);
	char buf[64];
	size_t n = 0;
	for (;;) {
		struct pollfd pf[2] = { { p[0], POLLIN, 0 }, { wl_display_get_fd(display), POLLIN, 0 } };
		if (poll(pf, 2, 5000) <= 0) die("no drag data within 5 s");
		if (pf[1].revents & POLLIN) wl_display_dispatch(display);
		if (pf[0].revents & (POLLIN | POLLHUP)) {
			ssize_t k = read(p[0], buf + n, sizeof buf - 1 - n);
			if (k <= 0) break;
			n += (size_t)k;
		}
	}
	close(p[0]);
	buf[n] = 0;
	printf("DND_DATA %s\n", buf);
	/* As GTK does: the actions once more after the drop (how an `ask` is answered), then finish. */
	wl_data_offer_set_actions(dnd_offer, WL_DATA_DEVICE_MANAGER_DND_ACTION_COPY | WL_DATA_DEVICE_MANAGER_DND_ACTION_MOVE, WL_DATA_DEVICE_MANAGER_DND_ACTION_MOVE);
	wl_data_offer_finish(dnd_offer);
	wl_data_offer_destroy(dnd_offer);
	dnd_offer = NULL;
}
static void dndd_selection(void *d, struct wl_data_device *dev, struct wl_data_offer *o) {}
static const struct wl_data_device_listener dndd_listener = { dndd_data_offer, dndd_enter, dndd_leave, dndd_motion, dndd_drop, dndd_selection };
static void start_drag(uint32_t serial) {
	static struct buffer ib; /* outlives the call (release listener) */
	static struct wl_surface *icon;
	struct wl_data_source *src = wl_data_device_manager_create_data_source(data_manager);
	wl_data_source_add_listener(src, &dnds_listener, NULL);
	wl_data_source_offer(src, "text/plain");
	wl_data_source_set_actions(src, WL_DATA_DEVICE_MANAGER_DND_ACTION_COPY | WL_DATA_DEVICE_MANAGER_DND_ACTION_MOVE);
	if (!icon) {
		icon = wl_compositor_create_surface(compositor);
		make_shm_sized(&ib, 16, 16);
		fill_solid(&ib, 16, 16, 0xff00ffff);
	}
	bool bad = !strcmp(dnd_mode, "bad-serial");
	wl_data_device_start_drag(dnd_dev, src, input_surface, icon, bad ? serial + 1000 : serial);
	ib.busy = true; /* the release listener checks it (attach_buffer cannot give an offset) */
	wl_surface_attach(icon, ib.wl, -4, -6);
	wl_surface_damage(icon, 0, 0, 16, 16);
	wl_surface_commit(icon);
	printf("START_DRAG serial=%s\n", bad ? "bad" : "ok");
}

static void show_cursor(uint32_t serial) {
	if (!cursor_surface) {
		static struct buffer b; /* the release listener outlives this call */
		cursor_surface = wl_compositor_create_surface(compositor);
		make_shm_sized(&b, 16, 16);
		fill_solid(&b, 16, 16, 0xffff00ff);
		attach_buffer(cursor_surface, &b);
		wl_surface_commit(cursor_surface);
	}
	wl_pointer_set_cursor(ptr, serial, cursor_surface, 3, 5);
	printf("SET_CURSOR serial=%u hotspot=3,5\n", serial);
}
static void p_enter(void *d, struct wl_pointer *p, uint32_t serial, struct wl_surface *s, wl_fixed_t x, wl_fixed_t y) {
	printf("%sPTR_ENTER", STALE(p, ptr));
	printf(" serial=%u surface=%s x=%.8f y=%.8f\n", serial, surface_name(s), wl_fixed_to_double(x), wl_fixed_to_double(y));
	if (set_cursor_on_enter) show_cursor(serial);
}
static void p_leave(void *d, struct wl_pointer *p, uint32_t serial, struct wl_surface *s) { printf("%sPTR_LEAVE", STALE(p, ptr)); printf(" serial=%u surface=%s\n", serial, surface_name(s)); }
static void p_motion(void *d, struct wl_pointer *p, uint32_t t, wl_fixed_t x, wl_fixed_t y) { printf("%sMOTION", STALE(p, ptr)); printf(" x=%.8f y=%.8f\n", wl_fixed_to_double(x), wl_fixed_to_double(y)); }
static void p_button(void *d, struct wl_pointer *p, uint32_t serial, uint32_t t, uint32_t button, uint32_t state) {
	printf("%sBUTTON", STALE(p, ptr));
	printf(" serial=%u button=%u state=%u\n", serial, button, state);
	if (dnd_mode && dnd_dev && state == 1) start_drag(serial);
}
static void p_axis(void *d, struct wl_pointer *p, uint32_t t, uint32_t axis, wl_fixed_t v) { printf("AXIS axis=%u value=%.8f\n", axis, wl_fixed_to_double(v)); }
static void p_frame(void *d, struct wl_pointer *p) { printf("%sFRAME\n", STALE(p, ptr)); }
static void p_axis_source(void *d, struct wl_pointer *p, uint32_t src) { printf("AXIS_SOURCE %u\n", src); }
static void p_axis_stop(void *d, struct wl_pointer *p, uint32_t t, uint32_t axis) { printf("AXIS_STOP axis=%u\n", axis); }
static void p_axis_discrete(void *d, struct wl_pointer *p, uint32_t axis, int32_t n) { printf("AXIS_DISCRETE axis=%u n=%d\n", axis, n); }
static void p_axis_value120(void *d, struct wl_pointer *p, uint32_t axis, int32_t v) { printf("AXIS_VALUE120 axis=%u v=%d\n", axis, v); }
static const struct wl_pointer_listener p_listener = { p_enter, p_leave, p_motion, p_button, p_axis, p_frame, p_axis_source, p_axis_stop, p_axis_discrete, p_axis_value120 };

static void t_down(void *d, struct wl_touch *t, uint32_t serial, uint32_t time, struct wl_surface *s, int32_t id, wl_fixed_t x, wl_fixed_t y) {
	printf("TOUCH_DOWN serial=%u surface=%s id=%d x=%.8f y=%.8f\n", serial, surface_name(s), id, wl_fixed_to_double(x), wl_fixed_to_double(y));
}
static void t_up(void *d, struct wl_touch *t, uint32_t serial, uint32_t time, int32_t id) { printf("TOUCH_UP serial=%u id=%d\n", serial, id); }
static void t_motion(void *d, struct wl_touch *t, uint32_t time, int32_t id, wl_fixed_t x, wl_fixed_t y) { printf("TOUCH_MOTION id=%d x=%.8f y=%.8f\n", id, wl_fixed_to_double(x), wl_fixed_to_double(y)); }
static void t_frame(void *d, struct wl_touch *t) { printf("TOUCH_FRAME\n"); }
static void t_cancel(void *d, struct wl_touch *t) { printf("TOUCH_CANCEL\n"); }
static void t_shape(void *d, struct wl_touch *t, int32_t id, wl_fixed_t major, wl_fixed_t minor) {}
static void t_orientation(void *d, struct wl_touch *t, int32_t id, wl_fixed_t o) {}
static const struct wl_touch_listener t_listener = { t_down, t_up, t_motion, t_frame, t_cancel, t_shape, t_orientation };

/* Gets and releases the devices as the capabilities come and go (what toolkits do). */
static void seat_caps(void *d, struct wl_seat *s, uint32_t caps) {
	printf("CAPS pointer=%d keyboard=%d touch=%d\n", !!(caps & WL_SEAT_CAPABILITY_POINTER), !!(caps & WL_SEAT_CAPABILITY_KEYBOARD), !!(caps & WL_SEAT_CAPABILITY_TOUCH));
	bool v3 = wl_seat_get_version(s) >= 3;
	if ((caps & WL_SEAT_CAPABILITY_KEYBOARD) && !kbd) {
		kbd = wl_seat_get_keyboard(s);
		wl_keyboard_add_listener(kbd, &kb_listener, NULL);
	} else if (!(caps & WL_SEAT_CAPABILITY_KEYBOARD) && kbd) {
		if (keep_devices) {} /* kept: must get no more events */
		else if (v3) wl_keyboard_release(kbd);
		else wl_keyboard_destroy(kbd);
		kbd = NULL;
	}
	if ((caps & WL_SEAT_CAPABILITY_POINTER) && !ptr) {
		ptr = wl_seat_get_pointer(s);
		wl_pointer_add_listener(ptr, &p_listener, NULL);
	} else if (!(caps & WL_SEAT_CAPABILITY_POINTER) && ptr) {
		if (keep_devices) {}
		else if (v3) wl_pointer_release(ptr);
		else wl_pointer_destroy(ptr);
		ptr = NULL;
	}
	if ((caps & WL_SEAT_CAPABILITY_TOUCH) && !tch) {
		tch = wl_seat_get_touch(s);
		wl_touch_add_listener(tch, &t_listener, NULL);
	} else if (!(caps & WL_SEAT_CAPABILITY_TOUCH) && tch) {
		if (v3) wl_touch_release(tch);
		else wl_touch_destroy(tch);
		tch = NULL;
	}
}
static void seat_name(void *d, struct wl_seat *s, const char *name) { printf("SEAT_NAME %s\n", name); }
static const struct wl_seat_listener seat_listener = { seat_caps, seat_name };

/* A toplevel showing a W x H wl_shm buffer (smaller than the output: the compositor's fit
 * mode scales it), then every input event until "quit" on stdin (or stdin closes).
 * GP_SET_CURSOR=1: answers each pointer enter with a 16x16 cursor surface, hotspot (3,5).
 * GP_KEEP_DEVICES=1: keeps a wl_pointer/wl_keyboard whose capability went (its events, if
 * any came, would be printed STALE ...) and gets a new one when the capability is back. */
static int run_input(int w, int h) {
	if (!seat || !shm || !compositor || !wm_base) die("missing wl_seat, wl_shm, wl_compositor or xdg_wm_base");
	set_cursor_on_enter = getenv("GP_SET_CURSOR") && !strcmp(getenv("GP_SET_CURSOR"), "1");
	keep_devices = getenv("GP_KEEP_DEVICES") && !strcmp(getenv("GP_KEEP_DEVICES"), "1");
	dnd_mode = getenv("GP_DND");
	if (dnd_mode) {
		if (!data_manager) die("no wl_data_device_manager");
		dnd_dev = wl_data_device_manager_get_data_device(data_manager, seat);
		wl_data_device_add_listener(dnd_dev, &dndd_listener, NULL);
	}
	xkb_ctx = xkb_context_new(XKB_CONTEXT_NO_FLAGS);
	if (!xkb_ctx) die("xkb_context_new");
	printf("SEAT version=%u\n", wl_seat_get_version(seat));
	wl_seat_add_listener(seat, &seat_listener, NULL);
	input_surface = make_toplevel();
	struct buffer b;
	make_shm_sized(&b, w, h);
	fill_solid(&b, w, h, 0xff406080);
	attach_buffer(input_surface, &b);
	struct buffer cb_buf;
	if (getenv("GP_INPUT_COVER") && !strcmp(getenv("GP_INPUT_COVER"), "1")) {
		if (!subcompositor) die("no wl_subcompositor");
		cover_surface = wl_compositor_create_surface(compositor);
		struct wl_subsurface *sub = wl_subcompositor_get_subsurface(subcompositor, cover_surface, input_surface);
		wl_subsurface_set_desync(sub);
		/* Built as add-all, then subtract the left half: the order of the rectangles counts. */
		struct wl_region *r = wl_compositor_create_region(compositor);
		wl_region_add(r, 0, 0, w, h);
		wl_region_subtract(r, 0, 0, w / 2, h);
		wl_surface_set_input_region(cover_surface, r);
		wl_region_destroy(r); /* the surface keeps a copy */
		make_shm_sized(&cb_buf, w, h);
		fill_solid(&cb_buf, w, h, 0xff804060);
		attach_buffer(cover_surface, &cb_buf);
		wl_surface_commit(cover_surface);
	}
	struct wl_callback *cb = wl_surface_frame(input_surface);
	wl_callback_add_listener(cb, &frame_listener, NULL);
	wl_surface_commit(input_surface);
	while (!frame_done)
		if (wl_display_dispatch(display) < 0) die("display error waiting for the first frame");
	printf("MAPPED %dx%d\n", w, h);
	fflush(stdout);
	/* Unbuffered: a second command must not wait in stdio's buffer while poll() sees none. */
	setvbuf(stdin, NULL, _IONBF, 0);
	struct pollfd fds[2] = { { wl_display_get_fd(display), POLLIN, 0 }, { 0, POLLIN, 0 } };
	for (;;) {
		while (wl_display_prepare_read(display) != 0) wl_display_dispatch_pending(display);
		fflush(stdout);
		if (wl_display_flush(display) < 0 && errno != EAGAIN) {
			wl_display_cancel_read(display);
			break;
		}
		if (poll(fds, 2, -1) < 0) {
			wl_display_cancel_read(display);
			if (errno == EINTR) continue;
			die("poll");
		}
		if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			if (wl_display_read_events(display) < 0) break;
		} else
			wl_display_cancel_read(display);
		if (wl_display_dispatch_pending(display) < 0) break;
		if (fds[1].revents & (POLLIN | POLLHUP)) {
			char line[64];
			if (!fgets(line, sizeof line, stdin) || !strncmp(line, "quit", 4)) break;
			if (!strncmp(line, "sync", 4)) {
				wl_display_roundtrip(display);
				printf("SYNCED\n");
			} else if (!strncmp(line, "unmap", 5) || !strncmp(line, "map", 3)) {
				/* a null buffer unmaps the toplevel; the buffer again maps it */
				attach_buffer(input_surface, line[0] == 'u' ? NULL : &b);
				wl_surface_commit(input_surface);
			}
		}
	}
	print_error();
	return 0;
}

/* get_keyboard/get_pointer/get_touch on a seat (bound at version GP_SEAT_VERSION, default 8):
 * prints the capabilities it announced, then the protocol error (or none) the request got. */
static uint32_t announced_caps = 0xffffffff;
static void seat_caps_only(void *d, struct wl_seat *s, uint32_t caps) { announced_caps = caps; }
static const struct wl_seat_listener seat_caps_listener = { seat_caps_only, seat_name };
static uint32_t enter_serial;
static void enter_only(void *d, struct wl_pointer *p, uint32_t serial, struct wl_surface *s, wl_fixed_t x, wl_fixed_t y) { enter_serial = serial; }
static void ignore_leave(void *d, struct wl_pointer *p, uint32_t serial, struct wl_surface *s) {}
static void ignore_motion(void *d, struct wl_pointer *p, uint32_t t, wl_fixed_t x, wl_fixed_t y) {}
static void ignore_frame(void *d, struct wl_pointer *p) {}
static const struct wl_pointer_listener enter_only_listener = { enter_only, ignore_leave, ignore_motion, p_button, p_axis, ignore_frame, p_axis_source, p_axis_stop, p_axis_discrete, p_axis_value120 };
static int run_seat_request(const char *what) {
	if (!seat) die("no wl_seat");
	wl_seat_add_listener(seat, &seat_caps_listener, NULL);
	wl_display_roundtrip(display);
	printf("CAPS_ANNOUNCED %u\n", announced_caps);
	if (!strcmp(what, "keyboard")) wl_seat_get_keyboard(seat);
	else if (!strcmp(what, "pointer")) wl_seat_get_pointer(seat);
	else if (!strcmp(what, "touch")) wl_seat_get_touch(seat);
	else if (!strcmp(what, "cursor-role")) {
		/* once the pointer is in our toplevel, set_cursor with a surface that already is a
		 * sub-surface: wl_pointer.error.role */
		struct wl_surface *parent = wl_compositor_create_surface(compositor), *s = wl_compositor_create_surface(compositor);
		wl_subcompositor_get_subsurface(subcompositor, s, parent);
		ptr = wl_seat_get_pointer(seat);
		wl_pointer_add_listener(ptr, &enter_only_listener, NULL);
		input_surface = make_toplevel();
		static struct buffer b; /* the release listener outlives this block */
		make_shm_sized(&b, 64, 64);
		attach_buffer(input_surface, &b);
		wl_surface_commit(input_surface);
		while (!enter_serial)
			if (wl_display_dispatch(display) < 0) die("display error waiting for the pointer");
		printf("ENTERED\n");
		wl_pointer_set_cursor(ptr, enter_serial, s, 0, 0);
	} else
		die("unknown seat request");
	wl_display_roundtrip(display);
	print_error();
	return 0;
}

int main(int argc, char **argv) {
	setvbuf(stdout, NULL, _IOLBF, 0);
	y_invert = getenv("GP_Y_INVERT") && !strcmp(getenv("GP_Y_INVERT"), "1");
	buf_transform = getenv("GP_TRANSFORM") ? atoi(getenv("GP_TRANSFORM")) : 0;
	no_seal = getenv("GP_NO_SEAL") && !strcmp(getenv("GP_NO_SEAL"), "1");
	if (argc < 2) die("usage: gp-wayland-client dmabuf N | shm N | lease | error CASE");
	if (!strcmp(argv[1], "input") || !strcmp(argv[1], "seat-request")) seat_version = getenv("GP_SEAT_VERSION") ? (uint32_t)atoi(getenv("GP_SEAT_VERSION")) : 8;
	connect_and_bind();
	if (!strcmp(argv[1], "dmabuf")) return run_frames(true, argc > 2 ? atoi(argv[2]) : 60);
	if (!strcmp(argv[1], "shm")) return run_frames(false, argc > 2 ? atoi(argv[2]) : 60);
	if (!strcmp(argv[1], "subtree")) return run_subtree();
	if (!strcmp(argv[1], "solid") && argc > 5) return run_decorated_solid(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
	if (!strcmp(argv[1], "clip-set") && argc > 2) return run_clip(true, argv[2]);
	if (!strcmp(argv[1], "clip-get")) return run_clip(false, NULL);
	if (!strcmp(argv[1], "subsurface")) return run_subsurface(argc > 2 ? atoi(argv[2]) : 60);
	if (!strcmp(argv[1], "subsurfaces")) return run_subsurfaces(argc > 2 ? atoi(argv[2]) : 64, argc > 3 ? atoi(argv[3]) : 3);
	if (!strcmp(argv[1], "geometry")) return run_geometry();
	if (!strcmp(argv[1], "popup")) return run_popup(argc > 2 ? atoi(argv[2]) : 60);
	if (!strcmp(argv[1], "window-states")) return run_window_states();
	if (!strcmp(argv[1], "oversize")) return run_oversize();
	if (!strcmp(argv[1], "shm-shrink")) return run_shm_shrink(argc > 2 ? atoi(argv[2]) : 5);
	if (!strcmp(argv[1], "lease")) return run_lease();
	if (!strcmp(argv[1], "roundtrip")) return print_roundtrips(argc > 2 ? atoi(argv[2]) : 1000), 0;
	if (!strcmp(argv[1], "error") && argc > 2) return run_error(argv[2]);
	if (!strcmp(argv[1], "input") && argc > 3) return run_input(atoi(argv[2]), atoi(argv[3]));
	if (!strcmp(argv[1], "seat-request") && argc > 2) return run_seat_request(argv[2]);
	die("unknown mode");
}
