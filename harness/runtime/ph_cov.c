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
 *
 * After the edge map and the comparison log: a log of the comparisons library calls made
 * (memcmp, strcmp..., below), up to 32 bytes of each operand.
 */
#include <stddef.h>
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
#define PH_RTN_MAX 512u
#define PH_RTN_LEN 32u

/* A comparison made by a library call (memcmp, strcmp...): up to 32 bytes of each operand. */
struct ph_rtn {
    uint8_t len[2];
    uint8_t pad[6];
    uint8_t v[2][PH_RTN_LEN];
};

struct ph_shared {
    uint8_t map[PH_MAP_SIZE];
    uint32_t cmp_count;
    uint32_t reserved;
    uint64_t cmp[PH_CMP_MAX][3]; /* operand a, operand b, size in bytes */
    uint32_t rtn_count;
    uint32_t reserved2;
    struct ph_rtn rtn[PH_RTN_MAX];
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

/* Comparisons in library calls: memcmp, bcmp, strcmp, strncmp, strcasecmp, strncasecmp and
 * memmem. `pipe-harness cc` compiles the program with -fno-builtin-<each>, so its calls stay
 * calls; the runtime logs the operands (up to 32 bytes of each) and compares. In a build with a
 * sanitizer that intercepts these calls (address, memory, thread: cc then defines
 * PH_SANITIZER_HOOKS), the sanitizer's interceptors call the __sanitizer_weak_hook_* functions
 * below instead, and the runtime does not define the calls itself. */
/* A string operand's bytes, its terminating NUL included when it comes before `max`: an input
 * whose bytes are zeros where a verb is wanted is then the token "\0" -> "SUM:", which fits
 * in place (an empty operand would fit nowhere). */
static size_t ph_strnlen(const char *s, size_t max) {
    size_t n = 0;
    while (n < max && s[n]) n++;
    return n < max ? n + 1 : n;
}

static void ph_rtn(const void *a, size_t la, const void *b, size_t lb) {
    if (!a || !b) return;
    if (la > PH_RTN_LEN) la = PH_RTN_LEN;
    if (lb > PH_RTN_LEN) lb = PH_RTN_LEN;
    if (la == 0 && lb == 0) return;
    const uint8_t *x = (const uint8_t *)a, *y = (const uint8_t *)b;
    size_t same = 0;
    while (same < la && same < lb && x[same] == y[same]) same++;
    if (same == la && same == lb) return; /* equal: nothing to learn */
    uint32_t i = __atomic_fetch_add(&ph->rtn_count, 1, __ATOMIC_RELAXED);
    if (i >= PH_RTN_MAX) return;
    struct ph_rtn *r = &ph->rtn[i];
    for (size_t k = 0; k < la; k++) r->v[0][k] = x[k];
    for (size_t k = 0; k < lb; k++) r->v[1][k] = y[k];
    r->len[0] = (uint8_t)la;
    r->len[1] = (uint8_t)lb;
}

void __sanitizer_weak_hook_memcmp(void *pc, const void *a, const void *b, size_t n, int result) {
    (void)pc;
    if (result) ph_rtn(a, n, b, n);
}
void __sanitizer_weak_hook_strncmp(void *pc, const char *a, const char *b, size_t n, int result) {
    (void)pc;
    if (result) ph_rtn(a, ph_strnlen(a, n), b, ph_strnlen(b, n));
}
void __sanitizer_weak_hook_strcmp(void *pc, const char *a, const char *b, int result) {
    (void)pc;
    if (result) ph_rtn(a, ph_strnlen(a, PH_RTN_LEN), b, ph_strnlen(b, PH_RTN_LEN));
}
void __sanitizer_weak_hook_strncasecmp(void *pc, const char *a, const char *b, size_t n, int result) {
    __sanitizer_weak_hook_strncmp(pc, a, b, n, result);
}
void __sanitizer_weak_hook_strcasecmp(void *pc, const char *a, const char *b, int result) {
    __sanitizer_weak_hook_strcmp(pc, a, b, result);
}
void __sanitizer_weak_hook_memmem(void *pc, const void *h, size_t hl, const void *nd, size_t nl, void *result) {
    (void)pc;
    if (!result) ph_rtn(h, hl < nl ? hl : nl, nd, nl);
}

#if !defined(_WIN32) && !defined(PH_SANITIZER_HOOKS)
static int ph_lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

static int ph_memcmp(const void *a, const void *b, size_t n) {
    const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;
    for (size_t i = 0; i < n; i++)
        if (x[i] != y[i]) return x[i] - y[i];
    return 0;
}

static int ph_strncmp(const char *a, const char *b, size_t n, int fold) {
    for (size_t i = 0; i < n; i++) {
        int x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (fold) x = ph_lower(x), y = ph_lower(y);
        if (x != y || !x) return x - y;
    }
    return 0;
}

int memcmp(const void *a, const void *b, size_t n) {
    int r = ph_memcmp(a, b, n);
    __sanitizer_weak_hook_memcmp(0, a, b, n, r);
    return r;
}
int bcmp(const void *a, const void *b, size_t n) { return memcmp(a, b, n); }
int strncmp(const char *a, const char *b, size_t n) {
    int r = ph_strncmp(a, b, n, 0);
    __sanitizer_weak_hook_strncmp(0, a, b, n, r);
    return r;
}
int strcmp(const char *a, const char *b) {
    int r = ph_strncmp(a, b, (size_t)-1, 0);
    __sanitizer_weak_hook_strcmp(0, a, b, r);
    return r;
}
int strncasecmp(const char *a, const char *b, size_t n) {
    int r = ph_strncmp(a, b, n, 1);
    __sanitizer_weak_hook_strncmp(0, a, b, n, r);
    return r;
}
int strcasecmp(const char *a, const char *b) {
    int r = ph_strncmp(a, b, (size_t)-1, 1);
    __sanitizer_weak_hook_strcmp(0, a, b, r);
    return r;
}
void *memmem(const void *h, size_t hl, const void *nd, size_t nl) {
    const unsigned char *x = (const unsigned char *)h;
    void *found = 0;
    if (nl == 0) found = (void *)h;
    else
        for (size_t i = 0; nl <= hl && i <= hl - nl; i++)
            if (x[i] == *(const unsigned char *)nd && ph_memcmp(x + i, nd, nl) == 0) {
                found = (void *)(x + i);
                break;
            }
    __sanitizer_weak_hook_memmem(0, h, hl, nd, nl, found);
    return found;
}
#endif
