/*
 * bcryptprimitives.dll shim for Wine 8.0.
 *
 * Rust's std (1.78 and later) imports ProcessPrng from bcryptprimitives.dll to seed
 * its hash maps. Wine 8.0 does not ship that DLL (Wine 8.13 added it), so every Rust
 * .exe fails to load with STATUS_DLL_NOT_FOUND. This DLL exports ProcessPrng and fills
 * the buffer from RtlGenRandom (advapi32!SystemFunction036), which Wine does implement.
 * ci/setup builds it with mingw and copies it into the project's Wine prefix.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    /* RtlGenRandom takes a ULONG length: feed large requests in pieces. */
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
