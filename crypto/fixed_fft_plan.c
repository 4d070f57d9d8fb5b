/* Fixed FFT plan for concrete-python's TFHE runtime: makes server evaluation byte-identical across processes.
 *
 * Why [measured]: concrete-python 2.11 links concrete-fft 0.5.1, whose Plan::new(Method::Measure) times every
 * candidate FFT algorithm (std::time::Instant = clock_gettime) and keeps the fastest. Different processes pick
 * different plans on a loaded machine, round some intermediates differently, and produce different (equally
 * valid) output ciphertexts. Six concurrent processes gave five distinct outputs.
 *
 * How: loaded with LD_PRELOAD, this library interposes clock_gettime. Calls made from inside the concrete
 * runtime library (libConcretelangRuntime*.so) see a per-thread clock that advances by exactly one second per
 * call, so every candidate plan measures the same duration and the first candidate in concrete-fft's fixed
 * order wins, in every process. Every other caller (Python's time.perf_counter, OpenMP, other programs) gets
 * the real clock. Inside the runtime, the clock is also read by Rust std's timed waits (Condvar::wait_timeout,
 * park_timeout, channel deadlines), kj's timed mutex wait and the optimizer's cache persistence; on the fake
 * clock a timed wait would time out at once. None of them runs during an evaluation [measured: the exported
 * counter repo_market_fixed_fft_plan_fakes stays at the plan measurements' reads; the replay test asserts a
 * bound on it, so a runtime that starts using timed waits on the evaluation path fails the test].
 * Each faked measurement reads 1 s, more than concrete-fft's minimum run time (1 ms) and its target
 * (10 ms), so its measuring loop runs each candidate once. Cost per PBS against the timed pick:
 * bench-results/bench_fft_plan.json (benchmarks/bench_fft_plan.py).
 *
 * Built by scripts/setup.sh or on first use (crypto/fhe_runtime.py); no other dependency than libc.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#ifndef FIXED_FFT_PLAN_SOURCE_DIGEST
#define FIXED_FFT_PLAN_SOURCE_DIGEST "unknown"
#endif

/* Looked up by crypto/fhe_runtime.py: the library is loaded, and built from the expected source. */
const char repo_market_fixed_fft_plan[] = FIXED_FFT_PLAN_SOURCE_DIGEST;

/* Number of clock reads answered from the fake clock (the replay test bounds it). */
unsigned long repo_market_fixed_fft_plan_fakes;

static int (*real_clock_gettime)(clockid_t, struct timespec *);
static volatile uintptr_t runtime_lo, runtime_hi;
static int runtime_found; /* published with release/acquire after the range */
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
    __atomic_store_n(&runtime_found, 1, __ATOMIC_RELEASE);
    return 1;
}

static int called_from_runtime(uintptr_t caller) {
    if (!__atomic_load_n(&runtime_found, __ATOMIC_ACQUIRE)) {
        for (int i = 0; i < KNOWN_OUTSIDE; i++)
            if (known_outside[i] == caller) return 0;
        dl_iterate_phdr(find_runtime, NULL);
        if (!__atomic_load_n(&runtime_found, __ATOMIC_ACQUIRE)) {
            known_outside[caller % KNOWN_OUTSIDE] = caller;
            return 0;
        }
    }
    return caller >= runtime_lo && caller < runtime_hi;
}

int clock_gettime(clockid_t clock, struct timespec *ts) {
    if (!real_clock_gettime) {
        real_clock_gettime = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
        if (!real_clock_gettime) return -1; /* no libc clock_gettime: cannot happen with glibc */
    }
    if (clock != CLOCK_REALTIME && called_from_runtime((uintptr_t)__builtin_return_address(0))) {
        __atomic_fetch_add(&repo_market_fixed_fft_plan_fakes, 1, __ATOMIC_RELAXED);
        fake_ticks += 1;
        ts->tv_sec = (time_t)fake_ticks;
        ts->tv_nsec = 0;
        return 0;
    }
    return real_clock_gettime(clock, ts);
}
