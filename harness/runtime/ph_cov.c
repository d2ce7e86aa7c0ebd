/* pipe-harness coverage runtime: linked into a server built with `pipe-harness cc`.
 *
 * The compiler's SanitizerCoverage callbacks (-fsanitize-coverage=trace-pc,trace-cmp, which gcc
 * and clang both offer) record into a file the harness names in PIPE_HARNESS_COVERAGE and maps
 * shared: an edge map (hit counts of "previous block -> this block", block addresses taken
 * relative to this object so that they survive ASLR and restarts) and a log of the operands of
 * the comparisons the program made. Without the variable the callbacks write to a private
 * buffer, and the program runs as usual. This file is compiled without instrumentation.
 *
 * The file is mapped with mmap on Unix, with CreateFileMapping/MapViewOfFile on Windows (mingw
 * gcc or clang for a windows-gnu target; the harness reads it with ordinary reads, which see
 * the mapped view's writes on both).
 */
#include <stdint.h>
#include <stdlib.h>
#ifdef _WIN32
#include <windows.h>
#else
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
#endif

#define PH_MAP_SIZE (1u << 16)
#define PH_CMP_MAX 4096u

struct ph_shared {
    uint8_t map[PH_MAP_SIZE];
    uint32_t cmp_count;
    uint32_t reserved;
    uint64_t cmp[PH_CMP_MAX][3]; /* operand a, operand b, size in bytes */
};

static struct ph_shared ph_private;
static struct ph_shared *ph = &ph_private;
static __thread uintptr_t ph_prev;

static void ph_anchor(void) {}

#ifdef _WIN32
__attribute__((constructor)) static void ph_init(void) {
    const char *path = getenv("PIPE_HARNESS_COVERAGE");
    if (!path) return;
    /* Shared for reading and writing: the harness holds the file open to read and clear it. */
    HANDLE f = CreateFileA(path, GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                           0, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, 0);
    if (f == INVALID_HANDLE_VALUE) return;
    HANDLE m = CreateFileMappingA(f, 0, PAGE_READWRITE, 0, sizeof(struct ph_shared), 0);
    CloseHandle(f);
    if (!m) return;
    void *v = MapViewOfFile(m, FILE_MAP_WRITE, 0, 0, sizeof(struct ph_shared));
    CloseHandle(m); /* the view keeps the mapping */
    if (v) ph = (struct ph_shared *)v;
}
#else
__attribute__((constructor)) static void ph_init(void) {
    const char *path = getenv("PIPE_HARNESS_COVERAGE");
    if (!path) return;
    int fd = open(path, O_RDWR);
    if (fd < 0) return;
    void *m = mmap(0, sizeof(struct ph_shared), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (m != MAP_FAILED) ph = (struct ph_shared *)m;
}
#endif

void __sanitizer_cov_trace_pc(void) {
    uintptr_t cur = (uintptr_t)__builtin_return_address(0) - (uintptr_t)&ph_anchor;
    cur = (cur >> 4) ^ (cur << 8);
    ph->map[(cur ^ ph_prev) & (PH_MAP_SIZE - 1)]++;
    ph_prev = cur >> 1;
}

/* The guard flavour (clang's -fsanitize-coverage=trace-pc-guard, rustc's sancov pass): each
 * edge has a guard, numbered here once. */
void __sanitizer_cov_trace_pc_guard_init(uint32_t *start, uint32_t *stop) {
    static uint32_t next;
    for (uint32_t *g = start; g < stop; g++)
        if (!*g) *g = ++next;
}

void __sanitizer_cov_trace_pc_guard(uint32_t *guard) {
    ph->map[*guard & (PH_MAP_SIZE - 1)]++;
}

static void ph_cmp(uint64_t a, uint64_t b, uint64_t size) {
    if (a == b) return;
    uint32_t i = __atomic_fetch_add(&ph->cmp_count, 1, __ATOMIC_RELAXED);
    if (i < PH_CMP_MAX) {
        ph->cmp[i][0] = a;
        ph->cmp[i][1] = b;
        ph->cmp[i][2] = size;
    }
}

void __sanitizer_cov_trace_cmp1(uint8_t a, uint8_t b) { ph_cmp(a, b, 1); }
void __sanitizer_cov_trace_cmp2(uint16_t a, uint16_t b) { ph_cmp(a, b, 2); }
void __sanitizer_cov_trace_cmp4(uint32_t a, uint32_t b) { ph_cmp(a, b, 4); }
void __sanitizer_cov_trace_cmp8(uint64_t a, uint64_t b) { ph_cmp(a, b, 8); }
void __sanitizer_cov_trace_const_cmp1(uint8_t a, uint8_t b) { ph_cmp(a, b, 1); }
void __sanitizer_cov_trace_const_cmp2(uint16_t a, uint16_t b) { ph_cmp(a, b, 2); }
void __sanitizer_cov_trace_const_cmp4(uint32_t a, uint32_t b) { ph_cmp(a, b, 4); }
void __sanitizer_cov_trace_const_cmp8(uint64_t a, uint64_t b) { ph_cmp(a, b, 8); }
void __sanitizer_cov_trace_switch(uint64_t v, uint64_t *cases) {
    /* cases[0]: how many; cases[1]: their size in bits; then the values. */
    for (uint64_t i = 0; i < cases[0]; i++) ph_cmp(v, cases[2 + i], cases[1] / 8);
}
