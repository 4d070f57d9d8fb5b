/* Fixed FFT plan for concrete-python's TFHE runtime: makes server evaluation byte-identical across processes.
 *
 * Why [measured]: concrete-python 2.11 links concrete-fft 0.5.1, whose Plan::new(Method::Measure) times every
 * candidate FFT algorithm (std::time::Instant = clock_gettime) and keeps the fastest. Different processes pick
 * different plans on a loaded machine, round some intermediates differently, and produce different (equally
 * valid) output ciphertexts (zama-ai/tfhe-rs#1765). Six concurrent processes gave five distinct outputs.
 *
 * How: loaded with LD_PRELOAD, this library interposes clock_gettime. Calls made from inside the concrete
 * runtime library (libConcretelangRuntime*.so) see a per-thread clock that advances by exactly one second per
 * call, so every candidate plan measures the same duration and the first candidate in concrete-fft's fixed
 * order wins, in every process. Every other caller (Python's time.perf_counter, OpenMP, other programs) gets
 * the real clock. The runtime's own code uses the clock only for plan measurement [checked: the library's
 * only time import is clock_gettime, used via Rust std's Instant]. Cost: a plan a few percent slower than the
 * timed pick (README, performance section).
 *
 * Built by scripts/setup.sh or on first use (crypto/fhe_runtime.py); no other dependency than libc.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

/* Marker looked up by crypto/fhe_runtime.py to check the library is loaded in this process. */
const int repo_market_fixed_fft_plan = 1;

static int (*real_clock_gettime)(clockid_t, struct timespec *);
static volatile uintptr_t runtime_lo, runtime_hi;
static volatile int runtime_found;
static __thread uint64_t fake_ticks;

/* Callers already known to lie outside the runtime: skips the loaded-object scan for the common callers
 * (libpython, libgomp) while the runtime is not loaded yet. Racy writes are benign (a redundant scan). */
#define KNOWN_OUTSIDE 16
static volatile uintptr_t known_outside[KNOWN_OUTSIDE];

static int find_runtime(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    (void)data;
    if (!info->dlpi_name || !strstr(info->dlpi_name, "libConcretelangRuntime")) return 0;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *phdr = &info->dlpi_phdr[i];
        if (phdr->p_type != PT_LOAD) continue;
        uintptr_t start = info->dlpi_addr + phdr->p_vaddr, end = start + phdr->p_memsz;
        if (start < lo) lo = start;
        if (end > hi) hi = end;
    }
    runtime_lo = lo;
    runtime_hi = hi;
    runtime_found = 1;
    return 1;
}

static int called_from_runtime(uintptr_t caller) {
    if (!runtime_found) {
        for (int i = 0; i < KNOWN_OUTSIDE; i++)
            if (known_outside[i] == caller) return 0;
        dl_iterate_phdr(find_runtime, NULL);
        if (!runtime_found) {
            known_outside[caller % KNOWN_OUTSIDE] = caller;
            return 0;
        }
    }
    return caller >= runtime_lo && caller < runtime_hi;
}

int clock_gettime(clockid_t clock, struct timespec *ts) {
    if (!real_clock_gettime) real_clock_gettime = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    if (clock != CLOCK_REALTIME && called_from_runtime((uintptr_t)__builtin_return_address(0))) {
        fake_ticks += 1;
        ts->tv_sec = (time_t)fake_ticks;
        ts->tv_nsec = 0;
        return 0;
    }
    return real_clock_gettime(clock, ts);
}
